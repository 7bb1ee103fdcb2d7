"""The one preprocessing of training and inference: reorient, resample to a spacing, normalize.

Needs only numpy and SimpleITK (it runs inside the reference container). Images go through
physical space: the direction matrix of every file is honored, so series stored LPS, PIR or
obliquely all land on the same canonical grid, and predictions go back onto the exact input grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import SimpleITK as sitk

from challenge.geometry import Geometry


@dataclass(frozen=True)
class Preprocessing:
    """How a volume becomes network input.

    `spacing_mm` is in the array order (z, y, x) of the reoriented volume; `orientation` names
    the direction each index axis (x, y, z) points to, in SimpleITK/DICOM letters.
    """

    orientation: str
    spacing_mm: tuple[float, float, float]
    intensity_percentiles: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "orientation": self.orientation,
            "spacing_mm": list(self.spacing_mm),
            "intensity_percentiles": list(self.intensity_percentiles),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> "Preprocessing":
        return cls(
            orientation=str(document["orientation"]),
            spacing_mm=_three_floats(document["spacing_mm"]),
            intensity_percentiles=_two_floats(document["intensity_percentiles"]),
        )


def _three_floats(values: Iterable[Any]) -> tuple[float, float, float]:
    """Raises ValueError unless there are exactly three."""
    a, b, c = (float(v) for v in values)
    return a, b, c


def _two_floats(values: Iterable[Any]) -> tuple[float, float]:
    """Raises ValueError unless there are exactly two."""
    low, high = (float(v) for v in values)
    return low, high


@dataclass(frozen=True)
class PreparedVolume:
    """A volume on the canonical grid: normalized intensities (z, y, x) and that grid."""

    array: np.ndarray
    grid: Geometry


def canonical_grid(geometry: Geometry, preprocessing: Preprocessing) -> Geometry:
    """The grid covering the same physical box as `geometry`, reoriented and at the target spacing.

    Reorienting permutes and flips the index axes only; the new grid starts at the outer corner
    of the first voxel, so the box is kept to within half a target voxel at the far end.
    """
    probe = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    probe.SetDirection(geometry.direction)
    # DICOMOrient on a probe with the real direction tells the permutation and the flips.
    permuted = sitk.DICOMOrient(probe, preprocessing.orientation)
    old_direction = geometry.direction_matrix
    new_direction = np.asarray(permuted.GetDirection(), dtype=float).reshape(3, 3)
    # Column j of new_direction is +/- column axis[j] of the old one.
    products = old_direction.T @ new_direction
    axis = np.argmax(np.abs(products), axis=0)
    sign = np.sign(products[axis, np.arange(3)])
    old_size = np.asarray(geometry.size, dtype=float)
    old_spacing = np.asarray(geometry.spacing_mm, dtype=float)
    extent_mm = old_size[axis] * old_spacing[axis]
    new_spacing = np.asarray(preprocessing.spacing_mm[::-1], dtype=float)  # (z, y, x) -> (x, y, z)
    new_size = np.maximum(1, np.round(extent_mm / new_spacing)).astype(int)
    # Physical position of the first voxel's outer corner along each new axis.
    origin = np.asarray(geometry.origin_mm, dtype=float)
    low_corner = origin.copy()
    for j in range(3):
        old_axis = axis[j]
        column = old_direction[:, old_axis] * old_spacing[old_axis]
        start_index = -0.5 if sign[j] > 0 else old_size[old_axis] - 0.5
        low_corner = low_corner + column * start_index
    new_origin = low_corner + new_direction @ (new_spacing / 2)
    return Geometry(
        size=(int(new_size[0]), int(new_size[1]), int(new_size[2])),
        spacing_mm=_three_floats(new_spacing),
        origin_mm=_three_floats(new_origin),
        direction=tuple(float(v) for v in new_direction.ravel()),
    )


def resample_onto(image: sitk.Image, grid: Geometry, *, labels: bool) -> sitk.Image:
    """`image` sampled on `grid`: linear in float32 for intensities, nearest value for labels."""
    return sitk.Resample(
        image,
        list(grid.size),
        sitk.Transform(),
        sitk.sitkNearestNeighbor if labels else sitk.sitkLinear,
        list(grid.origin_mm),
        list(grid.spacing_mm),
        list(grid.direction),
        0.0,
        image.GetPixelID() if labels else sitk.sitkFloat32,
        True,  # nearest-neighbour extrapolation: the grid may reach half a voxel past the input
    )


def normalize_intensity(array: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Map the volume's `percentiles` to 0 and 1 and clip (per volume: MR has no fixed scale).

    A constant volume maps to zeros.
    """
    array = np.asarray(array, dtype=np.float32)
    low, high = np.percentile(array, percentiles)
    if not high > low:
        return np.zeros_like(array, dtype=np.float32)
    return np.clip((array - low) / (high - low), 0.0, 1.0).astype(np.float32, copy=False)


def prepare_image(image: sitk.Image, preprocessing: Preprocessing) -> PreparedVolume:
    """The network input of an image: reoriented, resampled, normalized, as a (z, y, x) array."""
    grid = canonical_grid(Geometry.of(image), preprocessing)
    resampled = resample_onto(sitk.Cast(image, sitk.sitkFloat32), grid, labels=False)
    array = normalize_intensity(sitk.GetArrayFromImage(resampled), preprocessing.intensity_percentiles)
    return PreparedVolume(array=array, grid=grid)


def prepare_mask(mask: sitk.Image, grid: Geometry) -> np.ndarray:
    """A mask's SPIDER values on the canonical grid of its image, as a (z, y, x) array."""
    return sitk.GetArrayFromImage(resample_onto(mask, grid, labels=True))


def to_input_grid(values_zyx: np.ndarray, grid: Geometry, reference: sitk.Image) -> sitk.Image:
    """Labels predicted on `grid` (uint8, z, y, x) resampled onto `reference`'s exact voxel grid."""
    expected = grid.shape_zyx
    if tuple(values_zyx.shape) != tuple(expected):
        raise ValueError(f"labels of shape {values_zyx.shape} do not fit the grid of shape {expected}")
    on_grid = sitk.GetImageFromArray(np.ascontiguousarray(values_zyx, dtype=np.uint8))
    on_grid.SetSpacing(grid.spacing_mm)
    on_grid.SetOrigin(grid.origin_mm)
    on_grid.SetDirection(grid.direction)
    output = sitk.Resample(on_grid, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0, sitk.sitkUInt8, True)
    # Resample copies the reference's header; copy it again so that the values are bit-identical.
    output.CopyInformation(reference)
    return output
