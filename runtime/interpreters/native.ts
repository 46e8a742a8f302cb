/**
 * The native Python engine (`--python native`): one CPython subinterpreter per worker
 * thread, created, used and ended by that thread through the Node-API addon in native/
 * (built per CPython by scripts/build-native.ts; the server chose the build and passes
 * it in the spec's settings). On CPython 3.12 and later each subinterpreter has its own
 * GIL and allocator, so the workers run Python in parallel; on 3.11 they share the main
 * GIL, as mod_wsgi's subinterpreters do.
 *
 * The WSGI adapter is runtime/wsgi.py, the Pyodide engine's, imported from its file: the
 * addon converts plain values both ways and lets Python call the JS functions of the
 * request's host synchronously, on this thread (the GIL released while JS runs).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BootError, type BootTimer, type Interpreter } from '../interpreter.ts';
import { ControlSlot, SMALL_BODY_BYTES, type ErrorCode, type RequestEnvelope, type TaskResult, type WorkerSpec } from '../protocol.ts';
import { markMovable, type ResponseWriter } from '../response-writer.ts';
import { sharedStoreClient } from '../shared-store-client.ts';
import { locateAdapterCode, readAdapterCode, writeAdapterCode } from './native-adapter-code.ts';

export const ADAPTER_FILE = fileURLToPath(new URL('../wsgi.py', import.meta.url));

/**
 * Imported by the main interpreter before any subinterpreter exists, so that no
 * subinterpreter runs these modules' init and none owns what they keep process-wide
 * (test/runtime/native-subinterpreters.test.ts keeps checking both):
 * - datetime, on every CPython: on 3.13.5, ending a subinterpreter that was the first to
 *   import _datetime (directly, or through zoneinfo or sqlite3) aborted the process
 *   ("double free or corruption"). Of the 62 extension modules in 3.13.5's lib-dynload,
 *   each imported by 4 parallel subinterpreters ended 3 times over, only those did.
 * - on 3.11, the other stdlib extension modules that are single-phase with their state in
 *   C globals (m_size -1; found by calling each lib-dynload module's PyInit in a
 *   throwaway process): _asyncio, _decimal, _socket, _ctypes. Two interpreters importing
 *   one at once both run its init, the second overwriting the first's state: _asyncio's
 *   m_free then clears it for everyone when either interpreter ends (the next task of
 *   any interpreter dereferences NULL: SIGSEGV, 1 run in 400 of the parallel boot test
 *   under load, every time in test/fixtures/native/asyncio-after-end.ts); by 3.11's
 *   sources, _socket's gaierror and herror would then no longer be the classes the first
 *   interpreter's `except` names; _decimal warns ("mpd_setminalloc ... a second time").
 *   Imported once here, every subinterpreter gets a copy of the main interpreter's
 *   module instead, and no init runs again.
 *   Costs the process ~60 ms at start and ~10 MiB (asyncio brings ssl). 3.12 and later
 *   made these modules multi-phase (per-interpreter state).
 */
export function preimportFor(pythonVersion: string): string[] {
  const [major, minor] = pythonVersion.split('.').map(Number);
  if (major === 3 && minor! < 12) return ['datetime', 'asyncio', 'decimal', 'socket', 'ctypes'];
  return ['datetime'];
}

/**
 * C accelerators a subinterpreter must not load, for a pure-Python twin the stdlib falls
 * back to: on 3.11, _zoneinfo keeps its caches in C globals that each interpreter's
 * import sets anew and whose module free clears, so once the interpreter that imported
 * it last ended, every other one's ZoneInfo() failed ("SystemError: null argument to
 * internal routine", or a NameError from the ended interpreter's weakref module), for
 * good (Django 4, pandas; at the first recycle or reload). Importing it first in the
 * main interpreter does not help (its init runs again in each). zoneinfo's own
 * `from _zoneinfo import ZoneInfo` then takes zoneinfo._zoneinfo, the same class in
 * Python. 3.12 made _zoneinfo per-interpreter. Debian 12's zope.interface (Pyramid's)
 * is the same case: its C optimizations keep references into the first interpreter,
 * and after a reload every request failed ("NameError: name 'AttributeError' is not
 * defined"); without them it runs its pure-Python code.
 */
