// Validates an AsyncAPI document with the official parser (@asyncapi/parser), as a
// consumer's tooling would read it: node validate.mjs DOCUMENT.json
// PAKAURA_TOOLS_NODE_MODULES names the node_modules folder that holds the parser.
// Prints every diagnostic; exits 1 when any is an error, 2 on bad usage.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const modules = process.env.PAKAURA_TOOLS_NODE_MODULES;
const file = process.argv[2];
if (!modules || !file) {
  console.error('usage: PAKAURA_TOOLS_NODE_MODULES=… node validate.mjs DOCUMENT.json');
  process.exit(2);
}
const require = createRequire(path.join(modules, 'resolve-from-here.js'));
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

const parser = new Parser();
const { document, diagnostics } = await parser.parse(fs.readFileSync(file, 'utf8'));
for (const d of diagnostics) {
  const severity = Object.keys(DiagnosticSeverity).find((k) => DiagnosticSeverity[k] === d.severity);
  console.log(`${severity}: ${d.code} at /${d.path.join('/')}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (errors.length > 0 || !document) {
  console.error(`${errors.length} error(s)`);
  process.exit(1);
}
// What a consumer reads from it: each channel's messages and their payload's data schema.
for (const channel of document.channels()) {
  const messages = channel.messages().all().map((m) => m.name());
  console.log(`channel ${channel.address()}: ${messages.join(', ')}`);
}
console.log('valid');
