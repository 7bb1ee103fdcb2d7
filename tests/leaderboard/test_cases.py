"""Worst-case choice and the mid-sagittal slice, whatever axis order an image is stored in."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import labels
from leaderboard.breakdowns import by_case_attribute, read_case_catalog
from leaderboard.cases import case_picture, mid_sagittal, worst_cases

from .conftest import submission_from_values


def _volume():
    """(z, y, x) = (S, P, L) with uneven spacing; the canal lies in x = 5, off the middle (x = 4)."""
    image = np.zeros((10, 8, 9), dtype=np.int16)
    mask = np.zeros_like(image, dtype=np.uint8)
    mask[1:4, 2:5, 3:7] = labels.vertebra_value(1)
    mask[4:5, 2:5, 3:7] = labels.disc_value(2)
    mask[:, 6, 5] = labels.SPINAL_CANAL
    image[:] = np.arange(10)[:, None, None] * 10 + np.arange(8)[None, :, None]  # encodes (S, P)
    return image, mask


def _image(array, orientation=None):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.7, 3.0))  # x, y, z
    image.SetOrigin((1.0, -2.0, 5.0))
    return sitk.DICOMOrient(image, orientation) if orientation else image


@pytest.mark.parametrize("orientation", [None, "PIR", "SRA", "RAI"])
def test_mid_sagittal_slice_is_the_same_for_any_stored_axis_order(orientation):
    image, mask = _volume()
    piece = mid_sagittal(_image(image, orientation), _image(mask, orientation), _image(mask, orientation))
    assert piece.index == 5
    # Superior at the top (row 0 = highest S), anterior on the left (column 0 = lowest P).
    expected_image = image[::-1, :, 5]
    expected_mask = mask[::-1, :, 5]
    assert np.array_equal(piece.image, expected_image)
    assert np.array_equal(piece.reference, expected_mask)
    assert np.array_equal(piece.prediction, expected_mask)
    assert piece.aspect == pytest.approx(3.0 / 0.7)


def test_a_prediction_on_another_grid_is_left_out_and_pictures_are_written(tmp_path):
    image, mask = _volume()
    other = sitk.GetImageFromArray(mask)
    piece = mid_sagittal(_image(image), _image(mask), other)
    assert piece.prediction is None
    for name, array in (("image", image), ("mask", mask)):
        sitk.WriteImage(_image(array, "PIR"), str(tmp_path / f"{name}.mha"))
    out = case_picture(tmp_path / "image.mha", tmp_path / "mask.mha", None, tmp_path / "pic" / "case.png", title="1_t2")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_worst_cases_put_failed_cases_first_then_lowest_mean():
    submission = submission_from_values("a", {
        ("dice", "vertebrae"): [0.9, 0.2, None, 0.5],
        ("dice", "discs"): [0.9, 0.4, None, 0.1],
    }, cases=["1_t1", "2_t1", "3_t1", "4_t1"])
    worst = worst_cases(submission, ["1_t1", "2_t1", "3_t1", "4_t1"], metric="dice", higher_is_better=True, count=3)
    assert [(w.case, w.value) for w in worst] == [
        ("3_t1", None), ("2_t1", pytest.approx(0.3)), ("4_t1", pytest.approx(0.3)),
    ]
    lower = worst_cases(submission_from_values("b", {("assd", "discs"): [1.0, 5.0]}), ["1_t1", "2_t1"],
                        metric="assd", higher_is_better=False, count=1)
    assert lower[0].case == "2_t1"


def test_without_a_test_set_only_the_sequence_is_known():
    submission = submission_from_values("a", {("dice", "discs"): [0.8, 0.6, 0.7]}, cases=["1_t1", "1_t2", "odd-name"])
    catalog = read_case_catalog(None, ["1_t1", "1_t2", "odd-name"])
    assert catalog.warnings
    breakdown = by_case_attribute([submission], catalog, dimension="sequence", metric="dice", structure="discs")
    assert breakdown.categories == ("T1", "T2", "unknown")
    assert breakdown.means.tolist() == [[pytest.approx(0.8), pytest.approx(0.6), pytest.approx(0.7)]]
    scanner = by_case_attribute([submission], catalog, dimension="manufacturer", metric="dice", structure="discs")
    assert scanner.categories == ("unknown",) and scanner.counts == (3,)
