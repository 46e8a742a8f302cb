"""The WSGI calling convention (PEP 3333) inside one Python interpreter.

Loaded as text by runtime/interpreters/python.ts (Pyodide) and
runtime/interpreters/native.ts (a CPython subinterpreter) and installed as the module
``interpool_wsgi``. The JavaScript side calls :func:`load_app` once per cold boot and
:func:`handle` once per request. Under Pyodide that call is a promising call (JSPI), so
that a blocking wait inside the app (``time.sleep``) suspends this interpreter only; the
native engine calls synchronously on the worker's own thread, where ``time.sleep`` is
the real one. The few Pyodide-only parts are marked ``PYODIDE``.

The CGI variables arrive already built by the main thread (one implementation of the
environ rules for every kind of interpreter); this module adds the ``wsgi.*`` keys,
checks what the app hands to ``start_response`` when it is called (PEP 3333 lets a
server do so, and mod_wsgi does), raising inside the app where its developer sees the
line at fault, and always calls the iterable's ``close()``. The same rules hold on the
main thread (server/response-rules.ts) as the last line of defence, and for JS apps
(runtime/start-response-checks.ts); test/server/start-response-checks.test.ts shows
the three agree.

It also installs the module ``interpool``, which apps import for what the server
gives them (``interpool.RequestTimeout``).

Nothing here keeps a reference to a JavaScript object between requests, so a memory
snapshot taken after :func:`load_app` holds no JavaScript state.
"""

import _thread
import base64
import importlib.util
import io
import json
import operator
import os
import re
import stat
import sys
import time
import traceback
import types

try:
    from pyodide.ffi import can_run_sync, run_sync, to_js
    PYODIDE = True
except ImportError:  # the native engine: its addon converts values to JS itself, and the
    PYODIDE = False  # host's functions are synchronous: this thread can always block.

    def to_js(value):
        return value

    def can_run_sync():
        return True

    def run_sync(value):
        return value

APP_MODULE = None
APPLICATION = None

# wsgi.multithread / wsgi.multiprocess, set by configure() once the worker knows its mode.
MULTITHREAD = False
MULTIPROCESS = False

# The JS host of the request being served (see python.ts `RequestHost`), None between
# requests. Only time.sleep() reads it, to suspend instead of spinning.
_current_host = None


class BadResponse(Exception):
    """Something the app handed back that the WSGI contract does not allow."""


class BadChunkType(BadResponse, TypeError):
    """A body chunk (returned, yielded or given to write()) that is not bytes: a TypeError
    too, as gunicorn's and mod_wsgi's, so that an app's `except TypeError` sees it."""


# --- the shared store (interpool.shared) -----------------------------------------

class SharedStoreUnavailable(Exception):
    """The shared store is out of reach (its Redis went away): the server keeps
    serving and reconnects by itself; the app may answer without it or retry."""

    __module__ = "interpool"


# The native engine hands the worker's entry point over (bind_shared); under Pyodide it
# is looked up on the worker's globalThis at each call, so that no JavaScript reference
# outlives the call (a memory snapshot may be taken after the app's import).
_shared_call = None
_SHARED_ENTRY = "interpoolSharedStore"  # runtime/shared-store-client.ts PYTHON_ENTRY
_BYTES_KEY = "\x00"
_MAX_DEPTH = 64
_SHARED_ERRORS = {
    "type": TypeError,
    "value": ValueError,
    "limit": ValueError,
    "timeout": TimeoutError,
    "unavailable": SharedStoreUnavailable,
}


def bind_shared(call):
    global _shared_call
    _shared_call = call


def _call_store(op, key, text=None, number=None, extra=None):
    if _shared_call is not None:
        reply = _shared_call(op, key, text, number, extra)
    elif PYODIDE:
        import js
        reply = getattr(js, _SHARED_ENTRY)(op, key, text, number, extra)
    else:
        raise SharedStoreUnavailable("the shared store is not linked to this interpreter")
    tag, rest = reply[0], reply[1:]
    if tag == "v":
        return _decode_shared(rest)
    if tag == "j":
        return json.loads(rest)
    if tag == "n":
        return _MISSING
    kind, message = json.loads(rest)
    raise _SHARED_ERRORS.get(kind, RuntimeError)(message)


_MISSING = object()


