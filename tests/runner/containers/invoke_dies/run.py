"""Healthy, but the process exits (code 4) on POST /invoke before answering."""
import os
import sys

sys.path.insert(0, "/app")
import server  # noqa: E402


def invoke():
    print("dying on /invoke", file=sys.stderr, flush=True)
    os._exit(4)


server.serve(invoke=invoke)
