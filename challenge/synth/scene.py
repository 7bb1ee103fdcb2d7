"""The spine of a patient as labelled parts: vertebrae with posterior elements, discs, canal, sacrum.

Parts are returned in painting order (later parts overwrite earlier ones where they touch):
sacrum (not labelled), spinal canal with the conus, discs, vertebrae. Mask values come from
challenge.labels; nothing here writes a label number itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from challenge.geometry import three_floats
from challenge.labels import SPINAL_CANAL, disc_value, vertebra_value
from challenge.synth.anatomy import Disc, Frame, PatientAnatomy, Vertebra
from challenge.synth.contrast import Contrast
from challenge.synth.raster import Part
from challenge.synth.shapes import DiscSpace, Ellipsoid, Lamina, Rod, VertebralBody

CANAL_STEP_MM = 6.0
EPIDURAL_MM = 1.0


@dataclass(frozen=True)
class Tissue:
    """One tissue throughout the shape, optionally scaled."""

    name: str
    factor: float = 1.0

    def render(self, contrast: Contrast, shape, a, b, c):
        return shape.depth(a, b, c), getattr(contrast, self.name) * self.factor


@dataclass(frozen=True)
class Bone:
    """Marrow inside a dark cortical rim; Modic bands next to the endplates change the marrow."""

    marrow_factor: float
    t1_factor: float = 1.0
    cortex_mm: float = 1.0
    half_height: float = 0.0
    modic_bands: tuple[tuple[int, int, float], ...] = ()
    fused: bool = False  # no cortex at the endplates (fused sacral segments)

    def render(self, contrast: Contrast, shape, a, b, c):
        if self.fused:
            depth, rim_depth = shape.depths(a, b, c)
        else:
            depth = rim_depth = shape.depth(a, b, c)
        marrow = contrast.marrow * self.marrow_factor * (self.t1_factor if contrast.sequence == "t1" else 1.0)
        values = np.full(np.shape(depth), marrow, dtype=np.float32)
        for side, modic, band_mm in self.modic_bands:
            in_band = (c * side) > (self.half_height - band_mm)
            values = np.where(in_band, values * contrast.modic_factor[modic], values)
        return depth, np.where(rim_depth < self.cortex_mm, np.float32(contrast.cortex), values)


@dataclass(frozen=True)
class DiscTissue:
    """Annulus around a nucleus whose brightness follows the Pfirrmann grade, with a central cleft."""

    pfirrmann: int

    def render(self, contrast: Contrast, shape: DiscSpace, a, b, c):
        depth, fraction, _ = shape.evaluate(a, b, c)
        u = a / (0.6 * shape.half_width)
        v = (b - 0.1 * shape.half_depth_posterior) / (0.5 * shape.half_depth_posterior)
        radial = np.clip((1.0 - np.sqrt(u * u + v * v)) / 0.3, 0.0, 1.0)
        vertical = np.clip((0.5 - np.abs(fraction - 0.5)) / 0.25, 0.0, 1.0)
        nucleus: float | np.ndarray = contrast.nucleus(self.pfirrmann)
        if self.pfirrmann >= 2:
            cleft = np.abs(fraction - 0.5) < 0.07
            nucleus = np.where(cleft, nucleus * contrast.cleft, nucleus)
        values = contrast.annulus + (nucleus - contrast.annulus) * radial * vertical
        return depth, values


def spine_parts(anatomy: PatientAnatomy) -> list[Part]:
    """Every part of the patient's spine, in painting order."""
    parts: list[Part] = []
    for index, segment in enumerate(anatomy.sacrum):
        parts.extend(_sacral_parts(anatomy, segment, first=index == 0))
    s1, s2 = anatomy.sacrum[:2]
    parts.append(_disc_part(s1, s2, Tissue("annulus", 1.3), label=0, bulge=0.92, concavity=0.3))
    parts.extend(_canal_parts(anatomy))
    for disc in anatomy.discs:
        parts.extend(_disc_parts(anatomy, disc))
    disc_heights = {disc.level: disc.height_mm for disc in anatomy.discs}
    for vertebra in anatomy.vertebrae:
        parts.extend(
            _vertebra_parts(
                anatomy,
                vertebra,
                disc_above_mm=disc_heights.get(vertebra.level + 1, 6.0),
                disc_below_mm=disc_heights[vertebra.level],
            )
        )
    return parts


