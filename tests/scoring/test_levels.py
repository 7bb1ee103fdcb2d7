"""Per-level rows, matching, detection and identification."""

from __future__ import annotations

import numpy as np
import pytest

from challenge import labels, rules
from challenge.statuses import RowStatus
from evaluation.score import score_case

from .conftest import SPACING_ZYX, spine_reference


def _values(rows) -> dict[tuple[str, str, str], float]:
    return {(r.structure, r.level, r.metric): r.value for r in rows}


def _relabel(mask: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    out = mask.copy()
    for old, new in mapping.items():
        out[mask == old] = new
    return out


def test_perfect_prediction():
    reference = spine_reference()
    rows = score_case(reference, reference.copy(), SPACING_ZYX)
    assert all(r.status is RowStatus.SCORED for r in rows)
    for row in rows:
        expected = 0.0 if row.metric.endswith(("assd", "hd95")) else 1.0
        assert row.value == pytest.approx(expected), row.column


def test_rows_per_reference_level_in_label_order():
    rows = score_case(spine_reference(), spine_reference(), SPACING_ZYX)
    levels = []
    for row in rows:
        if row.level != "all" and (row.structure, row.level) not in levels:
            levels.append((row.structure, row.level))
    assert levels == [("vertebrae", "L5"), ("vertebrae", "L4"), ("vertebrae", "L3"),
                      ("discs", "L5/S1"), ("discs", "L4/L5"), ("discs", "L3/L4"),
                      ("spinal_canal", "spinal canal")]
    assert {r.column for r in rows} >= {"vertebrae/L4/dice", "discs/L4/L5/nsd", "vertebrae/all/identification_rate",
                                        "discs/all/merged_hd95"}


@pytest.mark.parametrize("profile", ["full", "spider2024"])
def test_wrong_level_names_lower_identification_not_overlap(profile):
    reference = spine_reference()
    shifted = {labels.vertebra_value(k): labels.vertebra_value(k + 1) for k in (1, 2, 3)}
    shifted |= {labels.disc_value(k): labels.disc_value(k + 1) for k in (1, 2, 3)}
    prediction = _relabel(reference, shifted)
    rows = score_case(reference, prediction, SPACING_ZYX, profile=profile)
    values = _values(rows)
    for structure, level in [("vertebrae", "L5"), ("vertebrae", "L3"), ("discs", "L4/L5")]:
        assert values[(structure, level, "dice")] == 1.0
        assert values[(structure, level, "detected")] == 1.0
        assert values[(structure, level, "identified")] == 0.0
    if profile == "full":
        assert values[("vertebrae", "all", "dice")] == 1.0
        assert values[("vertebrae", "all", "hd95")] == 0.0
        assert values[("vertebrae", "all", "merged_dice")] == 1.0
        assert values[("vertebrae", "all", "detection_rate")] == 1.0
        assert values[("vertebrae", "all", "identification_rate")] == 0.0
        assert values[("discs", "all", "identification_rate")] == 0.0
        assert values[("spinal_canal", "all", "identification_rate")] == 1.0
    else:
        by_column = {r.column: r.value for r in rows}
        assert by_column["DiceScoreVertebrae"] == 1.0
        assert by_column["DetectionRateVertebrae"] == 1.0
        assert by_column["IdentificationRateVertebrae"] == 0.0


def test_two_levels_swapped_identify_one_in_three():
    reference = spine_reference()
    prediction = _relabel(reference, {2: 3, 3: 2})
    values = _values(score_case(reference, prediction, SPACING_ZYX))
    assert values[("vertebrae", "all", "identification_rate")] == pytest.approx(1 / 3)
    assert values[("vertebrae", "all", "dice")] == 1.0


def test_detection_needs_dice_of_at_least_the_threshold():
    reference = spine_reference()
    prediction = reference.copy()
    l3 = np.argwhere(reference == labels.vertebra_value(3))
    prediction[reference == labels.vertebra_value(3)] = 0
    n = len(l3)
    # Dice 2k/(n+k) >= 0.1
    keep = int(np.ceil(rules.DETECTION_DICE_THRESHOLD / (2 - rules.DETECTION_DICE_THRESHOLD) * n))
    for found, count in ((False, keep - 1), (True, keep)):
        trial = prediction.copy()
        trial[tuple(l3[:count].T)] = labels.vertebra_value(3)
        values = _values(score_case(reference, trial, SPACING_ZYX))
        dice = values[("vertebrae", "L3", "dice")]
        assert dice == pytest.approx(2 * count / (n + count))
        assert values[("vertebrae", "L3", "detected")] == float(found)
        assert values[("vertebrae", "all", "detection_rate")] == pytest.approx((2 + found) / 3)


def test_missed_instance_enters_the_group_mean_with_worst_values():
    reference = spine_reference()
    prediction = _relabel(reference, {labels.vertebra_value(3): 0})
    rows = score_case(reference, prediction, SPACING_ZYX)
    values = _values(rows)
    diagonal = rules.fov_diagonal_mm(reference.shape, SPACING_ZYX)
    assert values[("vertebrae", "L3", "dice")] == 0.0
    assert values[("vertebrae", "L3", "hd95")] == diagonal
    assert [r.status for r in rows if r.level == "L3"] == [RowStatus.PREDICTION_EMPTY] * 6
    assert values[("vertebrae", "all", "dice")] == pytest.approx(2 / 3)
    assert values[("vertebrae", "all", "assd")] == pytest.approx(diagonal / 3)
    assert values[("vertebrae", "all", "detection_rate")] == pytest.approx(2 / 3)


def test_partial_vertebrae_are_merged_with_their_level():
    reference = spine_reference()
    partial_reference = _relabel(reference, {labels.vertebra_value(3): labels.partial_vertebra_value(3)})
    for ref, pred in ((partial_reference, reference), (reference, partial_reference)):
        values = _values(score_case(ref, pred, SPACING_ZYX))
        assert values[("vertebrae", "L3", "dice")] == 1.0
        assert values[("vertebrae", "L3", "identified")] == 1.0
        assert ("partial_vertebrae", "L3 (partial)", "dice") not in values


def test_full_profile_matches_within_the_group_and_spider2024_across_groups():
    reference = spine_reference()
    prediction = _relabel(reference, {labels.vertebra_value(2): labels.disc_value(9)})
    full = _values(score_case(reference, prediction, SPACING_ZYX, profile="full"))
    assert full[("vertebrae", "L4", "dice")] == 0.0
    assert full[("vertebrae", "L4", "detected")] == 0.0
    official = _values(score_case(reference, prediction, SPACING_ZYX, profile="spider2024"))
    assert official[("vertebrae", "L4", "dice")] == 1.0
    assert official[("vertebrae", "L4", "identified")] == 0.0


def test_two_reference_levels_may_match_one_predicted_label():
    reference = spine_reference()
    prediction = _relabel(reference, {labels.vertebra_value(3): labels.vertebra_value(2)})
    values = _values(score_case(reference, prediction, SPACING_ZYX))
    n_l4 = int((reference == 2).sum())
    n_l3 = int((reference == 3).sum())
    assert values[("vertebrae", "L4", "dice")] == pytest.approx(2 * n_l4 / (n_l4 + n_l4 + n_l3))
    assert values[("vertebrae", "L3", "dice")] == pytest.approx(2 * n_l3 / (n_l3 + n_l4 + n_l3))
    assert values[("vertebrae", "L3", "identified")] == 0.0
    assert values[("vertebrae", "L4", "identified")] == 1.0


def test_ties_in_overlap_go_to_the_lower_label():
    reference = np.zeros((4, 8, 8), dtype=np.uint8)
    reference[1:3, 2:6, 2:6] = labels.vertebra_value(2)
    prediction = np.zeros_like(reference)
    prediction[1:3, 2:4, 2:6] = labels.vertebra_value(4)
    prediction[1:3, 4:6, 2:6] = labels.vertebra_value(3)
    prediction[1:3, 6:8, 2:6] = labels.vertebra_value(4)  # outside the reference: Dice with 4 would be 0.5
    values = _values(score_case(reference, prediction, SPACING_ZYX))
    assert values[("vertebrae", "L4", "dice")] == pytest.approx(2 * 16 / (32 + 16))
    assert values[("vertebrae", "L4", "identified")] == 0.0


def test_unmatched_predicted_instances_lower_only_merged_metrics():
    reference = spine_reference()
    prediction = reference.copy()
    prediction[4:8, 40:43, 3:13] = labels.vertebra_value(7)  # a vertebra the reference does not have
    values = _values(score_case(reference, prediction, SPACING_ZYX))
    assert values[("vertebrae", "all", "dice")] == 1.0
    assert values[("vertebrae", "all", "merged_dice")] < 1.0
    assert values[("vertebrae", "all", "merged_hd95")] > 0.0


def test_level_rows_carry_their_label_and_group_rows_none():
    rows = score_case(spine_reference(), spine_reference(), SPACING_ZYX)
    for row in rows:
        if row.level == "all":
            assert row.label is None
        else:
            assert labels.structure(row.label).name == row.level
