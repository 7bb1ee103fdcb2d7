"""Mask content of synthetic series: label map, level order, canal, sacrum, cut top vertebra."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from challenge.synth import SEQUENCES, make_series

SEEDS = (0, 3, 7)


@pytest.fixture(scope="module", params=[(seed, sequence) for seed in SEEDS for sequence in SEQUENCES], ids=str)
def series(request, voxel_scale):
    seed, sequence = request.param
    return make_series(sequence=sequence, seed=seed, voxel_scale=voxel_scale)


def _vertebra_value(series, level):
    if level in series.vertebra_levels:
        return labels.vertebra_value(level)
    if level in series.partial_levels:
        return labels.partial_vertebra_value(level)
    return None


def test_every_value_is_in_the_label_map_and_the_main_structures_are_there(series):
    values = np.unique(sitk.GetArrayFromImage(series.mask))
    assert labels.unknown_values(values) == []
    assert series.mask.GetPixelID() == sitk.sitkUInt8
    assert labels.SPINAL_CANAL in values
    assert labels.disc_value(1) in values  # L5/S1
    assert 5 <= series.num_vertebrae <= 9
    levels = sorted(series.vertebra_levels + series.partial_levels)
    assert levels == list(range(1, levels[-1] + 1)), "visible vertebrae are consecutive from L5 up"
    assert set(series.disc_levels) <= set(range(1, levels[-1] + 2))


def test_disc_k_lies_between_vertebra_k_and_vertebra_k_minus_1(series, label_points):
    superior = {}
    for value in np.unique(sitk.GetArrayFromImage(series.mask)):
        if value:
            superior[int(value)] = label_points(series.mask, int(value))[:, 2].mean()
    checked = 0
    for level in series.disc_levels:
        disc_z = superior[labels.disc_value(level)]
        above = _vertebra_value(series, level)
        below = _vertebra_value(series, level - 1) if level > 1 else None
        if above is not None:
            assert superior[above] > disc_z, f"vertebra {level} must lie above disc {200 + level}"
            checked += 1
        if below is not None:
            assert disc_z > superior[below], f"disc {200 + level} must lie above vertebra {level - 1}"
            checked += 1
    assert checked >= 2 * len(series.disc_levels) - 2


def test_spine_is_lordotic(series, label_points):
    """L3 lies anterior (smaller y) of the line from L5 to L1."""
    centroids = {level: label_points(series.mask, labels.vertebra_value(level)).mean(axis=0) for level in (1, 3, 5)}
    l5, l3, l1 = centroids[1], centroids[3], centroids[5]
    t = (l3[2] - l5[2]) / (l1[2] - l5[2])
    on_line_y = l5[1] + t * (l1[1] - l5[1])
    assert l3[1] < on_line_y - 2.0


def test_vertebrae_have_posterior_elements_behind_the_canal(series, label_points):
    """In each vertebra's own frame, its label reaches well behind the canal (arch, spinous process)."""
    canal = label_points(series.mask, labels.SPINAL_CANAL)
    for level in (2, 3, 4):
        frame = series.anatomy.vertebra(level).frame
        height = series.anatomy.vertebra(level).height_mm

        def local(points, frame=frame):
            return (points - frame.center) @ frame.matrix  # (lateral, posterior, superior)

        vertebra = local(label_points(series.mask, labels.vertebra_value(level)))
        canal_here = local(canal)
        canal_here = canal_here[np.abs(canal_here[:, 2]) < height / 2]
        assert len(canal_here), f"canal behind vertebra {level}"
        assert canal_here[:, 1].min() > 0, "the canal lies behind the body centre"
        # The arch closes the canal posteriorly; the thin spinous process reaches far behind it
        # (checked on the near-isotropic SPACE grid: coarse TSE slices may pass beside it).
        reach = 15.0 if series.sequence == "t2_SPACE" else 3.0
        assert vertebra[:, 1].max() > canal_here[:, 1].max() + reach
        behind = vertebra[vertebra[:, 1] > canal_here[:, 1].mean()]
        assert len(behind) > 0.1 * len(vertebra)


def test_canal_runs_from_the_top_edge_to_below_l5_s1(series, label_points):
    canal = label_points(series.mask, labels.SPINAL_CANAL)
    disc = label_points(series.mask, labels.disc_value(1))
    top_vertebra = max(series.vertebra_levels + series.partial_levels)
    top_value = _vertebra_value(series, top_vertebra)
    top = label_points(series.mask, top_value)[:, 2].max()
    assert canal[:, 2].max() >= top - 3 * max(series.mask.GetSpacing())
    assert canal[:, 2].min() < disc[:, 2].min()


def test_top_vertebra_is_cut_by_the_field_of_view(series):
    mask = sitk.GetArrayFromImage(series.mask)
    direction = np.asarray(series.mask.GetDirection()).reshape(3, 3)
    si_axis = int(np.argmax(np.abs(direction[2])))  # index axis closest to superior
    top_plane = np.take(mask, -1 if direction[2, si_axis] > 0 else 0, axis=2 - si_axis)
    top_level = max(series.vertebra_levels + series.partial_levels)
    assert _vertebra_value(series, top_level) in np.unique(top_plane)


def test_sacrum_is_visible_but_not_labelled(series, sample):
    """Below disc 201, the centre of S1 is unlabelled bone: bright marrow on T1, intermediate on T2."""
    s1 = series.anatomy.sacrum[0]
    points = np.array([s1.frame.to_physical((0.0, 0.0, dz)) for dz in (-4.0, -2.0, 0.0, 2.0, 4.0)])
    assert set(sample(series.mask, points).tolist()) == {0}
    image = sitk.GetArrayFromImage(series.image)
    bone = np.median(sample(series.image, points))
    if series.sequence == "t1":
        assert bone > np.percentile(image, 60)
    assert bone > 3 * np.percentile(image, 5) + 1


def test_both_partial_and_normal_labels_occur_for_the_cut_vertebra(voxel_scale):
    found = {"partial": False, "normal": False}
    for seed in range(12):
        series = make_series(sequence="t1", seed=seed, voxel_scale=3.0)
        found["partial" if series.partial_levels else "normal"] = True
        if all(found.values()):
            break
    assert found == {"partial": True, "normal": True}
