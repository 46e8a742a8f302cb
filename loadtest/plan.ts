/**
 * What a load test measures, in order: the issue-2 figure first (hello through the pool
 * next to plain Fastify), then every scenario with the peers, the scaling curve, and the
 * four-way CPU benchmark. `--quick` keeps the same structure with shorter runs and fewer
 * rows, to finish in about a minute.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BootVariant } from './boot.ts';
import type { Comparison } from './compare.ts';
import type { ServerFeatures } from './features.ts';
import type { LoadShape } from './measure.ts';
import { cpuScenario, scenarios, type ScenarioName } from './scenarios.ts';
import { listNativeBuilds } from '../native/builds.ts';
import {
  apacheTarget, gunicornOnCPythonTarget, gunicornTarget, interpoolTarget, plainFastifyTarget, uwsgiTarget, type PeerApp, type Target,
} from './targets.ts';

export interface PlanOptions {
  /** The interpool being measured (see build.ts). */
  root: string;
  quick: boolean;
  /** Measured runs per server (at least 3). */
  runs: number;
  /** Seconds per timed run; the default depends on --quick. */
  duration?: number;
  cpus: number;
  features: ServerFeatures;
}

/** The issue-2 figure: `autocannon -c 32 -d 10`. */
export const HEADLINE_CONNECTIONS = 32;
export const HEADLINE_DURATION = 10;

/** The Python app a scenario's interpool rows serve: apps/<app>.py, once apps/ has it. */
export function interpoolPythonApp(app: string): string {
  return `apps/${app}.py`;
}

/** The Python app the peers serve: the same apps/<app>.py file interpool serves. */
export function peerPythonApp(root: string, app: string): PeerApp {
  const own = `apps/${app}.py`;
  return { path: join(root, own), file: own };
}

/** The apps whose interpreter start is measured (`boot` section; not in --quick). */
export function bootVariants(root: string, features: ServerFeatures): BootVariant[] {
  const absent = pythonAbsentReason(root, 'hello', features);
  return [
    { label: 'TypeScript (V8 isolate per worker)', appFile: 'apps/hello.ts' },
    { label: 'Python 3.14 (Pyodide 314)', appFile: interpoolPythonApp('hello'), python: '3.14', absent },
    { label: 'Python 3.12 (Pyodide 0.27)', appFile: interpoolPythonApp('hello'), python: '3.12', absent },
    { label: 'Python native (CPython subinterpreters, the newest built)', appFile: interpoolPythonApp('hello'), python: 'native', absent: absent ?? features.nativeAbsent },
  ];
}

export function pythonAbsentReason(root: string, app: string, features: ServerFeatures): string | undefined {
  if (!existsSync(join(root, interpoolPythonApp(app)))) return `${interpoolPythonApp(app)} does not exist yet (Python apps are not in this build)`;
  if (!features.pythonRuntime) return 'the Python interpreter kind (runtime/interpreters/python.ts) is not in this build';
  return undefined;
}

function pythonTarget(root: string, app: string, workers: number, features: ServerFeatures, python?: string): Target {
  const target = interpoolTarget({ root, appFile: interpoolPythonApp(app), workers, python });
  const absent = pythonAbsentReason(root, app, features) ?? (python === 'native' ? features.nativeAbsent : undefined);
  return absent ? { ...target, absent } : target;
}

function peerTargets(root: string, app: string): Target[] {
  const file = peerPythonApp(root, app);
  return [gunicornTarget(file), uwsgiTarget(file), apacheTarget(file)];
}

