"""A prediction is read from its own bytes only: MetaImage header tricks are invalid output.

The scorer reads outputs on the host. A header that names another data file (the hidden
reference, any host file) would make SimpleITK read that file; each trick must be refused with
its reason before a voxel is read, by every path that reads predictions.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from challenge import images
from challenge.contract import OUTPUT_SOCKET
from challenge.errors import UnreadableFileError
from challenge.geometry import Geometry
from challenge.statuses import CaseStatus, JobStatus
from evaluation.errors import InvalidPredictionError
from evaluation.prediction import read_checked_prediction, read_prediction
from evaluation.runner.output_check import check_output
from evaluation.score import score_folders

from .conftest import spine_reference, write_mask

OTHER_FILE = "takes them from another file"


@pytest.fixture
def reference(tmp_path) -> Path:
    """A hidden reference mask, stored uncompressed (its voxels readable at a fixed offset)."""
    path = tmp_path / "hidden" / "masks" / "1_t2.mha"
    path.parent.mkdir(parents=True)
    write_mask(path, spine_reference())
    image = sitk.ReadImage(str(path))
    sitk.WriteImage(image, str(path), useCompression=False)
    return path


def _header_of(path: Path) -> list[str]:
    """The text header lines of a .mha file, ElementDataFile excluded."""
    head = path.read_bytes().split(b"ElementDataFile", 1)[0].decode("ascii")
    return [line for line in head.splitlines() if line.strip()]


def _trick(reference: Path, folder: Path, *, extra: list[str], data_file: str, body: bytes = b"") -> Path:
    """A header copied from the reference (same grid) with `extra` lines and its own ElementDataFile."""
    folder.mkdir(parents=True, exist_ok=True)
    header = [line for line in _header_of(reference) if not line.startswith("CompressedData")]
    text = "\n".join(header + extra + [f"ElementDataFile = {data_file}"]) + "\n"
    path = folder / "1_t2.mha"
    path.write_bytes(text.encode("ascii") + body)
    return path


def _tricks(reference: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Each trick's file and the words its reason must hold."""
    return {
        "absolute path to the reference": (
            _trick(reference, folder / "absolute", extra=["HeaderSize = -1"], data_file=str(reference)), OTHER_FILE),
        "parent path": (
            _trick(reference, folder / "parent", extra=["HeaderSize = -1"],
                   data_file="../../hidden/masks/1_t2.mha"), OTHER_FILE),
        "list of files": (
            _trick(reference, folder / "list", extra=[], data_file="LIST", body=f"{reference}\n".encode()), OTHER_FILE),
        "file pattern": (_trick(reference, folder / "pattern", extra=[], data_file="slice%03d.raw 1 3 1"), OTHER_FILE),
        "HeaderSize with local data": (
            _trick(reference, folder / "headersize", extra=["HeaderSize = -1"], data_file="LOCAL",
                   body=bytes(1000)), "HeaderSize"),
    }


def test_plain_simpleitk_would_read_the_reference_through_the_header(reference, tmp_path):
    """What the checks guard against: without them the 'prediction' is the hidden reference."""
    path, _ = _tricks(reference, tmp_path / "out")["absolute path to the reference"]
    stolen = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    np.testing.assert_array_equal(stolen, spine_reference())


@pytest.mark.parametrize("trick", ["absolute path to the reference", "parent path", "list of files", "file pattern",
                                   "HeaderSize with local data"])
def test_every_header_trick_is_invalid_before_a_voxel_is_read(reference, tmp_path, trick):
    path, words = _tricks(reference, tmp_path / "out")[trick]
    expected = images.read_header(reference)
    with pytest.raises(InvalidPredictionError, match=words) as raised:
        read_prediction(path, expected)
    assert str(reference.parent) not in raised.value.reason  # the reason names no host path
    with pytest.raises(InvalidPredictionError, match=words):
        read_checked_prediction(path)  # the registry's re-read refuses it too


