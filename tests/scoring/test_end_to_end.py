"""`spider synth` then `spider score`: a generated release, perturbed predictions, both profiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from challenge import labels
from challenge.cli import main


def _write_like(array: np.ndarray, like: sitk.Image, path: Path, *, spacing=None) -> None:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    if spacing is not None:
        image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


@pytest.fixture(scope="module")
def release_and_predictions(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("e2e")
    assert main(["synth", "--out", str(root / "release"), "--cases", "5", "--seed", "11",
                 "--voxel-scale", "2.5", "--quiet"]) == 0
    masks = root / "release" / "masks"
    names = sorted(p.stem for p in masks.glob("*.mha"))
    assert len(names) == 5
    predictions = root / "predictions"
    predictions.mkdir()
    perfect, perturbed, renamed, offgrid, _missing = names
    for name in (perfect, perturbed, renamed, offgrid):
        image = sitk.ReadImage(str(masks / f"{name}.mha"))
        array = sitk.GetArrayFromImage(image)
        if name == perturbed:
            array = array.copy()
            vertebra = array == sorted(v for v in np.unique(array) if 1 <= v <= 25)[0]
            array[vertebra & ~ndimage.binary_erosion(vertebra)] = 0
        elif name == renamed:
            shifted = array.copy()
            for value in np.unique(array):
                structure = labels.structure(int(value)) if value else None
                if structure is not None and structure.group in (labels.Group.VERTEBRAE, labels.Group.DISCS):
                    shifted[array == value] = value + 1
            array = shifted
        spacing = None
        if name == offgrid:
            spacing = tuple(s * 1.01 for s in image.GetSpacing())
        _write_like(array, image, predictions / f"{name}.mha", spacing=spacing)
    return masks, predictions, names


def _score(masks: Path, predictions: Path, out: Path, profile: str, workers: int = 1) -> dict:
    assert main(["score", "--reference", str(masks), "--predictions", str(predictions), "--out", str(out),
                 "--profile", profile, "--workers", str(workers), "--quiet"]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.timeout(300)
def test_full_profile_on_a_synthetic_release(release_and_predictions, tmp_path):
    masks, predictions, (perfect, perturbed, renamed, offgrid, missing) = release_and_predictions
    document = _score(masks, predictions, tmp_path / "out", "full")
    cases = document["case"]
    assert [cases[n]["status"] for n in (perfect, perturbed, renamed, offgrid, missing)] == \
        ["scored", "scored", "scored", "invalid", "missing"]
    assert "spacing" in cases[offgrid]["reason"]
    assert cases[perfect]["metrics"]["vertebrae/all/dice"] == 1.0
    assert cases[perfect]["metrics"]["vertebrae/all/hd95"] == 0.0
    assert 0.5 < cases[perturbed]["metrics"]["vertebrae/all/dice"] < 1.0
    assert cases[perturbed]["metrics"]["vertebrae/all/merged_assd"] > 0.0
    # Every level named one too high: overlap intact, identification lost.
    assert cases[renamed]["metrics"]["vertebrae/all/dice"] == 1.0
    assert cases[renamed]["metrics"]["vertebrae/all/identification_rate"] == 0.0
    assert cases[renamed]["metrics"]["vertebrae/all/detection_rate"] == 1.0
    for name in (offgrid, missing):
        assert cases[name]["metrics"]["vertebrae/all/dice"] == 0.0
        assert cases[name]["metrics"]["discs/all/nsd"] == 0.0
    assert document["aggregates"]["vertebrae/all/dice"]["n"] == 5


@pytest.mark.timeout(300)
def test_spider2024_profile_on_a_synthetic_release(release_and_predictions, tmp_path):
    masks, predictions, (perfect, perturbed, renamed, offgrid, missing) = release_and_predictions
    document = _score(masks, predictions, tmp_path / "out", "spider2024")
    cases = document["case"]
    assert cases[perfect]["metrics"]["DiceScoreVertebrae"] == 1.0
    assert cases[perfect]["metrics"]["OveralASD"] == 0.0
    assert cases[renamed]["metrics"]["DiceScoreDiscs"] == 1.0
    assert cases[renamed]["metrics"]["IdentificationRateDiscs"] == 0.0
    assert cases[missing]["metrics"]["ASDVertebrae"] > 100.0  # the worst distance, not NaN or dropped
    assert set(document["aggregates"]["OveralDiceScore"]) == {"n", "mean", "std", "median", "q1", "q3"}


@pytest.mark.timeout(300)
def test_rescoring_gives_byte_identical_files(release_and_predictions, tmp_path):
    masks, predictions, _ = release_and_predictions
    _score(masks, predictions, tmp_path / "one", "full", workers=1)
    _score(masks, predictions, tmp_path / "two", "full", workers=2)
    for name in ("metrics.json", "cases.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
