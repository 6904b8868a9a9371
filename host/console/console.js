// Pakaura console: a framework-free page over the documented admin API (/admin/*).
// No build step, no dependencies. Every value from the server is inserted as text
// (textContent), never as HTML. State-changing requests carry the session's CSRF
// token (from the page's <meta>); the session itself is an HttpOnly cookie that
// scripts cannot read.

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const VIEWS = ['mappers', 'flow', 'envelopes', 'dead-letters', 'playground'];
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
    window.location.assign('/console/login');
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

function short(id) {
  return id ? String(id).slice(0, 8) : '–';
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

$('#reload-mappers').addEventListener('click', (event) => busy(event.currentTarget, async () => {
  const out = $('#reload-result');
  say(out, '', 'Reloading…');
  try {
    const { report } = await api('/admin/mappers/reload', { method: 'POST' });
    say(out, 'ok', 'Reloaded.', `${report.mappers.length} mapper(s) live since ${when(report.loaded_at)}.`);
    renderMappers($('#mappers-table tbody'), report.mappers);
  } catch (e) {
    say(out, 'bad', 'Reload refused; the previous set stays live.', e.message);
  }
}));

// ---------------------------------------------------------------- flow

const series = [];
let lastSnapshot = null;

function startFlow() {
  const status = $('#live-status');
  const source = new EventSource('/admin/flow/stream');
  source.addEventListener('snapshot', (event) => {
    const snapshot = JSON.parse(event.data);
    series.push(snapshot);
    while (series.length > HISTORY) series.shift();
    status.className = 'live ok';
    status.textContent = `Live · ${new Date(snapshot.at).toLocaleTimeString()}`;
    renderFlow(snapshot);
    react(lastSnapshot, snapshot);
    lastSnapshot = snapshot;
  });
  source.addEventListener('error', () => {
    status.className = 'live bad';
    status.textContent = 'Reconnecting…';
    // EventSource retries by itself; a lapsed session is found by an ordinary call
    // (which redirects to the login form on 401).
    api('/admin/mappers').catch(() => {});
  });
}

function renderFlow(s) {
  $('#stat-outbox').textContent = s.outbox_pending;
  $('#stat-pending').textContent = s.envelopes_pending;
  $('#stat-lag').textContent = s.lag_seconds > 0 ? seconds(s.lag_seconds) : 'none';
  $('#stat-dead').textContent = s.dead_letters_open;
  $('#stat-published').textContent = s.relay.published;
  $('#stat-rate').textContent = `${s.rates.published.toFixed(1)}/s`;
  $('#stat-retried').textContent = s.relay.retried;
  $('#stat-relay').textContent = s.error ? s.error : (s.relay_running ? 'running' : 'stopped');
  const badge = $('#dead-count');
  badge.hidden = s.dead_letters_open === 0;
  badge.textContent = s.dead_letters_open;
  badge.setAttribute('aria-label', `${s.dead_letters_open} open`);
  chart('rate', series.map((p) => p.rates.published), 'line', 'events per second');
  chart('pending', series.map((p) => p.outbox_pending + p.envelopes_pending), 'area', 'pending');
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** Draws `values` (oldest first) into the 600×140 chart `name`, with its scale. */
function chart(name, values, kind, unit) {
  const target = $(`#chart-${name}`);
  const width = 600;
  const height = 140;
  const max = Math.max(1, ...values);
  const step = width / (HISTORY - 1);
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
  const span = `last ${seconds(Math.max(0, values.length - 1) * 2)}`;
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
}

// ---------------------------------------------------------------- envelopes

let envelopesLoading = false;
let openEnvelope = null;

function envelopeQuery() {
  const form = $('#envelope-filter');
  const params = new URLSearchParams();
  for (const name of ['state', 'type', 'topic', 'task_id', 'limit']) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params.toString();
}

async function loadEnvelopes({ quiet = false } = {}) {
  if (envelopesLoading) return;
  envelopesLoading = true;
  const status = $('#envelopes-status');
  try {
    const { envelopes } = await api(`/admin/envelopes?${envelopeQuery()}`);
    renderEnvelopes(envelopes);
    // The count is plain text, not a live region: live updates must not chatter.
    $('#envelopes-count').textContent = `${envelopes.length} envelope(s), newest first${$('#f-live').checked ? '; updating live' : ''}.`;
    if (!quiet) status.replaceChildren();
  } catch (e) {
    say(status, 'bad', 'Could not list envelopes.', e.message);
  } finally {
    envelopesLoading = false;
  }
}

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
    $('#envelope-json').textContent = pretty(e.envelope);
    $('#envelope-mutation').textContent = e.mutation ? pretty(e.mutation) : '(no longer in the outbox)';
    $('#envelope-to-playground').hidden = !e.mutation;
    $('#envelope-to-playground').onclick = () => {
      $('#pg-mutation').value = pretty(e.mutation);
      location.hash = '#playground';
    };
    detail.hidden = false;
    $('#h-envelope').focus();
  } catch (err) {
    say($('#envelopes-status'), 'bad', 'Could not open the envelope.', err.message);
  }
}

