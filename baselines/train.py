"""Training: UNETR with DiceCE and AdamW, sliding-window validation, best and last checkpoints."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.utils import set_determinism

from baselines.classes import ClassMap
from baselines.config import BaselineConfig, load_config, save_config
from baselines.data import (
    IMAGE,
    LABEL,
    IterationSamples,
    describe_split,
    list_cases,
    split_cases,
    training_dataset,
    validation_dataset,
)
from baselines.errors import RunError
from baselines.metrics_log import PLOT_FILE, MetricsLog, plot_metrics
from baselines.progress import progress_bar
from baselines.model import build_model, count_parameters, load_checkpoint

CONFIG_FILE = "config.toml"
SPLIT_FILE = "split.json"
SUMMARY_FILE = "summary.json"
VALIDATION_FILE = "validation.json"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
SCHEMA_VERSION = 1


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


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    iterations: int
    resumed_from: int
    best_iteration: int
    best_mean_dice: float
    last_validation: Validation | None
    seconds: float
    seconds_per_iteration: float
    validation_seconds: float
    stopped_by_time: bool
    device: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def checkpoint_path(run_dir: Path, which: str = "best") -> Path:
    name = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}[which]
    return Path(run_dir) / CHECKPOINT_DIR / name


def resolve_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda was asked for, but PyTorch sees no CUDA device (use --device cpu)")
    if device not in ("cpu", "cuda"):
        raise RunError(f"device must be 'cpu' or 'cuda', found {device!r}")
    return torch.device(device)


def prepare_run(run_dir: Path, config: BaselineConfig) -> tuple[BaselineConfig, int]:
    """Create the run folder, or check that an existing one holds the same configuration.

    Returns the config to train with and the iteration to resume from (0: a fresh start). Only
    train.max_iterations may differ from a saved run (to extend or shorten it).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    saved_path = run_dir / CONFIG_FILE
    last = checkpoint_path(run_dir, "last")
    if saved_path.is_file():
        saved = load_config(saved_path)
        mine, theirs = config.to_dict(), saved.to_dict()
        mine["train"].pop("max_iterations"), theirs["train"].pop("max_iterations")
        if mine != theirs:
            changed = _differences(theirs, mine)
            raise RunError(
                f"{run_dir} holds a run with another configuration ({'; '.join(changed[:5])}): "
                "resume it with its own config, or train into a new --out folder"
            )
    save_config(config, saved_path)
    if last.is_file():
        checkpoint = load_checkpoint(last)
        return config, int(checkpoint["iteration"])
    return config, 0


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: run has {a!r}, asked {b!r}")
    return found


def _collate(items: list[list[dict[str, Any]]]) -> tuple[torch.Tensor, torch.Tensor]:
    crops = [crop for item in items for crop in item]
    images = torch.stack([torch.as_tensor(crop[IMAGE]).float() for crop in crops])
    labels = torch.stack([torch.as_tensor(crop[LABEL]).round().long() for crop in crops])
    return images.as_subclass(torch.Tensor), labels.as_subclass(torch.Tensor)


def make_loss() -> DiceCELoss:
    """Dice + cross-entropy over the one-hot classes, Dice pooled over the crops of a batch.

    No smoothing term in the Dice numerator: with one class per level most classes are absent
    from a crop, and MONAI's default (1e-5 over 1e-5) rewards such a class only once its
    predicted mass is exactly zero, with a gradient that grows as 1/mass. Measured on the smoke
    run, that pushed every level class to zero and training collapsed to all background. With
    smooth_nr = 0 an absent class costs a constant (no gradient) and cross-entropy alone
    teaches it.
    """
    return DiceCELoss(to_onehot_y=True, softmax=True, smooth_nr=0.0, smooth_dr=1e-5, batch=True)


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
    groups = _groups(class_map)
    foreground = list(range(1, class_map.n_classes))
    stack = np.asarray(per_case, dtype=float).reshape(len(per_case), class_map.n_classes)

    def case_mean(indices) -> np.ndarray:
        values = stack[:, indices]
        present = ~np.isnan(values)
        sums = np.where(present, values, 0.0).sum(axis=1)
        counts = present.sum(axis=1)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def mean(values: np.ndarray) -> float:
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else math.nan

    return Validation(
        iteration=iteration,
        mean_dice=mean(case_mean(foreground)),
        dice_by_group={name: mean(case_mean(list(indices))) for name, indices in groups.items()},
        dice_by_class={class_map.names[k]: mean(stack[:, k]) for k in foreground},
    )


def _groups(class_map: ClassMap) -> dict[str, tuple[int, ...]]:
    from challenge.labels import Group

    return {g.value: class_map.classes_in_group(g) for g in Group if class_map.classes_in_group(g)}


