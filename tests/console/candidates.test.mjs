// The console's Candidates page in a real browser: Debian's Chromium driven by playwright-core.
// Started by tests/tests/e2e/console/candidates.rs with a running host that has already
// mapped some tasks; everything it needs comes from the environment:
//   CONSOLE_URL  ADMIN_TOKEN  USER_TOKEN  SCREENSHOT_DIR  PAKAURA_TOOLS_NODE_MODULES
//   (playwright-core)  PAKAURA_CHROMIUM (the browser), and what the host holds:
//   CANDIDATE_WASM  a build of the live mapper that renames one field of one event type
//                   (and says so in that type's schema: a breaking change)
//   CHANGED_TYPE    that event type;  CHANGED_PATHS  the paths the rename changes (a,b)
//   MUTATIONS       the mutations stored before the browser starts;  CHANGED  how many of
//                   them emit CHANGED_TYPE
// Uploads the candidate, diffs it over the last hour, shadows it, promotes it and rolls it
// back, checking what the page shows against the admin API. Exits non-zero on the first
// failed step, with a screenshot of the moment.

import assert from 'node:assert/strict';
import path from 'node:path';

import { env, runInBrowser, until } from './harness.mjs';

const BASE = env('CONSOLE_URL').replace(/\/$/, '');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const USER_TOKEN = env('USER_TOKEN');
const CANDIDATE = env('CANDIDATE_WASM');
const CHANGED_TYPE = env('CHANGED_TYPE');
const CHANGED_PATHS = env('CHANGED_PATHS').split(',').sort();
const MUTATIONS = Number(env('MUTATIONS'));
const CHANGED = Number(env('CHANGED'));

let page;

/** The admin API with the admin token (not the browser's session). */
async function admin(method, route, body) {
  const response = await fetch(`${BASE}${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function adminOk(route) {
  const { status, body } = await admin('GET', route);
  assert.equal(status, 200, `GET ${route}: ${status} ${JSON.stringify(body)}`);
  return body;
}

async function createTask(title) {
  const response = await fetch(`${BASE}/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${USER_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title }),
  });
  assert.equal(response.status, 201);
}

/** The numbers a report's summary shows in the page, by their `data-stat` names. */
async function shownStats(container) {
  return page.locator(`${container} [data-stat]`).evaluateAll((nodes) =>
    Object.fromEntries(nodes.map((n) => [n.dataset.stat, Number(n.textContent)])));
}

/** The same numbers in a report the API gave. */
function reportStats(r) {
  const stats = {
    mutations: r.mutations, identical: r.identical, changed: r.changed, failed: r.failed, live_failed: r.live_failed,
  };
  for (const k of ['same', 'changed', 'added', 'removed']) stats[`events.${k}`] = r.events[k];
  return stats;
}

/** The items of a list answer: `{key: [...]}` (as the other admin lists) or a bare array. */
function listOf(body, key) {
  return Array.isArray(body) ? body : body[key];
}

async function liveMappers() {
  return (await adminOk('/admin/mappers')).mappers;
}

