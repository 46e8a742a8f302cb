// The admin dashboard, in the browser: polls <admin-path>/api/stats?history=1 every
// second and draws it — a summary of the whole process first, then the apps table, one
// compact row per app (dashboard-app.js), failing apps first. Rows expand to their
// interpreters and charts (dashboard-charts.js).
import { AppView, APP_COLUMNS } from './dashboard-app.js';
import { el, formatBytes, formatClock, formatDuration, formatRate, setText } from './dashboard-dom.js';

const BASE = document.body.dataset.base;
const POLL_MS = 1000;
const STATES = ['idle', 'busy', 'booting', 'draining', 'failed', 'stuck'];
const root = document.getElementById('dashboard');
const views = new Map();
let banner;
let serverLine;
let summary;
let appsTable;

async function act(path, body, button) {
  button.disabled = true;
  try {
    const response = await fetch(`${BASE}/api/${path}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-interpool-admin': '1' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    showBanner(response.ok ? '' : `${path} failed: ${text}`);
  } catch (error) {
    showBanner(`${path} failed: ${error.message}`);
  } finally {
    setTimeout(() => { button.disabled = false; }, 500);
  }
}

function showBanner(text) {
  setText(banner, text);
  banner.hidden = text === '';
}

/** The summary row: one tile per figure, a <dl> for screen readers. */
function buildSummary() {
  const tiles = {};
  const tile = (name, label) => {
    tiles[name] = el('dd', { 'data-summary': name });
    return el('div', { class: `tile tile-${name}` }, el('dt', {}, label), tiles[name]);
  };
  const node = el('section', { class: 'summary', 'aria-label': 'server summary' },
    el('dl', {},
      tile('memory', 'memory (RSS · heap)'), tile('cpu', 'CPU'), tile('uptime', 'uptime'), tile('rate', 'requests/s'),
      tile('errors', 'errors (5xx, 60 s)'), tile('queue', 'queue · in flight'), tile('interpreters', 'interpreters'),
      tile('engines', 'engines')));
  return { node, tiles };
}

function updateSummary(stats) {
  const t = summary.tiles;
  const { process: usage, apps } = stats;
  setText(t.memory, `${formatBytes(usage.rssBytes)} · ${formatBytes(usage.heapUsedBytes)}`);
  t.memory.title = `resident set ${usage.rssBytes} bytes; main thread's V8 heap ${usage.heapUsedBytes} of ${usage.heapTotalBytes} bytes`;
  setText(t.cpu, `${usage.cpuPercent.toFixed(usage.cpuPercent < 10 ? 1 : 0)} %`);
  t.cpu.title = `of one core, over the last ${usage.cpuWindowSeconds} s`;
  setText(t.uptime, formatDuration(stats.server.uptimeSeconds));
  setText(t.rate, Math.round(apps.reduce((sum, app) => sum + app.requests.perSecond, 0) * 10) / 10);
  const responses = apps.reduce((sum, app) => sum + app.requests.errors.responses, 0);
  const serverErrors = apps.reduce((sum, app) => sum + app.requests.errors.serverErrors, 0);
  setText(t.errors, formatRate(responses === 0 ? null : serverErrors / responses));
  t.errors.classList.toggle('bad', serverErrors > 0);
  setText(t.queue, `${apps.reduce((sum, app) => sum + app.queue, 0)} · ${apps.reduce((sum, app) => sum + app.inFlight, 0)}`);
  const counts = Object.fromEntries(STATES.map((state) => [state, 0]));
  for (const app of apps) for (const interpreter of app.interpreters) counts[interpreter.state]++;
  setText(t.interpreters, STATES.filter((state) => counts[state] > 0 || state === 'idle' || state === 'busy').map((state) => `${counts[state]} ${state}`).join(' · '));
  t.interpreters.classList.toggle('bad', counts.failed > 0);
  // Apps grouped by engine: "Python 3.14.2 (Pyodide 314.0.7): /py, /api · Node 24.11.0: /".
  const byEngine = new Map();
  for (const app of apps) byEngine.set(app.engine, [...(byEngine.get(app.engine) ?? []), app.name]);
  setText(t.engines, [...byEngine].map(([engine, names]) => `${engine}: ${names.join(', ')}`).join(' · '));
}

function buildAppsTable() {
  const table = el('table', { class: 'apps' },
    el('caption', { class: 'visually-hidden' }, 'apps: expand a row for its interpreters and charts'),
    el('colgroup', {}, ...APP_COLUMNS.map((name) => el('col', { class: `col-${name.split(' ')[0].replace(/[^a-z0-9]/g, '')}` }))),
    el('thead', {}, el('tr', {}, ...APP_COLUMNS.map((name) => el('th', { scope: 'col' }, name === 'actions' ? el('span', { class: 'visually-hidden' }, name) : name)))));
  return table;
}

/** Failing apps first, then the rest in mount order; the DOM is touched only when the order changes. */
function placeApps(apps) {
  const ordered = [...apps.filter((app) => !app.available), ...apps.filter((app) => app.available)].map((app) => views.get(app.name).body);
  const current = [...appsTable.tBodies];
  if (ordered.length === current.length && ordered.every((body, index) => body === current[index])) return;
  // Moving a node drops its focus: put it back.
  const focused = document.activeElement;
  for (const body of ordered) appsTable.append(body);
  if (focused instanceof HTMLElement && focused !== document.activeElement) focused.focus({ preventScroll: true });
}

async function poll() {
  try {
    const response = await fetch(`${BASE}/api/stats?history=1`, { credentials: 'same-origin', cache: 'no-store' });
    if (response.status === 404 || response.status === 401) {
      showBanner(`Not authorized any more: sign in again at ${BASE}/login`);
      return;
    }
    const stats = await response.json();
    setText(serverLine, `pid ${stats.server.pid} · Node ${stats.server.node} · updated ${formatClock(stats.server.now)}`);
    updateSummary(stats);
    for (const app of stats.apps) {
      let view = views.get(app.name);
      if (!view) {
        view = new AppView(app, act);
        views.set(app.name, view);
      }
      view.update(app);
    }
    placeApps(stats.apps);
    root.dataset.updatedAt = String(stats.server.now);
    if (banner.textContent.startsWith('Cannot reach')) showBanner('');
  } catch (error) {
    showBanner(`Cannot reach the server: ${error.message}`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function start() {
  root.textContent = '';
  serverLine = el('p', { class: 'server' });
  banner = el('p', { class: 'banner', role: 'status', hidden: true });
  summary = buildSummary();
  appsTable = buildAppsTable();
  root.append(el('header', { class: 'top' }, el('h1', {}, 'interpool'), serverLine), banner, summary.node, appsTable);
  window.addEventListener('resize', () => { for (const view of views.values()) view.resize(); });
  void poll();
}

start();
