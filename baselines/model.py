"""The network (MONAI UNETR), its checkpoints, and a window model for PyTorch inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import UNETR

from baselines.config import BaselineConfig, ModelConfig, config_from_mapping
from baselines.errors import RunError


def build_model(model: ModelConfig, *, n_classes: int) -> torch.nn.Module:
    """UNETR with one input channel and one output channel per training class."""
    if model.name != "unetr":  # config validation allows only the names built here
        raise RunError(f"unknown model {model.name!r}")
    return UNETR(
        in_channels=1,
        out_channels=n_classes,
        img_size=model.patch_size,
        feature_size=model.feature_size,
        hidden_size=model.hidden_size,
        mlp_dim=model.mlp_dim,
        num_heads=model.num_heads,
        proj_type="conv",
        norm_name="instance",
        res_block=True,
        dropout_rate=model.dropout_rate,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by the trainer; raises RunError when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise RunError(f"{path}: cannot be loaded as a checkpoint ({type(error).__name__}: {error})") from error


def model_from_checkpoint(path: Path, *, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, BaselineConfig]:
    """The network of a checkpoint in eval mode, with the configuration it was trained with."""
    checkpoint = load_checkpoint(path, map_location=device)
    config = config_from_mapping(checkpoint["config"], source=str(path))
    model = build_model(config.model, n_classes=config.classes.class_map().n_classes)
    model.load_state_dict(checkpoint["model"])
    model.to(device).eval()
    return model, config


class TorchWindowModel:
    """A window model (see baselines.infer.WindowModel) that runs the PyTorch network."""

    def __init__(self, model: torch.nn.Module, *, device: str | torch.device = "cpu"):
        self._model = model.eval()
        self._device = torch.device(device)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(self._device)
            return self._model(batch).float().cpu().numpy()
