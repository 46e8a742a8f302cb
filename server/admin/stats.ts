/**
 * GET <admin-path>/api/stats: every app and every interpreter, as JSON. The schema is
 * documented in docs/admin.md; the dashboard draws exactly this. Only paths and timings
 * of requests appear — never headers, cookies, query strings or bodies.
 */
import { fileURLToPath } from 'node:url';
import type { BootReport } from '../../runtime/protocol.ts';
import type { ApplicationGroup, BootFailure } from '../pool/application-group.ts';
import type { ExitReason, WorkerView } from '../pool/application-group.ts';
import { exceptionOf, ownFramesOf, type ExceptionSummary, type Frame } from './boot-failure.ts';
import type { InterpreterSlots } from './interpreter-slots.ts';
import { readProcessUsage, type ProcessUsage } from './process-usage.ts';
import type { SharedStoreStats } from '../shared-store/store.ts';
import type { AppRequestView, RequestRecorder, RequestTotals, Series } from './recorder.ts';

export interface AdminStats {
  server: { pid: number; node: string; startedAt: number; uptimeSeconds: number; now: number };
  /** The whole server process: memory and CPU. */
  process: ProcessUsage;
  apps: AppStats[];
}

export interface AppStats {
  name: string;
  kind: string;
  /** Interpreter version from the latest boot report, e.g. "Python 3.14.0", "Node 24.9.0". */
  version: string | null;
  /** What runs it, for people: the booted version, or the kind (and Python version asked for) until one boots. */
  engine: string;
  file: string;
  generation: number;
  available: boolean;
  workers: { min: number; max: number; now: number };
  queue: number;
  inFlight: number;
  requests: RequestTotals & { perSecond: number; errors: AppRequestView['errors'] };
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; windowSeconds: number };
  exits: Record<ExitReason, number>;
  /** Threads stuck in C code: out of the pool, alive until the process ends (listed with state "stuck"). */
  stuck: number;
  /** The interpreters' memory, summed (where known). */
  memoryBytes: number;
  /** Why the app's interpreters fail to boot; null while they boot. Never shown to clients. */
  bootFailure: BootFailureStats | null;
  /** The latest reload that failed to boot, while the running interpreters keep serving; null once one succeeds. */
  reloadFailure: ReloadFailureStats | null;
  /** The app's shared store (docs/shared-store.md): where it lives, keys, bytes, operations. */
  sharedStore: SharedStoreStats | null;
  interpreters: InterpreterStats[];
  /** Per-second history for the charts; only with ?history=1. */
  history?: Series;
}

export interface InterpreterStats {
  slot: number | null;
  workerId: number;
  generation: number;
  state: WorkerView['state'];
  /** The request it is serving: its path (no query string) and how long it has been running. */
  request: { id: number; method: string; path: string; runningMs: number } | null;
  served: number;
  memoryBytes: number;
  startedAt: number;
  uptimeSeconds: number;
  boot: BootStats | null;
  restarts: number;
  lastExit: ExitReason | null;
}

export interface BootStats {
  /** "snapshot": restored from the app's memory snapshot; "cold": loaded and imported from scratch. */
  kind: 'cold' | 'snapshot';
  version: string;
  totalMs: number;
  stages: { name: string; ms: number }[];
  error: string | null;
  /** What the interpreter's memoryBytes measures, when not the obvious (native: own allocator, or the V8 heap). */
  memory: string | null;
}

export interface ReloadFailureStats {
  /** The worker's one-line message, e.g. "<file>: failed to import: KeyError: 'x'". */
  message: string;
  /** Parsed from the traceback; null when it has no recognisable exception line. */
  exception: ExceptionSummary | null;
  /** The traceback's frames in the app's own files (see boot-failure.ts). */
  frames: Frame[];
  /** The whole traceback or stack. */
  traceback: string | null;
  /** What to do about it, when the cause is a known one (a module this Python removed...). */
  fix: string | null;
  at: number;
}

export interface BootFailureStats extends ReloadFailureStats {
  nextRetryAt: number;
  attempts: number;
}

/** interpool's own code, which appears in boot tracebacks when an app sits in a directory above it. */
const INTERNAL_DIRS = ['../../runtime/', '../'].map((dir) => fileURLToPath(new URL(dir, import.meta.url)));

const STARTED_AT = Date.now() - Math.round(process.uptime() * 1000);

export function bootKindOf(report: BootReport): 'cold' | 'snapshot' {
  return report.stages.some((stage) => stage.name === 'restore snapshot') ? 'snapshot' : 'cold';
}

