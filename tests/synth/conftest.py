"""Shared synthetic series and a release folder, generated once per test session at a coarse voxel scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge.synth import SEQUENCES, make_series
from challenge.synth.release import write_release

SCALE = 2.5  # every spacing x 2.5: small volumes, same field of view
SERIES_SEED = 11
RELEASE_SEED = 1
RELEASE_CASES = 6


@pytest.fixture(scope="session")
def voxel_scale() -> float:
    return SCALE


@pytest.fixture(scope="session")
def series_by_sequence():
    """One patient (seed 11), one series per sequence."""
    return {sequence: make_series(sequence=sequence, seed=SERIES_SEED, voxel_scale=SCALE) for sequence in SEQUENCES}


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> Path:
    """A 6-series release folder (seed 1), written once."""
    out = tmp_path_factory.mktemp("synth") / "release"
    write_release(out, cases=RELEASE_CASES, seed=RELEASE_SEED, voxel_scale=SCALE)
    return out


def _label_points(mask: sitk.Image, value: int) -> np.ndarray:
    """Physical LPS coordinates (n, 3) of the voxels of `mask` equal to `value`."""
    array = sitk.GetArrayFromImage(mask)
    index_xyz = np.argwhere(array == value)[:, ::-1].astype(float)
    matrix = np.asarray(mask.GetDirection()).reshape(3, 3) @ np.diag(mask.GetSpacing())
    return np.asarray(mask.GetOrigin()) + index_xyz @ matrix.T


def _sample(image: sitk.Image, points_mm: np.ndarray) -> np.ndarray:
    """Nearest-voxel values of `image` at physical points (n, 3); -1 outside the grid."""
    array = sitk.GetArrayFromImage(image)
    matrix = np.asarray(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    index = np.rint(np.linalg.solve(matrix, (points_mm - np.asarray(image.GetOrigin())).T).T).astype(int)
    inside = np.all((index >= 0) & (index < np.asarray(image.GetSize())), axis=1)
    values = np.full(len(points_mm), -1, dtype=np.int64)
    values[inside] = array[index[inside, 2], index[inside, 1], index[inside, 0]]
    return values


@pytest.fixture(scope="session")
def label_points():
    return _label_points


@pytest.fixture(scope="session")
def sample():
    return _sample