$('#envelope-close').addEventListener('click', () => {
  const id = openEnvelope;
  openEnvelope = null;
  $('#envelope-detail').hidden = true;
  for (const row of document.querySelectorAll('#envelopes-table tr.selected')) row.classList.remove('selected');
  const button = document.querySelector(`#envelopes-table tr[data-envelope="${CSS.escape(id || '')}"] button`);
  (button || $('#h-envelopes')).focus();
});

// ---------------------------------------------------------------- dead letters

let lettersLoading = false;
let lettersShown = null;

loaders['dead-letters'] = async () => {
  if (lettersLoading) return;
  lettersLoading = true;
  const list = $('#dead-letters-list');
  try {
    const { dead_letters: letters } = await api('/admin/dead-letters?limit=200');
    // Unchanged letters are left alone: open details and focus stay where they are.
    const shown = JSON.stringify(letters);
    if (shown === lettersShown) return;
    lettersShown = shown;
    keepFocus(list, 'data-letter', () => {
      if (letters.length === 0) {
        list.replaceChildren(el('p', { class: 'empty', text: 'No open dead letters.' }));
      } else {
        list.replaceChildren(...letters.map(letterCard));
      }
    });
  } catch (e) {
    lettersShown = null;
    list.replaceChildren(el('p', { class: 'empty', text: e.message }));
  } finally {
    lettersLoading = false;
  }
};

function letterCard(letter) {
  const headingId = `letter-${letter.id}`;
  return el('article', { class: 'card', 'data-letter': letter.id, 'aria-labelledby': headingId },
    el('h2', { id: headingId, text: `${letter.kind === 'publish' ? 'Refused publish' : 'Mapping failed'} · ${letter.mapper ?? 'host'}` }),
    el('p', { class: 'reason', text: letter.reason }),
    el('dl', {},
      el('div', { class: 'row' }, el('dt', { text: 'Attempts' }), el('dd', { text: letter.attempts })),
      el('div', { class: 'row' }, el('dt', { text: 'Parked' }), el('dd', { text: when(letter.created_at) })),
      el('div', { class: 'row' }, el('dt', { text: 'Mutation' }), el('dd', { class: 'mono', text: short(letter.mutation_id) })),
      letter.envelope_id ? el('div', { class: 'row' }, el('dt', { text: 'Envelope' }), el('dd', { class: 'mono', text: short(letter.envelope_id) })) : null),
    el('details', {},
      el('summary', { text: 'Mutation JSON' }),
      el('pre', { class: 'json', tabindex: 0, text: letter.mutation ? pretty(letter.mutation) : '(no longer in the outbox)' })),
    el('div', { class: 'actions' },
      el('button', {
        type: 'button', text: 'Replay',
        'aria-label': `Replay dead letter ${short(letter.id)} (${letter.mapper ?? 'host'})`,
        onclick: (event) => replay(event.currentTarget, letter),
      }),
      letter.mutation ? el('button', {
        type: 'button', class: 'secondary', text: 'Try in playground',
        onclick: () => { $('#pg-mutation').value = pretty(letter.mutation); location.hash = '#playground'; },
      }) : null));
}

async function replay(button, letter) {
  const out = $('#replay-result');
  await busy(button, async () => {
    try {
      const r = await api(`/admin/dead-letters/${encodeURIComponent(letter.id)}/replay`, { method: 'POST' });
      const queued = r.envelopes.length ? r.envelopes.map(short).join(', ') : 'none';
      say(out, 'ok', `Replayed dead letter ${short(r.resolved)}.`, `Resolved (${r.kind}); envelopes queued: ${queued}.`);
    } catch (e) {
      say(out, 'bad', `Replay of ${short(letter.id)} failed.`, e.message);
    }
  });
  await loaders['dead-letters']();
  // The replayed letter's card is gone: the result is the next thing to read.
  if (!document.activeElement || document.activeElement === document.body) out.focus();
}

$('#dead-refresh').addEventListener('click', () => loaders['dead-letters']());

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

// ---------------------------------------------------------------- start

startFlow();
show(location.hash.slice(1) || 'mappers', { focus: false });
