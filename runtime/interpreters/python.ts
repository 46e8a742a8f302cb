/**
 * The python interpreter kind: one Pyodide CPython interpreter per worker thread, its own
 * wasm heap, sys.modules and module states — nothing is shared with any other worker.
 *
 * Boot, in named and timed stages: the first worker of an app boots cold (load runtime,
 * mount paths, import app) and makes a memory snapshot; the others restore from it
 * (python-snapshot.ts). Requests enter Python through a promising call (JSPI), so that
 * time.sleep and other waits suspend this interpreter instead of spinning, and the
 * shared control block's slot 0 is Pyodide's interrupt buffer: a timeout raises
 * KeyboardInterrupt inside the app. Python's sockets are Node's (python-network.ts),
 * installed after every load, before the app's import; os.environ is the server's.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BootError, type BootTimer, type Interpreter } from '../interpreter.ts';
import { ControlSlot, type ErrorCode, type HeaderPair, type RequestEnvelope, type TaskResult, type WorkerSpec } from '../protocol.ts';
import { markMovable, type ResponseWriter } from '../response-writer.ts';
import { unpackCgi } from '../wire-cgi.ts';
import {
  locateDiskRuntimeSnapshot, locateRuntimeSnapshot, locateSnapshot, planSnapshot, readDiskSnapshot, refuseSnapshot, releaseSnapshotLock, saveSnapshot,
  writeDiskSnapshot, type DiskSnapshot, type SnapshotFiles,
} from './python-snapshot.ts';
import { enableNetwork, type SockFS } from './python-network.ts';
import { enableKeyDerivation } from './python-hashlib.ts';
import { trustStoreDirs } from './python-tls.ts';
import { withSparseCopies } from './sparse-restore.ts';

/** `--python` → the npm package holding that Pyodide (3.12 is installed through an alias). */
const RUNTIME_PACKAGES: Record<string, string> = { '3.14': 'pyodide', '3.12': 'pyodide-312' };
const ADAPTER_DIR = '/interpool';
const ADAPTER_SOURCE = readFileSync(new URL('../wsgi.py', import.meta.url), 'utf8');

/** The part of Pyodide's API used here, common to 0.27 and 314. */
interface PyProxy {
  (...args: unknown[]): unknown;
  callPromising(...args: unknown[]): Promise<unknown>;
  toJs(): unknown;
  destroy(): void;
}
interface EmscriptenNode {
  mount: unknown;
}
interface EmscriptenFS {
  mkdirTree(path: string): void;
  mount(type: unknown, options: { root: string }, mountpoint: string): EmscriptenNode;
  writeFile(path: string, data: string): void;
  filesystems: { NODEFS: unknown };
  mayOpen(node: EmscriptenNode, flags: number): number;
  mayCreate(dir: EmscriptenNode, name: string): number;
  mayDelete(dir: EmscriptenNode, name: string, isDir: boolean): number;
}
interface Pyodide {
  version: string;
  /** The Emscripten module: HEAP8 views the interpreter's whole wasm memory. */
  _module: { HEAP8: Int8Array; SOCKFS: SockFS } & StackExports;
  FS: EmscriptenFS;
  ERRNO_CODES: Record<string, number>;
  runPython(code: string): unknown;
  toPy(value: unknown): PyProxy;
  setInterruptBuffer(buffer: Int32Array): void;
  makeMemorySnapshot(): Uint8Array;
  /** Pyodide 314 only: Python sockets over node:net (python-network.ts). */
  useNodeSockFS?: () => Promise<void>;
}
/** CPython's and Emscripten's exports that bound the C stack (boundCStack); 3.14 only. */
interface StackExports {
  _PyThreadState_Get?: () => number;
  _emscripten_stack_get_current?: () => number;
  _PyUnstable_ThreadState_SetStackProtection?: (tstate: number, start: number, size: number) => number;
}
interface PyodideOptions {
  env?: Record<string, string>;
  /** Python's sys.stdout / sys.stderr (and the runtime's own messages), one line per call. */
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
  _makeSnapshot?: boolean;
  _loadSnapshot?: Uint8Array;
}
type LoadPyodide = (options: PyodideOptions) => Promise<Pyodide>;