export function toBootStats(report: BootReport): BootStats {
  return {
    kind: bootKindOf(report),
    version: report.version,
    totalMs: Math.round(report.stages.reduce((sum, stage) => sum + stage.ms, 0) * 10) / 10,
    stages: report.stages.map(({ name, ms }) => ({ name, ms })),
    error: report.error?.message ?? null,
    memory: report.memory ?? null,
  };
}

export function buildStats(
  groups: readonly ApplicationGroup[], recorder: RequestRecorder, slots: InterpreterSlots, options: { history: boolean },
): AdminStats {
  const now = Date.now();
  return {
    server: { pid: process.pid, node: process.version, startedAt: STARTED_AT, uptimeSeconds: Math.round((now - STARTED_AT) / 1000), now },
    process: readProcessUsage(),
    apps: groups.map((group) => buildAppStats(group, recorder, slots, options.history, now)),
  };
}

function buildAppStats(group: ApplicationGroup, recorder: RequestRecorder, slots: InterpreterSlots, history: boolean, now: number): AppStats {
  const stats = group.stats();
  const requests = recorder.view(stats.name);
  const interpreters = stats.interpreters.map((worker): InterpreterStats => {
    const slot = slots.slotOf(stats.name, worker.workerId, worker.generation);
    const running = worker.state === 'busy' || worker.state === 'draining' ? requests?.running.get(worker.requestId) : undefined;
    return {
      slot: slot?.slot ?? null,
      workerId: worker.workerId,
      generation: worker.generation,
      state: worker.state,
      request: running ? { id: running.requestId, method: running.method, path: running.path, runningMs: now - running.startedAt } : null,
      served: worker.served,
      memoryBytes: worker.memoryBytes,
      startedAt: worker.startedAt,
      uptimeSeconds: Math.round((now - worker.startedAt) / 1000),
      boot: worker.boot ? toBootStats(worker.boot) : null,
      restarts: slot?.restarts ?? 0,
      lastExit: slot?.lastExit ?? null,
    };
  }).sort((a, b) => (a.slot ?? Infinity) - (b.slot ?? Infinity));
  const version = stats.interpreters.map((worker) => worker.boot?.version).find((v) => !!v) ?? null;
  return {
    name: stats.name,
    kind: stats.kind,
    version,
    engine: version ?? engineOf(group),
    file: stats.file,
    generation: stats.generation,
    available: stats.available,
    workers: stats.workers,
    queue: stats.queue,
    inFlight: stats.inFlight,
    requests: {
      ...(requests?.totals ?? emptyTotals()),
      perSecond: requests?.perSecond ?? 0,
      errors: requests?.errors ?? { windowSeconds: 0, responses: 0, serverErrors: 0, rate: null },
    },
    latencyMs: requests?.latencyMs ?? { p50: null, p95: null, p99: null, windowSeconds: 0 },
    exits: stats.exits,
    stuck: stats.stuck,
    memoryBytes: interpreters.reduce((sum, interpreter) => sum + interpreter.memoryBytes, 0),
    bootFailure: stats.bootFailure ? toBootFailureStats(stats.bootFailure, stats.file) : null,
    reloadFailure: stats.reloadFailure ? toFailureStats(stats.reloadFailure, stats.file) : null,
    sharedStore: stats.sharedStore,
    interpreters,
    ...(history ? { history: recorder.series(stats.name) } : {}),
  };
}

export function toBootFailureStats(failure: BootFailure, appFile: string): BootFailureStats {
  return { ...toFailureStats(failure, appFile), nextRetryAt: failure.nextRetryAt, attempts: failure.attempts };
}

function toFailureStats(failure: Pick<BootFailure, 'message' | 'detail' | 'fix' | 'at'>, appFile: string): ReloadFailureStats {
  const traceback = failure.detail;
  return {
    message: failure.message,
    exception: traceback ? exceptionOf(traceback) : null,
    frames: traceback ? ownFramesOf(traceback, appFile, INTERNAL_DIRS) : [],
    traceback,
    fix: failure.fix,
    at: failure.at,
  };
}

/** Until an interpreter has booted: the engine asked for, e.g. "Python 3.14 (Pyodide)", "CPython 3.13 (native)", "javascript". */
function engineOf(group: ApplicationGroup): string {
  const { kind, settings } = group.config;
  if (kind !== 'python') return kind;
  if (settings.python === 'native') return `CPython ${typeof settings.cpythonVersion === 'string' ? `${settings.cpythonVersion} ` : ''}(native)`;
  return `Python ${String(settings.python)} (Pyodide)`;
}

function emptyTotals(): RequestTotals {
  return { total: 0, byStatusClass: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, rejected: { '503': 0, '504': 0 }, aborted: 0 };
}
