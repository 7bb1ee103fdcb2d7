"""Image content of synthetic series: T1/T2 contrast, degenerated discs, noise, pixel types, headers."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from challenge.synth import SEQUENCES, make_anatomy, make_series


def _mean_in(series, values) -> float:
    image = sitk.GetArrayFromImage(series.image).astype(float)
    mask = sitk.GetArrayFromImage(series.mask)
    return float(image[np.isin(mask, list(values))].mean())


def _vertebra_values(series):
    return [labels.vertebra_value(level) for level in series.vertebra_levels]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_csf_is_darker_than_marrow_on_t1_and_brighter_on_t2(series_by_sequence, voxel_scale, seed):
    for sequence in SEQUENCES:
        series = (
            series_by_sequence[sequence]
            if seed == 11
            else make_series(sequence=sequence, seed=seed, voxel_scale=voxel_scale)
        )
        canal = _mean_in(series, [labels.SPINAL_CANAL])
        bone = _mean_in(series, _vertebra_values(series))
        if sequence == "t1":
            assert canal < 0.6 * bone, f"T1: CSF {canal:.0f} must be darker than marrow {bone:.0f}"
        else:
            assert canal > 1.4 * bone, f"{sequence}: CSF {canal:.0f} must be brighter than marrow {bone:.0f}"


def test_discs_are_darker_than_marrow_on_t1(series_by_sequence):
    series = series_by_sequence["t1"]
    discs = [labels.disc_value(level) for level in series.disc_levels]
    assert _mean_in(series, discs) < 0.8 * _mean_in(series, _vertebra_values(series))


def _degenerated_neighbours() -> tuple[int, int, int]:
    """The first seed with adjacent lumbar discs graded >= 4 and <= 2: (seed, degenerated, healthy)."""
    for seed in range(500):
        grades = {g.level: g.pfirrmann for g in make_anatomy(seed).gradings if g.level <= 5}
        for level, grade in grades.items():
            for neighbour in (level - 1, level + 1):
                if grade >= 4 and grades.get(neighbour, 5) <= 2:
                    return seed, level, neighbour
    raise AssertionError("no patient with a degenerated disc next to a healthy one in 500 seeds")


def _thickness_mm(series, level: int) -> float:
    """Length of the disc label along the spine axis through the disc centre."""
    disc = series.anatomy.discs[level - 1]
    top, bottom = disc.above.endplate_center(-1), disc.below.endplate_center(+1)
    axis = disc.above.frame.superior + disc.below.frame.superior
    axis /= np.linalg.norm(axis)
    steps = np.arange(-20.0, 20.0, 0.1)
    points = (top + bottom) / 2 + steps[:, None] * axis
    mask = sitk.GetArrayFromImage(series.mask)
    matrix = np.asarray(series.mask.GetDirection()).reshape(3, 3) @ np.diag(series.mask.GetSpacing())
    index = np.rint(np.linalg.solve(matrix, (points - np.asarray(series.mask.GetOrigin())).T).T).astype(int)
    values = mask[index[:, 2], index[:, 1], index[:, 0]]
    return float((values == labels.disc_value(level)).sum() * 0.1)


def test_degenerated_discs_are_thinner_and_darker_on_t2_and_graded_as_narrowed():
    seed, degenerated, healthy = _degenerated_neighbours()
    series = make_series(sequence="t2", seed=seed)  # full resolution: 0.6 mm in-plane
    thin, normal = _thickness_mm(series, degenerated), _thickness_mm(series, healthy)
    assert thin < 0.8 * normal, f"disc {degenerated} ({thin:.1f} mm) vs disc {healthy} ({normal:.1f} mm)"
    for level in (degenerated, healthy):  # the disc also fills both endplate dips (1.2 mm each at the centre)
        expected = series.anatomy.discs[level - 1].height_mm + 2 * 1.2
        assert _thickness_mm(series, level) == pytest.approx(expected, abs=1.2)
    dark = _mean_in(series, [labels.disc_value(degenerated)])
    bright = _mean_in(series, [labels.disc_value(healthy)])
    assert dark < 0.85 * bright
    assert series.anatomy.grading(degenerated).narrowing and not series.anatomy.grading(healthy).narrowing


def test_noise_bias_and_blur_are_present(series_by_sequence):
    series = series_by_sequence["t2"]
    image = sitk.GetArrayFromImage(series.image).astype(float)
    mask = sitk.GetArrayFromImage(series.mask)
    # Air behind the back: low but noisy (Rician), never exactly constant.
    air = image[(mask == 0) & (image < np.percentile(image, 10))]
    assert air.std() > 0
    # Inside one structure, values vary (noise, bias, partial volume) but stay near their mean.
    canal = image[mask == labels.SPINAL_CANAL]
    assert 0.02 * canal.mean() < canal.std() < 0.6 * canal.mean()
    # Another seed gives another image.
    other = make_series(sequence="t2", seed=series.seed + 1, voxel_scale=4.0)
    assert other.image.GetSize() != series.image.GetSize() or not np.array_equal(
        sitk.GetArrayFromImage(other.image), image
    )


def test_pixel_types(series_by_sequence):
    assert series_by_sequence["t1"].image.GetPixelID() == sitk.sitkInt16
    assert series_by_sequence["t2"].image.GetPixelID() == sitk.sitkInt16
    assert series_by_sequence["t2_SPACE"].image.GetPixelID() == sitk.sitkUInt16
    for series in series_by_sequence.values():
        assert series.mask.GetPixelID() == sitk.sitkUInt8
        assert sitk.GetArrayFromImage(series.image).min() >= 0


def test_headers_say_synthetic_after_writing(series_by_sequence, tmp_path):
    for sequence, series in series_by_sequence.items():
        for kind, image in (("image", series.image), ("mask", series.mask)):
            path = tmp_path / f"{sequence}_{kind}.mha"
            sitk.WriteImage(image, str(path))
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            assert reader.GetMetaData("Synthetic") == "true"
            assert reader.GetMetaData("SeriesSequence") == sequence
            assert reader.GetMetaData("SyntheticSeed") == str(series.seed)


def test_same_seed_gives_identical_arrays(voxel_scale):
    first = make_series(sequence="t2_SPACE", seed=5, voxel_scale=3.0)
    second = make_series(sequence="t2_SPACE", seed=5, voxel_scale=3.0)
    assert np.array_equal(sitk.GetArrayFromImage(first.image), sitk.GetArrayFromImage(second.image))
    assert np.array_equal(sitk.GetArrayFromImage(first.mask), sitk.GetArrayFromImage(second.mask))
    assert first.image.GetOrigin() == second.image.GetOrigin()
