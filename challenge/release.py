"""Reader for the SPIDER release layout: images/, masks/, overview.csv, radiological_gradings.csv."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from challenge import images, labels
from challenge.errors import DataError, MissingFileError, UnreadableFileError
from challenge.geometry import Geometry

SEQUENCES = ("t1", "t2", "t2_SPACE")
IMAGES_DIR = "images"
MASKS_DIR = "masks"
SERIES_SUFFIX = ".mha"
SUBSETS = ("training", "validation")
OVERVIEW_FILE = "overview.csv"
GRADINGS_FILE = "radiological_gradings.csv"
_SERIES_NAME = re.compile(r"^(?P<patient>\d+)_(?P<sequence>t1|t2|t2_SPACE)$")
# Columns of radiological_gradings.csv that link a grading to a mask; the grade columns
# themselves are kept as found, so new or missing grade columns are tolerated.
_GRADING_KEYS = ("Patient", "IVD label")


@dataclass(frozen=True)
class Series:
    """One MR series of the release and its reference mask."""

    name: str
    patient_id: int
    sequence: str
    image_path: Path
    mask_path: Path | None
    subset: str | None
    geometry: Geometry
    overview: Mapping[str, str] = field(default_factory=dict)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.geometry.spacing_mm

    @property
    def size(self) -> tuple[int, int, int]:
        return self.geometry.size


@dataclass(frozen=True)
class DiscGrading:
    """Radiological gradings of one disc; `mask_value` is the disc's value in the masks."""

    patient_id: int
    ivd_label: int
    mask_value: int
    grades: Mapping[str, str]


