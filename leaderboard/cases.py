"""A submission's worst cases and a mid-sagittal picture of each with reference and prediction outlines."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk

from challenge import images, labels
from challenge.geometry import Geometry
from challenge.release import SERIES_SUFFIX, image_path, mask_path
from leaderboard import plots
from submissions.records import JobRecord, SubmissionResults

PredictionLocator = Callable[[int, str], "Path | None"]
"""(submission id, case) -> the stored prediction file, or None where there is none."""


def predictions_in_folder(root: Path) -> PredictionLocator:
    """Predictions stored as `<root>/<submission id>/<case>.mha`."""
    root = Path(root)

    def locate(submission_id: int, case: str) -> Path | None:
        path = root / str(submission_id) / f"{case}{SERIES_SUFFIX}"
        return path if path.is_file() else None

    return locate


@dataclass(frozen=True)
class ReferenceFiles:
    """A case's image and reference mask in the test set."""

    image: Path
    mask: Path


@dataclass(frozen=True)
class CaseFiles:
    """Where a case's files are: the hidden test set folder, and a locator of stored predictions
    for jobs whose record names no output (either may be absent)."""

    test_set: Path | None = None
    predictions: PredictionLocator | None = None

    def reference(self, case: str) -> ReferenceFiles | None:
        """The case's image and mask, None without a test set or where it lacks either file."""
        if self.test_set is None:
            return None
        found = ReferenceFiles(image_path(self.test_set, case), mask_path(self.test_set, case))
        return found if found.image.is_file() and found.mask.is_file() else None

    def prediction(self, submission_id: int, case: str, job: JobRecord | None) -> Path | None:
        """The prediction the job stored (none for a failed job), else the one the locator finds."""
        if job is not None and job.failed:
            return None
        if job is not None and job.output_path and Path(job.output_path).is_file():
            return Path(job.output_path)
        return self.predictions(submission_id, case) if self.predictions is not None else None


@dataclass(frozen=True)
class WorstCase:
    """A case and its value of the metric that picked it (None = no value: counts as worst)."""

    case: str
    value: float | None
    metric: str


def worst_cases(submission: SubmissionResults, cases: Sequence[str], *, metric: str, higher_is_better: bool,
                count: int = 3) -> list[WorstCase]:
    """The `count` cases with the worst mean of `metric` over the scored structure groups.

    A case without any value (a failed job) comes first; ties keep case order.
    """
    per_case: dict[str, list[float]] = {case: [] for case in cases}
    for row in submission.rows:
        if row.is_group and row.metric == metric and row.has_value and row.case in per_case:
            per_case[row.case].append(float(row.value))
    scored = []
    for case in cases:
        values = per_case[case]
        value = float(np.mean(values)) if values else None
        key = -math.inf if value is None else round(value if higher_is_better else -value, 10)
        scored.append((key, case, value))
    scored.sort(key=lambda item: item[0])
    return [WorstCase(case, value, metric) for _, case, value in scored[:count]]


@dataclass(frozen=True)
class SagittalSlice:
    """A 2D sagittal slice, superior at the top and anterior on the left."""

    image: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray | None
    aspect: float
    index: int


def _oriented_array(image: sitk.Image) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Voxels as an array indexed (S, P, L) with its spacing in that order, whatever the stored direction."""
    oriented = sitk.DICOMOrient(image, "LPS")
    return sitk.GetArrayFromImage(oriented), Geometry.of(oriented).spacing_zyx_mm


def mid_sagittal(image: sitk.Image, reference: sitk.Image, prediction: sitk.Image | None) -> SagittalSlice:
    """The sagittal slice through the spinal canal (most canal voxels in the reference).

    Falls back to the slice with most reference foreground, then to the middle slice.
    `prediction` must be on the image's grid (it is skipped otherwise).
    """
    image_array, spacing = _oriented_array(image)
    reference_array, _ = _oriented_array(reference)
    prediction_array = None
    if prediction is not None and not Geometry.of(image).differences(Geometry.of(prediction)):
        prediction_array, _ = _oriented_array(prediction)
    # Array axes are (S, P, L): a sagittal slice fixes the last axis.
    canal = (reference_array == labels.SPINAL_CANAL).sum(axis=(0, 1))
    foreground = (reference_array > 0).sum(axis=(0, 1))
    if canal.any():
        index = int(np.argmax(canal))
    elif foreground.any():
        index = int(np.argmax(foreground))
    else:
        index = image_array.shape[2] // 2

    def take(array: np.ndarray) -> np.ndarray:
        return array[::-1, :, index]  # superior to the top

    return SagittalSlice(
        image=take(image_array).astype(float),
        reference=take(reference_array),
        prediction=None if prediction_array is None else take(prediction_array),
        aspect=spacing[0] / spacing[1],
        index=index,
    )


def case_picture(image_file: Path, reference_file: Path, prediction_file: Path | None, out: Path, *,
                 title: str) -> Path:
    """Write a PNG of the case's mid-sagittal slice with reference (green) and prediction (red) outlines."""
    image = images.read_image(image_file)
    reference = images.read_image(reference_file, what="reference mask")
    # A prediction is a file a container wrote: read from its own bytes only, as scoring reads it.
    prediction = (images.read_image(prediction_file, what="segmentation", self_contained=True)
                  if prediction_file is not None else None)
    piece = mid_sagittal(image, reference, prediction)
    return plots.slice_with_contours(piece.image, piece.reference, piece.prediction, out, aspect=piece.aspect,
                                     title=title)
