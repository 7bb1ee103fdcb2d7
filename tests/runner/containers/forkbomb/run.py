"""Forks without bound and never stops; reports when the PID limit first stops it."""
import os
import time

created = 0
reported = False
while True:
    try:
        if os.fork() == 0:
            created = 0
            continue  # the child forks too
        created += 1
    except OSError as error:
        if not reported:
            print(f"fork failed after {created} children of pid {os.getpid()}: {error}", flush=True)
            reported = True
        time.sleep(0.01)
