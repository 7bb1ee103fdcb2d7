"""Scoring a case from arrays, and a folder of predictions against a folder of reference masks."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from challenge import labels
from challenge.errors import MissingFileError, UnknownLabelError, UnreadableFileError
from challenge.geometry import DIRECTION_TOLERANCE, Geometry
from challenge.rules import EdgeCase
from evaluation.case_scores import CaseScorer
from evaluation.errors import EvaluationError, InvalidPredictionError
from evaluation.prediction import read_prediction
from evaluation.profiles import get_profile, metric_spec
from evaluation.report import CaseOutcome, ScoreReport, build_report, write_report
from evaluation.rows import CaseStatus, RowStatus, ScoreRow

__all__ = ["ScoreReport", "score_case", "score_folders"]

SUFFIX = ".mha"


def _as_labels(array: np.ndarray, *, what: str) -> np.ndarray:
    """`array` as uint8 SPIDER labels, without a copy when it already is uint8."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"{what} must be a 3D array, found {array.ndim}D")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise _label_error(what, f"{what} must hold integer labels, found dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 255:
        bad = labels.unknown_values(np.unique(array[(array < 0) | (array > 255)]).tolist())
        _raise_unknown(what, bad)
    return array.astype(np.uint8)


def _label_error(what: str, message: str) -> Exception:
    return InvalidPredictionError(message) if what == "prediction" else UnknownLabelError(message)


def _raise_unknown(what: str, unknown: list[int]) -> None:
    shown = ", ".join(str(v) for v in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
    raise _label_error(what, f"{what} holds values that are not SPIDER labels: {shown} "
                             "(expected 0, 1-25, 100, 101-125, 201-225)")


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
        worst = {row.metric: metric_spec(row.metric).edge_value(EdgeCase.MISSING, fov_diagonal_mm=scorer.fov_diagonal_mm)
                 for row in rows}
        rows = [dataclasses.replace(row, value=worst[row.metric], status=missing_status) for row in rows]
    return tuple(rows)


# ---- folders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    case: str
    reference: Path
    prediction: Path | None
    failure_reason: str | None
    profile: str


def _read_reference(path: Path) -> tuple[np.ndarray, Geometry]:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise UnreadableFileError(f"reference mask {path} cannot be read: {str(error).strip().splitlines()[-1]}") from error
    geometry = Geometry.of(image)
    direction = geometry.direction_matrix
    if np.max(np.abs(direction @ direction.T - np.eye(3))) > DIRECTION_TOLERANCE:
        raise UnreadableFileError(
            f"reference mask {path.name} has a direction matrix that is not orthonormal "
            f"({geometry.direction}); surface distances need a rotation or flip of the voxel axes")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise UnreadableFileError(f"reference mask {path.name} has {image.GetNumberOfComponentsPerPixel()} "
                                  "components per voxel, expected 1")
    array = sitk.GetArrayFromImage(image)
    try:
        array = _as_labels(array, what="reference")
    except UnknownLabelError as error:
        raise UnknownLabelError(f"reference mask {path.name}: {error}") from None
    return array, geometry


def _score_task(task: _Task) -> tuple[CaseOutcome, tuple[ScoreRow, ...]]:
    reference, geometry = _read_reference(task.reference)
    prediction = None
    if task.failure_reason is not None:
        status = CaseStatus.MISSING if task.prediction is None else CaseStatus.INVALID
        reason = task.failure_reason
    elif task.prediction is None:
        status, reason = CaseStatus.MISSING, f"no prediction file {task.case}{SUFFIX}"
    else:
        try:
            prediction = read_prediction(task.prediction, geometry)
            status, reason = CaseStatus.SCORED, ""
        except InvalidPredictionError as error:
            status, reason = CaseStatus.INVALID, error.reason
    try:
        rows = score_case(reference, prediction, geometry.spacing_zyx_mm, profile=task.profile, case=task.case,
                          missing_status=RowStatus.INVALID if status is CaseStatus.INVALID else RowStatus.MISSING)
    except UnknownLabelError as error:
        raise UnknownLabelError(f"reference mask {task.reference.name}: {error}") from None
    except InvalidPredictionError as error:
        status, reason = CaseStatus.INVALID, error.reason
        rows = score_case(reference, None, geometry.spacing_zyx_mm, profile=task.profile, case=task.case,
                          missing_status=RowStatus.INVALID)
    return CaseOutcome(task.case, status, reason), rows


def _case_names(reference_dir: Path) -> list[Path]:
    if not reference_dir.is_dir():
        raise MissingFileError(f"reference folder {reference_dir} does not exist or is not a folder")
    found = sorted(p for p in reference_dir.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    if not found:
        raise MissingFileError(f"no reference masks (*{SUFFIX}) in {reference_dir}")
    return found


def _normalized_reasons(failure_reasons: Mapping[str, str] | None, cases: set[str]) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for key, reason in (failure_reasons or {}).items():
        case = key[: -len(SUFFIX)] if key.endswith(SUFFIX) else key
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
) -> ScoreReport:
    """Score every reference mask `<case>.mha` against `predictions_dir/<case>.mha`.

    A case without a prediction file is scored by the missing-case rule (reason recorded; a
    reason in `failure_reasons`, keyed by case name, replaces the generic one and also marks a
    prediction that exists as invalid). A prediction that breaks the output contract is scored
    the same way with its reason. Writes out_dir/metrics.json and out_dir/cases.csv.
    """
    reference_dir, predictions_dir, out_dir = Path(reference_dir), Path(predictions_dir), Path(out_dir)
    get_profile(profile)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EvaluationError(f"workers must be a positive integer, found {workers!r}")
    references = _case_names(reference_dir)
    if not predictions_dir.is_dir():
        raise MissingFileError(f"predictions folder {predictions_dir} does not exist or is not a folder")
    cases = {path.name[: -len(SUFFIX)]: path for path in references}
    reasons = _normalized_reasons(failure_reasons, set(cases))
    predictions = {p.name: p for p in predictions_dir.iterdir() if p.name.endswith(SUFFIX)}
    unmatched = sorted(set(predictions) - {f"{case}{SUFFIX}" for case in cases})
    tasks = [_Task(case, path, predictions.get(f"{case}{SUFFIX}"), reasons.get(case), profile)
             for case, path in sorted(cases.items())]

    results: list[tuple[CaseOutcome, tuple[ScoreRow, ...]]] = []
    with tqdm(total=len(tasks), desc="scoring", unit="case", disable=not progress, file=sys.stderr) as bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                results.append(_score_task(task))
                bar.update(1)
        else:
            context = multiprocessing.get_context("forkserver")
            with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
                futures = [pool.submit(_score_task, task) for task in tasks]
                for future in concurrent.futures.as_completed(futures):
                    results.append(future.result())
                    bar.update(1)

    report = build_report(
        profile,
        [outcome for outcome, _ in results],
        [row for _, rows in results for row in rows],
        unmatched_predictions=unmatched,
    )
    write_report(report, out_dir)
    return report
