"""Writes its error to stderr, then a last line to stdout, and fails (exit code 2): the reason quotes
the last stderr line, as the platform does, not the last line of the log."""
import sys
import time

print("error: no model in /opt/ml/model", file=sys.stderr, flush=True)
time.sleep(0.2)
print("cleaning up", flush=True)
time.sleep(0.2)
sys.exit(2)
