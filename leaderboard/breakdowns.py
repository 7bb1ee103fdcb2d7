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
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np

from challenge import labels
from challenge.errors import DataError
from challenge.release import GRADINGS_FILE, OVERVIEW_FILE, SEQUENCES, parse_series_name, read_release
from leaderboard.titles import SEQUENCE_TITLES
from submissions.records import SubmissionResults

PFIRRMANN_COLUMNS = ("Pfirrman grade", "Pfirrmann grade")  # the release spells it with one n
UNKNOWN = "unknown"
_DISCS = labels.Group.DISCS.value
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
    discs) without a value for submission s; `counts[k]` is how many the category holds and
    `case_counts[k]` how many distinct cases they come from.
    """

    dimension: str
    metric: str
    structure: str
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    submission_ids: tuple[int, ...]
    means: np.ndarray
    missing: np.ndarray
    case_counts: tuple[int, ...] = ()

    def without_small(self, minimum: int) -> Breakdown:
        """The breakdown without the categories of fewer than `minimum` cases."""
        counts = self.case_counts or self.counts
        keep = [k for k, n in enumerate(counts) if n >= minimum]
        return Breakdown(self.dimension, self.metric, self.structure, tuple(self.categories[k] for k in keep),
                         tuple(self.counts[k] for k in keep), self.submission_ids, self.means[:, keep],
                         self.missing[:, keep], tuple(counts[k] for k in keep))

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
        return CaseCatalog(MappingProxyType(infos), MappingProxyType({}),
                           ("no test set given: no scanner or grading breakdowns",))
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


def _group_values(submission: SubmissionResults, metric: str, structure: str) -> dict[Hashable, float]:
    return {
        row.case: float(row.value) for row in submission.rows
        if row.is_group and row.metric == metric and row.structure == structure and row.has_value
    }


@dataclass(frozen=True)
class _Grouping:
    """Each item (a case, or a case's disc) and its category; categories named in `order` come first,
    then the others sorted, unknown last."""

    category_of: Mapping[Hashable, str]
    order: Sequence[str] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        present = set(self.category_of.values())
        categories = [c for c in self.order if c in present] + sorted(present - set(self.order) - {UNKNOWN})
        return tuple(categories + [UNKNOWN] if UNKNOWN in present else categories)

    def items_in(self, category: str) -> list[Hashable]:
        return [item for item, c in self.category_of.items() if c == category]


def _breakdown(
    dimension: str, metric: str, structure: str, submissions: Sequence[SubmissionResults], grouping: _Grouping,
    values_of: Callable[[SubmissionResults], Mapping[Hashable, float]],
) -> Breakdown:
    """`values_of` gives a submission's values per item of `grouping`."""
    categories = grouping.categories
    members = [grouping.items_in(category) for category in categories]
    means = np.full((len(submissions), len(categories)), np.nan)
    missing = np.zeros((len(submissions), len(categories)), dtype=int)
    for s, submission in enumerate(submissions):
        values = values_of(submission)
        for k, items in enumerate(members):
            found = [values[item] for item in items if item in values]
            missing[s, k] = len(items) - len(found)
            if found:
                means[s, k] = float(np.mean(found))
    case_counts = tuple(len({item[0] if isinstance(item, tuple) else item for item in items}) for items in members)
    return Breakdown(dimension, metric, structure, categories, tuple(len(items) for items in members),
                     tuple(s.id for s in submissions), means, missing, case_counts)


def by_case_attribute(
    submissions: Sequence[SubmissionResults], info: CaseCatalog, *, dimension: str, metric: str, structure: str
) -> Breakdown:
    """The whole-group metric per case, averaged within each value of `dimension`.

    `dimension` is "sequence", "manufacturer" or "field strength".
    """
    attribute = {"sequence": "sequence", "manufacturer": "manufacturer", "field strength": "field_strength"}[dimension]
    items: dict[Hashable, str] = {}
    for case, case_info in info.cases.items():
        value = getattr(case_info, attribute)
        items[case] = (SEQUENCE_TITLES.get(value, value) if attribute == "sequence" else value) or UNKNOWN
    order = [SEQUENCE_TITLES[s] for s in SEQUENCES] if attribute == "sequence" else ()
    return _breakdown(dimension, metric, structure, submissions, _Grouping(items, order),
                      lambda s: _group_values(s, metric, structure))


def by_disc_grade(submissions: Sequence[SubmissionResults], info: CaseCatalog, *, metric: str = "dice") -> Breakdown:
    """The per-disc metric (the level rows of the discs group) by Pfirrmann grade.

    A disc row's level name (e.g. "L5/S1") gives its level (1), which is the grading's IVD label.
    """
    items: dict[Hashable, str] = {}
    for submission in submissions:
        for row in submission.rows:
            if row.structure == _DISCS and not row.is_group and row.metric == metric:
                case_info = info.cases.get(row.case) or case_info_from_name(row.case)
                level = _DISC_LEVELS.get(row.level)
                grade = None
                if case_info.patient is not None and level is not None:
                    grade = info.pfirrmann.get((case_info.patient, level))
                items[(row.case, row.level)] = f"grade {grade}" if grade else UNKNOWN

    def values_of(submission: SubmissionResults) -> dict[Hashable, float]:
        return {
            (row.case, row.level): float(row.value) for row in submission.rows
            if row.structure == _DISCS and not row.is_group and row.metric == metric and row.has_value
        }

    return _breakdown("Pfirrmann grade", metric, _DISCS, submissions, _Grouping(items), values_of)


def has_known_category(breakdown: Breakdown) -> bool:
    """False when every item is of unknown category (e.g. no overview.csv): nothing to show."""
    return any(category != UNKNOWN for category in breakdown.categories)