def _encode_shared(value):
    """The stored form: canonical JSON (keys sorted), bytes as {"\\u0000": base64}."""
    return json.dumps(_to_plain(value, 0), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _to_plain(value, depth):
    if depth > _MAX_DEPTH:
        raise ValueError(f"a shared store value may nest {_MAX_DEPTH} levels at most (a cycle?)")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"the shared store cannot hold {value!r}")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [_to_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        plain = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise TypeError(f"shared store dict keys must be str, not {type(name).__name__}")
            if name == _BYTES_KEY:
                raise ValueError('a shared store dict may not have the key "\\x00"')
            plain[name] = _to_plain(item, depth + 1)
        return plain
    raise TypeError(f"the shared store cannot hold a value of type {type(value).__name__} "
                    "(None, bool, int, float, str, bytes, and lists, tuples and dicts of those)")


def _decode_bytes(obj):
    if len(obj) == 1 and _BYTES_KEY in obj:
        return base64.b64decode(obj[_BYTES_KEY])
    return obj


def _decode_shared(text):
    return json.loads(text, object_hook=_decode_bytes)


def _check_key(key, what="key"):
    if not isinstance(key, str):
        raise TypeError(f"shared store {what}s must be str, not {type(key).__name__}")
    return key


def _check_seconds(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise TypeError(f"{what} must be a number of seconds, 0 or more, got {value!r}")
    return value


class SharedLock:
    """A named lock of the app's store: ``with shared.lock(name, timeout=5):``.

    Held by this interpreter until released, or until it expires (`expire` seconds), or
    until the interpreter ends (the server releases what it held)."""

    def __init__(self, name, timeout, expire):
        self.name = _check_key(name, "lock name")
        self.timeout = _check_seconds(timeout, "timeout")
        self.expire = _check_seconds(expire, "expire")
        self._token = None

    def acquire(self):
        if self._token is not None:
            raise RuntimeError(f"the lock {self.name!r} is already held by this object")
        self._token = _call_store("lock", self.name, None, self.timeout, self.expire)
        return True

    def release(self):
        """True if the lock was still ours (False: it had expired meanwhile)."""
        token, self._token = self._token, None
        if token is None:
            raise RuntimeError(f"the lock {self.name!r} is not held")
        return _call_store("unlock", self.name, token)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
        return False


class SharedStore:
    """The app's store, shared by every interpreter of the app (docs/shared-store.md).

    Every operation is atomic with respect to every interpreter; values are copied in
    and out (None, bool, int, float, str, bytes, and lists and dicts of those)."""

    __module__ = "interpool"

    def get(self, key, default=None):
        value = _call_store("get", _check_key(key))
        return default if value is _MISSING else value

    def set(self, key, value, ttl=None):
        _check_key(key)
        _call_store("set", key, _encode_shared(value), None if ttl is None else _check_seconds(ttl, "ttl"))

    def delete(self, key):
        return _call_store("delete", _check_key(key))

    def incr(self, key, delta=1):
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"incr's delta must be an int, not {type(delta).__name__}")
        return _call_store("incr", _check_key(key), None, delta)

    def compare_and_set(self, key, expected, new):
        """Set `new` if the key holds `expected` (None: also if it is missing)."""
        _check_key(key)
        return _call_store("cas", key, _encode_shared(new), None, None if expected is None else _encode_shared(expected))

    def keys(self, prefix=""):
        return _call_store("keys", _check_key(prefix, "prefix"))

    def lock(self, name, timeout=5, expire=30):
        return SharedLock(name, timeout, expire)

    def __repr__(self):
        return "<interpool.shared>"


shared = SharedStore()


# --- the interpool module ------------------------------------------------------------

class RequestTimeout(KeyboardInterrupt):
    """Raised inside the app when its request runs past --timeout.

    A BaseException (through KeyboardInterrupt), so that a broad ``except Exception:`` in
    the app does not swallow it: the request is over, the client has had its 504, and
    the interpreter should return (running ``finally`` blocks and ``close()``) so that it
    can serve the next request instead of being replaced. A KeyboardInterrupt, because
    that is what a timeout raised before interpool.RequestTimeout existed: code that
    catches it keeps working. Both engines raise it (the native one from its watcher).
    """

    __module__ = "interpool"


def _install_interpool_module():
    """``import interpool`` in an app: a module made here, not a file on sys.path, so
    that it exists in every interpreter whatever its path (and in the snapshots)."""
    module = sys.modules.get("interpool")
    if module is None:
        module = types.ModuleType("interpool", "What the interpool server gives its apps.")
        sys.modules["interpool"] = module
    module.RequestTimeout = RequestTimeout
    module.SharedStoreUnavailable = SharedStoreUnavailable
    module.shared = shared
    return module


_install_interpool_module()


# --- boot -------------------------------------------------------------------------

def load_app(path, callable_name, app_dir, extra_paths, validate=False):
    """Import the app file and find its callable.

    With `validate` (interpool check), the callable is wrapped in wsgiref.validate, which
    asserts every rule of PEP 3333 on both sides of the call.
    Returns None on success, else [code, message, detail] for the boot report.
    """
    global APP_MODULE, APPLICATION
    sys.dont_write_bytecode = True
    _reseed_random()
    for entry in reversed([app_dir, *extra_paths]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    # --python-path entries are site directories (a virtualenv's site-packages): their
    # .pth files add directories too, as a venv's own interpreter reads them (pip's
    # editable installs, namespace packages), after the entries themselves.
    if extra_paths:
        import site
        for entry in extra_paths:
            site.addsitedir(entry)
    if PYODIDE:
        # Natively the working directory is the process's, shared by every app and the
        # server: it stays the server's, as under mod_wsgi.
        os.chdir(app_dir)
    name = _module_name(path)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as error:  # noqa: BLE001 - a boot failure of any kind is reported
        sys.modules.pop(name, None)
        first = traceback.format_exception_only(type(error), error)[-1].strip()
        return ["APP_BOOT_FAILED", f"{path}: failed to import: {first}", traceback.format_exc()]
    candidate = getattr(module, callable_name, None)
    if not callable(candidate):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", name) == name)
        hint = f"; callables it defines: {', '.join(found)}" if found else ""
        return ["APP_CALLABLE_MISSING", f"{path}: no callable \"{callable_name}\"{hint}", None]
    if validate:
        from wsgiref.validate import validator
        candidate = validator(candidate)
    APP_MODULE, APPLICATION = module, candidate
    return None


def configure(overlap, multiprocess):
    """Called by the engine after every boot (cold or from a snapshot, so never stale).

    `overlap`: embedded mode (--workers 0), where the worker starts a request while
    others are still running. Under Pyodide they then really overlap in this one
    interpreter (each waits suspended, JSPI, and the next one runs meanwhile), as
    threads share an interpreter under mod_wsgi: wsgi.multithread is True. The native
    engine runs each request to its end on the worker's thread, so they never overlap.
    `multiprocess`: another interpreter may run this app at the same time (--workers
    above 1, or --processes above 1), each with its own module state, as processes have.
    """
    global MULTITHREAD, MULTIPROCESS
    MULTITHREAD = bool(overlap) and PYODIDE
    MULTIPROCESS = bool(multiprocess)


def _module_name(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    return name if name and not name[0].isdigit() else f"app_{name}"


def after_restore(app_dir):
    """Redo what a memory snapshot cannot carry (the cwd lives in the JS file system),
    and give this interpreter its own random state: every interpreter restored from
    one snapshot would otherwise draw the same sequence."""
    os.chdir(app_dir)
    _reseed_random()


def _reseed_random():
    random = sys.modules.get("random")
    if random is not None:
        random.seed()


# --- time.sleep -------------------------------------------------------------------

# The original: in Pyodide it spins the CPU; natively it blocks the thread, GIL released.
_spin_sleep = time.sleep
# Natively, the thread that serves this interpreter's requests (the worker thread that
# created it, which imports this module). Pyodide has one thread (and restores this
# module from a snapshot, where an ident taken at import may not hold).
_SERVING_THREAD = _thread.get_ident()


# The longest sleep CPython's time.sleep takes (its clock counts nanoseconds in 64 bits).
_SLEEP_MAX = (2**63 - 1) / 1e9


def _sleep_length(value):
    """The argument checks of CPython's own time.sleep, with its messages: a float or an
    integer (__index__), not NaN, not negative, not past its clock."""
    if isinstance(value, float):
        if value != value:
            raise ValueError("Invalid value NaN (not a number)")
        seconds = value
    else:
        seconds = float(operator.index(value))
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    if seconds > _SLEEP_MAX:
        raise OverflowError("timestamp out of range for platform time_t")
    return seconds


def _sleep(seconds):
    """time.sleep that suspends this interpreter (JSPI; natively: blocks its thread)
    instead of spinning the CPU, and that a timeout's interrupt ends with
    interpool.RequestTimeout."""
    seconds = _sleep_length(seconds)
    # Natively, a thread the app started has no request: the host, and a timeout's
    # interrupt, belong to the request's thread, which may be sleeping too.
    app_thread = not PYODIDE and _thread.get_ident() != _SERVING_THREAD
    host = _current_host
    if host is not None and not app_thread and can_run_sync():
        if run_sync(host.sleep(seconds)):
            raise RequestTimeout("the request ran past --timeout")
        return
    # At import time, where the stack cannot be suspended, or in a thread the app started:
    # sleep in short slices. Between them the interrupt buffer is checked (the request's
    # thread), or the SystemExit that stops an app's thread when its interpreter ends
    # arrives (native/src/interpreter.cc asks again every 0.1 s).
    slice_seconds = 0.1 if app_thread else 0.02
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _spin_sleep(min(left, slice_seconds))


_sleep.__doc__ = time.sleep.__doc__
time.sleep = _sleep


# --- no running event loop in a request (PYODIDE) ---------------------------------

# PYODIDE: Pyodide's event loop (WebLoop) registers itself as the running loop of every
# call and says it is always running, so inside a request asyncio reported a running
# loop, as in an async view, and Django's ORM refused every query with
# SynchronousOnlyOperation. A WSGI request is synchronous, as under gunicorn: while the
# app runs it is unregistered (get_running_loop() raises RuntimeError), and a WebLoop
# says it is running only where it is the running loop (Django 3.2 asks
# get_event_loop().is_running()). The sockets (python-network.ts) and time.sleep do not
# need it: they wait through JSPI, not through the loop.
if PYODIDE:
    import asyncio
    from pyodide.webloop import WebLoop

    def _webloop_is_running(self):
        """Whether this loop is the running loop of the current call (inside a WSGI
        request it is not: the request is synchronous)."""
        return asyncio._get_running_loop() is self

    WebLoop.is_running = _webloop_is_running

    # asyncio.run() in a request runs the coroutine to its end on the WebLoop, as it did
    # while the loop was registered (Pyodide's asyncio.run waits through JSPI), instead of
    # making a new WebLoop, which would replace the policy's and stay registered.
    _pyodide_asyncio_run = asyncio.run

    def _asyncio_run(main, *, debug=None, loop_factory=None):
        loop = _request_loop
        if loop is None or loop_factory is not None or asyncio._get_running_loop() is not None:
            return _pyodide_asyncio_run(main, debug=debug, loop_factory=loop_factory)
        asyncio._set_running_loop(loop)
        try:
            return _pyodide_asyncio_run(main, debug=debug)
        finally:
            asyncio._set_running_loop(None)

    _asyncio_run.__doc__ = asyncio.run.__doc__
    asyncio.run = _asyncio_run

# The loop unregistered while a request runs (PYODIDE), for asyncio.run().
_request_loop = None


def _leave_event_loop():
    """Unregister the running loop for a synchronous request; returns it for
    _restore_event_loop."""
    global _request_loop
    if not PYODIDE:
        return None
    loop = asyncio._get_running_loop()
    if loop is not None:
        _request_loop = loop
    asyncio._set_running_loop(None)
    return loop


def _restore_event_loop(loop):
    if loop is not None:
        asyncio._set_running_loop(loop)


# --- sys.setrecursionlimit (PYODIDE) ----------------------------------------------

# PYODIDE: each Python call also takes about 160 bytes of V8's stack for this request
# (JSPI, 984 KiB), which ran out between 5,000 and 7,000 frames: a fatal error of the
# runtime that ends the interpreter, where the app should see RecursionError. So a
# higher limit is lowered to this one, which leaves room for C frames as well.
MAX_RECURSION_LIMIT = 3000

_set_recursion_limit = sys.setrecursionlimit
_recursion_capped = False


def _setrecursionlimit(limit):
    global _recursion_capped
    if isinstance(limit, int) and limit > MAX_RECURSION_LIMIT:
        if not _recursion_capped:
            _recursion_capped = True
            print(f"sys.setrecursionlimit({limit}) is lowered to {MAX_RECURSION_LIMIT}: deeper recursion "
                  "would overflow this interpreter's stack (RecursionError is raised instead)", file=sys.stderr)
        limit = MAX_RECURSION_LIMIT
    _set_recursion_limit(limit)


if PYODIDE:
    _setrecursionlimit.__doc__ = sys.setrecursionlimit.__doc__
    sys.setrecursionlimit = _setrecursionlimit


def _raise_timeout(signum, frame):
    raise RequestTimeout("the request ran past --timeout")


if PYODIDE:
    # A timeout stores SIGINT in Pyodide's interrupt buffer; CPython then runs the
    # Python-level handler of SIGINT at its next check (between bytecodes, or in a
    # socket call that returned EINTR). Raising RequestTimeout there, instead of the
    # default KeyboardInterrupt, lets an app tell a timeout from other errors.
    # (A subinterpreter of the native engine may not set signal handlers.)
    import signal
    signal.signal(signal.SIGINT, _raise_timeout)


# --- the network --------------------------------------------------------------

NETWORK_REFUSED = (
    "outbound network is not available under --python 3.12 (Pyodide 0.27 has no socket "
    "layer); serve this app with --python 3.14 (the default, or \"python\": \"3.14\" in "
    "the config file)"
)


class NetworkUnavailable(OSError):
    """A socket in an interpreter that has no socket layer (--python 3.12), or a connect
    where the interpreter cannot wait (outside a request)."""


def refuse_network():
    """Make creating an internet socket fail at once with NetworkUnavailable.

    Called by python-network.ts when the runtime cannot give Python real sockets.
    Without this, Emscripten's WebSocket emulation takes the socket and fails later with
    an unrelated errno (ENOPROTOOPT from setsockopt) or leaves a connect waiting. An
    OSError, so that clients report it as a connection error (redis-py's
    ConnectionError, urllib's URLError) with this message inside.
    """
    import errno
    import socket

    if getattr(socket.socket.__init__, "_interpool_refused", False):
        return
    init = socket.socket.__init__

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
            raise NetworkUnavailable(errno.ENETUNREACH, NETWORK_REFUSED)
        init(self, family, type, proto, fileno)

    __init__._interpool_refused = True
    socket.socket.__init__ = __init__


CONNECT_OUTSIDE_REQUEST = (
    "a socket cannot connect outside a request (here: at import time), because only a "
    "request can wait on the network; connect at the first request instead (clients such "
    "as redis-py already do: they connect at their first command)"
)


def guard_connects():
    """Make a connect that cannot wait (at import time) fail with a message that says
    why, instead of the runtime's "Argument list too long". Called by
    python-network.ts when the runtime has real sockets."""
    import errno
    import socket

    if getattr(socket.socket.connect, "_interpool_guarded", False):
        return
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _check():
        if not can_run_sync():
            raise NetworkUnavailable(errno.EWOULDBLOCK, CONNECT_OUTSIDE_REQUEST)

    def guarded_connect(self, address):
        _check()
        return connect(self, address)

    def guarded_connect_ex(self, address):
        _check()
        return connect_ex(self, address)

    guarded_connect._interpool_guarded = True
    guarded_connect.__doc__, guarded_connect_ex.__doc__ = connect.__doc__, connect_ex.__doc__
    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex


# --- wsgi.input, wsgi.errors, wsgi.file_wrapper -----------------------------------

class InputStream:
    """A readable binary stream over the buffered request body."""

    __slots__ = ("_body",)

    def __init__(self, data):
        self._body = io.BytesIO(data)

    def read(self, size=-1):
        return self._body.read(-1 if size is None else size)

    def readline(self, size=-1):
        return self._body.readline(-1 if size is None else size)

    def readlines(self, hint=-1):
        return self._body.readlines(-1 if hint is None else hint)

    def __iter__(self):
        return iter(self._body)


class ErrorStream:
    """A text stream whose complete lines go to the server log, tagged with app and worker."""

    def __init__(self, host):
        self._host = host
        self._pending = ""

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._host.log(line)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self._pending:
            self._host.log(self._pending)
            self._pending = ""


class FileWrapper:
    """wsgi.file_wrapper: the body of a file-like object, in blocks; close() closes it.

    A regular file with a working ``fileno()`` is read from its descriptor at its
    current position in blocks of at least FD_BLOCK bytes (``os.pread``: no copy through
    the file object's buffer, and a small ``blksize`` does not turn a large file into
    thousands of messages to the main thread). There is no sendfile here: Pyodide has no
    socket for the response, and the native engine hands bytes to Node, so the bytes are
    read once into a buffer and posted. Anything else is read with its ``read(blksize)``.
    """

    FD_BLOCK = 1 << 20

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        self._closed = False
        self._fd, self._position = self._open_descriptor(filelike)

    @staticmethod
    def _open_descriptor(filelike):
        """(fd, position) when the file can be read through its descriptor, else (None, 0)."""
        if not hasattr(os, "pread"):
            return None, 0
        try:
            fd = filelike.fileno()
            if not isinstance(fd, int) or not stat.S_ISREG(os.fstat(fd).st_mode):
                return None, 0
            return fd, filelike.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        if self._fd is not None:
            data = os.pread(self._fd, max(self.blksize, self.FD_BLOCK), self._position)
            self._position += len(data)
        else:
            data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self):
        """PEP 3333: the server calls this (it is the iterable's close()); it closes the file."""
        if self._closed:
            return
        self._closed = True
        if self._fd is not None:
            # Leave the file object where a read() would have left it.
            try:
                self.filelike.seek(self._position)
            except (AttributeError, OSError, ValueError):
                pass
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


# --- one request ------------------------------------------------------------------

class _Response:
    """start_response and write for one request; headers leave with the first body bytes."""

    __slots__ = ("host", "status", "headers", "headers_sent", "ended")

    def __init__(self, host):
        self.host = host
        self.status = None
        self.headers = None
        self.headers_sent = False
        # Set once the request is over: the host then serves another request, and a
        # start_response or write the app kept would reach that one's client.
        self.ended = False

    def _check_live(self, what):
        if self.ended:
            raise RuntimeError(f"{what} of a request that has ended: start_response and write belong to their own request")

    def start_response(self, status, headers, exc_info=None):
        """PEP 3333's start_response. Every argument is checked here, before anything is
        recorded, so the error is raised at the app's own line, and an app that catches
        it can call start_response again and still answer."""
        self._check_live("start_response()")
        if exc_info is not None:
            try:
                if not isinstance(exc_info, tuple) or len(exc_info) != 3:
                    raise TypeError(f"exc_info must be None or the 3-tuple sys.exc_info() returns, got {_show(exc_info)}")
                # PEP 3333: once headers are on the wire the error can only abort the response.
                if self.headers_sent:
                    if exc_info[1] is None:
                        raise RuntimeError("start_response was called with exc_info after the headers were sent, but exc_info holds no exception")
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError(f"start_response was called a second time without exc_info (the status is already {self.status!r}); "
                               "pass sys.exc_info() to replace the status and headers before the body starts")
        status = check_status(status)
        headers = check_headers(headers)
        self.status, self.headers = status, headers
        self.host.setHeaders(status, to_js(headers))
        return self.write

    def write(self, data):
        self._check_live("write()")
        self.send(_check_chunk(data, self))

    def send(self, data):
        if data:
            self.headers_sent = True
            self.host.sendChunk(to_js(data))


# --- what start_response checks ---------------------------------------------------
# The same rules as server/response-rules.ts (the main thread's last line of defence)
# and runtime/start-response-checks.ts (JS apps); docs/python.md has them as a table.

_STATUS = re.compile(r"[0-9]{3} ")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters except horizontal tab (C0 and DEL); CR and LF have their own message.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")
# A header value with nothing to object to: tab and printable latin-1 only (printable
# ASCII is asked of str first, quicker still). Anything else goes through the checks
# that name the problem.
_PLAIN_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
# Statuses and header names (with their lower case) already found valid: an app answers
# with the same few, so their checks are paid once per value rather than per request
# (they were half of what this module spends on a small response). Bounded, so an app
# that makes up reason phrases or header names does not grow them.
_VALID_STATUSES = set()
_VALID_NAMES = {}
# Whole (name, value) pairs found valid, for the headers most responses repeat as they
# are (Content-Type, a Content-Length): the checks of a value were the rest of that half.
_VALID_PAIRS = set()
_VALID_MAX = 256
HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade",
))