def mixed_precision_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the GPU has it (Ampere and later), else float16 with loss scaling.

    Measured on an H200: the default UNETR with float16 autocast (loss inside it) reached a NaN
    loss at iteration 536 of the GPU check.
    """
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def validate(model: torch.nn.Module, dataset, config: BaselineConfig, device: torch.device, *,
             amp_dtype: torch.dtype | None, iteration: int) -> Validation:
    class_map = config.classes.class_map()
    model.eval()
    per_case = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for index in range(len(dataset)):
            item = dataset[index]
            image = torch.as_tensor(item[IMAGE]).float().as_subclass(torch.Tensor)[None].to(device)
            logits = sliding_window_inference(
                image,
                roi_size=config.model.patch_size,
                sw_batch_size=config.inference.window_batch_size,
                predictor=model,
                overlap=config.inference.overlap,
                mode="gaussian",
            )
            prediction = torch.argmax(logits, dim=1)[0].cpu().numpy()
            reference = torch.as_tensor(item[LABEL])[0].cpu().numpy()
            per_case.append(dice_per_class(prediction, reference, class_map.n_classes))
    model.train()
    return summarize_dice(per_case, class_map, iteration)


def train(
    data_dir: Path | str,
    run_dir: Path | str,
    *,
    config: BaselineConfig,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    max_seconds: float | None = None,
) -> TrainResult:
    """Train into `run_dir`, resuming from its last checkpoint when there is one.

    `max_seconds` bounds this session's training time: after the first iteration past it, the
    run validates, saves its checkpoints and stops (it can be resumed later).
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    run_dir = Path(run_dir)
    torch_device = resolve_device(device)
    config, start = prepare_run(run_dir, config)
    total = config.train.max_iterations
    class_map = config.classes.class_map()
    amp_dtype = mixed_precision_dtype(torch_device) if config.train.amp and torch_device.type == "cuda" else None

    split = split_cases(list_cases(data_dir), validation_fraction=config.data.validation_fraction, seed=config.seed)
    split.write(run_dir / SPLIT_FILE)
    log(f"data: {describe_split(split)}; {class_map.n_classes} classes")

    set_determinism(seed=config.seed)
    if torch_device.type == "cuda":
        # Seeded but not bit-reproducible on a GPU: cuDNN may pick the fastest 3D convolutions.
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    model = build_model(config.model, n_classes=class_map.n_classes).to(torch_device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate, weight_decay=config.train.weight_decay)
    # bfloat16 keeps float32's range: no loss scaling, no overflow. float16 needs the scaler.
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
    loss_function = make_loss()
    elapsed_before = 0.0
    best = {"iteration": 0, "mean_dice": -math.inf}
    if start:
        checkpoint = load_checkpoint(checkpoint_path(run_dir, "last"), map_location=torch_device)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        torch.set_rng_state(checkpoint["torch_rng"])
        elapsed_before = float(checkpoint["elapsed_s"])
        best = dict(checkpoint["best"])
        log(f"resuming from iteration {start} ({checkpoint_path(run_dir, 'last')})")
    log(f"model: UNETR, {count_parameters(model) / 1e6:.1f} M parameters, on {torch_device}"
        + (f" with mixed precision ({str(amp_dtype).removeprefix('torch.')})" if amp_dtype is not None else ""))

    metrics = MetricsLog(run_dir, list(_groups(class_map)), resume_at=start)
    last_validation: Validation | None = None
    if start >= total:
        log(f"the run already has {start} iterations (max_iterations {total}): nothing to train")
        return _finish(run_dir, config, start, start, best, None, elapsed_before, 0.0, 0.0, False, torch_device, metrics, model, log)

    training_cases = training_dataset(split.training, config)
    validation_cases = validation_dataset(split.validation, config)
    samples = IterationSamples(training_cases, seed=config.seed, first=start, count=total - start)
    loader = torch.utils.data.DataLoader(
        samples, batch_size=1, shuffle=False, num_workers=config.data.loader_workers, collate_fn=_collate,
        generator=torch.Generator().manual_seed(config.seed),  # leaves the global RNG as a resume restores it
    )

    model.train()
    started = time.perf_counter()
    loss_sum, loss_count = 0.0, 0
    bar = progress_bar(total=total, initial=start, enabled=progress)
    iteration = start
    validation_seconds = 0.0
    stopped_by_time = False
    for images, labels in loader:
        images, labels = images.to(torch_device, non_blocking=True), labels.to(torch_device, non_blocking=True)
        with torch.autocast(torch_device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)
        loss = loss_function(logits.float(), labels)  # the softmax and Dice sums in float32
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        iteration += 1
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise RunError(f"the training loss became {loss_value} at iteration {iteration}: lower train.learning_rate")
        loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
        bar.update(1)
        out_of_time = max_seconds is not None and time.perf_counter() - started > max_seconds
        is_validation = iteration % config.train.validation_interval == 0 or iteration == total or out_of_time
        if iteration % config.train.log_interval == 0 or is_validation:
            row: dict[str, Any] = {
                "iteration": iteration,
                "elapsed_s": round(elapsed_before + time.perf_counter() - started, 3),
                "train_loss": loss_sum / loss_count,
                "learning_rate": optimizer.param_groups[0]["lr"],
            }
            loss_sum, loss_count = 0.0, 0
            if is_validation:
                validation_started = time.perf_counter()
                last_validation = validate(model, validation_cases, config, torch_device, amp_dtype=amp_dtype,
                                           iteration=iteration)
                validation_seconds += time.perf_counter() - validation_started
                row["val_mean_dice"] = last_validation.mean_dice
                row.update({f"val_dice_{g}": v for g, v in last_validation.dice_by_group.items()})
                _write_json(run_dir / VALIDATION_FILE, _validation_dict(last_validation))
                score = last_validation.mean_dice if math.isfinite(last_validation.mean_dice) else -math.inf
                if score > best["mean_dice"] or best["iteration"] == 0:
                    best = {"iteration": iteration, "mean_dice": score}
                    _save_best(run_dir, config, model, last_validation)
                _save_last(run_dir, config, model, optimizer, scaler, iteration,
                           elapsed_before + time.perf_counter() - started, best)
                bar.set_postfix(loss=f"{row['train_loss']:.3f}", dice=f"{last_validation.mean_dice:.3f}",
                                best=f"{best['mean_dice']:.3f}")
            metrics.add(row)
            if is_validation:
                _plot(metrics, run_dir, log)
        if out_of_time:
            stopped_by_time = True
            log(f"stopping after iteration {iteration}: the time budget of {max_seconds:g} s is spent")
            break
    bar.close()
    del loader
    seconds = time.perf_counter() - started
    per_iteration = (seconds - validation_seconds) / (iteration - start) if iteration > start else 0.0
    return _finish(run_dir, config, start, iteration, best, last_validation, elapsed_before + seconds,
                   per_iteration, validation_seconds, stopped_by_time, torch_device, metrics, model, log)