def _vertebra_parts(anatomy: PatientAnatomy, v: Vertebra, *, disc_above_mm: float, disc_below_mm: float) -> list[Part]:
    label = vertebra_value(v.level)
    s = anatomy.scale
    h = v.height_mm
    canal_b = v.canal_offset_mm
    inner_w = v.canal_half_width_mm + EPIDURAL_MM
    inner_d = v.canal_half_depth_mm + EPIDURAL_MM
    lumbar = v.level <= 5
    body = Bone(v.marrow_factor, anatomy.marrow_t1_factor, 1.0, h / 2, v.modic_bands)
    arch = Bone(v.marrow_factor * 0.95, anatomy.marrow_t1_factor, 1.3)
    lamina_c = -0.05 * h
    lamina_slope = 0.25
    spinous_start = canal_b + inner_d + 2.0
    parts = [
        Part(
            v.frame, VertebralBody(v.half_width_mm, v.half_depth_anterior_mm, v.half_depth_posterior_mm, h), body, label
        ),
        Part(
            v.frame,
            Lamina(canal_b, inner_w, inner_d, (5.5 if lumbar else 4.5) * s, lamina_c, 0.55 * h, lamina_slope),
            arch,
            label,
        ),
        Part(
            v.frame,
            Rod(
                axis=1,
                start=spinous_start,
                end=spinous_start + v.spinous_length_mm,
                center=(0.0, lamina_c - lamina_slope * (inner_d + 2.0)),
                radii=((4.0 if lumbar else 3.5) * s, v.spinous_height_mm / 2),
                slope=(0.0, -v.spinous_slope),
                taper=0.75,
                round_mm=4.0,
            ),
            arch,
            label,
        ),
    ]
    for side in (-1.0, 1.0):
        parts += [
            Part(  # pedicle
                v.frame,
                Rod(
                    axis=1,
                    start=0.5 * v.half_depth_posterior_mm,
                    end=canal_b + 1.0,
                    center=(side * (inner_w + 4.0 * s), 0.15 * h),
                    radii=(4.0 * s, 0.27 * h),
                ),
                arch,
                label,
            ),
            Part(  # transverse process
                v.frame,
                Rod(
                    axis=0,
                    start=side * (inner_w + 4.0 * s),
                    end=side * (inner_w + 4.0 * s + v.transverse_length_mm),
                    center=(canal_b - 0.3 * v.canal_half_depth_mm, 0.15 * h),
                    radii=(3.0 * s, 4.0 * s),
                    slope=(side * (0.0 if lumbar else 0.5), 0.0),
                    taper=0.7,
                    round_mm=3.0,
                ),
                arch,
                label,
            ),
            Part(  # superior articular process
                v.frame,
                Rod(
                    axis=2,
                    start=0.1 * h,
                    end=h / 2 + 0.55 * disc_above_mm + 3.0,
                    center=(side * (inner_w + 7.5 * s), canal_b + 0.15 * v.canal_half_depth_mm),
                    radii=(3.0 * s, 4.5 * s),
                    taper=0.8,
                    round_mm=2.5,
                ),
                arch,
                label,
            ),
            Part(  # inferior articular process
                v.frame,
                Rod(
                    axis=2,
                    start=-0.1 * h,
                    end=-(h / 2 + 0.55 * disc_below_mm + 3.0),
                    center=(side * (inner_w + 1.5 * s), canal_b + 0.65 * v.canal_half_depth_mm),
                    radii=(2.6 * s, 4.0 * s),
                    taper=0.8,
                    round_mm=2.5,
                ),
                arch,
                label,
            ),
        ]
    return parts


