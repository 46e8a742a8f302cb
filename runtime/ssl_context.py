"""ssl.SSLContext and ssl.SSLSocket on Node's TLS, for Pyodide 314 (PYODIDE only).

Pyodide's ``ssl`` is a stub: its contexts kept their settings and used none of them
(no certificate check, no host-name check, no SNI), and its sockets lost their timeout.
This module makes the stub's classes do what CPython's do, as a client: the context
keeps its trust store (read from the app's files, as CPython reads them), verify_mode,
check_hostname, client certificate, TLS versions, ciphers and ALPN protocols, and a
socket's handshake is done by Node's TLS (runtime/interpreters/python-tls.ts) with
them. A refused peer raises CPython's exceptions: ssl.SSLCertVerificationError with
verify_code and verify_message, ssl.SSLError, ssl.SSLEOFError, ConnectionResetError,
TimeoutError. Server-side TLS and memory BIOs (asyncio's TLS) are not provided.

Loaded by python-tls.ts as the module ``interpool_ssl_context``; the classes are changed
where they are (so ``from ssl import SSLContext`` done earlier gets the same), when ssl
is first imported. It keeps no JavaScript reference, so a memory snapshot may hold it.
"""

import base64
import errno
import json
import os
import re
import sys

_ENTRY = "interpoolTls"  # python-tls.ts TLS_ENTRY
# The system's trust store (Debian's): python-tls.ts makes it visible read-only.
_DEFAULT_CAFILE = "/etc/ssl/certs/ca-certificates.crt"
_DEFAULT_CAPATH = "/etc/ssl/certs"

_PEM = re.compile(
    r"-----BEGIN (TRUSTED )?CERTIFICATE-----\s*(.*?)\s*-----END (?:TRUSTED )?CERTIFICATE-----", re.S
)
_HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.\d+$")

NOT_AVAILABLE = (
    "the module 'ssl' is not available under --python 3.12 (Pyodide 0.27 has no socket "
    "layer, so no TLS either); serve this app with --python 3.14 (the default, or "
    "\"python\": \"3.14\" in the config file)"
)


def _tls():
    import js
    return getattr(js, _ENTRY)


# --- installing --------------------------------------------------------------------

class _PatchOnImport:
    """A meta path finder that patches the ssl module once it is first imported."""

    _busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "ssl" or self._busy:
            return None
        import importlib.util

        self._busy = True
        try:
            spec = importlib.util.find_spec("ssl")
        finally:
            self._busy = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader:
    """The ssl module's own loader, which then patches it (the rest is the loader's)."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _patch(module)


def install():
    """Give ssl Node's TLS: now if it is imported, else at its import (Pyodide 314)."""
    if "ssl" in sys.modules:
        _patch(sys.modules["ssl"])
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


