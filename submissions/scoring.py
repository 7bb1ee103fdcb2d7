"""The production score task: a finished job's stored output against the case's reference mask."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from challenge.errors import UnreadableFileError
from challenge.geometry import Geometry
from challenge.rules import RULES_VERSION
from evaluation.errors import InvalidPredictionError
from evaluation.prediction import read_prediction
from evaluation.rows import CaseStatus, RowStatus
from evaluation.runner.status import JobStatus
from evaluation.score import score_case
from submissions.jobs import CaseScore, ResultRow, ScoreSpec

SCORING_PROFILE = "full"
"""The evaluation.profiles profile every registry result is computed with."""

# Runs that produced a file the contract rejects; every other unsuccessful run has no prediction.
_INVALID_RUN_STATUSES = frozenset({JobStatus.INVALID_OUTPUT.value, JobStatus.OUTPUT_TOO_LARGE.value})


def _read_reference(path: Path):
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        lines = str(error).strip().splitlines()
        raise UnreadableFileError(f"reference mask {path} cannot be read: {lines[-1] if lines else error}") from error
    return sitk.GetArrayFromImage(image), Geometry.of(image)


def score_job(spec: ScoreSpec) -> CaseScore:
    """The case's long result rows under the current rules; a failed or invalid run is scored by the
    missing-case rule with the run's reason. Raises only when the reference cannot be read."""
    reference, geometry = _read_reference(Path(spec.reference_mask))
    prediction = None
    if spec.job_status == JobStatus.SUCCEEDED.value and spec.output_path:
        try:
            prediction = read_prediction(Path(spec.output_path), geometry)
            status, reason = CaseStatus.SCORED, ""
        except InvalidPredictionError as error:
            status, reason = CaseStatus.INVALID, error.reason
    elif spec.job_status in _INVALID_RUN_STATUSES:
        status, reason = CaseStatus.INVALID, spec.reason or f"the job ended {spec.job_status}"
    else:
        status, reason = CaseStatus.MISSING, spec.reason or f"the job ended {spec.job_status} without a prediction"
    missing_status = RowStatus.INVALID if status is CaseStatus.INVALID else RowStatus.MISSING
    try:
        rows = score_case(reference, prediction, geometry.spacing_zyx_mm, profile=SCORING_PROFILE, case=spec.case,
                          missing_status=missing_status)
    except InvalidPredictionError as error:
        status, reason = CaseStatus.INVALID, error.reason
        rows = score_case(reference, None, geometry.spacing_zyx_mm, profile=SCORING_PROFILE, case=spec.case,
                          missing_status=RowStatus.INVALID)
    return CaseScore(
        rules_version=RULES_VERSION,
        rows=tuple(
            ResultRow(r.case, r.structure, r.level, r.metric, float(r.value), r.status.value, r.label)
            for r in rows
        ),
        case_status=status.value,
        case_reason=reason,
    )
