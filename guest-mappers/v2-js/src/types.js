// @ts-check
/**
 * The WIT records of `pakaura:events/types` (`wit/events.wit`) as componentize-js hands them
 * over: plain objects with camelCase fields, enums as their WIT case names, `option<T>` as
 * `T | undefined` (`null` is accepted on the way out). The mapping logic works on these
 * shapes directly, so it needs no conversion and tests with plain objects.
 *
 * @typedef {'created' | 'updated' | 'completed' | 'uncompleted' | 'deleted'} Action
 * @typedef {'rest' | 'mcp' | 'system'} Origin
 *
 * @typedef {object} Task
 * @property {string} id
 * @property {string} userId
 * @property {string} title
 * @property {string | undefined | null} [description]
 * @property {boolean} completed
 * @property {string | undefined | null} [dueDate]
 * @property {string} createdAt
 * @property {string} updatedAt
 *
 * @typedef {object} FieldChange One field changed by an `updated` mutation.
 * @property {string} field `title`, `description` or `due_date`
 * @property {string} oldValue a JSON text (`'"old"'`, `'null'`)
 * @property {string} newValue a JSON text
 *
 * @typedef {object} Mutation
 * @property {string} id stable across retries and replays
 * @property {Action} action
 * @property {Task} task after the change; for `deleted`, as it was
 * @property {FieldChange[]} changes empty for `created` and `deleted`
 * @property {Origin} origin
 * @property {string} correlationId
 * @property {string} occurredAt
 *
 * @typedef {object} Event One event to publish; the host wraps it in a CloudEvents envelope.
 * @property {string} topic
 * @property {string} eventType
 * @property {string | undefined} subject
 * @property {string} data a JSON text
 * @property {string | undefined} dataSchema
 * @property {[string, string][]} extensions
 * @property {string | undefined} partitionKey
 *
 * @typedef {object} MapperInfo
 * @property {string} name
 * @property {string} version
 * @property {string[]} topics
 */

export {};
