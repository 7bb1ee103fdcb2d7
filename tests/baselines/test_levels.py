"""Level naming by counting from the sacrum: the network's outlines kept, its level names replaced."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from baselines.levels import count_from_sacrum, superior_direction
from baselines.preprocess import Preprocessing, canonical_grid, prepare_mask
from challenge import labels
from challenge.geometry import Geometry
from challenge.synth import make_series

SMOKE_GRID = Preprocessing(orientation="PIR", spacing_mm=(4.0, 2.0, 2.0), intensity_percentiles=(0.5, 99.5))
LEVEL_MM = 32  # a lumbar vertebral body (24 mm) and its disc (8 mm)


def column(levels: int, orientation: str, *, sacrum: bool = True) -> sitk.Image:
    """A straight spine at 1 mm: vertebrae 1..levels on their discs, bottom first, a canal behind
    them and, below disc 1, an unlabelled sacrum. Stored LPS (slices along x) or PIR."""
    height = 40 + levels * LEVEL_MM + 20
    mask = np.zeros((40, height, 80), dtype=np.uint8)  # (right, down, back)
    top = height - 40  # the sacrum's top: below it nothing is labelled
    for level in range(1, levels + 1):
        disc_top = top - 8
        mask[8:32, disc_top:top, 10:50] = labels.disc_value(level)
        mask[6:34, disc_top - 24 : disc_top, 8:52] = labels.vertebra_value(level)
        top = disc_top - 24
    mask[14:26, top : height - 10, 52:62] = labels.SPINAL_CANAL  # touching the bodies, as the pedicles do
    if orientation == "PIR":
        array = mask
        direction = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
    else:  # (x, y, z) = (L, P, S): the array (z, y, x) runs (up, back, left)
        array = np.transpose(mask[::-1, ::-1, :], (1, 2, 0))
        direction = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetDirection(direction)
    image.SetOrigin((12.0, -40.0, 7.0))
    return image


def on_canonical_grid(mask: sitk.Image) -> tuple[np.ndarray, Geometry]:
    grid = canonical_grid(Geometry.of(mask), SMOKE_GRID)
    return prepare_mask(mask, grid), grid


def misnamed(truth: np.ndarray, seed: int) -> np.ndarray:
    """Every vertebra and disc renamed to a random level other than 1: what a network that
    outlines well but cannot count predicts (no disc is called L5/S1, so nothing anchors)."""
    rng = np.random.default_rng(seed)
    names = truth.copy()
    for value in np.unique(truth):
        group = labels.group_of(int(value)) if value else None
        if group in (labels.Group.VERTEBRAE, labels.Group.DISCS):
            level = int(rng.integers(2, 20))
            names[truth == value] = labels.disc_value(level) if group is labels.Group.DISCS else level
    return names


@pytest.mark.parametrize("sequence", ["t1", "t2", "t2_SPACE"])
@pytest.mark.parametrize("seed", [3, 8])
def test_synthetic_spines_get_their_levels_back(sequence, seed):
    series = make_series(sequence=sequence, seed=seed, voxel_scale=2.0)
    truth, grid = on_canonical_grid(series.mask)
    named = count_from_sacrum(misnamed(truth, seed), grid)

    for level in series.disc_levels:
        disc = truth == labels.disc_value(level)
        assert np.all(named[disc] == labels.disc_value(level)), f"disc level {level}"
    foreground = truth > 0
    # Touching vertebrae are split at the discs' mid-planes: a few posterior-element voxels
    # beyond a plane take the neighbouring level.
    assert (named[foreground] == truth[foreground]).mean() > 0.95
    sizes = {level: int((truth == level).sum()) for level in series.vertebra_levels}
    for level, size in sizes.items():
        # A sliver of the vertebra above the field of view, with no disc below it in view, cannot
        # be counted: only vertebrae with a body in view are checked one by one.
        if size >= 0.2 * np.median(list(sizes.values())):
            assert (named[truth == level] == level).mean() > 0.9, f"vertebra level {level}"


@pytest.mark.parametrize("orientation", ["LPS", "PIR"])
def test_straight_column_in_either_storage_order(orientation):
    truth, grid = on_canonical_grid(column(5, orientation))
    assert superior_direction(grid) @ np.array([0.0, -1.0, 0.0]) > 0.99  # PIR: array axis 1 runs down
    wrong = np.where((truth > 0) & (truth < 100), 9, np.where(truth > 200, labels.disc_value(15), truth))
    assert np.array_equal(count_from_sacrum(wrong, grid), truth)


def test_a_missed_disc_does_not_shift_the_levels_above_it():
    truth, grid = on_canonical_grid(column(5, "PIR"))
    predicted = truth.copy()
    predicted[truth == labels.disc_value(2)] = labels.vertebra_value(2)  # disc 2 seen as bone
    named = count_from_sacrum(predicted, grid)
    for level in (3, 4, 5):
        assert np.all(named[truth == level] == level)
        assert np.all(named[truth == labels.disc_value(level)] == labels.disc_value(level))
    assert np.all(named[truth == 1] == 1)


def test_bone_below_the_lowest_disc_is_sacrum_and_is_not_labelled():
    truth, grid = on_canonical_grid(column(3, "PIR"))
    predicted = truth.copy()
    lowest_disc_rows = np.nonzero((truth == labels.disc_value(1)).any(axis=(0, 2)))[0]
    sacrum = (slice(3, 6), slice(lowest_disc_rows.max() + 2, lowest_disc_rows.max() + 8), slice(5, 20))
    predicted[sacrum] = 4
    named = count_from_sacrum(predicted, grid)
    assert np.all(named[sacrum] == 0)
    assert np.array_equal(named[truth > 0], truth[truth > 0])


def test_partial_vertebrae_stay_partial_and_the_canal_is_untouched():
    truth, grid = on_canonical_grid(column(3, "PIR"))
    truth = np.where(truth == 3, labels.PARTIAL_VERTEBRA_OFFSET + 3, truth).astype(np.uint8)
    predicted = np.where(truth == labels.PARTIAL_VERTEBRA_OFFSET + 3, labels.PARTIAL_VERTEBRA_OFFSET + 7, truth)
    predicted = np.where(truth == 2, 5, predicted).astype(np.uint8)
    named = count_from_sacrum(predicted, grid)
    assert np.array_equal(named, truth)


def test_without_discs_the_network_names_are_kept():
    truth, grid = on_canonical_grid(column(3, "LPS"))
    no_discs = np.where(truth > 200, 0, np.where((truth > 0) & (truth < 100), 6, truth)).astype(np.uint8)
    assert np.array_equal(count_from_sacrum(no_discs, grid), no_discs)


def test_the_disc_the_network_calls_l5_s1_anchors_the_count():
    # The sacrum looks like a vertebra to the network, with a 'disc' (S1/S2) below it: without
    # the anchor the count would start one level too low.
    truth, grid = on_canonical_grid(column(4, "PIR"))
    predicted = np.where(truth == labels.disc_value(1), labels.disc_value(1), np.where(truth > 200, 202, truth))
    predicted = np.where((truth > 0) & (truth < 100), 1, predicted).astype(np.uint8)
    lowest_disc_rows = np.nonzero((truth == labels.disc_value(1)).any(axis=(0, 2)))[0]
    below = lowest_disc_rows.max()
    sacral_body = (slice(1, 9), slice(below + 1, below + 13), slice(4, 26))
    sacral_disc = (slice(2, 8), slice(below + 13, below + 17), slice(5, 25))
    predicted[sacral_body] = 1
    predicted[sacral_disc] = 202
    named = count_from_sacrum(predicted, grid)
    assert np.array_equal(named[truth > 0], truth[truth > 0])
    assert np.all(named[sacral_body] == 0) and np.all(named[sacral_disc] == 0)


def test_blobs_away_from_the_spine_are_removed():
    truth, grid = on_canonical_grid(column(3, "LPS"))
    predicted = truth.copy()
    far = (slice(0, 10), slice(2, 40), slice(33, 38))  # a fifth of the spine, behind it, touching nothing
    assert 0.15 < predicted[far].size / np.count_nonzero(truth) < 0.5
    assert not truth[far].any()
    predicted[far] = labels.disc_value(3)
    named = count_from_sacrum(predicted, grid)
    assert np.all(named[far] == 0)
    assert np.array_equal(named[truth > 0], truth[truth > 0])


def test_a_canal_apart_from_the_bones_is_kept():
    # The network may leave a gap between the canal and the vertebral bodies (missed pedicles).
    truth, grid = on_canonical_grid(column(3, "PIR"))
    predicted = truth.copy()
    canal_columns = np.nonzero((truth == labels.SPINAL_CANAL).any(axis=(0, 1)))[0]
    predicted[:, :, canal_columns.min() - 2 : canal_columns.min()] = 0  # two voxels of gap
    named = count_from_sacrum(predicted, grid)
    assert np.array_equal(named == labels.SPINAL_CANAL, predicted == labels.SPINAL_CANAL)
    canal = np.count_nonzero(predicted == labels.SPINAL_CANAL)
    assert 0 < canal < 0.5 * np.count_nonzero(predicted != labels.SPINAL_CANAL)  # too small to stay by size


def test_a_noisy_class_map_costs_a_few_passes_like_a_plausible_one():
    """Random labels on every voxel (tens of thousands of components on every label) cost about what a plausible
    spine of the same size does: no step loops over components with a pass over the volume each. Before, the
    12 x 96 x 96 noisy map alone took 4.8 s (components x volume); it takes 0.15 s now."""
    import time

    series = make_series(sequence="t2", seed=3, voxel_scale=2.0)
    plausible, grid = on_canonical_grid(series.mask)
    rng = np.random.default_rng(0)
    noisy = rng.choice(np.array(sorted(labels.LABEL_MAP), dtype=np.uint8), size=plausible.shape)

    def seconds(values: np.ndarray) -> float:
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            out = count_from_sacrum(values, grid)
            best = min(best, time.perf_counter() - start)
        assert out.shape == values.shape and set(np.unique(out)) <= set(labels.LABEL_MAP) | {0}
        return best

    plausible_s, noisy_s = seconds(misnamed(plausible, 3)), seconds(noisy)
    # Generous: the noisy map has far more foreground and components; a per-component pass would be >100x.
    assert noisy_s <= 30 * plausible_s + 0.5, (noisy_s, plausible_s)
