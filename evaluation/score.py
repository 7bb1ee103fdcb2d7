"""Scoring a case from arrays, and a folder of predictions against a folder of reference masks."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
from tqdm import tqdm

from challenge import images, labels
from challenge.errors import MissingFileError, UnknownLabelError
from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S
from challenge.release import SERIES_SUFFIX, case_name
from challenge.results import ScoreRow
from challenge.rules import EdgeCase
from challenge.statuses import CaseStatus, RowStatus
from evaluation.case_scores import CaseScorer
from evaluation.errors import EvaluationError, InvalidPredictionError
from evaluation.prediction import Prediction, read_checked_prediction, read_prediction
from evaluation.profiles import get_profile, metric_spec
from evaluation.report import CaseOutcome, ScoreReport, build_report, write_report

if TYPE_CHECKING:
    from evaluation.guard import Scorer

__all__ = ["CaseResult", "ScoreReport", "read_reference", "score_case", "score_folders", "score_prediction"]


def _as_labels(array: np.ndarray, *, what: str) -> np.ndarray:
    """`array` as uint8 SPIDER labels, without a copy when it already is uint8 (the label map itself
    is checked from the census, which scoring computes anyway)."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"{what} must be a 3D array, found {array.ndim}D")
    try:
        return images.as_uint8_labels(array, what=what)
    except UnknownLabelError as error:
        raise _label_error(what, str(error)) from None


def _label_error(what: str, message: str) -> Exception:
    return InvalidPredictionError(message) if what == "prediction" else UnknownLabelError(message)


def _raise_unknown(what: str, unknown: list[int]) -> None:
    raise _label_error(what, f"{what} holds values that are not SPIDER labels: {labels.unknown_values_text(unknown)}")


def _check_values(census_values: np.ndarray, *, what: str) -> None:
    unknown = labels.unknown_values(np.flatnonzero(census_values).tolist())
    if unknown:
        _raise_unknown(what, unknown)


def score_case(
    reference: np.ndarray,
    prediction: np.ndarray | None,
    spacing_zyx_mm: tuple[float, float, float],
    *,
    profile: str = "full",
    case: str = "case",
    missing_status: RowStatus = RowStatus.MISSING,
) -> tuple[ScoreRow, ...]:
    """The rows of one case under `profile`, from (z, y, x) label arrays and their spacing in mm.

    `spacing_zyx_mm` is in array-axis order (`Geometry.spacing_zyx_mm`, the reverse of SimpleITK's
    GetSpacing()). `prediction` None scores the case by the missing-case rule: every row the
    reference calls for, with the declared worst value and `missing_status` (missing or invalid).
    Raises UnknownLabelError for a reference, InvalidPredictionError for a prediction, that holds
    values outside the SPIDER label map or differs in shape.
    """
    chosen = get_profile(profile)
    if missing_status not in (RowStatus.MISSING, RowStatus.INVALID):
        raise ValueError(f"missing_status must be missing or invalid, found {missing_status}")
    reference = _as_labels(reference, what="reference")
    if prediction is not None:
        prediction = _as_labels(prediction, what="prediction")
        if prediction.shape != reference.shape:
            raise InvalidPredictionError(
                f"prediction shape {prediction.shape} (z, y, x) differs from reference shape {reference.shape}")
    scorer = CaseScorer(reference, prediction, spacing_zyx_mm)
    raw = scorer.census.raw_joint
    _check_values(raw.sum(axis=1), what="reference")
    if prediction is not None:
        _check_values(raw.sum(axis=0), what="prediction")
    rows = chosen.build(case, scorer)
    if prediction is None:
        worst = {
            row.metric: metric_spec(row.metric).edge_value(EdgeCase.MISSING, fov_diagonal_mm=scorer.fov_diagonal_mm)
            for row in rows
        }
        rows = [dataclasses.replace(row, value=worst[row.metric], status=missing_status) for row in rows]
    return tuple(rows)


# ---- one case from files ------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """How a case entered the results, and its rows."""

    outcome: CaseOutcome
    rows: tuple[ScoreRow, ...]


def read_reference(path: Path) -> images.LabelImage:
    """A reference mask with every check of challenge.images.read_labels (UnreadableFileError,
    UnknownLabelError); messages name it 'reference mask <file>'."""
    path = Path(path)
    return images.read_labels(path, what="reference mask", shown_as=f"reference mask {path.name}")