class _RefuseSsl:
    """A meta path finder that makes importing ssl fail with NOT_AVAILABLE."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ("ssl", "_ssl"):
            raise ModuleNotFoundError(NOT_AVAILABLE, name=fullname)
        return None


def refuse():
    """Without a socket layer (--python 3.12): importing ssl names the setting to change."""
    if not any(isinstance(finder, _RefuseSsl) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RefuseSsl())


# --- certificates --------------------------------------------------------------------

def _der_length(der, start=0):
    """The length of the DER element at start (header included), or 0 if it is not one."""
    if len(der) < start + 2:
        return 0
    first = der[start + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(der) < start + 2 + count:
        return 0
    return 2 + count + int.from_bytes(der[start + 2:start + 2 + count], "big")


def _split_der(data):
    """Concatenated DER certificates → a list of them."""
    data, found, at = bytes(data), [], 0
    while at < len(data):
        length = _der_length(data, at)
        if data[at] != 0x30 or length == 0 or at + length > len(data):
            raise _ssl_error("NOT_ENOUGH_DATA", "[ASN1: NOT_ENOUGH_DATA] not enough data", library="ASN1")
        found.append(data[at:at + length])
        at += length
    return found


def _pem_to_der(text):
    """The certificates in PEM text, as DER (a TRUSTED CERTIFICATE's trust data dropped)."""
    found = []
    for match in _PEM.finditer(text):
        try:
            der = base64.b64decode("".join(match.group(2).split()), validate=True)
        except ValueError:
            raise _ssl_error("BAD_BASE64_DECODE", "[PEM: BAD_BASE64_DECODE] bad base64 decode", library="PEM") from None
        length = _der_length(der)
        if not der or der[0] != 0x30 or length == 0 or length > len(der):
            raise _ssl_error("NOT_ENOUGH_DATA", "[ASN1: NOT_ENOUGH_DATA] not enough data", library="ASN1")
        found.append(der[:length])
    return found


def _der_to_pem(der):
    text = base64.standard_b64encode(der).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


# Files read for trust stores, by path: (mtime, size) and their certificates, so that a
# context made per connection (urllib's default) does not read the bundle every time.
_file_cache = {}


def _read_pem_file(path):
    stat = os.stat(path)
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _file_cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    with open(path, "rb") as file:
        text = file.read().decode("latin-1")
    ders = tuple(_pem_to_der(text))
    _file_cache[path] = (key, ders)
    return ders


def _read_hashed_dir(path):
    """The certificates of an OpenSSL hashed directory (c_rehash names: 1a2b3c4d.0)."""
    found = []
    for name in sorted(os.listdir(path)):
        if _HASHED_NAME.match(name):
            try:
                found.extend(_read_pem_file(os.path.join(path, name)))
            except (OSError, ValueError):
                continue  # OpenSSL skips what it cannot read as well
    return found


def _no_certificate():
    return _ssl_error("NO_CERTIFICATE_OR_CRL_FOUND", "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found", library="X509")


def _ssl_error(reason, message, library="SSL", cls=None):
    import ssl

    error = (cls or ssl.SSLError)(1, message)
    error.reason, error.library = reason, library
    return error


def _describe(der):
    """CPython's certificate dict for DER bytes."""
    from pyodide.ffi import to_js

    described = json.loads(_tls().describe(to_js(bytes(der))))

    def name(rdns):
        return tuple(tuple(tuple(pair) for pair in rdn) for rdn in rdns)

    described["subject"] = name(described["subject"])
    described["issuer"] = name(described["issuer"])
    for key in ("subjectAltName",):
        if key in described:
            described[key] = tuple(tuple(pair) for pair in described[key])
    for key in ("OCSP", "caIssuers"):
        if key in described:
            described[key] = tuple(described[key])
    return described


# --- the context ---------------------------------------------------------------------

def _state(context):
    """The context's trust store and client certificate (made at first use: a context
    from before this module was installed has none yet)."""
    state = context.__dict__.get("_interpool_tls")
    if state is None:
        state = context.__dict__["_interpool_tls"] = {
            "cas": {},        # DER -> True, in load order (cafile, cadata, the default file)
            "capath": {},     # the same, from hashed directories (not in get_ca_certs)
            "loaded": False,  # whether any trust was loaded (else no CA is trusted)
            "bundle": None,   # the PEM text of both, made at the first handshake
            "cert": None, "key": None, "passphrase": None,
            "ciphers": None, "alpn": None,
        }
    return state


def _add_cas(context, ders, hashed=False):
    state = _state(context)
    target = state["capath"] if hashed else state["cas"]
    for der in ders:
        target[bytes(der)] = True
    state["loaded"] = True
    state["bundle"] = None


def load_verify_locations(self, cafile=None, capath=None, cadata=None):
    if cafile is None and capath is None and cadata is None:
        raise TypeError("cafile, capath and cadata cannot be all omitted")
    if cafile is not None:
        if not isinstance(cafile, (str, bytes, os.PathLike)):
            raise TypeError("cafile should be a valid filesystem path")
        ders = _read_pem_file(os.fsdecode(cafile))
        if not ders:
            raise _no_certificate()
        _add_cas(self, ders)
    if capath is not None:
        if not isinstance(capath, (str, bytes, os.PathLike)):
            raise TypeError("capath should be a valid filesystem path")
        path = os.fsdecode(capath)
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        _add_cas(self, _read_hashed_dir(path), hashed=True)
    if cadata is not None:
        if isinstance(cadata, str):
            ders = _pem_to_der(cadata)
        else:
            try:
                ders = _split_der(memoryview(cadata))
            except TypeError:
                raise TypeError("cadata should be an ASCII string or a bytes-like object") from None
        if not ders:
            raise _no_certificate()
        _add_cas(self, ders)


def set_default_verify_paths(self):
    """OpenSSL's default trust store: SSL_CERT_FILE, else the system's CA bundle; a
    hashed directory (SSL_CERT_DIR, else the system's) where there is no such file;
    Node's own bundle (Mozilla's) where the system has neither."""
    cafile = os.environ.get("SSL_CERT_FILE", _DEFAULT_CAFILE)
    capath = os.environ.get("SSL_CERT_DIR", _DEFAULT_CAPATH)
    if os.path.isfile(cafile):
        _add_cas(self, _read_pem_file(cafile))
    elif capath and any(os.path.isdir(path) for path in capath.split(":")):
        for path in capath.split(":"):
            if os.path.isdir(path):
                _add_cas(self, _read_hashed_dir(path), hashed=True)
    else:
        _add_cas(self, _pem_to_der(_tls().bundledRoots()))


def load_default_certs(self, purpose=None):
    import ssl

    if purpose is None:
        purpose = ssl.Purpose.SERVER_AUTH
    if not isinstance(purpose, ssl._ASN1Object):
        raise TypeError(purpose)
    self.set_default_verify_paths()


def _read_text(path):
    with open(os.fsdecode(path), "rb") as file:
        return file.read().decode("latin-1")


def load_cert_chain(self, certfile, keyfile=None, password=None):
    if not isinstance(certfile, (str, bytes, os.PathLike)):
        raise TypeError("certfile should be a valid filesystem path")
    if keyfile is not None and not isinstance(keyfile, (str, bytes, os.PathLike)):
        raise TypeError("keyfile should be a valid filesystem path")
    cert = _read_text(certfile)
    key = _read_text(keyfile) if keyfile is not None else cert
    if callable(password):
        password = password()
    if isinstance(password, (bytes, bytearray)):
        password = bytes(password).decode("latin-1")
    elif password is not None and not isinstance(password, str):
        raise TypeError("password should be a string or callable")
    problem = _tls().checkKeyPair(cert, key, password)
    if problem == "KEY_VALUES_MISMATCH":
        raise _ssl_error(problem, "[X509: KEY_VALUES_MISMATCH] key values mismatch", library="X509")
    if problem == "BAD_DECRYPT":
        raise _ssl_error(problem, "[EVP: BAD_DECRYPT] bad decrypt", library="EVP")
    if problem:
        raise _ssl_error(problem, "[SSL] PEM lib")
    state = _state(self)
    state.update(cert=cert, key=key, passphrase=password)


def get_ca_certs(self, binary_form=False):
    ders = list(_state(self)["cas"])
    return ders if binary_form else [_describe(der) for der in ders]


def cert_store_stats(self):
    cas = len(_state(self)["cas"])
    return {"x509": cas, "crl": 0, "x509_ca": cas}


def set_ciphers(self, ciphers):
    import ssl

    if not isinstance(ciphers, str):
        raise TypeError("ciphers must be a string")
    if not _tls().checkCiphers(ciphers):
        raise ssl.SSLError("No cipher can be selected.")
    _state(self)["ciphers"] = ciphers


def set_alpn_protocols(self, alpn_protocols):
    protocols = []
    for protocol in alpn_protocols:
        encoded = protocol.encode("ascii") if isinstance(protocol, str) else bytes(protocol)
        if not 0 < len(encoded) <= 255:
            raise ValueError("ALPN protocols must be 1 to 255 in length")
        protocols.append(encoded.decode("ascii"))
    _state(self)["alpn"] = protocols


_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def _handshake_options(context, hostname, timeout):
    import ssl

    state = _state(context)
    if state["bundle"] is None:
        state["bundle"] = "".join(_der_to_pem(der) for der in (*state["cas"], *state["capath"]))
    return {
        "hostname": hostname,
        "verify": context.verify_mode != ssl.CERT_NONE,
        "checkHostname": bool(context.check_hostname),
        "cert": state["cert"], "key": state["key"], "passphrase": state["passphrase"],
        "ciphers": state["ciphers"],
        "minVersion": _VERSIONS.get(int(context.minimum_version)),
        "maxVersion": _VERSIONS.get(int(context.maximum_version)),
        "alpn": state["alpn"],
        "timeout": timeout,
    }, (state["bundle"] if state["loaded"] else None)


# --- the socket ----------------------------------------------------------------------

def _not_connected():
    return OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))