def test_other_formats_and_binary_headers_are_refused(reference, tmp_path):
    expected = images.read_header(reference)
    nrrd = tmp_path / "nrrd" / "seg.mha"
    nrrd.parent.mkdir()
    nrrd.write_bytes(b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 7 12 20\nencoding: raw\n"
                     b"data file: " + str(reference).encode() + b"\n\n")
    with pytest.raises(InvalidPredictionError, match="'Key = Value' lines"):
        read_prediction(nrrd, expected)
    garbage = tmp_path / "garbage" / "seg.mha"
    garbage.parent.mkdir()
    garbage.write_bytes(b"ObjectType = Image\nNDims = \xff\xfe\nElementDataFile = LOCAL\n")
    with pytest.raises(InvalidPredictionError, match="ASCII"):
        read_prediction(garbage, expected)
    headless = tmp_path / "headless" / "seg.mha"
    headless.parent.mkdir()
    headless.write_bytes(b"ObjectType = Image\n" * 5000)
    with pytest.raises(InvalidPredictionError, match="ElementDataFile = LOCAL"):
        read_prediction(headless, expected)


def test_a_declared_size_that_is_not_the_input_grid_is_refused_from_the_header(reference, tmp_path):
    """1200^3 voxels declared over a few bytes: refused by the grid check, nothing allocated."""
    folder = tmp_path / "bomb"
    header = [line if not line.startswith("DimSize") else "DimSize = 1200 1200 1200"
              for line in _header_of(reference) if not line.startswith("CompressedData")]
    folder.mkdir()
    path = folder / "seg.mha"
    path.write_bytes(("\n".join(header + ["ElementDataFile = LOCAL"]) + "\n").encode() + bytes(64))
    began = time.perf_counter()
    with pytest.raises(InvalidPredictionError, match="not on the input image's grid") as raised:
        read_prediction(path, images.read_header(reference))
    assert "size: expected" in raised.value.reason
    assert time.perf_counter() - began < 5


def test_ordinary_files_pass(reference, tmp_path):
    expected = images.read_header(reference)
    for compressed in (True, False):
        path = tmp_path / f"ok-{compressed}.mha"
        sitk.WriteImage(sitk.ReadImage(str(reference)), str(path), useCompression=compressed)
        images.check_self_contained(path)
        np.testing.assert_array_equal(read_prediction(path, expected), spine_reference())


def test_check_self_contained_says_what_was_expected(tmp_path):
    path = tmp_path / "x.mha"
    path.write_bytes(b"ObjectType = Image\nElementDataFile = /etc/passwd\n")
    with pytest.raises(UnreadableFileError, match=r"x.mha: expected 'ElementDataFile = LOCAL'"):
        images.check_self_contained(path)


def test_spider_score_records_the_trick_as_invalid_and_scores_worst(reference, tmp_path):
    predictions = tmp_path / "predictions"
    path, _ = _tricks(reference, tmp_path / "made")["absolute path to the reference"]
    predictions.mkdir()
    path.rename(predictions / "1_t2.mha")
    report = score_folders(reference.parent, predictions, tmp_path / "scores", progress=False)
    outcome = report.case_outcome("1_t2")
    assert outcome.status is CaseStatus.INVALID and OTHER_FILE in outcome.reason
    assert report.value("1_t2", "vertebrae/all/dice") == 0.0


def test_the_output_check_refuses_the_trick(reference, tmp_path):
    """`spider try` and the registry's runs go through the output check."""
    root = tmp_path / "output"
    socket = root / OUTPUT_SOCKET.relative_path
    path, _ = _tricks(reference, tmp_path / "made")["absolute path to the reference"]
    socket.mkdir(parents=True)
    path.rename(socket / "seg.mha")
    checked = check_output(root, Geometry.of(sitk.ReadImage(str(reference))))
    assert checked.status is JobStatus.INVALID_OUTPUT and OTHER_FILE in checked.reason


def test_key_spelling_does_not_slip_past(reference, tmp_path):
    """A data-file key in another case before a proper LOCAL line is still the first data file."""
    path = _trick(reference, tmp_path / "case", extra=[f"elementdatafile = {reference}"], data_file="LOCAL",
                  body=bytes(2000))
    with pytest.raises(InvalidPredictionError, match=OTHER_FILE):
        read_prediction(path, images.read_header(reference))
