// One app on the dashboard: a <tbody> of the apps table holding its compact row (figures,
// sparkline, reload), its boot failure when it has one (always shown), and its details,
// revealed by the row's expand button: more figures, one row per interpreter slot, and
// the two charts. Built once, updated in place every poll, so that a button under the
// pointer or the keyboard focus is never replaced.
import { buildCharts, buildSparkline, destroyCharts, resizeCharts, updateCharts, updateSparkline } from './dashboard-charts.js';
import { el, formatBytes, formatClock, formatDuration, formatLatencies, formatRate, setText } from './dashboard-dom.js';

/** The apps table's columns; the row's cells below follow this order. */
export const APP_COLUMNS = ['app', 'status', 'engine', 'workers', 'queue · in flight', 'req/s', 'last 2 min', 'p50 / p95 / p99', '5xx (60 s)', 'memory', 'actions'];
const INTERPRETER_COLUMNS = ['slot', 'worker', 'gen', 'state', 'serving', 'served', 'memory', 'uptime', 'boot', 'restarts', 'last exit', 'actions'];

let nextId = 1;

export class AppView {
  constructor(app, act) {
    this.name = app.name;
    this.act = act;
    this.expanded = false;
    this.charts = null;
    this.rowsBySlot = new Map();
    const id = nextId++;
    this.body = el('tbody', { class: 'app', 'data-app': app.name });

    // The compact row.
    this.toggle = el('button', { type: 'button', class: 'expand', 'aria-expanded': 'false', 'aria-controls': `app-details-${id}` },
      el('span', { class: 'chevron', 'aria-hidden': 'true' }), app.name);
    this.toggle.addEventListener('click', () => this.setExpanded(!this.expanded));
    this.reload = el('button', { type: 'button', class: 'reload', 'aria-label': `reload ${app.name}` }, 'reload');
    this.reload.addEventListener('click', () => act('reload', { app: app.name }, this.reload));
    this.cells = {};
    const cell = (name, ...children) => (this.cells[name] = el('td', { class: name }, ...children));
    this.spark = buildSparkline();
    this.row = el('tr', { class: 'app-row' },
      el('th', { scope: 'row', class: 'name' }, this.toggle),
      cell('status'), cell('engine'), cell('workers'), cell('queue'), cell('rate'), cell('spark', this.spark.node),
      cell('latency'), cell('errors'), cell('memory'), el('td', { class: 'actions' }, this.reload));

    // The boot failure, visible whether expanded or not.
    this.failure = buildFailure(app.name);
    this.failureRow = el('tr', { class: 'boot-failure', hidden: true }, el('td', { colspan: String(APP_COLUMNS.length) }, this.failure.node));

    // The details.
    this.figures = {};
    const figure = (name, label) => {
      this.figures[name] = el('dd', { 'data-figure': name });
      return [el('dt', {}, label), this.figures[name]];
    };
    this.rows = el('tbody');
    const chartHosts = { throughput: el('div', { class: 'chart' }), latency: el('div', { class: 'chart' }) };
    this.chartHosts = chartHosts;
    this.details = el('tr', { class: 'details', id: `app-details-${id}`, hidden: true },
      el('td', { colspan: String(APP_COLUMNS.length) },
        el('dl', { class: 'figures' },
          ...figure('file', 'file'), ...figure('generation', 'generation'), ...figure('status', 'by status'),
          ...figure('rejected', 'rejected 503 / 504'), ...figure('exits', 'exits'), ...figure('store', 'shared store')),
        el('table', { class: 'interpreters' },
          el('caption', { class: 'visually-hidden' }, `interpreters of ${app.name}`),
          el('thead', {}, el('tr', {}, ...INTERPRETER_COLUMNS.map((name) => el('th', { scope: 'col' }, name === 'actions' ? el('span', { class: 'visually-hidden' }, name) : name)))),
          this.rows),
        el('div', { class: 'charts' }, chartHosts.throughput, chartHosts.latency)));
    this.body.append(this.row, this.failureRow, this.details);
  }