interface PythonSettings {
  python: string;
  pythonPath: string[];
  /** Where the runtime snapshot is kept between starts ('' for nowhere): --cache-dir. */
  cacheDir: string;
}

/** What wsgi.py calls back during one request (see `handle` in wsgi.py). */
interface RequestHost {
  setHeaders(status: string, headers: HeaderPair[]): void;
  sendChunk(data: Uint8Array): void;
  log(line: string): void;
  cancelled(): boolean;
  sleep(seconds: number): Promise<boolean>;
  boundStack(): void;
  finishWhole(body: Uint8Array): void;
  finishStream(): void;
  fail(code: ErrorCode, message: string, detail?: string): void;
}

export async function bootPython(spec: WorkerSpec, timer: BootTimer, control: Int32Array): Promise<Interpreter> {
  const settings = readSettings(spec);
  const packageName = RUNTIME_PACKAGES[settings.python]!;
  const { loadPyodide, version: runtimeVersion } = await timer.stage('load runtime module', () => import(packageName) as Promise<{ loadPyodide: LoadPyodide; version: string }>);
  const appDir = dirname(spec.file);
  const runtime: Runtime = { name: `${packageName}@${runtimeVersion}`, loadPyodide };
  const files = locateSnapshot(spec, runtime.name, settings.pythonPath, baseOptions().env);
  const plan = await timer.stage('wait for snapshot', () => planSnapshot(files));

  let pyodide: Pyodide | undefined;
  if (plan.action === 'restore') {
    try {
      pyodide = await restore(timer, 'restore snapshot', runtime, takeBytes(plan), false);
      await enableNetwork(pyodide, control);
      enableKeyDerivation(pyodide);
      await timer.stage('mount paths', () => mountPaths(pyodide!, appDir, settings.pythonPath));
      callPython(pyodide, 'after_restore', appDir);
    } catch (error) {
      timer.note(`cannot start from the snapshot, booting without it: ${(error as Error).message.split('\n')[0]}`);
      pyodide = undefined;
    }
  } else if (plan.action === 'cold') {
    timer.note(`booting without an app snapshot: ${plan.reason}`);
  }
  pyodide ??= await bootApp(spec, timer, runtime, settings, appDir, control, plan.action === 'make' ? files : undefined);

  pyodide.setInterruptBuffer(new Int32Array(control.buffer, ControlSlot.INTERRUPT, 1));
  // After the snapshot (never part of it): the pool's shape may differ at the next boot.
  callPython(pyodide, 'configure', spec.overlap, spec.multiprocess);
  const handle = pyodide.runPython('import interpool_wsgi; interpool_wsgi.handle') as PyProxy;
  const pythonVersion = pyodide.runPython('import sys; sys.version.split()[0]') as string;
  const booted = pyodide;
  collectBootGarbage();
  const life: Life = { ended: false, boundStack: () => boundCStack(booted) };
  const interpreter: Interpreter = {
    kind: 'python',
    version: `Python ${pythonVersion} (Pyodide ${pyodide.version})`,
    handle: (envelope: RequestEnvelope, writer: ResponseWriter) => runRequest(handle, envelope, writer, control, life),
    /** The interpreter's whole WebAssembly memory (it grows, it never shrinks). */
    memoryBytes: () => booted._module.HEAP8.byteLength,
    healthy: () => !life.ended && isUsable(booted),
  };
  return interpreter;
}

/**
 * A memory-reducing garbage collection once the interpreter is up. The boot leaves 30-70
 * MB of buffers behind (the snapshot read, the one made, Pyodide's wasm file),
 * unreferenced; an idle worker allocates too little for V8 to collect them, so every
 * idle interpreter kept them resident. A plain full collection was not enough: the
 * snapshot buffers (WebAssembly memories, ArrayBuffers) were still counted and resident
 * afterwards in one worker of two (86 against 44 MB external), and the young generation
 * the boot had grown (16 MB) stayed committed. V8's "last resort" flavour collects until
 * nothing more is freed and shrinks the young generation (to 1 MB): with 2 interpreters
 * idle, 370-420 MiB became 280-300 MiB. V8 offers no call for it but the flag-gated gc():
 * exposed on a context of its own, then the flag is put back so that no app's global has it.
 */
