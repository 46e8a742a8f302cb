/**
 * What one request costs the native engine's worker thread, without HTTP, the pool or
 * the main thread: one subinterpreter booted by runtime/interpreters/native.ts in a
 * worker thread serves apps/hello.py (or --app) N times, and the thread's CPU time
 * (process.threadCpuUsage) is divided by N (the least of --rounds, interleaved). Beside the whole request, its parts:
 *
 *   handle        interpreter.handle(envelope, writer), as runtime/worker.ts calls it
 *   call handle   the addon's call of interpool_handle, as native.ts makes it: the same
 *                 without native.ts's half (writer, outcome) around it
 *   call args     a Python function that does nothing, given the request's arguments
 *                 the same way: crossing into the addon, the GIL, converting cgi/body
 *   call object   the same, the CGI object converted key by key (addon.call)
 *   call noop     the same function without arguments: crossing and the GIL alone
 *   py handle     interpool_wsgi.handle looped inside Python (time.thread_time_ns), given
 *                 a copy of a ready CGI dict each time: the adapter and the app, no crossing
 *   py app        the app alone, called in Python with a ready environ: the floor
 *
 *   node loadtest/native-call.ts [--requests 20000] [--rounds 5] [--cpython 3.13] [--app apps/hello.py]
 *                                [--python-profile]   (cProfile of py handle, top functions)
 *                                [--only 'call args']  (that part alone, e.g. under perf)
 *
 * For a JS profile of the worker add `node --cpu-prof --cpu-prof-dir=DIR` (see
 * loadtest/cpu-profile-summary.ts); for the C side, `perf record -g node
 * --perf-basic-prof loadtest/native-call.ts`. A benchmark, not a test: it prints.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MessageChannel, Worker, isMainThread, workerData } from 'node:worker_threads';
import { listNativeBuilds, type NativeBuild } from '../native/builds.ts';
import { BootTimer } from '../runtime/interpreter.ts';
import * as native from '../runtime/interpreters/native.ts';
import type { NativeAddon } from '../runtime/interpreters/native.ts';
import { CONTROL_SLOTS, type RequestEnvelope, type WorkerSpec } from '../runtime/protocol.ts';
import { ResponseWriter } from '../runtime/response-writer.ts';
import { toWireCgi } from '../server/environ.ts';

interface Job { build: NativeBuild; app: string; requests: number; rounds: number; pythonProfile: boolean; only: string | undefined }
interface Part { name: string; cpuUs: number; wallUs: number }

/** A GET / as server/environ.ts builds it for autocannon's requests. */
const CGI: Record<string, string> = {
  HTTP_HOST: '127.0.0.1:8000',
  HTTP_CONNECTION: 'keep-alive',
  HTTP_USER_AGENT: 'autocannon',
  REQUEST_METHOD: 'GET',
  SCRIPT_NAME: '',
  PATH_INFO: '/',
  QUERY_STRING: '',
  SERVER_NAME: '127.0.0.1',
  SERVER_PORT: '8000',
  SERVER_PROTOCOL: 'HTTP/1.1',
  REMOTE_ADDR: '127.0.0.1',
  REMOTE_PORT: '50000',
};

/** Run in the subinterpreter's __main__ beside native.ts's glue. */
const BENCH_GLUE = `
import time, sys

def bench_noop(*args):
    return None

def bench_py_handle(n, cgi):
    wsgi = sys.modules["interpool_wsgi"]
    host = interpool_host
    started, wall = time.thread_time_ns(), time.perf_counter_ns()
    for _ in range(n):
        wsgi.handle(dict(cgi), "http", b"", host)
        host.take()
    return [(time.thread_time_ns() - started) / n / 1000, (time.perf_counter_ns() - wall) / n / 1000]

def bench_py_app(n, cgi):
    app = sys.modules["interpool_wsgi"].APPLICATION
    environ = dict(cgi)
    def start_response(status, headers, exc_info=None):
        return None
    started, wall = time.thread_time_ns(), time.perf_counter_ns()
    for _ in range(n):
        b"".join(app(environ, start_response))
    return [(time.thread_time_ns() - started) / n / 1000, (time.perf_counter_ns() - wall) / n / 1000]

def bench_py_profile(n, cgi):
    import cProfile, io, pstats
    wsgi = sys.modules["interpool_wsgi"]
    host = interpool_host
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(n):
        wsgi.handle(dict(cgi), "http", b"", host)
        host.take()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()
`;

