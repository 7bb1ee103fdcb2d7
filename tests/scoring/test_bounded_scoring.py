"""Scoring adversarial predictions: values as MONAI's, cost bounded by the number of structures,
distances exact where the transform is used, and the own-label rule for levels without overlap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from challenge import labels, rules
from challenge.statuses import RowStatus
from evaluation import surfaces
from evaluation.matching import SCORED_VALUE_OF
from evaluation.score import score_case
from evaluation.surfaces import surface_distances

from .conftest import SPACING_ZYX, spine_reference
from .test_monai_agreement import AGREEMENT, monai_values

VALID = np.array(sorted(labels.LABEL_MAP), dtype=np.uint8)


def _every_voxel_another_label(shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return VALID[rng.integers(0, VALID.size, shape)]


def _checkerboard(shape, first: int, second: int) -> np.ndarray:
    z, y, x = np.indices(shape)
    return np.where((z + y + x) % 2 == 0, first, second).astype(np.uint8)


def _speckles(reference: np.ndarray, seed: int, per_label: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prediction = reference.copy()
    for value in np.unique(reference[reference > 0]):
        prediction.reshape(-1)[rng.integers(0, reference.size, per_label)] = value
    return prediction


ADVERSARIAL = {
    "one label": lambda reference: np.full_like(reference, labels.vertebra_value(1)),
    "columns": lambda reference: np.where(np.indices(reference.shape)[2] % 2 == 0, 0,
                                          labels.vertebra_value(1)).astype(np.uint8),
    "random labels": lambda reference: _every_voxel_another_label(reference.shape, 3),
    "checkerboard": lambda reference: _checkerboard(reference.shape, labels.vertebra_value(1), labels.disc_value(1)),
    "speckles": lambda reference: _speckles(reference, 4),
}


def _rows_by_key(rows):
    return {(row.structure, row.level, row.metric): row for row in rows}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_predictions_agree_with_monai_where_they_compare_like_with_like(name):
    reference = spine_reference()
    raw_prediction = ADVERSARIAL[name](reference)
    rows = _rows_by_key(score_case(reference, raw_prediction, SPACING_ZYX, profile="full"))
    prediction = SCORED_VALUE_OF[raw_prediction]  # a partial vertebra 100+k is scored as vertebra k
    compared = 0
    for value in np.unique(reference[reference > 0]):
        structure = labels.structure(int(value))
        group = structure.group
        if not (prediction == value).any():
            continue
        # MONAI measures the level against its own label; ours does too when that label is the
        # same-group label the level overlaps most (or, by the own-label rule, when none overlaps).
        group_values = [v for v in np.unique(prediction[reference == value])
                        if v and labels.structure(int(v)).group is group]
        overlaps = {int(v): int(np.count_nonzero((reference == value) & (prediction == v))) for v in group_values}
        if overlaps and max(overlaps, key=lambda v: (overlaps[v], -v)) != value:
            continue
        theirs = monai_values(reference == value, prediction == value, SPACING_ZYX, rules.tolerance_mm(group))
        for metric, expected in theirs.items():
            row = rows[(group.value, structure.name, metric)]
            assert row.status is RowStatus.SCORED
            assert row.value == pytest.approx(expected, abs=AGREEMENT), (structure.name, metric)
        compared += 1
    for group in labels.SCORED_GROUPS:
        values = list(labels.values_in_group(group))
        referenced, predicted = np.isin(reference, values), np.isin(prediction, values)
        if not (referenced.any() and predicted.any()):
            continue
        theirs = monai_values(referenced, predicted, SPACING_ZYX, rules.tolerance_mm(group))
        for metric, expected in theirs.items():
            row = rows[(group.value, "all", rules.MERGED_PREFIX + metric)]
            assert row.value == pytest.approx(expected, abs=AGREEMENT), (group, metric)
        compared += 1
    assert compared >= 2


def test_every_voxel_a_different_label_on_a_tiny_grid_agrees_with_monai_per_label():
    """No two neighbours share a label: every voxel is a one-voxel component and a surface voxel."""
    shape = (3, 4, 5)
    reference = np.zeros(shape, dtype=np.uint8)
    reference[1, 1:3, 1:4] = labels.vertebra_value(3)
    values = np.array([v for v in sorted(labels.LABEL_MAP) if v], dtype=np.uint8)
    prediction = values[np.arange(int(np.prod(shape))) % values.size].reshape(shape)
    prediction[1, 2, 2] = labels.vertebra_value(3)
    spacing = (2.9, 0.55, 0.8)
    rows = _rows_by_key(score_case(reference, prediction, spacing, profile="full"))
    value = labels.vertebra_value(3)
    theirs = monai_values(reference == value, SCORED_VALUE_OF[prediction] == value, spacing,
                          rules.tolerance_mm(labels.Group.VERTEBRAE))
    for metric, expected in theirs.items():
        assert rows[("vertebrae", labels.structure(value).name, metric)].value == pytest.approx(expected, abs=AGREEMENT)


def test_the_number_of_distance_transforms_is_bounded_by_the_structures(monkeypatch):
    """Noise in every voxel costs at most a few transforms per surface pair, whatever it holds."""
    calls = []
    real = surfaces._squared_edt

    def counted(background, spacing):
        calls.append(background.size)
        return real(background, spacing)

    monkeypatch.setattr(surfaces, "_squared_edt", counted)
    reference = spine_reference()
    for name, make in ADVERSARIAL.items():
        calls.clear()
        rows = score_case(reference, make(reference), SPACING_ZYX, profile="full")
        pairs = {(row.structure, row.level) for row in rows if row.metric in ("hd95", "merged_hd95")
                 and row.status is RowStatus.SCORED}
        # Two directions per pair; the growing boxes of one direction cost at most about two
        # transforms of the box they end with.
        assert sum(calls) <= 2 * 3 * len(pairs) * reference.size, name


def test_far_distances_from_the_transform_agree_with_the_exact_transform():
    """The issue's case: a 15 x 200 x 200 grid at 3.7 x 0.66 x 0.66 mm, the two masks in opposite
    corners, too many far voxels for a k-d tree: distances by the transform within 1e-4 mm."""
    shape, spacing = (15, 200, 200), (3.7, 0.66, 0.66)
    reference = np.zeros(shape, dtype=bool)
    reference[0:3, 0:30, 0:30] = True
    prediction = np.zeros(shape, dtype=bool)
    prediction[12:15, 165:200, 170:200] = True
    found = surface_distances(reference, prediction, spacing)
    exact_to_reference = ndimage.distance_transform_edt(~surfaces.surface_voxels(reference), sampling=spacing)
    exact_to_prediction = ndimage.distance_transform_edt(~surfaces.surface_voxels(prediction), sampling=spacing)
    expected_pr = exact_to_reference[surfaces.surface_voxels(prediction)]
    expected_rp = exact_to_prediction[surfaces.surface_voxels(reference)]
    assert expected_pr.max() > 150
    np.testing.assert_allclose(found.prediction_to_reference_mm, expected_pr, rtol=2e-7, atol=1e-4)
    np.testing.assert_allclose(found.reference_to_prediction_mm, expected_rp, rtol=2e-7, atol=1e-4)


def test_a_field_kept_for_a_label_that_fills_the_image_gives_the_same_values_as_one_per_level():
    reference = spine_reference()
    prediction = np.full_like(reference, labels.vertebra_value(1))
    rows = score_case(reference, prediction, SPACING_ZYX, profile="full")
    for row in rows:
        if row.structure == "vertebrae" and row.level != "all" and row.metric in ("assd", "hd95"):
            value = row.label
            direct = surface_distances(reference == value, prediction > 0, SPACING_ZYX, method="kdtree")
            expected = (surfaces.hausdorff_percentile_mm(direct) if row.metric == "hd95"
                        else surfaces.average_symmetric_surface_distance_mm(direct))
            assert row.value == pytest.approx(expected, abs=1e-4), (row.level, row.metric)


def test_a_level_without_overlap_is_measured_against_its_own_label_a_few_mm_away():
    """A series shifted by a slice: the partial L5 loses all overlap but keeps its label nearby."""
    reference = np.zeros((12, 30, 20), dtype=np.uint8)
    reference[2:4, 5:15, 5:15] = labels.vertebra_value(1)
    reference[6:10, 5:15, 5:15] = labels.vertebra_value(2)
    prediction = np.zeros_like(reference)
    prediction[4:6, 5:15, 5:15] = labels.vertebra_value(1)  # two slices (6 mm) away: no overlap
    prediction[6:10, 5:15, 5:15] = labels.vertebra_value(2)
    rows = _rows_by_key(score_case(reference, prediction, SPACING_ZYX, profile="full"))
    l5 = labels.structure(labels.vertebra_value(1)).name
    assert rows[("vertebrae", l5, "dice")].value == 0.0
    assert rows[("vertebrae", l5, "dice")].status is RowStatus.SCORED
    assert rows[("vertebrae", l5, "detected")].value == 0.0
    theirs = monai_values(reference == labels.vertebra_value(1), prediction == labels.vertebra_value(1),
                          SPACING_ZYX, rules.tolerance_mm(labels.Group.VERTEBRAE))
    for metric in ("hd95", "assd", "nsd"):
        assert rows[("vertebrae", l5, metric)].value == pytest.approx(theirs[metric], abs=AGREEMENT), metric
    assert rows[("vertebrae", l5, "hd95")].value < 10.0  # not the worst value (the field of view's diagonal)


def test_a_level_with_neither_overlap_nor_its_own_label_is_prediction_empty():
    reference = np.zeros((12, 30, 20), dtype=np.uint8)
    reference[2:4, 5:15, 5:15] = labels.vertebra_value(1)
    reference[6:10, 5:15, 5:15] = labels.vertebra_value(2)
    prediction = np.zeros_like(reference)
    prediction[6:10, 5:15, 5:15] = labels.vertebra_value(2)
    rows = _rows_by_key(score_case(reference, prediction, SPACING_ZYX, profile="full"))
    l5 = labels.structure(labels.vertebra_value(1)).name
    assert rows[("vertebrae", l5, "hd95")].status is RowStatus.PREDICTION_EMPTY


def test_the_official_profile_keeps_the_official_matching_without_the_own_label_rule():
    reference = np.zeros((12, 30, 20), dtype=np.uint8)
    reference[2:4, 5:15, 5:15] = labels.vertebra_value(1)
    prediction = np.zeros_like(reference)
    prediction[4:6, 5:15, 5:15] = labels.vertebra_value(1)
    rows = score_case(reference, prediction, SPACING_ZYX, profile="spider2024")
    level = [row for row in rows if row.level != "all" and row.metric == "asd"]
    assert level and all(row.status is RowStatus.PREDICTION_EMPTY for row in level)
