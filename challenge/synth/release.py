"""A folder of synthetic series in the SPIDER release layout.

    images/<patient>_<sequence>.mha   masks/<patient>_<sequence>.mha
    overview.csv                      radiological_gradings.csv
    SYNTHETIC.txt                     (says the data is generated; lists the files written)

The same arguments give byte-identical files. A non-empty folder is only reused when its
SYNTHETIC.txt says `spider synth` wrote it and it holds nothing else; otherwise nothing is
touched.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from challenge.images import read_header
from challenge.release import (
    GRADINGS_FILE,
    IMAGES_DIR,
    MASKS_DIR,
    OVERVIEW_FILE,
    SERIES_SUFFIX,
    image_path,
    mask_path,
)
from challenge.synth.contrast import SEQUENCES
from challenge.synth.errors import OutputFolderError, SynthError
from challenge.synth.protocol import SPACE, patient_protocol
from challenge.synth.series import (
    GENERATOR,
    GENERATOR_VERSION,
    SyntheticSeries,
    check_seed,
    check_voxel_scale,
    make_series,
)

MARKER = "SPIDER-harness synthetic data: every image and mask in this folder is generated, none comes from a patient."
MARKER_FILE = "SYNTHETIC.txt"
MAX_CASES = 10_000
VALIDATION_FRACTION = 0.2

OVERVIEW_COLUMNS = (
    "new_file_name", "patient_id", "sequence", "subset", "sex", "age", "num_vertebrae", "num_discs",
    "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength", "SliceThickness",
    "SpacingBetweenSlices", "PixelSpacing", "orientation", "synthetic", "generator",
)  # fmt: skip
GRADING_COLUMNS = (
    "Patient", "IVD label", "Modic", "UP endplate", "LOW endplate", "Spondylolisthesis",
    "Disc herniation", "Disc narrowing", "Disc bulging", "Pfirrman grade",
)  # fmt: skip


@dataclass(frozen=True)
class PlannedSeries:
    patient_id: int
    patient_seed: int
    sequence: str
    subset: str

    @property
    def name(self) -> str:
        return f"{self.patient_id}_{self.sequence}"


def write_release(
    out_dir: Path,
    *,
    cases: int,
    seed: int,
    voxel_scale: float = 1.0,
    sequences: Sequence[str] = SEQUENCES,
    progress: bool = False,
) -> list[Path]:
    """Write `cases` series (grouped into patients) to `out_dir`; return the image paths.

    Raises SynthError for bad arguments and OutputFolderError when `out_dir` is a file or a
    non-empty folder that `spider synth` did not write (then nothing is changed).
    """
    sequences = _check_arguments(cases=cases, seed=seed, voxel_scale=voxel_scale, sequences=sequences)
    out_dir = Path(out_dir)
    plan = plan_release(cases=cases, seed=seed, sequences=sequences)
    files = [f"{folder}/{item.name}{SERIES_SUFFIX}" for item in plan for folder in (IMAGES_DIR, MASKS_DIR)]
    files += [OVERVIEW_FILE, GRADINGS_FILE]
    _prepare_folder(out_dir)
    (out_dir / IMAGES_DIR).mkdir(exist_ok=True)
    (out_dir / MASKS_DIR).mkdir(exist_ok=True)
    _write_text(
        out_dir / MARKER_FILE,
        "\n".join(
            [
                MARKER,
                f"generator: {GENERATOR} {GENERATOR_VERSION}",
                f"seed: {seed}",
                f"cases: {cases}",
                f"voxel_scale: {voxel_scale:g}",
                f"sequences: {','.join(sequences)}",
                "Images are sagittal lumbar-spine MR look-alikes drawn from a geometric model;",
                "masks use the SPIDER label values. Do not use them to judge clinical performance.",
                "files:",
                *files,
            ]
        )
        + "\n",
    )
    overview_rows: list[dict[str, str]] = []
    visible_discs: dict[int, dict[int, object]] = {}
    image_paths = []
    for item in tqdm(plan, desc="spider synth", unit="series", disable=not progress):
        series = make_series(sequence=item.sequence, seed=item.patient_seed, voxel_scale=voxel_scale)
        series_image = image_path(out_dir, item.name)
        _write_image(series.image, series_image)
        _write_image(series.mask, mask_path(out_dir, item.name))
        image_paths.append(series_image)
        overview_rows.append(_overview_row(item, series, seed=seed, voxel_scale=voxel_scale))
        for grading in series.gradings:
            visible_discs.setdefault(item.patient_id, {})[grading.level] = grading
    _write_csv(out_dir / OVERVIEW_FILE, OVERVIEW_COLUMNS, overview_rows)
    grading_rows = [
        _grading_row(patient_id, grading)
        for patient_id in sorted(visible_discs)
        for _, grading in sorted(visible_discs[patient_id].items())
    ]
    _write_csv(out_dir / GRADINGS_FILE, GRADING_COLUMNS, grading_rows)
    return image_paths


def plan_release(*, cases: int, seed: int, sequences: Sequence[str]) -> list[PlannedSeries]:
    """Which series to draw: patients with 1-3 series, non-contiguous ids, an 80/20 split."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x2E1EA5E]))
    allowed = [s for s in SEQUENCES if s in sequences]
    tse = [s for s in allowed if s != SPACE]
    patients: list[tuple[int, int, list[str]]] = []
    patient_id = int(rng.integers(1, 4))
    remaining = cases
    while remaining > 0:
        patient_seed = int(np.random.SeedSequence([int(seed), patient_id]).generate_state(1)[0])
        siemens = patient_protocol(patient_seed).scanner.manufacturer == "SIEMENS"
        if tse and rng.random() < 0.12:
            chosen = [tse[int(rng.integers(len(tse)))]]
        else:
            chosen = list(tse)
        if SPACE in allowed and (not tse or (siemens and rng.random() < 0.6)):
            chosen.append(SPACE)
        chosen = chosen[:remaining]
        patients.append((patient_id, patient_seed, chosen))
        remaining -= len(chosen)
        patient_id += 1 + (int(rng.integers(1, 4)) if rng.random() < 0.35 else 0)
    # About one patient in five validates; at least one when there are two or more patients.
    validation_count = max(1, round(VALIDATION_FRACTION * len(patients))) if len(patients) >= 2 else 0
    validation = set(rng.choice(len(patients), size=validation_count, replace=False).tolist())
    subsets = ["validation" if index in validation else "training" for index in range(len(patients))]
    return [
        PlannedSeries(patient_id=pid, patient_seed=pseed, sequence=sequence, subset=subset)
        for (pid, pseed, chosen), subset in zip(patients, subsets, strict=True)
        for sequence in chosen
    ]


