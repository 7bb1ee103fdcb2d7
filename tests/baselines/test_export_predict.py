"""Export to ONNX, and `spider baseline predict` with both backends on the smoke run."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk

from baselines.export import export_run
from baselines.infer import InferenceSpec, sha256_of
from challenge import labels
from challenge.cli import main as spider
from challenge.geometry import Geometry


def test_export_records_the_model_hash_and_its_checkpoint(smoke_run):
    run_dir, result = smoke_run
    exported = export_run(run_dir)
    assert exported.model_path.is_file()
    assert sha256_of(exported.model_path) == exported.spec.model_sha256
    assert InferenceSpec.read(exported.folder) == exported.spec
    provenance = json.loads((exported.folder / "provenance.json").read_text())
    assert provenance["iteration"] == result.best_iteration
    assert provenance["max_logit_difference_onnx_vs_torch"] < 1e-3
    assert export_run(run_dir).spec == exported.spec  # reused, not redone


def test_predict_torch_and_onnx_give_the_same_labels_on_the_input_grid(smoke_run, validation_images, tmp_path):
    run_dir, _ = smoke_run
    outputs = {}
    for backend in ("torch", "onnx"):
        outputs[backend] = tmp_path / backend
        assert spider(["baseline", "predict", "--run", str(run_dir), "--input", str(validation_images / "images"),
                       "--output", str(outputs[backend]), "--backend", backend]) == 0
    inputs = sorted((validation_images / "images").glob("*.mha"))
    assert inputs
    for image_path in inputs:
        image = sitk.ReadImage(str(image_path))
        torch_labels = sitk.ReadImage(str(outputs["torch"] / image_path.name))
        onnx_labels = sitk.ReadImage(str(outputs["onnx"] / image_path.name))
        for prediction in (torch_labels, onnx_labels):
            assert Geometry.of(prediction) == Geometry.of(image)
            assert prediction.GetPixelID() == sitk.sitkUInt8
        a, b = sitk.GetArrayFromImage(torch_labels), sitk.GetArrayFromImage(onnx_labels)
        assert not labels.unknown_values(np.unique(a).tolist())
        # float32 ONNX and PyTorch logits differ by ~1e-5: at most a handful of near-tie voxels may differ
        assert (a != b).sum() <= max(1, a.size // 100_000), (a != b).sum()
