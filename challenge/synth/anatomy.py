"""One synthetic patient: a lordotic lumbar spine with graded discs, in physical LPS millimetres.

Physical axes follow ITK/DICOM LPS: +x patient left, +y posterior, +z superior.
The spine is described by a centre line through the vertebral bodies, parametrised by arc
length `s` (mm, s = 0 at the centre of the S1 upper endplate, increasing upwards). Its tangent
leans anteriorly by the angle phi(s): large at the sacrum (sacral slope), falling through zero
at the apex of the lordosis and negative at the thoracolumbar junction (kyphosis).

Levels count from the bottom as in SPIDER: vertebra 1 = L5, disc 1 = L5/S1 (the disc below
vertebra 1). Nothing here knows about voxels: grids sample this description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from challenge.geometry import three_floats

CURVE_STEP_MM = 0.25


@dataclass(frozen=True)
class DiscGrading:
    """Radiological grading of one disc, as in SPIDER's radiological_gradings.csv."""

    level: int  # the 'IVD label' column: mask value = 200 + level
    pfirrmann: int  # 1 (healthy) .. 5 (collapsed)
    modic: int  # 0 none, 1-3 Modic type of the marrow next to the endplates
    upper_endplate: bool  # the endplate above the disc (lower endplate of vertebra `level`) is affected
    lower_endplate: bool  # the endplate below the disc is affected
    spondylolisthesis: bool  # the vertebra above slips anteriorly over the one below
    herniation: bool  # focal posterior protrusion into the canal
    bulging: bool  # circumferential bulge beyond the endplates

    @property
    def narrowing(self) -> bool:
        """Disc narrowing: grades 4 and 5 are rendered thinner (height factor below 0.7)."""
        return self.pfirrmann >= 4


@dataclass(frozen=True)
class Frame:
    """A local right-handed frame: columns of `axes` are lateral (+x), posterior and superior."""

    center_mm: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]  # 3x3, row-major; columns are the local axes

    @property
    def center(self) -> np.ndarray:
        return np.asarray(self.center_mm, dtype=float)

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.axes, dtype=float)

    @property
    def superior(self) -> np.ndarray:
        return self.matrix[:, 2]

    def to_physical(self, local_mm) -> np.ndarray:
        return self.center + self.matrix @ np.asarray(local_mm, dtype=float)


@dataclass(frozen=True)
class Vertebra:
    """A vertebra (or a sacral segment when `sacral`), its frame at the body centre and its sizes (mm)."""

    level: int  # 1 = L5 ...; sacral segments use 0, -1, -2 ... (S1, S2, S3 ...)
    frame: Frame
    height_mm: float
    half_width_mm: float  # body, lateral
    half_depth_anterior_mm: float
    half_depth_posterior_mm: float
    canal_half_width_mm: float
    canal_half_depth_mm: float
    spinous_length_mm: float
    spinous_height_mm: float
    spinous_slope: float  # mm downwards per mm posterior
    transverse_length_mm: float
    marrow_factor: float  # per-vertebra marrow brightness (about 1)
    sacral: bool = False
    # (side, modic type, band thickness mm): side +1 = upper endplate region, -1 = lower
    modic_bands: tuple[tuple[int, int, float], ...] = ()

    @property
    def canal_offset_mm(self) -> float:
        """Posterior distance from the body centre to the canal centre."""
        return self.half_depth_posterior_mm + 1.5 + self.canal_half_depth_mm

    def endplate_center(self, side: int) -> np.ndarray:
        """Centre of the upper (side=+1) or lower (side=-1) endplate."""
        return self.frame.to_physical((0.0, 0.0, side * self.height_mm / 2))


@dataclass(frozen=True)
class Disc:
    """The disc below vertebra `level`, between its lower endplate and the upper endplate below."""

    level: int
    grading: DiscGrading
    height_mm: float  # centre height
    above: Vertebra
    below: Vertebra


