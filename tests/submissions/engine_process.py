"""An engine process for the crash and concurrency tests: the production engine with the fake job.

    python engine_process.py --db URL --work DIR [--workers N] [--lease-seconds S]
                             [--executor local|ray] [--ray-address ADDR]

Prints the engine report as one JSON line when it ends. The helpers below start it from tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENGINE = Path(__file__).resolve()
_STARTED: list[subprocess.Popen] = []  # what start_engine started; stop_started_engines ends it


def start_engine(db_url: str, work_dir: Path, log: Path, *, workers: int = 2, executor: str = "local",
                 ray_address: str | None = None) -> subprocess.Popen:
    command = [sys.executable, str(ENGINE), "--db", db_url, "--work", str(work_dir), "--workers", str(workers),
               "--lease-seconds", "30", "--executor", executor]
    if ray_address:
        command += ["--ray-address", ray_address]
    with log.open("a") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=os.environ.copy())
    _STARTED.append(process)
    return process


def stop_started_engines(timeout_s: float = 30) -> None:
    """SIGKILL the engines still running (a test that failed midway); their pool workers follow."""
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=timeout_s)
        if process.stdout:
            process.stdout.close()


def job_states(registry) -> dict[int, tuple[str, int, bool]]:
    from sqlalchemy import select

    from submissions.models import Job

    with registry.session() as session:
        return {job.id: (job.status, job.attempts, job.scored_at is not None) for job in session.scalars(select(Job))}


def wait_until(predicate, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from submissions_fakes import copy_reference_job

    from submissions.db import open_registry
    from submissions.engine import evaluate
    from submissions.executors import make_executor

    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    parser.add_argument("--executor", default="local")
    parser.add_argument("--ray-address")
    arguments = parser.parse_args()
    registry = open_registry(arguments.db, work=arguments.work)
    executor = make_executor(arguments.executor, workers=arguments.workers, ray_address=arguments.ray_address)
    try:
        report = evaluate(registry, executor, job_function=copy_reference_job, lease_seconds=arguments.lease_seconds,
                          progress=lambda message: print(message, file=sys.stderr, flush=True))
    finally:
        executor.close()
        registry.dispose()
    print(json.dumps(dataclasses.asdict(report)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
