"""Hostile algorithm containers: each ends with the right status and a clear reason, and
neither the host nor the next job is affected. Every container is built FROM python:3.11-slim
(the offline base image) from tests/runner/containers/<name>/."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import docker.errors
import pytest

from challenge.statuses import JobStatus
from evaluation.runner.docker_runner import JOB_LABEL, run_job

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

CASES = [
    # name, status, words of the reason, words the log must hold
    ("good", JobStatus.SUCCEEDED, "valid segmentation", "foreground voxels"),
    ("network", JobStatus.SUCCEEDED, "valid segmentation", "interfaces: lo\n"),
    ("escape", JobStatus.SUCCEEDED, "valid segmentation", "nothing escaped"),
    ("forkbomb", JobStatus.TIMED_OUT, "time limit of 6 s", "fork failed after"),
    ("memory", JobStatus.OUT_OF_MEMORY, "memory limit of 256m", "allocated 32 MiB"),
    ("sleeper", JobStatus.TIMED_OUT, "time limit of 6 s", "SIGTERM ignored"),
    ("fill", JobStatus.OUTPUT_TOO_LARGE, "grew past the limit of 32 MiB", "filling /output"),
    ("manyfiles", JobStatus.OUTPUT_TOO_LARGE, "more than 1000 files", ""),
    ("symlink", JobStatus.INVALID_OUTPUT, "segmentation.mha is a symbolic link", ""),
    ("symlinkdir", JobStatus.INVALID_OUTPUT, "sagittal-spine-mr-segmentation is a symbolic link", ""),
    (
        "nooutput",
        JobStatus.MISSING_OUTPUT,
        "no image file (.mha, .mhd (+ its data file) or .tif) in /output/images/sagittal-spine-mr-segmentation/",
        "nothing written",
    ),
    ("twooutputs", JobStatus.INVALID_OUTPUT, "found 2 image files", ""),
    ("wronggeometry", JobStatus.INVALID_OUTPUT, "spacing (mm): expected (0.62, 0.55, 3.3), found (1, 1, 1)", ""),
    ("floatlabels", JobStatus.INVALID_OUTPUT, "integer label image", ""),
    ("unknownlabels", JobStatus.INVALID_OUTPUT, "not SPIDER labels: 42, 150", ""),
    (
        "badentry",
        JobStatus.FAILED,
        "exited with code 127 (the command was not found: check the image's ENTRYPOINT and CMD); "
        "last log line: [FATAL tini",
        "exec /app/predict failed",
    ),
    # dockerd 20.10 sometimes drops stderr written in the instant before exit (seen with plain
    # `docker run` too), so the reason may name "loading model ..." instead of the traceback.
    ("crash", JobStatus.FAILED, "exited with code 1; ", "loading model"),
    # As the platform words a failure: the last non-empty stderr line, or its sentence for none.
    ("quietcrash", JobStatus.FAILED, "exited with code 2; No errors were reported in the logs.", "working"),
    ("stderrfirst", JobStatus.FAILED, "exited with code 2; last log line: error: no model in /opt/ml/model",
     "cleaning up"),
    ("volumedot", JobStatus.SUCCEEDED, "valid segmentation", "wrote 1 MiB to /data"),
    # The platform's other MetaImage form: the header and its data file, taken as one .mha copy.
    ("mhdoutput", JobStatus.SUCCEEDED, "valid segmentation segmentation.mhd", "foreground voxels"),
    # Refused from its header: the harness never inflates the 1 GB it declares.
    ("outputbomb", JobStatus.INVALID_OUTPUT, "found (1000, 1000, 1000)", "wrote a 1000^3 bomb"),
    ("headertrick", JobStatus.INVALID_OUTPUT, "takes them from another file", "points at /etc/hostname"),
    ("badname", JobStatus.INVALID_OUTPUT, "seg\\xff\\xfe.mha' is not printable UTF-8", "not UTF-8"),
    # NUL and the escape byte removed (PostgreSQL refuses NUL); undecodable bytes shown replaced.
    ("nullog", JobStatus.FAILED, "exited with code 3; last log line: fatal: bad [31mthing", "starting"),
    # A tree the runner walks by descriptor: a path longer than PATH_MAX is measured and checked,
    # nesting past 64 levels counts as too large, and nothing of it makes the runner raise.
    ("longnames", JobStatus.SUCCEEDED, "valid segmentation", "made a chain of 30 folders"),
    ("deepfolders", JobStatus.OUTPUT_TOO_LARGE, "/output holds folders nested more than 64 levels deep", ""),
    # Mode 000: the runner still reads it (as root the bits do not stop it; a runner without root
    # owns its jobs' files and makes them readable), so a locked folder is counted, not skipped.
    ("lockedfolder", JobStatus.SUCCEEDED, "valid segmentation", "locked a folder"),
    ("lockedbig", JobStatus.OUTPUT_TOO_LARGE, "grew past the limit of 32 MiB", ""),
    ("lockedseg", JobStatus.SUCCEEDED, "valid segmentation segmentation.mha", "locked the segmentation"),
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name, status, reason, log_words", CASES, ids=[c[0] for c in CASES])
def test_hostile_container(
    name, status, reason, log_words, docker_client, algorithm_image, input_image, test_phase, tmp_path
):
    before = _sha256(input_image)
    shadow = Path("/etc/shadow")
    shadow_before = shadow.stat().st_mtime_ns if shadow.exists() else None
    job = run_job(
        docker_client,
        image_id=algorithm_image(name),
        case="1_t1",
        input_image=input_image,
        phase=test_phase,
        job_dir=tmp_path / "job",
    )
    log = job.log_path.read_text()
    assert job.status is status, f"{job.status}: {job.reason}\n{log[-2000:]}"
    assert reason in job.reason
    assert log_words in log
    record = job.as_record()
    assert record["status"] == status.reported.value and record["reason"] == job.reason
    assert record["exit_code"] == job.exit_code and record["log"] == str(job.log_path)
    assert job.seconds < test_phase.time_limit_seconds + 5
    assert (job.prediction_path is not None) == (status is JobStatus.SUCCEEDED)
    # Nothing of the host changed: the input, the file the symlink names, the job folder's layout.
    assert _sha256(input_image) == before
    if shadow_before is not None:
        assert shadow.stat().st_mtime_ns == shadow_before
    assert not (tmp_path / "job" / "input").exists()
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == (
        ["container.json", "log.txt"] + ([] if status is JobStatus.OUTPUT_TOO_LARGE else ["output"])
        + (["prediction.mha"] if status is JobStatus.SUCCEEDED else [])
    )
    if status is JobStatus.SUCCEEDED:  # the result names the harness's read-only copy, not the container's file
        assert job.prediction_path == tmp_path / "job" / "prediction.mha"
        copy = job.prediction_path.lstat()
        assert stat.S_ISREG(copy.st_mode) and stat.S_IMODE(copy.st_mode) == 0o444 and copy.st_uid == os.geteuid()
    # The container is gone (other sessions may run jobs on this engine meanwhile: check this one).
    container_id = json.loads((tmp_path / "job" / "container.json").read_text())["Id"]
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container_id)
    listed = docker_client.containers.list(all=True, sparse=True, filters={"label": JOB_LABEL})
    assert container_id not in {c.id for c in listed}
    if status in (JobStatus.TIMED_OUT, JobStatus.OUT_OF_MEMORY):
        assert job.exit_code == 137
    assert job.reason.isprintable()  # container-chosen text is stored as printable text


def test_an_image_volume_with_a_trailing_dot_is_covered_and_leaves_no_volume(
    docker_client, algorithm_image, input_image, test_phase, tmp_path
):
    image_id = algorithm_image("volumedot")
    volumes_before = {volume.id for volume in docker_client.volumes.list()}
    job = run_job(docker_client, image_id=image_id, case="1_t1", input_image=input_image, phase=test_phase,
                  job_dir=tmp_path / "job")
    assert job.status is JobStatus.SUCCEEDED, job.reason
    assert f"on {test_phase.tmp_bytes} bytes of space" in job.log_path.read_text()  # the bounded tmpfs
    assert {volume.id for volume in docker_client.volumes.list()} <= volumes_before


def test_the_next_job_is_unaffected_by_a_fork_bomb_and_a_memory_hog(
    docker_client, algorithm_image, input_image, test_phase, tmp_path
):
    for index, name in enumerate(("forkbomb", "memory", "good")):
        job = run_job(
            docker_client,
            image_id=algorithm_image(name),
            case="1_t1",
            input_image=input_image,
            phase=test_phase.with_overrides(time_limit_seconds=3) if name == "forkbomb" else test_phase,
            job_dir=tmp_path / f"job{index}",
        )
    assert job.status is JobStatus.SUCCEEDED, job.reason
    # The host still forks.
    assert subprocess.run(["true"], check=False).returncode == 0


def test_an_image_without_a_command_does_not_start(docker_client, input_image, test_phase, tmp_path):
    import io
    import tarfile

    from evaluation.runner import base_image as base

    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as archive:
        info = tarfile.TarInfo("README")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"empty"))
    config = json.dumps({"architecture": base.docker_architecture(), "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{base.file_sha256(layer)}"]}}).encode()
    archive_path = tmp_path / "image.tar"
    with open(archive_path, "wb") as stream:
        base.image_archive(layer, config, tag="spider-test/nocommand:latest")(stream)
    with open(archive_path, "rb") as stream:
        (image,) = docker_client.images.load(stream)
    job = run_job(
        docker_client,
        image_id=image.id,
        case="1_t1",
        input_image=input_image,
        phase=test_phase,
        job_dir=tmp_path / "job",
    )
    assert job.status is JobStatus.NOT_STARTED and job.status.reported is JobStatus.FAILED
    assert "no ENTRYPOINT or CMD" in job.reason
    assert job.exit_code is None
    assert "no ENTRYPOINT or CMD" in job.log_path.read_text()


def test_a_chatty_log_is_kept_cut_to_its_tail(docker_client, algorithm_image, input_image, test_phase, tmp_path):
    job = run_job(docker_client, image_id=algorithm_image("chatty"), case="1_t1", input_image=input_image,
                  phase=test_phase, job_dir=tmp_path / "job")
    assert job.status is JobStatus.SUCCEEDED, job.reason
    data = job.log_path.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header.startswith(b"[spider] log cut to its last 262144 bytes of ")
    assert len(rest) == 262144
    assert rest.endswith(b"line 19999 " + b"x" * 90 + b"\nLAST LINE\n")
    assert b"line 00000 " not in rest


def test_an_output_bomb_is_refused_without_inflating_it(docker_client, algorithm_image, input_image, test_phase,
                                                        tmp_path):
    """The bomb's 1 GB is never allocated: checking its output again in a fresh process peaks far below it.
    (VmHWM, this program's own high-water mark: ru_maxrss would also count the forking parent's memory.)"""
    job = run_job(docker_client, image_id=algorithm_image("outputbomb"), case="1_t1", input_image=input_image,
                  phase=test_phase, job_dir=tmp_path / "job")
    assert job.status is JobStatus.INVALID_OUTPUT, job.reason
    bomb = tmp_path / "job" / "output" / "images" / "sagittal-spine-mr-segmentation" / "segmentation.mha"
    assert bomb.stat().st_size < 2**20
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from challenge import images\n"
        "from evaluation.runner.output_check import check_output\n"
        "expected = images.read_header(Path(sys.argv[2]))\n"
        "verdict = check_output(Path(sys.argv[1]), expected)\n"
        "peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
        "print(verdict.status.value, peak)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "job" / "output"), str(input_image)],
                          capture_output=True, text=True, timeout=120, check=True)
    status, peak_kib = done.stdout.split()
    assert status == JobStatus.INVALID_OUTPUT.value
    assert int(peak_kib) * 1024 < 400 * 2**20, f"checking the bomb peaked at {int(peak_kib) / 1024:.0f} MiB"
