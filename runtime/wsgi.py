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
checks the *types* of what the app hands back (native ``str`` status and headers,
``bytes`` body chunks) and always calls the iterable's ``close()``. The rules about
the *contents* of the status and headers (CR/LF, three digits, hop-by-hop, latin-1)
are checked on the main thread, once for every kind.

Nothing here keeps a reference to a JavaScript object between requests, so a memory
snapshot taken after :func:`load_app` holds no JavaScript state.
"""

import importlib.util
import io
import os
import sys
import time
import traceback

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

# The JS host of the request being served (see python.ts `RequestHost`), None between
# requests. Only time.sleep() reads it, to suspend instead of spinning.
_current_host = None


class BadResponse(Exception):
    """Something the app handed back that the WSGI contract does not allow."""


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

_spin_sleep = time.sleep


def _sleep(seconds):
    """time.sleep that suspends this interpreter (JSPI; natively: blocks its thread)
    instead of spinning the CPU, and that a timeout's interrupt ends with
    KeyboardInterrupt."""
    seconds = float(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    host = _current_host
    if host is not None and can_run_sync():
        if run_sync(host.sleep(seconds)):
            raise KeyboardInterrupt
        return
    # At import time, or where the stack cannot be suspended: spin in short slices, so
    # that the interrupt buffer is still checked between them.
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _spin_sleep(min(left, 0.02))


_sleep.__doc__ = time.sleep.__doc__
time.sleep = _sleep


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
    """wsgi.file_wrapper: iterate a file-like object in blocks; close() closes it."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


# --- one request ------------------------------------------------------------------

class _Response:
    """start_response and write for one request; headers leave with the first body bytes."""

    __slots__ = ("host", "status", "headers", "headers_sent")

    def __init__(self, host):
        self.host = host
        self.status = None
        self.headers = None
        self.headers_sent = False

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                # PEP 3333: once headers are on the wire the error can only abort the response.
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise BadResponse("start_response was called a second time without exc_info")
        self.status = _check_status(status)
        self.headers = _check_headers(headers)
        self.host.setHeaders(self.status, to_js(self.headers))
        return self.write

    def write(self, data):
        self.send(_check_chunk(data, self))

    def send(self, data):
        if data:
            self.headers_sent = True
            self.host.sendChunk(to_js(data))


def _check_status(status):
    if type(status) is not str:
        raise BadResponse(f"status must be a str, got {_describe(status)}")
    return status


def _check_headers(headers):
    if not isinstance(headers, list):
        raise BadResponse(f"headers must be a list of (name, value) tuples, got {_describe(headers)}")
    checked = []
    for pair in headers:
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or type(pair[0]) is not str or type(pair[1]) is not str):
            raise BadResponse(f"each header must be a (name, value) tuple of str, got {_describe(pair)}")
        checked.append((pair[0], pair[1]))
    return checked


def _check_chunk(chunk, response):
    if response.status is None:
        raise BadResponse("the app produced body data before calling start_response")
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise BadResponse(f"body chunks must be bytes, got {_describe(chunk)}")


def _describe(value):
    if isinstance(value, (str, bytes)):
        return f"{type(value).__name__} {value[:40]!r}"
    return f"a {type(value).__name__}"


def build_environ(cgi, url_scheme, body, host):
    # PYODIDE: the CGI dict and the body arrive as JS proxies; natively as dict and bytes.
    environ = cgi.to_py() if PYODIDE else dict(cgi)
    if PYODIDE:
        body = body.to_bytes()
    environ["wsgi.version"] = (1, 0)
    environ["wsgi.url_scheme"] = url_scheme
    environ["wsgi.input"] = InputStream(body)
    environ["wsgi.errors"] = ErrorStream(host)
    environ["wsgi.multithread"] = False
    environ["wsgi.multiprocess"] = True
    environ["wsgi.run_once"] = False
    environ["wsgi.file_wrapper"] = FileWrapper
    return environ


def handle(cgi, url_scheme, body, host):
    """Run one request; reports its outcome through host.finishWhole / finishStream /
    fail, never raises, and always calls the iterable's close()."""
    global _current_host
    _current_host = host
    environ = build_environ(cgi, url_scheme, body, host)
    response = _Response(host)
    result = None
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
        _current_host = None


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
    detail = traceback.format_exc()
    if isinstance(error, BadResponse):
        return "APP_BAD_RESPONSE", str(error), detail
    if isinstance(error, KeyboardInterrupt):
        return "APP_RAISED", "KeyboardInterrupt: the request was interrupted (timeout)", detail
    summary = traceback.format_exception_only(type(error), error)[-1].strip()
    return "APP_RAISED", summary, detail
