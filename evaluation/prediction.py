"""Reading a prediction and checking it against the output contract before it is scored."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import fastremap
import numpy as np
import SimpleITK as sitk

from challenge import labels
from challenge.geometry import Geometry
from evaluation.errors import InvalidPredictionError

_INTEGER_PIXEL_TYPES = {
    sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16,
    sitk.sitkUInt32, sitk.sitkInt32, sitk.sitkUInt64, sitk.sitkInt64,
}


def read_prediction(path: Path, expected: Geometry) -> np.ndarray:
    """The prediction's labels as a (z, y, x) uint8 array, after every contract check.

    Raises InvalidPredictionError with a reason a participant can act on when the file is a
    link or not a regular file, unreadable, not a 3D single-component integer image, on
    another voxel grid than `expected` (tolerances in challenge.geometry), or holds values
    outside the SPIDER label map.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise InvalidPredictionError(f"no prediction file {path.name}") from None
    if stat.S_ISLNK(mode):
        raise InvalidPredictionError(f"{path.name} is a symbolic link; write a regular file")
    if not stat.S_ISREG(mode):
        raise InvalidPredictionError(f"{path.name} is not a regular file")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown error"
        raise InvalidPredictionError(f"{path.name} cannot be read as an image: {first_line}") from error
    if image.GetDimension() != 3:
        raise InvalidPredictionError(f"{path.name}: expected a 3D image, found {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidPredictionError(
            f"{path.name}: expected one value per voxel, found {image.GetNumberOfComponentsPerPixel()}"
        )
    if image.GetPixelID() not in _INTEGER_PIXEL_TYPES:
        raise InvalidPredictionError(
            f"{path.name}: expected an integer label image (e.g. uint8), found pixel type "
            f"{image.GetPixelIDTypeAsString()}"
        )
    differences = expected.differences(Geometry.of(image))
    if differences:
        raise InvalidPredictionError(
            f"{path.name} is not on the input image's voxel grid: " + "; ".join(differences)
        )
    array = sitk.GetArrayViewFromImage(image)
    present = fastremap.unique(array)
    unknown = labels.unknown_values(present.tolist())
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InvalidPredictionError(
            f"{path.name} holds values that are not SPIDER labels: {shown} "
            "(expected 0, 1-25, 100, 101-125, 201-225)"
        )
    return array.astype(np.uint8, copy=True)