def _sacral_parts(anatomy: PatientAnatomy, v: Vertebra, *, first: bool) -> list[Part]:
    s = anatomy.scale
    # S2 and below are fused: each segment reaches into its neighbours, with no endplate cortex.
    h = v.height_mm if first else v.height_mm + 3.0 * s
    bone = Bone(v.marrow_factor, anatomy.marrow_t1_factor, 1.0, h / 2, v.modic_bands, fused=not first)
    arch = Bone(v.marrow_factor * 0.95, anatomy.marrow_t1_factor, 1.3)
    inner_w = v.canal_half_width_mm + EPIDURAL_MM
    inner_d = v.canal_half_depth_mm + EPIDURAL_MM
    canal_b = v.canal_offset_mm
    parts = [
        Part(
            v.frame,
            VertebralBody(
                v.half_width_mm,
                v.half_depth_anterior_mm,
                v.half_depth_posterior_mm,
                h,
                concavity=1.2 if first else 0.3,
                waist=0.03,
            ),
            bone,
        ),
        Part(v.frame, Lamina(canal_b, inner_w, inner_d, 4.0 * s, 0.0, 0.9 * h, 0.0), arch),
        Part(
            v.frame,
            Rod(
                axis=1,
                start=canal_b + inner_d + 2.0,
                end=canal_b + inner_d + 2.0 + v.spinous_length_mm,
                center=(0.0, 0.0),
                radii=(2.5 * s, 0.3 * h),
                round_mm=2.0,
            ),
            arch,
        ),
    ]
    for side in (-1.0, 1.0):
        start = side * 0.55 * v.half_width_mm
        parts.append(  # ala (lateral mass)
            Part(
                v.frame,
                Rod(
                    axis=0,
                    start=start,
                    end=start + side * v.transverse_length_mm,
                    center=(0.15 * v.half_depth_posterior_mm, 0.05 * h),
                    radii=(0.95 * v.half_depth_anterior_mm, 0.42 * h),
                    taper=0.8,
                    round_mm=6.0,
                ),
                arch,
            )
        )
        if first:
            parts.append(  # superior articular process of S1
                Part(
                    v.frame,
                    Rod(
                        axis=2,
                        start=0.1 * h,
                        end=h / 2 + 9.0,
                        center=(side * (inner_w + 7.5 * s), canal_b + 0.15 * v.canal_half_depth_mm),
                        radii=(3.0 * s, 4.5 * s),
                        taper=0.8,
                        round_mm=2.5,
                    ),
                    arch,
                )
            )
    return parts


def _frame_with_lean(center: np.ndarray, superior: np.ndarray) -> Frame:
    superior = superior / np.linalg.norm(superior)
    phi = math.atan2(-superior[1], superior[2])
    lateral = (1.0, 0.0, 0.0)
    posterior = (0.0, math.cos(phi), math.sin(phi))
    up = (0.0, -math.sin(phi), math.cos(phi))
    axes = tuple(three_floats(col[row] for col in (lateral, posterior, up)) for row in range(3))
    return Frame(center_mm=three_floats(center), axes=axes)


