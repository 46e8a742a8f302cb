# Stand-in for apps/cpu.py: naive recursive Fibonacci of ?n= (default 25, at most 35),
# the same logic and bytes as apps/cpu.ts.
from urllib.parse import parse_qs


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def application(environ, start_response):
    query = environ.get("QUERY_STRING", "")
    raw = parse_qs(query).get("n", [query if query.isdigit() else "25"])[0]
    n = int(raw) if raw.isdigit() else -1
    if not 0 <= n <= 35:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"n must be an integer from 0 to 35\n"]
    body = f"fib({n}) = {fibonacci(n)}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
