"""Ignores SIGTERM and sleeps forever."""
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("sleeping, SIGTERM ignored", flush=True)
while True:
    time.sleep(1)