export function refusedAcceleratorsFor(pythonVersion: string): string[] {
  const [major, minor] = pythonVersion.split('.').map(Number);
  return major === 3 && minor! < 12 ? ['_zoneinfo', 'zope.interface._zope_interface_coptimizations'] : [];
}

/** The addon's surface (native/src/addon.cc). */
export interface NativeAddon {
  readonly pythonVersion: string;
  readonly ownGilSupported: boolean;
  initialize(executable: string, preimport: readonly string[]): { version: string; executable: string; ownGil: boolean; preimportFailures: string[] };
  start(ownGil: boolean): void;
  run(code: string): void;
  call(name: string, ...args: unknown[]): unknown;
  /** call(name, record, ...args) for a record of strings packed as protocol.ts WireCgi (read in one piece). */
  callWithPacked(name: string, packed: string, ...args: unknown[]): unknown;
  end(): void;
  /**
   * While a call runs, a nonzero control[slot] is taken and raised as interpool.RequestTimeout;
   * a nonzero control[unwindSlot] makes a call still running Python unwind (native/src/unwind.h).
   */
  watchInterrupts(control: Int32Array, slot: number, unwindSlot: number): void;
  /** This subinterpreter's small-object allocator (its own with an own GIL, else the process's); -1 when unknown. */
  allocatorStats(): { allocatedBytes: number; arenaBytes: number };
  /** The C-heap blocks (objects over 512 bytes) this interpreter holds; -1 when not counted (native/src/large-blocks.h). Absent from older builds. */
  largeBlockBytes?(): number;
  /** Bytes kept for every thread of the process by shareBytes, or null. */
  sharedBytes(key: string): Uint8Array | null;
  shareBytes(key: string, bytes: Uint8Array): void;
  /** What ended own-GIL interpreters gave back (native/src/arenas.cc); absent from older builds. */
  releasedArenas?(): { releasedBytes: number; keptBytes: number; interpreters: number };
}

/**
 * Installs wsgi.py in the subinterpreter, from its code compiled by an earlier
 * interpreter of this process or an earlier start (native-adapter-code.ts) when there
 * is one. Its .pyc cannot be relied on (sys.dont_write_bytecode, and a read-only
 * install). A note says why a kept file was not used or not written.
 */
function installAdapter(addon: NativeAddon, timer: BootTimer, cpythonVersion: string, cacheDir: string): void {
  const code = locateAdapterCode(ADAPTER_FILE, cpythonVersion, cacheDir);
  let kept = addon.sharedBytes(code.key);
  const onDisk = code.path !== undefined ? { ...code, path: code.path } : undefined;
  if (kept === null && onDisk) {
    try {
      kept = readAdapterCode(onDisk) ?? null;
    } catch (error) {
      timer.note(`ignoring the adapter's code kept at ${onDisk.path}, compiling it: ${(error as Error).message.split('\n')[0]}`);
    }
    // The other workers of this process take it from memory.
    if (kept !== null) addon.shareBytes(code.key, kept);
  }
  const compiled = addon.call('interpool_install', ADAPTER_FILE, code.source, kept) as Uint8Array | null;
  if (compiled === null) return;
  addon.shareBytes(code.key, compiled);
  if (!onDisk) return;
  try {
    writeAdapterCode(onDisk, compiled);
  } catch (error) {
    timer.note(`cannot keep the adapter's code in ${dirname(onDisk.path)} for the next start (--cache-dir): ${(error as Error).message.split('\n')[0]}`);
  }
}

/**
 * How often an own-GIL interpreter's memory is measured. A measure walks the allocator's
 * arenas and prints its figures (~35 us), too much for every request: it is taken once
 * this many requests or this long has passed since the last one, so it never costs more
 * than ~0.1% of a worker's time (every 32 requests, it was 1 us of a hello request's ~10).
 * The request bound keeps a fast leak from running far past --memory-limit.
 */
const MEASURE_EVERY_REQUESTS = 256;
const MEASURE_EVERY_MS = 50;

/** An error from the addon: a C-level failure or a Python exception, as data. */
interface NativeError extends Error {
  code?: string;
  detail?: string;
}

