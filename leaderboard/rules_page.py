"""rules.html: the scoring rules as challenge.rules declares them (edge cases, metrics, matching)."""

from __future__ import annotations

from challenge import rules
from leaderboard.tables import MISSING_TEXT, Cell, Column, Table
from leaderboard.titles import group_title
from leaderboard.writer import PageWriter


def write_rules(writer: PageWriter) -> None:
    edge_cases, metrics = _edge_case_table(), _metrics_table()
    titles = rules.EDGE_CASE_TITLES
    meanings = [(titles[case].capitalize(), rules.EDGE_CASE_MEANINGS[case]) for case in rules.EdgeCase]
    tolerances = ", ".join(f"{group_title(str(g))} {t.tolerance_mm:g} mm" for g, t in rules.NSD_TOLERANCES.items())
    paragraphs = [rules.MATCHING_RULE, rules.PARTIAL_VERTEBRA_RULE, rules.INSTANCE_MEAN_RULE, rules.SCORING_GUARD_RULE,
                  f"NSD tolerances: {tolerances}. Detection threshold: Dice >= {rules.DETECTION_DICE_THRESHOLD:g}."]
    writer.page("rules.html", "rules.html", tables=[edge_cases, metrics], edge_cases=edge_cases, metrics=metrics,
                meanings=meanings, paragraphs=paragraphs)


def _edge_value_cell(value: rules.EdgeValue) -> Cell:
    if value == rules.FOV_DIAGONAL:
        return Cell("FOV diagonal", value)
    return Cell(f"{float(value):g}", float(value))


def _edge_case_table() -> Table:
    columns = [Column("metric", "Metric"), Column("unit", "Unit"), Column("direction", "Better")]
    columns += [Column(case.value, rules.EDGE_CASE_TITLES[case].capitalize()) for case in rules.EdgeCase]
    rows = []
    for name, spec in sorted(rules.METRICS.items()):
        direction = spec.direction.value
        row = [Cell(name, name), Cell(spec.unit or MISSING_TEXT, spec.unit or None), Cell(direction, direction)]
        row += [_edge_value_cell(spec.edge_values[case]) for case in rules.EdgeCase]
        rows.append(tuple(row))
    return Table("edge-cases", "", tuple(columns), tuple(rows))


def _metrics_table() -> Table:
    return Table(
        "metrics", "",
        (Column("metric", "Metric"), Column("title", "Title"), Column("definition", "Definition")),
        tuple((Cell(n, n), Cell(s.title, s.title), Cell(s.definition, s.definition))
              for n, s in sorted(rules.METRICS.items())),
    )