function collectBootGarbage(): void {
  const exposed = (globalThis as { gc?: V8Gc }).gc;
  if (exposed) return exposed(MEMORY_REDUCING_GC); // node --expose-gc: leave the flag as it is.
  // Best effort: the flags are the process's, and another worker may put it back meanwhile.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('typeof gc === "function" ? gc : undefined') as V8Gc | undefined;
  setFlagsFromString('--no-expose-gc');
  gc?.(MEMORY_REDUCING_GC);
}

/** V8's gc() extension takes the kind of collection as an object. */
type V8Gc = (options?: { type: 'major' | 'minor'; execution: 'sync' | 'async'; flavor: 'regular' | 'last-resort' }) => void;
const MEMORY_REDUCING_GC = { type: 'major', execution: 'sync', flavor: 'last-resort' } as const;

/** After a fatal error (e.g. a wasm trap) Pyodide's public API throws on every access. */
function isUsable(pyodide: Pyodide): boolean {
  try {
    return pyodide.FS !== undefined;
  } catch {
    return false;
  }
}

function readSettings(spec: WorkerSpec): PythonSettings {
  const python = String(spec.settings.python ?? '3.14');
  if (!(python in RUNTIME_PACKAGES)) {
    throw new BootError('APP_BOOT_FAILED', `${spec.file}: python must be one of ${Object.keys(RUNTIME_PACKAGES).join(', ')}, got "${python}"`);
  }
  const pythonPath = Array.isArray(spec.settings.pythonPath) ? spec.settings.pythonPath.map(String) : [];
  const cacheDir = typeof spec.settings.cacheDir === 'string' ? spec.settings.cacheDir : '';
  return { python, pythonPath, cacheDir };
}

function baseOptions(): PyodideOptions {
  return { env: { ...appEnvironment(), PYTHONDONTWRITEBYTECODE: '1', PYTHONTZPATH: ZONEINFO_DIR }, stdout: writeLine(process.stdout), stderr: writeLine(process.stderr) };
}

/**
 * Python's stdout and stderr, written to the worker's own streams, which
 * runtime/worker-output.ts turns into log lines. (Pyodide's default writes to the
 * process's file descriptors, which a worker thread does not have: print() failed
 * with "OSError: [Errno 29] I/O error".)
 */
function writeLine(stream: NodeJS.WriteStream): (line: string) => void {
  return (line) => { stream.write(`${line}\n`); };
}

/**
 * os.environ for the app: the server's environment, as under gunicorn and mod_wsgi, so
 * that an app finds its services (`REDIS_URL`, `DATABASE_URL`). Left out: the PYTHON*
 * variables, which would point this interpreter at the host's Python, and HOME, which
 * names a host directory that does not exist in the interpreter's own file system.
 */
function appEnvironment(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] =>
    entry[1] !== undefined && !entry[0].startsWith('PYTHON') && entry[0] !== 'HOME'));
}

interface Runtime {
  /** "pyodide@314.0.7": names the snapshots this runtime can restore. */
  name: string;
  loadPyodide: LoadPyodide;
}

/** Load the runtime, import the app and, when this worker won the lock, snapshot it. */
async function bootApp(
  spec: WorkerSpec, timer: BootTimer, runtime: Runtime, settings: PythonSettings, appDir: string, control: Int32Array,
  snapshot: SnapshotFiles | undefined,
): Promise<Pyodide> {
  let pyodide: Pyodide;
  try {
    pyodide = await loadRuntime(timer, runtime, snapshot !== undefined, settings.cacheDir);
    // Before the app's import, so that a connect at import fails with a clear error.
    await enableNetwork(pyodide, control);
    enableKeyDerivation(pyodide);
    await timer.stage('mount paths', () => mountPaths(pyodide, appDir, settings.pythonPath));
    await timer.stage('import app', () => importApp(pyodide, spec, appDir, settings.pythonPath));
  } catch (error) {
    if (snapshot) releaseSnapshotLock(snapshot);
    throw error;
  }
  if (snapshot) {
    await timer.stage('make snapshot', () => makeSnapshot(timer, pyodide, snapshot, 'the app cannot be snapshotted', 'every interpreter of this app boots without one'));
  }
  return pyodide;
}

