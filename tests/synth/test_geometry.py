"""Voxel grids of synthetic series: spacing per sequence, orientation, slice axis, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from challenge.synth import SEQUENCES, SynthError, make_series

TSE = ("t1", "t2")


def _direction(series) -> np.ndarray:
    return np.asarray(series.image.GetDirection()).reshape(3, 3)


def _slice_axis(series) -> int:
    return int(np.argmax(series.image.GetSpacing()))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("sequence", TSE)
def test_tse_spacing_and_slice_count_at_full_resolution(sequence, seed):
    series = make_series(sequence=sequence, seed=seed)
    spacing = series.image.GetSpacing()
    axis = _slice_axis(series)
    assert 3.3 - 1e-6 <= spacing[axis] <= 4.4 + 1e-6
    in_plane = [spacing[k] for k in range(3) if k != axis]
    assert in_plane[0] == pytest.approx(in_plane[1])
    assert 0.5 <= in_plane[0] <= 0.7
    assert 12 <= series.image.GetSize()[axis] <= 20
    assert all(series.image.GetSize()[k] >= 256 for k in range(3) if k != axis)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_voxel_scale_multiplies_spacing_and_keeps_the_field_of_view(series_by_sequence, voxel_scale, sequence):
    series = series_by_sequence[sequence]
    spacing = np.asarray(series.image.GetSpacing()) / voxel_scale
    axis = _slice_axis(series)
    if sequence == "t2_SPACE":
        assert spacing[axis] == pytest.approx(0.9)
        assert [spacing[k] for k in range(3) if k != axis] == pytest.approx([0.46875, 0.46875])
    else:
        assert 3.3 - 1e-6 <= spacing[axis] <= 4.4 + 1e-6
    full = make_series(sequence=sequence, seed=series.seed, voxel_scale=1.0) if sequence != "t2_SPACE" else None
    if full is not None:
        fov_scaled = np.asarray(series.image.GetSize()) * np.asarray(series.image.GetSpacing())
        fov_full = np.asarray(full.image.GetSize()) * np.asarray(full.image.GetSpacing())
        assert fov_scaled == pytest.approx(fov_full, rel=0.15)
        assert full.image.GetDirection() == series.image.GetDirection()


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_slice_axis_points_left_right_and_direction_is_orthonormal(series_by_sequence, sequence):
    for seed in range(8):
        series = (
            series_by_sequence[sequence] if seed == 0 else make_series(sequence=sequence, seed=seed, voxel_scale=3.0)
        )
        direction = _direction(series)
        assert direction.T @ direction == pytest.approx(np.eye(3), abs=1e-9)
        slice_direction = direction[:, _slice_axis(series)]
        assert abs(slice_direction[0]) == pytest.approx(1.0, abs=1e-9), "the thick axis must be left-right"


def test_orientations_differ_between_series_and_some_are_oblique():
    matrices, oblique, distinct_per_patient = set(), 0, 0
    for seed in range(10):
        patient = [make_series(sequence=s, seed=seed, voxel_scale=4.0) for s in SEQUENCES]
        directions = [tuple(np.round(p.image.GetDirection(), 6)) for p in patient]
        matrices.update(directions)
        distinct_per_patient += len(set(directions)) > 1
        oblique += sum(p.grid.oblique_deg != 0 for p in patient)
        assert directions[0] != directions[1], "t1 and t2 of one patient use different orientations"
    assert distinct_per_patient == 10
    assert len(matrices) >= 8
    assert 3 <= oblique <= 27


def test_origin_places_the_spine_in_view_for_every_orientation(series_by_sequence):
    for series in series_by_sequence.values():
        assert series.num_vertebrae >= 5
        assert series.grid.origin_mm == pytest.approx(series.image.GetOrigin())


def test_requested_size_is_kept_and_its_smallest_axis_is_left_right():
    for size in ((40, 120, 120), (120, 40, 120), (120, 120, 40)):
        series = make_series(sequence="t2_SPACE", seed=4, voxel_scale=2.5, size_xyz=size)
        assert series.image.GetSize() == size
        assert series.mask.GetSize() == size
        assert _slice_axis(series) == int(np.argmin(size))
        assert abs(_direction(series)[0, int(np.argmin(size))]) == pytest.approx(1.0)
        assert series.num_vertebrae >= 1


@pytest.mark.parametrize(
    "arguments",
    [
        {"sequence": "t3", "seed": 0},
        {"sequence": "t1", "seed": 0, "voxel_scale": 0.0},
        {"sequence": "t1", "seed": 0, "voxel_scale": float("nan")},
        {"sequence": "t1", "seed": 0, "size_xyz": (10, 10)},
        {"sequence": "t1", "seed": 0, "size_xyz": (2, 100, 100)},
        {"sequence": "t2_SPACE", "seed": 0, "size_xyz": (1000, 1000, 1000)},
        {"sequence": "t1", "seed": -1},
    ],
)
def test_bad_arguments_are_refused(arguments):
    with pytest.raises(SynthError):
        make_series(**arguments)
