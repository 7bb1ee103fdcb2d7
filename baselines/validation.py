"""Validation during training: sliding-window Dice per class, summarized per group and overall."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from baselines.classes import ClassMap
from baselines.config import BaselineConfig
from baselines.data import IMAGE, LABEL
from baselines.errors import RunError


@dataclass(frozen=True)
class Validation:
    """Validation Dice after one iteration: mean over foreground classes, per group and per class.

    Per case, a class absent from both the reference and the prediction is skipped; the values
    here are means over validation cases of the per-case means. NaN: no case had that structure.
    """

    iteration: int
    mean_dice: float
    dice_by_group: Mapping[str, float]
    dice_by_class: Mapping[str, float]


def dice_per_class(prediction: np.ndarray, reference: np.ndarray, n_classes: int) -> np.ndarray:
    """Dice of each class (index = class); NaN for a class absent from both arrays."""
    counts = np.bincount(
        reference.astype(np.int64).ravel() * n_classes + prediction.astype(np.int64).ravel(),
        minlength=n_classes * n_classes,
    ).reshape(n_classes, n_classes)
    overlap = np.diag(counts).astype(float)
    total = counts.sum(axis=1) + counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * overlap / total, np.nan)


def summarize_dice(per_case: list[np.ndarray], class_map: ClassMap, iteration: int) -> Validation:
    groups = class_groups(class_map)
    foreground = list(range(1, class_map.n_classes))
    stack = np.asarray(per_case, dtype=float).reshape(len(per_case), class_map.n_classes)
    return Validation(
        iteration=iteration,
        mean_dice=_mean_over_cases(_per_case_mean(stack, foreground)),
        dice_by_group={name: _mean_over_cases(_per_case_mean(stack, indices)) for name, indices in groups.items()},
        dice_by_class={class_map.names[k]: _mean_over_cases(stack[:, k]) for k in foreground},
    )


def _per_case_mean(stack: np.ndarray, indices: Sequence[int]) -> np.ndarray:
    """Each case's mean Dice over the classes `indices` it has (NaN: none of them)."""
    values = stack[:, list(indices)]  # a list indexes columns; a tuple would index axes
    present = ~np.isnan(values)
    sums = np.where(present, values, 0.0).sum(axis=1)
    counts = present.sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _mean_over_cases(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def class_groups(class_map: ClassMap) -> dict[str, tuple[int, ...]]:
    """The training classes of each structure group the class map has, by group name."""
    from challenge.labels import Group

    return {g.value: class_map.classes_in_group(g) for g in Group if class_map.classes_in_group(g)}


def validate(model: torch.nn.Module, dataset, config: BaselineConfig, device: torch.device, *,
             amp_dtype: torch.dtype | None, iteration: int) -> Validation:
    class_map = config.classes.class_map()
    model.eval()
    per_case = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for index in range(len(dataset)):
            item = dataset[index]
            image = torch.as_tensor(item[IMAGE]).float().as_subclass(torch.Tensor)[None].to(device)
            prediction = _predicted_classes(model, image, config)
            reference = torch.as_tensor(item[LABEL])[0].cpu().numpy()
            per_case.append(dice_per_class(prediction, reference, class_map.n_classes))
    model.train()
    return summarize_dice(per_case, class_map, iteration)


def _predicted_classes(model: torch.nn.Module, image: torch.Tensor, config: BaselineConfig) -> np.ndarray:
    """The class of every voxel of one (1, 1, z, y, x) image, by Gaussian-weighted sliding window."""
    logits = sliding_window_inference(
        image,
        roi_size=config.model.patch_size,
        sw_batch_size=config.inference.window_batch_size,
        predictor=model,
        overlap=config.inference.overlap,
        mode="gaussian",
    )
    # MONAI also passes through predictors that return tuples or dicts; UNETR returns one tensor.
    if not isinstance(logits, torch.Tensor):
        raise RunError(f"the network returned {type(logits).__name__} for a window, expected a tensor of logits")
    return torch.argmax(logits, dim=1)[0].cpu().numpy()


def validation_dict(validation: Validation) -> dict[str, Any]:
    return {
        "iteration": validation.iteration,
        "mean_dice": json_number(validation.mean_dice),
        "dice_by_group": {k: json_number(v) for k, v in validation.dice_by_group.items()},
        "dice_by_class": {k: json_number(v) for k, v in validation.dice_by_class.items()},
    }


def json_number(value: float) -> float | None:
    """NaN and infinities are written as null (no structure to score)."""
    return float(value) if math.isfinite(value) else None