  setExpanded(expanded) {
    this.expanded = expanded;
    this.toggle.setAttribute('aria-expanded', String(expanded));
    this.details.hidden = !expanded;
    this.body.classList.toggle('expanded', expanded);
    if (expanded && this.lastApp) this.update(this.lastApp);
    if (!expanded && this.charts) {
      destroyCharts(this.charts);
      this.charts = null;
    }
  }

  resize() {
    if (this.charts) resizeCharts(this.charts);
  }

  update(app) {
    this.lastApp = app;
    const failing = !app.available;
    this.body.classList.toggle('failing', failing);
    this.body.classList.toggle('reload-failed', !failing && Boolean(app.reloadFailure));
    this.body.dataset.state = failing ? 'failing' : 'ok';
    const c = this.cells;
    setText(c.status, statusOf(app));
    setText(c.engine, app.engine);
    setText(c.workers, `${app.workers.now} / ${app.workers.max}`);
    setText(c.queue, `${app.queue} · ${app.inFlight}`);
    setText(c.rate, app.requests.perSecond);
    setText(c.latency, formatLatencies(app.latencyMs));
    setText(c.errors, formatRate(app.requests.errors.rate));
    c.errors.classList.toggle('bad', (app.requests.errors.rate ?? 0) > 0);
    setText(c.memory, formatBytes(app.memoryBytes));
    if (app.history) updateSparkline(this.spark, app.history.requests);

    // A failing boot, or else a failed reload (the running interpreters kept serving).
    updateFailure(this.failure, app.bootFailure ?? app.reloadFailure, app.file);
    this.failureRow.hidden = !app.bootFailure && !app.reloadFailure;

    if (!this.expanded) return;
    const f = this.figures;
    setText(f.file, app.file);
    setText(f.generation, app.generation);
    setText(f.status, Object.entries(app.requests.byStatusClass).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(' · ') || '–');
    setText(f.rejected, `${app.requests.rejected['503']} / ${app.requests.rejected['504']}`);
    setText(f.exits, Object.entries(app.exits).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(' · ') || 'none');
    setText(f.store, describeStore(app.sharedStore));
    this.#updateInterpreters(app);
    if (app.history) {
      this.charts ??= buildCharts(this.chartHosts);
      if (this.charts) updateCharts(this.charts, app.history);
    }
  }

  #updateInterpreters(app) {
    const seen = new Set();
    let previous = null;
    for (const interpreter of app.interpreters) {
      const key = String(interpreter.slot ?? `w${interpreter.workerId}`);
      seen.add(key);
      let row = this.rowsBySlot.get(key);
      if (!row) {
        row = buildInterpreterRow(app.name, this.act);
        this.rowsBySlot.set(key, row);
      }
      updateInterpreterRow(row, interpreter, key);
      // Keep slot order, moving a row only when it is out of place (a move drops focus).
      const wanted = previous ? previous.nextSibling : this.rows.firstChild;
      if (wanted !== row.tr) this.rows.insertBefore(row.tr, wanted);
      previous = row.tr;
    }
    for (const [key, row] of this.rowsBySlot) {
      if (seen.has(key)) continue;
      row.tr.remove();
      this.rowsBySlot.delete(key);
    }
  }
}

function statusOf(app) {
  if (app.bootFailure && !app.available) {
    const retryIn = Math.max(0, Math.round((app.bootFailure.nextRetryAt - Date.now()) / 1000));
    return `failing to boot · ${app.bootFailure.attempts} ${app.bootFailure.attempts === 1 ? 'attempt' : 'attempts'} · retry in ${retryIn} s`;
  }
  if (!app.available) return 'unavailable';
  if (app.reloadFailure) return 'serving · reload failed';
  if (app.interpreters.length > 0 && app.interpreters.every((interpreter) => interpreter.state === 'booting')) return 'booting';
  return 'serving';
}

/** The app's shared store: its keys, bytes and operations a second (Redis: whether it is reachable). */
function describeStore(store) {
  if (!store) return '–';
  const size = store.bytes < 1024 * 1024 ? `${(store.bytes / 1024).toFixed(store.bytes < 10 * 1024 ? 1 : 0)} KiB` : formatBytes(store.bytes);
  const figures = `${store.keys} ${store.keys === 1 ? 'key' : 'keys'} · ${size} · ${store.opsPerSecond < 10 ? store.opsPerSecond.toFixed(1) : Math.round(store.opsPerSecond)} ops/s`;
  if (store.kind !== 'redis') return figures;
  return store.available ? `Redis: ${figures}` : 'Redis: unreachable (operations fail with SharedStoreUnavailable)';
}

