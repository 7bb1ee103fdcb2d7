"""The Ray executor on a real local Ray cluster (a head and a worker node, started as separate
`ray start` processes) gives the same results as the local process pool."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_process import start_engine  # noqa: E402  (this folder is on sys.path)
from submissions_fakes import fake_pinner, ledger_nodes, read_ledger
from submissions_testdata import case_names

from submissions.db import open_registry
from submissions.intake import set_phase, submit
from submissions.queries import phase_results

pytest.importorskip("ray", reason="the Ray tests need the 'cluster' extra (ray[default])")

HERE = Path(__file__).resolve().parent
RAY = Path(sys.executable).with_name("ray")
NODE_CPUS = 2
NODE_MEMORY_BYTES = 10 * 1024**3  # logical: the phase asks 8g per job, so one job per node at a time
OBJECT_STORE_BYTES = 100 * 1024**2
JOB_SECONDS = "0.2"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_nodes(address: str, count: int, env: dict, timeout_s: float = 60) -> None:
    script = (
        "import ray, sys, time\n"
        f"ray.init(address={address!r}, log_to_driver=False)\n"
        f"deadline = time.time() + {timeout_s}\n"
        f"while sum(1 for n in ray.nodes() if n['Alive']) < {count}:\n"
        "    if time.time() > deadline: sys.exit(1)\n"
        "    time.sleep(0.5)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout_s + 30
    )
    assert result.returncode == 0, f"the Ray cluster did not come up with {count} nodes:\n{result.stderr[-3000:]}"


@dataclass(frozen=True)
class RayCluster:
    address: str
    ledger: Path  # where the fake jobs on the cluster's nodes write their ledger


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head and a worker node on this machine (Ray workers take their environment from the
    node, so the fake job's settings are given here); stops both, and only these, at the end."""
    if not RAY.exists():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    temp = Path("/tmp") / f"spider-ray-{os.getpid()}"  # Ray's socket paths must stay short
    logs = tmp_path_factory.mktemp("ray-logs")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    ledger = logs / "ledger.txt"
    # Token authentication off: a loopback-only test cluster, and Ray would otherwise read or
    # write a token in the user's ~/.ray.
    env = dict(
        os.environ,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        SUBMISSIONS_FAKE_LEDGER=str(ledger),
        SUBMISSIONS_FAKE_SECONDS=JOB_SECONDS,
    )
    common = [
        f"--num-cpus={NODE_CPUS}",
        f"--memory={NODE_MEMORY_BYTES}",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--block",
    ]
    processes = []
    try:
        processes.append(subprocess.Popen(
            [str(RAY), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp}", *common],
            env=dict(env, SUBMISSIONS_FAKE_NODE="head"), stdout=(logs / "head.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        ))
        _wait_for_nodes(address, 1, env)
        processes.append(subprocess.Popen(
            [str(RAY), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
            env=dict(env, SUBMISSIONS_FAKE_NODE="worker"),
            stdout=(logs / "worker.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ))
        _wait_for_nodes(address, 2, env)
        yield RayCluster(address, ledger)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only this cluster's processes
                process.wait(timeout=10)
        shutil.rmtree(temp, ignore_errors=True)


def _evaluate(tmp_path: Path, hidden: Path, name: str, *, executor: str, ray_address: str | None = None):
    work = tmp_path / name
    db = f"sqlite:///{work / 'registry.sqlite'}"
    registry = open_registry(db, work=work)
    set_phase(registry, "sanity-check", data_dir=hidden, max_submissions=10)
    images = []
    for team in ("team a", "team b"):
        image = tmp_path / f"{name}-{team}.tar"
        image.write_bytes(team.encode())
        images.append(image)
        submit(registry, team=team, name="algo", image=str(image), phase="sanity-check", pinner=fake_pinner)
    log = tmp_path / f"{name}.log"
    engine = start_engine(db, work, log, workers=2, executor=executor, ray_address=ray_address)
    stdout, _ = engine.communicate(timeout=150)
    assert engine.returncode == 0, log.read_text()
    report = json.loads(stdout.strip().splitlines()[-1])
    results = phase_results(registry, "sanity-check")
    metrics = [Path(work / "submissions" / str(r.id) / "metrics.json").read_bytes() for r in results]
    registry.dispose()
    return report, results, metrics


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_results_equal_local_results(ray_cluster, tmp_path, make_hidden_set, monkeypatch):
    hidden = make_hidden_set(case_names(8), folder="hidden-8")
    ledger = ray_cluster.ledger
    monkeypatch.setenv("SUBMISSIONS_FAKE_LEDGER", str(ledger))
    monkeypatch.setenv("SUBMISSIONS_FAKE_SECONDS", JOB_SECONDS)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    local_report, local, local_metrics = _evaluate(tmp_path, hidden, "local", executor="local")
    assert ledger_nodes(ledger) == {"-"}
    ledger.unlink()
    ray_report, on_ray, ray_metrics = _evaluate(
        tmp_path, hidden, "ray", executor="ray", ray_address=ray_cluster.address
    )

    assert ledger_nodes(ledger) == {"head", "worker"}  # jobs ran on both nodes, as Ray tasks
    assert len([e for e in read_ledger(ledger) if e[0] == "start"]) == 16
    for report in (local_report, ray_report):
        assert (report["runs"], report["scored"], len(report["completed"])) == (16, 16, 2)
    strip = lambda r: (r.team, r.status, r.rules_version, r.image_digest,  # noqa: E731
                       [(x.case, x.structure, x.level, x.metric, x.value, x.status) for x in r.rows],
                       [(j.case, j.status, j.reason, j.attempts) for j in r.jobs])
    assert [strip(r) for r in on_ray] == [strip(r) for r in local]
    assert ray_metrics == local_metrics  # metrics.json byte for byte