@classmethod
def _create(cls, sock, server_side=False, do_handshake_on_connect=True,
            suppress_ragged_eofs=True, server_hostname=None, context=None, session=None):
    import socket as _socket_module

    if server_side:
        raise NotImplementedError(
            "server-side TLS is not available in an interpool Python interpreter (Pyodide): "
            "interpool's front end terminates TLS, or put it behind a proxy")
    if context.check_hostname and not server_hostname:
        raise ValueError("check_hostname requires server_hostname")
    if sock.type != _socket_module.SOCK_STREAM:
        raise NotImplementedError("only stream sockets are supported")
    self = cls.__new__(cls)
    _socket_module.socket.__init__(self, sock.family, sock.type, sock.proto, sock.fileno())
    self.settimeout(sock.gettimeout())
    sock.detach()
    self._context = context
    self._server_hostname = context._encode_hostname(server_hostname)
    self._server_side = False
    self._suppress_ragged_eofs = suppress_ragged_eofs
    self._do_handshake_on_connect = do_handshake_on_connect
    self._session = session
    self._sslobj = None
    self._interpool_peer = None
    try:
        self.getpeername()
        self._connected = True
    except OSError as error:
        if error.errno != errno.ENOTCONN:
            raise
        self._connected = False
    if self._connected and do_handshake_on_connect:
        try:
            self.do_handshake()
        except (OSError, ValueError):
            self.close()
            raise
    return self


