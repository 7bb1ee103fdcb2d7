"""Soft tissue around the spine, drawn over the whole field of view before the spine parts.

Layers are placed relative to the spine's centre line at each height: viscera anteriorly
(with a smooth texture), fat around the spine, psoas muscles, aorta / vena cava and iliac
vessels (flow voids), the paraspinal muscles with a fat plane, subcutaneous fat, and air
behind the back. Series grids tilt only about the left-right axis, so every quantity that
does not depend on the lateral position is computed once on the sagittal plane (2D) and each
sagittal slice then needs only a few comparisons against thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from challenge.synth.anatomy import PatientAnatomy
from challenge.synth.contrast import Contrast
from challenge.synth.errors import SynthError
from challenge.synth.grid import SeriesGrid
from challenge.synth.raster import physical_coordinates


@dataclass(frozen=True)
class _Vessel:
    """A vessel in the sagittal plane: lateral centre, AP centre and radius per in-plane pixel."""

    lateral: np.ndarray
    depth: np.ndarray
    radius: np.ndarray
    lateral_range: tuple[float, float]


def background_signal(
    anatomy: PatientAnatomy, grid: SeriesGrid, contrast: Contrast, rng: np.random.Generator
) -> np.ndarray:
    """A float32 (z, y, x) signal array of the soft tissue of `anatomy` sampled on `grid`."""
    lr_axis = 2 - grid.slice_axis  # array axis of the sagittal slices
    x, y, z = physical_coordinates(grid)
    in_plane = tuple(n for axis, n in enumerate(grid.shape_zyx) if axis != lr_axis)
    if (
        any(np.shape(x)[axis] != 1 for axis in range(3) if axis != lr_axis)
        or np.shape(y)[lr_axis] != 1
        or np.shape(z)[lr_axis] != 1
    ):
        raise SynthError("the background needs a grid whose slice axis is exactly left-right")
    lateral_mm = np.ravel(x).astype(np.float64) - float(np.mean(anatomy.curve.points_mm[:, 0]))
    y2 = np.broadcast_to(np.squeeze(y, axis=lr_axis), in_plane)
    z2 = np.broadcast_to(np.squeeze(z, axis=lr_axis), in_plane)

    curve = anatomy.curve
    s_at, y_spine, _ = (np.asarray(v, dtype=np.float32) for v in curve.at_height(z2))
    depth = (y2 - y_spine).astype(np.float32)  # posterior offset from the body centre line
    scale = anatomy.scale
    body_depth = 17.0 * scale
    canal_offset = anatomy.vertebra(3).canal_offset_mm
    l1_s = float(np.interp(anatomy.vertebra(5).frame.center_mm[2], curve.points_mm[:, 2], curve.s_mm))

    viscera = (contrast.viscera * _texture(y2, z2, rng)).astype(np.float32)
    # Fat around the spine down to the sacral tip; below it, pelvic organs and gluteal muscle.
    above_tip = z2 > float(curve.points_mm[0, 2]) + 10.0
    around_spine = (depth > -(body_depth + 8.0 * scale)) & above_tip
    # Psoas: grows from L1 downwards, lateral to the bodies, above the sacrum.
    growth = np.clip((l1_s - s_at) / max(l1_s, 1.0), 0.0, 1.0) * (s_at > 10.0)
    psoas_x = (24.0 + 8.0 * growth) * scale
    psoas_rx = (5.0 + 9.0 * growth) * scale
    psoas_depth = ((depth + 2.0 * scale) / ((6.0 + 10.0 * growth) * scale)) ** 2
    has_psoas = growth > 0
    psoas_reach = (float(np.min(psoas_x - psoas_rx)), float(np.max(psoas_x + psoas_rx)))
    vessels = _vessels(anatomy, z2, body_depth)
    # Back: the skin line is 2D (along the spine) minus a lateral rounding of the back.
    sacral = np.clip(-s_at / 60.0, 0.0, 1.0)
    skin = canal_offset + anatomy.back_depth_mm * (1.0 - 0.55 * sacral) + anatomy.fat_thickness_mm
    behind_skin = (depth - skin).astype(np.float32)  # > -rounding: outside the body
    muscle_front = depth > canal_offset - 4.0 * scale
    plane_front = depth > canal_offset + 8.0 * scale

    signal = np.empty(grid.shape_zyx, dtype=np.float32)
    slices = np.moveaxis(signal, lr_axis, 0)
    for index, lateral in enumerate(lateral_mm):
        out = slices[index]
        out[...] = viscera
        if abs(lateral) < 70.0 * scale:
            np.copyto(out, np.float32(contrast.fat), where=around_spine)
        for side in (-1.0, 1.0):
            if psoas_reach[0] <= side * lateral <= psoas_reach[1]:
                inside = ((lateral - side * psoas_x) / psoas_rx) ** 2 + psoas_depth < 1.0
                np.copyto(out, np.float32(contrast.muscle), where=inside & has_psoas)
        for vessel in vessels:
            if vessel.lateral_range[0] <= lateral <= vessel.lateral_range[1]:
                inside = (lateral - vessel.lateral) ** 2 + (depth - vessel.depth) ** 2 < vessel.radius**2
                np.copyto(out, np.float32(contrast.vessel), where=inside)
        rounding = lateral * lateral / (2.0 * 170.0 * scale) + 4.0 * math.exp(-(lateral * lateral) / 200.0)
        fat_starts = behind_skin >= -rounding - anatomy.fat_thickness_mm
        np.copyto(out, np.float32(contrast.muscle), where=muscle_front & ~fat_starts)
        if abs(abs(lateral) - 30.0 * scale) < 1.1:
            np.copyto(out, np.float32(contrast.fat), where=plane_front & ~fat_starts)
        np.copyto(out, np.float32(contrast.fat), where=fat_starts)
        np.copyto(out, np.float32(contrast.air), where=behind_skin >= -rounding)
    return signal


def _vessels(anatomy: PatientAnatomy, z2: np.ndarray, body_depth: float) -> list[_Vessel]:
    """Aorta (left) and vena cava (right), each splitting into two iliac vessels lower down."""
    scale = anatomy.scale
    vessel_depth = -(body_depth + 13.0 * scale)
    vessels = []
    for side, radius_mm, split_z in (
        (1.0, 10.0, anatomy.vertebra(2).frame.center_mm[2]),
        (-1.0, 9.0, anatomy.vertebra(1).frame.center_mm[2]),
    ):
        below = np.maximum(np.float32(split_z) - z2, 0.0).astype(np.float32)
        depth = (vessel_depth + np.minimum(below, 40.0) * 0.25).astype(np.float32)
        trunk = side * 15.0 * scale * np.exp(-below / 30.0)
        radius = (radius_mm * scale * np.where(below > 0, 0.7, 1.0)).astype(np.float32)
        for branch in (-1.0, 1.0):  # one vessel above the split, two below it
            lateral = (trunk + branch * 0.45 * below).astype(np.float32)
            reach = float(radius.max())
            vessels.append(
                _Vessel(lateral, depth, radius, (float(lateral.min()) - reach, float(lateral.max()) + reach))
            )
    return vessels


def _texture(y, z, rng: np.random.Generator) -> np.ndarray:
    """Smooth in-plane modulation (about 1 +- 0.3) standing in for bowel and organs."""
    field = np.zeros(np.broadcast_shapes(np.shape(y), np.shape(z)), dtype=np.float32)
    count = 10
    for _ in range(count):
        wavelength = rng.uniform(10.0, 60.0)
        angle = rng.uniform(0.0, math.pi)
        k = 2.0 * math.pi / wavelength
        amplitude = np.float32(rng.uniform(0.5, 1.5))
        field += amplitude * np.cos(
            np.float32(k * math.cos(angle)) * y
            + np.float32(k * math.sin(angle)) * z
            + np.float32(rng.uniform(0, 2 * math.pi))
        )
    return 1.0 + 0.3 * field / math.sqrt(count / 2.0) * 0.5
