"""The job's peak memory: measured for every job the host's cgroups show, even one that exits at
once, and the engine's stats read without ever raising or hanging."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from challenge.statuses import JobStatus
from evaluation.runner.docker_runner import _engine_peak, _MemorySampler, run_job


def _runner_sees_job_cgroups(client) -> bool:
    """Whether the runner can read the jobs' memory cgroups here: a local, rootful engine whose
    cgroup version's memory controller this process sees under /sys/fs/cgroup."""
    info = client.info()
    if not client.api.base_url.startswith("http+docker://") or "rootless" in str(info.get("SecurityOptions")):
        return False
    marker = {"1": "memory/memory.max_usage_in_bytes", "2": "cgroup.controllers"}.get(str(info.get("CgroupVersion")))
    return marker is not None and (Path("/sys/fs/cgroup") / marker).exists()


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_a_job_that_exits_at_once_gets_its_peak_memory(docker_client, algorithm_image, input_image, test_phase,
                                                       tmp_path):
    """`true` ends before the first poll of the watch, and the engine removes its cgroup before wait()
    returns: the read right after the start measures it."""
    if not _runner_sees_job_cgroups(docker_client):
        pytest.skip("the jobs' memory cgroups are not visible here (remote or rootless engine, another layout)")
    for attempt in range(3):
        job = run_job(docker_client, image_id=algorithm_image("noop"), case="1_t1", input_image=input_image,
                      phase=test_phase, job_dir=tmp_path / f"job{attempt}")
        assert job.status is JobStatus.MISSING_OUTPUT, job.reason
        assert job.peak_memory_bytes is not None, f"attempt {attempt}: no peak memory for a job of {job.seconds:.2f} s"
        assert 0 < job.peak_memory_bytes <= test_phase.memory_bytes


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_a_memory_hog_peaks_near_the_limit(docker_client, algorithm_image, input_image, test_phase, tmp_path):
    if not _runner_sees_job_cgroups(docker_client):
        pytest.skip("the jobs' memory cgroups are not visible here (remote or rootless engine, another layout)")
    job = run_job(docker_client, image_id=algorithm_image("memory"), case="1_t1", input_image=input_image,
                  phase=test_phase, job_dir=tmp_path / "job")
    assert job.status is JobStatus.OUT_OF_MEMORY, job.reason
    assert job.peak_memory_bytes is not None
    assert test_phase.memory_bytes // 2 < job.peak_memory_bytes <= test_phase.memory_bytes


class _FakeContainer:
    id = "0" * 64

    def __init__(self, stats):
        self._stats = stats

    def stats(self, *, stream: bool):
        assert stream is False
        return self._stats() if callable(self._stats) else self._stats


def _raise():
    raise ConnectionError("the engine went away")


@pytest.mark.parametrize("stats, expected", [
    ({"memory_stats": {"usage": 10, "max_usage": 123_456}}, 123_456),  # cgroup v1
    ({"memory_stats": {"usage": 10, "peak": 654_321}}, 654_321),  # an engine that reports cgroup v2's memory.peak
    ({"memory_stats": {}}, None),  # Docker, for an exited container
    ({"memory_stats": {"max_usage": 0}}, None),
    ({"memory_stats": {"max_usage": "12"}}, None),
    ({}, None),
    (b"not json", None),
    (_raise, None),
], ids=["max_usage", "peak", "empty", "zero", "text", "no-memory-stats", "not-a-dict", "raises"])
def test_engine_stats_give_a_peak_or_none(stats, expected):
    assert _engine_peak(_FakeContainer(stats)) == expected


def test_an_engine_whose_stats_hang_gives_none_within_the_timeout():
    release = threading.Event()
    began = time.monotonic()
    try:
        assert _engine_peak(_FakeContainer(lambda: release.wait(30) and {}), timeout_seconds=0.2) is None
        assert time.monotonic() - began < 2
    finally:
        release.set()


def test_the_last_reads_keep_the_largest_value():
    sampler = _MemorySampler(_FakeContainer.id)  # no such cgroup: only the engine's stats give a value
    sampler.sample()
    assert sampler.peak() is None
    sampler.finish(_FakeContainer({"memory_stats": {}}))
    assert sampler.peak() is None
    sampler.finish(_FakeContainer({"memory_stats": {"max_usage": 2048}}))
    sampler.finish(_FakeContainer({"memory_stats": {"max_usage": 1024}}))
    assert sampler.peak() == 2048
