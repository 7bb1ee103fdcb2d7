"""The production score task: a finished job's stored output against the case's reference mask."""

from __future__ import annotations

from pathlib import Path

from challenge.rules import RULES_VERSION
from challenge.statuses import JobStatus
from evaluation.prediction import Prediction
from evaluation.score import read_reference, score_prediction
from submissions.jobs import CaseScore, ScoreSpec

SCORING_PROFILE = "full"
"""The evaluation.profiles profile every registry result is computed with."""


def prediction_of(spec: ScoreSpec) -> Prediction:
    """What the run left for scoring: a file the output check accepted (not checked again), a file
    it rejected (invalid), or nothing (missing), with the run's reason."""
    if spec.job_status is JobStatus.SUCCEEDED and spec.output_path:
        return Prediction.file(Path(spec.output_path), checked=True)
    if spec.job_status.left_invalid_output:
        return Prediction.invalid(spec.reason or f"the job ended {spec.job_status}")
    return Prediction.missing(spec.reason or f"the job ended {spec.job_status} without a prediction")


def score_job(spec: ScoreSpec) -> CaseScore:
    """The case's long result rows under the current rules; a failed or invalid run is scored by the
    missing-case rule with the run's reason. Raises only when the reference cannot be read."""
    result = score_prediction(spec.case, read_reference(Path(spec.reference_mask)), prediction_of(spec),
                              profile=SCORING_PROFILE)
    return CaseScore(rules_version=RULES_VERSION, outcome=result.outcome, rows=result.rows)