/**
 * Glue run in each subinterpreter's __main__: wsgi.py imported from its file (tracebacks
 * show its lines), and the entry points the addon calls.
 *
 * The request host wsgi.py calls (RequestHost, as python.ts gives it) is made once per
 * interpreter, not per request: a JS function handed to Python costs a Node-API
 * reference, a capsule and a function object, made and freed again, and hello paid for
 * eight of them per request. What can wait until the app returns (its status and
 * headers, a whole body, a failure) is kept by the Python host and returned by
 * interpool_handle as one value, so a request that returns a list crosses from Python
 * to JS not at all; the headers cross with the first streamed chunk. The status and
 * headers cross as one string (see setHead).
 */
const GLUE = `
import _thread, importlib.util, io, sys

sys.dont_write_bytecode = True

def interpool_install(path, source, code_bytes):
    """wsgi.py as the module interpool_wsgi, from its code marshalled by an earlier
    interpreter when there is one (native-adapter-code.ts); else compiled from source,
    and then returned, marshalled."""
    import marshal
    code = compiled = None
    if code_bytes is not None:
        try:
            code = marshal.loads(code_bytes)
        except (EOFError, ValueError, TypeError):
            pass
        if type(code) is not type(interpool_install.__code__):
            code = None
    if code is None:
        code = compile(source, path, "exec", dont_inherit=True)
        compiled = marshal.dumps(code)
    spec = importlib.util.spec_from_file_location("interpool_wsgi", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["interpool_wsgi"] = module
    exec(code, module.__dict__)
    global interpool_wsgi_handle
    interpool_wsgi_handle = module.handle
    return compiled

def interpool_reset_environ(packed):
    # os.environ as the server's environment was at its start (config.ts, startingEnviron),
    # not as the process's is now, which other apps' interpreters may have written.
    # Writes still go through to the process (putenv), for the app's child processes and
    # time.tzset(); only the mapping is refilled, without putenv.
    import os
    fields = packed.split("\\0")
    data = os.environ._data
    data.clear()
    for index in range(0, len(fields) - 1, 2):
        data[os.environ.encodekey(fields[index])] = os.environ.encodevalue(fields[index + 1])

def interpool_bind_shared(call):
    sys.modules["interpool_wsgi"].bind_shared(call)

def interpool_load(path, callable_name, app_dir, extra_paths, validate):
    return sys.modules["interpool_wsgi"].load_app(path, callable_name, app_dir, extra_paths, validate)

def interpool_run_exit_functions():
    # What CPython runs when an interpreter ends, in Py_EndInterpreter's order, called by
    # the addon before it stops the app's threads (native/src/interpreter.cc). First the
    # threading module's exit hooks. concurrent.futures' ends its executors' idle workers,
    # which otherwise wait in C (a SimpleQueue's get) where no SystemExit reaches them,
    # and the interpreter could not end; but it also joins them, which waits for good on
    # a task that never returns. So those workers are sent their stop sentinel here, not
    # joined: they stop on it, or with the app's other threads. Then atexit's functions.
    # Each runs once, as in CPython's threading._shutdown (which Py_EndInterpreter still
    # calls): the list is emptied, and a hook registered from here on is refused.
    import traceback
    threading = sys.modules.get("threading")
    futures = sys.modules.get("concurrent.futures.thread")
    hooks = getattr(threading, "_threading_atexits", [])
    if threading is not None:
        threading._SHUTTING_DOWN = True
    while hooks:
        hook = hooks.pop()
        try:
            if not (futures is not None and _interpool_calls(hook, getattr(futures, "_python_exit", None))
                    and _interpool_stop_executor_workers(futures)):
                hook()
        except BaseException:
            traceback.print_exc()
    import atexit
    atexit._run_exitfuncs()
    # multiprocessing's resource tracker (a process, started by a spawn pool) ends when its
    # pipe closes; 3.11 closes it only at the end of the process, so each interpreter
    # that used one left a tracker process behind, for good.
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    if tracker is not None:
        try:
            tracker._resource_tracker._stop()
        except BaseException:
            traceback.print_exc()
    # CPython 3.13: for threading, this thread is a _DummyThread (a subinterpreter's main
    # thread is the process's, as for a request thread of mod_wsgi). What forgets it is a
    # thread-local that the interpreter's end clears after the module's globals are gone,
    # printing a TypeError to stderr; dropped now, it forgets it quietly.
    info = getattr(threading, "_thread_local_info", None)
    if info is not None and hasattr(info, "_track_dummy_thread_ref"):
        del info._track_dummy_thread_ref

def _interpool_calls(hook, function):
    # A hook as threading._register_atexit keeps it: functools.partial on 3.11, a lambda
    # over the function from 3.12.
    if function is None:
        return False
    if hook is function or getattr(hook, "func", None) is function:
        return True
    for cell in getattr(hook, "__closure__", None) or ():
        try:
            if cell.cell_contents is function:
                return True
        except ValueError:
            pass
    return False

def _interpool_stop_executor_workers(futures):
    # concurrent.futures.thread._python_exit without its join (names stable since 3.9);
    # False where they are not there, and the hook itself runs.
    try:
        lock, threads_queues = futures._global_shutdown_lock, futures._threads_queues
    except AttributeError:
        return False
    futures._shutdown = True
    with lock:
        queues = list(threads_queues.values())
    for work_queue in queues:
        work_queue.put(None)
    return True

def interpool_wake_waiters():
    # Called by the addon while it stops the app's threads, after raising SystemExit in
    # each: one waiting on a threading.Condition (Event.wait, Queue.get, Semaphore,
    # Barrier) is in a lock's acquire, in C, where the exception is not seen. notify_all
    # brings it back into Python, where it is; a Condition's waiter checks again what it
    # waits for, so a wake-up is always allowed. A bare Lock.acquire, a SimpleQueue.get
    # or a socket read cannot be woken so.
    threading = sys.modules.get("threading")
    if threading is None:
        return
    import gc
    condition = threading.Condition
    for candidate in gc.get_objects():
        if not issubclass(type(candidate), condition) or not getattr(candidate, "_waiters", None):
            continue
        # One odd Condition (a subclass, a lock of the app's own) must not spare the others.
        try:
            if candidate.acquire(False):
                try:
                    candidate.notify_all()
                finally:
                    candidate.release()
        except Exception:
            pass

def interpool_head(status, headers):
    # One str for setHead in native.ts: converting the list of pairs cost a Node-API
    # array and two element stores for every pair. start_response let no NUL through.
    if not headers:
        return status
    return status + "\\0" + "\\0".join(["\\0".join(pair) for pair in headers])

class InterpoolHost:
    __slots__ = ("_send", "_log", "cancelled", "sleep", "_status", "_headers", "_outcome", "_thread")

    def __init__(self, send, log, cancelled, sleep):
        self._send, self._log, self.cancelled, self.sleep = send, log, cancelled, sleep
        self._status = self._headers = self._outcome = None
        # threading.get_ident is this very function; importing threading cost each
        # interpreter's start about a millisecond.
        self._thread = _thread.get_ident()

    def log(self, line):
        # The server log is reached through the worker thread's JS only. A line written
        # to wsgi.errors from a thread the app started goes to the process's stderr, as
        # under gunicorn, rather than being lost or raising in the app's thread.
        if _thread.get_ident() == self._thread:
            self._log(line)
        else:
            sys.__stderr__.write(line + "\\n")
            sys.__stderr__.flush()

    def setHeaders(self, status, headers):
        self._status, self._headers = status, headers

    def sendChunk(self, data):
        status = self._status
        if status is None:
            self._send(data)
        else:
            self._status = None
            self._send(data, interpool_head(status, self._headers))

    def finishWhole(self, body):
        # A small body crosses as a latin-1 str (one character per byte), which the addon
        # makes a JS string with one copy (protocol.ts WholeBody).
        if len(body) <= ${SMALL_BODY_BYTES}:
            body = body.decode("latin-1")
        status = self._status
        self._outcome = ("whole", None if status is None else interpool_head(status, self._headers), body)

    def finishStream(self):
        status = self._status
        self._outcome = ("stream", None if status is None else interpool_head(status, self._headers))

    def fail(self, code, message, detail=None):
        status = self._status
        self._outcome = ("fail", None if status is None else interpool_head(status, self._headers), code, message, detail)

    def take(self):
        outcome = self._outcome
        self._status = self._headers = self._outcome = None
        return outcome

class InterpoolOutput(io.TextIOBase):
    # sys.stdout and sys.stderr: text written on this interpreter's own thread goes to the
    # worker's process.stdout / process.stderr, whose whole lines become log lines tagged
    # with the app, the worker and the stream (runtime/worker-output.ts), as Pyodide's
    # print() does. The interpreter's own streams were block-buffered file descriptors of
    # the process: a print() reached the output only when the interpreter ended, raw among
    # the JSON log lines. From a thread the app started (which cannot call the worker's
    # JS) the text goes to the process's own stream, flushed at once, as wsgi.errors does.
    # io.TextIOBase gives writelines and says it is neither readable nor seekable nor a tty.
    encoding = "utf-8"
    errors = "backslashreplace"
    newlines = None
    closed = False

    def __init__(self, name, write, original):
        self.name, self._write, self._original = name, write, original
        self._thread = _thread.get_ident()
        # Text of other threads not yet ended by a newline: the process's stream gets whole
        # lines in one write each, never a piece glued to the server's own log lines.
        self._pending = ""
        self._lock = _thread.allocate_lock()

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if _thread.get_ident() == self._thread:
            try:
                self._write(self.name, text)
                return len(text)
            except Exception:
                # The worker's JS is going away (an atexit function printing as the
                # interpreter ends with its worker): the process's stream then.
                pass
        with self._lock:
            pending = self._pending + text
            end = pending.rfind("\\n") + 1
            self._pending = pending[end:]
            if end:
                self._original.write(pending[:end])
                self._original.flush()
        return len(text)

    def flush(self):
        with self._lock:
            pending, self._pending = self._pending, ""
            if pending:
                self._original.write(pending)
                self._original.flush()

    def writable(self):
        return True

    def fileno(self):
        return self._original.fileno()

    @property
    def buffer(self):
        return self._original.buffer

def interpool_bind_output(write):
    sys.stdout = InterpoolOutput("stdout", write, sys.__stdout__)
    sys.stderr = InterpoolOutput("stderr", write, sys.__stderr__)

interpool_host = None

def interpool_bind_host(send, log, cancelled, sleep):
    global interpool_host
    interpool_host = InterpoolHost(send, log, cancelled, sleep)

def interpool_handle(cgi, url_scheme, body):
    host = interpool_host
    interpool_wsgi_handle(cgi, url_scheme, body, host)
    outcome = host._outcome
    host._status = host._headers = host._outcome = None
    return outcome
`;

