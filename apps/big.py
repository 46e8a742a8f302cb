# A large response: 1 MiB of 64-byte text lines (?kib=N for another size), the same
# bytes as apps/big.ts, sent whole with its Content-Length. Built once per interpreter, at import.
from urllib.parse import parse_qs

LINE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-\n"
DEFAULT_KIB = 1024


def make_body(size):
    return (LINE * (size // len(LINE) + 1))[:size]


DEFAULT_BODY = make_body(DEFAULT_KIB * 1024)


def application(environ, start_response):
    raw = parse_qs(environ.get("QUERY_STRING", "")).get("kib", [str(DEFAULT_KIB)])[0]
    kib = int(raw) if raw.isdigit() else -1
    if not 0 <= kib <= 64 * 1024:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"kib must be an integer from 0 to 65536\n"]
    body = DEFAULT_BODY if kib == DEFAULT_KIB else make_body(kib * 1024)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
