// Pakaura console: a framework-free page over the documented admin API (/admin/*).
// No build step, no dependencies. Every value from the server is inserted as text
// (textContent), never as HTML. State-changing requests carry the session's CSRF
// token (from the page's <meta>); the session itself is an HttpOnly cookie that
// scripts cannot read.

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const VIEWS = ['mappers', 'candidates', 'flow', 'envelopes', 'dead-letters', 'held', 'playground'];
const HISTORY = 90;

// ---------------------------------------------------------------- helpers

/** A problem document (RFC 9457) the admin API answered with. */
class Problem extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.status = status;
    this.field = field;
  }
}

/** Calls the admin API; resolves to the parsed JSON, rejects with a Problem. */
async function api(path, { method = 'GET', json, body, contentType } = {}) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = CSRF;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (contentType) {
    headers['content-type'] = contentType;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  } catch (e) {
    throw new Problem(0, `The host could not be reached (${e.message}).`);
  }
  if (response.status === 401) {
    // The fragment survives the login (login.js copies it into the form).
    window.location.assign(`/console/login${location.hash}`);
    throw new Problem(401, 'The session has ended; log in again.');
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    throw new Problem(response.status, detail, data && data.field);
  }
  return data;
}

/** Builds an element: el('td', {class: 'num'}, 'text', childNode, ...). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name === 'text') node.textContent = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector) => document.querySelector(selector);

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function seconds(s) {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${(s / 3600).toFixed(1)} h`;
}

function micros(us) {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`;
}

/** An id's last eight characters: random in every id (task and mutation ids begin with
 * the time they were made), and what the id searches match. */
function short(id) {
  return id ? String(id).slice(-8) : '–';
}

/** Shows `message` in the status region `node`: ok, bad or plain. */
function say(node, kind, title, detail) {
  node.className = `result ${kind || ''}`;
  node.replaceChildren(el('strong', { text: title }), detail ? ` ${detail}` : '');
}

/**
 * Runs `render`, which replaces the rows of `container`, keeping the keyboard focus on
 * the same control of the same row (rows carry `attr`), so live updates never throw a
 * keyboard user back to the top of the page.
 */
function keepFocus(container, attr, render) {
  const controls = (row) => [...row.querySelectorAll('button, summary, pre')];
  const active = document.activeElement;
  const row = active && container.contains(active) ? active.closest(`[${attr}]`) : null;
  const key = row ? row.getAttribute(attr) : null;
  const index = row ? controls(row).indexOf(active) : -1;
  render();
  if (key === null) return;
  const again = container.querySelector(`[${attr}="${CSS.escape(key)}"]`);
  const target = again ? controls(again)[index] : null;
  if (target) target.focus();
}

/** Disables `button` while `work` runs. */
async function busy(button, work) {
  button.disabled = true;
  try { return await work(); } finally { button.disabled = false; }
}

// ---------------------------------------------------------------- views

const loaders = {};
let current = null;

function show(view, { focus = true } = {}) {
  if (!VIEWS.includes(view)) view = 'mappers';
  current = view;
  for (const section of document.querySelectorAll('[data-view]')) {
    section.hidden = section.dataset.view !== view;
  }
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${$(`#view-${view} h1`).textContent} · Pakaura console`;
  if (focus) $(`#view-${view} h1`).focus();
  loaders[view]?.();
}

window.addEventListener('hashchange', () => {
  // Only view names route; other fragments (the skip link's #main) are plain anchors.
  const view = location.hash.slice(1);
  if (VIEWS.includes(view)) show(view);
});

// ---------------------------------------------------------------- mappers

loaders.mappers = async () => {
  const tbody = $('#mappers-table tbody');
  loadReloadHistory();
  try {
    const { mappers } = await api('/admin/mappers');
    renderMappers(tbody, mappers);
  } catch (e) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'empty', text: e.message })));
  }
};

/** The published schema of event type `type` of mapper `m`. */
function schemaPath(m, type) {
  return ['schemas', m.name, m.version, type].map(encodeURIComponent).join('/').replace(/^/, '/');
}

function renderMappers(tbody, mappers) {
  tbody.replaceChildren(...mappers.map((m, i) => {
    const failures = Object.entries(m.stats.failures).filter(([, n]) => n > 0);
    const failed = failures.reduce((sum, [, n]) => sum + n, 0);
    return el('tr', { 'data-mapper': m.name },
      el('td', { class: 'num', text: i + 1 }),
      el('td', {},
        el('strong', { text: m.name }), ` ${m.version}`,
        el('span', { class: 'sub mono', text: m.file }),
        el('span', { class: 'sub mono', title: 'SHA-256', text: `sha256 ${m.sha256}` }),
        el('span', { class: 'sub' }, m.event_types.length === 0 ? 'declares no schemas'
          : ['schemas: ', m.event_types.flatMap((t, j) => [j ? ', ' : '',
            el('a', { class: 'mono', href: schemaPath(m, t), text: t })])])),
      el('td', { text: m.topics.join(', ') }),
      el('td', { class: 'num', text: m.stats.calls }),
      el('td', {}, failed === 0 ? 'none'
        : el('ul', { class: 'plain' }, failures.map(([k, n]) => el('li', { text: `${k.replaceAll('_', ' ')}: ${n}` })))),
      el('td', { class: 'num', text: m.stats.calls ? micros(m.stats.mean_call_micros) : '–' }),
      el('td', { text: when(m.loaded_at) }));
  }));
}

function versionText(m) {
  return `${m.name} ${m.version} (sha256 ${m.sha256.slice(0, 12)}…, topics ${m.topics.join(', ') || 'none'})`;
}

/** What a preview says, as list items. */
function previewItems(p) {
  const c = p.changes;
  const items = [];
  for (const m of c.added) items.push(`Added: ${versionText(m)}.`);
  for (const m of c.removed) items.push(`Removed: ${versionText(m)}.`);
  for (const m of c.changed) items.push(`Changed: ${m.before.name} ${m.before.version} → ${m.after.version} (sha256 ${m.before.sha256.slice(0, 12)}… → ${m.after.sha256.slice(0, 12)}…).`);
  if (c.reordered) items.push('The call order changes.');
  if (c.unchanged.length) items.push(`Unchanged, keeping their counters: ${c.unchanged.join(', ')}.`);
  const d = p.dry_run;
  items.push(`Dry run over the latest ${d.mutations} mutation(s): the live set fails ${d.live_failures}, the new set ${d.new_failures}.`);
  for (const f of d.newly_failing) items.push(`Would fail: mutation ${short(f.mutation_id)} (${f.mapper ?? 'host'}): ${f.reason}`);
  if (d.new_topics.length) items.push(`New topics published: ${d.new_topics.join(', ')}.`);
  if (d.dropped_topics.length) items.push(`Topics no longer published: ${d.dropped_topics.join(', ')}.`);
  return items;
}

$('#reload-mappers').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const out = $('#reload-result');
  const panel = $('#reload-confirm');
  say(out, '', 'Checking what a reload would change…', 'The new set is loaded apart and run over the latest mutations; nothing goes live yet.');
  let preview;
  try {
    preview = await api('/admin/mappers/reload/preview', { method: 'POST' });
  } catch (e) {
    say(out, 'bad', 'A reload would refuse this set; the live set stays.', e.message);
    await loadReloadHistory();
    out.focus();
    return;
  }
  out.replaceChildren();
  const risky = preview.dry_run.newly_failing.length > 0 || preview.dry_run.new_failures > preview.dry_run.live_failures;
  const title = preview.files_differ
    ? `Reload: ${preview.changes.added.length} added, ${preview.changes.removed.length} removed, ${preview.changes.changed.length} changed${risky ? ' — the new set fails mutations the live one maps' : ''}?`
    : 'The files on disk are the live set: a reload changes nothing (counters are kept). Reload anyway?';
  const answer = await new Promise((resolve) => {
    const done = (v) => { panel.replaceChildren(); resolve(v); };
    panel.replaceChildren(el('div', { class: `confirm${risky ? ' risky' : ''}`, role: 'group', 'aria-labelledby': 'reload-confirm-title' },
      el('p', { id: 'reload-confirm-title' }, el('strong', { text: title })),
      el('ul', {}, previewItems(preview).map((t) => el('li', { text: t }))),
      el('div', { class: 'actions' },
        el('button', { type: 'button', text: 'Reload now', onclick: () => done(true) }),
        el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => done(false) }))));
    panel.querySelector('button').focus();
  });
  if (!answer) {
    say(out, '', 'Reload cancelled; nothing changed.');
    out.focus();
    return;
  }
  say(out, '', 'Reloading…');
  try {
    const { report } = await api('/admin/mappers/reload', { method: 'POST' });
    const c = report.changes;
    const what = c.added.length + c.removed.length + c.changed.length === 0 && !c.reordered ? 'nothing changed' : previewItems({ changes: { ...c, unchanged: [] }, dry_run: { mutations: 0, live_failures: 0, new_failures: 0, newly_failing: [], new_topics: [], dropped_topics: [] } }).slice(0, -1).join(' ');
    say(out, 'ok', 'Reloaded:', `${what}${c.unchanged.length ? ` ${c.unchanged.length} unchanged mapper(s) kept their counters.` : ''}`);
    renderMappers($('#mappers-table tbody'), report.mappers);
  } catch (e) {
    say(out, 'bad', 'Reload refused; the previous set stays live.', e.message);
  }
  await loadReloadHistory();
  out.focus();
}));

async function loadReloadHistory() {
  try {
    const { reloads } = await api('/admin/mappers/reloads');
    $('#reload-history').replaceChildren(...(reloads.length ? reloads.map((r) => el('li', {},
      el('span', { class: `state state-${r.outcome === 'applied' ? 'published' : 'dead'}`, text: r.outcome }),
      ` ${when(r.at)} · ${r.source} · ${r.summary}`)) : [el('li', { class: 'hint', text: 'No reload since this replica started.' })]));
  } catch {
    /* the history is a convenience */
  }
}

// ---------------------------------------------------------------- flow

const series = [];
let lastSnapshot = null;

function startFlow() {
  const state = $('#live-state');
  const time = $('#live-time');
  const source = new EventSource('/admin/flow/stream');
  source.addEventListener('snapshot', (event) => {
    const snapshot = JSON.parse(event.data);
    series.push(snapshot);
    while (series.length > HISTORY) series.shift();
    // Only a change of state is announced (a live region); the time is plain text.
    $('#live-status').className = 'live ok';
    setText(state, 'Live');
    time.textContent = `· ${new Date(snapshot.at).toLocaleTimeString()}`;
    renderFlow(snapshot);
    renderHealth(snapshot.health, snapshot.error);
    react(lastSnapshot, snapshot);
    lastSnapshot = snapshot;
  });
  source.addEventListener('error', () => {
    $('#live-status').className = 'live bad';
    setText(state, 'Reconnecting…');
    // EventSource retries by itself; a lapsed session is found by an ordinary call
    // (which redirects to the login form on 401).
    api('/admin/mappers').catch(() => {});
  });
}

/** Sets `node`'s text only when it changes, so live regions speak only of changes. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : '–';
}

/** The publisher's failure as one line: time, status, Dapr code, message. */
function failureText(f) {
  const status = f.status === null || f.status === undefined ? 'no answer' : `HTTP ${f.status}`;
  // The relay's error text usually starts with the status and code already.
  const said = f.error.startsWith('HTTP ') || (f.code && f.error.includes(f.code));
  const head = said ? '' : `${status}${f.code ? ` ${f.code}` : ''} · `;
  return `${clock(f.at)} · ${head}${f.error} (relay ${f.relay}, ${f.outcome === 'parked' ? 'parked' : 'will retry'})`;
}

