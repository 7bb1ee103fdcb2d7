"""The platform's /output/metrics.json: the scoring report with no NaN or Infinity anywhere.

grand-challenge reads NaN and Infinity as null, and a leaderboard column that is null or missing
takes the submission out of the ranking. So the document holds finite numbers only: a case value
that is not finite (no profile computes one today; the rule is here so none can slip through) takes
its metric's declared missing-case value (challenge.rules, the field-of-view diagonal for a
distance), and the std of a column over fewer than 2 cases, NaN in `spider score`'s metrics.json,
is written as 0. Otherwise the document is `spider score`'s metrics.json (the `case` and
`aggregates` layout, schema version, rules), plus, with the spider2024 profile, the official
SPIDER evaluator's top-level columns ({"DiceScoreVertebrae": {"mean": .., "std": ..}, ...}) so
that a leaderboard configured for SPIDER's own evaluator keeps working. Per-case values are left
out (`case` is empty) when the phase's public site may not show them (hidden test data).
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import MappingProxyType
from typing import Any, Mapping

from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.rules import EdgeCase
from evaluation.platform.errors import PlatformError
from evaluation.profiles import metric_spec
from evaluation.report import ScoreReport, build_report, metrics_document

SINGLE_CASE_STD = 0.0
"""The std written for a column with fewer than 2 cases (pandas and `spider score` give NaN)."""
FINITE_RULE = (
    "no number is NaN or infinite (the platform reads those as null and leaves the submission unranked): a case "
    "value that is not finite takes its metric's missing-case value, and the std over fewer than 2 cases is 0"
)
CASE_VALUES_WITHHELD = (
    "withheld: the phase's public site may not show per-case values (hidden test data); `case` is empty"
)
_NON_FINITE_TEXT = frozenset({"NaN", "Infinity", "-Infinity"})


def finite_report(report: ScoreReport, *, fov_diagonal_mm: Mapping[str, float]) -> tuple[ScoreReport, int]:
    """`report` with every value finite (see the module doc) and the number of case values replaced.

    `fov_diagonal_mm` maps each case to its field-of-view diagonal, the worst distance.
    """
    rows = []
    replaced = 0
    for row in report.rows:
        if math.isfinite(row.value):
            rows.append(row)
            continue
        if row.case not in fov_diagonal_mm:
            raise PlatformError(f"case {row.case!r} has a value that is not finite and no field-of-view diagonal "
                                "to take the worst distance from")
        worst = metric_spec(row.metric).edge_value(EdgeCase.MISSING, fov_diagonal_mm=fov_diagonal_mm[row.case])
        rows.append(dataclasses.replace(row, value=worst))
        replaced += 1
    rebuilt = build_report(report.profile, report.cases, rows, unmatched_predictions=report.unmatched_predictions)
    aggregates = {column: aggregate if math.isfinite(aggregate.std) else dataclasses.replace(aggregate,
                                                                                               std=SINGLE_CASE_STD)
                  for column, aggregate in rebuilt.aggregates.items()}
    return dataclasses.replace(rebuilt, aggregates=MappingProxyType(aggregates)), replaced


def platform_document(report: ScoreReport, *, fov_diagonal_mm: Mapping[str, float], phase: str,
                      case_values: bool) -> dict:
    """The content of the platform's metrics.json; PlatformError if a non-finite number were left."""
    finite, replaced = finite_report(report, fov_diagonal_mm=fov_diagonal_mm)
    document = metrics_document(finite)
    document["non_finite_numbers"] = FINITE_RULE
    document["evaluation"] = {
        "phase": phase,
        "non_finite_values_replaced": replaced,
        "case_values": "included" if case_values else CASE_VALUES_WITHHELD,
    }
    if not case_values:
        document["case"] = {}
    if report.profile == "spider2024":
        for name in SPIDER2024_COLUMNS:
            if name in document:
                raise PlatformError(f"the official column {name!r} would replace the document's own key {name!r}")
            if name in document["aggregates"]:
                document[name] = dict(document["aggregates"][name])
    left = non_finite_paths(document)
    if left:
        raise PlatformError(f"metrics.json would hold non-finite numbers at {', '.join(left[:5])}: a bug, please "
                            "report it (the platform would leave the submission unranked)")
    return document


def non_finite_paths(value: Any, path: str = "") -> list[str]:
    """The dotted paths of every NaN or infinite number, or its text form ('NaN', 'Infinity'), in `value`."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in non_finite_paths(item, f"{path}.{key}" if path
                                                                                      else str(key))]
    if isinstance(value, (list, tuple)):
        return [found for index, item in enumerate(value) for found in non_finite_paths(item, f"{path}[{index}]")]
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    if isinstance(value, str) and value in _NON_FINITE_TEXT:
        return [path]
    return []


def metrics_text(document: dict) -> str:
    """The document as JSON: sorted keys, UTF-8, and a refusal (ValueError) of any NaN or Infinity."""
    return json.dumps(document, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