def score_prediction(case: str, reference: images.LabelImage, prediction: Prediction, *,
                     profile: str) -> CaseResult:
    """The one way a case is scored from files: every entry point (folders, the registry) states what
    it knows about the prediction as a `Prediction` and gets the case's outcome and rows."""
    status, reason, array = prediction.status, prediction.reason, None
    if status is CaseStatus.SCORED:
        if prediction.path is None:
            raise ValueError("a prediction to score needs a path")
        try:
            array = (read_checked_prediction(prediction.path) if prediction.checked
                     else read_prediction(prediction.path, reference.geometry))
        except InvalidPredictionError as error:
            status, reason = CaseStatus.INVALID, error.reason
    spacing = reference.geometry.spacing_zyx_mm
    try:
        rows = score_case(reference.array, array, spacing, profile=profile, case=case,
                          missing_status=status.row_status if status is not CaseStatus.SCORED else RowStatus.MISSING)
    except InvalidPredictionError as error:
        status, reason = CaseStatus.INVALID, error.reason
        rows = score_case(reference.array, None, spacing, profile=profile, case=case, missing_status=RowStatus.INVALID)
    return CaseResult(CaseOutcome(case, status, reason), rows)


# ---- folders ------------------------------------------------------------------------------


def _prediction_of(case: str, path: Path | None, failure_reason: str | None) -> Prediction:
    """A failure reason marks the case missing (no file) or invalid (a file exists)."""
    if failure_reason is not None:
        return Prediction.missing(failure_reason) if path is None else Prediction.invalid(failure_reason, path)
    if path is None:
        return Prediction.missing(f"no prediction file {case}{SERIES_SUFFIX}")
    return Prediction.file(path)


def _case_names(reference_dir: Path) -> list[Path]:
    if not reference_dir.is_dir():
        raise MissingFileError(f"reference folder {reference_dir} does not exist or is not a folder")
    found = sorted(p for p in reference_dir.iterdir() if case_name(p.name) is not None)
    if not found:
        raise MissingFileError(f"no reference masks (*{SERIES_SUFFIX}) in {reference_dir}")
    return found


def _normalized_reasons(failure_reasons: Mapping[str, str] | None, cases: set[str]) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for key, reason in (failure_reasons or {}).items():
        case = case_name(key) or key
        if not isinstance(reason, str) or not reason.strip():
            raise EvaluationError(f"failure reason for case {case!r} must be a non-empty string, found {reason!r}")
        reasons[case] = reason.strip()
    unknown = sorted(set(reasons) - cases)
    if unknown:
        raise EvaluationError(f"failure reasons name cases that have no reference mask: {unknown}")
    return reasons


def score_folders(
    reference_dir: Path,
    predictions_dir: Path,
    out_dir: Path,
    *,
    profile: str = "full",
    workers: int = 1,
    progress: bool = True,
    failure_reasons: Mapping[str, str] | None = None,
    scoring_time_limit_s: float = DEFAULT_SCORING_TIME_LIMIT_S,
    scorer: Scorer = score_prediction,
) -> ScoreReport:
    """Score every reference mask `<case>.mha` against `predictions_dir/<case>.mha`.

    A case without a prediction file is scored by the missing-case rule (reason recorded; a
    reason in `failure_reasons`, keyed by case name, replaces the generic one and also marks a
    prediction that exists as invalid). A prediction that breaks the output contract is scored
    the same way with its reason. Each case is scored in a process of its own (`workers` at a
    time) within `scoring_time_limit_s` seconds: a case whose scoring runs longer or dies is
    invalid (evaluation.guard; `scorer` replaces score_prediction there, for tests). Writes
    out_dir/metrics.json and out_dir/cases.csv.
    """
    from evaluation.guard import CaseTask, check_time_limit, score_cases  # the guard builds on this module

    reference_dir, predictions_dir, out_dir = Path(reference_dir), Path(predictions_dir), Path(out_dir)
    get_profile(profile)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EvaluationError(f"workers must be a positive integer, found {workers!r}")
    check_time_limit(scoring_time_limit_s)
    references = _case_names(reference_dir)
    if not predictions_dir.is_dir():
        raise MissingFileError(f"predictions folder {predictions_dir} does not exist or is not a folder")
    cases = {case_name(path.name) or path.name: path for path in references}
    reasons = _normalized_reasons(failure_reasons, set(cases))
    predictions = {p.name: p for p in predictions_dir.iterdir() if p.name.endswith(SERIES_SUFFIX)}
    unmatched = sorted(set(predictions) - {f"{case}{SERIES_SUFFIX}" for case in cases})
    tasks = [CaseTask(case, path, _prediction_of(case, predictions.get(f"{case}{SERIES_SUFFIX}"), reasons.get(case)),
                      profile)
             for case, path in sorted(cases.items())]

    with tqdm(total=len(tasks), desc="scoring", unit="case", disable=not progress, file=sys.stderr) as bar:
        results = score_cases(tasks, time_limit_s=scoring_time_limit_s, workers=min(workers, len(tasks)),
                              scorer=scorer, on_result=lambda _result: bar.update(1))

    report = build_report(
        profile,
        [result.outcome for result in results],
        [row for result in results for row in result.rows],
        unmatched_predictions=unmatched,
    )
    write_report(report, out_dir)
    return report
