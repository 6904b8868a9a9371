// @ts-check
/**
 * The `{{name}}` Pakaura mapper's logic: one `com.example.task.<action>` event on
 * `task-events` per task mutation, tagged with the operator's `tenant` setting.
 *
 * Plain JavaScript, unit-tested with `node --test`; `component.js` is the component glue.
 */

export const NAME = '{{name}}';
export const VERSION = '0.1.0';
/** The topic this mapper publishes to; `describe` declares it. */
export const TOPIC = 'task-events';
/** The `host.config` key of the tenant, and its value when the operator set none. */
export const TENANT_KEY = 'tenant';
export const DEFAULT_TENANT = 'default';

/** The mutation cannot be mapped; the component returns `error.message` as its `err`. */
export class MappingError extends Error {}

/** The actions, as they appear in event types and payloads. */
export const ACTIONS = ['created', 'updated', 'completed', 'uncompleted', 'deleted'];

/**
 * `[event type, JSON Schema as a JSON text]` of every event type `mapMutation` may emit (all
 * on `TOPIC`).
 * Adding a property is compatible; removing or renaming one, narrowing a type or requiring a
 * new property is refused on reload (see the host's README, "Payload schemas").
 * @returns {[string, string][]}
 */
export function eventSchemas() {
  return ACTIONS.map((action) => [
    `com.example.task.${action}`,
    JSON.stringify({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: `com.example.task.${action}`,
      type: 'object',
      properties: {
        task_id: { type: 'string' },
        action: { const: action },
        title: { type: 'string' },
        changed: { type: 'array', items: { type: 'string' } },
        at: { type: 'string', format: 'date-time' },
      },
      required: ['task_id', 'action', 'title', 'changed', 'at'],
    }),
  ]);
}

/**
 * Maps one mutation (as componentize-js hands the WIT record over: camelCase fields, enums
 * as their WIT case names). `tenant` is the `tenant` setting, if the operator set one.
 *
 * Throws a `MappingError` (the mutation becomes a dead letter, replayable once the setting
 * is fixed) when `tenant` is set but is not 1 to 63 characters of a-z, 0-9 and `-`.
 *
 * @typedef {object} Input the fields of the WIT `mutation` record this mapping reads
 * @property {string} action
 * @property {object} task
 * @property {string} task.id
 * @property {string} task.title
 * @property {Array<object>} changes
 * @property {string} occurredAt
 *
 * @typedef {object} Output
 * @property {string} eventType
 * @property {string} data
 * @property {string} tenant
 *
 * @param {Input} mutation
 * @param {string | undefined} tenant
 * @returns {Output}
 */
export function mapMutation(mutation, tenant) {
  tenant ??= DEFAULT_TENANT;
  if (!/^[a-z0-9-]{1,63}$/.test(tenant)) {
    throw new MappingError(
      `setting \`${TENANT_KEY}\` must be 1 to 63 characters of a-z, 0-9 and \`-\`, got ${JSON.stringify(tenant)}`,
    );
  }
  const data = {
    task_id: mutation.task.id,
    action: mutation.action,
    title: mutation.task.title,
    changed: mutation.changes.map((/** @type {any} */ c) => c.field),
    at: mutation.occurredAt,
  };
  return { eventType: `com.example.task.${mutation.action}`, data: JSON.stringify(data), tenant };
}