def check_status(status):
    """The status as PEP 3333 defines it: a native str, "NNN reason", latin-1, one line."""
    if type(status) is str and status in _VALID_STATUSES:
        return status
    if type(status) is not str:
        hint = f"; decode it: {status.decode('latin-1')!r}" if isinstance(status, bytes) else ""
        raise TypeError(f"status must be a native str like '200 OK', got {_show(status)}{hint}")
    if "\r" in status or "\n" in status:
        raise ValueError(f"status {_clip(status)} contains CR or LF (header injection)")
    if _CONTROL.search(status):
        raise ValueError(f"status {_clip(status)} contains a control character")
    _require_latin1(status, "status")
    if not _STATUS.match(status):
        raise ValueError(f"status {_clip(status)} must be a three-digit code, a space and a reason phrase, e.g. '200 OK'")
    if not 200 <= int(status[:3]) <= 599:
        raise ValueError(f"status {_clip(status)}: an app's status code must be 200-599 (1xx are the server's to send)")
    if len(_VALID_STATUSES) < _VALID_MAX:
        _VALID_STATUSES.add(status)
    return status


def check_headers(headers):
    """The headers as PEP 3333 defines them: a list of (name, value) tuples of native
    str, each a valid HTTP field, none of them hop-by-hop. Returns a copy, so that the
    app changing its list afterwards changes nothing."""
    if type(headers) is not list:
        raise TypeError(f"headers must be a list of (name, value) tuples, got {_show(headers)}")
    checked = []
    for index, pair in enumerate(headers):
        # Exact types first: a str subclass equal to a valid name would match in the set.
        if type(pair) is tuple and len(pair) == 2:
            name, value = pair
            if type(name) is str and type(value) is str and pair in _VALID_PAIRS:
                checked.append(pair)
                continue
        if not isinstance(pair, tuple):
            raise TypeError(f"headers[{index}] must be a (name, value) tuple, got {_show(pair)}")
        if len(pair) != 2:
            raise ValueError(f"headers[{index}] must be a (name, value) tuple of 2 items, got {len(pair)}: {_clip(pair)}")
        name, value = pair
        if type(name) is not str:
            raise TypeError(f"header name must be a native str, got {_show(name)}")
        if type(value) is not str:
            raise TypeError(f"value of header {_clip(name)} must be a native str, got {_show(value)}")
        lower = _VALID_NAMES.get(name)
        if lower is None:
            _require_latin1(name, "header name")
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {_clip(name)} is not a valid token "
                                 "(letters, digits and !#$%&'*+-.^_`|~; no spaces, colons or control characters)")
            lower = name.lower()
            if lower in HOP_BY_HOP:
                raise ValueError(f"hop-by-hop header {name!r} may not be set by an app (PEP 3333): the server runs the connection")
            if len(_VALID_NAMES) < _VALID_MAX:
                _VALID_NAMES[name] = lower
        if not (value.isascii() and value.isprintable()) and not _PLAIN_VALUE.fullmatch(value):
            if "\r" in value or "\n" in value:
                raise ValueError(f"value of header {name!r} contains CR or LF (header injection): {_clip(value)}")
            if _CONTROL.search(value):
                raise ValueError(f"value of header {name!r} contains a control character: {_clip(value)}")
            _require_latin1(value, f"value of header {name!r}")
        if lower == "content-length" and not (value.isascii() and value.isdigit()) and not _DIGITS.fullmatch(value.strip(" \t")):
            raise ValueError(f"Content-Length must be a non-negative integer, got {_clip(value)}")
        if type(pair) is tuple and len(_VALID_PAIRS) < _VALID_MAX:
            _VALID_PAIRS.add(pair)
        checked.append((name, value))
    return checked


