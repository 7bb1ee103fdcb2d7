"""Every edge-case rule of the declared table, applied to the rows of a case."""

from __future__ import annotations

import numpy as np
import pytest

from challenge import labels, rules
from challenge.rules import EdgeCase
from challenge.statuses import RowStatus
from evaluation.errors import InvalidPredictionError
from evaluation.profiles import metric_spec
from evaluation.score import score_case

from .conftest import SPACING_ZYX, perturbed, spine_reference

CANAL = labels.Group.SPINAL_CANAL.value


def _expected(metric: str, case: EdgeCase, shape) -> float:
    return metric_spec(metric).edge_value(case, fov_diagonal_mm=rules.fov_diagonal_mm(shape, SPACING_ZYX))


def _canal_group_rows(rows):
    return [r for r in rows if r.structure == CANAL and r.level == "all"]


@pytest.mark.parametrize("profile", ["full", "spider2024"])
def test_both_empty(profile):
    reference = spine_reference(canal=False)
    rows = score_case(reference, reference.copy(), SPACING_ZYX, profile=profile)
    canal = _canal_group_rows(rows)
    assert canal, "a group absent from both masks still gets its rows"
    for row in canal:
        assert row.status is RowStatus.BOTH_EMPTY
        assert row.value == _expected(row.metric, EdgeCase.BOTH_EMPTY, reference.shape)
    assert not [r for r in rows if r.structure == CANAL and r.level != "all"]


@pytest.mark.parametrize("profile", ["full", "spider2024"])
def test_reference_empty(profile):
    reference = spine_reference(canal=False)
    prediction = spine_reference(canal=True)
    rows = score_case(reference, prediction, SPACING_ZYX, profile=profile)
    canal = _canal_group_rows(rows)
    assert canal
    for row in canal:
        assert row.status is RowStatus.REFERENCE_EMPTY
        assert row.value == _expected(row.metric, EdgeCase.REFERENCE_EMPTY, reference.shape)
    if profile == "full":
        assert {r.metric: r.value for r in canal}["merged_hd95"] == rules.fov_diagonal_mm(reference.shape, SPACING_ZYX)


@pytest.mark.parametrize("profile", ["full", "spider2024"])
def test_prediction_empty(profile):
    reference = spine_reference(canal=True)
    prediction = spine_reference(canal=False)
    rows = score_case(reference, prediction, SPACING_ZYX, profile=profile)
    canal = [r for r in rows if r.structure == CANAL]
    assert {r.level for r in canal} == {"spinal canal", "all"}
    for row in canal:
        assert row.status is RowStatus.PREDICTION_EMPTY
        assert row.value == _expected(row.metric, EdgeCase.PREDICTION_EMPTY, reference.shape)


@pytest.mark.parametrize("status", [RowStatus.MISSING, RowStatus.INVALID])
@pytest.mark.parametrize("profile", ["full", "spider2024"])
def test_missing_or_invalid_case_scores_every_row_worst(profile, status):
    reference = spine_reference(canal=False)
    scored = score_case(reference, perturbed(reference), SPACING_ZYX, profile=profile)
    missing = score_case(reference, None, SPACING_ZYX, profile=profile, missing_status=status)
    assert [r.column for r in missing] == [r.column for r in scored], "the same rows as a scored case"
    for row in missing:
        assert row.status is status
        assert row.value == _expected(row.metric, EdgeCase.MISSING, reference.shape)
    # The canal is absent from the reference: a missing case still gets the worst value, not both-empty's.
    canal_dice = [r for r in missing if r.structure == CANAL and r.metric in ("dice", "DiceScoreSpinalCanal")]
    assert canal_dice and all(r.value == 0.0 for r in canal_dice)


def test_missing_never_beats_a_scored_case():
    reference = spine_reference()
    prediction = perturbed(reference)
    scored = {r.column: r for r in score_case(reference, prediction, SPACING_ZYX)}
    for row in score_case(reference, None, SPACING_ZYX):
        spec = metric_spec(row.metric)
        other = scored[row.column].value
        assert (row.value <= other) if spec.higher_is_better else (row.value >= other), row.column


def test_empty_reference_and_prediction():
    empty = np.zeros((5, 6, 7), dtype=np.uint8)
    rows = score_case(empty, empty.copy(), SPACING_ZYX)
    assert rows and all(r.status is RowStatus.BOTH_EMPTY for r in rows)
    assert {r.structure for r in rows} == {g.value for g in labels.SCORED_GROUPS}


def test_group_without_reference_instances_uses_the_rule_not_a_crash():
    """The official script divides by zero on a reference without discs."""
    reference = spine_reference(discs=False)
    prediction = spine_reference(discs=True)
    rows = {r.column: r for r in score_case(reference, prediction, SPACING_ZYX, profile="spider2024")}
    assert rows["DetectionRateDiscs"].value == 0.0
    assert rows["DetectionRateDiscs"].status is RowStatus.REFERENCE_EMPTY
    assert rows["DiceScoreDiscs"].value == 0.0


def test_prediction_of_another_shape_is_invalid_not_a_crash():
    reference = spine_reference()
    with pytest.raises(InvalidPredictionError, match="shape"):
        score_case(reference, reference[:, :-1], SPACING_ZYX)


@pytest.mark.parametrize("bad, error", [(42, InvalidPredictionError), (300, InvalidPredictionError)])
def test_prediction_with_unknown_labels_is_invalid(bad, error):
    reference = spine_reference()
    prediction = reference.astype(np.int32)
    prediction[0, 0, 0] = bad
    with pytest.raises(error, match=str(bad)):
        score_case(reference, prediction, SPACING_ZYX)


def test_reference_with_unknown_labels_is_a_data_error():
    from challenge.errors import UnknownLabelError

    reference = spine_reference()
    reference[0, 0, 0] = 99
    with pytest.raises(UnknownLabelError, match="99"):
        score_case(reference, reference.copy(), SPACING_ZYX)
