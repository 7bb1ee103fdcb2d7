"""The declared rules: complete edge-case table, tolerances with rationale, partial vertebrae."""

from __future__ import annotations

import math
import re

import pytest

from challenge import labels, rules
from challenge.labels import Group
from challenge.rules import FOV_DIAGONAL, EdgeCase


def test_rules_version_is_a_version_string():
    assert re.fullmatch(r"\d+\.\d+\.\d+", rules.RULES_VERSION)


@pytest.mark.parametrize("name", sorted(rules.METRICS))
def test_every_metric_declares_direction_unit_definition_and_every_edge_case(name):
    spec = rules.METRICS[name]
    assert spec.name == name
    assert spec.direction in (rules.Direction.HIGHER, rules.Direction.LOWER)
    assert spec.definition
    assert set(spec.edge_values) == set(EdgeCase)


@pytest.mark.parametrize("name", sorted(rules.METRICS))
def test_missing_case_takes_the_worst_value(name):
    spec = rules.METRICS[name]
    missing = spec.edge_value(EdgeCase.MISSING, fov_diagonal_mm=500.0)
    for case in EdgeCase:
        other = spec.edge_value(case, fov_diagonal_mm=500.0)
        assert (missing <= other) if spec.higher_is_better else (missing >= other)


@pytest.mark.parametrize("name, both, prediction, reference, missing", [
    ("dice", 1.0, 0.0, 0.0, 0.0),
    ("nsd", 1.0, 0.0, 0.0, 0.0),
    ("assd", 0.0, FOV_DIAGONAL, FOV_DIAGONAL, FOV_DIAGONAL),
    ("hd95", 0.0, FOV_DIAGONAL, FOV_DIAGONAL, FOV_DIAGONAL),
    ("asd", 0.0, FOV_DIAGONAL, FOV_DIAGONAL, FOV_DIAGONAL),
    ("detection_rate", 1.0, 0.0, 0.0, 0.0),
    ("identification_rate", 1.0, 0.0, 0.0, 0.0),
])
def test_edge_case_table_values(name, both, prediction, reference, missing):
    assert rules.edge_case_table()[name] == {
        "both_empty": both, "prediction_empty": prediction, "reference_empty": reference, "missing": missing,
    }


def test_worst_distance_is_the_field_of_view_diagonal():
    diagonal = rules.fov_diagonal_mm((10, 20, 30), (3.0, 0.5, 0.7))
    assert diagonal == pytest.approx(math.sqrt(30.0**2 + 10.0**2 + 21.0**2))
    assert rules.METRICS["hd95"].edge_value(EdgeCase.MISSING, fov_diagonal_mm=diagonal) == diagonal


def test_merged_metrics_follow_their_base_metric():
    for base in rules.MERGED_BASES:
        assert rules.METRICS["merged_" + base].edge_values == rules.METRICS[base].edge_values


@pytest.mark.parametrize("group", labels.SCORED_GROUPS)
def test_each_scored_group_has_an_nsd_tolerance_with_rationale(group):
    tolerance = rules.NSD_TOLERANCES[group]
    assert 0 < tolerance.tolerance_mm < 3.15  # below the thinnest TSE slice distance
    assert len(tolerance.rationale) > 80
    assert rules.tolerance_mm(group) == tolerance.tolerance_mm


def test_no_tolerance_for_unscored_group():
    with pytest.raises(KeyError, match="partial"):
        rules.tolerance_mm(Group.PARTIAL_VERTEBRAE)


def test_partial_vertebrae_are_scored_as_their_level():
    for level in range(1, labels.MAX_LEVEL + 1):
        assert rules.scored_value(labels.partial_vertebra_value(level)) == labels.vertebra_value(level)
        assert rules.scored_group(labels.partial_vertebra_value(level)) is Group.VERTEBRAE
    assert rules.scored_value(labels.disc_value(3)) == labels.disc_value(3)
    assert rules.scored_value(labels.SPINAL_CANAL) == labels.SPINAL_CANAL


def test_rules_as_data_carries_version_and_table():
    data = rules.rules_as_data()
    assert data["version"] == rules.RULES_VERSION
    assert data["edge_cases"] == rules.edge_case_table()
    assert data["detection_dice_threshold"] == 0.1
    assert set(data["nsd_tolerance_mm"]) == {g.value for g in labels.SCORED_GROUPS}


def test_metric_spec_rejects_incomplete_or_infinite_edge_values():
    with pytest.raises(ValueError, match="declares no value"):
        rules.MetricSpec("x", "x", "", rules.Direction.HIGHER, "d", {EdgeCase.BOTH_EMPTY: 1.0})
    with pytest.raises(ValueError, match="finite"):
        rules.MetricSpec("x", "x", "", rules.Direction.HIGHER, "d", {c: math.inf for c in EdgeCase})


def test_challenge_rules_import_nothing_from_other_packages():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(rules))
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {"evaluation", "submissions", "leaderboard", "baselines"}


def test_edge_case_table_constant_matches_the_metric_specs():
    assert set(rules.EDGE_CASE_TABLE) == set(rules.METRICS)
    for name, values in rules.EDGE_CASE_TABLE.items():
        assert dict(values) == dict(rules.METRICS[name].edge_values)


# One fingerprint per rules version. A change to any rule (a value, a tolerance, a definition)
# changes the fingerprint: bump RULES_VERSION and record the new one here, so that results files
# computed under different rules never carry the same version.
RULES_FINGERPRINTS = {
    "1.0.0": "24b69738d3c14f49857be0ea622336877e8601eefca57ec57a6fae76dd62e769",
    "1.1.0": "0494b07c4e9ae9491f3a3d5a118bc7c769ac06cc56b1d51bd836fbddb98ea429",
}


def test_rules_cannot_change_without_a_version_bump():
    import hashlib
    import json

    fingerprint = hashlib.sha256(json.dumps(rules.rules_as_data(), sort_keys=True).encode()).hexdigest()
    assert rules.RULES_VERSION in RULES_FINGERPRINTS, f"record the fingerprint of {rules.RULES_VERSION}: {fingerprint}"
    assert fingerprint == RULES_FINGERPRINTS[rules.RULES_VERSION], (
        f"the rules changed (fingerprint {fingerprint}) but RULES_VERSION is still {rules.RULES_VERSION}: bump it")
