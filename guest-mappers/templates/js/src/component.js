// @ts-check
/**
 * The component glue: exports the mapping as the `pakaura:events/typed-mapper` world.
 *
 * componentize-js generates the bindings from `wit/events.wit` when `node build.mjs` runs.
 * `pakaura:events/host@1.1.0` only exists inside the component, so the unit tests never
 * import this module. It reads the `tenant` setting through `host.config`, delegates to
 * `mapping.js` and logs one line per mutation through `host.log`.
 */

// @ts-ignore: resolved by componentize-js, not by Node
import { config, log } from 'pakaura:events/host@1.1.0';

import * as mapping from './mapping.js';

/** Called once, when the host loads the component. */
export function describe() {
  return { name: mapping.NAME, version: mapping.VERSION, topics: [mapping.TOPIC] };
}

/**
 * Called once per committed mutation. Throwing `{ payload: reason }` returns `err(reason)`
 * (a dead letter); any other exception traps.
 * @param {any} mutation
 */
export function mapMutation(mutation) {
  let out;
  try {
    out = mapping.mapMutation(mutation, config(mapping.TENANT_KEY));
  } catch (e) {
    if (e instanceof mapping.MappingError) throw { payload: e.message };
    throw e;
  }
  log('debug', `mutation ${mutation.id} (${mutation.action}) of task ${mutation.task.id}`);
  return [
    {
      topic: mapping.TOPIC,
      eventType: out.eventType,
      subject: mutation.task.id,
      data: out.data,
      dataSchema: undefined,
      extensions: [['tenant', out.tenant]],
      // undefined: the host uses the task id, so one task's events stay in order.
      partitionKey: undefined,
    },
  ];
}

/** Called once, when the host loads the component, after `describe`. */
export function eventSchemas() {
  return mapping.eventSchemas().map(([eventType, schema]) => ({ eventType, topic: mapping.TOPIC, schema }));
}