def _require_latin1(text, what):
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as error:
        # The codec's own message names the character and its position; the reason says whose.
        raise UnicodeEncodeError("latin-1", text, error.start, error.end,
                                 f"{what} {_clip(text)} is not latin-1 (PEP 3333: status and headers are ISO-8859-1; "
                                 "encode other text, e.g. RFC 8187 for filenames)") from None


def _clip(value):
    shown = repr(value)
    return shown if len(shown) <= 80 else f"{shown[:77]}..."


def _show(value):
    """A wrong value as an error message shows it: its type, then the value itself."""
    return f"{type(value).__name__} {_clip(value)}"


def _check_chunk(chunk, response):
    if response.status is None:
        raise BadResponse("the app produced body data before calling start_response")
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise BadChunkType(f"body chunks must be bytes, got {_describe(chunk)}")


def _describe(value):
    if isinstance(value, (str, bytes)):
        return f"{type(value).__name__} {value[:40]!r}"
    return f"a {type(value).__name__}"


def build_environ(cgi, url_scheme, body, host):
    # PYODIDE: the CGI dict and the body arrive as JS proxies; natively as dict and bytes,
    # the dict made for this request by the addon: it becomes the environ as it is.
    environ = cgi.to_py() if PYODIDE else cgi
    if PYODIDE:
        body = body.to_bytes()
    environ["wsgi.version"] = (1, 0)
    environ["wsgi.url_scheme"] = url_scheme
    environ["wsgi.input"] = InputStream(body)
    environ["wsgi.errors"] = ErrorStream(host)
    environ["wsgi.multithread"] = MULTITHREAD
    environ["wsgi.multiprocess"] = MULTIPROCESS
    environ["wsgi.run_once"] = False
    # The body was read whole by the main thread: read() without a size ends at its end.
    environ["wsgi.input_terminated"] = True
    environ["wsgi.file_wrapper"] = FileWrapper
    environ["interpool.shared"] = shared
    return environ


