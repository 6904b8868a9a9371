// The operator console in a real browser: Debian's Chromium driven by playwright-core.
// Started by tests/tests/e2e/console/browser.rs with a running host (Dapr enabled) and
// the recording sidecar; everything it needs comes from the environment:
//   CONSOLE_URL  ADMIN_TOKEN  USER_TOKEN  SINK_URL  SCREENSHOT_DIR  MISBEHAVE_WASM
//   PAKAURA_TOOLS_NODE_MODULES (playwright-core)  PAKAURA_CHROMIUM (the browser)
// Exits non-zero on the first failed step, with a screenshot of the moment.

import assert from 'node:assert/strict';
import { env, runInBrowser, until } from './harness.mjs';

const BASE = env('CONSOLE_URL').replace(/\/$/, '');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const USER_TOKEN = env('USER_TOKEN');
const SINK = env('SINK_URL').replace(/\/$/, '');
const MISBEHAVE = env('MISBEHAVE_WASM');

let page;

async function sink(method, route) {
  const response = await fetch(`${SINK}${route}`, { method });
  assert.ok(response.ok, `${method} ${route}: ${response.status}`);
  return method === 'GET' ? response.json() : null;
}

await runInBrowser('console browser test', { width: 1280, height: 860 }, async ({ page: opened, context, violations, step, shot }) => {
  page = opened;

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
    assert.match(await page.locator('#login-error').textContent(), /not an admin token/);
    assert.equal(await page.getByLabel('Admin token').getAttribute('aria-describedby'), 'login-error');
    assert.equal(await page.getByLabel('Admin token').getAttribute('aria-invalid'), 'true');
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
    await page.getByRole('button', { name: 'Reload mappers…' }).click();
    const confirm = page.locator('#reload-confirm');
    await until('the preview', async () => /changes nothing/.test(await confirm.textContent()));
    assert.match(await confirm.textContent(), /Unchanged, keeping their counters: default/);
    assert.match(await confirm.textContent(), /Dry run over the latest \d+ mutation\(s\)/);
    await shot('03a-reload-preview');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await until('the cancellation', async () => /cancelled/.test(await page.locator('#reload-result').textContent()));
    await page.getByRole('button', { name: 'Reload mappers…' }).click();
    await confirm.getByRole('button', { name: 'Reload now' }).click();
    await until('the reload result', async () => /Reloaded/.test(await page.locator('#reload-result').textContent()));
    assert.match(await page.locator('#reload-result').textContent(), /nothing changed.*kept their counters/);
    await until('the history', async () => /applied .* admin · no change/.test(await page.locator('#reload-history').textContent()));
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
      .filter({ hasText: task.slice(-8) }).waitFor();
    await shot('04-envelopes');
  });

  await step('an envelope opens to its exact CloudEvents JSON and delivery history', async () => {
    const row = page.locator('#envelopes-table tbody tr', { hasText: 'task.created' }).filter({ hasText: task.slice(-8) });
    await row.getByRole('button', { name: /^Open task\.created/ }).click();
    await page.locator('#envelope-detail').waitFor();
    const json = JSON.parse(await page.locator('#envelope-json').textContent());
    assert.equal(json.type, 'task.created');
    assert.equal(json.subject, task);
    assert.equal(json.specversion, '1.0');
    assert.match(await page.locator('#envelope-history').textContent(), /Attempts/);
    await shot('05-envelope');
  });

  await step('the detail opens beside the list without moving the page, and Escape closes it', async () => {
    await page.getByRole('button', { name: 'Close' }).click();
    await page.evaluate(() => window.scrollTo(0, 0));
    const row = page.locator('#envelopes-table tbody tr').first();
    await row.getByRole('button', { name: /^Open/ }).click();
    await page.locator('#h-envelope:focus').waitFor();
    assert.equal(await page.evaluate(() => window.scrollY), 0, 'the page did not jump');
    const [list, detail] = await Promise.all([
      page.locator('#envelopes-layout .list-pane').boundingBox(), page.locator('#envelope-detail').boundingBox()]);
    assert.ok(detail.x > list.x + list.width - 1, `beside: ${JSON.stringify({ list, detail })}`);
    await page.keyboard.press('Escape');
    await page.locator('#envelope-detail').waitFor({ state: 'hidden' });
    assert.match(await page.evaluate(() => document.activeElement.getAttribute('aria-label') || ''), /^Open/);
  });

  await step('search takes an 8-character id, a type prefix, says what is wrong with a bad filter and drops stale rows', async () => {
    await page.getByLabel('Task id').fill(task.slice(0, 5));
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await until('the error', async () => /at least 8 characters/.test(await page.locator('#envelopes-status').textContent()));
    assert.doesNotMatch(await page.locator('#envelopes-status').textContent(), /UUID parsing failed/);
    assert.equal(await page.locator('#envelopes-table tbody tr[data-envelope]').count(), 0, 'no stale rows');
    assert.equal(await page.getByLabel('Task id').getAttribute('aria-invalid'), 'true');
    await shot('05b-search-error');
    await page.getByLabel('Task id').fill(task.slice(-8));
    await page.getByLabel('Type starts with').fill('task.');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await until('the task\'s envelopes', async () => /of 1 matching/.test(await page.locator('#envelopes-count').textContent()));
    assert.match(await page.locator('#envelopes-table tbody').textContent(), /task\.created/);
    assert.equal(await page.getByLabel('Task id').getAttribute('aria-invalid'), null);
    await page.getByLabel('Type starts with').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await until('all three envelopes', async () => /of 3 matching/.test(await page.locator('#envelopes-count').textContent()));
    await page.getByLabel('Task id').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
  });

  let letterId;
  await step('the refused reminder shows as a dead letter with its reason and mutation', async () => {
    await page.getByRole('link', { name: /Dead letters/ }).click();
    const card = page.locator('#dead-letters-list article', { hasText: 'Refused publish' });
    await card.first().waitFor();
    assert.match(await card.first().locator('.reason').textContent(), /403|FORBIDDEN/);
    letterId = await card.first().getAttribute('data-letter');
    const mutation = card.first().locator('details', { hasText: 'Mutation JSON' });
    await mutation.locator('summary').click();
    assert.match(await mutation.locator('pre').textContent(), new RegExp(task));
    const envelope = card.first().locator('details', { hasText: 'Envelope JSON' });
    await envelope.locator('summary').click();
    await until('the envelope JSON on demand', async () => /"type": "reminder.scheduled"/.test(await envelope.locator('pre').textContent()));
    await until('the dead-letter badge', async () => (await page.locator('#dead-count').textContent()) === '1');
    await shot('06-dead-letters');
  });

  await step('a replay into a still-refusing sidecar shows as refused again, linked to its new letter', async () => {
    const card = page.locator(`#dead-letters-list article[data-letter="${letterId}"]`);
    assert.match(await card.textContent(), /reminder\.scheduled on reminders/);
    assert.match(await card.textContent(), new RegExp(task.slice(-8)));
    await card.getByRole('button', { name: /^Replay/ }).click();
    await until('the honest result', async () => /refused again/.test(await page.locator('#replay-result').textContent()));
    const result = await page.locator('#replay-result').textContent();
    assert.doesNotMatch(result, /Published|Resolved/);
    assert.match(result, /ERR_PUBSUB_FORBIDDEN/);
    await page.locator('#replay-result').getByRole('button', { name: /Show the new dead letter/ }).click();
    const replacing = page.locator('#dead-letters-list article', { hasText: 'its replay was refused again' });
    await replacing.first().waitFor();
    const newId = await replacing.first().getAttribute('data-letter');
    assert.notEqual(newId, letterId);
    assert.match(await replacing.first().textContent(), new RegExp(`Replaces${letterId.slice(-8)}`));
    letterId = newId;
    await shot('07a-refused-again');
  });

  await step('the held view lists the held task with its topic, reason and waiting events', async () => {
    await page.getByRole('link', { name: /^Held/ }).click();
    await page.locator('#h-held:focus').waitFor();
    const row = page.locator('#held-table tbody tr', { hasText: task.slice(-8) });
    await row.waitFor();
    const text = await row.textContent();
    assert.match(text, /reminders/);
    assert.match(text, /ERR_PUBSUB_FORBIDDEN/);
    await until('the held badge', async () => (await page.locator('#held-count').textContent()) === '1');
    await shot('07b-held');
  });

  await step('after the sidecar accepts the topic again, one click replays it and it is published', async () => {
    await sink('POST', '/test/allow?topic=reminders');
    await page.getByRole('link', { name: /Dead letters/ }).click();
    const card = page.locator(`#dead-letters-list article[data-letter="${letterId}"]`);
    await card.getByRole('button', { name: /^Replay/ }).click();
    await until('the replay result', async () => /Published/.test(await page.locator('#replay-result').textContent()));
    await until('the reminder at the sidecar', async () => {
      const published = await sink('GET', '/test/published');
      return published.some((e) => e.type === 'reminder.scheduled' && e.subject === task);
    });
    await page.locator('#dead-letters-list', { hasText: 'No open dead letters' }).waitFor();
    await until('the focus on the result, not lost with the card', async () =>
      (await page.evaluate(() => document.activeElement.id)) === 'replay-result');
    await page.getByRole('link', { name: /^Held/ }).click();
    await page.locator('#held-table', { hasText: 'No task is held' }).waitFor();
    await shot('07-replayed');
  });

  await step('the replayed envelope shows its whole delivery history: two refusals, two letters, the publish', async () => {
    await page.getByRole('link', { name: 'Envelopes' }).click();
    await page.getByLabel('Task id').fill(task);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const row = page.locator('#envelopes-table tbody tr', { hasText: 'reminder.scheduled' });
    await row.getByRole('button', { name: /^Open reminder\.scheduled/ }).click();
    await page.locator('#envelope-detail').waitFor();
    const attempts = page.locator('#envelope-attempts tbody tr');
    await until('three attempts', async () => (await attempts.count()) === 3);
    for (const i of [0, 1]) {
      const text = await attempts.nth(i).textContent();
      assert.match(text, /parked/);
      assert.match(text, /403/);
      assert.match(text, /ERR_PUBSUB_FORBIDDEN/);
      assert.match(text, /relay-/);
    }
    assert.match(await attempts.nth(2).textContent(), /published.*204/);
    const letters = await page.locator('#envelope-letters').textContent();
    assert.equal((letters.match(/replayed/g) || []).length, 2, letters);
    assert.match(letters, /whose replay was refused again/);
    await shot('07e-history');
    await page.getByRole('button', { name: 'Close' }).click();
    await page.getByLabel('Task id').fill('');
  });

  await step('letters that failed alike are one group, replayed all at once after one confirmation', async () => {
    await sink('POST', '/test/forbid?topic=reminders');
    const tasks = [];
    for (let i = 0; i < 4; i += 1) {
      const response = await fetch(`${BASE}/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${USER_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: `plant ${i}`, due_date: '2026-03-02T09:00:00Z' }),
      });
      tasks.push((await response.json()).id);
    }
    await page.getByRole('link', { name: /Dead letters/ }).click();
    await until('the group of four', async () => /^4/.test((await page.locator('#letter-groups li').first().textContent()) || ''));
    await page.locator('#letter-groups li').first().getByRole('button', { name: /Show only/ }).click();
    await until('the count', async () => /of 4 matching/.test(await page.locator('#letters-count').textContent()));
    await page.getByRole('button', { name: 'Replay all 4 matching' }).click();
    assert.match(await page.locator('#letters-confirm').textContent(), /Replay all 4 open dead letter\(s\) matching refused publishes, mapper default, topic reminders/);
    await shot('07c-confirm');
    await page.locator('#letters-confirm').getByRole('button', { name: 'Replay 4' }).click();
    await until('the results', async () => /0 published or mapped, 4 refused again/.test(await page.locator('#replay-result').textContent()), 60_000);
    await sink('POST', '/test/allow?topic=reminders');
    await until('the replaced letters', async () => /of 4 matching/.test(await page.locator('#letters-count').textContent()));
    await page.getByRole('button', { name: 'Replay all 4 matching' }).click();
    await page.locator('#letters-confirm').getByRole('button', { name: 'Replay 4' }).click();
    await until('the results', async () => /4 published or mapped, 0 refused again/.test(await page.locator('#replay-result').textContent()), 60_000);
    const published = await sink('GET', '/test/published');
    for (const t of tasks) assert.ok(published.some((e) => e.type === 'reminder.scheduled' && e.subject === t), t);
    await page.getByRole('button', { name: 'Any reason' }).click();
    await shot('07d-replayed-all');
  });

  await step('the flow view shows the counts, the lag and a chart, live', async () => {
    await page.getByRole('link', { name: 'Flow' }).click();
    await until('a published count', async () => Number(await page.locator('#stat-published').textContent()) >= 3);
    await until('a chart', async () => (await page.locator('#chart-pending polygon').count()) === 1);
    assert.match(await page.locator('#live-status').textContent(), /Live/);
    await shot('08-flow');
  });

  await step('an outage reads as one in the header and on Flow, with the error and since when, then clears', async () => {
    await until('a healthy header', async () => /Delivery OK/.test(await page.locator('#health-summary').textContent()));
    await sink('POST', '/test/down');
    const response = await fetch(`${BASE}/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${USER_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'during the outage' }),
    });
    assert.equal(response.status, 201);
    await until('the header to say the sidecar is down', async () =>
      /Sidecar not ready since \d/.test(await page.locator('#health-summary').textContent()));
    assert.match(await page.locator('#health-summary').getAttribute('class'), /\bbad\b/);
    await until('the failing publish on Flow', async () =>
      /ERR_PUBSUB_PUBLISH_MESSAGE/.test(await page.locator('#health-error').textContent()));
    assert.match(await page.locator('#health-sidecar').textContent(), /NOT READY since/);
    await until('the retries waiting', async () => /\d+ envelope\(s\); next retry/.test(await page.locator('#health-retries').textContent()));
    assert.match(await page.locator('#health-error').textContent(), /HTTP 500 .*broker not available/);
    await shot('08b-flow-outage');
    await sink('POST', '/test/up');
    await until('the header to clear', async () => /Delivery OK/.test(await page.locator('#health-summary').textContent()));
    assert.match(await page.locator('#health-sidecar').textContent(), /ready since/);
    assert.match(await page.locator('#health-retries').textContent(), /^none$/);
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
    const value = await page.locator('#pg-recent option', { hasText: `task ${task.slice(-8)}` }).first().getAttribute('value');
    await page.locator('#pg-recent').selectOption(value);
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

  await step('a deep link survives the login: the console opens on the view asked for', async () => {
    await page.goto(`${BASE}/console#held`);
    await page.waitForURL(`${BASE}/console/login#held`);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${BASE}/console#held`);
    await page.locator('#view-held').waitFor();
    assert.equal(await page.locator('#view-mappers').isHidden(), true);
  });

  await step('no Content-Security-Policy violation or script error happened', async () => {
    assert.deepEqual(violations, []);
  });
});
