"""Preprocessing and sliding-window inference: orientation, exact output geometry, MONAI parity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.inferers import sliding_window_inference

from baselines.classes import ClassMap
from baselines.errors import RunError
from baselines.infer import InferenceSpec, predict_image, sliding_window_logits, window_starts
from baselines.preprocess import Preprocessing, canonical_grid, prepare_image, prepare_mask
from challenge import labels
from challenge.geometry import Geometry

CLASS_MAP = ClassMap.from_levels(max_level=3, partial_vertebrae=False)


class OracleModel:
    """Reads the class back from the intensity: the image holds class index / (n - 1) after a
    (0, 100) percentile normalization, so every step that moves voxels shows in the output."""

    def __init__(self, n_classes: int):
        self.n = n_classes

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        scaled = windows * (self.n - 1)
        return np.concatenate([-((scaled - c) ** 2) for c in range(self.n)], axis=1)


def oracle_case(spine, orientation: str, *, direction=None):
    _, mask = spine.volume(levels=3, seed=1)
    image = spine.stored(CLASS_MAP.encode(mask).astype(np.float32), orientation)
    reference = spine.stored(mask, orientation)
    if direction is not None:
        image.SetDirection(direction)
        reference.SetDirection(direction)
    return image, reference


def spec_for(spacing_mm) -> InferenceSpec:
    return InferenceSpec(
        class_values=CLASS_MAP.values,
        preprocessing=Preprocessing("PIR", tuple(spacing_mm), (0.0, 100.0)),
        window_size=(16, 32, 32),
        overlap=0.25,
        window_batch_size=4,
    )


@pytest.mark.parametrize("size, window, overlap, expected", [
    (10, 16, 0.25, [0]),
    (16, 16, 0.25, [0]),
    (50, 32, 0.25, [0, 18]),
    (100, 32, 0.5, [0, 16, 32, 48, 64, 68]),
])
def test_window_starts(size, window, overlap, expected):
    assert window_starts(size, window, overlap) == expected


@pytest.mark.parametrize("shape", [(20, 50, 45), (10, 20, 45)])
def test_sliding_window_matches_monai_gaussian(shape):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(3, 3, 3, padding=1)
    ).eval()
    volume = np.random.default_rng(0).random(shape, dtype=np.float32)

    def model(windows):
        with torch.no_grad():
            return net(torch.from_numpy(windows)).numpy()

    mine = sliding_window_logits(volume, model, window=(16, 32, 32), overlap=0.25, batch_size=3)
    with torch.no_grad():
        theirs = sliding_window_inference(torch.from_numpy(volume)[None, None], (16, 32, 32), 3, net,
                                          overlap=0.25, mode="gaussian")[0].numpy()
    assert mine.shape == theirs.shape == (3, *shape)
    np.testing.assert_allclose(mine, theirs, atol=1e-6)


@pytest.mark.parametrize("orientation", ["LPS", "PIR"])
def test_canonical_arrays_run_right_down_back_whatever_the_storage(spine, orientation):
    _, mask = spine.volume(levels=3, seed=1)
    image = spine.stored(mask, orientation)
    grid = canonical_grid(Geometry.of(image), Preprocessing("PIR", (2.0, 1.0, 1.0), (0.5, 99.5)))
    assert grid.spacing_zyx_mm == (2.0, 1.0, 1.0)
    canonical = prepare_mask(image, grid)
    centre = {v: np.argwhere(canonical == v).mean(axis=0) for v in (1, 2, labels.SPINAL_CANAL)}
    assert centre[1][1] > centre[2][1] + 5  # L5 lies below L4: axis 1 runs downwards
    assert centre[labels.SPINAL_CANAL][2] > centre[1][2] + 5  # the canal lies behind: axis 2 runs backwards


@pytest.mark.parametrize("orientation", ["LPS", "PIR"])
def test_prediction_at_native_spacing_reproduces_the_mask_exactly(spine, orientation):
    image, reference = oracle_case(spine, orientation)
    native = Geometry.of(sitk.DICOMOrient(image, "PIR")).spacing_zyx_mm
    prediction = predict_image(image, OracleModel(CLASS_MAP.n_classes), spec_for(native)).labels
    assert prediction.GetPixelID() == sitk.sitkUInt8
    assert Geometry.of(prediction) == Geometry.of(image)  # bit-identical header
    np.testing.assert_array_equal(sitk.GetArrayFromImage(prediction), sitk.GetArrayFromImage(reference))


def test_prediction_on_a_coarser_oblique_grid_lands_on_the_input_grid(spine):
    # One structure (all vertebral bodies as L4): resampling an intensity-coded image of more
    # classes would invent classes at borders. A flipped or shifted axis would give a Dice near 0.
    tilt = np.deg2rad(12)
    rotation = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    _, mask = spine.volume(levels=3, seed=1)
    bodies = np.where(np.isin(mask, (1, 2, 3)), 2, 0).astype(np.uint8)
    image, reference = spine.stored(bodies.astype(np.float32), "LPS"), spine.stored(bodies, "LPS")
    for volume in (image, reference):
        volume.SetDirection(tuple(rotation.ravel()))
    spec = dataclasses.replace(spec_for((2.0, 1.5, 1.5)), class_values=(0, 2))
    prepared = prepare_image(image, spec.preprocessing)
    assert prepared.array.dtype == np.float32 and prepared.array.min() == 0.0 and prepared.array.max() == 1.0
    prediction = predict_image(image, OracleModel(2), spec).labels
    assert Geometry.of(prediction) == Geometry.of(image)
    predicted, truth = sitk.GetArrayFromImage(prediction) == 2, sitk.GetArrayFromImage(reference) == 2
    assert 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum()) > 0.9
    shift_voxels = np.argwhere(predicted).mean(axis=0) - np.argwhere(truth).mean(axis=0)
    shift_mm = np.abs(shift_voxels) * np.asarray(Geometry.of(image).spacing_zyx_mm)
    assert shift_mm.max() < 1.0


def test_spec_round_trips_and_old_specs_keep_the_network_names(tmp_path):
    spec = dataclasses.replace(spec_for((2.0, 2.0, 2.0)), level_naming="count-from-sacrum", classes_by_level=False,
                               class_values=(0, 1, 100, 201))
    spec.write(tmp_path)
    assert InferenceSpec.read(tmp_path) == spec
    old = spec_for((2.0, 2.0, 2.0)).to_dict()
    del old["level_naming"], old["classes_by_level"]
    restored = InferenceSpec.from_dict(old)
    assert restored.level_naming == "network" and restored.classes_by_level


def test_spec_refuses_classes_by_group_without_counting():
    with pytest.raises(RunError, match="classes by group carry no level"):
        dataclasses.replace(spec_for((2.0, 2.0, 2.0)), classes_by_level=False, class_values=(0, 1, 100, 201))


def test_prediction_by_group_is_named_by_counting(spine):
    # An oracle that outlines perfectly but knows no levels: counting names every level.
    groups = ClassMap.from_groups(partial_vertebrae=False)
    _, mask = spine.volume(levels=3, seed=1)
    image = spine.stored(groups.encode(mask).astype(np.float32), "PIR")
    native = Geometry.of(sitk.DICOMOrient(image, "PIR")).spacing_zyx_mm
    spec = dataclasses.replace(spec_for(native), class_values=groups.values, classes_by_level=False,
                               level_naming="count-from-sacrum")
    prediction = predict_image(image, OracleModel(groups.n_classes), spec).labels
    np.testing.assert_array_equal(sitk.GetArrayFromImage(prediction), sitk.GetArrayFromImage(spine.stored(mask, "PIR")))


def test_inference_modules_need_no_torch():
    code = (
        "import sys, baselines.container.entrypoint, baselines.infer;"
        "bad = sorted(m for m in ('torch', 'monai', 'scipy', 'matplotlib') if m in sys.modules);"
        "print(', '.join(bad)); sys.exit(1 if bad else 0)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, f"imported: {completed.stdout} {completed.stderr}"
