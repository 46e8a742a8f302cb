"""A hit counter in the app's shared store: every interpreter of the app counts into the
same key, kept by the server (in its own process, or in Redis with --shared-store), so
the count is exact whichever interpreter answers.

    npx interpool serve apps/shared_counter.py --workers 4
    npx interpool serve apps/shared_counter.py --shared-store redis://127.0.0.1:6379/0

DELETE / sets it back to 0. See docs/shared-store.md.
"""
import json

import interpool


def application(environ, start_response):
    if environ["REQUEST_METHOD"] == "DELETE":
        interpool.shared.delete("hits")
        hits = 0
    else:
        hits = interpool.shared.incr("hits")
    body = (json.dumps({"hits": hits}) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