def _plot(metrics: MetricsLog, run_dir: Path, log: Callable[[str], None]) -> None:
    try:
        plot_metrics(metrics.path, run_dir / PLOT_FILE, title=f"{run_dir.name}: UNETR")
    except ImportError as error:  # matplotlib is optional on a bare GPU machine
        log(f"no plot ({error}); the metrics are in {metrics.path}")


def _finish(run_dir, config, start, iteration, best, last_validation, seconds, per_iteration, validation_seconds,
            stopped_by_time, device, metrics, model, log) -> TrainResult:
    result = TrainResult(
        run_dir=run_dir,
        iterations=iteration,
        resumed_from=start,
        best_iteration=int(best["iteration"]),
        best_mean_dice=float(best["mean_dice"]),
        last_validation=last_validation,
        seconds=seconds,
        seconds_per_iteration=per_iteration,
        validation_seconds=validation_seconds,
        stopped_by_time=stopped_by_time,
        device=str(device),
        extra={"parameters": count_parameters(model)},
    )
    summary = {
        "schema_version": SCHEMA_VERSION,
        "iterations": iteration,
        "resumed_from": start,
        "best_iteration": result.best_iteration,
        "best_mean_dice": _json_number(result.best_mean_dice),
        "training_seconds": round(seconds, 3),
        "seconds_per_training_iteration_this_session": round(per_iteration, 4),
        "validation_seconds_this_session": round(validation_seconds, 3),
        "stopped_by_time_budget": stopped_by_time,
        "device": str(device),
        "parameters": count_parameters(model),
        "last_validation": _validation_dict(last_validation) if last_validation else None,
    }
    _write_json(run_dir / SUMMARY_FILE, summary)
    if metrics.rows:
        _plot(metrics, run_dir, log)
    return result


def _save_last(run_dir, config, model, optimizer, scaler, iteration, elapsed, best) -> None:
    _atomic_save(
        {
            "schema_version": SCHEMA_VERSION,
            "config": config.to_dict(),
            "class_values": list(config.classes.class_map().values),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "iteration": iteration,
            "elapsed_s": elapsed,
            "best": best,
        },
        checkpoint_path(run_dir, "last"),
    )


def _save_best(run_dir, config, model, validation: Validation) -> None:
    _atomic_save(
        {
            "schema_version": SCHEMA_VERSION,
            "config": config.to_dict(),
            "class_values": list(config.classes.class_map().values),
            "model": model.state_dict(),
            "iteration": validation.iteration,
            "validation": _validation_dict(validation),
        },
        checkpoint_path(run_dir, "best"),
    )


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    """Write next to the target and rename: a crash mid-write never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    partial.replace(path)


def _validation_dict(validation: Validation) -> dict[str, Any]:
    return {
        "iteration": validation.iteration,
        "mean_dice": _json_number(validation.mean_dice),
        "dice_by_group": {k: _json_number(v) for k, v in validation.dice_by_group.items()},
        "dice_by_class": {k: _json_number(v) for k, v in validation.dice_by_class.items()},
    }


def _json_number(value: float) -> float | None:
    """NaN and infinities are written as null (no structure to score)."""
    return float(value) if math.isfinite(value) else None


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