/**
 * The header's one line and the Flow page's health facts. The header names the worst
 * thing first: the sidecar, the relay, failing publishes, holds.
 */
function renderHealth(h, dbError) {
  if (!h) return;
  const p = h.publisher;
  const d = h.delivery;
  const failing = d && d.retrying > 0 && d.last_failure;
  let kind = 'ok';
  let line = p.status === 'off' ? 'Publishing off' : 'Delivery OK';
  if (h.holds.held_tasks > 0) { kind = 'warn'; line = 'Tasks held'; }
  if (failing) { kind = 'warn'; line = `Publishes retrying: ${d.last_failure.code || (d.last_failure.status ? `HTTP ${d.last_failure.status}` : 'no answer')}`; }
  if (h.relay.status !== 'running') {
    kind = 'bad';
    line = h.relay.status === 'stalled' ? `Relay stalled (${h.relay.stalled_stage} stage)` : 'Relay restarting';
  }
  if (p.status === 'not_ready') { kind = 'bad'; line = `Sidecar not ready since ${clock(p.since)}`; }
  if (dbError) { kind = 'bad'; line = 'Database unreachable'; }
  $('#health-summary').className = `health ${kind}`;
  setText($('#health-link'), line);

  const fact = (id, text, cls) => {
    const node = $(`#health-${id}`);
    setText(node, text);
    node.className = cls || '';
  };
  const sidecar = {
    ready: [`ready since ${when(p.since)}`, 'ok'],
    not_ready: [`NOT READY since ${when(p.since)} (last checked ${clock(p.checked_at)}); events wait`, 'bad'],
    unknown: ['not checked yet', ''],
    off: ['publishing is off (PUBLISHER=none)', ''],
  }[p.status] || [p.status, ''];
  fact('sidecar', `${p.system}: ${sidecar[0]}`, sidecar[1]);
  const r = h.relay;
  const restarts = r.restarts ? `; ${r.restarts} restart(s), last ${when(r.last_restart.at)}: ${r.last_restart.reason}` : '';
  const stages = r.stages.map((s) => `${s.name} ${seconds(s.idle_seconds)} ago`).join(', ');
  const relayText = {
    running: `running (stages last progressed: ${stages})`,
    stalled: `STALLED: its ${r.stalled_stage} stage made no progress; restarting`,
    restarting: 'RESTARTING',
  }[r.status] || r.status;
  fact('relay', `${relayText}${restarts}`, r.status === 'running' ? 'ok' : 'bad');
  if (!d) {
    for (const id of ['error', 'retries', 'published']) fact(id, 'the database could not be read', 'bad');
  } else {
    fact('error', d.last_failure ? failureText(d.last_failure) : 'none recorded', failing ? 'bad' : '');
    fact('retries', d.retrying ? `${d.retrying} envelope(s); next retry ${d.next_retry_at ? clock(d.next_retry_at) : 'now'}` : 'none', d.retrying ? 'bad' : '');
    fact('published', when(d.last_published_at));
  }
  const holds = h.holds;
  fact('holds', holds.held_tasks
    ? `${holds.held_tasks} task(s) held, ${holds.events_waiting} event(s) waiting behind them; oldest ${seconds(holds.oldest_seconds)}`
    : 'none', holds.held_tasks ? 'bad' : '');
}

function renderFlow(s) {
  $('#stat-outbox').textContent = s.outbox_pending;
  $('#stat-pending').textContent = s.envelopes_pending;
  $('#stat-lag').textContent = s.lag_seconds > 0 ? seconds(s.lag_seconds) : 'none';
  $('#stat-dead').textContent = s.dead_letters_open;
  $('#stat-published').textContent = s.relay.published;
  $('#stat-rate').textContent = `${s.rates.published.toFixed(1)}/s`;
  $('#stat-retried').textContent = s.relay.retried;
  $('#stat-relay').textContent = s.error ? s.error : (s.health ? s.health.relay.status : (s.relay_running ? 'running' : 'stopped'));
  const badge = $('#dead-count');
  badge.hidden = s.dead_letters_open === 0;
  badge.textContent = s.dead_letters_open;
  badge.setAttribute('aria-label', `${s.dead_letters_open} open`);
  const held = s.health ? s.health.holds.held_tasks : 0;
  const heldBadge = $('#held-count');
  heldBadge.hidden = held === 0;
  heldBadge.textContent = held;
  heldBadge.setAttribute('aria-label', `${held} held`);
  chart('rate', series.map((p) => p.rates.published), 'line', 'events per second');
  chart('pending', series.map((p) => p.outbox_pending + p.envelopes_pending), 'area', 'pending');
  $('#stat-parked').textContent = `${s.rates.parked.toFixed(1)}/s`;
  $('#stat-mapfail').textContent = `${(s.rates.mapping_failed ?? 0).toFixed(1)}/s`;
  if (s.detail) renderDetail(s.detail);
  hourPoint(s);
}

// The last hour, as the host keeps it (one point per 30 s), extended live.
let hour = [];
let hourEvery = 30;

async function loadHour() {
  try {
    const h = await api('/admin/flow/history');
    hour = h.points;
    hourEvery = h.interval_seconds;
    drawHour();
  } catch {
    /* the live charts still work */
  }
}

function hourPoint(s) {
  const last = hour[hour.length - 1];
  if (last && (new Date(s.at) - new Date(last.at)) / 1000 < hourEvery) return;
  hour.push({ at: s.at, outbox_pending: s.outbox_pending, envelopes_pending: s.envelopes_pending, rates: s.rates });
  while (hour.length > 120) hour.shift();
  drawHour();
}

function drawHour() {
  chart('hour', hour.map((p) => p.outbox_pending + p.envelopes_pending), 'area', 'pending', hourEvery, 120);
  chart('parked', hour.map((p) => p.rates.parked), 'line', 'parked per second', hourEvery, 120);
}

function renderDetail(d) {
  const rows = d.topics.map((t) => el('tr', {},
    el('td', { text: t.topic }), el('td', { class: 'num', text: t.published }),
    el('td', { class: 'num', text: t.published_rate.toFixed(2) }),
    el('td', { class: `num${t.parked ? ' bad' : ''}`, text: t.parked }),
    el('td', { class: 'num', text: t.parked_rate.toFixed(2) })));
  $('#topics-table tbody').replaceChildren(...(rows.length ? rows
    : [el('tr', {}, el('td', { colspan: 5, class: 'empty', text: 'Nothing published or parked in the last minute.' }))]));
  const o = d.oldest_pending;
  $('#flow-oldest').replaceChildren(o
    ? el('span', {}, `${o.event_type} on ${o.topic}, mapped ${when(o.created_at)}, ${o.attempts} attempt(s)${o.last_error ? ` (${o.last_error})` : ''}; task `,
      idButton('Envelopes of task', o.task_id, () => showTask(o.task_id)))
    : 'none waiting');
  $('#flow-holds').replaceChildren(...(d.longest_holds.length ? d.longest_holds.map((h) => el('li', {},
    idButton('Envelopes of task', h.task_id, () => showTask(h.task_id)),
    ` on ${h.topic} since ${when(h.since)}; ${h.waiting} event(s) waiting`)) : [el('li', { text: 'none' })]));
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** Draws `values` (oldest first) into the 600×140 chart `name`, with its scale. */
function chart(name, values, kind, unit, every = 2, capacity = HISTORY) {
  const target = $(`#chart-${name}`);
  const width = 600;
  const height = 140;
  const max = Math.max(1, ...values);
  const step = width / (capacity - 1);
  const offset = width - (values.length - 1) * step;
  const points = values.map((v, i) => [offset + i * step, height - 4 - (v / max) * (height - 12)]);
  const children = [0.25, 0.5, 0.75].map((f) => svg('line', { class: 'grid', x1: 0, x2: width, y1: height * f, y2: height * f }));
  if (points.length > 0) {
    const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    if (kind === 'area') {
      children.push(svg('polygon', { class: 'area-b', points: `${points[0][0]},${height} ${line} ${width},${height}` }));
    } else {
      children.push(svg('polyline', { class: 'line-a', points: line }));
    }
  }
  target.replaceChildren(...children);
  const latest = values.length ? values[values.length - 1] : 0;
  const number = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
  const span = `last ${seconds(Math.max(0, values.length - 1) * every)}`;
  $(`#scale-${name}-span`).textContent = span;
  $(`#scale-${name}-max`).textContent = `top of scale ${number(max)}`;
  target.setAttribute('aria-label', `Latest ${number(latest)} ${unit}; highest ${number(max)} over the ${span}`);
}

/** Refreshes the open list when the flow says something changed (no polling). */
function react(before, after) {
  if (!before) return;
  const moved = (k) => JSON.stringify(k(before)) !== JSON.stringify(k(after));
  const activity = (s) => [s.relay, s.outbox_pending, s.envelopes_pending, s.dead_letters_open];
  if (current === 'envelopes' && $('#f-live').checked && moved(activity)) loadEnvelopes({ quiet: true });
  if (current === 'dead-letters' && moved((s) => [s.dead_letters_open, s.relay.parked, s.relay.mapping_failed])) loaders['dead-letters']();
  if (current === 'mappers' && moved((s) => [s.relay.mapped, s.relay.mapping_failed])) loaders.mappers();
  if (current === 'held' && moved((s) => [s.health && s.health.holds, s.relay.published])) loaders.held();
}

// ---------------------------------------------------------------- envelopes

let envelopesLoading = false;
let openEnvelope = null;
let envelopesOffset = 0;

function envelopeQuery() {
  const form = $('#envelope-filter');
  const params = new URLSearchParams();
  for (const name of ['state', 'type_prefix', 'topic', 'task_id', 'id', 'mutation_id', 'correlation_id', 'user_id', 'limit']) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ['since', 'until']) {
    const value = form.elements[name].value;
    if (value) {
      const t = new Date(value);
      if (!Number.isNaN(t.getTime())) params.set(name, t.toISOString());
    }
  }
  if (envelopesOffset) params.set('offset', String(envelopesOffset));
  return params.toString();
}

function pageSize() {
  const n = Number($('#f-limit').value);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : 50;
}

/** Marks the filter field a problem names (or none). */
function markField(field) {
  for (const input of document.querySelectorAll('#envelope-filter [aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    input.setAttribute('aria-describedby', input.dataset.describedby || '');
    if (!input.getAttribute('aria-describedby')) input.removeAttribute('aria-describedby');
  }
  const names = { type: 'type_prefix' };
  const input = field ? $('#envelope-filter').elements[names[field] || field] : null;
  if (input) {
    input.dataset.describedby = input.getAttribute('aria-describedby') || '';
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', `envelopes-status ${input.dataset.describedby}`.trim());
  }
  return input;
}

async function loadEnvelopes({ quiet = false } = {}) {
  if (envelopesLoading) return;
  envelopesLoading = true;
  const status = $('#envelopes-status');
  try {
    const body = await api(`/admin/envelopes?${envelopeQuery()}`);
    renderEnvelopes(body.envelopes);
    markField(null);
    const n = body.envelopes.length;
    // The count is plain text, not a live region: live updates must not chatter.
    $('#envelopes-count').textContent = `${n ? `Envelopes ${body.offset + 1}–${body.offset + n} of ${body.total}` : `${body.total} envelope(s)`} matching, newest first${$('#f-live').checked ? '; updating live' : ''}.`;
    $('#envelopes-prev').disabled = body.offset === 0;
    $('#envelopes-next').disabled = body.offset + n >= body.total;
    if (!quiet) status.replaceChildren();
  } catch (e) {
    // A bad filter: say which field and why, and show no rows that no longer match it.
    $('#envelopes-table tbody').replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'empty', text: 'No results: fix the filter above.' })));
    $('#envelopes-count').textContent = '';
    const input = markField(e.field);
    say(status, 'bad', input ? `${input.labels[0].textContent}:` : 'Could not list envelopes.', e.message);
    if (input && !quiet) input.focus();
  } finally {
    envelopesLoading = false;
  }
}

