"""The production job: what the container runner measured reaches the engine's outcome."""

from __future__ import annotations

from challenge.phases import Phase
from challenge.statuses import JobStatus
from evaluation.runner import docker_runner
from evaluation.runner.docker_runner import JobResult
from submissions import images
from submissions.jobs import JobOutcome, JobSpec, run_container_job


def test_the_container_job_passes_the_runners_peak_memory_on(monkeypatch, tmp_path):
    phase = Phase(name="p", description="", time_limit_seconds=6, memory_bytes=256 * 1024**2, cpus=1.0, gpus=0,
                  pids_limit=64, tmp_bytes=64 * 1024**2, output_limit_bytes=32 * 1024**2)
    spec = JobSpec(job_id=1, submission_id=1, case="1_t1", attempt=1, image_digest="sha256:ab", image_archive=None,
                   input_image=str(tmp_path / "1_t1.mha"), job_dir=str(tmp_path / "job"), phase=phase)
    result = JobResult("1_t1", JobStatus.MISSING_OUTPUT, "no .mha file", 0, 0.2, tmp_path / "job" / "log.txt",
                       "sha256:ab", None, 3_817_472)
    monkeypatch.setattr(docker_runner, "connect", lambda: object())
    monkeypatch.setattr(docker_runner, "run_job", lambda client, **options: result)
    monkeypatch.setattr(images, "ensure_loaded", lambda digest, archive, *, client: None)
    assert run_container_job(spec) == JobOutcome(JobStatus.MISSING_OUTPUT, "no .mha file", 0, 0.2,
                                                 str(tmp_path / "job" / "log.txt"), None, 3_817_472)
