"""Serves one case well (201), then its process exits (code 3) right after answering, before the
next case arrives."""
import os
import sys

sys.path.insert(0, "/app")
import server  # noqa: E402
import threshold  # noqa: E402


def invoke():
    threshold.segment()
    return 201


def leave():
    print("served one case; exiting", file=sys.stderr, flush=True)
    os._exit(3)


server.serve(invoke=invoke, after_invoke=leave)
