"""Reading image headers, images and SPIDER label images: one set of checks, one error style.

Every caller (the release reader, the runner, scoring, the baseline and its container) reads
through here. Errors are challenge.errors types whose message starts with the file's name and
says what was expected and what was found, e.g.
``12_t2.mha: expected an integer label image (e.g. uint8), found pixel type 32-bit float``.
Only numpy and SimpleITK are needed (this module also runs inside the reference container).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from challenge import labels
from challenge.errors import GeometryMismatchError, UnknownLabelError, UnreadableFileError
from challenge.geometry import DIRECTION_TOLERANCE, Geometry

_INTEGER_PIXEL_TYPES = frozenset({
    sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt16,
    sitk.sitkUInt32, sitk.sitkInt32, sitk.sitkUInt64, sitk.sitkInt64,
})


@dataclass(frozen=True)
class LabelImage:
    """A label image as read and checked: (z, y, x) uint8 SPIDER values and the voxel grid."""

    array: np.ndarray
    geometry: Geometry

    def voxel_counts(self) -> dict[int, int]:
        """Voxels per foreground label present, ascending by label."""
        counts = np.bincount(self.array.ravel(), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts) if v != labels.BACKGROUND}


def read_header(path: Path | str, *, shown_as: str | None = None) -> Geometry:
    """The voxel grid of an image file from its header, without reading voxels."""
    return Geometry.of(_header_reader(Path(path), shown_as or Path(path).name))


def _header_reader(path: Path, name: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise UnreadableFileError(f"{name}: cannot read the image header ({_last_line(error)})") from error
    return reader


def read_image(path: Path | str, *, what: str = "image", shown_as: str | None = None) -> sitk.Image:
    """A 3D image with one value per voxel (messages name the file `shown_as`, default its name)."""
    path = Path(path)
    name = shown_as or path.name
    reader = _header_reader(path, name)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise UnreadableFileError(f"{name}: cannot read the {what}'s voxels ({_last_line(error)})") from error
    if image.GetDimension() != 3:
        raise UnreadableFileError(f"{name}: expected a 3D {what}, found {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise UnreadableFileError(
            f"{name}: expected one value per voxel, found {image.GetNumberOfComponentsPerPixel()}")
    return image


def read_labels(path: Path | str, *, what: str = "mask", expected: Geometry | None = None,
                expected_what: str = "the input image", shown_as: str | None = None) -> LabelImage:
    """A SPIDER label image, after every check that scoring relies on.

    Checks, in order: readable, 3D, one value per voxel, an integer pixel type, a direction
    matrix that is a rotation or flip of the voxel axes (surface distances need one), the voxel
    grid of `expected` (tolerances in challenge.geometry; `expected_what` names it), and values
    in the SPIDER label map. Messages name the file `shown_as` (default: its file name).
    Raises UnreadableFileError, GeometryMismatchError or UnknownLabelError.
    """
    path = Path(path)
    name = shown_as or path.name
    image = read_image(path, what=what, shown_as=name)
    if image.GetPixelID() not in _INTEGER_PIXEL_TYPES:
        raise UnreadableFileError(f"{name}: expected an integer label image (e.g. uint8), found pixel type "
                                  f"{image.GetPixelIDTypeAsString()}")
    geometry = Geometry.of(image)
    direction = geometry.direction_matrix
    if np.max(np.abs(direction @ direction.T - np.eye(3))) > DIRECTION_TOLERANCE:
        raise UnreadableFileError(
            f"{name}: expected a direction matrix that rotates or flips the voxel axes (orthonormal), "
            f"found {geometry.direction}")
    if expected is not None:
        differences = expected.differences(geometry)
        if differences:
            raise GeometryMismatchError(f"{name} is not on {expected_what}'s grid: "
                                        + "; ".join(differences))
    view = sitk.GetArrayViewFromImage(image)  # valid only while `image` lives: copied below
    checked = as_label_array(view, what=name)
    return LabelImage(checked.copy() if checked is view else checked, geometry)


def as_label_array(array: np.ndarray, *, what: str) -> np.ndarray:
    """`array` as uint8 SPIDER labels (a copy unless it already is a uint8 array of valid labels).

    Raises UnknownLabelError naming `what` for values outside the label map.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise UnknownLabelError(f"{what}: expected integer labels, found dtype {array.dtype}")
    if array.dtype != np.uint8:
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or high > 255:
            outside = np.unique(array[(array < 0) | (array > 255)])
            raise UnknownLabelError(f"{what} holds values that are not SPIDER labels: "
                                    f"{labels.unknown_values_text(outside.tolist())}")
        array = array.astype(np.uint8)
    present = np.flatnonzero(np.bincount(array.ravel(), minlength=256))
    unknown = labels.unknown_values(present.tolist())
    if unknown:
        raise UnknownLabelError(f"{what} holds values that are not SPIDER labels: "
                                f"{labels.unknown_values_text(unknown)}")
    return array


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
