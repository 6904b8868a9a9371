import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ACTIONS, DEFAULT_TENANT, MappingError, NAME, eventSchemas, mapMutation } from '../src/mapping.js';

const mutation = () => ({
  action: 'updated',
  task: { id: '0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10', title: 'Buy milk' },
  changes: [{ field: 'title' }],
  occurredAt: '2026-02-09T14:30:00.000Z',
});

test('the name is the project\'s', () => {
  assert.equal(NAME, '{{name}}');
});

test('maps a mutation to one event tagged with the tenant', () => {
  const out = mapMutation(mutation(), 'acme');
  assert.equal(out.eventType, 'com.example.task.updated');
  assert.equal(out.tenant, 'acme');
  const data = JSON.parse(out.data);
  assert.equal(data.task_id, '0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10');
  assert.deepEqual(data.changed, ['title']);
});

test('the tenant defaults when unset', () => {
  assert.equal(mapMutation(mutation(), undefined).tenant, DEFAULT_TENANT);
});

test('an invalid tenant setting is refused', () => {
  assert.throws(() => mapMutation(mutation(), 'Acme Corp'), MappingError);
});

test('every event it emits has a declared schema', () => {
  const schemas = new Map(eventSchemas());
  for (const action of ACTIONS) {
    const out = mapMutation({ ...mutation(), action }, undefined);
    const schema = JSON.parse(schemas.get(out.eventType) ?? 'null');
    for (const key of schema.required) assert.ok(key in JSON.parse(out.data), key);
  }
});
