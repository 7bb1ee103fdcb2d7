"""Loads forever: GET /health always answers 503."""
import sys

sys.path.insert(0, "/app")
import server  # noqa: E402

print("loading a model that never finishes loading", flush=True)
server.serve(health=lambda: 503)
