"""Scoring profiles: which rows a case gets and how each is computed.

`full` is this harness's metric set (MONAI definitions, per level and per group, detection and
identification). `spider2024` reproduces the official SPIDER evaluator's per-series columns with
its matching and ASD definition, with the spacing defect fixed and the other defects replaced by
the declared rules (docs/scoring.md lists every difference).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from challenge import labels, rules
from challenge.labels import SCORED_GROUPS, Group
from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.results import GROUP_LEVEL, ScoreRow
from challenge.rules import EdgeCase, MetricSpec
from challenge.statuses import RowStatus
from evaluation.case_scores import CaseScorer, SurfacePair
from evaluation.errors import EvaluationError
from evaluation.matching import Match, dice_from_counts

OVERALL = "all"
"""The `structure` of a spider2024 row that covers every group (OveralDiceScore, OveralASD)."""

MONAI_CONNECTIVITY = 1
OFFICIAL_CONNECTIVITY = 3




def metric_spec(metric: str) -> MetricSpec:
    """The rules (direction, unit, edge values) of a row's metric, official column names included."""
    if metric in SPIDER2024_COLUMNS:
        return rules.METRICS[SPIDER2024_COLUMNS[metric].metric]
    try:
        return rules.METRICS[metric]
    except KeyError:
        raise KeyError(f"unknown metric {metric!r}") from None


class _RowCollector:
    def __init__(self, case: str, fov_diagonal_mm: float):
        self.case = case
        self.fov_diagonal_mm = fov_diagonal_mm
        self.rows: list[ScoreRow] = []

    def add(self, structure: str, level: str, values: Mapping[str, float], status: RowStatus,
            label: int | None = None) -> None:
        for metric, value in values.items():
            self.rows.append(ScoreRow(self.case, structure, level, metric, float(value), status, label))

    def add_edge(self, structure: str, level: str, metrics: tuple[str, ...], case: EdgeCase,
                 label: int | None = None) -> dict[str, float]:
        """Rows holding the declared values of `case`; returns those values by metric."""
        values = {m: metric_spec(m).edge_value(case, fov_diagonal_mm=self.fov_diagonal_mm) for m in metrics}
        self.add(structure, level, values, RowStatus(case.value), label)
        return values


def _emptiness(reference_has: bool, prediction_has: bool) -> EdgeCase | None:
    if reference_has and prediction_has:
        return None
    if reference_has:
        return EdgeCase.PREDICTION_EMPTY
    return EdgeCase.REFERENCE_EMPTY if prediction_has else EdgeCase.BOTH_EMPTY


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


# ---- full ---------------------------------------------------------------------------------

FULL_INSTANCE_METRICS = ("dice", "assd", "hd95", "nsd", "detected", "identified")
FULL_MEAN_METRICS = ("dice", "assd", "hd95", "nsd")
FULL_RATE_METRICS = ("detection_rate", "identification_rate")
FULL_MERGED_METRICS = tuple(rules.MERGED_PREFIX + m for m in rules.MERGED_BASES)


def _surface_values(scorer: CaseScorer, reference_values, prediction_values, tolerance_mm: float) -> dict[str, float]:
    metrics = scorer.surface_metrics(reference_values, prediction_values, connectivity=MONAI_CONNECTIVITY,
                                     tolerance_mm=tolerance_mm)
    return {"assd": metrics.assd, "hd95": metrics.hd95, "nsd": metrics.nsd}


def _full_pairs(scorer: CaseScorer) -> list[SurfacePair]:
    """Every pair of masks whose surfaces the full profile's rows compare."""
    census = scorer.census
    pairs = []
    for match in scorer.matches(same_group_only=True):
        if match.prediction is not None:
            pairs.append(SurfacePair.of((match.reference,), (match.prediction,), MONAI_CONNECTIVITY,
                                        rules.tolerance_mm(match.group)))
    for group in SCORED_GROUPS:
        referenced, predicted = census.reference_values(group), census.prediction_values(group)
        if referenced and predicted:
            pairs.append(SurfacePair.of(referenced, predicted, MONAI_CONNECTIVITY, rules.tolerance_mm(group)))
    return pairs


