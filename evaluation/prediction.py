"""A case's prediction as scoring sees it: the verdict on its file, and reading it for scoring."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from challenge import images
from challenge.errors import DataError
from challenge.geometry import Geometry
from challenge.statuses import CaseStatus
from evaluation.errors import InvalidPredictionError


@dataclass(frozen=True)
class Prediction:
    """What is known about a case's prediction before it is scored.

    `status` SCORED: `path` is a file to score; `checked` says the output check has already
    validated it (the registry's runs), so it is only read. MISSING or INVALID: scored by the
    missing-case rule with `reason`.
    """

    status: CaseStatus
    reason: str = ""
    path: Path | None = None
    checked: bool = False

    @classmethod
    def file(cls, path: Path, *, checked: bool = False) -> Prediction:
        return cls(CaseStatus.SCORED, "", Path(path), checked)

    @classmethod
    def missing(cls, reason: str) -> Prediction:
        return cls(CaseStatus.MISSING, reason)

    @classmethod
    def invalid(cls, reason: str, path: Path | None = None) -> Prediction:
        return cls(CaseStatus.INVALID, reason, path)


def read_prediction(path: Path, expected: Geometry) -> np.ndarray:
    """The prediction's labels as a (z, y, x) uint8 array, after every contract check.

    Raises InvalidPredictionError with a reason a participant can act on when the file is a
    link or not a regular file, or when challenge.images.read_labels refuses it: voxels that
    would come from another file than this one (challenge.images.check_self_contained, checked
    before anything else is read), unreadable, not a 3D single-component integer image, on
    another voxel grid than `expected`, or values outside the SPIDER label map.
    """
    path = Path(path)
    _require_regular_file(path)
    try:
        return images.read_labels(path, what="segmentation", expected=expected, self_contained=True).array
    except DataError as error:
        raise InvalidPredictionError(str(error)) from None


def read_checked_prediction(path: Path) -> np.ndarray:
    """The voxels of a prediction the output check has already accepted (no check is repeated;
    scoring still refuses a shape or a label that does not fit the reference)."""
    path = Path(path)
    _require_regular_file(path)
    try:
        return sitk.GetArrayFromImage(images.read_image(path, what="segmentation", self_contained=True))
    except DataError as error:
        raise InvalidPredictionError(str(error)) from None


def _require_regular_file(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise InvalidPredictionError(f"no prediction file {path.name}") from None
    if stat.S_ISLNK(mode):
        raise InvalidPredictionError(f"{path.name} is a symbolic link; write a regular file")
    if not stat.S_ISREG(mode):
        raise InvalidPredictionError(f"{path.name} is not a regular file")