def do_handshake(self, block=False):
    import ssl
    from pyodide.ffi import can_run_sync, run_sync

    if self._interpool_peer is not None:
        return
    if not self._connected:
        raise _not_connected()
    if not can_run_sync():
        raise OSError(errno.EWOULDBLOCK, "a TLS handshake cannot wait outside a request (here: at import time)")
    options, bundle = _handshake_options(self._context, self._server_hostname, self.gettimeout())
    outcome = json.loads(run_sync(_tls().handshake(self.fileno(), json.dumps(options), bundle)))
    kind = outcome["kind"]
    if kind == "ok":
        self._interpool_peer = outcome
        return
    if kind == "verify":
        error = _ssl_error(
            "CERTIFICATE_VERIFY_FAILED",
            f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {outcome['message']}",
            cls=ssl.SSLCertVerificationError)
        error.verify_code, error.verify_message = outcome["code"], outcome["message"]
        raise error
    if kind == "ssl":
        raise _ssl_error(outcome["reason"], outcome["message"])
    if kind == "eof":
        error = ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol")
        error.reason, error.library = "UNEXPECTED_EOF_WHILE_READING", "SSL"
        raise error
    if kind == "timeout":
        raise TimeoutError("The handshake operation timed out")
    if kind == "errno":
        number = getattr(errno, outcome["code"], errno.EIO)
        raise OSError(number, os.strerror(number))
    if kind == "interrupted":
        # The request's timeout (consumed by python-tls.ts): SIGINT's handler raises it.
        import signal

        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, None)
        raise KeyboardInterrupt
    raise NotImplementedError("TLS is not available on this socket")


def _check_handshake(self):
    if self._interpool_peer is None:
        if not self._connected:
            raise _not_connected()
        raise ValueError("handshake not done yet")


def getpeercert(self, binary_form=False):
    import ssl

    _check_handshake(self)
    der = self._interpool_peer["der"]
    if der is None:
        return None
    der = base64.b64decode(der)
    if binary_form:
        return der
    if self._context.verify_mode == ssl.CERT_NONE:
        return {}
    return _describe(der)


def cipher(self):
    peer = self._interpool_peer
    if peer is None or peer["cipher"] is None:
        return None
    return (peer["cipher"], peer["cipherVersion"], peer["bits"])


def version(self):
    return None if self._interpool_peer is None else self._interpool_peer["protocol"]


def selected_alpn_protocol(self):
    return None if self._interpool_peer is None else self._interpool_peer["alpn"]


