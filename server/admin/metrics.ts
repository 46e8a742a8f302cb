/**
 * GET /metrics: the Prometheus text format, through prom-client, on a registry of this
 * server's own. Request counts and latencies, boot durations come from the diagnostics
 * channels; queue depth, interpreter states, memory and exit counts are read from the
 * groups when Prometheus scrapes, so they are never stale. Process and Node.js metrics
 * (CPU, memory, event-loop lag, GC) are prom-client's defaults.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BootReport } from '../../runtime/protocol.ts';
import type { ApplicationGroup } from '../pool/application-group.ts';
import { channels, type InterpreterBooted, type RequestFinished } from '../diagnostics.ts';
import { EXIT_REASONS } from '../pool/application-group.ts';
import { bootKindOf } from './stats.ts';

const STATES = ['booting', 'idle', 'busy', 'draining', 'failed', 'stuck'] as const;
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BOOT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32];

export interface Metrics {
  registry: Registry;
  close(): void;
}

export function createMetrics(groups: readonly ApplicationGroup[]): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const apps = new Set(groups.map((group) => group.config.name));

  const requests = new Counter({
    name: 'interpool_requests_total', registers: [registry], labelNames: ['app', 'status'] as const,
    help: 'Requests answered, by app and HTTP status (app "-": refused before an app was chosen: 400, 404, 413 ...).',
  });
  const duration = new Histogram({
    name: 'interpool_request_duration_seconds', registers: [registry], labelNames: ['app', 'status'] as const, buckets: LATENCY_BUCKETS,
    help: 'Time from the request head to the last byte of the response, by app and HTTP status.',
  });
  const boot = new Histogram({
    name: 'interpool_interpreter_boot_seconds', registers: [registry], labelNames: ['app', 'kind', 'boot'] as const, buckets: BOOT_BUCKETS,
    help: 'Interpreter boot time, all stages, by app, interpreter kind and boot kind (cold or snapshot).',
  });
  const bootStage = new Histogram({
    name: 'interpool_interpreter_boot_stage_seconds', registers: [registry], labelNames: ['app', 'stage'] as const, buckets: BOOT_BUCKETS,
    help: 'Interpreter boot time by named stage (load runtime, restore snapshot, import app ...).',
  });
  const observeBoot = (app: string, report: BootReport) => {
    if (report.error) return;
    let total = 0;
    for (const stage of report.stages) {
      bootStage.observe({ app, stage: stage.name }, stage.ms / 1000);
      total += stage.ms;
    }
    boot.observe({ app, kind: report.kind, boot: bootKindOf(report) }, total / 1000);
  };
  // Interpreters that booted before this registry existed.
  for (const group of groups) for (const worker of group.stats().interpreters) if (worker.boot) observeBoot(group.config.name, worker.boot);

  new Gauge({
    name: 'interpool_queue_depth', registers: [registry], labelNames: ['app'] as const,
    help: 'Requests waiting in the app\'s queue for an interpreter.',
    collect() { for (const group of groups) this.set({ app: group.config.name }, group.queueSize); },
  });
  new Gauge({
    name: 'interpool_requests_in_flight', registers: [registry], labelNames: ['app'] as const,
    help: 'Requests running on the app\'s interpreters.',
    collect() { for (const group of groups) this.set({ app: group.config.name }, group.stats().inFlight); },
  });
  new Gauge({
    name: 'interpool_app_available', registers: [registry], labelNames: ['app'] as const,
    help: '1 when the app can serve, 0 while it fails to boot and is retried.',
    collect() { for (const group of groups) this.set({ app: group.config.name }, group.stats().available ? 1 : 0); },
  });
  new Gauge({
    name: 'interpool_app_boot_failures', registers: [registry], labelNames: ['app'] as const,
    help: 'Failed boots in a row of the app\'s current interpreters; 0 once one boots (the error is on the dashboard).',
    collect() { for (const group of groups) this.set({ app: group.config.name }, group.stats().bootFailure?.attempts ?? 0); },
  });
  new Gauge({
    name: 'interpool_interpreters', registers: [registry], labelNames: ['app', 'state'] as const,
    help: 'Interpreters of the app\'s current generation, by state.',
    collect() {
      for (const group of groups) {
        const counts = Object.fromEntries(STATES.map((state) => [state, 0]));
        for (const worker of group.stats().interpreters) counts[worker.state]!++;
        for (const state of STATES) this.set({ app: group.config.name, state }, counts[state]!);
      }
    },
  });
  new Gauge({
    name: 'interpool_interpreter_memory_bytes', registers: [registry], labelNames: ['app', 'worker'] as const,
    help: 'Memory of each interpreter after its last request (Python: WebAssembly heap; JavaScript: V8 heap used).',
    collect() {
      this.reset(); // workers come and go; only the live ones are reported
      for (const group of groups) {
        for (const worker of group.stats().interpreters) this.set({ app: group.config.name, worker: String(worker.workerId) }, worker.memoryBytes);
      }
    },
  });
  new Counter({
    name: 'interpool_interpreter_exits_total', registers: [registry], labelNames: ['app', 'reason'] as const,
    help: 'Interpreter exits by app and reason (recycled, memory, idle, timeout, crashed, reload, shutdown, boot-failed, stuck).',
    collect() {
      // The groups keep the counts since start; the counter reports them as they are.
      this.reset();
      for (const group of groups) {
        const exits = group.stats().exits;
        for (const reason of EXIT_REASONS) this.inc({ app: group.config.name, reason }, exits[reason]);
      }
    },
  });

  new Gauge({
    name: 'interpool_shared_store_keys', registers: [registry], labelNames: ['app'] as const,
    help: 'Keys in the app\'s shared store (in-process store: this process\'s; Redis: the app\'s prefix).',
    collect() { for (const group of groups) this.set({ app: group.config.name }, group.stats().sharedStore?.keys ?? 0); },
  });
  new Gauge({
    name: 'interpool_shared_store_bytes', registers: [registry], labelNames: ['app'] as const,
    help: 'Bytes of keys and values in the app\'s shared store.',
    collect() { for (const group of groups) this.set({ app: group.config.name }, group.stats().sharedStore?.bytes ?? 0); },
  });
  new Counter({
    name: 'interpool_shared_store_operations_total', registers: [registry], labelNames: ['app'] as const,
    help: 'Shared store operations the app\'s interpreters made through this process.',
    collect() {
      this.reset();
      for (const group of groups) this.inc({ app: group.config.name }, group.stats().sharedStore?.ops ?? 0);
    },
  });

  const connectionsRefused = new Counter({
    name: 'interpool_connections_refused_total', registers: [registry],
    help: 'Connections closed as soon as they were accepted because the server held --max-connections.',
  });
  const onConnectionRefused = () => connectionsRefused.inc();

  // The two metrics' series of each app and status, looked up once: prom-client hashes
  // a labels object on every inc or observe given one, a share of every request's cost.
  const series = new Map<string, { count: Counter.Internal; time: Histogram.Internal<"app" | "status"> }>();
  const onFinished = (message: unknown) => {
    const { app, status, ms } = message as RequestFinished;
    // Keyed by the labels themselves: a bounded set (the apps, "-", the statuses).
    const name = apps.has(app) ? app : '-';
    const key = `${name}\0${status}`;
    let found = series.get(key);
    if (!found) {
      const labels = { app: name, status: String(status) };
      found = { count: requests.labels(labels), time: duration.labels(labels) };
      series.set(key, found);
    }
    found.count.inc();
    found.time.observe(ms / 1000);
  };
  const onBooted = (message: unknown) => {
    const { app, report } = message as InterpreterBooted;
    if (apps.has(app)) observeBoot(app, report);
  };
  subscribe(channels.requestFinished.name, onFinished);
  subscribe(channels.interpreterBooted.name, onBooted);
  subscribe(channels.connectionRefused.name, onConnectionRefused);
  return {
    registry,
    close() {
      unsubscribe(channels.requestFinished.name, onFinished);
      unsubscribe(channels.interpreterBooted.name, onBooted);
      unsubscribe(channels.connectionRefused.name, onConnectionRefused);
    },
  };
}