def handle(cgi, url_scheme, body, host):
    """Run one request; reports its outcome through host.finishWhole / finishStream /
    fail, never raises, and always calls the iterable's close()."""
    global _current_host
    if PYODIDE:
        # PYODIDE: so that deep recursion in C raises RecursionError here instead of
        # overflowing the runtime's stack (python.ts, boundCStack).
        host.boundStack()
    _current_host = host
    environ = build_environ(cgi, url_scheme, body, host)
    response = _Response(host)
    result = None
    loop = _leave_event_loop()
    try:
        result = APPLICATION(environ, response.start_response)
        if type(result) is list:
            whole = b"".join([_check_chunk(chunk, response) for chunk in result])
            if response.status is None:
                raise BadResponse("the app returned without calling start_response")
            host.finishWhole(to_js(whole))
        else:
            _stream(result, response, host)
    except BaseException as error:  # noqa: BLE001 - KeyboardInterrupt and SystemExit included
        host.fail(*_to_error_data(error))
    finally:
        _close(result, environ, host)
        response.ended = True
        _current_host = None
        _restore_event_loop(loop)


def _stream(result, response, host):
    if isinstance(result, (str, bytes)):
        raise BadResponse(f"the app returned a single {type(result).__name__}; return an iterable of bytes, e.g. [body]")
    try:
        chunks = iter(result)
    except TypeError:
        raise BadResponse(f"the app must return an iterable of bytes, got {_describe(result)}") from None
    for chunk in chunks:
        response.send(_check_chunk(chunk, response))
        if host.cancelled():
            break
    if response.status is None:
        raise BadResponse("the app returned without calling start_response")
    host.finishStream()


