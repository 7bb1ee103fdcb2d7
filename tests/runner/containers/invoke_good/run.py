"""A well-behaved invoke server: 503 on /health while it "loads" (1 s), then 200; each POST /invoke
reads /input/inputs.json the 2026 way and thresholds the input into SPIDER labels, then answers 201."""
import sys

sys.path.insert(0, "/app")
import server  # noqa: E402
import threshold  # noqa: E402


def invoke():
    threshold.segment()
    return 201


server.serve(health=lambda: 200 if server.since_start() >= 1.0 else 503, invoke=invoke)