if (isMainThread) {
  const { values } = parseArgs({ options: {
    requests: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    cpython: { type: 'string' },
    app: { type: 'string', default: 'apps/hello.py' },
    'python-profile': { type: 'boolean', default: false },
    only: { type: 'string' },
  } });
  const builds = listNativeBuilds().filter((build) => values.cpython === undefined || build.version === values.cpython);
  if (builds.length === 0) throw new Error('no native engine build: npm run build:native');
  // One process embeds one CPython: each build is measured in a process of its own.
  if (values.cpython === undefined) {
    for (const build of builds) {
      spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--cpython', build.version], { stdio: 'inherit' });
    }
    process.exit(0);
  }
  for (const build of builds) {
    const job: Job = { build, app: resolve(values.app), requests: Number(values.requests), rounds: Number(values.rounds), pythonProfile: values['python-profile'], only: values.only };
    const parts = await new Promise<Part[]>((done, fail) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: job });
      worker.once('message', done);
      worker.once('error', fail);
    });
    console.log(`CPython ${build.version} (${build.executable}), ${job.app}, ${job.requests} requests, per request:`);
    for (const part of parts) console.log(`  ${part.name.padEnd(12)} ${part.cpuUs.toFixed(1).padStart(7)} µs CPU  ${part.wallUs.toFixed(1).padStart(7)} µs wall`);
  }
} else {
  const job = workerData as Job;
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  const spec: WorkerSpec = {
    app: '/', kind: 'python', file: job.app, callable: 'application',
    settings: { python: 'native', nativeAddon: job.build.addon, cpython: job.build.executable, cpythonSource: job.build.source },
    limits: { maxRequests: 0, maxRequestsJitter: 0, memoryLimitMb: 0 },
    overlap: false, multiprocess: true,
  };
  const interpreter = await native.bootNative(spec, new BootTimer(), control);
  // The same instance native.ts loaded: Node keeps one per thread.
  const addon = createRequire(import.meta.url)(job.build.addon) as NativeAddon;
  addon.run(BENCH_GLUE);
  const { port1 } = new MessageChannel();
  port1.unref();
  const body = new Uint8Array(0);
  const n = job.requests;

  const measure = async (name: string, run: (index: number) => unknown): Promise<Part> => {
    if (job.only !== undefined && job.only !== name) return { name, cpuUs: NaN, wallUs: NaN };
    for (let i = 0; i < Math.min(2000, n); i++) await run(i);  // warm up
    const cpu = process.threadCpuUsage();
    const wall = performance.now();
    for (let i = 0; i < n; i++) await run(i);
    const used = process.threadCpuUsage(cpu);
    return { name, cpuUs: (used.user + used.system) / n, wallUs: ((performance.now() - wall) * 1000) / n };
  };
  const inPython = (name: string, result: unknown): Part => {
    const [cpuUs, wallUs] = result as [number, number];
    return { name, cpuUs, wallUs };
  };

  const handle = (i: number) => {
    const envelope: RequestEnvelope = { id: i + 1, cgi: toWireCgi({ ...CGI }), urlScheme: 'http', body };
    const result = interpreter.handle(envelope, new ResponseWriter(envelope.id, 1, port1, control));
    interpreter.memoryBytes?.();
    return result;
  };
  // The CGI variables as the main thread packs them (server/environ.ts toWireCgi); as an
  // object for an addon from before callWithPacked (to compare an older commit).
  const withPacked = (name: string) => (addon.callWithPacked === undefined
    ? () => addon.call(name, { ...CGI }, 'http', body)
    : () => addon.callWithPacked(name, toWireCgi({ ...CGI }) as string, 'http', body));
  const runs: Array<[string, (index: number) => unknown]> = [
    ['handle', handle],
    ['call handle', withPacked('interpool_handle')],
    ['call args', withPacked('bench_noop')],
    ['call object', () => addon.call('bench_noop', { ...CGI }, 'http', body)],
    ['call noop', () => addon.call('bench_noop')],
  ];
  // Rounds interleaved, the least kept (as timeit does): the machine is shared, and what
  // others run only ever adds to a round.
  const rounds: Part[][] = [];
  for (let round = 0; round < job.rounds; round++) {
    const measured: Part[] = [];
    for (const [name, run] of runs) measured.push(await measure(name, run));
    rounds.push(measured);
  }
  const least = (values: number[]) => Math.min(...values);
  const parts: Part[] = runs.map(([name], index) => ({
    name, cpuUs: least(rounds.map((round) => round[index]!.cpuUs)), wallUs: least(rounds.map((round) => round[index]!.wallUs)),
  }));
  if (job.only === undefined || job.only.startsWith('py')) {
    addon.call('bench_py_handle', 2000, CGI);
    const python = Array.from({ length: job.rounds }, () => [
      inPython('py handle', addon.call('bench_py_handle', n, CGI)), inPython('py app', addon.call('bench_py_app', n, CGI)),
    ]);
    for (const index of [0, 1]) {
      parts.push({ name: python[0]![index]!.name, cpuUs: least(python.map((round) => round[index]!.cpuUs)), wallUs: least(python.map((round) => round[index]!.wallUs)) });
    }
  }
  if (job.pythonProfile) console.log(addon.call('bench_py_profile', n, CGI));
  addon.end();
  const { parentPort } = await import('node:worker_threads');
  parentPort!.postMessage(parts);
}
