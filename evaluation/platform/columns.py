"""The leaderboard columns of an evaluation (the platform's `score_jsonpath`s) and their values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from challenge.labels import SCORED_GROUPS
from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.ranking import JOB, RankingConfig
from challenge.results import GROUP_LEVEL, column_name
from challenge.rules import METRICS
from evaluation.platform.errors import PlatformError
from evaluation.profiles import FULL_MEAN_METRICS, FULL_RATE_METRICS


@dataclass(frozen=True)
class LeaderboardColumn:
    """One column as the platform's phase settings name it: a dotted path into metrics.json."""

    path: str
    direction: str


def leaderboard_columns(profile: str, ranking: RankingConfig | None = None) -> tuple[LeaderboardColumn, ...]:
    """spider2024: the official top-level columns (`DiceScoreVertebrae.mean`, ...), the two added
    identification rates last. full: the phase's ranked columns in `aggregates` (their case aggregate,
    mean or median; the runner's job measures are not the evaluation's), else every group column."""
    if profile == "spider2024":
        ordered = sorted(SPIDER2024_COLUMNS.values(), key=lambda column: not column.official)
        return tuple(LeaderboardColumn(f"{column.name}.mean", METRICS[column.metric].direction.value)
                     for column in ordered)
    if ranking is not None:
        ranked = tuple(
            LeaderboardColumn(f"aggregates.{column_name(column.structure, GROUP_LEVEL, column.metric)}."
                              f"{ranking.case_aggregate}", column.direction)
            for column in ranking.columns if column.structure != JOB)
        if ranked:
            return ranked
    return tuple(LeaderboardColumn(f"aggregates.{column_name(group.value, GROUP_LEVEL, metric)}.mean",
                                   METRICS[metric].direction.value)
                 for group in SCORED_GROUPS for metric in FULL_MEAN_METRICS + FULL_RATE_METRICS)


def column_value(document: Any, path: str) -> float:
    """The number at `path` (split on dots, as the platform does); PlatformError when the platform would
    find none there, which leaves the submission unranked."""
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PlatformError(f"leaderboard column {path}: expected a value at this path in metrics.json, found "
                                f"no key {part!r} (the platform would leave the submission unranked)")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlatformError(f"leaderboard column {path}: expected a finite number, found {value!r} (the platform "
                            "would leave the submission unranked)")
    return float(value)
