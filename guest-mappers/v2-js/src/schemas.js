// @ts-check
/**
 * The JSON Schema (draft 2020-12) of the v2 payload, declared for each of its five event
 * types through `event-schemas`: the same schemas as the Rust v2 mapper
 * (`guest-mappers/v2/src/catalogue/schemas.rs`; `tests/tests/e2e/polyglot.rs` compares them).
 */

import { SCHEMA_VERSION, TASK_EVENTS } from './catalogue.js';

/** The actions, in the contract's order. */
const ACTIONS = ['created', 'updated', 'completed', 'uncompleted', 'deleted'];

/**
 * The schema of every v2 event type, in action order.
 * @returns {{eventType: string, topic: string, schema: string}[]}
 */
export function eventSchemas() {
  return ACTIONS.map((action) => {
    const eventType = `com.pakaura.task.${action}.v2`;
    return { eventType, topic: TASK_EVENTS, schema: JSON.stringify(payload(eventType)) };
  });
}

/** @param {string} eventType */
function payload(eventType) {
  const text = { type: 'string' };
  const nullable = { type: ['string', 'null'] };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: eventType,
    description: 'A task changed: its whole state after the change, what changed, who and how.',
    type: 'object',
    properties: {
      schema_version: { const: SCHEMA_VERSION },
      task: {
        type: 'object',
        properties: {
          id: text,
          user_id: text,
          title: text,
          description: nullable,
          completed: { type: 'boolean' },
          due_date: nullable,
          created_at: text,
          updated_at: text,
        },
        required: ['id', 'user_id', 'title', 'description', 'completed', 'due_date', 'created_at', 'updated_at'],
      },
      changes: {
        type: 'array',
        items: {
          type: 'object',
          properties: { field: text, old: {}, new: {} },
          required: ['field', 'old', 'new'],
        },
      },
      actor: text,
      origin: { enum: ['rest', 'mcp', 'system'] },
      occurred_at: text,
    },
    required: ['schema_version', 'task', 'changes', 'actor', 'origin', 'occurred_at'],
  };
}