/**
 * What interpool_handle returns: how the request ended, with the status and headers not
 * yet sent (packed: see setHead).
 */
type Outcome =
  | [kind: 'whole', head: string | null, body: Uint8Array | string]
  | [kind: 'stream', head: string | null]
  | [kind: 'fail', head: string | null, code: ErrorCode, message: string, detail: string | null]
  | null;

/** The request being served on this thread, for the host functions bound once. */
interface CurrentRequest {
  writer: ResponseWriter;
}

/**
 * os._exit() would end the server process, every app's interpreters with it. On the
 * interpreter's own thread it ends the interpreter instead, as it ends a gunicorn or
 * mod_wsgi worker process: wsgi.py reports the SystemExit as WORKER_DIED (502, in a
 * request) or a boot failure (at import), and the worker is replaced. Anywhere else (a
 * thread the app started, a forked child) it is the real one.
 */
const EXIT_GLUE = `
import _thread, os

class InterpreterExit(SystemExit):
    interpool_call = "os._exit"

def _interpool_exit(status, _exit=os._exit, _thread_id=_thread.get_ident(), _pid=os.getpid()):
    if _thread.get_ident() != _thread_id or os.getpid() != _pid:
        _exit(status)
    raise InterpreterExit(status)

os._exit = _interpool_exit
del _interpool_exit
`;

