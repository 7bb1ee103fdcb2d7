"""A small grand-challenge "invoke" server for the test containers (stdlib only).

serve(health, invoke) answers GET /health with health() and POST /invoke with invoke(), each an
HTTP status, on the port the platform names in GRAND_CHALLENGE_COMPONENT_USER_WEBSERVER_PORT;
after_invoke() runs once the answer is sent.
"""
import http.server
import os
import time

STARTED = time.monotonic()


def since_start():
    return time.monotonic() - STARTED


def serve(health=lambda: 200, invoke=lambda: 201, headers=None, after_invoke=lambda: None):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self._answer(health() if self.path == "/health" else 404)

        def do_POST(self):
            self._answer(invoke() if self.path == "/invoke" else 404)
            self.wfile.flush()
            after_invoke()

    port = int(os.environ.get("GRAND_CHALLENGE_COMPONENT_USER_WEBSERVER_PORT", "4743"))
    print(f"listening on port {port}", flush=True)
    http.server.HTTPServer(("", port), Handler).serve_forever()
