"""Streams a few lines, pausing between them: each line reaches the client as it is made.

?chunks=N (default 5) and ?delay=MS (default 200). time.sleep suspends this interpreter
only; the other workers keep serving.
"""
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    chunks = min(_int(query, "chunks", 5), 1000)
    delay = min(_int(query, "delay", 200), 10_000) / 1000
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return _lines(chunks, delay)


def _lines(chunks, delay):
    for i in range(1, chunks + 1):
        yield f"chunk {i} of {chunks} at {datetime.now(timezone.utc).isoformat()}\n".encode()
        if i < chunks:
            time.sleep(delay)


def _int(query, name, default):
    try:
        return max(int(query[name][0]), 0)
    except (KeyError, ValueError):
        return default