/**
 * Calls on the whole process that a subinterpreter cannot make, each given what an app
 * moving from gunicorn or mod_wsgi needs.
 *
 * os.fork() is refused, with what to use instead. CPython aborts a
 * forked child of a subinterpreter at once ("not main interpreter"), so a fork there is
 * never of use, and an own GIL refuses it anyway. With a shared GIL (CPython 3.11, or
 * --python-isolation shared-gil) it was allowed: multiprocessing's default start method
 * forked a child that died, and its pool's thread forked another, ~90 a second, each
 * aborting with a fatal error line, for as long as the server ran. subprocess does not
 * fork this way (it execs in the child) and keeps working.
 *
 * signal.signal() is ignored with a warning, as mod_wsgi does (WSGIRestrictSignal): CPython
 * raises ValueError outside the main interpreter's main thread, and an app that sets a
 * handler at import (for a graceful stop, a log reopen) never booted. Signals belong to
 * the server, whose own handlers stop and reload it; the handler would never run here.
 * So are signal.alarm() and signal.setitimer(), a request's home-made timeout: the
 * timer is the process's, and its SIGALRM, with no handler of the app's to take it,
 * ended the whole server (ignored-signals.ts also ignores it, for C code that arms one).
 */
const PROCESS_GLUE = `
import os, signal, sys

def _interpool_no_fork(*args, **kwargs):
    raise RuntimeError(
        "os.fork() and os.forkpty() cannot run in a subinterpreter: CPython aborts the child "
        "at once. Start programs with subprocess, and use multiprocessing's 'spawn' start "
        "method (multiprocessing.get_context('spawn'))")

os.fork = _interpool_no_fork
if hasattr(os, "forkpty"):
    os.forkpty = _interpool_no_fork
del _interpool_no_fork

def _interpool_signal(signalnum, handler, _getsignal=signal.getsignal):
    previous = _getsignal(signalnum)
    print(f"interpool: signal.signal({signalnum!r}, ...) ignored: signals belong to the server process, "
          "and a handler set in a subinterpreter would never run", file=sys.stderr)
    return previous

signal.signal = _interpool_signal
del _interpool_signal

def _interpool_ignored(name, result):
    def ignored(*args, **kwargs):
        print(f"interpool: signal.{name}() ignored: its timer's signal is the server process's, and "
              "would end it (interpool's --timeout ends a request that runs too long)", file=sys.stderr)
        return result
    return ignored

signal.alarm = _interpool_ignored("alarm", 0)
signal.setitimer = _interpool_ignored("setitimer", (0.0, 0.0))
del _interpool_ignored
`;

