// @ts-check
/**
 * The component glue: exports the v2 mapping as the `pakaura:events/typed-mapper` world.
 *
 * componentize-js (`node build.mjs`) generates the bindings from the repository's `wit/`;
 * `pakaura:events/host@1.1.0` only exists inside the component, so this is the one module
 * the unit tests never import. It reads the settings through `host.config`, delegates to
 * `catalogue.js` and logs one debug line per mapping through `host.log`, exactly as the Rust
 * v2 mapper does. An `err` is returned by throwing `{ payload: reason }`; any other throw
 * would trap.
 */

// @ts-ignore: resolved by componentize-js, not by Node
import { config, log } from 'pakaura:events/host@1.1.0';

import * as catalogue from './catalogue.js';
import { eventSchemas } from './schemas.js';

export { eventSchemas };

export function describe() {
  return catalogue.describe();
}

/** @param {import('./types.js').Mutation} mutation */
export function mapMutation(mutation) {
  const settings = catalogue.settingsFromConfig(config);
  const outcome = (/** @type {string} */ text) =>
    log('debug', `mutation ${mutation.id} (${mutation.action}) of task ${mutation.task.id}: ${text}`);
  let events;
  try {
    events = catalogue.mapMutation(mutation, settings);
  } catch (e) {
    if (!(e instanceof catalogue.MappingError)) throw e;
    outcome(`refused: ${e.message}`);
    throw { payload: e.message };
  }
  outcome(`${events.length} event(s)`);
  return events;
}
