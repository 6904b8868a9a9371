// The JavaScript v2 mapper against the Rust one, byte for byte.
//
// `guest-mappers/fixtures/expected/` is written by the Rust v2 catalogue itself
// (`guest-mappers/golden`): the exact events (or `err` text) for every mutation fixture,
// with the default and a custom `schema-base-url`, and serde_json's reading of a few
// hundred JSON texts (normal form or error message).

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DEFAULT_SETTINGS, MappingError, mapMutation, settingsFromConfig } from '../src/catalogue.js';
import { JsonError, parse, stringify } from '../src/jsontext.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
/** @param {string} path */
const readJson = (path) => JSON.parse(readFileSync(fixtures + path, 'utf8'));
const EVENTS = readJson('expected/v2-events.json');
const TEXTS = readJson('expected/json-texts.json');

/**
 * A fixture in the outbox form (`pakaura mapper run --mutation`) as componentize-js hands
 * the WIT record over: camelCase fields, absent options as `undefined`.
 * @param {string} name
 * @returns {import('../src/types.js').Mutation}
 */
function loadMutation(name) {
  const raw = readJson(`mutations/${name}.json`);
  const t = raw.task;
  return {
    id: raw.id,
    action: raw.action,
    task: {
      id: t.id, userId: t.user_id, title: t.title, description: t.description ?? undefined,
      completed: t.completed, dueDate: t.due_date ?? undefined, createdAt: t.created_at,
      updatedAt: t.updated_at,
    },
    changes: (raw.changes ?? []).map((/** @type {any} */ c) => ({
      field: c.field, oldValue: c.old_value, newValue: c.new_value,
    })),
    origin: raw.origin,
    correlationId: raw.correlation_id,
    occurredAt: raw.occurred_at,
  };
}

/**
 * The mapping as the golden file records it (WIT field names, none as null).
 * @param {import('../src/types.js').Mutation} mutation
 * @param {{schemaBaseUrl: string}} settings
 */
function outcome(mutation, settings) {
  let events;
  try {
    events = mapMutation(mutation, settings);
  } catch (e) {
    if (e instanceof MappingError) return { err: e.message };
    throw e;
  }
  return {
    ok: events.map((e) => ({
      topic: e.topic,
      event_type: e.eventType,
      subject: e.subject ?? null,
      data: e.data,
      data_schema: e.dataSchema ?? null,
      extensions: e.extensions,
      partition_key: e.partitionKey ?? null,
    })),
  };
}

test('every fixture has a golden outcome', () => {
  const names = readdirSync(fixtures + 'mutations').filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  assert.deepEqual(names.sort(), Object.keys(EVENTS.fixtures).sort(), 'regenerate with guest-mappers/golden');
});

test('the events are the Rust mapper\'s', async (t) => {
  const custom = settingsFromConfig((key) => (key === 'schema-base-url' ? EVENTS.custom_schema_base_url : undefined));
  for (const [name, expected] of Object.entries(EVENTS.fixtures)) {
    await t.test(name, () => {
      const mutation = loadMutation(name);
      assert.deepEqual(outcome(mutation, DEFAULT_SETTINGS), expected.default);
      assert.deepEqual(outcome(mutation, custom), expected.custom);
    });
  }
});

test('JSON texts read as serde_json reads them', () => {
  let checked = 0;
  for (const c of TEXTS) {
    if ('err' in c) {
      assert.throws(() => parse(c.text), (/** @type {Error} */ e) => {
        assert.ok(e instanceof JsonError, `${JSON.stringify(c.text)}: ${e}`);
        assert.equal(`field \`title\`: old value is not JSON: ${e.message}`, c.err, JSON.stringify(c.text));
        return true;
      });
    } else {
      assert.equal(stringify(parse(c.text)), c.value, JSON.stringify(c.text));
    }
    checked += 1;
  }
  assert.equal(checked, TEXTS.length);
});