export async function bootNative(spec: WorkerSpec, timer: BootTimer, control: Int32Array): Promise<Interpreter> {
  const addonPath = String(spec.settings.nativeAddon ?? '');
  const executable = String(spec.settings.cpython ?? '');
  const source = String(spec.settings.cpythonSource ?? '');
  const pythonPath = Array.isArray(spec.settings.pythonPath) ? spec.settings.pythonPath.map(String) : [];
  const addon = await timer.stage('load runtime', () => {
    const loaded = loadAddon(addonPath);
    const runtime = failAsBoot(() => loaded.initialize(executable, preimportFor(loaded.pythonVersion)));
    if (runtime.preimportFailures.length > 0) timer.note(`the main interpreter could not import ${runtime.preimportFailures.join(', ')}`);
    return { loaded, runtime };
  });
  const { loaded, runtime } = addon;
  // --python-isolation shared-gil: legacy subinterpreters, for C extensions without
  // per-interpreter GIL support (3.11's are always so).
  const ownGil = runtime.ownGil && spec.settings.isolation !== 'shared-gil';
  const current: { request: CurrentRequest | null } = { request: null };
  await timer.stage('create interpreter', () => {
    failAsBoot(() => loaded.start(ownGil));
    // A timeout (the main thread sets INTERRUPT) raises interpool.RequestTimeout in the app.
    failAsBoot(() => loaded.watchInterrupts(control, ControlSlot.INTERRUPT, ControlSlot.UNWIND));
    failAsBoot(() => {
      loaded.run(GLUE);
      loaded.run(EXIT_GLUE);
      loaded.run(PROCESS_GLUE);
      const refused = refusedAcceleratorsFor(loaded.pythonVersion);
      if (refused.length > 0) loaded.run(`import sys\n${refused.map((name) => `sys.modules[${JSON.stringify(name)}] = None`).join('\n')}`);
      if (typeof spec.settings.environ === 'string') loaded.call('interpool_reset_environ', spec.settings.environ);
      installAdapter(loaded, timer, runtime.version, typeof spec.settings.cacheDir === 'string' ? spec.settings.cacheDir : '');
      // interpool.shared, usable from the app's import on (kept: no snapshot here).
      loaded.call('interpool_bind_shared', sharedStoreClient.callFromPython.bind(sharedStoreClient));
      bindHost(loaded, current, control);
    });
  });
  await timer.stage('import app', () => {
    const failure = importApp(loaded, spec, pythonPath);
    if (failure) {
      loaded.end();
      throw new BootError(failure[0], failure[1], failure[2] ?? undefined);
    }
    const flag = (value: boolean) => (value ? 'True' : 'False');
    failAsBoot(() => loaded.run(`import sys; sys.modules["interpool_wsgi"].configure(${flag(spec.overlap)}, ${flag(spec.multiprocess)})`));
  });
  const gil = ownGil ? 'own GIL' : 'shared GIL';
  // Set once the app ended its interpreter (sys.exit(), os._exit()): replaced after the request.
  const life = { ended: false };
  return {
    kind: 'python',
    version: `CPython ${runtime.version} (native, ${gil}; ${executable}${source ? `, ${source}` : ''})`,
    handle: (envelope, writer) => Promise.resolve(runRequest(loaded, current, envelope, writer, life)),
    healthy: () => !life.ended,
    ...memoryMeasure(loaded, ownGil),
  };
}

