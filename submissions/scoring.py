"""The production score task: a finished job's stored output against the case's reference mask."""

from __future__ import annotations

from pathlib import Path

from challenge.rules import RULES_VERSION
from challenge.statuses import JobStatus
from evaluation.guard import CaseTask, Scorer, score_guarded
from evaluation.prediction import Prediction
from evaluation.score import score_prediction
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


def score_job(spec: ScoreSpec, *, scorer: Scorer = score_prediction) -> CaseScore:
    """The case's long result rows under the current rules; a failed or invalid run is scored by the
    missing-case rule with the run's reason. The case is scored in a process of its own under the
    phase's scoring time limit (evaluation.guard): scoring that takes longer or dies makes the case
    invalid. Raises only when the reference cannot be read. `scorer` replaces score_prediction in
    that process (for tests)."""
    task = CaseTask(spec.case, Path(spec.reference_mask), prediction_of(spec), SCORING_PROFILE)
    result = score_guarded(task, time_limit_s=spec.scoring_time_limit_seconds, scorer=scorer)
    return CaseScore(rules_version=RULES_VERSION, outcome=result.outcome, rows=result.rows)
