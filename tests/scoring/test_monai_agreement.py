"""Values agree with MONAI's public metrics (the declared definitions) to 1e-4 on uneven spacing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage

from challenge import labels, rules
from evaluation.score import score_case
from evaluation.surfaces import (
    average_symmetric_surface_distance_mm,
    hausdorff_percentile_mm,
    normalized_surface_dice,
    surface_distances,
)

from .conftest import SPACING_ZYX, perturbed, spine_reference

torch = pytest.importorskip("torch")
monai_metrics = pytest.importorskip("monai.metrics")

AGREEMENT = 1e-4


def monai_values(reference: np.ndarray, prediction: np.ndarray, spacing, tolerance_mm: float) -> dict[str, float]:
    """MONAI's four public calls on one binary structure (spacing in array-axis order)."""
    y = torch.from_numpy(np.ascontiguousarray(reference))[None, None]
    y_pred = torch.from_numpy(np.ascontiguousarray(prediction))[None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "dice": float(monai_metrics.compute_dice(y_pred, y, include_background=True)),
            "hd95": float(monai_metrics.compute_hausdorff_distance(
                y_pred, y, include_background=True, percentile=95, spacing=spacing)),
            "assd": float(monai_metrics.compute_average_surface_distance(
                y_pred, y, include_background=True, symmetric=True, spacing=spacing)),
            "nsd": float(monai_metrics.compute_surface_dice(
                y_pred, y, [tolerance_mm], include_background=True, spacing=spacing)),
        }


@pytest.mark.parametrize("seed", range(6))
def test_surface_metrics_agree_with_monai_on_random_shapes(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(8, 28, 3))
    spacing = tuple(float(s) for s in rng.uniform(0.3, 4.0, 3))
    reference = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    prediction = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    tolerance = float(rng.uniform(0.5, 3.0))
    distances = surface_distances(reference, prediction, spacing)
    ours = {
        "hd95": hausdorff_percentile_mm(distances, percentile=rules.HD_PERCENTILE),
        "assd": average_symmetric_surface_distance_mm(distances),
        "nsd": normalized_surface_dice(distances, tolerance_mm=tolerance),
    }
    theirs = monai_values(reference, prediction, spacing, tolerance)
    for metric, value in ours.items():
        assert value == pytest.approx(theirs[metric], abs=AGREEMENT), metric


def test_every_level_and_merged_group_of_a_case_agrees_with_monai():
    reference = spine_reference()
    prediction = perturbed(reference)
    rows = score_case(reference, prediction, SPACING_ZYX, profile="full")
    found = {(row.structure, row.level, row.metric): row.value for row in rows}
    checked = 0
    for value in np.unique(reference[reference > 0]):
        structure = labels.structure(int(value))
        group = structure.group
        theirs = monai_values(reference == value, prediction == value, SPACING_ZYX, rules.tolerance_mm(group))
        for metric, expected in theirs.items():
            assert found[(group.value, structure.name, metric)] == pytest.approx(expected, abs=AGREEMENT), \
                (structure.name, metric)
            checked += 1
    for group in labels.SCORED_GROUPS:
        values = list(labels.values_in_group(group))
        theirs = monai_values(np.isin(reference, values), np.isin(prediction, values), SPACING_ZYX,
                              rules.tolerance_mm(group))
        for metric, expected in theirs.items():
            assert found[(group.value, "all", "merged_" + metric)] == pytest.approx(expected, abs=AGREEMENT)
            checked += 1
    assert checked == 4 * (7 + 3)


def test_case_metrics_differ_from_monai_when_spacing_is_swapped():
    """Guards the test itself: the agreement above would fail with (x, y, z) spacing."""
    reference = spine_reference()
    prediction = perturbed(reference)
    value = labels.vertebra_value(2)  # moved one slice along the coarse axis
    ours = {(r.level, r.metric): r.value for r in score_case(reference, prediction, SPACING_ZYX[::-1])}
    theirs = monai_values(reference == value, prediction == value, SPACING_ZYX, 2.0)
    assert abs(ours[("L4", "hd95")] - theirs["hd95"]) > 1.0
