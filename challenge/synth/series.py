"""One synthetic series: the patient's anatomy sampled on the series' grid, with its mask."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from challenge.geometry import three_floats, three_ints
from challenge.labels import (
    DISC_OFFSET,
    PARTIAL_VERTEBRA_OFFSET,
    SPINAL_CANAL,
    Group,
    group_of,
    partial_vertebra_value,
    structure,
)
from challenge.synth.anatomy import DiscGrading, PatientAnatomy, make_anatomy
from challenge.synth.background import background_signal
from challenge.synth.contrast import CONTRASTS, SEQUENCES, apply_noise, blur, to_stored
from challenge.synth.errors import SynthError
from challenge.synth.grid import SeriesGrid
from challenge.synth.protocol import SPACE, Scanner, patient_protocol, plan_series, scanner_for
from challenge.synth.raster import Canvas, physical_coordinates
from challenge.synth.scene import spine_parts

GENERATOR = "spider-harness synth"
GENERATOR_VERSION = "1"
PARTIAL_LABEL_PROBABILITY = 0.3
MIN_STRUCTURE_MM3 = 150.0  # smaller pieces of a vertebra or disc at the field of view's edge stay unlabelled


@dataclass(frozen=True, eq=False)
class SyntheticSeries:
    """A generated image and mask with what was drawn: anatomy, grid, scanner and visible levels."""

    image: sitk.Image
    mask: sitk.Image
    sequence: str
    seed: int
    anatomy: PatientAnatomy
    grid: SeriesGrid
    scanner: Scanner
    slice_thickness_mm: float
    vertebra_levels: tuple[int, ...]  # levels labelled with their normal value (1 = L5)
    partial_levels: tuple[int, ...]  # levels labelled 100 + level (cut by the field of view)
    disc_levels: tuple[int, ...]  # IVD labels present (mask value 200 + level)

    @property
    def num_vertebrae(self) -> int:
        return len(self.vertebra_levels) + len(self.partial_levels)

    @property
    def num_discs(self) -> int:
        return len(self.disc_levels)

    @property
    def gradings(self) -> tuple[DiscGrading, ...]:
        """Gradings of the discs visible in this series."""
        return tuple(self.anatomy.grading(level) for level in self.disc_levels)

    @property
    def metadata(self) -> dict[str, str]:
        """The key-value pairs written into both .mha headers."""
        return {
            "Synthetic": "true",
            "SyntheticGenerator": f"{GENERATOR} {GENERATOR_VERSION}",
            "SyntheticSeed": str(self.seed),
            "SeriesSequence": self.sequence,
            "Manufacturer": self.scanner.manufacturer,
            "ManufacturerModelName": self.scanner.model,
            "MagneticFieldStrength": f"{self.scanner.field_strength_t:g}",
            "SliceThickness": f"{self.slice_thickness_mm:g}",
            "PatientSex": self.anatomy.sex,
            "PatientAge": f"{self.anatomy.age_years:03d}Y",
        }


def make_series(
    *,
    sequence: str,
    seed: int,
    voxel_scale: float = 1.0,
    size_xyz: tuple[int, int, int] | None = None,
) -> SyntheticSeries:
    """Generate series `sequence` of the patient drawn from `seed` (deterministic).

    `voxel_scale` multiplies every spacing and divides the matrix size (same field of view).
    `size_xyz` fixes the voxel count per index axis (x, y, z); its smallest axis becomes the
    left-right slice axis and the field of view follows from size times spacing.
    """
    if sequence not in SEQUENCES:
        raise SynthError(f"sequence must be one of {', '.join(SEQUENCES)}, got {sequence!r}")
    check_voxel_scale(voxel_scale)
    check_seed(seed)
    if size_xyz is not None:
        if len(size_xyz) != 3 or any(int(v) != v or v < 4 for v in size_xyz):
            raise SynthError(f"size_xyz must be three integers >= 4, got {size_xyz!r}")
    seed = int(seed)
    anatomy = make_anatomy(seed)
    protocol = patient_protocol(seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1E5, SEQUENCES.index(sequence)]))
    plan = plan_series(
        anatomy,
        sequence=sequence,
        orientation=protocol.orientations[sequence],
        rng=rng,
        voxel_scale=float(voxel_scale),
        size_xyz=three_ints(size_xyz) if size_xyz is not None else None,
    )
    grid = plan.grid
    contrast = CONTRASTS[sequence]
    canvas = Canvas(grid, background_signal(anatomy, grid, contrast, rng), contrast)
    for part in spine_parts(anatomy):
        canvas.paint(part)
    _finish_labels(canvas, partial=bool(rng.random() < PARTIAL_LABEL_PROBABILITY))
    stored = _acquire(canvas.signal, grid=grid, sequence=sequence, rng=rng)
    levels = sorted(canvas.label_boxes)
    series = SyntheticSeries(
        image=_to_image(stored, grid),
        mask=_to_image(canvas.mask, grid),
        sequence=sequence,
        seed=seed,
        anatomy=anatomy,
        grid=grid,
        scanner=scanner_for(protocol, sequence),
        slice_thickness_mm=plan.slice_thickness_mm,
        vertebra_levels=tuple(v for v in levels if group_of(v) is Group.VERTEBRAE),
        partial_levels=tuple(v - PARTIAL_VERTEBRA_OFFSET for v in levels if group_of(v) is Group.PARTIAL_VERTEBRAE),
        disc_levels=tuple(v - DISC_OFFSET for v in levels if group_of(v) is Group.DISCS),
    )
    for image in (series.image, series.mask):
        for key, value in series.metadata.items():
            image.SetMetaData(key, value)
    return series


def check_voxel_scale(voxel_scale: float) -> None:
    number = isinstance(voxel_scale, numbers.Real) and not isinstance(voxel_scale, bool)
    if not (number and math.isfinite(voxel_scale) and 0.25 <= voxel_scale <= 10):
        raise SynthError(f"voxel scale must be a number from 0.25 to 10, got {voxel_scale!r}")


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")


def _finish_labels(canvas: Canvas, *, partial: bool) -> None:
    """Drop slivers of structures, then relabel vertebrae cut by the field of view as partial."""
    voxel_mm3 = float(np.prod(canvas.grid.spacing_mm))
    for label in sorted(canvas.label_boxes):
        if label != SPINAL_CANAL and canvas.voxel_count(label) * voxel_mm3 < MIN_STRUCTURE_MM3:
            canvas.relabel(label, 0)
    if not partial:
        return
    slice_array_axis = 2 - canvas.grid.slice_axis
    on_edge: set[int] = set()
    for axis in range(3):
        if axis != slice_array_axis:
            for end in (0, -1):
                on_edge.update(int(v) for v in np.unique(np.take(canvas.mask, end, axis=axis)))
    for label in sorted(on_edge):
        if label and group_of(label) is Group.VERTEBRAE:
            canvas.relabel(label, partial_vertebra_value(structure(label).level))


def _acquire(signal: np.ndarray, *, grid: SeriesGrid, sequence: str, rng: np.random.Generator) -> np.ndarray:
    """Blur, bias field, Rician noise and integer storage of the relative signal (in place)."""
    slice_array_axis = 2 - grid.slice_axis
    space = sequence == SPACE
    sigma = three_floats((0.5 if space else 0.2) if axis == slice_array_axis else 0.45 for axis in range(3))
    blur(signal, sigma_voxels_zyx=sigma)
    x, y, z = physical_coordinates(grid)
    center = grid.center_mm()
    posterior_gain = float(rng.uniform(0.2, 0.5))
    vertical_falloff = float(rng.uniform(0.15, 0.4))
    signal *= np.exp(
        posterior_gain * (y - center[1]) / 100.0 - vertical_falloff * ((z - center[2]) / 150.0) ** 2
    ).astype(np.float32)
    signal *= np.exp(float(rng.uniform(-0.1, 0.1)) * (x - center[0]) / 100.0).astype(np.float32)
    apply_noise(signal, sigma=float(rng.uniform(0.02, 0.035) if space else rng.uniform(0.012, 0.025)), rng=rng)
    if space:
        return to_stored(signal, full_scale=float(rng.uniform(500.0, 900.0)), dtype=np.uint16)
    return to_stored(signal, full_scale=float(rng.uniform(900.0, 1600.0)), dtype=np.int16)


def _to_image(array: np.ndarray, grid: SeriesGrid) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(grid.spacing_mm)
    image.SetOrigin(grid.origin_mm)
    image.SetDirection(grid.direction)
    return image
