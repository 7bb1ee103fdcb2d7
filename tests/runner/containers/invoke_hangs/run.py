"""Healthy, but POST /invoke sleeps far past the test phase's 6 s limit."""
import sys
import time

sys.path.insert(0, "/app")
import server  # noqa: E402


def invoke():
    print("thinking for 60 s", flush=True)
    time.sleep(60)
    return 201


server.serve(invoke=invoke)