@dataclass(frozen=True)
class Release:
    """A release folder as read: its series, gradings, and every problem found."""

    root: Path
    series: tuple[Series, ...]
    gradings: tuple[DiscGrading, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    label_counts: Mapping[int, int] = field(default_factory=dict)

    def raise_for_problems(self) -> "Release":
        if self.problems:
            shown = "\n  ".join(self.problems[:20])
            more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            raise DataError(f"{self.root} is not a valid SPIDER release folder:\n  {shown}{more}")
        return self

    def gradings_of(self, patient_id: int) -> dict[int, DiscGrading]:
        """The patient's gradings keyed by disc mask value (200 + IVD label)."""
        return {g.mask_value: g for g in self.gradings if g.patient_id == patient_id}

    def by_name(self) -> dict[str, Series]:
        return {s.name: s for s in self.series}


def parse_series_name(file_name: str) -> tuple[int, str]:
    """Patient id and sequence of a file name such as '12_t2_SPACE.mha'."""
    stem = file_name[: -len(SERIES_SUFFIX)] if file_name.endswith(SERIES_SUFFIX) else file_name
    match = _SERIES_NAME.match(stem)
    if not match:
        raise DataError(
            f"unexpected file name {file_name!r}: expected <patient>_<sequence>{SERIES_SUFFIX} with sequence "
            f"one of {', '.join(SEQUENCES)}"
        )
    return int(match.group("patient")), match.group("sequence")


def image_path(root: Path | str, case: str) -> Path:
    """Where a release folder keeps a series' image: <root>/images/<case>.mha."""
    return Path(root) / IMAGES_DIR / f"{case}{SERIES_SUFFIX}"


def mask_path(root: Path | str, case: str) -> Path:
    """Where a release folder keeps a series' reference mask: <root>/masks/<case>.mha."""
    return Path(root) / MASKS_DIR / f"{case}{SERIES_SUFFIX}"


def case_name(file_name: str) -> str | None:
    """The series name of a release file name ('12_t2.mha' -> '12_t2'); None for other files."""
    if file_name.startswith(".") or not file_name.endswith(SERIES_SUFFIX):
        return None
    return file_name[: -len(SERIES_SUFFIX)]


def check_mask(mask_file: Path, image_geometry: Geometry) -> dict[int, int]:
    """Voxel count per label of a mask, after checking its grid and its values.

    Raises MissingFileError, UnreadableFileError, GeometryMismatchError or UnknownLabelError.
    """
    if not mask_file.is_file():
        raise MissingFileError(f"{mask_file.name}: no mask in {MASKS_DIR}/ for this image")
    checked = images.read_labels(mask_file, what="mask", expected=image_geometry, expected_what="its image",
                                 shown_as=f"{MASKS_DIR}/{mask_file.name}")
    return checked.voxel_counts()


def read_release(root: Path | str, *, check_masks: bool = True, require_masks: bool = True) -> Release:
    """Read a release folder, collecting every problem instead of stopping at the first.

    `check_masks` reads every mask's voxels to check values (slow on the full release);
    `require_masks=False` accepts a folder of images only (e.g. a hidden test set's inputs).
    Call `raise_for_problems()` on the result to turn problems into one DataError.
    """
    root = Path(root)
    problems: list[str] = []
    warnings: list[str] = []
    if not root.is_dir():
        raise MissingFileError(f"release folder not found: {root}")
    images_dir, masks_dir = root / IMAGES_DIR, root / MASKS_DIR
    if not images_dir.is_dir():
        raise MissingFileError(
            f"{root}: no {IMAGES_DIR}/ folder (expected {IMAGES_DIR}/<patient>_<sequence>{SERIES_SUFFIX})")
    if require_masks and not masks_dir.is_dir():
        problems.append(f"no {MASKS_DIR}/ folder (expected {MASKS_DIR}/<same file name as the image>{SERIES_SUFFIX})")

    overview = _read_overview(root, problems, warnings)
    label_counts: dict[int, int] = {}
    series: list[Series] = []
    for image_file in sorted(images_dir.iterdir(), key=lambda p: p.name):
        if image_file.name.startswith("."):
            continue
        try:
            patient_id, sequence = parse_series_name(image_file.name)
            if image_file.suffix != SERIES_SUFFIX:
                raise DataError(f"{IMAGES_DIR}/{image_file.name}: expected a {SERIES_SUFFIX} file")
            geometry = images.read_header(image_file)
        except DataError as error:
            problems.append(str(error))
            continue
        name = image_file.name[: -len(SERIES_SUFFIX)]
        candidate = mask_path(root, name)
        series_mask = candidate if candidate.is_file() else None
        if series_mask is None:
            if require_masks:
                problems.append(f"{image_file.name}: no mask in {MASKS_DIR}/ for this image")
        elif check_masks:
            try:
                for value, count in check_mask(series_mask, geometry).items():
                    label_counts[value] = label_counts.get(value, 0) + count
            except DataError as error:
                problems.append(str(error))
        row = overview.get(name, {})
        if overview and not row:
            warnings.append(f"{image_file.name}: no row in {OVERVIEW_FILE}")
        subset = row.get("subset") or None
        if subset is not None and subset not in SUBSETS:
            problems.append(f"{OVERVIEW_FILE}: series {name}: subset must be one of {SUBSETS}, found {subset!r}")
        series.append(
            Series(name, patient_id, sequence, image_file, series_mask, subset, geometry, MappingProxyType(row))
        )
    if not series and not problems:
        problems.append(f"{IMAGES_DIR}/ holds no series")
    if masks_dir.is_dir():
        image_names = {s.image_path.name for s in series}
        for extra_mask in sorted(masks_dir.glob(f"*{SERIES_SUFFIX}")):
            if extra_mask.name not in image_names and not (images_dir / extra_mask.name).exists():
                warnings.append(f"{MASKS_DIR}/{extra_mask.name}: no image with this name")
    gradings = _read_gradings(root, problems, warnings)
    return Release(
        root=root,
        series=tuple(series),
        gradings=tuple(gradings),
        problems=tuple(problems),
        warnings=tuple(warnings),
        label_counts=MappingProxyType(dict(sorted(label_counts.items()))),
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UnreadableFileError(f"{path.name}: cannot be read as CSV ({error})") from error


def _read_overview(root: Path, problems: list[str], warnings: list[str]) -> dict[str, dict[str, str]]:
    path = root / OVERVIEW_FILE
    if not path.is_file():
        warnings.append(f"no {OVERVIEW_FILE}: series have no subset or scanner information")
        return {}
    try:
        rows = _read_csv(path)
    except DataError as error:
        problems.append(str(error))
        return {}
    if rows and "new_file_name" not in rows[0]:
        problems.append(f"{OVERVIEW_FILE}: expected a column 'new_file_name', found columns {sorted(rows[0])}")
        return {}
    by_name: dict[str, dict[str, str]] = {}
    for row in rows:
        name = row["new_file_name"]
        name = name[: -len(SERIES_SUFFIX)] if name.endswith(SERIES_SUFFIX) else name
        by_name[name] = row
    return by_name


def _read_gradings(root: Path, problems: list[str], warnings: list[str]) -> list[DiscGrading]:
    path = root / GRADINGS_FILE
    if not path.is_file():
        warnings.append(f"no {GRADINGS_FILE}: no disc gradings")
        return []
    try:
        rows = _read_csv(path)
    except DataError as error:
        problems.append(str(error))
        return []
    if rows and any(key not in rows[0] for key in _GRADING_KEYS):
        problems.append(f"{GRADINGS_FILE}: expected columns {list(_GRADING_KEYS)}, found {sorted(rows[0])}")
        return []
    gradings = []
    for line, row in enumerate(rows, start=2):
        try:
            patient_id, ivd_label = int(row["Patient"]), int(row["IVD label"])
            mask_value = labels.disc_value(ivd_label)
        except (ValueError, KeyError):
            problems.append(
                f"{GRADINGS_FILE} line {line}: expected an integer Patient and an IVD label in "
                f"1..{labels.MAX_LEVEL}, found {row.get('Patient')!r}, {row.get('IVD label')!r}"
            )
            continue
        grades = {k: v for k, v in row.items() if k not in _GRADING_KEYS}
        gradings.append(DiscGrading(patient_id, ivd_label, mask_value, MappingProxyType(grades)))
    return gradings
