"""A phase of hostile submissions beside one good one, evaluated by `spider evaluate` as an organizer
would, on SQLite and on PostgreSQL: every hostile job ends with its status and reason, the good
submission completes, the engine never stops, and nothing is left on the Docker engine (volumes,
tags, images) besides the archived submissions. The harness's own peak memory stays bounded.
Exec and invoke submissions share the phase.

The images are the runner's hostile containers (tests/runner/containers/<name>)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from challenge.statuses import JobStatus
from evaluation.runner.docker_runner import JOB_LABEL
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
    "longnames": (JobStatus.SUCCEEDED, "valid segmentation"),
    "deepfolders": (JobStatus.OUTPUT_TOO_LARGE, "nested more than 64 levels deep"),
    "lockedfolder": (JobStatus.SUCCEEDED, "valid segmentation"),
    "lockedseg": (JobStatus.SUCCEEDED, "valid segmentation"),
    "outputbomb": (JobStatus.INVALID_OUTPUT, "found (1000, 1000, 1000)"),
    # Invoke images in the same phase as exec ones (the platform takes both kinds in one challenge).
    "invoke_good": (JobStatus.SUCCEEDED, "valid segmentation"),
    "invoke_dies": (JobStatus.FAILED, "exited with code 4; last log line: dying on /invoke"),
}


def _spider(*arguments: str, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPIDER), *arguments], env=env, capture_output=True, text=True, timeout=timeout)


# Runs a command and prints, last on stderr, the largest ru_maxrss of it and its waited-for descendants. A small
# process of its own: a child forked straight from the test process would also count the test's own memory
# (the high-water mark survives fork and exec).
_PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print('peak-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _spider_with_peak_memory(*arguments: str, env: dict, timeout: int) -> tuple[int, str, str, int]:
    """Run `spider` and return (exit code, stdout, stderr, the largest peak resident memory of it and of every
    process it waited for, in bytes)."""
    done = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(SPIDER), *arguments], env=env,
                          capture_output=True, text=True, timeout=timeout)
    *rest, last = done.stderr.rstrip("\n").split("\n")
    label, peak_kib = last.split()
    assert label == "peak-kib", done.stderr
    return done.returncode, done.stdout, "\n".join(rest), int(peak_kib) * 1024


def _engine_state(client) -> dict[str, set[str]]:
    """Volumes, tags, images and job containers on the engine (one low-level call each: an object
    listing fetches every item again and fails when another user removes one meanwhile)."""
    images = client.api.images(all=True)
    return {
        "volumes": {v["Name"] for v in client.api.volumes().get("Volumes") or []},
        "tags": {tag for image in images for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"},
        "images": {image["Id"] for image in images},
        "containers": {c["Id"] for c in client.api.containers(all=True, filters={"label": JOB_LABEL})},
    }


def _retagged_tarball(client, image_id: str, tags: list[str], path: Path) -> Path:
    """A `docker save` tarball of `image_id` whose manifest tags it `tags` (as an attacker would write it)."""
    import io
    import tarfile

    raw = io.BytesIO(b"".join(client.images.get(image_id).save(named=False)))
    with tarfile.open(fileobj=raw) as source, tarfile.open(path, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json" and data is not None:
                manifest = json.loads(data)
                manifest[0]["RepoTags"] = tags
                data = json.dumps(manifest).encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


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
                                                               work_dir, tmp_path):
    env = dict(os.environ, SPIDER_DB=db_url, SPIDER_WORK=str(work_dir))
    done = _spider("phase", "set", "sanity-check", "--data", str(hidden_set), "--time-limit", "60", "--memory", "512m",
                   "--max-submissions", "100", "--per", "day", env=env)
    assert done.returncode == 0, done.stderr
    base_id = docker_client.images.get("python:3.11-slim").id
    submitted: dict[int, str] = {}
    for name, image_id in hostile_images.items():
        # The good one comes as a tarball that tags itself as the organizer's base image.
        reference = str(_retagged_tarball(docker_client, image_id, ["python:3.11-slim", f"{TAG_PREFIX}hijack:1"],
                                          tmp_path / "good.tar")) if name == "good" else image_id
        done = _spider("submit", "--team", f"team {name}", "--name", name, "--image", reference,
                       "--phase", "sanity-check", env=env)
        assert done.returncode == 0, (name, done.stderr)
        submitted[int(done.stdout.strip())] = name
    assert docker_client.images.get("python:3.11-slim").id == base_id, "a submitted tarball re-pointed a local tag"
    assert not any(f"{TAG_PREFIX}hijack" in tag for tag in _engine_state(docker_client)["tags"])

    # A tarball larger than the phase's image limit is refused before anything is read into the engine.
    from submissions.models import PhaseRecord

    registry = open_registry(db_url, work=work_dir)
    try:
        with registry.session() as session, session.begin():
            record = session.query(PhaseRecord).filter_by(name="sanity-check").one()
            declared, record.image_limit_bytes = record.image_limit_bytes, 10**6
        done = _spider("submit", "--team", "team big", "--name", "big", "--image", str(tmp_path / "good.tar"),
                       "--phase", "sanity-check", env=env)
        assert done.returncode == 2 and "expected a tarball of at most" in done.stderr, done.stderr
        with registry.session() as session, session.begin():
            session.query(PhaseRecord).filter_by(name="sanity-check").one().image_limit_bytes = declared
    finally:
        registry.dispose()

    # A tarball of two images is refused at intake and leaves nothing loaded.
    two = tmp_path / "two.tar"
    first, second = (f"{TAG_PREFIX}{name}:latest" for name in ("crash", "nullog"))
    subprocess.run(["docker", "save", "-o", str(two), first, second], check=True, timeout=120)
    images_before = _engine_state(docker_client)["images"]
    done = _spider("submit", "--team", "team two", "--name", "two", "--image", str(two), "--phase", "sanity-check",
                   env=env)
    assert done.returncode == 2 and "found 2 images" in done.stderr, done.stderr
    assert _engine_state(docker_client)["images"] <= images_before
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
    # The invoke image runs the same threshold as the exec one: the same values, case by case.
    served = next(results[i] for i, name in submitted.items() if name == "invoke_good")
    def values(result):
        return {(r.case, r.structure, r.level, r.metric): (r.status, None if math.isnan(r.value) else r.value)
                for r in result.rows}

    assert values(served) == values(good)

    after = _engine_state(docker_client)
    assert after["volumes"] <= before["volumes"], after["volumes"] - before["volumes"]
    assert after["tags"] <= before["tags"], after["tags"] - before["tags"]
    assert after["images"] <= before["images"], after["images"] - before["images"]
    assert after["containers"] <= before["containers"], "a job's container outlived its job"
    assert peak < HARNESS_MEMORY_BOUND_BYTES, f"spider evaluate peaked at {peak / 2**20:.0f} MiB"
