"""The local pool's workers end with the engine that started them, even when it is SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENGINE_LIKE = """
import json, multiprocessing.resource_tracker as tracker, sys, time
from submissions.executors import LocalExecutor, Resources
executor = LocalExecutor(2)
busy = executor.submit(time.sleep, 60, resources=Resources())  # one worker is mid-task when killed
executor.submit(time.sleep, 0, resources=Resources()).result()
time.sleep(0.5)
print(json.dumps(sorted(executor._pool._processes) + [tracker._resource_tracker._pid]), flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.timeout(60)
def test_workers_and_their_resource_tracker_exit_when_the_engine_is_killed():
    engine = subprocess.Popen([sys.executable, "-c", ENGINE_LIKE], stdout=subprocess.PIPE, text=True)
    try:
        helpers = json.loads(engine.stdout.readline())
        assert len(helpers) == 3 and all(_alive(pid) for pid in helpers)
    finally:
        engine.kill()
        engine.wait(timeout=10)
        engine.stdout.close()
    deadline = time.monotonic() + 10
    while any(map(_alive, helpers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in helpers if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "pool workers outlived their engine"