def _full_rows(case: str, scorer: CaseScorer) -> list[ScoreRow]:
    rows = _RowCollector(case, scorer.fov_diagonal_mm)
    census = scorer.census
    matches = scorer.matches(same_group_only=True)
    if scorer.has_prediction:
        scorer.prepare(_full_pairs(scorer))
    for group in SCORED_GROUPS:
        structure = group.value
        tolerance = rules.tolerance_mm(group)
        instances = [m for m in matches if m.group is group]
        predicted = census.prediction_values(group)
        per_instance: list[dict[str, float]] = []
        for match in instances:
            level = labels.structure(match.reference).name
            if match.prediction is None:
                values = rows.add_edge(structure, level, FULL_INSTANCE_METRICS, EdgeCase.PREDICTION_EMPTY,
                                       match.reference)
            else:
                values = {"dice": match.dice,
                          **_surface_values(scorer, (match.reference,), (match.prediction,), tolerance),
                          "detected": float(match.detected), "identified": float(match.identified)}
                rows.add(structure, level, values, RowStatus.SCORED, match.reference)
            per_instance.append(values)

        if instances:
            status = (RowStatus.SCORED if any(m.prediction is not None for m in instances)
                      else RowStatus.PREDICTION_EMPTY)
            means = {m: _mean([v[m] for v in per_instance]) for m in FULL_MEAN_METRICS}
            means["detection_rate"] = _mean([v["detected"] for v in per_instance])
            means["identification_rate"] = _mean([v["identified"] for v in per_instance])
            rows.add(structure, GROUP_LEVEL, means, status)
        else:
            edge = EdgeCase.REFERENCE_EMPTY if predicted else EdgeCase.BOTH_EMPTY
            rows.add_edge(structure, GROUP_LEVEL, FULL_MEAN_METRICS + FULL_RATE_METRICS, edge)

        referenced = census.reference_values(group)
        merged_edge = _emptiness(bool(referenced), bool(predicted))
        if merged_edge is None:
            dice = dice_from_counts(census.overlap(referenced, predicted),
                                    census.reference_count(referenced), census.prediction_count(predicted))
            values = {"dice": dice, **_surface_values(scorer, referenced, predicted, tolerance)}
            rows.add(structure, GROUP_LEVEL, {rules.MERGED_PREFIX + k: v for k, v in values.items()},
                     RowStatus.SCORED)
        else:
            rows.add_edge(structure, GROUP_LEVEL, FULL_MERGED_METRICS, merged_edge)
    return rows.rows


# ---- spider2024 ---------------------------------------------------------------------------

SPIDER2024_INSTANCE_METRICS = ("dice", "asd", "detected", "identified")


def _official_asd(scorer: CaseScorer, match: Match) -> float:
    if match.prediction is None:
        raise ValueError(f"reference {match.reference} has no matched prediction to measure a distance to")
    return scorer.surface_metrics((match.reference,), (match.prediction,), connectivity=OFFICIAL_CONNECTIVITY,
                                  tolerance_mm=0.0).assd


def _spider2024_rows(case: str, scorer: CaseScorer) -> list[ScoreRow]:
    rows = _RowCollector(case, scorer.fov_diagonal_mm)
    census = scorer.census
    matches = scorer.matches(same_group_only=False)
    if scorer.has_prediction:
        scorer.prepare([SurfacePair.of((m.reference,), (m.prediction,), OFFICIAL_CONNECTIVITY, 0.0)
                        for m in matches if m.prediction is not None])
    per_instance: dict[int, dict[str, float]] = {}
    for match in matches:
        structure = match.group.value
        level = labels.structure(match.reference).name
        if match.prediction is None:
            values = rows.add_edge(structure, level, SPIDER2024_INSTANCE_METRICS, EdgeCase.PREDICTION_EMPTY,
                                   match.reference)
        else:
            values = {"dice": match.dice, "asd": _official_asd(scorer, match),
                      "detected": float(match.detected), "identified": float(match.identified)}
            rows.add(structure, level, values, RowStatus.SCORED, match.reference)
        per_instance[match.reference] = values

    for column in SPIDER2024_COLUMNS.values():
        instances = [m for m in matches if column.group is None or m.group is column.group]
        predicted = (census.prediction_values(column.group) if column.group is not None
                     else census.prediction_values())
        structure = column.group.value if column.group is not None else OVERALL
        if not instances:
            edge = EdgeCase.REFERENCE_EMPTY if predicted else EdgeCase.BOTH_EMPTY
            rows.add_edge(structure, GROUP_LEVEL, (column.name,), edge)
            continue
        if column.metric == "dice" and column.group in (Group.VERTEBRAE, Group.DISCS):
            # Official: undetected instances leave the group's Dice mean (the detection rate counts them).
            column_values = [per_instance[m.reference]["dice"] for m in instances if m.detected]
        else:
            source = {"dice": "dice", "asd": "asd", "detection_rate": "detected",
                      "identification_rate": "identified"}[column.metric]
            column_values = [per_instance[m.reference][source] for m in instances]
        if not any(m.prediction is not None for m in instances) or not column_values:
            rows.add_edge(structure, GROUP_LEVEL, (column.name,), EdgeCase.PREDICTION_EMPTY)
        else:
            rows.add(structure, GROUP_LEVEL, {column.name: _mean(column_values)}, RowStatus.SCORED)
    return rows.rows


# ---- registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A named metric set: `build(case, scorer)` returns the case's rows in a fixed order."""

    name: str
    description: str
    build: Callable[[str, CaseScorer], list[ScoreRow]]


PROFILES: Mapping[str, Profile] = MappingProxyType({
    "full": Profile(
        "full",
        "Dice, ASSD, HD95 and NSD per reference level and per structure group (instance mean and merged "
        "mask), with detection and identification rates; MONAI definitions.",
        _full_rows,
    ),
    "spider2024": Profile(
        "spider2024",
        "The official SPIDER 2024 per-series columns (best-overlap matching, full-connectivity ASD), with "
        "the spacing fixed and the edge cases by the declared rules, plus identification rates.",
        _spider2024_rows,
    ),
})


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise EvaluationError(f"unknown scoring profile {name!r}; choose one of {sorted(PROFILES)}") from None
