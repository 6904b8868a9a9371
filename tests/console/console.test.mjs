// The operator console in a real browser: Debian's Chromium driven by playwright-core.
// Started by tests/tests/e2e/console/browser.rs with a running host (Dapr enabled) and
// the recording sidecar; everything it needs comes from the environment:
//   CONSOLE_URL  ADMIN_TOKEN  USER_TOKEN  SINK_URL  SCREENSHOT_DIR  MISBEHAVE_WASM
//   PAKAURA_TOOLS_NODE_MODULES (playwright-core)  PAKAURA_CHROMIUM (the browser)
// Exits non-zero on the first failed step, with a screenshot of the moment.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`console.test.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const BASE = env('CONSOLE_URL').replace(/\/$/, '');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const USER_TOKEN = env('USER_TOKEN');
const SINK = env('SINK_URL').replace(/\/$/, '');
const SHOTS = env('SCREENSHOT_DIR');
const MISBEHAVE = env('MISBEHAVE_WASM');
const require = createRequire(path.join(env('PAKAURA_TOOLS_NODE_MODULES'), 'resolve-from-here.js'));
const { chromium } = require('playwright-core');

const WAIT = 30_000;
fs.mkdirSync(SHOTS, { recursive: true });

let page;
let stepNo = 0;

async function step(name, body) {
  stepNo += 1;
  const started = Date.now();
  process.stdout.write(`console browser test ${stepNo}: ${name} … `);
  await body();
  console.log(`ok (${Date.now() - started} ms)`);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Polls `probe` until it returns a truthy value. */
async function until(what, probe, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function sink(method, route) {
  const response = await fetch(`${SINK}${route}`, { method });
  assert.ok(response.ok, `${method} ${route}: ${response.status}`);
  return method === 'GET' ? response.json() : null;
}

const browser = await chromium.launch({
  executablePath: env('PAKAURA_CHROMIUM'),
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const violations = [];
let failed = false;

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) {
      violations.push(message.text());
    }
  });
  page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));

  await step('without a session, the data endpoints answer 401 and the console asks to log in', async () => {
    for (const route of ['/admin/mappers', '/admin/envelopes', '/admin/dead-letters', '/admin/flow/stream']) {
      const response = await fetch(`${BASE}${route}`);
      assert.equal(response.status, 401, route);
    }
    await page.goto(`${BASE}/console`);
    assert.match(page.url(), /\/console\/login$/);
    await page.getByLabel('Admin token').waitFor();
    await shot('01-login');
  });

  await step('a wrong token sees nothing and gets no cookie', async () => {
    await page.getByLabel('Admin token').fill('this-is-not-the-admin-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#login-error').waitFor();
    assert.match(await page.locator('#login-error').textContent(), /not the admin token/);
    assert.match(page.url(), /\/console\/login$/);
    assert.equal((await context.cookies()).length, 0);
    const status = await page.evaluate(async () => (await fetch('/admin/mappers')).status);
    assert.equal(status, 401);
    await shot('02-login-refused');
  });

  await step('the admin token opens a session kept in an HttpOnly cookie, not the token', async () => {
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${BASE}/console`);
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    const [cookie] = cookies;
    assert.equal(cookie.name, 'pakaura_console');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.ok(!cookie.value.includes(ADMIN_TOKEN));
    const stored = await page.evaluate(() => ({ cookie: document.cookie, local: localStorage.length, session: sessionStorage.length }));
    assert.deepEqual(stored, { cookie: '', local: 0, session: 0 });
  });

  await step('the skip link is the first stop for the keyboard and leads to the content', async () => {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement.textContent.trim());
    assert.equal(focused, 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  });

  await step('the mappers view lists the built-in mapper with its statistics', async () => {
    const row = page.locator('#mappers-table tr[data-mapper="default"]');
    await row.waitFor();
    const text = await row.textContent();
    assert.match(text, /builtin:default/);
    assert.match(text, /task-events/);
    await page.getByRole('button', { name: 'Reload mappers' }).click();
    await until('the reload result', async () => /Reloaded/.test(await page.locator('#reload-result').textContent()));
    await shot('03-mappers');
  });

  let task;
  await step('a new task\'s envelopes appear in the envelopes view by themselves', async () => {
    await sink('POST', '/test/forbid?topic=reminders');
    await page.getByRole('link', { name: 'Envelopes' }).click();
    await page.locator('#h-envelopes:focus').waitFor();
    const response = await fetch(`${BASE}/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'water the plants', due_date: '2026-03-01T09:00:00Z' }),
    });
    assert.equal(response.status, 201);
    task = (await response.json()).id;
    await page.locator('#envelopes-table tbody tr', { hasText: 'task.created' })
      .filter({ hasText: task.slice(0, 8) }).waitFor();
    await shot('04-envelopes');
  });

  await step('an envelope opens to its exact CloudEvents JSON and delivery history', async () => {
    const row = page.locator('#envelopes-table tbody tr', { hasText: 'task.created' }).filter({ hasText: task.slice(0, 8) });
    await row.getByRole('button', { name: /^Open task\.created/ }).click();
    await page.locator('#envelope-detail').waitFor();
    const json = JSON.parse(await page.locator('#envelope-json').textContent());
    assert.equal(json.type, 'task.created');
    assert.equal(json.subject, task);
    assert.equal(json.specversion, '1.0');
    assert.match(await page.locator('#envelope-history').textContent(), /Attempts/);
    await shot('05-envelope');
  });

  let letterId;
  await step('the refused reminder shows as a dead letter with its reason and mutation', async () => {
    await page.getByRole('link', { name: /Dead letters/ }).click();
    const card = page.locator('#dead-letters-list article', { hasText: 'Refused publish' });
    await card.first().waitFor();
    assert.match(await card.first().locator('.reason').textContent(), /403|FORBIDDEN/);
    letterId = await card.first().getAttribute('data-letter');
    await card.first().locator('summary').click();
    assert.match(await card.first().locator('pre').textContent(), new RegExp(task));
    await until('the dead-letter badge', async () => (await page.locator('#dead-count').textContent()) === '1');
    await shot('06-dead-letters');
  });

  await step('after the sidecar accepts the topic again, one click replays it and it is published', async () => {
    await sink('POST', '/test/allow?topic=reminders');
    const card = page.locator(`#dead-letters-list article[data-letter="${letterId}"]`);
    await card.getByRole('button', { name: /^Replay/ }).click();
    await until('the replay result', async () => /Replayed/.test(await page.locator('#replay-result').textContent()));
    await until('the reminder at the sidecar', async () => {
      const published = await sink('GET', '/test/published');
      return published.some((e) => e.type === 'reminder.scheduled' && e.subject === task);
    });
    await page.locator('#dead-letters-list', { hasText: 'No open dead letters' }).waitFor();
    await until('the focus on the result, not lost with the card', async () =>
      (await page.evaluate(() => document.activeElement.id)) === 'replay-result');
    await shot('07-replayed');
  });

  await step('the flow view shows the counts, the lag and a chart, live', async () => {
    await page.getByRole('link', { name: 'Flow' }).click();
    await until('a published count', async () => Number(await page.locator('#stat-published').textContent()) >= 3);
    await until('a chart', async () => (await page.locator('#chart-pending polygon').count()) === 1);
    assert.match(await page.locator('#live-status').textContent(), /Live/);
    await shot('08-flow');
  });

  await step('the playground runs the built-in mapper on a template and shows its envelopes', async () => {
    await page.getByRole('link', { name: 'Playground' }).click();
    await until('the mapper list', async () => (await page.locator('#pg-mapper option').count()) >= 1);
    await page.getByRole('button', { name: 'created', exact: true }).click();
    await until('the template', async () => /"action": "created"/.test(await page.locator('#pg-mutation').inputValue()));
    await page.getByLabel('Run', { exact: true }).selectOption('mapper:default');
    await page.getByRole('button', { name: 'Run mapper' }).click();
    await until('the envelopes', async () => /envelope\(s\)/.test(await page.locator('#pg-summary').textContent()));
    const text = await page.locator('#pg-envelopes').textContent();
    assert.match(text, /task\.created/);
    assert.match(text, /reminder\.scheduled/);
    await shot('09-playground');
  });

  await step('a recent real mutation prefills the playground', async () => {
    await until('recent mutations', async () => (await page.locator('#pg-recent option').count()) > 1);
    await page.locator('#pg-recent').selectOption({ index: 1 });
    await page.getByRole('button', { name: 'Use it' }).click();
    await until('the real mutation', async () => (await page.locator('#pg-mutation').inputValue()).includes(task));
  });

  await step('an uploaded mapper runs, and its refusal is shown', async () => {
    await page.getByLabel(/Or upload a component/).setInputFiles(MISBEHAVE);
    await page.getByRole('button', { name: 'Upload component', exact: true }).click();
    await until('the upload', async () => /Loaded misbehave/.test(await page.locator('#pg-upload-status').textContent()), 120_000);
    assert.match(await page.getByLabel('Run', { exact: true }).inputValue(), /^upload:/);
    await page.getByLabel(/Settings for/).fill('mode=err');
    await page.getByRole('button', { name: 'Run mapper' }).click();
    await until('the refusal', async () => /Refused \(rejected\)/.test(await page.locator('#pg-summary').textContent()));
    assert.match(await page.locator('#pg-summary').textContent(), /refused on purpose/);
    await shot('10-playground-refused');
  });

  await step('on a phone the views stay usable', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: 'Flow' }).click();
    await page.locator('#h-flow:focus').waitFor();
    const overflows = () => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    assert.equal(await overflows(), false, 'no horizontal scrolling of the flow view');
    await shot('11-phone-flow');
    await page.getByRole('link', { name: 'Envelopes' }).click();
    await page.locator('#envelopes-table tbody tr').first().waitFor();
    assert.equal(await overflows(), false, 'wide tables scroll inside their frame, not the page');
    await shot('12-phone-envelopes');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await step('logging out ends the session', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${BASE}/console/login`);
    assert.equal((await context.cookies()).length, 0);
    const status = await page.evaluate(async () => (await fetch('/admin/mappers')).status);
    assert.equal(status, 401);
  });

  await step('no Content-Security-Policy violation or script error happened', async () => {
    assert.deepEqual(violations, []);
  });
} catch (error) {
  failed = true;
  console.log('FAILED');
  console.error(error);
  if (violations.length) console.error('violations:', violations);
  if (page) await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