$('#envelopes-prev').addEventListener('click', () => {
  envelopesOffset = Math.max(0, envelopesOffset - pageSize());
  loadEnvelopes();
});
$('#envelopes-next').addEventListener('click', () => {
  envelopesOffset += pageSize();
  loadEnvelopes();
});

function renderEnvelopes(envelopes) {
  const tbody = $('#envelopes-table tbody');
  keepFocus(tbody, 'data-envelope', () => renderEnvelopeRows(tbody, envelopes));
}

function renderEnvelopeRows(tbody, envelopes) {
  if (envelopes.length === 0) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'empty', text: 'No envelopes match.' })));
    return;
  }
  tbody.replaceChildren(...envelopes.map((e) => el('tr', { 'data-envelope': e.id, class: e.id === openEnvelope ? 'selected' : null },
    el('td', { text: when(e.created_at) }),
    el('td', { class: 'mono', text: e.event_type }),
    el('td', { text: e.topic }),
    el('td', {}, el('span', { class: `state state-${e.state}`, text: e.state })),
    el('td', { class: 'num', text: e.attempts }),
    el('td', { class: 'mono', title: e.task_id, text: short(e.task_id) }),
    el('td', {}, el('button', {
      type: 'button', class: 'secondary small', text: 'Open',
      'aria-label': `Open ${e.event_type} envelope ${short(e.id)}`,
      onclick: () => showEnvelope(e.id),
    })))));
}

loaders.envelopes = () => loadEnvelopes();

$('#envelope-filter').addEventListener('submit', (event) => {
  event.preventDefault();
  envelopesOffset = 0;
  loadEnvelopes();
});

async function showEnvelope(id) {
  const detail = $('#envelope-detail');
  try {
    const e = await api(`/admin/envelopes/${encodeURIComponent(id)}`);
    openEnvelope = id;
    for (const row of document.querySelectorAll('#envelopes-table tr[data-envelope]')) {
      row.classList.toggle('selected', row.dataset.envelope === id);
    }
    $('#h-envelope').textContent = `Envelope ${e.event_type} · ${short(e.id)}`;
    const facts = [
      ['Id', e.id], ['State', e.state], ['Topic', e.topic], ['Mapper', e.mapper],
      ['Task', e.task_id], ['Mutation', e.mutation_id], ['Mapped', when(e.created_at)],
      ['Attempts', e.attempts], ['Last status', e.delivery_status ?? '–'],
      ['Dapr error code', e.error_code ?? '–'], ['Last error', e.last_error ?? '–'],
      ['First failure', when(e.first_failed_at)], ['Finished', when(e.finished_at)],
    ];
    $('#envelope-history').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
    renderAttempts(e);
    $('#envelope-json').textContent = pretty(e.envelope);
    $('#envelope-mutation').textContent = e.mutation ? pretty(e.mutation) : '(no longer in the outbox)';
    $('#envelope-to-playground').hidden = !e.mutation;
    $('#envelope-to-playground').onclick = () => {
      $('#pg-mutation').value = pretty(e.mutation);
      location.hash = '#playground';
    };
    detail.hidden = false;
    $('#envelopes-layout').classList.add('open');
    // Beside the list (below it on a phone): focus without scrolling the page away.
    $('#h-envelope').focus({ preventScroll: true });
    if (window.matchMedia('(max-width: 900px)').matches) detail.scrollIntoView({ block: 'start' });
  } catch (err) {
    say($('#envelopes-status'), 'bad', 'Could not open the envelope.', err.message);
  }
}

/** The envelope's delivery history: each failed attempt, then its publish; its letters. */
function renderAttempts(e) {
  const rows = e.attempts_history.map((a) => el('tr', {},
    el('td', { class: 'num', text: a.attempt }), el('td', { text: when(a.at) }),
    el('td', {}, el('span', { class: `state state-${a.outcome === 'parked' ? 'dead' : 'pending'}`, text: a.outcome })),
    el('td', { text: a.status ?? 'no answer' }), el('td', { class: 'mono', text: a.code ?? '–' }),
    el('td', { text: a.error }), el('td', { class: 'mono', text: a.relay })));
  if (e.state === 'published') {
    rows.push(el('tr', {},
      el('td', { class: 'num', text: e.total_attempts }), el('td', { text: when(e.finished_at) }),
      el('td', {}, el('span', { class: 'state state-published', text: 'published' })),
      el('td', { text: e.delivery_status ?? '–' }), el('td', { text: '–' }), el('td', { text: '' }),
      el('td', { class: 'mono', text: e.published_by ?? '–' })));
  }
  $('#envelope-attempts tbody').replaceChildren(...(rows.length ? rows
    : [el('tr', {}, el('td', { colspan: 7, class: 'empty', text: e.state === 'pending' ? 'Not tried yet.' : 'No attempt recorded.' }))]));
  $('#envelope-letters').replaceChildren(...(e.dead_letters.length ? e.dead_letters.map((d) => el('li', {},
    el('span', { class: 'mono', title: d.id, text: short(d.id) }),
    ` parked ${when(d.created_at)}: ${d.reason}. `,
    d.resolution ? `${d.resolution} ${when(d.resolved_at)} by ${d.resolved_by ?? 'unknown'}${d.resolution_note ? ` (${d.resolution_note})` : ''}.` : 'Open.',
    d.replaces ? ` Replaces ${short(d.replaces)}, whose replay was refused again.` : '')) : [el('li', { text: 'None.' })]));
}

function closeEnvelope() {
  const id = openEnvelope;
  openEnvelope = null;
  $('#envelope-detail').hidden = true;
  $('#envelopes-layout').classList.remove('open');
  for (const row of document.querySelectorAll('#envelopes-table tr.selected')) row.classList.remove('selected');
  const button = document.querySelector(`#envelopes-table tr[data-envelope="${CSS.escape(id || '')}"] button`);
  (button || $('#h-envelopes')).focus();
}

$('#envelope-close').addEventListener('click', closeEnvelope);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && current === 'envelopes' && !$('#envelope-detail').hidden) {
    event.preventDefault();
    closeEnvelope();
  }
});

// ---------------------------------------------------------------- dead letters

const LETTERS_PAGE = 50;
let lettersLoading = false;
let lettersShown = null;
let lettersOffset = 0;
let lettersTotal = 0;
let lettersOnPage = [];
const selectedLetters = new Set();

/** The dead-letter filter as query parameters (times as RFC 3339 UTC). */
function letterFilter() {
  const form = $('#letter-filter');
  const filter = {};
  for (const name of ['kind', 'mapper', 'topic', 'reason']) {
    const value = form.elements[name].value.trim();
    if (value) filter[name] = value;
  }
  for (const name of ['since', 'until']) {
    const value = form.elements[name].value;
    if (value) {
      const t = new Date(value);
      if (!Number.isNaN(t.getTime())) filter[name] = t.toISOString();
    }
  }
  return filter;
}

function describeFilter(filter) {
  const parts = [];
  if (filter.kind) parts.push(filter.kind === 'publish' ? 'refused publishes' : 'mapping failures');
  if (filter.mapper) parts.push(`mapper ${filter.mapper}`);
  if (filter.topic) parts.push(`topic ${filter.topic}`);
  if (filter.reason) parts.push(`reason “${filter.reason.slice(0, 80)}${filter.reason.length > 80 ? '…' : ''}”`);
  if (filter.since) parts.push(`parked from ${when(filter.since)}`);
  if (filter.until) parts.push(`parked before ${when(filter.until)}`);
  return parts.length ? parts.join(', ') : 'every open letter';
}

loaders['dead-letters'] = async ({ keepPage = true } = {}) => {
  if (lettersLoading) return;
  lettersLoading = true;
  const list = $('#dead-letters-list');
  if (!keepPage) lettersOffset = 0;
  const params = new URLSearchParams({ ...letterFilter(), order: $('#l-order').value, limit: String(LETTERS_PAGE), offset: String(lettersOffset) });
  try {
    const body = await api(`/admin/dead-letters?${params}`);
    lettersTotal = body.total;
    if (body.dead_letters.length === 0 && lettersOffset > 0 && body.total > 0) {
      // The page emptied (letters resolved): go back to the last page that has some.
      lettersOffset = Math.max(0, Math.floor((body.total - 1) / LETTERS_PAGE) * LETTERS_PAGE);
      lettersLoading = false;
      return loaders['dead-letters']();
    }
    renderLetterCount(body);
    renderGroups(body.groups);
    // Unchanged letters are left alone: open details and focus stay where they are.
    const shown = JSON.stringify(body.dead_letters);
    if (shown === lettersShown) return;
    lettersShown = shown;
    lettersOnPage = body.dead_letters.map((l) => l.id);
    for (const id of [...selectedLetters]) if (!lettersOnPage.includes(id)) selectedLetters.delete(id);
    keepFocus(list, 'data-letter', () => {
      if (body.dead_letters.length === 0) {
        list.replaceChildren(el('p', { class: 'empty', text: body.total === 0 && Object.keys(letterFilter()).length === 0 ? 'No open dead letters.' : 'No open dead letters match.' }));
      } else {
        list.replaceChildren(...body.dead_letters.map(letterCard));
      }
    });
    syncSelection();
  } catch (e) {
    lettersShown = null;
    lettersOnPage = [];
    selectedLetters.clear();
    syncSelection();
    $('#letters-count').textContent = '';
    list.replaceChildren(el('p', { class: 'empty', text: `Could not list dead letters: ${e.message}` }));
  } finally {
    lettersLoading = false;
  }
};

function renderLetterCount(body) {
  const n = body.dead_letters.length;
  const from = n ? body.offset + 1 : 0;
  $('#letters-count').textContent = n
    ? `Letters ${from}–${body.offset + n} of ${body.total} matching (${describeFilter(letterFilter())}), ${$('#l-order').value} first.`
    : `${body.total} matching.`;
  $('#letters-prev').disabled = body.offset === 0;
  $('#letters-next').disabled = body.offset + n >= body.total;
  $('#bulk-replay-all').textContent = `Replay all ${body.total} matching`;
  $('#bulk-skip-all').textContent = `Skip all ${body.total} matching`;
  $('#bulk-replay-all').disabled = body.total === 0;
  $('#bulk-skip-all').disabled = body.total === 0;
}

function renderGroups(groups) {
  const list = $('#letter-groups');
  if (groups.length === 0) {
    list.replaceChildren(el('li', { class: 'empty', text: 'Nothing matches.' }));
    return;
  }
  list.replaceChildren(...groups.map((g) => el('li', {},
    el('span', { class: 'count', text: g.count }),
    el('span', { class: 'what' },
      `${g.kind === 'publish' ? 'Refused publish' : 'Mapping failed'} · ${g.mapper ?? 'host'}${g.topic ? ` · ${g.topic}` : ''}: `,
      el('span', { class: 'mono', text: g.reason })),
    el('span', { class: 'hint', text: `${when(g.first_at)} – ${when(g.last_at)}` }),
    el('button', {
      type: 'button', class: 'secondary small', text: 'Show only these',
      'aria-label': `Show only the ${g.count} letter(s): ${g.reason.slice(0, 60)}`,
      onclick: () => {
        $('#l-kind').value = g.kind;
        $('#l-mapper').value = g.mapper ?? '';
        $('#l-topic').value = g.topic ?? '';
        setReason(g.reason);
        loaders['dead-letters']({ keepPage: false });
      },
    }))));
}