/**
 * A runtime with the WSGI adapter imported: restored from this process's runtime snapshot
 * when one exists; else, for the worker that won that lock, from the one an earlier start
 * kept on disk; else loaded cold (and snapshotted, in this process and on disk, when this
 * worker won the lock).
 */
async function loadRuntime(timer: BootTimer, runtime: Runtime, forSnapshot: boolean, cacheDir: string): Promise<Pyodide> {
  const env = baseOptions().env;
  const files = locateRuntimeSnapshot(runtime.name, ADAPTER_SOURCE, env);
  const plan = await timer.stage('wait for runtime snapshot', () => planSnapshot(files));
  if (plan.action === 'restore') {
    try {
      return await restore(timer, 'restore runtime snapshot', runtime, takeBytes(plan), forSnapshot);
    } catch (error) {
      timer.note(`cannot start from the runtime snapshot, loading cold: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const making = plan.action === 'make';
  const disk = making && cacheDir !== '' ? locateDiskRuntimeSnapshot(cacheDir, runtime.name, ADAPTER_SOURCE, env) : undefined;
  if (disk) {
    const restored = await restoreFromDisk(timer, runtime, disk, files, forSnapshot);
    if (restored) return restored;
  }
  let pyodide: Pyodide;
  try {
    pyodide = await timer.stage('load runtime', async () => releaseBootBuffers(await runtime.loadPyodide({ ...baseOptions(), _makeSnapshot: forSnapshot || making })));
    installAdapter(pyodide);
  } catch (error) {
    if (making) releaseSnapshotLock(files);
    throw error;
  }
  if (making) await timer.stage('make runtime snapshot', () => makeSnapshot(timer, pyodide, files, 'the runtime cannot be snapshotted', 'apps load it cold', disk));
  return pyodide;
}

/**
 * Restore the runtime an earlier start kept on disk, and publish it as this process's
 * runtime snapshot for the other workers. Undefined when there is none or it cannot be
 * used (one note says why: a file of another build, cut short, damaged); the caller then
 * loads cold and writes the file anew.
 */
async function restoreFromDisk(timer: BootTimer, runtime: Runtime, disk: DiskSnapshot, files: SnapshotFiles, forSnapshot: boolean): Promise<Pyodide | undefined> {
  let heap: Uint8Array | undefined;
  try {
    heap = readDiskSnapshot(disk);
    if (!heap) return undefined;
    const pyodide = await restore(timer, 'restore runtime from disk snapshot', runtime, heap, forSnapshot);
    saveSnapshot(files, heap);
    return pyodide;
  } catch (error) {
    timer.note(`ignoring the runtime kept at ${disk.path}, loading it cold: ${(error as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

/**
 * Restore a snapshot. Its bytes (20-40 MB) are wanted only until they are copied into
 * the wasm heap: taken out of the plan (takeBytes) and passed down here, so that no
 * closure of the booted interpreter keeps them through the plan.
 */
async function restore(timer: BootTimer, stage: string, runtime: Runtime, bytes: Uint8Array, forSnapshot: boolean): Promise<Pyodide> {
  let pending: Uint8Array | undefined = bytes;
  return timer.stage(stage, async () => {
    const options = { ...baseOptions(), _loadSnapshot: pending, _makeSnapshot: forSnapshot };
    pending = undefined;
    // Half of a snapshot's pages are zeros: copied, they would stay resident (sparse-restore.ts).
    return releaseBootBuffers(await withSparseCopies(() => runtime.loadPyodide(options)));
  });
}

/** The snapshot's bytes, removed from the plan that held them (see restore). */
function takeBytes(plan: { bytes: Uint8Array }): Uint8Array {
  const { bytes } = plan;
  plan.bytes = new Uint8Array(0);
  return bytes;
}

/**
 * Drop what Pyodide keeps after its start but never reads again: the snapshot it was
 * restored from (its configuration holds it) and the runtime's wasm file (9.6 MB, held by
 * the loader's instantiate function on the Emscripten module). Each was kept by every
 * interpreter for its whole life.
 */
function releaseBootBuffers(pyodide: Pyodide): Pyodide {
  const internals = pyodide as unknown as { _api?: { config?: { _loadSnapshot?: unknown } }; _module: { instantiateWasm?: unknown } };
  if (internals._api?.config) internals._api.config._loadSnapshot = undefined;
  internals._module.instantiateWasm = undefined;
  return pyodide;
}

function makeSnapshot(timer: BootTimer, pyodide: Pyodide, files: SnapshotFiles, failure: string, consequence: string, disk?: DiskSnapshot): void {
  let heap: Uint8Array;
  try {
    heap = pyodide.makeMemorySnapshot();
    saveSnapshot(files, heap);
  } catch (error) {
    const reason = `${failure}: ${(error as Error).message.split('\n')[0]}`;
    timer.note(`${reason}; ${consequence}`);
    refuseSnapshot(files, reason);
    return;
  }
  if (!disk) return;
  try {
    writeDiskSnapshot(disk, heap);
  } catch (error) {
    timer.note(`cannot keep the runtime in ${dirname(disk.path)} for the next start (--cache-dir): ${(error as Error).message.split('\n')[0]}`);
  }
}

/** Install runtime/wsgi.py as the module interpool_wsgi (it also replaces time.sleep). */
function installAdapter(pyodide: Pyodide): void {
  writeAdapter(pyodide);
  pyodide.runPython(`import sys; sys.path.insert(0, ${JSON.stringify(ADAPTER_DIR)}); import interpool_wsgi`);
}

/** The adapter's source in the in-memory file system, for tracebacks (not in a snapshot). */
function writeAdapter(pyodide: Pyodide): void {
  pyodide.FS.mkdirTree(ADAPTER_DIR);
  pyodide.FS.writeFile(`${ADAPTER_DIR}/interpool_wsgi.py`, ADAPTER_SOURCE);
}

/**
 * The host's time zone database, for zoneinfo (whose search path, TZPATH, names it
 * first) and for Debian's pytz, which reads it there: Pyodide ships no tz data, so
 * zoneinfo found no zone and Django on 3.12 failed to boot. Mounted read-only when the
 * host has it.
 */
const ZONEINFO_DIR = '/usr/share/zoneinfo';

/**
 * Make the app's directory, each --python-path directory, the host's time zone
 * database and its trust store (python-tls.ts) visible at their host paths — read-only,
 * but the app's directory writable as under gunicorn — and install the adapter. The file
 * system is JavaScript state, not part of a memory snapshot, so a restored interpreter
 * mounts again.
 */
function mountPaths(pyodide: Pyodide, appDir: string, pythonPath: readonly string[]): void {
  const { FS } = pyodide;
  const mounted: string[] = [];
  const readOnly = new Set<unknown>();
  const readOnlyDirs = new Set(pythonPath);
  const zoneinfo = statSync(ZONEINFO_DIR, { throwIfNoEntry: false })?.isDirectory() ? [ZONEINFO_DIR] : [];
  // The trust store, for the ssl module and for libraries that open it (certifi).
  const trustStore = trustStoreDirs();
  for (const dir of [...zoneinfo, ...trustStore]) readOnlyDirs.add(dir);
  const inside = (dir: string, outer: string) => dir === outer || dir.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
  // Outermost first: a directory inside one already mounted is visible through it.
  for (const dir of [...new Set([appDir, ...pythonPath, ...zoneinfo, ...trustStore])].sort((a, b) => a.length - b.length)) {
    if (mounted.some((outer) => inside(dir, outer))) continue;
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new BootError('APP_BOOT_FAILED', `python path ${dir} is not a directory`);
    FS.mkdirTree(dir);
    const { mount } = FS.mount(FS.filesystems.NODEFS, { root: dir }, dir);
    if (readOnlyDirs.has(dir)) readOnly.add(mount);
    mounted.push(dir);
  }
  guardReadOnly(pyodide, readOnly);
  writeAdapter(pyodide);
}

/** Refuse writes, creations and deletions under the given mounts with EROFS. */
function guardReadOnly(pyodide: Pyodide, mounts: Set<unknown>): void {
  const { FS } = pyodide;
  const EROFS = pyodide.ERRNO_CODES.EROFS!;
  const O_ACCMODE = 3;
  const O_TRUNC = 0o1000;
  const { mayOpen, mayCreate, mayDelete } = FS;
  FS.mayOpen = (node, flags) => (mounts.has(node.mount) && ((flags & O_ACCMODE) !== 0 || (flags & O_TRUNC) !== 0) ? EROFS : mayOpen.call(FS, node, flags));
  FS.mayCreate = (dir, name) => (mounts.has(dir.mount) ? EROFS : mayCreate.call(FS, dir, name));
  FS.mayDelete = (dir, name, isDir) => (mounts.has(dir.mount) ? EROFS : mayDelete.call(FS, dir, name, isDir));
}

function importApp(pyodide: Pyodide, spec: WorkerSpec, appDir: string, pythonPath: readonly string[]): void {
  const failure = callPython(pyodide, 'load_app', spec.file, spec.callable, appDir, pythonPath, spec.settings.validate === true) as
    [code: 'APP_BOOT_FAILED' | 'APP_CALLABLE_MISSING', message: string, detail: string | null] | undefined;
  if (failure) throw new BootError(failure[0], failure[1], failure[2] ?? undefined);
}

/**
 * Call a function of wsgi.py with JS arguments (arrays passed as Python lists); a Python
 * list result comes back as an array. A JS array would reach Python as a proxy of it,
 * and a library that keeps the caller's frame alive (pkg_resources, which zope.interface
 * and so Pyramid import, does) kept that JS reference: a memory snapshot cannot hold
 * one, and the app failed to snapshot ("Can't serialize object at index 8").
 */
function callPython(pyodide: Pyodide, name: string, ...args: unknown[]): unknown {
  const fn = pyodide.runPython(`import interpool_wsgi; interpool_wsgi.${name}`) as PyProxy;
  const lists = args.map((arg) => (Array.isArray(arg) ? pyodide.toPy(arg) : undefined));
  try {
    return unwrap(fn(...args.map((arg, index) => lists[index] ?? arg)));
  } finally {
    fn.destroy();
    for (const list of lists) list?.destroy();
  }
}

function unwrap(value: unknown): unknown {
  if (value && typeof value === 'object' && typeof (value as PyProxy).toJs === 'function') {
    const proxy = value as PyProxy;
    try {
      return proxy.toJs();
    } finally {
      proxy.destroy();
    }
  }
  return value;
}

/** Whether this interpreter has ended (it is then replaced), and its per-request stack bound. */
interface Life {
  ended: boolean;
  boundStack(): void;
}

async function runRequest(handle: PyProxy, envelope: RequestEnvelope, writer: ResponseWriter, control: Int32Array, life: Life): Promise<TaskResult> {
  let outcome: TaskResult | undefined;
  const host: RequestHost = {
    setHeaders: (status, headers) => writer.setHeaders(status, headers),
    sendChunk: (data) => {
      // Both are Pyodide's copies out of its memory, made for this response (to_js).
      writer.sendChunk(markMovable(data));
      // Backpressure: the app runs synchronously here, so a slow client blocks this worker.
      if (writer.paused) writer.waitUntilWritableSync();
    },
    log: (line) => writer.log(line),
    cancelled: () => writer.cancelled,
    sleep: (seconds) => sleepUnlessInterrupted(seconds, control),
    boundStack: () => life.boundStack(),
    finishWhole: (body) => { outcome = writer.finishWhole([markMovable(body)]); },
    finishStream: () => { outcome = writer.finishStream(); },
    fail: (code, message, detail) => {
      // sys.exit() in the app (wsgi.py): the interpreter ends, as a worker process would.
      if (code === 'WORKER_DIED') life.ended = true;
      outcome = writer.fail({ code, message, ...(detail ? { detail } : {}) });
    },
  };
  try {
    await handle.callPromising(unpackCgi(envelope.cgi), envelope.urlScheme, envelope.body, host);
  } catch (error) {
    // Only the end of the interpreter itself gets here (the app's errors are reported
    // through fail): os._exit(), os.kill() of itself, os.abort(), a fatal error of the
    // runtime. Pyodide refuses every later call, so the worker is replaced.
    life.ended = true;
    return writer.fail({ code: 'WORKER_DIED', message: describeEnd(error), detail: (error as Error)?.stack ?? String(error) });
  }
  return outcome ?? writer.fail({ code: 'APP_RAISED', message: 'interpool_wsgi returned without a response' });
}

/** How the interpreter ended, in one line for the log (the stack goes to the detail). */
function describeEnd(error: unknown): string {
  const { name, message, status, pyodide_fatal_error: fatal } = (error ?? {}) as { name?: string; message?: string; status?: number; pyodide_fatal_error?: boolean };
  // Emscripten's ExitStatus: exit(), os._exit(), a signal sent to itself (128 + signal).
  if (typeof status === 'number') return `the Python interpreter exited with status ${status}`;
  const cause = `${name ?? 'Error'}: ${String(message ?? error).split('\n').find((line) => line.trim() !== '') ?? 'unknown error'}`;
  if (fatal && name === 'RangeError') return `the Python interpreter overflowed its stack (a fatal error of the runtime: ${cause})`;
  if (fatal) return `the Python interpreter suffered a fatal error: ${cause}`;
  return `the Python interpreter failed: ${cause}`;
}

/**
 * The C stack CPython may use in one request. A request runs on a stack of V8's for
 * JSPI (984 KiB in Node 24; --wasm-stack-switching-stack-size made no difference when
 * measured), but CPython 3.14 checks its recursion against Emscripten's own stack in
 * wasm memory (10 MiB in Pyodide). C-level recursion (repr() of an object whose
 * __repr__ calls repr(), a nested list's repr, json.dumps) therefore ran out of V8's
 * stack first, a fatal error of the runtime, instead of raising RecursionError.
 * Measured: the deepest pattern tried (the repr of nested lists) passes with 128 KiB
 * and overflows V8's stack at 192 KiB. (Pure Python calls do not use this stack.)
 */
const REQUEST_C_STACK_BYTES = 128 * 1024;

/**
 * Bound CPython's stack check to REQUEST_C_STACK_BYTES below where the request starts,
 * so that deep C-level recursion raises RecursionError in the app. Pyodide resets the
 * thread's stack limits each time a promising call starts, so wsgi.py calls this at
 * the start of every request, from inside it. Recursion in C that CPython does not
 * check (hash() of a deeply nested tuple) can still overflow: the interpreter then
 * ends with a fatal error and is replaced (runRequest).
 */
function boundCStack(pyodide: Pyodide): void {
  const { _PyThreadState_Get: thread, _emscripten_stack_get_current: current, _PyUnstable_ThreadState_SetStackProtection: protect } = pyodide._module;
  if (!thread || !current || !protect) return; // Pyodide 0.27 (Python 3.12): no such API.
  protect(thread(), current() - REQUEST_C_STACK_BYTES, REQUEST_C_STACK_BYTES);
}

/**
 * time.sleep for Python: a timer the interpreter waits on suspended (JSPI), ended
 * early by a timeout's interrupt. Resolves true when interrupted; the flag is then
 * consumed here and Python raises KeyboardInterrupt itself.
 */
function sleepUnlessInterrupted(seconds: number, control: Int32Array): Promise<boolean> {
  const deadline = performance.now() + seconds * 1000;
  const SLICE_MS = 20;
  return new Promise((resolve) => {
    const tick = (): void => {
      if (Atomics.load(control, ControlSlot.INTERRUPT) !== 0) {
        Atomics.store(control, ControlSlot.INTERRUPT, 0);
        resolve(true);
        return;
      }
      const left = deadline - performance.now();
      if (left <= 0) resolve(false);
      else setTimeout(tick, Math.min(left, SLICE_MS));
    };
    tick();
  });
}
