"""The spider2024 profile: the official per-series columns with the defects fixed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from challenge import labels, rules
from challenge.official_columns import SPIDER2024_COLUMNS
from challenge.statuses import RowStatus
from evaluation.score import score_case

from .conftest import SPACING_ZYX, perturbed, spine_reference

OFFICIAL = ("DiceScoreVertebrae", "DiceScoreDiscs", "DiceScoreSpinalCanal", "OveralDiceScore",
            "DetectionRateVertebrae", "DetectionRateDiscs", "ASDVertebrae", "ASDDiscs", "ASDSpinalCanal", "OveralASD")


def _columns(reference, prediction):
    return {r.column: r for r in score_case(reference, prediction, SPACING_ZYX, profile="spider2024")}


def _official_style_asd(reference: np.ndarray, prediction: np.ndarray, spacing) -> float:
    """An independent ASD as the official script defines it (full-connectivity borders, pooled mean)."""
    footprint = ndimage.generate_binary_structure(3, 3)
    r_border = reference ^ ndimage.binary_erosion(reference, structure=footprint)
    p_border = prediction ^ ndimage.binary_erosion(prediction, structure=footprint)
    to_r = ndimage.distance_transform_edt(~r_border, sampling=spacing)[p_border]
    to_p = ndimage.distance_transform_edt(~p_border, sampling=spacing)[r_border]
    return float(np.concatenate([to_r, to_p]).mean())


def test_official_columns_are_all_there_plus_identification():
    columns = _columns(spine_reference(), spine_reference())
    per_series = {c for c, r in columns.items() if "/" not in c}
    assert per_series == set(OFFICIAL) | {"IdentificationRateVertebrae", "IdentificationRateDiscs"}
    assert {c for c, spec in SPIDER2024_COLUMNS.items() if spec.official} == set(OFFICIAL)


def test_perfect_prediction_scores_perfectly():
    columns = _columns(spine_reference(), spine_reference())
    for name in OFFICIAL:
        assert columns[name].value == (0.0 if name.startswith(("ASD", "OveralASD")) else 1.0), name


def test_asd_follows_the_official_definition_with_the_spacing_fixed():
    reference = spine_reference()
    prediction = perturbed(reference)
    rows = {(r.level, r.metric): r.value for r in score_case(reference, prediction, SPACING_ZYX, profile="spider2024")}
    for value in (labels.vertebra_value(2), labels.disc_value(1), labels.vertebra_value(3)):
        expected = _official_style_asd(reference == value, prediction == value, SPACING_ZYX)
        assert rows[(labels.structure(value).name, "asd")] == pytest.approx(expected, abs=1e-5)
    swapped = _official_style_asd(reference == 2, prediction == 2, SPACING_ZYX[::-1])
    assert abs(rows[("L4", "asd")] - swapped) > 0.1, "the official (x, y, z) spacing gives another value"


def test_undetected_instance_leaves_the_group_dice_mean_but_counts_elsewhere():
    reference = spine_reference()
    prediction = reference.copy()
    l3 = np.argwhere(reference == labels.vertebra_value(3))
    prediction[reference == labels.vertebra_value(3)] = 0
    prediction[tuple(l3[:5].T)] = labels.vertebra_value(3)  # a sliver: Dice far below 0.1
    columns = _columns(reference, prediction)
    n = len(l3)
    sliver = 2 * 5 / (n + 5)
    assert columns["DiceScoreVertebrae"].value == 1.0  # official: mean over detected vertebrae only
    assert columns["DetectionRateVertebrae"].value == pytest.approx(2 / 3)
    assert columns["OveralDiceScore"].value == pytest.approx((6 + sliver) / 7)


def test_missed_instance_counts_with_the_worst_asd_instead_of_being_dropped():
    reference = spine_reference()
    prediction = reference.copy()
    prediction[reference == labels.disc_value(2)] = 0
    columns = _columns(reference, prediction)
    diagonal = rules.fov_diagonal_mm(reference.shape, SPACING_ZYX)
    assert columns["ASDDiscs"].value == pytest.approx(diagonal / 3)
    assert columns["OveralASD"].value == pytest.approx(diagonal / 7)
    assert columns["DiceScoreDiscs"].value == 1.0
    assert columns["DetectionRateDiscs"].value == pytest.approx(2 / 3)


def test_reference_without_canal_gets_the_declared_value_not_999():
    reference = spine_reference(canal=False)
    columns = _columns(reference, reference.copy())
    assert columns["DiceScoreSpinalCanal"].value == 1.0
    assert columns["DiceScoreSpinalCanal"].status is RowStatus.BOTH_EMPTY
    assert columns["ASDSpinalCanal"].value == 0.0


def test_no_vertebra_detected_gives_zero_not_nan():
    reference = spine_reference()
    prediction = reference.copy()
    prediction[(reference >= 1) & (reference <= 25)] = 0
    columns = _columns(reference, prediction)
    assert columns["DiceScoreVertebrae"].value == 0.0
    assert columns["DetectionRateVertebrae"].value == 0.0
    assert np.isfinite([r.value for r in columns.values()]).all()