@dataclass(frozen=True, eq=False)
class SpineCurve:
    """Centre line of the vertebral bodies, sampled every CURVE_STEP_MM of arc length."""

    s_mm: np.ndarray
    points_mm: np.ndarray  # (n, 3) physical LPS
    phi_rad: np.ndarray  # anterior lean of the tangent

    def point(self, s_mm: float) -> np.ndarray:
        return np.array([np.interp(s_mm, self.s_mm, self.points_mm[:, k]) for k in range(3)])

    def phi(self, s_mm: float) -> float:
        return float(np.interp(s_mm, self.s_mm, self.phi_rad))

    def frame(self, s_mm: float) -> Frame:
        phi = self.phi(s_mm)
        lateral = (1.0, 0.0, 0.0)
        posterior = (0.0, math.cos(phi), math.sin(phi))
        superior = (0.0, -math.sin(phi), math.cos(phi))
        axes = tuple(three_floats(col[row] for col in (lateral, posterior, superior)) for row in range(3))
        return Frame(center_mm=three_floats(self.point(s_mm)), axes=axes)

    def at_height(self, z_mm):
        """Arc length, y and x of the curve at physical height z (the curve rises monotonically)."""
        z = self.points_mm[:, 2]
        return (
            np.interp(z_mm, z, self.s_mm),
            np.interp(z_mm, z, self.points_mm[:, 1]),
            np.interp(z_mm, z, self.points_mm[:, 0]),
        )


@dataclass(frozen=True, eq=False)
class PatientAnatomy:
    """Everything a series of this patient shows, independent of any voxel grid."""

    seed: int
    sex: str  # "F" or "M"
    age_years: int
    visible_levels: int  # the field of view's top edge cuts vertebra `visible_levels`
    curve: SpineCurve
    vertebrae: tuple[Vertebra, ...]  # levels 1 .. visible_levels + 2, bottom first
    sacrum: tuple[Vertebra, ...]  # S1, S2, ... top first
    discs: tuple[Disc, ...]  # levels 1 .. visible_levels + 2, bottom first
    gradings: tuple[DiscGrading, ...] = field(repr=False, default=())
    fat_thickness_mm: float = 15.0
    back_depth_mm: float = 75.0  # posterior skin behind the canal centre, lumbar
    marrow_t1_factor: float = 1.0  # fatty marrow with age: brighter on T1
    scale: float = 1.0

    def vertebra(self, level: int) -> Vertebra:
        for vertebra in self.vertebrae:
            if vertebra.level == level:
                return vertebra
        raise KeyError(f"no vertebra at level {level} (have 1..{len(self.vertebrae)})")

    def grading(self, level: int) -> DiscGrading:
        for grading in self.gradings:
            if grading.level == level:
                return grading
        raise KeyError(f"no disc at level {level}")


# Nominal sizes (mm) of an adult male, by level (1 = L5). Thoracic sizes shrink upwards.
_LUMBAR_BODY_HEIGHT = (26.0, 27.0, 27.0, 26.0, 25.0)
_LUMBAR_HALF_WIDTH = (25.0, 24.0, 23.0, 22.0, 21.0)
_LUMBAR_HALF_DEPTH = (17.0, 17.5, 17.5, 17.0, 16.5)
_LUMBAR_DISC_HEIGHT = (11.0, 11.5, 10.5, 9.5, 8.5)  # disc 1 = L5/S1
_LUMBAR_TRANSVERSE = (18.0, 22.0, 26.0, 22.0, 18.0)
_SACRAL_HEIGHTS = (29.0, 23.0, 19.0, 15.0, 12.0)  # S1..S5
_SACRAL_REMNANTS_MM = (2.0, 1.0, 1.0, 1.0, 0.0)  # below S1, S2, ...: only S1/S2 keeps a disc remnant

# Pfirrmann grade -> disc height factor; grades 4-5 are visibly narrowed.
HEIGHT_FACTOR_BY_GRADE = {1: 1.0, 2: 0.97, 3: 0.9, 4: 0.62, 5: 0.42}


def _level_size(level: int, lumbar: tuple[float, ...], thoracic_top: float, per_level: float, floor: float) -> float:
    if level <= 5:
        return lumbar[level - 1]
    return max(floor, thoracic_top - per_level * (level - 6))


