"""Voxel-grid geometry of an image and its component-wise comparison with stated tolerances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, SupportsFloat, SupportsInt

import numpy as np

from challenge.errors import GeometryMismatchError

# Tolerances used wherever two grids must match (mask vs image, prediction vs reference).
# MetaImage stores floats as decimal text; 1e-3 mm is far below any SPIDER voxel (>= 0.24 mm)
# yet above the rounding that writers introduce.
SPACING_TOLERANCE_MM = 1e-3
ORIGIN_TOLERANCE_MM = 1e-3
DIRECTION_TOLERANCE = 1e-4


def three_ints(values: Iterable[SupportsInt]) -> tuple[int, int, int]:
    """Exactly three values (one per axis) as a tuple of ints."""
    x, y, z = values
    return int(x), int(y), int(z)


def three_floats(values: Iterable[SupportsFloat]) -> tuple[float, float, float]:
    """Exactly three values (one per axis) as a tuple of floats."""
    x, y, z = values
    return float(x), float(y), float(z)


@dataclass(frozen=True)
class Geometry:
    """A voxel grid in SimpleITK's (x, y, z) index order.

    `size` and `spacing_mm` are per index axis (x, y, z); `direction` is the 3x3 matrix whose
    columns are the physical directions of the index axes, stored row-major as SimpleITK does.
    Arrays read with `sitk.GetArrayFromImage` are indexed (z, y, x): use `spacing_zyx_mm`.
    """

    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image) -> "Geometry":
        """Geometry of a SimpleITK image or image-file reader (header only is enough)."""
        if image.GetDimension() != 3:
            raise GeometryMismatchError(f"expected a 3D image, found {image.GetDimension()}D")
        return cls(
            size=three_ints(image.GetSize()),
            spacing_mm=three_floats(image.GetSpacing()),
            origin_mm=three_floats(image.GetOrigin()),
            direction=tuple(float(v) for v in image.GetDirection()),
        )

    @property
    def spacing_zyx_mm(self) -> tuple[float, float, float]:
        """Spacing in the axis order of arrays from `sitk.GetArrayFromImage`."""
        return self.spacing_mm[::-1]

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return self.size[::-1]

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def differences(self, other: "Geometry") -> list[str]:
        """Each component that differs from `other` beyond tolerance, as 'name: expected X, found Y'."""
        found: list[str] = []
        if self.size != other.size:
            found.append(f"size: expected {self.size}, found {other.size}")
        for name, mine, theirs, tolerance in (
            ("spacing (mm)", self.spacing_mm, other.spacing_mm, SPACING_TOLERANCE_MM),
            ("origin (mm)", self.origin_mm, other.origin_mm, ORIGIN_TOLERANCE_MM),
            ("direction", self.direction, other.direction, DIRECTION_TOLERANCE),
        ):
            worst = float(np.max(np.abs(np.subtract(mine, theirs))))
            if worst > tolerance:
                found.append(
                    f"{name}: expected {_fmt(mine)}, found {_fmt(theirs)} "
                    f"(differs by {worst:.3g}, tolerance {tolerance:g})"
                )
        return found

    def require_same(self, other: "Geometry", *, what: str) -> None:
        """Raise GeometryMismatchError listing every differing component of `what`."""
        differences = self.differences(other)
        if differences:
            raise GeometryMismatchError(f"{what} does not match the expected grid: " + "; ".join(differences))


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
