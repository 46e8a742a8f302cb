"""A hit counter kept in Redis, with redis-py: every interpreter of the app counts into
the same key, so the count is the server's, not one interpreter's.

    apt-get install redis-server python3-redis
    REDIS_URL=redis://127.0.0.1:6379/0 npx interpool serve apps/redis_counter.py \\
        --python-path /usr/lib/python3/dist-packages

The client is created at import, once per interpreter: redis-py connects at the first
command, so each interpreter holds one connection of its own, opened at its first request
(a connection cannot be in the memory snapshot every interpreter starts from).
"""
import json
import os

import redis

client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def application(environ, start_response):
    if environ["REQUEST_METHOD"] == "DELETE":
        client.delete("interpool:hits")
        hits = 0
    else:
        hits = client.incr("interpool:hits")
    body = (json.dumps({"hits": hits}) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