function setReason(reason) {
  $('#l-reason').value = reason;
  $('#l-reason-chip').hidden = !reason;
  $('#l-reason-text').textContent = reason ? `Reason: ${reason}` : '';
}

$('#l-reason-clear').addEventListener('click', () => {
  setReason('');
  loaders['dead-letters']({ keepPage: false });
  $('#h-dead').focus();
});

$('#letter-filter').addEventListener('submit', (event) => {
  event.preventDefault();
  selectedLetters.clear();
  loaders['dead-letters']({ keepPage: false });
});
$('#letters-prev').addEventListener('click', () => {
  lettersOffset = Math.max(0, lettersOffset - LETTERS_PAGE);
  loaders['dead-letters']();
});
$('#letters-next').addEventListener('click', () => {
  if (lettersOffset + LETTERS_PAGE < lettersTotal) lettersOffset += LETTERS_PAGE;
  loaders['dead-letters']();
});

function syncSelection() {
  const n = selectedLetters.size;
  $('#bulk-replay').disabled = n === 0;
  $('#bulk-skip').disabled = n === 0;
  $('#bulk-replay').textContent = n ? `Replay ${n} selected` : 'Replay selected';
  $('#bulk-skip').textContent = n ? `Skip ${n} selected` : 'Skip selected';
  const all = lettersOnPage.length > 0 && lettersOnPage.every((id) => selectedLetters.has(id));
  $('#select-page').checked = all;
  for (const box of document.querySelectorAll('#dead-letters-list input[data-select]')) {
    box.checked = selectedLetters.has(box.dataset.select);
  }
}

$('#select-page').addEventListener('change', (event) => {
  for (const id of lettersOnPage) {
    if (event.currentTarget.checked) selectedLetters.add(id);
    else selectedLetters.delete(id);
  }
  syncSelection();
});

/** Opens the envelopes of task `id` (a clickable task id). */
function showTask(id) {
  const form = $('#envelope-filter');
  for (const name of ['state', 'type_prefix', 'topic', 'id', 'mutation_id', 'correlation_id', 'user_id', 'since', 'until']) form.elements[name].value = '';
  form.elements.task_id.value = id;
  envelopesOffset = 0;
  if (location.hash === '#envelopes') loadEnvelopes();
  else location.hash = '#envelopes';
}

function idButton(label, id, onclick) {
  return el('button', { type: 'button', class: 'linkish mono', title: id, 'aria-label': `${label} ${id}`, text: short(id), onclick });
}

function letterCard(letter) {
  const headingId = `letter-${letter.id}`;
  const what = letter.kind === 'publish' ? 'Refused publish' : 'Mapping failed';
  const row = (term, ...value) => el('div', { class: 'row' }, el('dt', { text: term }), el('dd', {}, ...value));
  const envelopeJson = el('pre', { class: 'json', tabindex: 0, text: 'Loading…' });
  const envelopeDetails = letter.envelope_id ? el('details', {
    ontoggle: async (event) => {
      if (!event.currentTarget.open || envelopeJson.dataset.loaded) return;
      try {
        const e = await api(`/admin/envelopes/${encodeURIComponent(letter.envelope_id)}`);
        envelopeJson.textContent = pretty(e.envelope);
        envelopeJson.dataset.loaded = 'yes';
      } catch (err) {
        envelopeJson.textContent = `Could not load it: ${err.message}`;
      }
    },
  }, el('summary', { text: 'Envelope JSON' }), envelopeJson) : null;
  return el('article', { class: `card${letter.replaces ? ' replaced' : ''}`, 'data-letter': letter.id, 'aria-labelledby': headingId },
    el('div', { class: 'select' },
      el('input', {
        type: 'checkbox', id: `select-${letter.id}`, 'data-select': letter.id, checked: selectedLetters.has(letter.id),
        onchange: (event) => {
          if (event.currentTarget.checked) selectedLetters.add(letter.id);
          else selectedLetters.delete(letter.id);
          syncSelection();
        },
      }),
      el('label', { for: `select-${letter.id}`, text: 'Select', 'aria-label': `Select dead letter ${short(letter.id)}` })),
    el('h2', { id: headingId, text: `${what} · ${letter.event_type ?? letter.mapper ?? 'host'}${letter.topic ? ` on ${letter.topic}` : ''}` }),
    el('p', { class: 'reason', text: letter.reason }),
    el('dl', {},
      row('Letter', el('span', { class: 'mono', title: letter.id, text: short(letter.id) })),
      letter.event_type ? row('Event type', el('span', { class: 'mono', text: letter.event_type })) : null,
      letter.topic ? row('Topic', letter.topic) : null,
      letter.task_id ? row('Task', idButton('Envelopes of task', letter.task_id, () => showTask(letter.task_id))) : null,
      row('Mapper', letter.mapper ?? 'host'),
      row('Attempts', String(letter.attempts)),
      row('Parked', when(letter.created_at)),
      row('Mutation', el('span', { class: 'mono', title: letter.mutation_id, text: short(letter.mutation_id) })),
      letter.envelope_id ? row('Envelope', idButton('Open envelope', letter.envelope_id, () => openEnvelopeFrom(letter.envelope_id))) : null,
      letter.hold ? row('Holds', `${letter.hold.topics.join(', ')}; ${letter.hold.waiting} event(s) waiting behind it`) : null,
      letter.replaces ? row('Replaces', el('span', { class: 'mono', title: letter.replaces, text: `${short(letter.replaces)} (its replay was refused again)` })) : null),
    el('details', {},
      el('summary', { text: 'Mutation JSON' }),
      el('pre', { class: 'json', tabindex: 0, text: letter.mutation ? pretty(letter.mutation) : '(no longer in the outbox)' })),
    envelopeDetails,
    el('div', { class: 'actions' },
      el('button', {
        type: 'button', text: 'Replay',
        'aria-label': `Replay dead letter ${short(letter.id)} (${letter.mapper ?? 'host'})`,
        onclick: (event) => replay(event.currentTarget, letter),
      }),
      el('button', {
        type: 'button', class: 'secondary', text: 'Skip…',
        'aria-label': `Skip dead letter ${short(letter.id)}`,
        onclick: () => confirmAction($('#letters-confirm'), {
          text: `Skip dead letter ${short(letter.id)}? Its event is never published; what waits behind it goes on.`,
          reason: true, go: 'Skip it',
        }).then((answer) => answer && resolveSelection('skip', { ids: [letter.id] }, answer.reason, $('#replay-result'))),
      }),
      letter.mutation ? el('button', {
        type: 'button', class: 'secondary', text: 'Try in playground',
        onclick: () => { $('#pg-mutation').value = pretty(letter.mutation); location.hash = '#playground'; },
      }) : null));
}

function openEnvelopeFrom(id) {
  location.hash = '#envelopes';
  showEnvelope(id);
}

/**
 * Asks for confirmation inside `container` (with a reason field when `reason`);
 * resolves to {reason} when confirmed, null when cancelled.
 */
function confirmAction(container, { text, reason = false, go = 'Confirm' }) {
  return new Promise((resolve) => {
    const input = reason ? el('input', { id: `${container.id}-reason`, required: true, maxlength: 500 }) : null;
    const error = el('p', { class: 'field-error', id: `${container.id}-error`, role: 'alert' });
    const done = (answer) => {
      container.replaceChildren();
      resolve(answer);
    };
    const panel = el('div', { class: 'confirm', role: 'group', 'aria-labelledby': `${container.id}-text` },
      el('p', { id: `${container.id}-text`, text }),
      reason ? el('div', { class: 'field' },
        el('label', { for: `${container.id}-reason`, text: 'Why (recorded with your name)' }), input, error) : null,
      el('div', { class: 'actions' },
        el('button', {
          type: 'button', text: go,
          onclick: () => {
            if (reason && !input.value.trim()) {
              error.textContent = 'Say why: the reason is recorded with the skip.';
              input.setAttribute('aria-describedby', error.id);
              input.setAttribute('aria-invalid', 'true');
              input.focus();
              return;
            }
            done({ reason: reason ? input.value.trim() : null });
          },
        }),
        el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => done(null) })));
    container.replaceChildren(panel);
    (input || panel.querySelector('button')).focus();
  });
}

/** Follows replayed letter `id` until its event is published or refused again. */
async function follow(id, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const f = await api(`/admin/dead-letters/${encodeURIComponent(id)}`);
    if (f.status !== 'queued' || Date.now() > deadline) return f;
    await new Promise((r) => setTimeout(r, 400));
  }
}

function followText(f) {
  switch (f.status) {
    case 'published': return 'published';
    case 'mapped': return 'mapped again; its envelopes are queued';
    case 'refused_again': return `refused again: ${f.replaced_by ? f.replaced_by.reason : 'see the envelope'}`;
    case 'queued': return 'still queued (being retried); see Flow for the sidecar';
    default: return f.status;
  }
}

async function replay(button, letter) {
  const out = $('#replay-result');
  await busy(button, async () => {
    try {
      const r = await api(`/admin/dead-letters/${encodeURIComponent(letter.id)}/replay`, { method: 'POST' });
      say(out, '', `Replayed dead letter ${short(r.resolved)}: queued,`, 'following it…');
      const f = await follow(r.resolved);
      showFollow(out, f);
    } catch (e) {
      say(out, 'bad', `Replay of ${short(letter.id)} failed.`, e.message);
    }
  });
  lettersShown = null;
  await loaders['dead-letters']();
  // The replayed letter's card is gone: the result is the next thing to read.
  if (!document.activeElement || document.activeElement === document.body) out.focus();
}

function showFollow(out, f) {
  const id = short(f.letter.id);
  if (f.status === 'refused_again') {
    say(out, 'bad', `Replay of ${id} was refused again.`, f.replaced_by ? `${f.replaced_by.reason} New letter: ` : followText(f));
    if (f.replaced_by) {
      out.append(el('button', {
        type: 'button', class: 'linkish mono', text: short(f.replaced_by.id),
        'aria-label': `Show the new dead letter ${f.replaced_by.id}`,
        onclick: () => showLetter(f.replaced_by.id),
      }));
    }
  } else if (f.status === 'queued') {
    say(out, '', `Replayed ${id}: not published yet.`, followText(f));
  } else {
    say(out, 'ok', `Replayed ${id}: ${f.status === 'published' ? 'Published.' : followText(f)}`);
  }
}

/** Shows letter `id` alone (clearing the other filters) and focuses its card. */
async function showLetter(id) {
  const letter = await api(`/admin/dead-letters/${encodeURIComponent(id)}`);
  for (const name of ['kind', 'mapper', 'topic', 'since', 'until']) $('#letter-filter').elements[name].value = '';
  setReason(letter.letter.reason);
  $('#l-topic').value = letter.letter.topic ?? '';
  lettersShown = null;
  await loaders['dead-letters']({ keepPage: false });
  const card = document.querySelector(`#dead-letters-list article[data-letter="${CSS.escape(id)}"] h2`);
  if (card) { card.setAttribute('tabindex', '-1'); card.focus(); }
}

