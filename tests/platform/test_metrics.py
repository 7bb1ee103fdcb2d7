"""The platform's metrics.json: never NaN or Infinity, the official SPIDER columns with spider2024, and the
leaderboard columns read from it as the platform reads them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.ranking import get_ranking
from challenge.results import ScoreRow
from challenge.statuses import CaseStatus, RowStatus
from evaluation.platform.columns import column_value, leaderboard_columns
from evaluation.platform.errors import PlatformError
from evaluation.platform.metrics import SINGLE_CASE_STD, non_finite_paths, platform_document
from evaluation.report import CaseOutcome, build_report, metrics_document

OFFICIAL = [name for name, column in SPIDER2024_COLUMNS.items() if column.official]


def report_of(values: dict[str, dict[str, float]], profile: str = "spider2024"):
    """A report from case -> column -> value (group rows of the spider2024 columns)."""
    rows = [ScoreRow(case, SPIDER2024_COLUMNS[column].group.value if SPIDER2024_COLUMNS[column].group else "all",
                     "all", column, value, RowStatus.SCORED)
            for case, columns in values.items() for column, value in columns.items()]
    with np.errstate(invalid="ignore"):  # aggregates over an infinite value, as a broken scorer would give them
        return build_report(profile, [CaseOutcome(case, CaseStatus.SCORED) for case in values], rows)


def test_a_single_case_gets_std_zero_where_spider_score_writes_nan():
    report = report_of({"1_t2": {"DiceScoreVertebrae": 0.9, "OveralASD": 1.5}})
    assert metrics_document(report)["aggregates"]["DiceScoreVertebrae"]["std"] == "NaN"
    document = platform_document(report, fov_diagonal_mm={"1_t2": 80.0}, phase="p", case_values=True)
    assert document["aggregates"]["DiceScoreVertebrae"]["std"] == SINGLE_CASE_STD
    assert document["DiceScoreVertebrae"] == {"mean": 0.9, "std": 0.0, "n": 1, "median": 0.9, "q1": 0.9, "q3": 0.9}
    assert non_finite_paths(document) == []
    json.dumps(document, allow_nan=False)


@pytest.mark.parametrize(("column", "bad", "worst"), [
    ("OveralASD", math.nan, 80.0),                # a distance: the field-of-view diagonal
    ("ASDDiscs", math.inf, 80.0),
    ("DiceScoreVertebrae", math.nan, 0.0),       # an overlap: 0
    ("DetectionRateDiscs", -math.inf, 0.0),
])
def test_a_non_finite_case_value_takes_the_declared_missing_value(column, bad, worst):
    report = report_of({"a": {column: bad}, "b": {column: 0.5}})
    document = platform_document(report, fov_diagonal_mm={"a": 80.0, "b": 70.0}, phase="p", case_values=True)
    assert document["case"]["a"]["metrics"][column] == worst
    assert document["aggregates"][column]["mean"] == pytest.approx((worst + 0.5) / 2)
    assert document["evaluation"]["non_finite_values_replaced"] == 1
    assert non_finite_paths(document) == []
    json.dumps(document, allow_nan=False)


def test_official_columns_are_top_level_with_spider2024_only():
    values = {"a": {name: 0.25 for name in SPIDER2024_COLUMNS}, "b": {name: 0.75 for name in SPIDER2024_COLUMNS}}
    document = platform_document(report_of(values), fov_diagonal_mm={}, phase="p", case_values=True)
    for name in OFFICIAL:
        assert document[name]["mean"] == 0.5 and document[name]["std"] == pytest.approx(math.sqrt(0.125))
        assert document[name] == document["aggregates"][name]
        assert column_value(document, f"{name}.mean") == 0.5
    full = platform_document(report_of(values, profile="full"), fov_diagonal_mm={}, phase="p", case_values=True)
    assert not set(SPIDER2024_COLUMNS) & set(full)


def test_case_values_are_withheld_when_the_phase_hides_them():
    report = report_of({"a": {"DiceScoreVertebrae": 0.5}, "b": {"DiceScoreVertebrae": 0.7}})
    document = platform_document(report, fov_diagonal_mm={}, phase="final", case_values=False)
    assert document["case"] == {}
    assert document["evaluation"]["case_values"].startswith("withheld")
    assert document["aggregates"]["DiceScoreVertebrae"]["mean"] == pytest.approx(0.6)


def test_non_finite_numbers_are_found_in_every_form():
    document = {"a": {"b": [1.0, math.nan]}, "c": "Infinity", "d": -math.inf, "e": "NaN-ish", "f": 3}
    assert non_finite_paths(document) == ["a.b[1]", "c", "d"]


def test_leaderboard_columns_of_each_profile():
    spider = [column.path for column in leaderboard_columns("spider2024")]
    assert spider[:len(OFFICIAL)] == [f"{name}.mean" for name in OFFICIAL]
    assert spider[len(OFFICIAL):] == ["IdentificationRateVertebrae.mean", "IdentificationRateDiscs.mean"]
    final = leaderboard_columns("full", get_ranking("final"))
    assert final[0].path == "aggregates.vertebrae/all/dice.mean" and final[0].direction == "higher"
    assert "aggregates.discs/all/assd.mean" in [column.path for column in final]
    assert all(column.path.startswith("aggregates.") for column in leaderboard_columns("full"))


@pytest.mark.parametrize(("document", "expected"), [
    ({"aggregates": {}}, "found no key 'dice'"),
    ({"aggregates": {"dice": {"mean": None}}}, "expected a finite number, found None"),
    ({"aggregates": {"dice": {"mean": "NaN"}}}, "expected a finite number, found 'NaN'"),
])
def test_a_column_the_platform_could_not_read_is_an_error(document, expected):
    with pytest.raises(PlatformError, match=expected):
        column_value(document, "aggregates.dice.mean")
