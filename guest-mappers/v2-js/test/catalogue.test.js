// Unit tests of the v2 schema: type names, data schema, extension and the exact payload.
//
// A port of the Rust crate's tests (`guest-mappers/v2/src/catalogue/tests.rs`), case for
// case; `golden.test.js` checks the exact events against the Rust mapper's own output.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MappingError, describe, mapMutation, settingsFromConfig } from '../src/catalogue.js';

const TASK_ID = '0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10';
const AT = '2026-02-09T14:30:00.000Z';

/**
 * @param {import('../src/types.js').Action} action
 * @param {[string, string, string][]} [changes]
 * @returns {import('../src/types.js').Mutation}
 */
function mutation(action, changes = []) {
  return {
    id: '7f0c2a9e-1d1b-4e8e-8f3a-2c4b6d8e0f12',
    action,
    task: {
      id: TASK_ID,
      userId: 'user-42',
      title: 'Buy milk',
      description: '2 litres',
      completed: false,
      dueDate: '2026-02-12T09:00:00.000Z',
      createdAt: '2026-02-01T08:00:00.000Z',
      updatedAt: AT,
    },
    changes: changes.map(([field, oldValue, newValue]) => ({ field, oldValue, newValue })),
    origin: 'mcp',
    correlationId: '4bf92f3577b34da6a3ce929d0e0e4736',
    occurredAt: AT,
  };
}

/** @param {import('../src/types.js').Mutation} m @param {{schemaBaseUrl: string}} [settings] */
function mapOne(m, settings) {
  const events = mapMutation(m, settings);
  assert.equal(events.length, 1, JSON.stringify(events));
  return events[0];
}

test('describe names the mapper and declares only task-events', () => {
  assert.deepEqual(describe(), { name: 'v2', version: '2.0.0', topics: ['task-events'] });
});

test('every action yields one versioned event on task-events', () => {
  for (const action of /** @type {const} */ (['created', 'updated', 'completed', 'uncompleted', 'deleted'])) {
    const event = mapOne(mutation(action));
    assert.equal(event.topic, 'task-events');
    assert.equal(event.eventType, `com.pakaura.task.${action}.v2`);
    assert.equal(event.subject, TASK_ID);
    assert.equal(event.dataSchema, `https://schemas.pakaura.dev/events/task/${action}.v2.json`);
    assert.deepEqual(event.extensions, [['schemaversion', '2']]);
    assert.equal(event.partitionKey, undefined);
  }
});

test('the payload is a task snapshot with the list of changes', () => {
  const m = mutation('updated', [
    ['title', '"Buy bread"', '"Buy milk"'],
    ['due_date', 'null', '"2026-02-12T09:00:00.000Z"'],
  ]);
  const event = mapOne(m);
  assert.deepEqual(JSON.parse(event.data), {
    schema_version: 2,
    task: {
      id: TASK_ID, user_id: 'user-42', title: 'Buy milk',
      description: '2 litres', completed: false,
      due_date: '2026-02-12T09:00:00.000Z',
      created_at: '2026-02-01T08:00:00.000Z', updated_at: AT,
    },
    changes: [
      { field: 'title', old: 'Buy bread', new: 'Buy milk' },
      { field: 'due_date', old: null, new: '2026-02-12T09:00:00.000Z' },
    ],
    actor: 'user-42',
    origin: 'mcp',
    occurred_at: AT,
  });
  assert.ok(event.data.startsWith('{"schema_version":2,"task":{"id":'), event.data);
});

test('absent optional fields are null and no changes is an empty list', () => {
  const m = mutation('created');
  m.task.description = undefined;
  m.task.dueDate = undefined;
  m.origin = 'rest';
  const data = JSON.parse(mapOne(m).data);
  assert.equal(data.task.description, null);
  assert.equal(data.task.due_date, null);
  assert.deepEqual(data.changes, []);
  assert.equal(data.origin, 'rest');
});

test('the schema base URL comes from config without a trailing slash', () => {
  const settings = settingsFromConfig((key) =>
    key === 'schema-base-url' ? 'https://schemas.example.com/v/' : undefined,
  );
  const event = mapOne(mutation('deleted'), settings);
  assert.equal(event.dataSchema, 'https://schemas.example.com/v/task/deleted.v2.json');
});

test('a change that is not JSON is refused naming the field', () => {
  assert.throws(
    () => mapMutation(mutation('updated', [['title', 'nope', 'null']])),
    (/** @type {Error} */ err) => {
      assert.ok(err instanceof MappingError, String(err));
      assert.ok(err.message.includes('`title`') && err.message.includes('old value'), err.message);
      return true;
    },
  );
});

test('every event type it emits has a declared schema', async () => {
  const { eventSchemas } = await import('../src/schemas.js');
  const declared = new Map(eventSchemas().map((s) => [s.eventType, JSON.parse(s.schema)]));
  for (const action of /** @type {const} */ (['created', 'updated', 'completed', 'uncompleted', 'deleted'])) {
    const [event] = mapMutation(mutation(action));
    const schema = declared.get(event.eventType);
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.deepEqual(new Set(schema.required), new Set(Object.keys(JSON.parse(event.data))));
  }
});