/** Replays or skips a selection ({ids} or {matching}) and says what each did. */
async function resolveSelection(action, selection, reason, out) {
  const body = action === 'skip' ? { ...selection, reason } : selection;
  say(out, '', action === 'skip' ? 'Skipping…' : 'Replaying…');
  try {
    const r = await api(`/admin/dead-letters/${action}`, { method: 'POST', json: body });
    const done = action === 'skip' ? r.skipped : r.replayed;
    const failed = r.failed.map((f) => el('li', { text: `${short(f.id)}: ${f.reason}` }));
    if (action === 'skip') {
      say(out, failed.length ? 'bad' : 'ok', `Skipped ${done.length} letter(s)${failed.length ? `; ${failed.length} could not be skipped` : ''}.`);
    } else {
      say(out, '', `Replayed ${done.length} letter(s)${failed.length ? `, ${failed.length} failed at once` : ''}; following them…`);
      const follows = await Promise.all(done.slice(0, 200).map((d) => follow(d.resolved).catch(() => null)));
      const count = (status) => follows.filter((f) => f && f.status === status).length;
      const refused = follows.filter((f) => f && f.status === 'refused_again');
      const bad = refused.length + failed.length > 0;
      say(out, bad ? 'bad' : 'ok', `Replayed ${done.length} letter(s):`,
        `${count('published') + count('mapped')} published or mapped, ${refused.length} refused again, ${count('queued')} still queued${failed.length ? `, ${failed.length} failed at once` : ''}.`);
      for (const f of refused.slice(0, 20)) {
        failed.push(el('li', {}, `${short(f.letter.id)} refused again → new letter `,
          f.replaced_by ? el('button', { type: 'button', class: 'linkish mono', text: short(f.replaced_by.id), onclick: () => showLetter(f.replaced_by.id) }) : '(none)'));
      }
    }
    if (failed.length) out.append(el('ul', {}, failed));
  } catch (e) {
    say(out, 'bad', `The ${action} was refused.`, e.message);
  }
  selectedLetters.clear();
  lettersShown = null;
  await loaders['dead-letters']();
  out.focus();
}

$('#bulk-replay').addEventListener('click', async () => {
  const ids = [...selectedLetters];
  const answer = await confirmAction($('#letters-confirm'), { text: `Replay ${ids.length} selected dead letter(s)?`, go: `Replay ${ids.length}` });
  if (answer) await resolveSelection('replay', { ids }, null, $('#replay-result'));
});
$('#bulk-skip').addEventListener('click', async () => {
  const ids = [...selectedLetters];
  const answer = await confirmAction($('#letters-confirm'), { text: `Skip ${ids.length} selected dead letter(s)? Their events are never published.`, reason: true, go: `Skip ${ids.length}` });
  if (answer) await resolveSelection('skip', { ids }, answer.reason, $('#replay-result'));
});
$('#bulk-replay-all').addEventListener('click', async () => {
  const matching = letterFilter();
  const answer = await confirmAction($('#letters-confirm'), {
    text: `Replay all ${lettersTotal} open dead letter(s) matching ${describeFilter(matching)} (at most 1000 per call, oldest first)?`,
    go: `Replay ${lettersTotal}`,
  });
  if (answer) await resolveSelection('replay', { matching }, null, $('#replay-result'));
});
$('#bulk-skip-all').addEventListener('click', async () => {
  const matching = letterFilter();
  const answer = await confirmAction($('#letters-confirm'), {
    text: `Skip all ${lettersTotal} open dead letter(s) matching ${describeFilter(matching)}? Their events are never published.`,
    reason: true, go: `Skip ${lettersTotal}`,
  });
  if (answer) await resolveSelection('skip', { matching }, answer.reason, $('#replay-result'));
});

$('#dead-refresh').addEventListener('click', () => { lettersShown = null; loaders['dead-letters'](); });

// ---------------------------------------------------------------- held

let heldShown = null;

loaders.held = async () => {
  const tbody = $('#held-table tbody');
  try {
    const { holds } = await api('/admin/holds?limit=500');
    const shown = JSON.stringify(holds);
    if (shown === heldShown) return;
    heldShown = shown;
    renderHeldMappers(holds);
    keepFocus(tbody, 'data-hold', () => {
      if (holds.length === 0) {
        tbody.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No task is held.' })));
        return;
      }
      tbody.replaceChildren(...holds.map((h) => el('tr', { 'data-hold': `${h.task_id}/${h.topic}` },
        el('td', {}, idButton('Envelopes of task', h.task_id, () => showTask(h.task_id))),
        el('td', { text: h.topic }),
        el('td', { text: when(h.since) }),
        el('td', {},
          el('span', { text: `${h.kind === 'publish' ? 'Refused publish' : 'Mapping failed'} · ${h.mapper ?? 'host'}: ` }),
          el('span', { class: 'mono', text: h.reason }),
          h.letters > 1 ? el('span', { class: 'sub', text: `${h.letters} letters hold it` }) : null),
        el('td', { class: 'num', text: h.waiting }),
        el('td', {}, el('div', { class: 'actions' },
          el('button', {
            type: 'button', class: 'small', text: 'Replay',
            'aria-label': `Replay the held event of task ${short(h.task_id)} on ${h.topic}`,
            onclick: (event) => busy(event.currentTarget, () => replayHeld(h)),
          }),
          el('button', {
            type: 'button', class: 'secondary small', text: 'Skip…',
            'aria-label': `Skip the held event of task ${short(h.task_id)} on ${h.topic}`,
            onclick: () => skipHeld(h),
          }))))));
    });
  } catch (e) {
    heldShown = null;
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: `Could not list holds: ${e.message}` })));
  }
};

function renderHeldMappers(holds) {
  const mappers = [...new Set(holds.map((h) => h.mapper).filter(Boolean))];
  $('#held-mappers').replaceChildren(...mappers.map((m) => el('button', {
    type: 'button', class: 'secondary', text: `Retry every hold of ${m}`,
    onclick: async (event) => {
      const n = holds.filter((h) => h.mapper === m).length;
      const answer = await confirmAction($('#held-confirm'), { text: `Replay every open dead letter of mapper ${m} (${n} held task(s) on this page)? Do it after a reload fixed the mapper.`, go: 'Retry them' });
      if (!answer) return;
      await busy(event.currentTarget, async () => {
        const out = $('#held-result');
        try {
          const r = await api('/admin/holds/retry', { method: 'POST', json: { mapper: m } });
          say(out, r.failed.length ? 'bad' : 'ok', `Retried mapper ${m}:`, `${r.replayed.length} replayed, ${r.failed.length} failed again.`);
          if (r.failed.length) out.append(el('ul', {}, r.failed.map((f) => el('li', { text: `${short(f.id)}: ${f.reason}` }))));
        } catch (e) {
          say(out, 'bad', `Retrying mapper ${m} was refused.`, e.message);
        }
        heldShown = null;
        await loaders.held();
        out.focus();
      });
    },
  })));
}

async function replayHeld(h) {
  const out = $('#held-result');
  try {
    const r = await api(`/admin/dead-letters/${encodeURIComponent(h.dead_letter_id)}/replay`, { method: 'POST' });
    say(out, '', `Replayed the held event of task ${short(h.task_id)} on ${h.topic}:`, 'following it…');
    showFollow(out, await follow(r.resolved));
  } catch (e) {
    say(out, 'bad', `Replay of the hold on task ${short(h.task_id)} failed.`, e.message);
  }
  heldShown = null;
  await loaders.held();
  out.focus();
}

async function skipHeld(h) {
  const answer = await confirmAction($('#held-confirm'), {
    text: `Skip the held event of task ${short(h.task_id)} on ${h.topic}? It is never published; the ${h.waiting} event(s) behind it go on.`,
    reason: true, go: 'Skip it',
  });
  if (!answer) return;
  const out = $('#held-result');
  try {
    await api(`/admin/dead-letters/${encodeURIComponent(h.dead_letter_id)}/skip`, { method: 'POST', json: { reason: answer.reason } });
    say(out, 'ok', `Skipped the held event of task ${short(h.task_id)} on ${h.topic}.`, `${h.waiting} event(s) behind it go on.`);
  } catch (e) {
    say(out, 'bad', `Skip of the hold on task ${short(h.task_id)} failed.`, e.message);
  }
  heldShown = null;
  await loaders.held();
  out.focus();
}

$('#held-refresh').addEventListener('click', () => { heldShown = null; loaders.held(); });

// ---------------------------------------------------------------- playground

loaders.playground = async () => {
  await Promise.all([fillMappers(), fillRecent()]);
  if (!$('#pg-mutation').value.trim()) await useTemplate('created');
};

async function fillMappers(select) {
  const picker = $('#pg-mapper');
  const chosen = select ?? picker.value;
  try {
    const [{ mappers }, { uploads }] = await Promise.all([api('/admin/mappers'), api('/admin/playground/uploads')]);
    const loaded = el('optgroup', { label: 'Loaded mappers' },
      mappers.map((m) => el('option', { value: `mapper:${m.name}`, text: `${m.name} ${m.version}` })));
    const uploaded = el('optgroup', { label: 'Uploads' },
      uploads.map((u) => el('option', { value: `upload:${u.id}`, text: `${u.mapper.name} ${u.mapper.version} (${u.name})` })));
    picker.replaceChildren(loaded, ...(uploads.length ? [uploaded] : []));
    if (chosen && [...picker.options].some((o) => o.value === chosen)) picker.value = chosen;
  } catch (e) {
    say($('#pg-upload-status'), 'bad', 'Could not list the mappers.', e.message);
  }
}

async function fillRecent() {
  const recent = $('#pg-recent');
  try {
    const { envelopes } = await api('/admin/envelopes?limit=25');
    const seen = new Set();
    const options = [];
    for (const e of envelopes) {
      if (seen.has(e.mutation_id)) continue;
      seen.add(e.mutation_id);
      options.push(el('option', { value: e.id, text: `${e.event_type} · task ${short(e.task_id)} · ${when(e.created_at)}` }));
    }
    recent.replaceChildren(el('option', { value: '', text: options.length ? '(pick a recent mutation)' : '(no recent envelopes)' }), ...options);
  } catch {
    /* the list is a convenience */
  }
}

async function useTemplate(action) {
  try {
    const mutation = await api(`/admin/playground/template?action=${encodeURIComponent(action)}`);
    $('#pg-mutation').value = pretty(mutation);
  } catch (e) {
    say($('#pg-upload-status'), 'bad', 'Could not load the template.', e.message);
  }
}

for (const button of document.querySelectorAll('[data-template]')) {
  button.addEventListener('click', () => useTemplate(button.dataset.template));
}

$('#pg-use-recent').addEventListener('click', async () => {
  const id = $('#pg-recent').value;
  if (!id) return;
  try {
    const e = await api(`/admin/envelopes/${encodeURIComponent(id)}`);
    if (e.mutation) $('#pg-mutation').value = pretty(e.mutation);
    else say($('#pg-upload-status'), 'bad', 'That mutation is no longer in the outbox.');
  } catch (err) {
    say($('#pg-upload-status'), 'bad', 'Could not read the envelope.', err.message);
  }
});

