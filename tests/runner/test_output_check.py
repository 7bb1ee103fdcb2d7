"""Output checks on host folders: exactly one regular .mha on the input grid, sizes without links."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge.contract import OUTPUT_SOCKET
from challenge.geometry import Geometry
from challenge.statuses import JobStatus
from evaluation.runner.output_check import check_output, measure_folder, output_too_large

SHAPE_ZYX = (9, 28, 20)
SPACING_XYZ = (0.62, 0.55, 3.3)  # as make_image's default: uneven, with a rotated direction


@pytest.fixture
def expected(make_image) -> Geometry:
    return Geometry.of(make_image(np.zeros(SHAPE_ZYX, np.uint8)))


@pytest.fixture
def output_root(tmp_path) -> Path:
    root = tmp_path / "output"
    (root / OUTPUT_SOCKET.relative_path).mkdir(parents=True)
    return root


def _socket(root: Path) -> Path:
    return root / OUTPUT_SOCKET.relative_path


def test_one_valid_segmentation_succeeds(output_root, expected, make_image, mask_array):
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(_socket(output_root) / "seg.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.SUCCEEDED
    assert checked.path == _socket(output_root) / "seg.mha"


def test_empty_folder_is_missing_output(output_root, expected):
    (_socket(output_root) / "notes.txt").write_text("x")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "no .mha file in /output/images/sagittal-spine-mr-segmentation/" in checked.reason
    assert "notes.txt" in checked.reason


def test_missing_output_points_at_a_misplaced_file(output_root, expected, make_image, mask_array):
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(output_root / "seg.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "/output/seg.mha" in checked.reason


def test_missing_socket_folder_is_missing_output(tmp_path, expected):
    (tmp_path / "output").mkdir()
    checked = check_output(tmp_path / "output", expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "does not exist" in checked.reason


def test_two_files_are_invalid(output_root, expected, make_image, mask_array):
    for name in ("a.mha", "b.mha"):
        sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(_socket(output_root) / name))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "found 2 .mha files" in checked.reason and "a.mha, b.mha" in checked.reason


def test_a_link_to_a_valid_file_is_invalid(output_root, expected, tmp_path, make_image, mask_array):
    target = tmp_path / "elsewhere.mha"
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(target))
    os.symlink(target, _socket(output_root) / "seg.mha")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "symbolic link" in checked.reason


def test_a_linked_socket_folder_is_invalid(tmp_path, expected, make_image, mask_array):
    real = tmp_path / "real"
    real.mkdir()
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(real / "seg.mha"))
    root = tmp_path / "output"
    (root / "images").mkdir(parents=True)
    os.symlink(real, root / OUTPUT_SOCKET.relative_path)
    checked = check_output(root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "is a symbolic link, not a folder" in checked.reason


@pytest.mark.parametrize(
    "breach, reason",
    [
        ("spacing", "spacing (mm): expected (0.62, 0.55, 3.3), found (1, 1, 1)"),
        ("size", "size: expected (20, 28, 9), found (21, 28, 9)"),
        ("float", "integer label image"),
        ("unknown-label", "not SPIDER labels: 42"),
    ],
)
def test_contract_breaches_are_invalid(output_root, expected, make_image, mask_array, breach, reason):
    array, spacing = mask_array(SHAPE_ZYX), SPACING_XYZ
    if breach == "spacing":
        spacing = (1.0, 1.0, 1.0)
    elif breach == "size":
        array = mask_array((9, 28, 21))
    elif breach == "float":
        array = array.astype(np.float32)
    else:
        array = np.full(SHAPE_ZYX, 42, np.uint8)
    sitk.WriteImage(make_image(array, spacing=spacing), str(_socket(output_root) / "seg.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert reason in checked.reason


def test_measure_counts_sparse_files_by_length_and_skips_links(tmp_path):
    (tmp_path / "sub").mkdir()
    with open(tmp_path / "sub" / "sparse.bin", "wb") as stream:
        stream.truncate(10 * 1024**2)
    (tmp_path / "small.txt").write_bytes(b"x" * 100)
    big_outside = tmp_path.parent / f"{tmp_path.name}-outside.bin"
    big_outside.write_bytes(b"y" * 5000)
    os.symlink(big_outside, tmp_path / "link.bin")
    small = os.stat(tmp_path / "small.txt")
    size = measure_folder(tmp_path)
    assert size.complete
    assert size.entries == 4  # sub, sparse.bin, small.txt, link.bin
    # the sparse file counts by its length, the small one by its allocated block; the link adds nothing
    assert size.bytes == 10 * 1024**2 + max(100, small.st_blocks * 512)


def test_measure_stops_early_past_a_bound(tmp_path):
    for index in range(30):
        (tmp_path / f"f{index}").write_bytes(b"z")
    size = measure_folder(tmp_path, max_entries=10)
    assert not size.complete and size.entries == 11
    assert "more than 10 files" in output_too_large(size, limit_bytes=10**9, max_entries=10)
    assert output_too_large(measure_folder(tmp_path), limit_bytes=10**9) is None
    too_big = measure_folder(tmp_path, stop_above_bytes=1)
    assert "grew past the limit" in output_too_large(too_big, limit_bytes=1)


def test_a_file_name_that_is_not_utf8_is_invalid_with_a_printable_reason(output_root, expected, make_image,
                                                                         mask_array):
    name = os.fsdecode(b"seg\xff.mha")
    sitk.WriteImage(make_image(mask_array(SHAPE_ZYX)), str(_socket(output_root) / "tmp.mha"))
    os.rename(_socket(output_root) / "tmp.mha", os.path.join(os.fsencode(_socket(output_root)), b"seg\xff.mha"))
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.INVALID_OUTPUT
    assert "seg\\xff.mha" in checked.reason and "not printable UTF-8" in checked.reason
    checked.reason.encode("utf-8")
    assert name not in checked.reason


def test_names_listed_in_a_reason_are_printable(output_root, expected):
    (_socket(output_root) / "notes\x01\n.txt").write_text("x")
    checked = check_output(output_root, expected)
    assert checked.status is JobStatus.MISSING_OUTPUT
    assert "notes .txt" in checked.reason and "\x01" not in checked.reason