/**
 * What the interpreter holds, for --memory-limit and the admin. An own GIL comes with an
 * own small-object allocator: its arenas are this interpreter's. Larger objects come
 * from the C heap, whose blocks the addon counts per interpreter (large-blocks.h), on
 * either GIL. A shared GIL's small objects are every interpreter's, not attributable to
 * one: then only the large blocks count, or, with an addon that does not count them, the
 * worker's V8 heap. The label says which (the admin shows it).
 */
function memoryMeasure(addon: NativeAddon, ownGil: boolean): Pick<Interpreter, 'memoryBytes' | 'memoryMeasure'> {
  const counted = (addon.largeBlockBytes?.() ?? -1) >= 0;
  const largeBlocks = () => Math.max(0, addon.largeBlockBytes!());
  if (ownGil) {
    const arenas = measureOwnAllocator(addon);
    return counted
      ? { memoryBytes: () => arenas() + largeBlocks(), memoryMeasure: 'own allocator (pymalloc arenas) and C-heap blocks over 512 bytes' }
      : { memoryBytes: arenas, memoryMeasure: 'own allocator (pymalloc arenas)' };
  }
  return counted
    ? { memoryBytes: largeBlocks, memoryMeasure: 'C-heap blocks over 512 bytes (objects up to 512 bytes share the main allocator, not counted)' }
    : { memoryMeasure: 'V8 heap (the Python allocator is shared by every interpreter)' };
}

/** The interpreter's pymalloc arenas, measured at most every so many requests or ms. */
function measureOwnAllocator(addon: NativeAddon): () => number {
  let measured = -1;
  let calls = 0;
  let at = 0;
  return () => {
    const now = performance.now();
    if (measured < 0 || ++calls >= MEASURE_EVERY_REQUESTS || now - at >= MEASURE_EVERY_MS) {
      const { arenaBytes } = addon.allocatorStats();
      measured = Math.max(0, arenaBytes);
      calls = 0;
      at = now;
    }
    return measured;
  };
}