export function buildPlan(options: PlanOptions): Comparison[] {
  const { root, quick, runs, cpus, features } = options;
  const duration = options.duration ?? (quick ? 1 : 5);
  const warmupSec = quick ? 1 : 2;
  const timed = (connections: number, seconds = duration): LoadShape => ({ connections, duration: seconds });
  const plan: Comparison[] = [];

  // 1. Issue 2: hello through the pool, 1 and 2 workers, next to plain Fastify.
  plan.push({
    id: 'issue-2-hello', section: 'issue-2', metric: 'rps',
    title: `hello through the pool vs plain Fastify (autocannon -c ${HEADLINE_CONNECTIONS} -d ${options.duration ?? (quick ? 1 : HEADLINE_DURATION)})`,
    scenario: scenarios.hello,
    targets: [
      plainFastifyTarget(),
      interpoolTarget({ root, appFile: 'apps/hello.ts', workers: 1 }),
      interpoolTarget({ root, appFile: 'apps/hello.ts', workers: 2 }),
      ...(quick ? [] : [interpoolTarget({ root, appFile: 'apps/hello.ts', workers: 2, logLevel: 'info', note: '--log-level info (the default: one access-log line per request)' })]),
    ],
    referenceIds: ['plain-fastify'],
    shape: timed(HEADLINE_CONNECTIONS, options.duration ?? (quick ? 1 : HEADLINE_DURATION)),
    runs, warmupSec,
  });

  // 2. Every scenario: interpool TS and Python, and the peers on the same Python file.
  const names: ScenarioName[] = ['hello', 'cpu', 'echo', 'big', 'stream'];
  for (const name of names) {
    const scenario = scenarios[name];
    // --quick: the peers and Python on hello only (each Pyodide boot takes seconds).
    const all = !quick || name === 'hello';
    plan.push({
      id: `scenario-${name}`, section: 'scenarios', metric: 'rps', title: scenario.title, scenario,
      targets: [
        interpoolTarget({ root, appFile: `apps/${scenario.app}.ts`, workers: 2 }),
        ...(all ? [pythonTarget(root, scenario.app, 2, features)] : []),
        ...(!quick ? [pythonTarget(root, scenario.app, 2, features, '3.12')] : []),
        ...(all ? [pythonTarget(root, scenario.app, 2, features, 'native')] : []),
        ...(all ? peerTargets(root, scenario.app) : []),
        // The bars of issue 19 (hello, cpu) against gunicorn on the native engine's own CPython too.
        ...(all && (name === 'hello' || name === 'cpu') ? [gunicornOnCPythonTarget(peerPythonApp(root, scenario.app), listNativeBuilds()[0])] : []),
      ],
      referenceIds: [`interpool-${scenario.app}-py-w2`, `interpool-${scenario.app}-ts-w2`],
      shape: timed(32), runs, warmupSec,
    });
  }

  // 3. The scaling curve: requests/s at 1..N workers (N past the CPU count, to show the
  // knee). --quick leaves it out: the issue-2 comparison already has 1 and 2 workers.
  const maxWorkers = Math.max(4, cpus * 2);
  for (const name of quick ? [] : ['cpu', 'hello'] as const) {
    const scenario = scenarios[name];
    plan.push({
      id: `scaling-${name}`, section: 'scaling', metric: 'rps',
      title: `scaling: ${name} at 1..${maxWorkers} workers (${cpus} CPUs)`, scenario,
      targets: Array.from({ length: maxWorkers }, (_, i) => interpoolTarget({ root, appFile: `apps/${scenario.app}.ts`, workers: i + 1 })),
      referenceIds: [`interpool-${scenario.app}-ts-w1`],
      shape: timed(32), runs, warmupSec,
    });
  }

  // 4. A reload under load: SIGHUP twice during each run, next to the same server left alone.
  if (!quick) plan.push(reloadUnderLoad(options));

  // 5. The benchmark this project comes from: the same CPU-bound work four ways.
  plan.push(cpuBenchmark('ts', options));
  if (!quick) plan.push(cpuBenchmark('py', options));
  plan.push(cpuBenchmark('native', options));
  return plan;
}