await runInBrowser('candidates browser test', { width: 1280, height: 900 }, async ({ page: opened, context, violations, step, shot }) => {
  page = opened;

  const [live] = await liveMappers();
  let candidate;

  await step('the Candidates page opens from the navigation, with no candidate and no release yet', async () => {
    await page.goto(`${BASE}/console/login`);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${BASE}/console`);
    await page.getByRole('link', { name: 'Candidates' }).click();
    await page.locator('#h-candidates:focus').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Candidates' }).getAttribute('aria-current'), 'page');
    await page.locator('#candidates-table', { hasText: 'No candidate uploaded yet' }).waitFor();
    await page.locator('#releases-table', { hasText: 'No promotion yet' }).waitFor();
    await until('the shadow status', async () => /No shadow run yet/.test(await page.locator('#shadow-status').textContent()));
  });

  await step('an uploaded component is listed with its digest and what it replaces', async () => {
    await page.getByLabel(/Candidate component/).setInputFiles(CANDIDATE);
    await page.getByRole('button', { name: 'Upload candidate' }).click();
    await until('the upload', async () => /Uploaded/.test(await page.locator('#cand-upload-status').textContent()), 120_000);
    const listed = listOf(await adminOk('/admin/candidates'), 'candidates');
    assert.equal(listed.length, 1, JSON.stringify(listed));
    [candidate] = listed;
    assert.equal(candidate.file, path.basename(CANDIDATE), 'the file name is the ?name= label');
    assert.equal(candidate.name, live.name, 'the candidate is a build of the live mapper');
    assert.equal(candidate.version, live.version, 'of the same version: only the renamed field differs');
    assert.deepEqual(candidate.replaces, { version: live.version, sha256: live.sha256 });
    const row = page.locator(`#candidates-table tr[data-candidate="${candidate.id}"]`);
    const text = await row.textContent();
    assert.match(text, new RegExp(`${candidate.name}\\s*${candidate.version.replaceAll('.', '\\.')}`));
    assert.ok(text.includes(candidate.sha256.slice(0, 12)), text);
    assert.ok(text.includes(`${live.version} (sha256 ${live.sha256.slice(0, 12)}`), text);
    assert.ok(text.includes(path.basename(CANDIDATE)), text);
    await page.locator('#cand-detail').waitFor();
    assert.match(await page.locator('#h-cand').textContent(), new RegExp(`Candidate ${candidate.name}`));
    await shot('c01-uploaded');
  });

  let report;
  await step('a history diff over the last hour runs to done and its summary is the API\'s', async () => {
    await page.getByRole('button', { name: 'Last hour' }).click();
    assert.notEqual(await page.getByLabel('Mutations from').inputValue(), '');
    await page.getByRole('button', { name: 'Run diff' }).click();
    await until('the diff to finish', async () => /^Done:/.test(await page.locator('#diff-status').textContent()), 120_000);
    const job = await adminOk(`/admin/candidates/${candidate.id}/diff`);
    assert.equal(job.state, 'done', JSON.stringify(job));
    report = job.report;
    assert.equal(report.mutations, MUTATIONS, 'every mutation of the last hour');
    assert.ok(report.window.since, 'the window has a start');
    assert.ok(Date.now() - Date.parse(report.window.since) < 3_700_000, `since ${report.window.since} is about an hour ago`);
    assert.ok(Date.now() - Date.parse(report.window.since) > 3_500_000, `since ${report.window.since} is about an hour ago`);
    assert.equal(report.changed, CHANGED, `the mutations that emit ${CHANGED_TYPE} changed`);
    assert.equal(report.identical, MUTATIONS - CHANGED, 'the others are identical');
    assert.equal(report.failed, 0);
    assert.deepEqual([report.events.changed, report.events.added, report.events.removed], [CHANGED, 0, 0]);
    assert.deepEqual(await shownStats('#diff-report'), reportStats(report));
    assert.equal(await page.locator('#diff-progress-text').textContent(), `${job.done} of ${job.total} mutation(s)`);
    assert.equal(await page.locator('#diff-cancel').isHidden(), true, 'nothing to cancel once done');
    const rows = await page.locator('#diff-by-type tbody tr').count();
    assert.equal(rows, report.by_type.length);
    await shot('c02-diff');
  });

  await step('a changed sample shows the field path, before → after, and both events side by side', async () => {
    const sample = report.samples.changed[0];
    assert.ok(sample, 'a changed sample');
    const diff = sample.events.find((e) => e.result === 'changed');
    assert.equal(diff.event_type, CHANGED_TYPE);
    assert.deepEqual(diff.changes.map((c) => c.path).sort(), CHANGED_PATHS, 'the rename and nothing else');
    const change = diff.changes[0];
    const card = page.locator(`#diff-samples details[data-mutation="${sample.mutation_id}"]`).first();
    assert.equal(await card.getAttribute('open'), '', 'the first sample is open');
    const row = card.locator(`tr[data-path="${change.path}"]`).first();
    await row.waitFor();
    assert.equal(await row.locator('.path').textContent(), change.path);
    const before = change.before === undefined ? '(absent)' : JSON.stringify(change.before);
    const after = change.after === undefined ? '(absent)' : JSON.stringify(change.after);
    assert.equal(await row.locator('.before').textContent(), before);
    assert.equal(await row.locator('.after').textContent(), after);
    const section = card.locator('.event-diff', { has: page.locator(`tr[data-path="${change.path}"]`) }).first();
    assert.deepEqual(JSON.parse(await section.locator('.live-json').textContent()), diff.live);
    assert.deepEqual(JSON.parse(await section.locator('.candidate-json').textContent()), diff.candidate);
    const [a, b] = await Promise.all([section.locator('.live-json').boundingBox(), section.locator('.candidate-json').boundingBox()]);
    assert.ok(b.x > a.x + a.width - 1, `side by side: ${JSON.stringify({ a, b })}`);
    await card.scrollIntoViewIfNeeded();
    await shot('c03-sample');
  });

  await step('a shadow run compares what the relay maps and its counts rise as tasks are created', async () => {
    await page.getByRole('button', { name: 'Start shadow run' }).click();
    await until('the shadow run', async () => /^Shadowing/.test(await page.locator('#shadow-status').textContent()));
    assert.ok((await page.locator('#shadow-status').textContent()).includes(candidate.sha256.slice(0, 12)));
    await page.getByRole('button', { name: 'Stop shadow run' }).waitFor();
    for (let i = 0; i < 5; i += 1) await createTask(`shadowed ${i}`);
    const seen = await until('the shadow counts to rise (polled by the page)', async () => {
      const stats = await shownStats('#shadow-report');
      return stats.mutations >= 5 ? stats : null;
    });
    assert.ok(seen.offered >= 5, JSON.stringify(seen));
    assert.equal(seen.dropped, 0, JSON.stringify(seen));
    assert.deepEqual([seen.mutations, seen.changed, seen.failed], [5, 5, 0], 'five new tasks, each one changed');
    await page.locator('#shadow-samples details', { hasText: CHANGED_TYPE }).first().waitFor();
    await shot('c04-shadow');
    await page.getByRole('button', { name: 'Stop shadow run' }).click();
    await until('the stop', async () => /^Stopped/.test(await page.locator('#shadow-status').textContent()));
    const stopped = await adminOk('/admin/shadow');
    assert.equal(stopped.running, false);
    assert.equal(stopped.candidate_id, candidate.id);
    await until('the page to show the final counts', async () => {
      const stats = await shownStats('#shadow-report');
      return stats.offered === stopped.offered && stats.mutations === stopped.mutations && stats.changed === stopped.changed;
    });
  });

  await step('promoting asks first, shows the breaking schema change, and only "promote anyway" takes it live', async () => {
    await page.getByRole('button', { name: 'Promote…' }).click();
    const confirm = page.locator('#promote-confirm');
    assert.match(await confirm.textContent(), new RegExp(`Promote ${candidate.name} ${candidate.version.replaceAll('.', '\\.')}`));
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await until('the cancellation', async () => /cancelled/.test(await page.locator('#promote-result').textContent()));
    assert.equal((await liveMappers()).find((m) => m.name === live.name).sha256, live.sha256, 'nothing changed');
    await page.getByRole('button', { name: 'Promote…' }).click();
    await confirm.getByRole('button', { name: 'Promote now' }).click();
    // The rename is in the payload schema too: the host refuses it (409) and the page
    // shows the problem's detail, naming the changed type, before anything goes live.
    await confirm.getByRole('button', { name: 'Promote anyway' }).waitFor();
    assert.match(await confirm.textContent(), /would break consumers/);
    assert.ok((await page.locator('#promote-breaking-detail').textContent()).includes(CHANGED_TYPE));
    assert.equal((await liveMappers()).find((m) => m.name === live.name).sha256, live.sha256, 'refused: nothing changed');
    await shot('c05a-breaking');
    await confirm.getByRole('button', { name: 'Promote anyway' }).click();
    await until('the promotion', async () => /^Promoted/.test(await page.locator('#promote-result').textContent()));
    await until('the candidate in the live set', async () =>
      (await liveMappers()).some((m) => m.sha256 === candidate.sha256));
    await until('the release in the list', async () =>
      (await page.locator('#releases-table tbody tr[data-action="promote"]').count()) === 1);
    await shot('c05-promoted');
  });

  await step('rolling back asks first, then the previous component is live again', async () => {
    await page.getByRole('button', { name: 'Roll back…' }).click();
    const confirm = page.locator('#rollback-confirm');
    assert.match(await confirm.textContent(), /Roll back release \d+ \(promote of/);
    await confirm.getByRole('button', { name: 'Roll back now' }).click();
    await until('the rollback', async () => /^Rolled back/.test(await page.locator('#rollback-result').textContent()));
    await until('the previous component in the live set', async () =>
      (await liveMappers()).find((m) => m.name === live.name)?.sha256 === live.sha256);
    const rows = page.locator('#releases-table tbody tr');
    await until('both releases listed', async () => (await rows.count()) === 2);
    assert.equal(await rows.nth(0).getAttribute('data-action'), 'rollback');
    assert.equal(await rows.nth(1).getAttribute('data-action'), 'promote');
    assert.equal(await rows.nth(1).locator(`[data-sha="${candidate.sha256}"]`).count(), 1, 'the promotion went to the candidate');
    assert.equal(await rows.nth(1).locator(`[data-sha="${live.sha256}"]`).count(), 1, 'from the live component');
    const releases = listOf(await adminOk('/admin/mappers/releases'), 'releases');
    assert.deepEqual(releases.map((r) => r.action), ['rollback', 'promote']);
    assert.equal(await rows.nth(0).locator('td').first().textContent(), String(releases[0].generation));
    await shot('c06-rolled-back');
  });

  await step('no Content-Security-Policy violation or script error happened', async () => {
    assert.deepEqual(violations, []);
  });
});