function loadAddon(path: string): NativeAddon {
  if (path === '') throw new BootError('APP_BOOT_FAILED', '--python native: no native engine addon was chosen for this app');
  try {
    return createRequire(import.meta.url)(path) as NativeAddon;
  } catch (error) {
    throw new BootError('APP_BOOT_FAILED', `--python native: cannot load ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
}

type ImportFailure = [code: 'APP_BOOT_FAILED' | 'APP_CALLABLE_MISSING', message: string, detail: string | null];

/**
 * The app's import (wsgi.py's load_app): null, or why it failed. A Python exception
 * that escaped load_app is the import's failure too: --boot-timeout's unwinding raises
 * at every line, so it can end the import inside load_app's own except clause. It is
 * reported as load_app reports one, so that the line names the app and gets its fix.
 */
function importApp(loaded: NativeAddon, spec: WorkerSpec, pythonPath: string[]): ImportFailure | null {
  try {
    return loaded.call('interpool_load', spec.file, spec.callable, dirname(spec.file), pythonPath, spec.settings.validate === true) as ImportFailure | null;
  } catch (error) {
    const native = error as NativeError;
    if (native.code !== 'PYTHON_EXCEPTION') return failAsBoot(() => { throw error; });
    return ['APP_BOOT_FAILED', `${spec.file}: failed to import: ${native.message}`, native.detail ?? null];
  }
}

/** An addon failure during boot, as a boot error that names its code. */
function failAsBoot<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    const native = error as NativeError;
    throw new BootError('APP_BOOT_FAILED', `the native engine failed (${native.code ?? 'unknown'}): ${native.message}`, native.detail);
  }
}

/**
 * The host's JS half, bound once per interpreter (see GLUE): each function acts on the
 * request this thread is serving. Python calls them synchronously, on this thread.
 */
function bindHost(addon: NativeAddon, current: { request: CurrentRequest | null }, control: Int32Array): void {
  const writer = (): ResponseWriter => {
    if (current.request === null) throw new Error('no request is being served on this thread');
    return current.request.writer;
  };
  const send = (data: Uint8Array, head?: string) => {
    const target = writer();
    if (head !== undefined) setHead(target, head);
    // The addon's copy of the app's bytes, made for this response.
    target.sendChunk(markMovable(data));
    // Backpressure: the app runs synchronously on this thread, so a slow client blocks
    // this worker (its GIL is released while it waits).
    if (target.paused) target.waitUntilWritableSync();
  };
  const log = (line: string) => writer().log(line);
  const cancelled = () => writer().cancelled;
  const sleep = (seconds: number) => sleepUnlessInterrupted(seconds, control);
  addon.call('interpool_bind_host', send, log, cancelled, sleep);
  addon.call('interpool_bind_output', (stream: string, text: string) => {
    (stream === 'stderr' ? process.stderr : process.stdout).write(text);
  });
}

function runRequest(addon: NativeAddon, current: { request: CurrentRequest | null }, envelope: RequestEnvelope, writer: ResponseWriter, life: { ended: boolean }): TaskResult {
  let outcome: Outcome;
  current.request = { writer };
  try {
    const { cgi } = envelope;
    // Packed on the main thread (protocol.ts WireCgi), it goes to the addon as it came;
    // the object a NUL in a value makes it send instead is converted key by key.
    outcome = (typeof cgi === 'string'
      ? addon.callWithPacked('interpool_handle', cgi, envelope.urlScheme, envelope.body)
      : addon.call('interpool_handle', cgi, envelope.urlScheme, envelope.body)) as Outcome;
  } catch (error) {
    // Only a failure outside the app gets here (wsgi.py reports the app's through fail).
    const native = error as NativeError;
    return writer.fail({ code: 'APP_RAISED', message: `the Python interpreter failed: ${native.message}`, ...(native.detail ? { detail: native.detail } : {}) });
  } finally {
    current.request = null;
  }
  if (outcome === null) return writer.fail({ code: 'APP_RAISED', message: 'interpool_wsgi returned without a response' });
  // Headers the app set that no streamed chunk has taken yet.
  if (outcome[1] !== null) setHead(writer, outcome[1]);
  switch (outcome[0]) {
    case 'whole':
      return writer.finishWhole(typeof outcome[2] === 'string' ? outcome[2] : [markMovable(outcome[2])]);
    case 'stream':
      return writer.finishStream();
    case 'fail':
      // sys.exit() or os._exit() in the app (wsgi.py): the interpreter ends, as a worker process would.
      if (outcome[2] === 'WORKER_DIED') life.ended = true;
      return writer.fail({ code: outcome[2], message: outcome[3], ...(outcome[4] ? { detail: outcome[4] } : {}) });
  }
}

/**
 * The status and headers as the Python host packs them (interpool_head): the status,
 * then each name and value, NUL before each. NUL is a control character, which
 * start_response refuses in all three.
 */
function setHead(writer: ResponseWriter, head: string): void {
  const fields = head.split('\0');
  // The rest is names and values in turn: the main thread's flat list (protocol.ts FlatHeaders).
  writer.setFlatHeaders(fields[0]!, fields.slice(1));
}

/**
 * time.sleep for the app (wsgi.py calls it through the host): the thread blocks, the
 * interpreter's GIL released, until the time is up or a timeout's interrupt arrives.
 * True when interrupted: the flag is taken here (or by the addon's watcher, whichever
 * comes first) and wsgi.py raises interpool.RequestTimeout itself.
 */
function sleepUnlessInterrupted(seconds: number, control: Int32Array): boolean {
  const deadline = performance.now() + seconds * 1000;
  // The main thread stores the flag without notifying: look again at least this often.
  const SLICE_MS = 20;
  for (;;) {
    const flag = Atomics.load(control, ControlSlot.INTERRUPT);
    if (flag !== 0 && Atomics.compareExchange(control, ControlSlot.INTERRUPT, flag, 0) === flag) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(control, ControlSlot.INTERRUPT, 0, Math.min(left, SLICE_MS));
  }
}
