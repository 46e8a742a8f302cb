# Stand-in for apps/stream.py: a generator of lines, pausing between them; ?chunks=N
# (default 5) and ?delay=MS (default 200). The same lines as apps/stream.ts.
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs


def number(query, name, default, limit):
    raw = query.get(name, [str(default)])[0]
    value = int(raw) if raw.isdigit() else default
    return min(value, limit)


def application(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    chunks = number(query, "chunks", 5, 1000) or 5
    delay = number(query, "delay", 200, 10_000)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])

    def lines():
        for i in range(1, chunks + 1):
            now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            yield f"chunk {i} of {chunks} at {now}\n".encode()
            if i < chunks and delay:
                time.sleep(delay / 1000)

    return lines()