def _disc_part(
    above: Vertebra,
    below: Vertebra,
    fill,
    *,
    label: int,
    bulge: float,
    concavity: float = 1.2,
    posterior_bulge: float = 1.0,
) -> Part:
    top = above.endplate_center(-1)
    bottom = below.endplate_center(+1)
    frame = _frame_with_lean((top + bottom) / 2, above.frame.superior + below.frame.superior)
    to_local = frame.matrix.T

    def local(vector) -> tuple[float, float, float]:
        return tuple(float(x) for x in vector)  # type: ignore[return-value]

    shape = DiscSpace(
        half_width=bulge * (above.half_width_mm + below.half_width_mm) / 2,
        half_depth_anterior=bulge * (above.half_depth_anterior_mm + below.half_depth_anterior_mm) / 2,
        half_depth_posterior=bulge
        * posterior_bulge
        * (above.half_depth_posterior_mm + below.half_depth_posterior_mm)
        / 2,
        upper_point=local(to_local @ (top - frame.center)),
        upper_normal=local(to_local @ above.frame.superior),
        lower_point=local(to_local @ (bottom - frame.center)),
        lower_normal=local(to_local @ below.frame.superior),
        concavity=concavity,
    )
    return Part(frame, shape, fill, label)


def _disc_parts(anatomy: PatientAnatomy, disc: Disc) -> list[Part]:
    grading = disc.grading
    label = disc_value(disc.level)
    bulge = 1.07 if grading.bulging else 1.0
    part = _disc_part(
        disc.above,
        disc.below,
        DiscTissue(grading.pfirrmann),
        label=label,
        bulge=bulge,
        posterior_bulge=1.04 if grading.bulging else 1.0,
    )
    parts = [part]
    if grading.herniation:
        rng = np.random.default_rng([anatomy.seed, disc.level, 0x4E])
        shape: DiscSpace = part.shape  # type: ignore[assignment]
        radius_ab = float(rng.uniform(4.0, 6.0)) * anatomy.scale
        parts.append(
            Part(
                part.frame,
                Ellipsoid(
                    center=(
                        float(rng.uniform(-0.35, 0.35)) * shape.half_width,
                        shape.half_depth_posterior + 0.5 * radius_ab,
                        0.0,
                    ),
                    radii=(radius_ab, radius_ab * 0.8, max(2.0, 0.38 * disc.height_mm)),
                ),
                Tissue("annulus", 1.2),
                label,
            )
        )
    return parts


def _canal_parts(anatomy: PatientAnatomy) -> list[Part]:
    """The thecal sac from the mid-sacrum to the top of the curve, with the conus medullaris."""
    levels = [*reversed(anatomy.sacrum), *anatomy.vertebrae]
    curve = anatomy.curve
    centers_s = [float(np.interp(v.frame.center_mm[2], curve.points_mm[:, 2], curve.s_mm)) for v in levels]
    offsets = [v.canal_offset_mm for v in levels]
    widths = [v.canal_half_width_mm for v in levels]
    depths = [v.canal_half_depth_mm for v in levels]
    s_start = centers_s[2]  # S3
    s_end = float(curve.s_mm[-1]) - CANAL_STEP_MM
    l1 = anatomy.vertebra(5)
    s_conus = centers_s[len(anatomy.sacrum) + 4] + (anatomy.seed % 7 - 3) * 0.15 * l1.height_mm
    half = CANAL_STEP_MM / 2 + 1.0
    parts = []
    for s in np.arange(s_start, s_end, CANAL_STEP_MM):
        frame = curve.frame(float(s))
        offset = float(np.interp(s, centers_s, offsets))
        width = float(np.interp(s, centers_s, widths))
        depth = float(np.interp(s, centers_s, depths))
        parts.append(
            Part(
                frame,
                Rod(axis=2, start=-half, end=half, center=(0.0, offset), radii=(width, depth)),
                Tissue("csf"),
                SPINAL_CANAL,
            )
        )
        if s > s_conus:
            taper = min(1.0, (s - s_conus) / 15.0 + 0.2)
            parts.append(
                Part(
                    frame,
                    Rod(
                        axis=2,
                        start=-half,
                        end=half,
                        center=(0.0, offset - 1.0),
                        radii=(4.5 * anatomy.scale * taper, 3.5 * anatomy.scale * taper),
                    ),
                    Tissue("cord"),
                    SPINAL_CANAL,
                )
            )
    return parts