function reloadUnderLoad(options: PlanOptions): Comparison {
  const { root, runs, features } = options;
  const duration = options.duration ?? 10;
  const atSec = [duration * 0.3, duration * 0.6];
  const noReload = features.reload ? undefined : 'not available in this build (no SIGHUP reload)';
  const pair = (kind: 'ts' | 'py'): Target[] => {
    const make = kind === 'ts'
      ? () => interpoolTarget({ root, appFile: 'apps/hello.ts', workers: 2 })
      : () => pythonTarget(root, 'hello', 2, features);
    const steady = make();
    const reloading = make();
    return [
      { ...steady, id: `steady-${kind}`, label: `${steady.label}, left alone` },
      { ...reloading, id: `reload-${kind}`, label: `${reloading.label}, SIGHUP at ${atSec.map((s) => `${s} s`).join(' and ')}`, absent: reloading.absent ?? noReload },
    ];
  };
  return {
    id: 'reload-under-load', section: 'reload', metric: 'rps',
    title: `reload under load: hello, SIGHUP twice per ${duration} s run`,
    scenario: scenarios.hello, targets: [...pair('ts'), ...pair('py')],
    referenceIds: ['steady-ts'], shape: { connections: 32, duration }, runs, warmupSec: 2,
    events: { signal: 'SIGHUP', atSec, targetIds: ['reload-ts', 'reload-py'] },
  };
}

/**
 * (a) sequentially, one request at a time, one interpreter; (b) concurrently in one
 * interpreter shared by all of them (--workers 0, embedded mode); (c) P processes with one interpreter
 * each (--processes P --workers 1); (d) one process, a pool of N interpreters.
 * Fixed number of requests; wall time and speed-up against (a).
 */
function cpuBenchmark(kind: 'ts' | 'py' | 'native', options: PlanOptions): Comparison {
  const { root, quick, runs, cpus, features } = options;
  // About 17 ms of work per request in V8 (fib 32), 10-20 ms in CPython/Pyodide (fib 25).
  const n = kind === 'ts' ? (quick ? 30 : 32) : (quick ? 23 : 25);
  const requests = quick ? 48 : 96;
  const scenario = cpuScenario(n);
  const appFile = kind === 'ts' ? 'apps/cpu.ts' : interpoolPythonApp('cpu');
  const concurrent = 2 * cpus;
  const pyAbsent = kind === 'ts' ? undefined : pythonAbsentReason(root, 'cpu', features) ?? (kind === 'native' ? features.nativeAbsent : undefined);
  const python = kind === 'native' ? 'native' : undefined;
  const way = (id: string, label: string, target: Target, absent?: string): Target =>
    ({ ...target, id, label, absent: pyAbsent ?? absent ?? target.absent });
  const targets = [
    way('a-sequential', `(a) sequential: 1 interpreter, 1 request at a time`, interpoolTarget({ root, appFile, workers: 1, python })),
    way('b-inline', `(b) embedded: 1 interpreter shared by ${concurrent} concurrent requests (--workers 0)`, interpoolTarget({ root, appFile, workers: 0, python }),
      features.inline ? undefined : 'not available in this build (--workers 0, inline mode, is not an option yet)'),
    way('c-processes', `(c) ${cpus} processes × 1 interpreter, ${concurrent} concurrent`, interpoolTarget({ root, appFile, workers: 1, processes: cpus, python }),
      features.processes ? undefined : 'not available in this build (--processes is not an option yet)'),
    way('d-pool', `(d) 1 process, pool of ${cpus} interpreters, ${concurrent} concurrent`, interpoolTarget({ root, appFile, workers: cpus, python })),
  ];
  const shape = (connections: number): LoadShape => ({ connections, duration: 0, amount: requests });
  return {
    id: `cpu-benchmark-${kind}`, section: 'cpu-benchmark', metric: 'wall',
    title: `CPU benchmark (${{ ts: 'TypeScript', py: 'Python, Pyodide', native: 'Python, native CPython subinterpreters' }[kind]}): ${requests} requests of fib(${n}), four ways`,
    scenario, targets, referenceIds: ['a-sequential'],
    shape: shape(concurrent), shapes: { 'a-sequential': shape(1) },
    runs, warmupSec: 1,
  };
}
