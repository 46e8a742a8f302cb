"""CPU-bound work: naive recursive Fibonacci of ?n= or of the bare query (?22); default 25, at most 35."""
from urllib.parse import parse_qs


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def application(environ, start_response):
    query = environ.get("QUERY_STRING", "")
    raw = query if query.isdigit() else parse_qs(query).get("n", ["25"])[0]
    if not raw.isdigit() or int(raw) > 35:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"n must be an integer from 0 to 35\n"]
    n = int(raw)
    body = f"fib({n}) = {fibonacci(n)}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
