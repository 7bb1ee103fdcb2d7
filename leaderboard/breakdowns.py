"""Results broken down by sequence, scanner, field strength and disc Pfirrmann grade.

Sequence and patient come from the case name (<patient>_<sequence>); scanner manufacturer and
field strength from the test set's overview.csv; grades from radiological_gradings.csv, where
a disc's mask value is 200 + `IVD label`, i.e. the grading of IVD label L belongs to the disc
result rows of level L.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np

from challenge import labels
from challenge.errors import DataError
from challenge.release import GRADINGS_FILE, OVERVIEW_FILE, SEQUENCES, parse_series_name, read_release
from leaderboard.inputs import SubmissionResults

SEQUENCE_TITLES = {"t1": "T1", "t2": "T2", "t2_SPACE": "T2 SPACE"}
PFIRRMANN_COLUMNS = ("Pfirrman grade", "Pfirrmann grade")  # the release spells it with one n
UNKNOWN = "unknown"
_DISC_LEVELS = {s.name: s.level for s in labels.LABEL_MAP.values() if s.group is labels.Group.DISCS}


@dataclass(frozen=True)
class CaseInfo:
    """What is known about one case of the test set besides its images."""

    case: str
    patient: int | None
    sequence: str | None
    manufacturer: str | None = None
    field_strength: str | None = None


@dataclass(frozen=True)
class CaseCatalog:
    """Case attributes and disc grades ((patient, disc level) -> Pfirrmann grade)."""

    cases: Mapping[str, CaseInfo]
    pfirrmann: Mapping[tuple[int, int], str]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Breakdown:
    """Mean of one metric of one structure group per category, for each submission.

    `means[s, k]` is over the values found; `missing[s, k]` counts the category's cases (or
    discs) without a value for submission s; `counts[k]` is how many the category holds.
    """

    dimension: str
    metric: str
    structure: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    submission_ids: tuple[str, ...]
    means: np.ndarray
    missing: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.dimension}-{self.metric}-{self.structure}".replace(" ", "-").lower()


def case_info_from_name(case: str) -> CaseInfo:
    try:
        patient, sequence = parse_series_name(case)
    except DataError:
        return CaseInfo(case, None, None)
    return CaseInfo(case, patient, sequence)


def _field_strength(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return f"{float(text):g} T"
    except ValueError:
        return text


def read_case_catalog(root: Path | None, cases: Sequence[str]) -> CaseCatalog:
    """Attributes of `cases`: from their names, and from the test set's CSV files when `root` is given."""
    infos = {case: case_info_from_name(case) for case in cases}
    if root is None:
        return CaseCatalog(MappingProxyType(infos), MappingProxyType({}), ("no test set given: no scanner or grading breakdowns",))
    release = read_release(root, check_masks=False, require_masks=False)
    overview = {series.name: series.overview for series in release.series}
    for case, info in infos.items():
        row = overview.get(case, {})
        infos[case] = CaseInfo(
            case, info.patient, info.sequence,
            manufacturer=(row.get("Manufacturer") or "").strip() or None,
            field_strength=_field_strength(row.get("MagneticFieldStrength") or ""),
        )
    grades: dict[tuple[int, int], str] = {}
    for grading in release.gradings:
        grade = next((grading.grades[c] for c in PFIRRMANN_COLUMNS if grading.grades.get(c)), None)
        if grade:
            grades[(grading.patient_id, grading.ivd_label)] = grade
    # Only what limits the breakdowns is worth a word here; the data checks report the rest.
    notes = tuple(w for w in release.warnings if OVERVIEW_FILE in w or GRADINGS_FILE in w)
    return CaseCatalog(MappingProxyType(infos), MappingProxyType(grades), notes)


def _group_values(submission: SubmissionResults, metric: str, structure: str) -> dict[str, float]:
    return {
        row.case: float(row.value) for row in submission.rows
        if row.level is None and row.metric == metric and row.structure == structure and row.value is not None
    }


def _breakdown(
    dimension: str, metric: str, structure: str, submissions: Sequence[SubmissionResults],
    items: Mapping[object, str], values_of: Callable[[SubmissionResults], Mapping[object, float]], order: Sequence[str] = (),
) -> Breakdown:
    """`items` maps each case (or disc) to its category; `values_of` gives a submission's values per item."""
    present = set(items.values())
    categories = [c for c in order if c in present] + sorted(present - set(order) - {UNKNOWN})
    if UNKNOWN in present:
        categories.append(UNKNOWN)
    means = np.full((len(submissions), len(categories)), np.nan)
    missing = np.zeros((len(submissions), len(categories)), dtype=int)
    counts = [sum(1 for c in items.values() if c == category) for category in categories]
    for s, submission in enumerate(submissions):
        values = values_of(submission)
        for k, category in enumerate(categories):
            found = [values[item] for item, c in items.items() if c == category and item in values]
            missing[s, k] = counts[k] - len(found)
            if found:
                means[s, k] = float(np.mean(found))
    return Breakdown(dimension, metric, structure, tuple(categories), tuple(counts),
                     tuple(s.id for s in submissions), means, missing)


def by_case_attribute(
    submissions: Sequence[SubmissionResults], info: CaseCatalog, *, dimension: str, metric: str, structure: str
) -> Breakdown:
    """The whole-group metric per case, averaged within each value of `dimension`.

    `dimension` is "sequence", "manufacturer" or "field strength".
    """
    attribute = {"sequence": "sequence", "manufacturer": "manufacturer", "field strength": "field_strength"}[dimension]
    items = {}
    for case, case_info in info.cases.items():
        value = getattr(case_info, attribute)
        items[case] = (SEQUENCE_TITLES.get(value, value) if attribute == "sequence" else value) or UNKNOWN
    order = [SEQUENCE_TITLES[s] for s in SEQUENCES] if attribute == "sequence" else ()
    return _breakdown(dimension, metric, structure, submissions, items,
                      lambda s: _group_values(s, metric, structure), order)


def by_disc_grade(submissions: Sequence[SubmissionResults], info: CaseCatalog, *, metric: str = "dice") -> Breakdown:
    """The per-disc metric (result rows of structure "discs" with a level) by Pfirrmann grade.

    A disc row's level name (e.g. "L5/S1") gives its level (1), which is the grading's IVD label.
    """
    items: dict[tuple[str, str], str] = {}
    for submission in submissions:
        for row in submission.rows:
            if row.structure == "discs" and row.level is not None and row.metric == metric:
                case_info = info.cases.get(row.case) or case_info_from_name(row.case)
                level = _DISC_LEVELS.get(row.level)
                grade = None
                if case_info.patient is not None and level is not None:
                    grade = info.pfirrmann.get((case_info.patient, level))
                items[(row.case, row.level)] = f"grade {grade}" if grade else UNKNOWN

    def values_of(submission: SubmissionResults) -> dict[tuple[str, str], float]:
        return {
            (row.case, row.level): float(row.value) for row in submission.rows
            if row.structure == "discs" and row.level is not None and row.metric == metric and row.value is not None
        }

    return _breakdown("Pfirrmann grade", metric, "discs", submissions, items, values_of)


def has_known_category(breakdown: Breakdown) -> bool:
    """False when every item is of unknown category (e.g. no overview.csv): nothing to show."""
    return any(category != UNKNOWN for category in breakdown.categories)