$('#pg-upload').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const out = $('#pg-upload-status');
  const file = $('#pg-file').files[0];
  if (!file) {
    say(out, 'bad', 'Choose a .wasm file first.');
    $('#pg-file').focus();
    return;
  }
  say(out, '', `Uploading and loading ${file.name}…`, 'Components built from Python or JavaScript take about 20 seconds the first time.');
  try {
    const upload = await api(`/admin/playground/uploads?name=${encodeURIComponent(file.name)}`, {
      method: 'POST', body: file, contentType: 'application/wasm',
    });
    // The picker first, so that "Loaded" is only said once the upload can be run.
    await fillMappers(`upload:${upload.id}`);
    say(out, 'ok', `Loaded ${upload.mapper.name} ${upload.mapper.version}.`, `Topics: ${upload.mapper.topics.join(', ')}. Kept until ${when(upload.expires_at)}.`);
  } catch (e) {
    say(out, 'bad', 'The upload was refused.', e.message);
  }
}));

function parseConfig(text) {
  const config = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf('=');
    if (at < 1) throw new Error(`“${line}” is not key=value`);
    config[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return config;
}

$('#playground-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy($('#pg-run'), runPlayground);
});

async function runPlayground() {
  const result = $('#pg-result');
  const summary = $('#pg-summary');
  const list = $('#pg-envelopes');
  result.hidden = false;
  list.replaceChildren();
  let mutation;
  let config;
  try {
    mutation = JSON.parse($('#pg-mutation').value);
    config = parseConfig($('#pg-config').value);
  } catch (e) {
    summary.replaceChildren(el('p', { class: 'notice bad', role: 'alert' }, el('strong', { text: 'Not run:' }), ` ${e.message}`));
    $('#h-pg-result').focus();
    return;
  }
  const [kind, id] = splitOnce($('#pg-mapper').value, ':');
  const body = { mutation, config, [kind === 'upload' ? 'upload' : 'mapper']: id };
  summary.replaceChildren(el('p', { text: 'Running…' }));
  try {
    const r = await api('/admin/playground/run', { method: 'POST', json: body });
    const who = `${r.mapper.name} ${r.mapper.version}`;
    if (r.outcome === 'events') {
      summary.replaceChildren(el('p', { class: 'notice ok' },
        el('strong', { text: `${r.envelopes.length} envelope(s)` }),
        ` from ${who} in ${micros(r.took_micros)}. Nothing was stored or published.`));
      list.replaceChildren(...r.envelopes.map((e, i) => el('div', { class: 'pg-envelope' },
        el('h3', { text: `${i + 1}. ${e.type}` }),
        el('pre', { class: 'json', tabindex: 0, text: pretty(e) }))));
    } else {
      summary.replaceChildren(el('div', { class: 'notice bad', role: 'alert' },
        el('strong', { text: `Refused (${r.refusal.kind.replaceAll('_', ' ')})` }),
        el('p', { text: r.refusal.message }),
        el('p', { class: 'hint', text: 'The relay would park this mutation as a dead letter.' })));
    }
  } catch (e) {
    summary.replaceChildren(el('div', { class: 'notice bad', role: 'alert' },
      el('strong', { text: 'Not run:' }), ` ${e.message}`));
  }
  $('#h-pg-result').focus();
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + 1)];
}

// ---------------------------------------------------------------- candidates

let candidates = [];
let openCandidate = null;
// Each watcher runs while its generation is the latest: a new start ends the old loop.
let diffWatch = 0;
let shadowWatch = 0;

loaders.candidates = async () => {
  await loadCandidates();
  loadReleases();
  watchShadow();
  if (openCandidate && candidates.some((c) => c.id === openCandidate)) await showCandidate(openCandidate, { focus: false });
};

const candidatePath = (id, rest = '') => `/admin/candidates/${encodeURIComponent(id)}${rest}`;

/** The items of a list answer: `{key: [...]}`, as the other admin lists, or a bare array. */
function listOf(body, key) {
  return Array.isArray(body) ? body : (body && body[key]) || [];
}

function sha(value, n = 12) {
  return value ? `${value.slice(0, n)}…` : '–';
}

/** The version and digest a release went to or came from ("the mapper directory's component" when none). */
function releaseSide(version, digest) {
  if (!version && !digest) return el('span', { class: 'hint', text: 'the component MAPPERS_DIR or MAPPER_BUILTIN gives' });
  return el('span', {}, version ?? '', ' ', el('span', { class: 'mono', title: digest ?? '', 'data-sha': digest ?? '', text: digest ? `sha256 ${sha(digest)}` : '' }));
}

function replacesText(c) {
  return c.replaces ? `${c.name} ${c.replaces.version} (sha256 ${sha(c.replaces.sha256)})` : 'nothing: it would be added after the live mappers';
}

function diffStateText(job) {
  if (!job) return 'none yet';
  const n = `${job.done} of ${job.total}`;
  return { running: `running (${n})`, done: `done (${job.total} mutations)`, cancelled: `cancelled at ${n}`, failed: `failed${job.error ? `: ${job.error}` : ''}` }[job.state] || job.state;
}

async function loadCandidates() {
  const tbody = $('#candidates-table tbody');
  try {
    candidates = listOf(await api('/admin/candidates'), 'candidates');
  } catch (e) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: `Could not list candidates: ${e.message}` })));
    return;
  }
  keepFocus(tbody, 'data-candidate', () => {
    if (candidates.length === 0) {
      tbody.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No candidate uploaded yet.' })));
      return;
    }
    tbody.replaceChildren(...candidates.map((c) => el('tr', { 'data-candidate': c.id, class: c.id === openCandidate ? 'selected' : null },
      el('td', {},
        el('strong', { text: c.name }), ` ${c.version}`,
        c.shadowing ? el('span', { class: 'tag', text: 'shadowing' }) : null,
        el('span', { class: 'sub mono', text: c.file })),
      el('td', { class: 'mono', title: c.sha256, text: sha(c.sha256) }),
      el('td', { text: replacesText(c) }),
      el('td', {}, when(c.uploaded_at), el('span', { class: 'sub', text: `by ${c.uploaded_by}` })),
      el('td', { text: diffStateText(c.diff) }),
      el('td', {}, el('div', { class: 'actions' },
        el('button', {
          type: 'button', class: 'small', text: 'Open',
          'aria-label': `Open candidate ${c.name} ${c.version} (${sha(c.sha256, 8)})`,
          onclick: () => showCandidate(c.id),
        }),
        el('button', {
          type: 'button', class: 'secondary small', text: 'Remove…',
          'aria-label': `Remove candidate ${c.name} ${c.version} (${sha(c.sha256, 8)})`,
          onclick: () => removeCandidate(c),
        }))))));
  });
}

$('#candidates-refresh').addEventListener('click', () => loaders.candidates());

$('#cand-upload-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy($('#cand-upload'), uploadCandidate);
});

async function uploadCandidate() {
  const out = $('#cand-upload-status');
  const file = $('#cand-file').files[0];
  if (!file) {
    say(out, 'bad', 'Choose a .wasm file first.');
    $('#cand-file').focus();
    return;
  }
  say(out, '', `Uploading and loading ${file.name}…`, 'The component is compiled and checked as a reload would; a large one takes a while the first time.');
  try {
    const c = await api(`/admin/candidates?name=${encodeURIComponent(file.name)}`, {
      method: 'POST', body: file, contentType: 'application/wasm',
    });
    await loadCandidates();
    say(out, 'ok', `Uploaded ${c.name} ${c.version}`, `(sha256 ${sha(c.sha256)}); it would replace ${replacesText(c)}. Nothing is live yet.`);
    await showCandidate(c.id, { focus: false });
  } catch (e) {
    say(out, 'bad', 'The candidate was refused.', e.message);
  }
  out.focus();
}

async function removeCandidate(c) {
  const answer = await confirmAction($('#cand-remove-confirm'), {
    text: `Remove candidate ${c.name} ${c.version} (sha256 ${sha(c.sha256)})? Its running diff is cancelled and its shadow run stopped.`,
    go: 'Remove it',
  });
  if (!answer) return;
  const out = $('#cand-upload-status');
  try {
    await api(candidatePath(c.id), { method: 'DELETE' });
    say(out, 'ok', `Removed candidate ${c.name} ${c.version}.`);
    if (openCandidate === c.id) closeCandidate();
  } catch (e) {
    say(out, 'bad', `Could not remove ${c.name} ${c.version}.`, e.message);
  }
  await loadCandidates();
  loadShadow();
  out.focus();
}

function closeCandidate() {
  openCandidate = null;
  diffWatch += 1;
  $('#cand-detail').hidden = true;
  for (const row of document.querySelectorAll('#candidates-table tr[data-candidate]')) row.classList.remove('selected');
}

$('#cand-close').addEventListener('click', () => {
  const id = openCandidate;
  closeCandidate();
  const open = id && document.querySelector(`#candidates-table tr[data-candidate="${CSS.escape(id)}"] button`);
  (open || $('#h-candidates')).focus();
});

async function showCandidate(id, { focus = true } = {}) {
  let c;
  try {
    c = await api(candidatePath(id));
  } catch (e) {
    say($('#cand-upload-status'), 'bad', 'Could not open the candidate.', e.message);
    return;
  }
  const switched = openCandidate !== id;
  openCandidate = id;
  for (const row of document.querySelectorAll('#candidates-table tr[data-candidate]')) {
    row.classList.toggle('selected', row.dataset.candidate === id);
  }
  $('#h-cand').textContent = `Candidate ${c.name} ${c.version}`;
  const facts = [
    ['Name', c.name], ['Version', c.version], ['SHA-256', c.sha256], ['File', c.file],
    ['Replaces', replacesText(c)], ['Topics', c.topics.join(', ') || 'none'],
    ['Event types with schemas', c.event_types.join(', ') || 'none'],
    ['Uploaded', `${when(c.uploaded_at)} by ${c.uploaded_by}`],
    ['Shadow run', c.shadowing ? 'running (see below)' : 'not running'],
  ];
  $('#cand-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { class: k === 'SHA-256' ? 'mono' : null, text: v })]));
  $('#cand-shadow-start').textContent = c.shadowing ? 'Restart shadow run' : 'Start shadow run';
  if (switched) {
    for (const box of ['promote-confirm', 'promote-result', 'diff-status', 'diff-report']) $(`#${box}`).replaceChildren();
    $('#diff-progress-box').hidden = true;
    delete $('#diff-status').dataset.running;
  }
  $('#cand-detail').hidden = false;
  if (focus) $('#h-cand').focus();
  if (c.diff) {
    await loadDiff(id);
  } else if (switched) {
    say($('#diff-status'), '', 'No history diff of this candidate yet.');
  }
}

// ---- history diff

/** The window the form describes, as the API takes it; throws with the field to fix. */
function diffWindow() {
  const form = $('#diff-form');
  const range = {};
  for (const name of ['since', 'until']) {
    const value = form.elements[name].value;
    if (!value) continue;
    const t = new Date(value);
    if (Number.isNaN(t.getTime())) throw Object.assign(new Error('is not a date and time'), { input: form.elements[name] });
    range[name] = t.toISOString();
  }
  const task = form.elements.task_id.value.trim();
  if (task) range.task_id = task;
  const last = form.elements.last.value.trim();
  if (last) {
    const n = Number(last);
    if (!Number.isInteger(n) || n < 1) throw Object.assign(new Error('must be a whole number from 1'), { input: form.elements.last });
    range.last = n;
  }
  return range;
}

/** A datetime-local value for `date` in the browser's time zone. */
function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

$('#diff-last-hour').addEventListener('click', () => {
  $('#diff-since').value = localInput(new Date(Date.now() - 3600_000));
  $('#diff-until').value = '';
  $('#diff-task').value = '';
  $('#diff-last').value = '';
});

function markDiffField(input) {
  for (const node of document.querySelectorAll('#diff-form [aria-invalid]')) {
    node.removeAttribute('aria-invalid');
    node.removeAttribute('aria-describedby');
  }
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'diff-status');
  }
}