def _socket_call(name):
    def call(self, *args, **kwargs):
        import socket as _socket_module

        if self._interpool_peer is None:
            if not self._connected:
                raise _not_connected()
            self.do_handshake()
        return getattr(_socket_module.socket, name)(self, *args, **kwargs)

    call.__name__ = name
    return call


def read(self, len=1024, buffer=None):
    if buffer is not None:
        return self.recv_into(buffer, len)
    return self.recv(len)


def write(self, data):
    return self.send(data)


def connect(self, address):
    import socket as _socket_module

    _socket_module.socket.connect(self, address)
    self._connected = True
    if self._do_handshake_on_connect:
        self.do_handshake()


def connect_ex(self, address):
    import socket as _socket_module

    result = _socket_module.socket.connect_ex(self, address)
    if result == 0:
        self._connected = True
        if self._do_handshake_on_connect:
            self.do_handshake()
    return result


def shutdown(self, how):
    import socket as _socket_module

    _socket_module.socket.shutdown(self, how)


def unwrap(self):
    raise NotImplementedError("unwrap() is not available in an interpool Python interpreter (Pyodide)")


def wrap_bio(self, incoming, outgoing, server_side=False, server_hostname=None, session=None):
    raise NotImplementedError(
        "SSLContext.wrap_bio (TLS over memory buffers, as asyncio's TLS streams use) is not "
        "available in an interpool Python interpreter (Pyodide): use a socket "
        "(urllib, http.client, requests, SSLContext.wrap_socket)")


def sendfile(self, file, offset=0, count=None):
    return self._sendfile_use_send(file, offset, count)


def get_server_certificate(addr, ssl_version=None, ca_certs=None, timeout=None):
    """The server's certificate as PEM (ssl.get_server_certificate)."""
    import socket as _socket_module
    import ssl

    host, port = addr
    context = ssl._create_unverified_context(cert_reqs=ssl.CERT_REQUIRED if ca_certs else ssl.CERT_NONE, cafile=ca_certs)
    if timeout is None:
        timeout = _socket_module._GLOBAL_DEFAULT_TIMEOUT
    with _socket_module.create_connection(addr, timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls_sock:
            return ssl.DER_cert_to_PEM_cert(tls_sock.getpeercert(True))


def _patch(ssl):
    """Make the stub's classes work on Node's TLS (once; a real ssl module is left alone)."""
    if getattr(ssl, "_interpool_node_tls", False) or not str(ssl.OPENSSL_VERSION).endswith("(stub)"):
        return
    context = ssl.SSLContext
    for function in (load_verify_locations, set_default_verify_paths, load_default_certs, load_cert_chain,
                     get_ca_certs, cert_store_stats, set_ciphers, set_alpn_protocols, wrap_bio):
        function.__qualname__ = f"SSLContext.{function.__name__}"
        setattr(context, function.__name__, function)
    sock = ssl.SSLSocket
    sock._create = _create
    for function in (do_handshake, getpeercert, cipher, version, selected_alpn_protocol, read, write,
                     connect, connect_ex, shutdown, unwrap, sendfile):
        function.__qualname__ = f"SSLSocket.{function.__name__}"
        setattr(sock, function.__name__, function)
    for name in ("recv", "recv_into", "send", "sendall"):
        setattr(sock, name, _socket_call(name))
    sock.pending = lambda self: 0
    sock.shared_ciphers = lambda self: None
    sock.compression = lambda self: None
    sock.get_channel_binding = lambda self, cb_type="tls-unique": None
    ssl.get_server_certificate = get_server_certificate
    ssl.HAS_TLSv1_3 = True
    # CPython's: a verification error is also a ValueError (ssl.CertificateError).
    try:
        if not issubclass(ssl.SSLCertVerificationError, ValueError):
            ssl.SSLCertVerificationError.__bases__ = (ssl.SSLError, ValueError)
    except TypeError:
        pass
    import _ssl

    _ssl.get_default_verify_paths = lambda: ("SSL_CERT_FILE", _DEFAULT_CAFILE, "SSL_CERT_DIR", _DEFAULT_CAPATH)
    ssl._interpool_node_tls = True
