#!/usr/bin/env node
// Builds the component: node build.mjs [OUT.wasm]   (default: {{crate_name}}.wasm)
//
// Needs @bytecodealliance/componentize-js 0.23.0 (`npm install`, a pinned devDependency), or
// the folder $PAKAURA_TOOLS_NODE_MODULES when that is set. The bindings come from wit/.

import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PACKAGE = '@bytecodealliance/componentize-js';
const VERSION = '0.23.0';
// WASI features the engine would otherwise pull in that a mapper must not use: the host
// does not link wasi:http, and a mapper should be deterministic (no random, no clocks).
// `stdio` stays: the host captures it and shows an uncaught exception's message.
const DISABLED_FEATURES = ['random', 'clocks', 'http', 'fetch-event'];

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, '{{crate_name}}.wasm'));

const modules = process.env.PAKAURA_TOOLS_NODE_MODULES ?? join(here, 'node_modules');
const pkgDir = join(modules, PACKAGE);
if (!existsSync(join(pkgDir, 'package.json'))) {
  console.error(`error: ${PACKAGE} not found in ${modules}: run npm install`);
  process.exit(127);
}
const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
if (pkg.version !== VERSION) {
  console.error(`error: ${pkgDir} is ${PACKAGE} ${pkg.version}; this project pins ${VERSION}`);
  process.exit(1);
}
const { componentize } = await import(pathToFileURL(join(pkgDir, pkg.exports.import)).href);

const { component } = await componentize({
  sourcePath: join(here, 'src', 'component.js'),
  witPath: join(here, 'wit'),
  worldName: 'typed-mapper',
  disableFeatures: DISABLED_FEATURES,
});
await writeFile(out, component);
console.log(`built ${out} (${component.length} bytes)`);
