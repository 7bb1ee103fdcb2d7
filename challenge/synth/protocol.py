"""Acquisition protocol of a synthetic series: scanner, spacing, matrix size, orientation, field of view."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from challenge.geometry import three_floats, three_ints
from challenge.synth.anatomy import PatientAnatomy
from challenge.synth.errors import SynthError
from challenge.synth.grid import (
    SPACE_ORIENTATIONS,
    TSE_ORIENTATIONS,
    SeriesGrid,
    build_grid,
    codes_with_slice_axis,
    orientation_matrix,
    pick_code,
    rotation_about_left_right,
)

SPACE = "t2_SPACE"
TSE_PIXEL_SPACINGS_MM = (0.5469, 0.5859, 0.625, 0.6641, 0.6875)
TSE_SLICE_SPACING_RANGE_MM = (3.3, 4.4)
SPACE_SPACING_MM = (0.9, 0.46875)  # slice, in-plane
MAX_VOXELS = 150_000_000  # about 2.5 GB of working memory


@dataclass(frozen=True)
class Scanner:
    manufacturer: str
    model: str
    field_strength_t: float


@dataclass(frozen=True)
class PatientProtocol:
    """What one patient's series share: the scanner and the orientation code of each sequence."""

    scanner: Scanner
    orientations: Mapping[str, str]


_SCANNERS = (
    (Scanner("SIEMENS", "Aera", 1.5), 0.35),
    (Scanner("SIEMENS", "Skyra", 3.0), 0.2),
    (Scanner("Philips Medical Systems", "Ingenia", 1.5), 0.3),
    (Scanner("Philips Medical Systems", "Achieva", 3.0), 0.15),
)


def patient_protocol(seed: int) -> PatientProtocol:
    """Scanner and orientations for patient `seed`; T2 SPACE is a Siemens sequence."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x9C07]))
    weights = np.array([w for _, w in _SCANNERS])
    scanner = _SCANNERS[int(rng.choice(len(_SCANNERS), p=weights / weights.sum()))][0]
    t1 = pick_code(rng, TSE_ORIENTATIONS)
    t2 = pick_code(rng, TSE_ORIENTATIONS, avoid=t1)
    space = pick_code(rng, SPACE_ORIENTATIONS)
    return PatientProtocol(scanner=scanner, orientations=MappingProxyType({"t1": t1, "t2": t2, SPACE: space}))


def scanner_for(protocol: PatientProtocol, sequence: str) -> Scanner:
    if sequence == SPACE and protocol.scanner.manufacturer != "SIEMENS":
        return Scanner("SIEMENS", "Skyra", 3.0)
    return protocol.scanner


@dataclass(frozen=True)
class SeriesPlan:
    grid: SeriesGrid
    slice_thickness_mm: float  # times the voxel scale, like the spacing (TSE slices have a 10% gap)


def plan_series(
    anatomy: PatientAnatomy,
    *,
    sequence: str,
    orientation: str,
    rng: np.random.Generator,
    voxel_scale: float,
    size_xyz: tuple[int, int, int] | None,
) -> SeriesPlan:
    """The grid of one series: its top edge cuts the top visible vertebra; the sacrum is in view."""
    if sequence == SPACE:
        slice_mm, pixel_mm = SPACE_SPACING_MM
        thickness_mm = slice_mm
    else:
        low, high = TSE_SLICE_SPACING_RANGE_MM
        slice_mm = round(round(float(rng.uniform(low, high)) / 0.05) * 0.05, 2)
        pixel_mm = float(rng.choice(TSE_PIXEL_SPACINGS_MM))
        thickness_mm = round(slice_mm / 1.1, 2)
    oblique_deg = float(rng.uniform(2.0, 7.0) * rng.choice([-1.0, 1.0])) if rng.random() < 0.4 else 0.0

    top = anatomy.vertebra(anatomy.visible_levels)
    cut_fraction = float(rng.uniform(0.3, 0.7))
    top_point = top.frame.to_physical((0.0, 0.0, (cut_fraction - 0.5) * top.height_mm))
    s1_top = anatomy.sacrum[0].endplate_center(+1)
    bottom_z = s1_top[2] - float(rng.uniform(55.0, 110.0))
    fov_needed_mm = top_point[2] - bottom_z

    if size_xyz is None:
        slice_axis = next(i for i, letter in enumerate(orientation) if letter in "LR")
        inplane_full = int(math.ceil(max(fov_needed_mm, 240.0) / pixel_mm / 16.0) * 16)
        if sequence == SPACE:
            slices_full = int(round(float(rng.uniform(160.0, 190.0)) / slice_mm))
        else:
            slices_full = int(rng.integers(12, 21))
        inplane = max(16, int(round(inplane_full / voxel_scale)))
        slices = max(3, int(round(slices_full / voxel_scale)))
        size = three_ints(slices if axis == slice_axis else inplane for axis in range(3))
    else:
        size = three_ints(size_xyz)
        slice_axis = int(np.argmin(size))
        if orientation[slice_axis] not in "LR":
            pool = SPACE_ORIENTATIONS if sequence == SPACE else TSE_ORIENTATIONS
            orientation = pick_code(rng, codes_with_slice_axis(pool, slice_axis))
    if math.prod(size) > MAX_VOXELS:
        raise SynthError(
            f"a {sequence} series of {' x '.join(map(str, size))} voxels exceeds the limit of {MAX_VOXELS:,}; "
            "ask for a smaller size or a larger voxel scale"
        )
    spacing = three_floats((slice_mm if axis == slice_axis else pixel_mm) * voxel_scale for axis in range(3))

    direction = rotation_about_left_right(oblique_deg) @ orientation_matrix(orientation)
    columns = [direction[:, axis] for axis in range(3)]
    si_axis = max(range(3), key=lambda axis: abs(columns[axis][2]))
    ap_axis = next(axis for axis in range(3) if axis not in (si_axis, slice_axis))
    up = columns[si_axis] * math.copysign(1.0, columns[si_axis][2])
    back = columns[ap_axis] * math.copysign(1.0, columns[ap_axis][1])
    fov_si_mm = size[si_axis] * spacing[si_axis]
    center = top_point - (fov_si_mm / 2.0) * up
    _, spine_y, spine_x = anatomy.curve.at_height(center[2])
    center = center + ((spine_y + float(rng.uniform(10.0, 30.0)) - center[1]) / back[1]) * back
    # A slice lies on the mid-sagittal plane (within 1.5 mm), as a radiographer would place it.
    even_offset = spacing[slice_axis] / 2.0 if size[slice_axis] % 2 == 0 else 0.0
    center[0] = spine_x + float(rng.uniform(-1.5, 1.5)) + even_offset
    grid = build_grid(size=size, spacing_mm=spacing, orientation=orientation, oblique_deg=oblique_deg, center_mm=center)
    return SeriesPlan(grid=grid, slice_thickness_mm=round(thickness_mm * voxel_scale, 4))