const DIFF_FIELDS = { since: 'since', until: 'until', task_id: 'task_id', last: 'last' };

$('#diff-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy($('#diff-run'), runDiff);
});

async function runDiff() {
  const id = openCandidate;
  const out = $('#diff-status');
  let range;
  try {
    range = diffWindow();
  } catch (e) {
    markDiffField(e.input);
    say(out, 'bad', `${e.input.labels[0].textContent}:`, e.message);
    e.input.focus();
    return;
  }
  markDiffField(null);
  $('#diff-report').replaceChildren();
  say(out, '', 'Starting the history diff…');
  try {
    const job = await api(candidatePath(id, '/diff'), { method: 'POST', json: range });
    showDiffJob(job);
    if (job.state === 'running') watchDiff(id);
    else finishDiff(job);
  } catch (e) {
    const input = e.field && DIFF_FIELDS[e.field] ? $('#diff-form').elements[DIFF_FIELDS[e.field]] : null;
    markDiffField(input);
    say(out, 'bad', e.status === 409 ? 'A diff of this candidate is already running.' : 'The diff was refused.', e.message);
    if (e.status === 409) watchDiff(id);
    (input || out).focus();
  }
}

/** Progress of `job`: the bar, "done of total", and the Cancel button while it runs. */
function showDiffJob(job) {
  const box = $('#diff-progress-box');
  const bar = $('#diff-progress');
  box.hidden = false;
  bar.max = Math.max(1, job.total);
  bar.value = Math.min(job.done, Math.max(1, job.total));
  const text = `${job.done} of ${job.total} mutation(s)`;
  setText($('#diff-progress-text'), text);
  bar.setAttribute('aria-valuetext', text);
  $('#diff-cancel').hidden = job.state !== 'running';
  if (job.state === 'running') {
    // The status region speaks only when the state changes, not on each count.
    const out = $('#diff-status');
    if (!out.dataset.running) {
      out.dataset.running = 'yes';
      say(out, '', 'Running:', 'comparing the candidate with the live set over the window; the progress bar follows it.');
    }
  }
}

/** Polls the latest diff of candidate `id` every 500 ms until it is no longer running. */
function watchDiff(id) {
  const generation = ++diffWatch;
  const tick = async () => {
    if (generation !== diffWatch || openCandidate !== id || current !== 'candidates') return;
    let job;
    try {
      job = await api(candidatePath(id, '/diff'));
    } catch (e) {
      if (generation === diffWatch) say($('#diff-status'), 'bad', 'Could not follow the diff.', e.message);
      return;
    }
    if (generation !== diffWatch) return;
    showDiffJob(job);
    if (job.state === 'running') setTimeout(tick, 500);
    else finishDiff(job);
  };
  tick();
}

async function loadDiff(id) {
  try {
    const job = await api(candidatePath(id, '/diff'));
    showDiffJob(job);
    if (job.state === 'running') watchDiff(id);
    else finishDiff(job, { quiet: true });
  } catch (e) {
    if (e.status === 404) say($('#diff-status'), '', 'No history diff of this candidate yet.');
    else say($('#diff-status'), 'bad', 'Could not read the diff.', e.message);
  }
}

function finishDiff(job, { quiet = false } = {}) {
  const out = $('#diff-status');
  delete out.dataset.running;
  const r = job.report;
  if (job.state === 'failed') {
    say(out, 'bad', 'The diff failed.', job.error || '');
  } else if (r) {
    const verdict = r.mutations === 0 ? 'nothing was compared'
      : r.failed ? `the candidate fails on ${r.failed} mutation(s)`
        : r.changed ? `${r.changed} mutation(s) map differently`
          : `${r.mutations === 1 ? 'it maps' : `all ${r.mutations} map`} identically`;
    if (job.state === 'cancelled') {
      say(out, r.failed ? 'bad' : '', `Cancelled after ${r.mutations} of ${job.total} mutation(s):`, r.mutations === 0 ? `${verdict}.` : `${verdict} in what was compared.`);
    } else {
      say(out, r.failed ? 'bad' : (r.changed ? '' : 'ok'), `Done: ${r.mutations} mutation(s) compared;`, `${verdict}.`);
    }
  } else {
    say(out, '', job.state === 'cancelled' ? 'Cancelled.' : 'Done.');
  }
  if (r) renderDiffReport(job);
  else $('#diff-report').replaceChildren();
  loadCandidates();
  if (!quiet) out.focus();
}

$('#diff-cancel').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const id = openCandidate;
  if (!id) return;
  try {
    const job = await api(candidatePath(id, '/diff'), { method: 'DELETE' });
    say($('#diff-status'), '', 'Cancelling…', 'the diff stops after the step in hand.');
    showDiffJob(job);
    if (job.state === 'running') watchDiff(id);
    else finishDiff(job);
  } catch (e) {
    say($('#diff-status'), 'bad', 'Could not cancel the diff.', e.message);
  }
}));

function renderDiffReport(job) {
  const r = job.report;
  const w = r.window || {};
  const described = [
    w.since ? `from ${when(w.since)}` : null, w.until ? `before ${when(w.until)}` : null,
    w.task_id ? `task ${w.task_id}` : null, w.last ? `the latest ${w.last}` : null,
  ].filter(Boolean).join(', ') || 'all stored mutations';
  const span = r.first_mutation_at ? `; compared mutations from ${when(r.first_mutation_at)} to ${when(r.last_mutation_at)}` : '';
  const took = (new Date(r.finished_at) - new Date(r.started_at)) / 1000;
  $('#diff-report').replaceChildren(
    el('p', { class: 'hint', text: `Window: ${described}${span}. Ran ${when(r.started_at)}, took ${Number.isFinite(took) ? seconds(Math.max(0, took)) : '–'}${r.cancelled ? '; cancelled before the end of the window (the totals cover what was compared)' : ''}.` }),
    ...reportBody(r, 'diff'));
}

// ---- reports (a history diff's and a shadow run's)

/** Summary, by-type table, failures and samples of a report `r`; `key` names its ids. */
function reportBody(r, key) {
  const stat = (name, label, value, cls) => el('div', {}, el('dt', { text: label }), el('dd', { 'data-stat': name, class: cls, text: value }));
  const e = r.events || {};
  return [
    el('h4', { text: 'Mutations' }),
    el('dl', { class: 'stats compact', id: `${key}-mutations` },
      stat('mutations', 'Compared', r.mutations),
      stat('identical', 'Identical', r.identical),
      stat('changed', 'Changed', r.changed, r.changed ? 'warn' : null),
      stat('failed', 'Failed (candidate)', r.failed, r.failed ? 'bad' : null),
      stat('live_failed', 'Failed in the live set too', r.live_failed)),
    el('h4', { text: 'Events' }),
    el('dl', { class: 'stats compact', id: `${key}-events` },
      stat('events.same', 'Same', e.same),
      stat('events.changed', 'Changed', e.changed, e.changed ? 'warn' : null),
      stat('events.added', 'Added', e.added, e.added ? 'warn' : null),
      stat('events.removed', 'Removed', e.removed, e.removed ? 'warn' : null)),
    byTypeTable(r.by_type || [], key),
    pathTable(r.paths || [], key),
    failureList(r.failures || [], key),
    samplesBlock(r.samples || {}, key),
  ];
}

