"""The scoring report: per-case rows, aggregates over cases, and its two files.

`metrics.json` follows grand-challenge's layout ({"case": ..., "aggregates": ...}) and adds the
schema version, the profile, the rules version and the edge-case table; `cases.csv` is the long
table (case, structure, level, metric, value, status). Keys are sorted, numbers are written
with Python's shortest round-trip repr, and nothing depends on time or paths, so the same
inputs give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

from challenge import rules
from challenge.results import ScoreRow
from challenge.statuses import CaseStatus
from challenge.text import spreadsheet_safe
from evaluation.profiles import metric_spec

SCHEMA_VERSION = 1
METRICS_FILE = "metrics.json"
CASES_FILE = "cases.csv"
CASES_COLUMNS = ("case", "structure", "level", "metric", "value", "status")
NON_FINITE_ENCODING = 'non-finite numbers are written as the strings "NaN", "Infinity" and "-Infinity"'


@dataclass(frozen=True)
class Aggregate:
    """A column's summary over the cases that have it (std with n - 1, as pandas; NaN for n < 2)."""

    n: int
    mean: float
    std: float
    median: float
    q1: float
    q3: float

    @classmethod
    def of(cls, values: Iterable[float]) -> "Aggregate":
        array = np.asarray(list(values), dtype=np.float64)
        if array.size == 0:
            raise ValueError("an aggregate needs at least one value")
        q1, median, q3 = np.percentile(array, [25, 50, 75])
        std = float(np.std(array, ddof=1)) if array.size > 1 else math.nan
        return cls(int(array.size), float(np.mean(array)), std, float(median), float(q1), float(q3))

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "median": self.median,
                "q1": self.q1, "q3": self.q3}


@dataclass(frozen=True)
class CaseOutcome:
    """Whether a case was scored, and why not (the reason recorded for a missing or invalid case)."""

    case: str
    status: CaseStatus
    reason: str = ""


@dataclass(frozen=True)
class ScoreReport:
    """Everything a scoring run found: per-case outcomes and rows, and aggregates per column."""

    profile: str
    rules_version: str
    cases: tuple[CaseOutcome, ...]
    rows: tuple[ScoreRow, ...]
    aggregates: Mapping[str, Aggregate]
    unmatched_predictions: tuple[str, ...] = ()

    def value(self, case: str, column: str) -> float:
        """The value of `column` in `case`; KeyError naming both if the case has no such row."""
        for row in self.rows:
            if row.case == case and row.column == column:
                return row.value
        raise KeyError(f"case {case!r} has no column {column!r}")

    def case_outcome(self, case: str) -> CaseOutcome:
        for outcome in self.cases:
            if outcome.case == case:
                return outcome
        raise KeyError(f"no case {case!r} in the report")


def build_report(
    profile: str,
    outcomes: Iterable[CaseOutcome],
    rows: Iterable[ScoreRow],
    *,
    unmatched_predictions: Iterable[str] = (),
) -> ScoreReport:
    """A report with aggregates over cases for every column (cases sorted by name)."""
    outcomes = tuple(sorted(outcomes, key=lambda o: o.case))
    order = {o.case: i for i, o in enumerate(outcomes)}
    rows = tuple(sorted(rows, key=lambda r: order[r.case]))  # stable: keeps each case's row order
    by_column: dict[str, list[float]] = {}
    for row in rows:
        by_column.setdefault(row.column, []).append(row.value)
    aggregates = {column: Aggregate.of(values) for column, values in sorted(by_column.items())}
    return ScoreReport(
        profile=profile,
        rules_version=rules.RULES_VERSION,
        cases=outcomes,
        rows=rows,
        aggregates=MappingProxyType(aggregates),
        unmatched_predictions=tuple(sorted(unmatched_predictions)),
    )


def _encode(value):
    """JSON-ready copy of `value` with non-finite floats as strings and numpy scalars as Python's."""
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return number_text(float(value)) if not math.isfinite(value) else float(value)
    return value


def number_text(value: float) -> str:
    """A float as text: shortest round-trip repr, or NaN / Infinity / -Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def metrics_document(report: ScoreReport) -> dict:
    """The content of metrics.json."""
    cases: dict[str, dict] = {
        o.case: {"status": o.status.value, "reason": o.reason, "metrics": {}} for o in report.cases
    }
    columns: dict[str, dict] = {}
    for row in report.rows:
        cases[row.case]["metrics"][row.column] = row.value
        if row.column not in columns:
            spec = metric_spec(row.metric)
            columns[row.column] = {"structure": row.structure, "level": row.level, "metric": row.metric,
                                   "unit": spec.unit, "direction": spec.direction.value}
    rules_data = rules.rules_as_data()
    edge_cases = rules_data.pop("edge_cases")
    return _encode({
        "schema_version": SCHEMA_VERSION,
        "non_finite_numbers": NON_FINITE_ENCODING,
        "profile": report.profile,
        "rules_version": report.rules_version,
        "edge_cases": edge_cases,
        "rules": rules_data,
        "columns": columns,
        "case": cases,
        "aggregates": {column: agg.as_dict() for column, agg in report.aggregates.items()},
        "unmatched_predictions": list(report.unmatched_predictions),
        "counts": {status.value: sum(o.status is status for o in report.cases) for status in CaseStatus},
    })


def metrics_json_text(report: ScoreReport) -> str:
    return json.dumps(metrics_document(report), sort_keys=True, indent=2, allow_nan=False,
                      ensure_ascii=False) + "\n"


def cases_csv_text(report: ScoreReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CASES_COLUMNS)
    for row in report.rows:
        writer.writerow((spreadsheet_safe(row.case), row.structure, row.level, row.metric, number_text(row.value),
                         row.status.value))
    return buffer.getvalue()


def write_report(report: ScoreReport, out_dir: Path) -> tuple[Path, Path]:
    """Write OUT/metrics.json and OUT/cases.csv (UTF-8, '\\n' line ends); returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / METRICS_FILE
    cases_path = out_dir / CASES_FILE
    metrics_path.write_text(metrics_json_text(report), encoding="utf-8", newline="\n")
    cases_path.write_text(cases_csv_text(report), encoding="utf-8", newline="\n")
    return metrics_path, cases_path
