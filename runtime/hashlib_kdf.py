"""hashlib.pbkdf2_hmac and hashlib.scrypt for Pyodide (PYODIDE only).

CPython provides both from its OpenSSL module, ``_hashlib``, which Pyodide does not
build. Here the arguments are checked as CPython 3.11-3.14 on OpenSSL 3 check them
(same signatures, defaults, exception types and messages), including the parameter
limits OpenSSL's scrypt applies, and the key itself comes from Node's crypto, which is
OpenSSL too (runtime/interpreters/python-hashlib.ts): the same inputs give the same
bytes, or the same exception.

Loaded by runtime/interpreters/python-hashlib.ts as the module
``interpool_hashlib_kdf``; it keeps no JavaScript reference (the entry point is looked
up at each call), so a memory snapshot may hold it.
"""

import hashlib
import operator

_ENTRY = "interpoolKdf"  # python-hashlib.ts KDF_ENTRY
_INT_MAX = 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_ULONG_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1

# OpenSSL's scrypt limits (RFC 7914 and its own): a zero maxmem means 32 MiB.
_SCRYPT_DEFAULT_MAXMEM = 32 * 1024 * 1024
_SCRYPT_PR_MAX = 2**30 - 1

# CPython's own names for OpenSSL's digests; any other name goes to OpenSSL as it is.
_OPENSSL_NAMES = {
    "sha512_224": "sha512-224",
    "sha512_256": "sha512-256",
    "sha3_224": "sha3-224",
    "sha3_256": "sha3-256",
    "sha3_384": "sha3-384",
    "sha3_512": "sha3-512",
    "shake_128": "shake128",
    "shake_256": "shake256",
    "blake2s": "blake2s256",
    "blake2b": "blake2b512",
}

# OpenSSL's messages, as CPython reports them.
_UNSUPPORTED = "[digital envelope routines] unsupported"
_MEMORY_LIMIT = "[digital envelope routines] memory limit exceeded"
_TOO_LARGE = "[digital envelope routines] parameter too large"
_INVALID_COMBINATION = "Invalid parameter combination for n, r, p, maxmem."


class UnsupportedDigestmodError(ValueError):
    """An unknown digest name (CPython's ``_hashlib.UnsupportedDigestmodError``)."""


def _type_name(value):
    return "None" if value is None else type(value).__name__


def _kdf():
    import js
    return getattr(js, _ENTRY)


def _buffer(value):
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(value).__name__}'") from None


def _c_long(value):
    value = operator.index(value)
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    return value


def _js_bytes(data):
    from pyodide.ffi import to_js
    return to_js(data)


def pbkdf2_hmac(hash_name, password, salt, iterations, dklen=None):
    """Password based key derivation function 2 (PKCS #5 v2.0) with HMAC as pseudorandom function."""
    if not isinstance(hash_name, str):
        raise TypeError(f"pbkdf2_hmac() argument 'hash_name' must be str, not {_type_name(hash_name)}")
    password = _buffer(password)
    salt = _buffer(salt)
    iterations = _c_long(iterations)
    name = _OPENSSL_NAMES.get(hash_name, hash_name)
    size = _kdf().digestSize(name) if "\0" not in name else -1
    if size < 0:
        raise UnsupportedDigestmodError(_UNSUPPORTED)
    if len(password) > _INT_MAX:
        raise OverflowError("password is too long.")
    if len(salt) > _INT_MAX:
        raise OverflowError("salt is too long.")
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    if iterations > _INT_MAX:
        raise OverflowError("iteration value is too great.")
    dklen = size if dklen is None else _c_long(dklen)
    if dklen < 1:
        raise ValueError("key length must be greater than 0.")
    if dklen > _INT_MAX:
        raise OverflowError("key length is too great.")
    if _kdf().extendable(name):  # OpenSSL's PBKDF2 fails without a reason
        raise ValueError("no reason supplied")
    return _kdf().pbkdf2(name, _js_bytes(password), _js_bytes(salt), iterations, dklen).to_bytes()


def _unsigned(value, name):
    if value is _REQUIRED or value < 0 or value > _ULONG_MAX:
        raise TypeError(f"{name} is required and must be an unsigned int")
    return int(value)


def _check_int(value, name):
    if value is not _REQUIRED and not isinstance(value, int):
        raise TypeError(f"scrypt() argument '{name}' must be int, not {_type_name(value)}")


_REQUIRED = object()


def _scrypt_memory(n, r, p, maxmem):
    """The memory OpenSSL's scrypt needs for these parameters, or the ValueError it raises."""
    if r > _UINT32_MAX or p > _UINT32_MAX:
        return ValueError(_TOO_LARGE)
    if r == 0 or p == 0:
        return ValueError(_INVALID_COMBINATION)
    if p > _SCRYPT_PR_MAX // r:
        return ValueError(_MEMORY_LIMIT)
    if 16 * r <= 63 and n >= 1 << (16 * r):
        return ValueError(_MEMORY_LIMIT)
    block = 128 * r * p
    if block > _INT_MAX:
        return ValueError(_MEMORY_LIMIT)
    if n + 2 > (_ULONG_MAX // 128) // r:
        return ValueError(_MEMORY_LIMIT)
    needed = block + 128 * r * (n + 2)
    if needed > (maxmem or _SCRYPT_DEFAULT_MAXMEM):
        return ValueError(_MEMORY_LIMIT)
    return needed


def scrypt(password, *, salt=_REQUIRED, n=_REQUIRED, r=_REQUIRED, p=_REQUIRED, maxmem=0, dklen=64):
    """scrypt password-based key derivation function."""
    password = _buffer(password)
    if salt is not _REQUIRED:
        salt = _buffer(salt)
    for value, name in ((n, "n"), (r, "r"), (p, "p")):
        _check_int(value, name)
    maxmem = _c_long(maxmem)
    dklen = _c_long(dklen)
    if len(password) > _INT_MAX:
        raise OverflowError("password is too long.")
    if salt is _REQUIRED:
        raise TypeError("salt is required")
    if len(salt) > _INT_MAX:
        raise OverflowError("salt is too long.")
    n = _unsigned(n, "n")
    if n < 2 or n & (n - 1):
        raise ValueError("n must be a power of 2.")
    r = _unsigned(r, "r")
    p = _unsigned(p, "p")
    if maxmem < 0 or maxmem > _INT_MAX:
        raise ValueError(f"maxmem must be positive and smaller than {_INT_MAX}")
    if dklen < 1 or dklen > _INT_MAX:
        raise ValueError(f"dklen must be greater than 0 and smaller than {_INT_MAX}")
    needed = _scrypt_memory(n, r, p, maxmem)
    if isinstance(needed, ValueError):
        raise needed
    return _kdf().scrypt(_js_bytes(password), _js_bytes(salt), n, r, p, needed, dklen).to_bytes()


def install():
    """Add the functions to hashlib where it lacks them (idempotent)."""
    for function in (pbkdf2_hmac, scrypt):
        name = function.__name__
        if hasattr(hashlib, name):
            continue
        function.__module__ = "hashlib"
        setattr(hashlib, name, function)
    if "pbkdf2_hmac" not in hashlib.__all__:
        hashlib.__all__ += ("pbkdf2_hmac",)
