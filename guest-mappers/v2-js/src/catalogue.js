// @ts-check
/**
 * The v2 event schema, as plain JavaScript: how a mapper evolves the catalogue without a
 * host release.
 *
 * The same mapper as the Rust crate `guest-mappers/v2` (`src/catalogue.rs`), event for event
 * and byte for byte: every mutation yields exactly one event on `task-events`; its type
 * carries the schema version (`com.pakaura.task.created.v2`), its payload is a full task
 * snapshot plus the list of changes, it points at a published JSON schema (`dataschema`)
 * and it carries a `schemaversion` extension attribute.
 *
 * @typedef {import('./types.js').Mutation} Mutation
 * @typedef {import('./types.js').FieldChange} FieldChange
 * @typedef {import('./types.js').Event} Event
 * @typedef {import('./types.js').MapperInfo} MapperInfo
 */

import { JsonError, parse, stringify } from './jsontext.js';

/** The mapper's name and version: the same as the Rust v2 mapper's, because the host derives
 * envelope ids from the name and the three implementations are interchangeable. */
export const NAME = 'v2';
export const VERSION = '2.0.0';
/** The only topic this mapper publishes to. */
export const TASK_EVENTS = 'task-events';
/** The schema version this mapper produces, in payloads and in the `schemaversion` extension. */
export const SCHEMA_VERSION = 2;

/** The `host.config` key of the schema base URL. */
export const SCHEMA_BASE_URL_KEY = 'schema-base-url';
/** The schema base URL used when the operator set none. */
export const DEFAULT_SCHEMA_BASE_URL = 'https://schemas.pakaura.dev/events';

/** The mutation cannot be mapped; the component returns `error.message` as its `err`. */
export class MappingError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'MappingError';
  }
}

/**
 * The operator's settings for this mapper, read through `config` (the component passes
 * `host.config`). An unset key falls back to the default; a set one is used as it is (even
 * when empty), less any trailing slashes.
 * @param {(key: string) => string | undefined | null} config
 * @returns {{schemaBaseUrl: string}} `dataschema` is `{schemaBaseUrl}/task/{action}.v2.json`
 */
export function settingsFromConfig(config) {
  const base = config(SCHEMA_BASE_URL_KEY) ?? DEFAULT_SCHEMA_BASE_URL;
  return { schemaBaseUrl: base.replace(/\/+$/, '') };
}

/** The settings when the operator set none. */
export const DEFAULT_SETTINGS = Object.freeze(settingsFromConfig(() => undefined));

/**
 * Names this mapper and declares its single topic.
 * @returns {MapperInfo}
 */
export function describe() {
  return { name: NAME, version: VERSION, topics: [TASK_EVENTS] };
}

/**
 * Maps one mutation to its single v2 event. Throws a `MappingError` only when a change's
 * old or new value is not a JSON text.
 * @param {Mutation} mutation
 * @param {{schemaBaseUrl: string}} [settings]
 * @returns {Event[]}
 */
export function mapMutation(mutation, settings = DEFAULT_SETTINGS) {
  const { task, action } = mutation;
  // Key order is the payload's field order; none of the keys looks like an array index.
  const payload = {
    schema_version: SCHEMA_VERSION,
    task: {
      id: task.id,
      user_id: task.userId,
      title: task.title,
      description: task.description ?? null,
      completed: task.completed,
      due_date: task.dueDate ?? null,
      created_at: task.createdAt,
      updated_at: task.updatedAt,
    },
    changes: mutation.changes.map(changePayload),
    actor: task.userId,
    origin: mutation.origin,
    occurred_at: mutation.occurredAt,
  };
  return [
    {
      topic: TASK_EVENTS,
      eventType: `com.pakaura.task.${action}.v2`,
      subject: task.id,
      data: stringify(payload),
      dataSchema: `${settings.schemaBaseUrl}/task/${action}.v2.json`,
      extensions: [['schemaversion', String(SCHEMA_VERSION)]],
      partitionKey: undefined,
    },
  ];
}

/**
 * One change, with its old and new values as JSON values rather than JSON texts.
 * @param {FieldChange} change
 */
function changePayload(change) {
  /** @param {string} which @param {string} text */
  const value = (which, text) => {
    try {
      return parse(text);
    } catch (e) {
      if (!(e instanceof JsonError)) throw e;
      throw new MappingError(`field \`${change.field}\`: ${which} value is not JSON: ${e.message}`);
    }
  };
  const old = value('old', change.oldValue);
  return { field: change.field, old, new: value('new', change.newValue) };
}
