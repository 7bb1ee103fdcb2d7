"""A phase of hostile submissions beside one good one, evaluated by `spider evaluate` as an organizer
would, on SQLite and on PostgreSQL: every hostile job ends with its status and reason, the good
submission completes, the engine never stops, and nothing is left on the Docker engine (volumes,
tags, images) besides the archived submissions. The harness's own peak memory stays bounded.

The images are the runner's hostile containers (tests/runner/containers/<name>)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from challenge.statuses import JobStatus
from submissions.db import open_registry
from submissions.queries import phase_results

SPIDER = Path(sys.executable).with_name("spider")
CONTAINERS = Path(__file__).resolve().parents[1] / "runner" / "containers"
TAG_PREFIX = "spider-test/hostile-phase-"
HARNESS_MEMORY_BOUND_BYTES = 1536 * 2**20
"""What `spider evaluate` itself (engine, runner and scoring children) may peak at for this phase."""

HOSTILE = {
    # container: (status of every job, words of its reason)
    "good": (JobStatus.SUCCEEDED, "valid segmentation"),
    "crash": (JobStatus.FAILED, "exited with code 1"),
    "nullog": (JobStatus.FAILED, "exited with code 3; last log line: fatal: bad [31mthing"),
    "badname": (JobStatus.INVALID_OUTPUT, "is not printable UTF-8"),
    "headertrick": (JobStatus.INVALID_OUTPUT, "takes them from another file"),
    "symlink": (JobStatus.INVALID_OUTPUT, "is a symbolic link"),
    "manyfiles": (JobStatus.OUTPUT_TOO_LARGE, "more than 1000 files"),
    "volumedot": (JobStatus.SUCCEEDED, "valid segmentation"),
}


def _spider(*arguments: str, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPIDER), *arguments], env=env, capture_output=True, text=True, timeout=timeout)


def _spider_with_peak_memory(*arguments: str, env: dict, timeout: int) -> tuple[int, str, str, int]:
    """Run `spider` and return (exit code, stdout, stderr, the largest peak resident memory of it and of every
    process it waited for, in bytes: ru_maxrss of its children as the kernel accounts them)."""
    import resource

    with subprocess.Popen([str(SPIDER), *arguments], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # RUSAGE_CHILDREN holds the largest ru_maxrss among the waited-for descendants of this test process.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return process.returncode, stdout, stderr, peak_kib * 1024


def _engine_state(client) -> dict[str, set[str]]:
    return {
        "volumes": {v.name for v in client.volumes.list()},
        "tags": {tag for image in client.images.list() for tag in image.tags},
        "images": {image.id for image in client.images.list(all=True)},
        "containers": {c.id for c in client.containers.list(all=True)},
    }


@pytest.fixture(scope="module")
def hostile_images(docker_client, base_image):
    """name -> image id of each container in HOSTILE, built offline once; untagged and removed after."""
    built = {}
    for name in HOSTILE:
        image, _ = docker_client.images.build(path=str(CONTAINERS), dockerfile=f"{name}/Dockerfile",
                                              tag=f"{TAG_PREFIX}{name}:latest", rm=True, forcerm=True,
                                              network_mode="none")
        built[name] = image.id
    yield built
    for name in HOSTILE:
        try:
            docker_client.images.remove(f"{TAG_PREFIX}{name}:latest", noprune=False)
        except Exception:  # another module's build of the same layers may still hold it
            pass


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_phase_of_hostile_submissions_completes_the_good_one(docker_client, hostile_images, hidden_set, db_url,
                                                               work_dir):
    env = dict(os.environ, SPIDER_DB=db_url, SPIDER_WORK=str(work_dir))
    done = _spider("phase", "set", "sanity-check", "--data", str(hidden_set), "--time-limit", "60", "--memory", "512m",
                   "--max-submissions", "100", "--per", "day", env=env)
    assert done.returncode == 0, done.stderr
    submitted: dict[int, str] = {}
    for name, image_id in hostile_images.items():
        done = _spider("submit", "--team", f"team {name}", "--name", name, "--image", image_id,
                       "--phase", "sanity-check", env=env)
        assert done.returncode == 0, (name, done.stderr)
        submitted[int(done.stdout.strip())] = name
    before = _engine_state(docker_client)

    code, stdout, stderr, peak = _spider_with_peak_memory("evaluate", "--pending", "--workers", "2", env=env,
                                                          timeout=800)
    assert code == 0, stderr
    jobs = 6 * len(HOSTILE)
    assert f"{jobs} jobs run, {jobs} cases scored, {len(HOSTILE)} submissions completed" in stdout, stdout

    registry = open_registry(db_url, work=work_dir)
    try:
        results = {r.id: r for r in phase_results(registry, "sanity-check")}
    finally:
        registry.dispose()
    for submission_id, name in submitted.items():
        status, words = HOSTILE[name]
        result = results[submission_id]
        assert result.status.value == "completed", (name, result.status)
        for job in result.jobs:
            assert job.status is status and words in (job.reason or ""), (name, job.case, job.reason)
    good = next(results[i] for i, name in submitted.items() if name == "good")
    assert all(r.has_value for r in good.rows if r.level == "all" and r.metric == "dice")
    metrics = json.loads((work_dir / "submissions" / str(good.id) / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["counts"]["scored"] == 6

    after = _engine_state(docker_client)
    assert after["volumes"] <= before["volumes"], after["volumes"] - before["volumes"]
    assert after["tags"] <= before["tags"], after["tags"] - before["tags"]
    assert after["images"] <= before["images"], after["images"] - before["images"]
    assert after["containers"] <= before["containers"], "a job's container outlived its job"
    assert peak < HARNESS_MEMORY_BOUND_BYTES, f"spider evaluate peaked at {peak / 2**20:.0f} MiB"
