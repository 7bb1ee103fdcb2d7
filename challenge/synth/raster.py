"""Sampling local shapes onto a series grid, one bounding box at a time.

A part's local coordinates are an affine function of the voxel index, so inside the part's
index-space bounding box they are sums of three 1D ramps broadcast against each other (terms
with a zero coefficient are left out, which keeps in-plane quantities two-dimensional).
Painting never touches voxels outside the box.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from challenge.synth.anatomy import Frame
from challenge.synth.contrast import Contrast
from challenge.synth.grid import SeriesGrid
from challenge.synth.shapes import Bounds

_IDENTITY = Frame(center_mm=(0.0, 0.0, 0.0), axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
_RAMP_SHAPES = ((1, 1, -1), (1, -1, 1), (-1, 1, 1))  # index x, y, z -> array axes 2, 1, 0


@dataclass(frozen=True)
class Box:
    """Half-open index ranges in (x, y, z) order."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    @property
    def slices_zyx(self) -> tuple[slice, slice, slice]:
        return tuple(slice(lo, hi) for lo, hi in zip(self.lo[::-1], self.hi[::-1], strict=True))  # type: ignore[return-value]

    def union(self, other: "Box") -> "Box":
        return Box(
            lo=tuple(min(a, b) for a, b in zip(self.lo, other.lo, strict=True)),  # type: ignore[arg-type]
            hi=tuple(max(a, b) for a, b in zip(self.hi, other.hi, strict=True)),  # type: ignore[arg-type]
        )


def full_box(grid: SeriesGrid) -> Box:
    return Box(lo=(0, 0, 0), hi=grid.size)


def index_box(grid: SeriesGrid, frame: Frame, bounds: Bounds, *, margin_voxels: int = 1) -> Box | None:
    """The voxels that can hold the local box `bounds` of `frame`, clipped to the grid; None if none."""
    corners = np.array(list(itertools.product(*zip(*bounds, strict=True))), dtype=float)
    physical = frame.center + corners @ frame.matrix.T
    index = grid.continuous_index(physical)
    lo = np.floor(index.min(axis=0)).astype(int) - margin_voxels
    hi = np.ceil(index.max(axis=0)).astype(int) + 1 + margin_voxels
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.asarray(grid.size))
    if np.any(hi <= lo):
        return None
    return Box(lo=tuple(int(v) for v in lo), hi=tuple(int(v) for v in hi))  # type: ignore[arg-type]


def local_coordinates(grid: SeriesGrid, frame: Frame, box: Box) -> list:
    """Local (a, b, c) of every voxel of `box`, as float32 arrays broadcastable to the box (z, y, x)."""
    rotation = frame.matrix
    affine = rotation.T @ grid.index_to_physical
    offset = rotation.T @ (np.asarray(grid.origin_mm) - frame.center)
    ramps = [np.arange(lo, hi, dtype=np.float64) for lo, hi in zip(box.lo, box.hi, strict=True)]
    coordinates = []
    for row in range(3):
        value = None
        for axis in range(3):
            coefficient = affine[row, axis]
            if abs(coefficient) < 1e-9:
                continue
            term = (coefficient * ramps[axis]).reshape(_RAMP_SHAPES[axis])
            value = term if value is None else value + term
        value = value + offset[row]
        coordinates.append(value.astype(np.float32))
    return coordinates


def physical_coordinates(grid: SeriesGrid, box: Box | None = None) -> list:
    """Physical LPS (x, y, z) of the voxels of `box` (default: all), broadcastable float32 arrays."""
    return local_coordinates(grid, _IDENTITY, box or full_box(grid))


class Shape(Protocol):
    def bounds(self) -> Bounds:
        """The local bounding box (challenge.synth.shapes)."""


class Fill(Protocol):
    def render(self, contrast: Contrast, shape, a, b, c) -> tuple[np.ndarray, np.ndarray | float]:
        """(depth in mm, positive inside; signal values broadcastable to it)."""


@dataclass(frozen=True)
class Part:
    """A shape in a frame, filled with tissue signal, written to the mask as `label` (0: not labelled)."""

    frame: Frame
    shape: Shape
    fill: Fill
    label: int = 0


class Canvas:
    """The signal and mask arrays of one series, painted part by part inside bounding boxes."""

    def __init__(self, grid: SeriesGrid, signal: np.ndarray, contrast: Contrast):
        self.grid = grid
        self.signal = signal
        self.mask = np.zeros(grid.shape_zyx, dtype=np.uint8)
        self.contrast = contrast
        self.label_boxes: dict[int, Box] = {}

    def paint(self, part: Part) -> None:
        box = index_box(self.grid, part.frame, part.shape.bounds())
        if box is None:
            return
        a, b, c = local_coordinates(self.grid, part.frame, box)
        depth, values = part.fill.render(self.contrast, part.shape, a, b, c)
        inside = depth > 0
        if not inside.any():
            return
        view = box.slices_zyx
        np.copyto(self.signal[view], values, where=inside, casting="same_kind")
        if part.label:
            np.copyto(self.mask[view], np.uint8(part.label), where=inside)
            known = self.label_boxes.get(part.label)
            self.label_boxes[part.label] = box if known is None else known.union(box)

    def relabel(self, old: int, new: int) -> None:
        """Change every voxel of label `old` to `new` (0 removes it), inside old's painted box."""
        box = self.label_boxes.pop(old, None)
        if box is None:
            return
        view = self.mask[box.slices_zyx]
        view[view == old] = new
        if new:
            known = self.label_boxes.get(new)
            self.label_boxes[new] = box if known is None else known.union(box)

    def voxel_count(self, label: int) -> int:
        box = self.label_boxes.get(label)
        if box is None:
            return 0
        return int(np.count_nonzero(self.mask[box.slices_zyx] == label))