def make_anatomy(seed: int) -> PatientAnatomy:
    """The patient drawn from `seed`: deterministic, about a millisecond."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA7A]))
    sex = "F" if rng.random() < 0.5 else "M"
    age = int(rng.integers(20, 86))
    scale = (0.92 if sex == "F" else 1.0) * float(rng.uniform(0.94, 1.06))
    # The top edge cuts vertebra `visible`; pieces of the one above may show too (5-9 labelled in all).
    visible = int(rng.choice([5, 6, 7, 8], p=[0.15, 0.3, 0.35, 0.2]))
    top_level = visible + 2
    gradings = _draw_gradings(rng, top_level=top_level, age=age)

    body_heights = [scale * _level_size(k, _LUMBAR_BODY_HEIGHT, 23.0, 0.9, 17.0) for k in range(1, top_level + 1)]
    disc_heights = [
        scale * _level_size(k, _LUMBAR_DISC_HEIGHT, 7.0, 0.5, 4.5) * HEIGHT_FACTOR_BY_GRADE[gradings[k - 1].pfirrmann]
        for k in range(1, top_level + 1)
    ]
    # Arc-length layout from s = 0 (S1 upper endplate) upwards: disc 1, vertebra 1, disc 2, ...
    body_s, disc_s = [], []
    s = 0.0
    for k in range(top_level):
        disc_s.append((s, s + disc_heights[k]))
        s += disc_heights[k]
        body_s.append(s + body_heights[k] / 2)
        s += body_heights[k]
    s_l1_top = body_s[4] + body_heights[4] / 2
    sacral_heights = [scale * h for h in _SACRAL_HEIGHTS]
    sacral_s, s = [], 0.0
    for h, remnant in zip(sacral_heights, _SACRAL_REMNANTS_MM, strict=True):
        sacral_s.append(s - h / 2)
        s -= h + scale * remnant
    s_min, s_max = s - 10.0, body_s[-1] + body_heights[-1] / 2 + 60.0

    curve = _make_curve(rng, s_min=s_min, s_max=s_max, s_l1_top=s_l1_top, gradings=gradings, disc_s=disc_s)

    marrow = rng.uniform(0.93, 1.07, size=top_level)
    vertebrae = []
    for k in range(1, top_level + 1):
        lumbar = k <= 5
        half_depth = scale * _level_size(k, _LUMBAR_HALF_DEPTH, 15.5, 0.4, 12.0)
        vertebrae.append(
            Vertebra(
                level=k,
                frame=curve.frame(body_s[k - 1]),
                height_mm=body_heights[k - 1],
                half_width_mm=scale * _level_size(k, _LUMBAR_HALF_WIDTH, 19.5, 0.8, 14.0),
                half_depth_anterior_mm=half_depth,
                half_depth_posterior_mm=0.82 * half_depth,
                canal_half_width_mm=scale * ((12.0 if k == 1 else 11.0) if lumbar else 8.5),
                canal_half_depth_mm=scale * ((7.5 if k == 1 else 8.0) if lumbar else 7.0),
                spinous_length_mm=scale * (28.0 if lumbar else 36.0) * float(rng.uniform(0.9, 1.1)),
                spinous_height_mm=scale * (15.0 if lumbar else 9.0),
                spinous_slope=0.15 if lumbar else 0.7,
                transverse_length_mm=scale * _level_size(k, _LUMBAR_TRANSVERSE, 18.0, 0.0, 18.0),
                marrow_factor=float(marrow[k - 1]),
                modic_bands=_modic_bands(k, gradings),
            )
        )
    sacrum = []
    for index, h in enumerate(sacral_heights):
        shrink = 0.8**index
        sacrum.append(
            Vertebra(
                level=-index,
                frame=curve.frame(sacral_s[index]),
                height_mm=h,
                half_width_mm=scale * 26.0 * shrink,
                half_depth_anterior_mm=scale * 18.0 * shrink,
                half_depth_posterior_mm=scale * 14.0 * shrink,
                canal_half_width_mm=scale * max(4.0, 11.0 * shrink),
                canal_half_depth_mm=scale * max(2.0, 6.0 * shrink**1.5),
                spinous_length_mm=scale * 8.0 * shrink,
                spinous_height_mm=scale * 8.0,
                spinous_slope=0.0,
                transverse_length_mm=scale * (30.0 if index == 0 else 22.0 * shrink),
                marrow_factor=float(rng.uniform(0.93, 1.07)),
                sacral=True,
                modic_bands=_modic_bands(0, gradings) if index == 0 else (),
            )
        )
    all_vertebrae = [*reversed(sacrum), *vertebrae]  # bottom first: S5 .. S1, L5, ...
    discs = tuple(
        Disc(
            level=k,
            grading=gradings[k - 1],
            height_mm=disc_heights[k - 1],
            above=vertebrae[k - 1],
            below=all_vertebrae[len(sacrum) + k - 2],
        )
        for k in range(1, top_level + 1)
    )
    fat = float(rng.uniform(8.0, 30.0)) * (1.25 if sex == "F" else 1.0)
    return PatientAnatomy(
        seed=int(seed),
        sex=sex,
        age_years=age,
        visible_levels=visible,
        curve=curve,
        vertebrae=tuple(vertebrae),
        sacrum=tuple(sacrum),
        discs=discs,
        gradings=tuple(gradings),
        fat_thickness_mm=fat,
        back_depth_mm=scale * float(rng.uniform(48.0, 62.0)),
        marrow_t1_factor=1.0 + (age - 50) / 250.0,
        scale=scale,
    )


def _draw_gradings(rng: np.random.Generator, *, top_level: int, age: int) -> list[DiscGrading]:
    """Pfirrmann grades and findings per disc; lower lumbar discs and older patients degenerate more."""
    propensity = float(np.clip(rng.beta(2.0, 2.5) + (age - 50) / 120.0, 0.0, 1.0))
    slip_level = int(rng.choice([1, 2])) if rng.random() < 0.1 else 0
    gradings = []
    for level in range(1, top_level + 1):
        if level <= 2:
            mean = 1.8 + 2.6 * propensity
        elif level <= 5:
            mean = 1.5 + 1.8 * propensity
        else:
            mean = 1.2 + 0.8 * propensity
        grade = int(np.clip(round(mean + rng.normal(0.0, 0.8)), 1, 5))
        modic = 0
        upper = lower = False
        if grade >= 3 and rng.random() < 0.25 + 0.2 * propensity:
            modic = int(rng.choice([1, 2, 3], p=[0.35, 0.55, 0.10]))
            upper = bool(rng.random() < 0.7)
            lower = bool(rng.random() < 0.7) or not upper
        herniation = grade >= 3 and bool(rng.random() < 0.2)
        bulging = grade >= 3 and not herniation and bool(rng.random() < 0.35)
        gradings.append(
            DiscGrading(
                level=level,
                pfirrmann=grade,
                modic=modic,
                upper_endplate=upper,
                lower_endplate=lower,
                spondylolisthesis=level == slip_level,
                herniation=herniation,
                bulging=bulging,
            )
        )
    return gradings


def _modic_bands(level: int, gradings: list[DiscGrading]) -> tuple[tuple[int, int, float], ...]:
    """Marrow bands of vertebra `level` (0 = S1) next to discs with Modic changes."""
    bands = []
    below = gradings[level - 1] if level >= 1 else None  # the disc under this vertebra
    above = gradings[level] if level < len(gradings) else None  # the disc over it
    if below is not None and below.modic and below.upper_endplate:
        bands.append((-1, below.modic, 6.0))
    if above is not None and above.modic and above.lower_endplate:
        bands.append((+1, above.modic, 6.0))
    return tuple(bands)


def _make_curve(
    rng: np.random.Generator,
    *,
    s_min: float,
    s_max: float,
    s_l1_top: float,
    gradings: list[DiscGrading],
    disc_s: list[tuple[float, float]],
) -> SpineCurve:
    sacral_slope = math.radians(rng.uniform(30.0, 45.0))
    thoracolumbar = math.radians(rng.uniform(-12.0, -2.0))
    kyphosis_per_mm = math.radians(rng.uniform(0.03, 0.08))
    sacral_per_mm = math.radians(rng.uniform(0.15, 0.35))
    s = np.arange(s_min, s_max + CURVE_STEP_MM, CURVE_STEP_MM)
    # Lordosis: the lean falls fast over L5-L4 and flattens towards L1 (apex near L3).
    remaining = 1.0 - np.clip(s, 0.0, s_l1_top) / s_l1_top
    phi = np.where(
        s >= 0,
        thoracolumbar
        + (sacral_slope - thoracolumbar) * remaining**1.5
        - kyphosis_per_mm * np.maximum(s - s_l1_top, 0.0),
        sacral_slope - sacral_per_mm * s,
    )
    phi = np.clip(phi, math.radians(-25.0), math.radians(80.0))
    # Integrate the tangent (0, -sin phi, cos phi) from s = 0 in both directions.
    dy = -np.sin(phi) * CURVE_STEP_MM
    dz = np.cos(phi) * CURVE_STEP_MM
    zero = int(np.argmin(np.abs(s)))
    y = np.cumsum(dy) - np.cumsum(dy)[zero]
    z = np.cumsum(dz) - np.cumsum(dz)[zero]
    amplitude = rng.uniform(0.0, 1.5)  # a slight scoliosis: mid-sagittal slices still meet the midline
    phase = rng.uniform(0.0, 2 * math.pi)
    x = amplitude * (np.sin(2 * math.pi * s / 320.0 + phase) - math.sin(phase))
    for grading, (low, high) in zip(gradings, disc_s, strict=True):
        if grading.spondylolisthesis:  # everything above the disc slips anteriorly
            shift = rng.uniform(4.0, 8.0)
            t = np.clip((s - low) / (high - low), 0.0, 1.0)
            y = y - shift * t * t * (3 - 2 * t)
    offset = np.array([rng.uniform(-5, 5), rng.uniform(-30, 30), rng.uniform(-120, 40)])
    points = np.stack([x, y, z], axis=1) + offset
    return SpineCurve(s_mm=s, points_mm=points, phi_rad=phi)
