"""Fails (exit code 2) having written only to stdout: the platform shows "No errors were reported in the logs."."""
import sys

print("working ...", flush=True)
sys.exit(2)
