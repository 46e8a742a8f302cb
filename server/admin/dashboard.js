// The admin dashboard, in the browser: polls <admin-path>/api/stats?history=1 every
// second and draws it — one card per app (figures, actions, uPlot charts of the last
// five minutes) and one table row per interpreter slot, updated in place so that a
// button under the pointer is never replaced mid-click. Everything shown is written as
// text (textContent), never as HTML: paths come from clients.
/* global uPlot */
'use strict';

const BASE = document.body.dataset.base;
const POLL_MS = 1000;
const root = document.getElementById('dashboard');
const cards = new Map();
let banner;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function formatBytes(bytes) {
  if (!bytes) return '–';
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

function formatDuration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

function formatMs(ms) {
  return ms === null || ms === undefined ? '–' : `${ms} ms`;
}

function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

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

/** Everything that belongs to one app: built once, updated every poll. */
function buildCard(app) {
  const figures = {};
  const figure = (name, label) => {
    figures[name] = el('dd', { 'data-figure': name });
    return [el('dt', {}, label), figures[name]];
  };
  const reload = el('button', { type: 'button', class: 'reload' }, 'reload');
  reload.addEventListener('click', () => act('reload', { app: app.name }, reload));
  const title = el('h2', {}, app.name);
  const subtitle = el('p', { class: 'subtitle' });
  const list = el('dl', { class: 'figures' },
    ...figure('workers', 'workers min/max/now'), ...figure('queue', 'queue'), ...figure('inFlight', 'in flight'),
    ...figure('rate', 'requests/s'), ...figure('latency', 'p50 / p95 / p99'), ...figure('status', 'by status'),
    ...figure('rejected', 'rejected 503 / 504'), ...figure('exits', 'exits'));
  const throughput = el('div', { class: 'chart' });
  const latency = el('div', { class: 'chart' });
  const rows = el('tbody');
  const table = el('table', { class: 'interpreters' },
    el('thead', {}, el('tr', {}, ...['slot', 'worker', 'gen', 'state', 'serving', 'served', 'memory', 'uptime', 'boot', 'restarts', 'last exit', ''].map((name) => el('th', {}, name)))),
    rows);
  const section = el('section', { class: 'app', 'data-app': app.name },
    el('header', {}, title, reload), subtitle, list, el('div', { class: 'charts' }, throughput, latency), table);
  root.append(section);
  const card = { section, subtitle, figures, rows, rowsBySlot: new Map(), charts: null, chartHosts: { throughput, latency } };
  cards.set(app.name, card);
  return card;
}

function buildCharts(card) {
  const width = Math.max(280, Math.floor(card.chartHosts.throughput.clientWidth || 420));
  const common = { width, height: 160, legend: { live: false }, scales: { x: { time: true } } };
  const clock = (_u, splits) => splits.map((ts) => new Date(ts * 1000).toLocaleTimeString([], { hour12: false }));
  const xAxis = { values: clock, space: 70 };
  const throughput = new uPlot({
    ...common, title: 'requests per second',
    series: [{}, { label: 'req/s', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)', width: 1.5 }],
    axes: [xAxis, { size: 50 }],
  }, [[], []], card.chartHosts.throughput);
  const latency = new uPlot({
    ...common, title: 'latency (ms)',
    series: [{},
      { label: 'p50', stroke: '#16a34a', width: 1.5, spanGaps: false },
      { label: 'p95', stroke: '#d97706', width: 1.5, spanGaps: false },
      { label: 'p99', stroke: '#dc2626', width: 1.5, spanGaps: false }],
    axes: [xAxis, { size: 50 }],
  }, [[], [], [], []], card.chartHosts.latency);
  card.charts = { throughput, latency };
}

function updateCard(card, app) {
  const boots = app.interpreters.map((interpreter) => interpreter.boot).filter(Boolean);
  setText(card.subtitle, `${app.kind}${app.version ? ` · ${app.version}` : ''} · generation ${app.generation} · ${app.file}${app.available ? '' : ' · NOT AVAILABLE (failing to boot)'}`);
  card.section.classList.toggle('unavailable', !app.available);
  const f = card.figures;
  setText(f.workers, `${app.workers.min} / ${app.workers.max} / ${app.workers.now}`);
  setText(f.queue, app.queue);
  setText(f.inFlight, app.inFlight);
  setText(f.rate, app.requests.perSecond);
  setText(f.latency, `${formatMs(app.latencyMs.p50)} / ${formatMs(app.latencyMs.p95)} / ${formatMs(app.latencyMs.p99)}`);
  setText(f.status, Object.entries(app.requests.byStatusClass).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(' · ') || '–');
  setText(f.rejected, `${app.requests.rejected['503']} / ${app.requests.rejected['504']}`);
  setText(f.exits, Object.entries(app.exits).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(' · ') || 'none');
  card.section.dataset.bootKinds = [...new Set(boots.map((boot) => boot.kind))].join(',');

  const seen = new Set();
  for (const interpreter of app.interpreters) {
    const key = String(interpreter.slot ?? `w${interpreter.workerId}`);
    seen.add(key);
    let row = card.rowsBySlot.get(key);
    if (!row) {
      row = buildRow(app.name);
      card.rowsBySlot.set(key, row);
    }
    updateRow(row, interpreter, key);
    card.rows.append(row.tr); // keeps slot order; moving a node keeps its listeners
  }
  for (const [key, row] of card.rowsBySlot) {
    if (seen.has(key)) continue;
    row.tr.remove();
    card.rowsBySlot.delete(key);
  }

  if (app.history && typeof uPlot === 'function') {
    if (!card.charts) buildCharts(card);
    const history = app.history;
    const xs = history.requests.map((_, index) => history.start + index);
    card.charts.throughput.setData([xs, history.requests]);
    card.charts.latency.setData([xs, history.p50, history.p95, history.p99]);
  }
}

function buildRow(appName) {
  const cells = {};
  const cell = (name) => (cells[name] = el('td', { class: name }));
  const recycle = el('button', { type: 'button', class: 'recycle' }, 'recycle');
  const tr = el('tr', {},
    ...['slot', 'worker', 'generation', 'state', 'serving', 'served', 'memory', 'uptime', 'boot', 'restarts', 'lastExit'].map(cell),
    el('td', {}, recycle));
  const bootSummary = el('span', { class: 'boot-summary' });
  const bootStages = el('span', { class: 'stages' });
  cells.boot.append(bootSummary, bootStages);
  const row = { tr, cells, recycle, bootSummary, bootStages, workerId: undefined };
  recycle.addEventListener('click', () => act('recycle', { app: appName, workerId: row.workerId }, recycle));
  return row;
}

function updateRow(row, interpreter, key) {
  row.workerId = interpreter.workerId;
  row.tr.dataset.slot = key;
  row.tr.dataset.workerId = String(interpreter.workerId);
  row.tr.dataset.state = interpreter.state;
  const c = row.cells;
  setText(c.slot, `#${key}`);
  setText(c.worker, interpreter.workerId);
  setText(c.generation, interpreter.generation);
  setText(c.state, interpreter.state);
  c.state.className = `state state-${interpreter.state}`;
  const request = interpreter.request;
  setText(c.serving, request ? `${request.method} ${request.path} · ${(request.runningMs / 1000).toFixed(1)} s` : '');
  setText(c.served, interpreter.served);
  setText(c.memory, formatBytes(interpreter.memoryBytes));
  setText(c.uptime, formatDuration(interpreter.uptimeSeconds));
  const boot = interpreter.boot;
  setText(row.bootSummary, boot ? (boot.error ? `failed: ${boot.error}` : `${boot.kind} ${boot.totalMs} ms`) : 'booting…');
  setText(row.bootStages, boot ? boot.stages.map((stage) => `${stage.name} ${stage.ms}`).join(' · ') : '');
  setText(c.restarts, interpreter.restarts);
  setText(c.lastExit, interpreter.lastExit ?? '–');
}

let serverLine;
async function poll() {
  try {
    const response = await fetch(`${BASE}/api/stats?history=1`, { credentials: 'same-origin', cache: 'no-store' });
    if (response.status === 404 || response.status === 401) {
      showBanner('Not authorized any more: sign in again at ' + `${BASE}/login`);
      return;
    }
    const stats = await response.json();
    setText(serverLine, `pid ${stats.server.pid} · Node ${stats.server.node} · up ${formatDuration(stats.server.uptimeSeconds)} · updated ${new Date(stats.server.now).toLocaleTimeString()}`);
    for (const app of stats.apps) updateCard(cards.get(app.name) ?? buildCard(app), app);
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
  banner = el('p', { class: 'banner', hidden: true });
  root.append(el('header', { class: 'top' }, el('h1', {}, 'interpool'), serverLine), banner);
  window.addEventListener('resize', () => {
    for (const card of cards.values()) {
      if (!card.charts) continue;
      const width = Math.max(280, Math.floor(card.chartHosts.throughput.clientWidth));
      card.charts.throughput.setSize({ width, height: 160 });
      card.charts.latency.setSize({ width, height: 160 });
    }
  });
  void poll();
}

start();
