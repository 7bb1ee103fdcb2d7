"""GET /health answers a redirect (to a login page), which the platform counts as a failure."""
import sys

sys.path.insert(0, "/app")
import server  # noqa: E402

server.serve(health=lambda: 302, headers={"Location": "http://127.0.0.1:4743/login"})