def _check_arguments(*, cases: int, seed: int, voxel_scale: float, sequences: Sequence[str]) -> tuple[str, ...]:
    if isinstance(cases, bool) or not isinstance(cases, int) or not 1 <= cases <= MAX_CASES:
        raise SynthError(f"cases must be an integer from 1 to {MAX_CASES}, got {cases!r}")
    check_seed(seed)
    check_voxel_scale(voxel_scale)
    if isinstance(sequences, str):
        sequences = [s for s in sequences.split(",") if s]
    unknown = [s for s in sequences if s not in SEQUENCES]
    if unknown or not sequences or len(set(sequences)) != len(sequences):
        raise SynthError(
            f"sequences must be distinct names from {', '.join(SEQUENCES)}, got {', '.join(sequences) or 'none'}"
        )
    return tuple(s for s in SEQUENCES if s in sequences)


def _prepare_folder(out_dir: Path) -> None:
    """Create `out_dir`, or empty a folder this generator wrote; refuse anything else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(
            f"{out_dir} is a file, not a folder: choose a new or empty folder for the synthetic data"
        )
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return
    present = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if not p.is_dir())
    if not present and not any(p for p in out_dir.iterdir() if p.name not in (IMAGES_DIR, MASKS_DIR)):
        return
    marker = out_dir / MARKER_FILE
    lines = marker.read_text(encoding="utf-8").splitlines() if marker.is_file() else []
    if not lines or lines[0] != MARKER:
        raise OutputFolderError(
            f"{out_dir} is not empty and was not written by `spider synth` (no {MARKER_FILE} from it); "
            "nothing was changed: choose a new or empty folder"
        )
    listed = set(lines[lines.index("files:") + 1 :]) if "files:" in lines else set()
    ours = listed | {MARKER_FILE}
    foreign = [name for name in present if name not in ours and not name.endswith((".partial.mha", ".partial"))]
    strays = [p for p in out_dir.iterdir() if p.is_dir() and p.name not in (IMAGES_DIR, MASKS_DIR)]
    if foreign or strays:
        names = (foreign + [p.name + "/" for p in strays])[:5]
        raise OutputFolderError(
            f"{out_dir} holds files that `spider synth` did not write ({', '.join(names)}); "
            "nothing was changed: move them away or choose another folder"
        )
    for name in present:
        (out_dir / name).unlink()


def _write_image(image: sitk.Image, path: Path) -> None:
    """Write an uncompressed .mha (deterministic bytes) via a temporary name."""
    partial = path.with_name(path.stem + ".partial.mha")
    sitk.WriteImage(image, str(partial), useCompression=False)
    os.replace(partial, path)


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8", newline="\n")
    os.replace(partial, path)


def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)


def _overview_row(item: PlannedSeries, series: SyntheticSeries, *, seed: int, voxel_scale: float) -> dict[str, str]:
    grid = series.grid
    slice_axis = grid.slice_axis
    pixel = [grid.spacing_mm[axis] for axis in range(3) if axis != slice_axis]
    return {
        "new_file_name": item.name,
        "patient_id": str(item.patient_id),
        "sequence": item.sequence,
        "subset": item.subset,
        "sex": series.anatomy.sex,
        "age": str(series.anatomy.age_years),
        "num_vertebrae": str(series.num_vertebrae),
        "num_discs": str(series.num_discs),
        "Manufacturer": series.scanner.manufacturer,
        "ManufacturerModelName": series.scanner.model,
        "MagneticFieldStrength": f"{series.scanner.field_strength_t:g}",
        "SliceThickness": f"{series.slice_thickness_mm:.4g}",
        "SpacingBetweenSlices": f"{grid.spacing_mm[slice_axis]:.4g}",
        "PixelSpacing": "[" + ", ".join(f"{v:.6g}" for v in pixel) + "]",
        "orientation": grid.orientation + (f" tilted {grid.oblique_deg:.1f} deg" if grid.oblique_deg else ""),
        "synthetic": "true",
        "generator": f"{GENERATOR} {GENERATOR_VERSION}, seed {seed}, voxel scale {voxel_scale:g}",
    }


def _grading_row(patient_id: int, grading) -> dict[str, str]:
    return {
        "Patient": str(patient_id),
        "IVD label": str(grading.level),
        "Modic": str(grading.modic),
        "UP endplate": str(int(grading.upper_endplate)),
        "LOW endplate": str(int(grading.lower_endplate)),
        "Spondylolisthesis": str(int(grading.spondylolisthesis)),
        "Disc herniation": str(int(grading.herniation)),
        "Disc narrowing": str(int(grading.narrowing)),
        "Disc bulging": str(int(grading.bulging)),
        "Pfirrman grade": str(grading.pfirrmann),
    }


def describe_image(path: Path) -> str:
    """One line about a written image: name, size and spacing (x, y, z), from its header only."""
    geometry = read_header(path)
    size = " x ".join(str(v) for v in geometry.size)
    spacing = " x ".join(f"{v:.3g}" for v in geometry.spacing_mm)
    return f"{Path(path).stem}: {size} voxels, spacing {spacing} mm"