def _close(result, environ, host):
    try:
        environ["wsgi.errors"].flush()
        close = getattr(result, "close", None)
        if close is not None:
            close()
    except BaseException:  # noqa: BLE001 - a failing close() is logged, not fatal
        for line in ("close() raised: " + traceback.format_exc()).rstrip("\n").split("\n"):
            host.log(line)


def _to_error_data(error):
    if isinstance(error, RequestTimeout):
        # The main thread has answered 504 and logged it: a traceback would only repeat
        # that the app was somewhere when its time ran out.
        return "APP_RAISED", "interpool.RequestTimeout: the request ran past --timeout", None
    detail = _format_app_traceback(error)
    if isinstance(error, BadResponse):
        return "APP_BAD_RESPONSE", str(error), detail
    if isinstance(error, KeyboardInterrupt):
        return "APP_RAISED", "KeyboardInterrupt: the request was interrupted", detail
    if isinstance(error, SystemExit):
        # As in a gunicorn worker process: sys.exit() ends the interpreter, which is
        # replaced; the client gets 502 as for any interpreter that dies mid-request.
        # (The native engine's os._exit raises a SystemExit that names itself: native.ts.)
        call = getattr(error, "interpool_call", "sys.exit")
        return "WORKER_DIED", f"the Python app called {call}({error.code!r}): its interpreter exits", detail
    summary = traceback.format_exception_only(type(error), error)[-1].strip()
    return "APP_RAISED", summary, detail


def _format_app_traceback(error):
    """The traceback without this module's frames: it then starts in the app and ends at
    the app's line that failed (the start_response call, for a rejected status), as a
    traceback through mod_wsgi's C start_response does."""
    report = traceback.TracebackException.from_exception(error)
    seen = set()
    pending = [report]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        kept = [frame for frame in current.stack if frame.filename != __file__]
        if kept:
            current.stack = traceback.StackSummary.from_list(kept)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        pending.extend(getattr(current, "exceptions", None) or ())
    return "".join(report.format())
