#!/usr/bin/env node
// Builds the JavaScript v2 mapper into a component: node build.mjs OUT.wasm
// (`node build.mjs --check-tools` only finds componentize-js and prints where it is.)
//
// Uses componentize-js's JavaScript API (`componentize({ sourcePath, witPath, worldName,
// disableFeatures })`) from @bytecodealliance/componentize-js 0.23.0, taken from
// $PAKAURA_TOOLS_NODE_MODULES when that is set (the test command's tool bootstrap), else
// found by Node's usual lookup: node_modules folders from here upwards, then $NODE_PATH.
// The bindings are generated from the repository's wit/ folder; nothing is copied here.

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PACKAGE = '@bytecodealliance/componentize-js';
const VERSION = '0.23.0';
// WASI features the engine would otherwise pull in. The mapper needs none: the host denies
// network access (so no `http`/`fetch-event`: it does not even link wasi:http), and a mapper
// must be deterministic (no `random`, no `clocks`). `stdio` stays: the host captures it, and
// it carries an uncaught exception's message into the trap reason.
const DISABLED_FEATURES = ['random', 'clocks', 'http', 'fetch-event'];

const here = dirname(fileURLToPath(import.meta.url));
const wit = resolve(here, '..', '..', 'wit');

/** The folders searched for the package, in order. */
function searchPath() {
  if (process.env.PAKAURA_TOOLS_NODE_MODULES) return [process.env.PAKAURA_TOOLS_NODE_MODULES];
  const dirs = [];
  for (let dir = here; ; dir = dirname(dir)) {
    dirs.push(join(dir, 'node_modules'));
    if (dirname(dir) === dir) break;
  }
  return dirs.concat((process.env.NODE_PATH ?? '').split(delimiter).filter(Boolean));
}

async function loadComponentize() {
  const dirs = searchPath();
  const found = dirs.map((d) => join(d, PACKAGE)).find((d) => existsSync(join(d, 'package.json')));
  if (!found) {
    throw new Error(
      `${PACKAGE} not found (need ${PACKAGE}@${VERSION} from npm: set PAKAURA_TOOLS_NODE_MODULES ` +
        `to a node_modules folder that has it, or npm install it; searched ${dirs.join(', ')})`,
    );
  }
  const pkg = JSON.parse(await readFile(join(found, 'package.json'), 'utf8'));
  if (pkg.version !== VERSION) {
    throw new Error(`${found} is ${PACKAGE} ${pkg.version}; this mapper pins ${VERSION}`);
  }
  const { componentize } = await import(pathToFileURL(join(found, pkg.exports.import)).href);
  return { componentize, found };
}

async function main() {
  const [out, ...rest] = process.argv.slice(2);
  if (!out || rest.length > 0) {
    console.error('usage: node build.mjs OUT.wasm | --check-tools');
    process.exit(2);
  }
  let componentize;
  try {
    const loaded = await loadComponentize();
    componentize = loaded.componentize;
    if (out === '--check-tools') {
      console.log(`${PACKAGE}@${VERSION}: ${loaded.found}`);
      return;
    }
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    process.exit(127);
  }
  const { component } = await componentize({
    sourcePath: join(here, 'src', 'component.js'),
    witPath: wit,
    worldName: 'typed-mapper',
    disableFeatures: DISABLED_FEATURES,
  });
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, component);
  console.log(`built ${out} (${component.length} bytes)`);
}

await main();
