"""The platform's other output formats: a .mhd with its data file and a TIFF become the harness's
one-file .mha copy with the same voxels; headers that would read other files, links and sizes
that do not fit are refused with a reason."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from challenge.contract import OUTPUT_SOCKET
from challenge.geometry import Geometry
from challenge.images import check_self_contained
from challenge.statuses import JobStatus
from evaluation.runner.output_check import PREDICTION_FILE, check_output
from evaluation.runner.output_formats import RefusedOutput, mhd_data_file, output_suffix

SHAPE_ZYX = (9, 28, 20)


@pytest.fixture
def case(tmp_path, make_image, mask_array):
    """(the output root, its socket folder, the expected grid, the labels to write)."""
    labels = mask_array(SHAPE_ZYX)
    expected = Geometry.of(make_image(np.zeros(SHAPE_ZYX, np.uint8)))
    root = tmp_path / "output"
    socket = root / OUTPUT_SOCKET.relative_path
    socket.mkdir(parents=True)
    return root, socket, expected, labels


def _copied_labels(root):
    copy = root.parent / PREDICTION_FILE
    check_self_contained(copy)  # one file, its voxels inside
    return sitk.GetArrayFromImage(sitk.ReadImage(str(copy))), Geometry.of(sitk.ReadImage(str(copy)))


@pytest.mark.parametrize("compressed", [False, True])
def test_a_mhd_with_its_data_file_becomes_one_mha(case, make_image, compressed):
    root, socket, expected, labels = case
    sitk.WriteImage(make_image(labels), str(socket / "seg.mhd"), compressed)
    checked = check_output(root, expected)
    assert checked.status is JobStatus.SUCCEEDED, checked.reason
    assert "seg.mhd" in checked.reason
    array, grid = _copied_labels(root)
    assert np.array_equal(array, labels) and not expected.differences(grid)
    assert oct(os.stat(root.parent / PREDICTION_FILE).st_mode & 0o777) == "0o444"


@pytest.mark.parametrize("data_file, words", [
    ("../seg.raw", "naming one data file in the same folder"),
    ("/etc/hostname", "naming one data file in the same folder"),
    ("LIST", "naming one data file in the same folder"),
    ("slice%03d.raw 1 9 1", "naming one data file in the same folder"),
    ("other.raw", "names its data file /output/images/sagittal-spine-mr-segmentation/other.raw, which does not exist"),
])
def test_a_mhd_naming_another_file_is_refused(case, make_image, data_file, words):
    root, socket, expected, labels = case
    sitk.WriteImage(make_image(labels), str(socket / "seg.mhd"))
    header = (socket / "seg.mhd").read_text().replace("ElementDataFile = seg.raw", f"ElementDataFile = {data_file}")
    (socket / "seg.mhd").write_text(header)
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert words in checked.reason, checked.reason
    assert not (root.parent / PREDICTION_FILE).exists()


def test_a_mhd_whose_data_file_is_a_link_is_refused(case, make_image, tmp_path):
    root, socket, expected, labels = case
    sitk.WriteImage(make_image(labels), str(socket / "seg.mhd"))
    os.replace(socket / "seg.raw", tmp_path / "elsewhere.raw")
    os.symlink(tmp_path / "elsewhere.raw", socket / "seg.raw")
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "is a symbolic link" in checked.reason


def test_a_mhd_header_skipping_bytes_is_refused(case, make_image):
    root, socket, expected, labels = case
    sitk.WriteImage(make_image(labels), str(socket / "seg.mhd"))
    header = (socket / "seg.mhd").read_text().replace("ElementDataFile", "HeaderSize = 16\nElementDataFile")
    (socket / "seg.mhd").write_text(header)
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT and "HeaderSize" in checked.reason


def test_a_mhd_data_file_past_the_limit_is_too_large(case, make_image):
    root, socket, expected, labels = case
    sitk.WriteImage(make_image(labels), str(socket / "seg.mhd"))
    checked = check_output(root, expected, limit_bytes=labels.size // 2)
    assert checked.status is JobStatus.OUTPUT_TOO_LARGE


def test_a_tiff_of_the_inputs_size_is_taken_on_the_inputs_grid(case):
    root, socket, expected, labels = case
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(socket / "seg.tif"))  # no origin or direction
    checked = check_output(root, expected)
    assert checked.status is JobStatus.SUCCEEDED, checked.reason
    assert "TIFF holds no origin or direction" in checked.reason
    array, grid = _copied_labels(root)
    assert np.array_equal(array, labels) and not expected.differences(grid)
    assert not (root.parent / "prediction.tif").exists()


def test_a_tiff_of_another_size_is_refused_from_its_header(case):
    root, socket, expected, labels = case
    sitk.WriteImage(sitk.GetImageFromArray(labels[:-1]), str(socket / "seg.TIFF"))
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "expected a TIFF of the input's size (x, y, slices) (20, 28, 9), found (20, 28, 8)" in checked.reason


def test_a_tiff_that_is_not_one_is_refused(case):
    root, socket, expected, _labels = case
    (socket / "seg.tif").write_bytes(b"II*\x00 not really")
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT and "cannot read it as TIFF" in checked.reason


def test_two_images_of_different_formats_are_two(case, make_image):
    root, socket, expected, labels = case
    sitk.WriteImage(make_image(labels), str(socket / "seg.mha"))
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(socket / "seg.tif"))
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT and "found 2 image files" in checked.reason


def test_suffixes_and_header_rewrite():
    assert [output_suffix(name) for name in ("a.MHA", "b.mhd", "c.tiff", "d.raw", "e.nii.gz")] == [
        ".mha", ".mhd", ".tiff", None, None]
    header, name = mhd_data_file(b"NDims = 3\nDimSize = 2 2 2\nElementDataFile = seg.raw\n", "seg.mhd")
    assert name == "seg.raw" and header.endswith(b"ElementDataFile = LOCAL\n")
    assert mhd_data_file(b"NDims = 3\nElementDataFile = LOCAL\n", "seg.mhd")[1] is None
    with pytest.raises(RefusedOutput, match="with an 'ElementDataFile' line"):
        mhd_data_file(b"NDims = 3\n", "seg.mhd")
