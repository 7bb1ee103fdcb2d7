"""Export a trained run to ONNX with its inference spec, checked against the PyTorch network."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baselines.config import BaselineConfig
from baselines.data import preprocessing_of
from baselines.errors import ExportError, RunError
from baselines.infer import SPEC_FILE, InferenceSpec, OnnxWindowModel, sha256_of
from baselines.model import TorchWindowModel, model_from_checkpoint
from baselines.train import checkpoint_path

EXPORT_DIR = "export"
MODEL_FILE = "model.onnx"
PROVENANCE_FILE = "provenance.json"
OPSET = 17
# Largest difference between ONNX and PyTorch logits accepted (float32 on the CPU differ by
# about 1e-5 for UNETR); labels must agree everywhere on the check windows.
LOGIT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Export:
    folder: Path
    model_path: Path
    spec: InferenceSpec
    max_logit_difference: float
    checkpoint_sha256: str


def spec_of_config(config: BaselineConfig, *, model_file: str = "", model_sha256: str = "") -> InferenceSpec:
    """The inference spec of a training configuration (preprocessing, classes, window)."""
    return InferenceSpec(
        class_values=config.classes.class_map().values,
        classes_by_level=config.classes.by_level,
        preprocessing=preprocessing_of(config),
        window_size=config.model.patch_size,
        overlap=config.inference.overlap,
        window_batch_size=config.inference.window_batch_size,
        level_naming=config.inference.level_naming,
        model_file=model_file,
        model_sha256=model_sha256,
    )


def export_run(run_dir: Path | str, *, which: str = "best", force: bool = False) -> Export:
    """Write RUN/export/{model.onnx, inference.json, provenance.json} from a checkpoint.

    An export of the same checkpoint (same sha256) is reused unless `force`.
    """
    run_dir = Path(run_dir)
    source = checkpoint_path(run_dir, which)
    if not source.is_file():
        raise ExportError(f"no {which} checkpoint in {run_dir}: train first (spider baseline train)")
    folder = run_dir / EXPORT_DIR
    checkpoint_sha256 = sha256_of(source)
    existing = _existing(folder, checkpoint_sha256)
    if existing is not None and not force:
        return existing

    model, config = model_from_checkpoint(source)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    example = torch.zeros((1, 1, *config.model.patch_size), dtype=torch.float32)
    with warnings.catch_warnings():
        # InstanceNorm without running statistics exports as train-mode instance_norm: the same maths.
        warnings.filterwarnings("ignore", message=".*instance_norm.*", category=UserWarning)
        # The TorchScript-based exporter (dynamo=False) is deprecated since torch 2.9 but exports
        # UNETR exactly (checked below); the torch.export-based one would add onnxscript to the
        # dependencies. Revisit when torch removes it.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        try:
            torch.onnx.export(
                model, (example,), str(model_path),
                input_names=["image"], output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
        except Exception as error:  # the exporter raises many kinds
            raise ExportError(f"ONNX export of {source} failed: {type(error).__name__}: {error}") from error
    difference = _check(model_path, model, config.model.patch_size, seed=config.seed)
    spec = spec_of_config(config, model_file=MODEL_FILE, model_sha256=sha256_of(model_path))
    spec.write(folder)
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    provenance = {
        "checkpoint": source.name,
        "checkpoint_sha256": checkpoint_sha256,
        "iteration": int(checkpoint["iteration"]),
        "validation": checkpoint.get("validation"),
        "max_logit_difference_onnx_vs_torch": difference,
        "onnx_opset": OPSET,
        "torch_version": torch.__version__,
    }
    (folder / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Export(folder, model_path, spec, difference, checkpoint_sha256)


def _existing(folder: Path, checkpoint_sha256: str) -> Export | None:
    try:
        provenance = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
        spec = InferenceSpec.read(folder)
    except (OSError, ValueError, RunError):
        return None
    model_path = folder / spec.model_file
    if provenance.get("checkpoint_sha256") != checkpoint_sha256 or not model_path.is_file():
        return None
    if sha256_of(model_path) != spec.model_sha256:
        return None
    return Export(folder, model_path, spec, float(provenance["max_logit_difference_onnx_vs_torch"]), checkpoint_sha256)


def _check(model_path: Path, model: torch.nn.Module, window: tuple[int, int, int], *, seed: int) -> float:
    """Run both on two random windows (batch 2: the dynamic batch axis is exercised)."""
    windows = np.random.default_rng(seed).random((2, 1, *window), dtype=np.float32)
    onnx_logits = OnnxWindowModel(model_path, threads=None)(windows)
    torch_logits = TorchWindowModel(model)(windows)
    difference = float(np.max(np.abs(onnx_logits - torch_logits)))
    # Labels may differ only at near-ties, where the top two logits are closer than the tolerance.
    ordered = np.sort(torch_logits, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    differing = onnx_logits.argmax(1) != torch_logits.argmax(1)
    if difference > LOGIT_TOLERANCE or np.any(margin[differing] > 2 * LOGIT_TOLERANCE):
        raise ExportError(
            f"the ONNX model does not reproduce the PyTorch network: logits differ by up to {difference:.3g} "
            f"(tolerance {LOGIT_TOLERANCE:g}); labels differ at {int(differing.sum())} voxels"
        )
    return difference


def spec_file(run_dir: Path) -> Path:
    return Path(run_dir) / EXPORT_DIR / SPEC_FILE
