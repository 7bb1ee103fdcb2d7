"""breakdowns.html: the ranked submissions' results by sequence, scanner, field strength and disc grade."""

from __future__ import annotations

import re
from dataclasses import dataclass

from challenge.phases import Disclosure
from leaderboard.breakdowns import Breakdown, CaseCatalog, by_case_attribute, by_disc_grade, has_known_category
from leaderboard.leaks import case_pattern
from leaderboard.ranked_phase import GROUPS, RankedPhase, headline_metric
from leaderboard.tables import Cell, Column, Table, metric_cell
from leaderboard.titles import group_title, metric_title
from leaderboard.writer import PageWriter

DIMENSIONS = (("sequence", "By sequence"), ("manufacturer", "By scanner manufacturer"),
              ("field strength", "By field strength"))
"""Each case attribute broken down by, and its section's heading."""


@dataclass(frozen=True)
class Section:
    title: str
    tables: tuple[Table, ...]


def write_breakdowns(writer: PageWriter, phase: RankedPhase, catalog: CaseCatalog, disclosure: Disclosure) -> None:
    """Groups of fewer than the disclosure's minimum of cases are left out; so are warnings naming a case
    where case names are not published."""
    published = disclosure.breakdowns and disclosure.aggregates
    sections = _sections(phase, catalog, disclosure.breakdown_minimum) if phase.ranked and published else []
    warnings = list(catalog.warnings)
    if not disclosure.case_names:
        pattern = case_pattern(catalog.cases)
        kept = [w for w in warnings if pattern is None or not pattern.search(w.encode("utf-8"))]
        if len(kept) < len(warnings):
            kept.append(f"{len(warnings) - len(kept)} note(s) on the test set files are not shown: they name cases.")
        warnings = kept
    minimum = disclosure.breakdown_minimum
    writer.page("breakdowns.html", "breakdowns.html", tables=[t for s in sections for t in s.tables],
                sections=sections, warnings=warnings, published=published,
                minimum_note=f"Groups of fewer than {minimum} cases are not shown." if minimum > 1 else "")


def _sections(phase: RankedPhase, catalog: CaseCatalog, minimum: int) -> list[Section]:
    """A section per case attribute that some case has a known value of, then one for the disc grades."""
    metric = headline_metric(phase.display)
    sections = []
    for dimension, heading in DIMENSIONS:
        tables = []
        for group in GROUPS:
            breakdown = by_case_attribute(phase.ranked, catalog, dimension=dimension, metric=metric, structure=group)
            breakdown = breakdown.without_small(minimum)
            if has_known_category(breakdown):
                tables.append(_breakdown_table(breakdown, phase, f"{metric_title(metric)} of {group_title(group)}"))
        if tables:
            sections.append(Section(heading, tuple(tables)))
    grades = by_disc_grade(phase.ranked, catalog, metric=metric).without_small(minimum)
    if has_known_category(grades):
        table = _breakdown_table(grades, phase, f"{metric_title(metric)} of each disc by its Pfirrmann grade")
        sections.append(Section("By disc degeneration (Pfirrmann grade)", (table,)))
    return sections


def _category_key(category: str) -> str:
    """A category's column key in CSV and JSON: 'T2 SPACE' -> 't2_space', '1.5 T' -> '1_5_t'."""
    return re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_") or "unknown"


def _breakdown_table(breakdown: Breakdown, phase: RankedPhase, title: str) -> Table:
    columns = [Column("team", "Team"), Column("algorithm", "Algorithm")]
    columns += [Column(_category_key(c), f"{c} (n={n})", numeric=True)
                for c, n in zip(breakdown.categories, breakdown.counts, strict=True)]
    rows = []
    for s, submission in enumerate(phase.ranked):
        row = [Cell(submission.team, submission.team), Cell(submission.algorithm_name, submission.algorithm_name)]
        for k in range(len(breakdown.categories)):
            cell = metric_cell(breakdown.metric, float(breakdown.means[s, k]))
            missing = int(breakdown.missing[s, k])
            row.append(Cell(cell.text, cell.value, extra=f"{missing} missing" if missing else ""))
        rows.append(tuple(row))
    return Table(breakdown.name, title, tuple(columns), tuple(rows))
