"""Module-level state: each interpreter has its own copy of this counter, so the answer
shows which interpreter served the request and how many requests it has served.

The interpreter's name is drawn at its first request, not at import: every interpreter
of an app starts from one memory snapshot taken after the import, so a value drawn at
import time would be the same in all of them.
"""
import json
import secrets

served = 0
interpreter = None


def application(environ, start_response):
    global served, interpreter
    interpreter = interpreter or secrets.token_hex(4)
    served += 1
    body = (json.dumps({"interpreter": interpreter, "served": served}) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
