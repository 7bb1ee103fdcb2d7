"""Test doubles for the engine: a fast job function and an image pinner without Docker.

Imported by name (`submissions_fakes`) from this folder, which the tests put on sys.path, so
that spawned pool workers, engine subprocesses and Ray workers can unpickle these functions.
Never used by production code.

The fake job writes a prediction derived from the case's reference mask (the input image's
sibling in masks/): a perfect copy, except cases of patient 5 (an empty prediction) and
patient 7 (the job "fails" with exit code 3, no output). Each execution appends
'start|end <job> <attempt> <pid> <node>' to the ledger file named by $SUBMISSIONS_FAKE_LEDGER, and
sleeps $SUBMISSIONS_FAKE_SECONDS first. `score_job_hanging_on_one_case` is the production score
task whose scoring hangs on one case.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from submissions.errors import IntakeError
from submissions.images import ImageLimits, PinnedImage
from submissions.jobs import CaseScore, JobOutcome, JobSpec, ScoreSpec
from submissions.layout import image_archive_path

LEDGER_ENV = "SUBMISSIONS_FAKE_LEDGER"
SECONDS_ENV = "SUBMISSIONS_FAKE_SECONDS"
NODE_ENV = "SUBMISSIONS_FAKE_NODE"  # set per Ray node in the Ray test, to see where jobs ran
TEST_RULES_VERSION = "99.0.0-test"


def _ledger(event: str, spec: JobSpec) -> None:
    path = os.environ.get(LEDGER_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            node = os.environ.get(NODE_ENV, "-")
            stream.write(f"{event} {spec.job_id} {spec.attempt} {os.getpid()} {node}\n")


def copy_reference_job(spec: JobSpec) -> JobOutcome:
    _ledger("start", spec)
    began = time.monotonic()
    time.sleep(float(os.environ.get(SECONDS_ENV, "0")))
    job_dir = Path(spec.job_dir)
    output_dir = job_dir / "output"
    output_dir.mkdir(parents=True, exist_ok=False)  # a fresh folder per attempt, like the runner's
    log_path = job_dir / "log.txt"
    patient = int(spec.case.split("_")[0])
    if patient == 7:
        log_path.write_text("fake: giving up\n", encoding="utf-8")
        _ledger("end", spec)
        return JobOutcome("failed", "exited with code 3; last log line: fake: giving up", 3,
                          time.monotonic() - began, str(log_path), None)
    input_image = Path(spec.input_image)
    reference = sitk.ReadImage(str(input_image.parent.parent / "masks" / input_image.name))
    if patient == 5:
        array = np.zeros_like(sitk.GetArrayViewFromImage(reference))
        prediction = sitk.GetImageFromArray(array)
        prediction.CopyInformation(reference)
    else:
        prediction = reference
    output = output_dir / f"{spec.case}.mha"
    sitk.WriteImage(prediction, str(output), True)
    log_path.write_text("fake: wrote the prediction\n", encoding="utf-8")
    _ledger("end", spec)
    return JobOutcome("succeeded", "", 0, time.monotonic() - began, str(log_path), str(output))


def must_not_run(spec: JobSpec) -> JobOutcome:
    raise AssertionError(f"job {spec.job_id} was run, but this engine must only score")


def raising_job(spec: JobSpec) -> JobOutcome:
    _ledger("start", spec)
    raise RuntimeError("no Docker engine on this node (fake)")


def rescore_with_test_version(spec: ScoreSpec) -> CaseScore:
    """The production scorer, labelling its rows with another rules version."""
    from submissions.scoring import score_job

    return dataclasses.replace(score_job(spec), rules_version=TEST_RULES_VERSION)


HANGING_CASE = "1_t2"
"""The case whose scoring `score_job_hanging_on_one_case` makes hang."""


def _scorer_hanging_on_one_case(case, reference, prediction, *, profile):
    from evaluation.score import score_prediction

    if case == HANGING_CASE:
        time.sleep(3600)
    return score_prediction(case, reference, prediction, profile=profile)


def score_job_hanging_on_one_case(spec: ScoreSpec) -> CaseScore:
    """The production score task, with a scorer that hangs on HANGING_CASE (in the guard's child)."""
    from submissions.scoring import score_job

    return score_job(spec, scorer=_scorer_hanging_on_one_case)


def fake_pinner(reference: str, work_dir: Path, limits: ImageLimits) -> PinnedImage:
    """Pins a file by the SHA-256 of its bytes (a tag by that of its name); archives a copy. A file larger
    than the phase's image limit is refused, as docker_pinner refuses it."""
    source = Path(reference)
    data = source.read_bytes() if source.is_file() else reference.encode()
    if len(data) > limits.tarball_bytes:
        raise IntakeError(f"{source}: the image tarball is {len(data)} bytes, larger than the phase's image limit of "
                          f"{limits.tarball_bytes} bytes")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    archive = image_archive_path(work_dir, digest)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(data)
    return PinnedImage(digest, archive)


def read_ledger(path: Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        event, job, attempt, pid, _node = line.split()
        rows.append((event, int(job), int(attempt), int(pid)))
    return rows


def ledger_nodes(path: Path) -> set[str]:
    return {line.split()[4] for line in path.read_text(encoding="utf-8").splitlines()}