function byTypeTable(rows, key) {
  const id = `${key}-by-type-caption`;
  return el('div', { class: 'table-wrap' },
    el('table', { id: `${key}-by-type`, 'aria-labelledby': id },
      el('caption', { id, class: 'caption', text: 'By mapper and event type' }),
      el('thead', {}, el('tr', {}, ['Mapper', 'Event type', 'Same', 'Changed', 'Added', 'Removed'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows.length === 0
        ? el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No events on either side.' }))
        : rows.map((t) => el('tr', {},
          el('td', { text: t.mapper }), el('td', { class: 'mono', text: t.event_type }),
          el('td', { class: 'num', text: t.same }),
          el('td', { class: `num${t.changed ? ' warn' : ''}`, text: t.changed }),
          el('td', { class: `num${t.added ? ' warn' : ''}`, text: t.added }),
          el('td', { class: `num${t.removed ? ' warn' : ''}`, text: t.removed }))))));
}

/** The fields that changed, most frequent first (the first 20). */
function pathTable(rows, key) {
  const id = `${key}-paths-caption`;
  const sign = { added: '+ added', removed: '− removed', changed: '~ changed' };
  return el('div', { class: 'table-wrap' },
    el('table', { id: `${key}-paths`, 'aria-labelledby': id },
      el('caption', { id, class: 'caption', text: 'Fields changed, most frequent first' }),
      el('thead', {}, el('tr', {}, ['Mapper', 'Event type', 'Field', 'Change', 'Events'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows.length === 0
        ? el('tr', {}, el('td', { colspan: 5, class: 'empty', text: 'No field changed.' }))
        : rows.slice(0, 20).map((p) => el('tr', {},
          el('td', { text: p.mapper }), el('td', { class: 'mono', text: p.event_type }),
          el('td', { class: 'mono', text: p.path }), el('td', { text: sign[p.change] || p.change }),
          el('td', { class: 'num', text: p.count }))))));
}

function failureList(failures, key) {
  return el('div', { id: `${key}-failures` },
    el('h4', { text: 'Failures of the candidate, grouped' }),
    failures.length === 0 ? el('p', { class: 'hint', text: 'None.' })
      : el('ul', { class: 'plain groups' }, failures.map((f) => el('li', {},
        el('span', { class: 'count', text: f.count }),
        el('span', { class: 'what' }, `${f.mapper ?? 'host'}: `, el('span', { class: 'mono', text: f.reason }))))));
}

const SAMPLE_KINDS = [['changed', 'Changed'], ['added', 'With added events'], ['removed', 'With removed events'], ['failed', 'Failed']];

function samplesBlock(samples, key) {
  const parts = [el('h4', { text: 'Samples' })];
  let any = false;
  for (const [kind, title] of SAMPLE_KINDS) {
    const list = samples[kind] || [];
    if (list.length === 0) continue;
    any = true;
    parts.push(el('h5', { text: `${title} (${list.length} shown)` }),
      el('div', { class: 'samples', 'data-kind': kind }, list.map((s, i) => sampleCard(s, i === 0))));
  }
  if (!any) parts.push(el('p', { class: 'hint', text: 'No divergent mutation to show.' }));
  return el('div', { id: `${key}-samples` }, parts);
}

function refusalText(f) {
  return f ? `${f.mapper ?? 'host'}: ${f.reason}` : null;
}

function sampleCard(s, open) {
  const shown = s.events.filter((e) => e.result !== 'same');
  const same = s.events.length - shown.length;
  return el('details', { class: `sample sample-${s.result}`, open, 'data-mutation': s.mutation_id },
    el('summary', {},
      el('span', { class: `state state-${s.result === 'failed' ? 'dead' : 'pending'}`, text: s.result }),
      ` ${s.action} of task `, el('span', { class: 'mono', title: s.task_id, text: short(s.task_id) }),
      ` · mutation `, el('span', { class: 'mono', title: s.mutation_id, text: short(s.mutation_id) }),
      ` · ${when(s.at)}`),
    s.candidate_failure ? el('p', { class: 'notice bad' }, el('strong', { text: 'The candidate failed:' }), ` ${refusalText(s.candidate_failure)}`) : null,
    s.live_failure ? el('p', { class: 'notice' }, el('strong', { text: 'The live set failed:' }), ` ${refusalText(s.live_failure)}`) : null,
    shown.map(eventDiff),
    same ? el('p', { class: 'hint', text: `${same} other event(s) of this mutation are the same on both sides.` }) : null);
}

function jsonText(value) {
  return value === undefined ? '(absent)' : JSON.stringify(value);
}

function eventDiff(e) {
  const changes = e.changes || [];
  return el('section', { class: `event-diff event-${e.result}` },
    el('h6', {}, `${e.mapper} #${e.index} · `, el('span', { class: 'mono', text: e.event_type }), ` on ${e.topic}: `,
      el('strong', { text: e.result })),
    changes.length ? el('div', { class: 'table-wrap' }, el('table', { class: 'changes' },
      el('caption', { class: 'visually-hidden', text: `Field changes of ${e.event_type}` }),
      el('thead', {}, el('tr', {}, ['Path', 'Change', 'Before → after'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, changes.map((c) => el('tr', { 'data-path': c.path },
        el('td', { class: 'mono path', text: c.path }),
        el('td', { text: c.change }),
        el('td', { class: 'mono' },
          el('span', { class: `before${c.change === 'added' ? ' absent' : ''}`, text: c.change === 'added' ? '(absent)' : jsonText(c.before) }),
          ' → ',
          el('span', { class: `after${c.change === 'removed' ? ' absent' : ''}`, text: c.change === 'removed' ? '(absent)' : jsonText(c.after) }))))))) : null,
    el('div', { class: 'side-by-side' },
      el('figure', {}, el('figcaption', { text: 'Live' }),
        el('pre', { class: 'json live-json', tabindex: 0, text: e.live ? pretty(e.live) : '(no event)' })),
      el('figure', {}, el('figcaption', { text: 'Candidate' }),
        el('pre', { class: 'json candidate-json', tabindex: 0, text: e.candidate ? pretty(e.candidate) : '(no event)' }))));
}

// ---- shadow run

/** Polls GET /admin/shadow every 2 s while the Candidates view is shown. */
function watchShadow() {
  const generation = ++shadowWatch;
  const tick = async () => {
    if (generation !== shadowWatch || current !== 'candidates') return;
    if (!document.hidden) await loadShadow();
    if (generation === shadowWatch && current === 'candidates') setTimeout(tick, 2000);
  };
  tick();
}

let shadowShown = null;

async function loadShadow() {
  const out = $('#shadow-status');
  let s;
  try {
    s = await api('/admin/shadow');
  } catch (e) {
    $('#shadow-stop').hidden = true;
    if (e.status === 404) {
      shadowShown = null;
      setStatus(out, '', 'No shadow run yet.', 'Open a candidate and start one.');
      $('#shadow-report').replaceChildren();
    } else {
      setStatus(out, 'bad', 'Could not read the shadow run.', e.message);
    }
    return;
  }
  $('#shadow-stop').hidden = !s.running;
  const who = `${s.candidate.name} ${s.candidate.version} (sha256 ${sha(s.candidate.sha256)})`;
  if (s.running) {
    setStatus(out, 'ok', `Shadowing ${who}`, `since ${when(s.started_at)}, started by ${s.started_by}.`);
  } else {
    setStatus(out, '', `Stopped: ${who}`, `ran from ${when(s.started_at)} to ${when(s.stopped_at)}.`);
  }
  // Unchanged numbers are left alone: open samples and the focus stay where they are.
  const shown = JSON.stringify(s);
  if (shown === shadowShown) return;
  shadowShown = shown;
  const stat = (name, label, value, cls) => el('div', {}, el('dt', { text: label }), el('dd', { 'data-stat': name, class: cls, text: value }));
  const report = $('#shadow-report');
  const open = new Set([...report.querySelectorAll('details[open]')].map((d) => d.dataset.mutation));
  report.replaceChildren(
    el('dl', { class: 'stats compact', id: 'shadow-offered' },
      stat('offered', 'Offered', s.offered),
      stat('dropped', 'Dropped (over budget)', s.dropped, s.dropped ? 'warn' : null)),
    ...reportBody(s, 'shadow'));
  if (open.size) {
    for (const d of report.querySelectorAll('details[data-mutation]')) d.open = open.has(d.dataset.mutation);
  }
}

/** The status line only when its text changes, so that the live region does not chatter. */
function setStatus(node, kind, title, detail) {
  const text = `${title}${detail ? ` ${detail}` : ''}`;
  if (node.textContent === text && node.className === `result ${kind}`) return;
  say(node, kind, title, detail);
}

$('#cand-shadow-start').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const id = openCandidate;
  const out = $('#shadow-status');
  try {
    await api(candidatePath(id, '/shadow'), { method: 'POST' });
    shadowShown = null;
  } catch (e) {
    say(out, 'bad', 'The shadow run could not start.', e.message);
    out.focus();
    return;
  }
  await loadShadow();
  await loadCandidates();
  await showCandidate(id, { focus: false });
  out.focus();
}));

$('#shadow-stop').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const out = $('#shadow-status');
  try {
    await api('/admin/shadow', { method: 'DELETE' });
    shadowShown = null;
  } catch (e) {
    say(out, 'bad', 'Could not stop the shadow run.', e.message);
  }
  await loadShadow();
  await loadCandidates();
  if (openCandidate) await showCandidate(openCandidate, { focus: false });
  out.focus();
}));

// ---- promote, roll back, releases

function releaseText(r) {
  const to = r.version ? `${r.version} (sha256 ${sha(r.sha256)})` : "the mapper directory's component";
  const from = r.previous_version ? `${r.previous_version} (sha256 ${sha(r.previous_sha256)})` : "the mapper directory's component";
  return `${r.mapper}: ${from} → ${to}`;
}

$('#cand-promote').addEventListener('click', async () => {
  const c = candidates.find((x) => x.id === openCandidate) || await api(candidatePath(openCandidate)).catch(() => null);
  if (!c) return;
  const out = $('#promote-result');
  out.replaceChildren();
  const answer = await confirmAction($('#promote-confirm'), {
    text: `Promote ${c.name} ${c.version} (sha256 ${sha(c.sha256)}) into the live set, replacing ${replacesText(c)}? Every replica switches to it; the set live now stays ready for a one-step rollback.`,
    go: 'Promote now',
  });
  if (!answer) {
    say(out, '', 'Promotion cancelled; nothing changed.');
    out.focus();
    return;
  }
  await promote(c, false);
});

async function promote(c, allowBreaking) {
  const out = $('#promote-result');
  say(out, '', `Promoting ${c.name} ${c.version}…`);
  try {
    const r = await api(candidatePath(c.id, `/promote${allowBreaking ? '?allow_breaking=true' : ''}`), { method: 'POST' });
    say(out, 'ok', `Promoted: ${r.mapper} ${r.version ?? ''} is live`, `(release ${r.generation}; ${releaseText(r)}). Roll back below if it misbehaves.`);
  } catch (e) {
    if (e.status === 409 && !allowBreaking) {
      out.replaceChildren();
      const choice = await breakingConfirm(c, e.message);
      if (choice) return promote(c, true);
      say(out, '', 'Promotion cancelled; the live set is unchanged.');
    } else {
      say(out, 'bad', 'The promotion was refused; the live set is unchanged.', e.message);
    }
  }
  await Promise.all([loadReleases(), loadCandidates()]);
  if (openCandidate === c.id && candidates.some((x) => x.id === c.id)) await showCandidate(c.id, { focus: false });
  out.focus();
}

/** Shows the breaking schema changes the server named; resolves true for "promote anyway". */
function breakingConfirm(c, detail) {
  const container = $('#promote-confirm');
  // "…(N breaking changes; …): first; second" — one item per change when it reads so.
  const at = detail.indexOf('): ');
  const changes = at < 0 ? [] : detail.slice(at + 3).split('; ').filter(Boolean);
  return new Promise((resolve) => {
    const done = (v) => { container.replaceChildren(); resolve(v); };
    const panel = el('div', { class: 'confirm risky', role: 'group', 'aria-labelledby': 'promote-breaking-title', 'aria-describedby': 'promote-breaking-detail' },
      el('p', { id: 'promote-breaking-title' }, el('strong', { text: `Promoting ${c.name} ${c.version} would break consumers of its events.` })),
      el('p', { id: 'promote-breaking-detail', class: 'breaking-detail', text: detail }),
      changes.length ? el('ul', { class: 'breaking-changes' }, changes.map((t) => el('li', { class: 'mono', text: t }))) : null,
      el('p', { class: 'hint', text: 'Promote anyway only when the break is intended (a new major version its consumers are ready for).' }),
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'danger', text: 'Promote anyway', onclick: () => done(true) }),
        el('button', { type: 'button', class: 'secondary', text: 'Keep the live set', onclick: () => done(false) })));
    container.replaceChildren(panel);
    panel.querySelector('button.secondary').focus();
  });
}

let releases = [];

async function loadReleases() {
  const tbody = $('#releases-table tbody');
  try {
    releases = listOf(await api('/admin/mappers/releases'), 'releases');
  } catch (e) {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'empty', text: `Could not list releases: ${e.message}` })));
    return;
  }
  $('#rollback').disabled = releases.length === 0;
  tbody.replaceChildren(...(releases.length ? releases.map((r) => el('tr', { 'data-release': r.generation, 'data-action': r.action },
    el('td', { class: 'num', text: r.generation }),
    el('td', { text: when(r.at) }),
    el('td', {}, el('span', { class: `state state-${r.action === 'promote' ? 'published' : 'pending'}`, text: r.action }),
      r.reverts !== null && r.reverts !== undefined ? el('span', { class: 'sub', text: `reverts #${r.reverts}` }) : null),
    el('td', { text: r.mapper }),
    el('td', {}, releaseSide(r.previous_version, r.previous_sha256)),
    el('td', {}, releaseSide(r.version, r.sha256)),
    el('td', { text: r.by }))) : [el('tr', {}, el('td', { colspan: 7, class: 'empty', text: 'No promotion yet: the live set is what MAPPERS_DIR or MAPPER_BUILTIN gives.' }))]));
}

$('#rollback').addEventListener('click', async () => {
  const out = $('#rollback-result');
  out.replaceChildren();
  const latest = releases[0];
  const answer = await confirmAction($('#rollback-confirm'), {
    text: latest
      ? `Roll back release ${latest.generation} (${latest.action} of ${releaseText(latest)})? The set before it goes live again on every replica.`
      : 'Roll back the latest release? The set before it goes live again on every replica.',
    go: 'Roll back now',
  });
  if (!answer) {
    say(out, '', 'Rollback cancelled; nothing changed.');
    out.focus();
    return;
  }
  say(out, '', 'Rolling back…');
  try {
    const r = await api('/admin/mappers/rollback', { method: 'POST' });
    say(out, 'ok', `Rolled back: ${releaseText(r)}`, `(release ${r.generation}).`);
  } catch (e) {
    say(out, 'bad', e.status === 409 ? 'Nothing to roll back.' : 'The rollback was refused; the live set is unchanged.', e.message);
  }
  await Promise.all([loadReleases(), loadCandidates()]);
  if (openCandidate && candidates.some((x) => x.id === openCandidate)) await showCandidate(openCandidate, { focus: false });
  out.focus();
});

// ---------------------------------------------------------------- start

startFlow();
loadHour();
show(location.hash.slice(1) || 'mappers', { focus: false });
