"""Voxel grids of synthetic series: spacing, size, orientation (direction matrix) and origin.

A grid maps index (i, j, k) in SimpleITK's (x, y, z) order to physical LPS millimetres by
`origin + direction @ (spacing * index)`. Arrays hold voxels in (k, j, i) order.
The slice (thick) axis always points left-right; which index axis that is, and the signs of
all axes, come from the orientation code (e.g. "LPS": i -> left, j -> posterior, k -> superior;
"PIR": i -> posterior, j -> inferior, k -> right), optionally tilted about the left-right axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from challenge.geometry import three_floats, three_ints

_LETTER_AXIS = {"L": (0, 1.0), "R": (0, -1.0), "P": (1, 1.0), "A": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}

# Orientation codes seen for sagittal series, with relative frequency.
TSE_ORIENTATIONS = {"LPS": 4, "PIL": 2, "PIR": 2, "LPI": 1, "RAS": 1, "ASR": 1}
SPACE_ORIENTATIONS = {"PIR": 3, "PIL": 1, "LPS": 1, "ASL": 1}


@dataclass(frozen=True)
class SeriesGrid:
    """A voxel grid; tuples in SimpleITK (x, y, z) index order, direction row-major."""

    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]
    orientation: str  # e.g. "PIR"
    oblique_deg: float  # tilt about the left-right axis

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def index_to_physical(self) -> np.ndarray:
        """3x3 matrix M with physical = origin + M @ index."""
        return self.direction_matrix @ np.diag(self.spacing_mm)

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return self.size[::-1]

    @property
    def slice_axis(self) -> int:
        """Index axis (0 = x) that points left-right: the thick-slice axis."""
        return int(np.argmax(np.abs(self.direction_matrix[0, :])))

    def continuous_index(self, points_mm: np.ndarray) -> np.ndarray:
        """(n, 3) physical points -> (n, 3) continuous (x, y, z) indices."""
        offsets = np.atleast_2d(points_mm) - np.asarray(self.origin_mm)
        return np.linalg.solve(self.index_to_physical, offsets.T).T

    def center_mm(self) -> np.ndarray:
        return np.asarray(self.origin_mm) + self.index_to_physical @ ((np.asarray(self.size) - 1) / 2.0)


def orientation_matrix(code: str) -> np.ndarray:
    """Direction matrix (columns = physical direction of index axes x, y, z) of a code like 'PIR'."""
    if len(code) != 3 or sorted(_LETTER_AXIS[c][0] for c in code) != [0, 1, 2]:
        raise ValueError(f"orientation code must name each of L/R, P/A, S/I once, got {code!r}")
    matrix = np.zeros((3, 3))
    for column, letter in enumerate(code):
        axis, sign = _LETTER_AXIS[letter]
        matrix[axis, column] = sign
    return matrix


def rotation_about_left_right(angle_deg: float) -> np.ndarray:
    angle = math.radians(angle_deg)
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def codes_with_slice_axis(codes: dict[str, int], axis: int) -> dict[str, int]:
    """The codes whose left-right letter sits at index axis `axis`; a constructed one if none does."""
    found = {code: weight for code, weight in codes.items() if code[axis] in "LR"}
    if found:
        return found
    letters = ["P", "S"]
    code = "".join("L" if position == axis else letters.pop(0) for position in range(3))
    return {code: 1}


def pick_code(rng: np.random.Generator, codes: dict[str, int], *, avoid: str | None = None) -> str:
    names = sorted(codes)
    if avoid in names and len(names) > 1:
        names.remove(avoid)
    weights = np.array([codes[name] for name in names], dtype=float)
    return str(names[int(rng.choice(len(names), p=weights / weights.sum()))])


def build_grid(
    *,
    size: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    orientation: str,
    oblique_deg: float,
    center_mm: np.ndarray,
) -> SeriesGrid:
    """A grid whose centre voxel lies at `center_mm`."""
    direction = rotation_about_left_right(oblique_deg) @ orientation_matrix(orientation)
    direction[np.abs(direction) < 1e-12] = 0.0
    half_extent = direction @ (np.asarray(spacing_mm) * (np.asarray(size) - 1) / 2.0)
    origin = np.asarray(center_mm, dtype=float) - half_extent
    return SeriesGrid(
        size=three_ints(size),
        spacing_mm=three_floats(spacing_mm),
        origin_mm=three_floats(round(float(v), 4) for v in origin),
        direction=tuple(float(v) for v in direction.ravel()),
        orientation=orientation,
        oblique_deg=float(oblique_deg),
    )
