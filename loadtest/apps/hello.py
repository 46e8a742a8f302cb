# Stand-in for apps/hello.py, served by the peers (gunicorn, uWSGI, mod_wsgi) until
# apps/ has its own: the same bytes as apps/hello.ts.
BODY = b"Hello, World!\n"


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))])
    return [BODY]