function buildFailure(appName) {
  const exception = el('p', { class: 'exception' });
  const type = el('strong', { class: 'type' });
  const message = el('span', { class: 'message' });
  exception.append(type, message);
  const retry = el('p', { class: 'retry' });
  const fix = el('p', { class: 'fix' });
  const frames = el('ol', { class: 'frames', 'aria-label': 'the app\'s frames, outermost first' });
  const traceback = el('pre', { class: 'traceback' });
  const node = el('div', { class: 'boot-error', role: 'group', 'aria-label': `boot failure of ${appName}` },
    exception, retry, fix, frames, el('details', {}, el('summary', {}, 'full traceback'), traceback));
  return { node, type, message, retry, fix, frames, traceback, key: '' };
}

function updateFailure(view, failure, appFile) {
  if (!failure) return;
  setText(view.type, failure.exception?.type ?? 'boot failed');
  setText(view.message, failure.exception ? `: ${failure.exception.message}` : `: ${failure.message}`);
  setText(view.retry, failure.nextRetryAt
    ? `${failure.message} — last attempt at ${formatClock(failure.at)}, next at ${formatClock(failure.nextRetryAt)}`
    : `${failure.message} — a reload at ${formatClock(failure.at)} failed: the interpreters that were running keep serving`);
  setText(view.fix, failure.fix ? `Fix: ${failure.fix}` : '');
  view.fix.hidden = !failure.fix;
  setText(view.traceback, failure.traceback ?? '(no traceback)');
  const key = JSON.stringify(failure.frames);
  if (view.key === key) return;
  view.key = key;
  const appDir = appFile.slice(0, appFile.lastIndexOf('/') + 1);
  view.frames.replaceChildren(...failure.frames.map((frame) => {
    const where = el('code', { class: 'where', title: frame.file }, `${frame.file.startsWith(appDir) ? frame.file.slice(appDir.length) : frame.file}:${frame.line}`);
    return el('li', {}, where,
      frame.function ? el('span', { class: 'in' }, ` in ${frame.function}`) : null,
      frame.code ? el('code', { class: 'code' }, frame.code) : null);
  }));
  view.frames.hidden = failure.frames.length === 0;
}

function buildInterpreterRow(appName, act) {
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

function updateInterpreterRow(row, interpreter, key) {
  row.workerId = interpreter.workerId;
  row.tr.dataset.slot = key;
  row.tr.dataset.workerId = String(interpreter.workerId);
  row.tr.dataset.state = interpreter.state;
  row.recycle.setAttribute('aria-label', `recycle interpreter ${interpreter.workerId}`);
  const c = row.cells;
  setText(c.slot, `#${key}`);
  setText(c.worker, interpreter.workerId);
  setText(c.generation, interpreter.generation);
  setText(c.state, interpreter.state);
  c.state.className = `state state-${interpreter.state}`;
  const request = interpreter.request;
  setText(c.serving, request ? `${request.method} ${request.path} · ${(request.runningMs / 1000).toFixed(1)} s` : '');
  c.serving.title = request ? `${request.method} ${request.path}` : '';
  setText(c.served, interpreter.served);
  setText(c.memory, formatBytes(interpreter.memoryBytes));
  // What the figure measures, where it is not the obvious (the native engine's own allocator, or the V8 heap).
  c.memory.title = interpreter.boot?.memory ?? '';
  setText(c.uptime, formatDuration(interpreter.uptimeSeconds));
  const boot = interpreter.boot;
  setText(row.bootSummary, boot ? (boot.error ? 'failed (the error is shown above)' : `${boot.kind} ${boot.totalMs} ms`) : 'booting…');
  setText(row.bootStages, boot ? boot.stages.map((stage) => `${stage.name} ${stage.ms}`).join(' · ') : '');
  setText(c.restarts, interpreter.restarts);
  setText(c.lastExit, interpreter.lastExit ?? '–');
}
