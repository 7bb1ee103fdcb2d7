"""Training: UNETR with DiceCE and AdamW, sliding-window validation, best and last checkpoints.

`train` runs small steps on two state objects: `_TrainingRun` (the run folder, the network and
how far training has come; what the checkpoints and summary.json are made of) and `_Session`
(this call's clock, time budget, progress bar and running loss).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from monai.data import CacheDataset
from monai.losses import DiceCELoss
from monai.utils import set_determinism

from baselines.config import BaselineConfig, load_config, save_config
from baselines.data import (
    IMAGE,
    LABEL,
    IterationSamples,
    Split,
    describe_split,
    list_cases,
    split_cases,
    training_dataset,
    validation_dataset,
)
from baselines.errors import RunError
from baselines.metrics_log import PLOT_FILE, MetricsLog, plot_metrics
from baselines.model import build_model, count_parameters, load_checkpoint
from baselines.progress import progress_bar
from baselines.validation import (
    Validation,
    class_groups,
    dice_per_class,
    json_number,
    summarize_dice,
    validate,
    validation_dict,
)

__all__ = [
    "BEST_CHECKPOINT",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "LAST_CHECKPOINT",
    "SCHEMA_VERSION",
    "SPLIT_FILE",
    "SUMMARY_FILE",
    "VALIDATION_FILE",
    "TrainResult",
    "Validation",
    "checkpoint_path",
    "dice_per_class",
    "make_loss",
    "mixed_precision_dtype",
    "prepare_run",
    "resolve_device",
    "summarize_dice",
    "train",
    "validate",
]

CONFIG_FILE = "config.toml"
SPLIT_FILE = "split.json"
SUMMARY_FILE = "summary.json"
VALIDATION_FILE = "validation.json"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
SCHEMA_VERSION = 1


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


def mixed_precision_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the GPU has it (Ampere and later), else float16 with loss scaling.

    Measured on an H200: the default UNETR with float16 autocast (loss inside it) reached a NaN
    loss at iteration 536 of the GPU check.
    """
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


# --- the state of a run ------------------------------------------------------------------------

@dataclass
class _Network:
    """The model and what trains it, on one device."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss_function: DiceCELoss
    device: torch.device
    amp_dtype: torch.dtype | None

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One optimizer step on a batch of crops; returns its loss."""
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits = self.model(images)
        loss = self.loss_function(logits.float(), labels)  # the softmax and Dice sums in float32
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())


@dataclass
class _TrainingRun:
    """One call of `train`: the run folder, the network, and how far training has come."""

    run_dir: Path
    config: BaselineConfig
    network: _Network
    metrics: MetricsLog
    log: Callable[[str], None]
    start: int  # the iteration this call resumed from (0: a fresh run)
    elapsed_before: float  # training seconds of the calls before this one
    best: dict[str, Any]  # {"iteration", "mean_dice"}, saved as such in the last checkpoint
    iteration: int = 0
    last_validation: Validation | None = None
    validation_seconds: float = 0.0
    stopped_by_time: bool = False


@dataclass
class _RunningLoss:
    """The training losses since the last row of the metrics log."""

    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.total, self.count = self.total + value, self.count + 1

    def take_mean(self) -> float:
        mean = self.total / self.count
        self.total, self.count = 0.0, 0
        return mean


@dataclass
class _Session:
    """This call's stretch of training: its clock and time budget, progress bar, running loss."""

    started: float  # time.perf_counter() at the first iteration
    max_seconds: float | None
    bar: Any  # tqdm, or baselines.progress's plain lines
    validation_cases: CacheDataset
    loss: _RunningLoss = field(default_factory=_RunningLoss)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        return self.max_seconds is not None and time.perf_counter() - self.started > self.max_seconds


# --- training ----------------------------------------------------------------------------------

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
    split = _write_split(data_dir, run_dir, config, log)
    run = _open_run(run_dir, config, torch_device, start, log)
    total = config.train.max_iterations
    if start >= total:
        log(f"the run already has {start} iterations (max_iterations {total}): nothing to train")
        return _finish(run, session_seconds=0.0)
    session_seconds = _train_session(run, split, progress=progress, max_seconds=max_seconds)
    return _finish(run, session_seconds=session_seconds)


def _write_split(data_dir: Path | str, run_dir: Path, config: BaselineConfig, log: Callable[[str], None]) -> Split:
    split = split_cases(list_cases(data_dir), validation_fraction=config.data.validation_fraction, seed=config.seed)
    split.write(run_dir / SPLIT_FILE)
    log(f"data: {describe_split(split)}; {config.classes.class_map().n_classes} classes")
    return split


def _open_run(run_dir: Path, config: BaselineConfig, device: torch.device, start: int,
              log: Callable[[str], None]) -> _TrainingRun:
    """The network built (and restored from the last checkpoint when resuming) and the metrics log."""
    set_determinism(seed=config.seed)
    if device.type == "cuda":
        # Seeded but not bit-reproducible on a GPU: cuDNN may pick the fastest 3D convolutions.
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
    network = _build_network(config, device)
    elapsed_before = 0.0
    best: dict[str, Any] = {"iteration": 0, "mean_dice": -math.inf}
    if start:
        last = checkpoint_path(run_dir, "last")
        elapsed_before, best = _restore(network, last)
        log(f"resuming from iteration {start} ({last})")
    amp_dtype = network.amp_dtype
    log(f"model: UNETR, {count_parameters(network.model) / 1e6:.1f} M parameters, on {device}"
        + (f" with mixed precision ({str(amp_dtype).removeprefix('torch.')})" if amp_dtype is not None else ""))
    metrics = MetricsLog(run_dir, list(class_groups(config.classes.class_map())), resume_at=start)
    return _TrainingRun(run_dir=run_dir, config=config, network=network, metrics=metrics, log=log, start=start,
                        elapsed_before=elapsed_before, best=best, iteration=start)


def _build_network(config: BaselineConfig, device: torch.device) -> _Network:
    amp_dtype = mixed_precision_dtype(device) if config.train.amp and device.type == "cuda" else None
    model = build_model(config.model, n_classes=config.classes.class_map().n_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate,
                                  weight_decay=config.train.weight_decay)
    # bfloat16 keeps float32's range: no loss scaling, no overflow. float16 needs the scaler.
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
    return _Network(model=model, optimizer=optimizer, scaler=scaler, loss_function=make_loss(), device=device,
                    amp_dtype=amp_dtype)


def _restore(network: _Network, last: Path) -> tuple[float, dict[str, Any]]:
    """Load the last checkpoint into the network and the global RNG; returns (elapsed_s, best)."""
    checkpoint = load_checkpoint(last, map_location=network.device)
    network.model.load_state_dict(checkpoint["model"])
    network.optimizer.load_state_dict(checkpoint["optimizer"])
    network.scaler.load_state_dict(checkpoint["scaler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    return float(checkpoint["elapsed_s"]), dict(checkpoint["best"])


def _train_session(run: _TrainingRun, split: Split, *, progress: bool, max_seconds: float | None) -> float:
    """Train from run.start to max_iterations or until the time budget is spent; returns the seconds."""
    config, total = run.config, run.config.train.max_iterations
    training_cases = training_dataset(split.training, config)
    validation_cases = validation_dataset(split.validation, config)
    samples = IterationSamples(training_cases, seed=config.seed, first=run.start, count=total - run.start)
    loader = torch.utils.data.DataLoader(
        samples, batch_size=1, shuffle=False, num_workers=config.data.loader_workers, collate_fn=_collate,
        generator=torch.Generator().manual_seed(config.seed),  # leaves the global RNG as a resume restores it
    )
    run.network.model.train()
    session = _Session(started=time.perf_counter(), max_seconds=max_seconds,
                       bar=progress_bar(total=total, initial=run.start, enabled=progress),
                       validation_cases=validation_cases)
    _iterate(run, session, loader)
    session.bar.close()
    del loader
    return session.seconds()


def _iterate(run: _TrainingRun, session: _Session, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    train_config = run.config.train
    for images, labels in batches:
        loss_value = run.network.step(images, labels)
        run.iteration += 1
        if not math.isfinite(loss_value):
            raise RunError(f"the training loss became {loss_value} at iteration {run.iteration}: "
                           "lower train.learning_rate")
        session.loss.add(loss_value)
        session.bar.update(1)
        out_of_time = session.out_of_time()
        is_validation = (run.iteration % train_config.validation_interval == 0
                         or run.iteration == train_config.max_iterations or out_of_time)
        if run.iteration % train_config.log_interval == 0 or is_validation:
            _log_iteration(run, session, validating=is_validation)
        if out_of_time:
            run.stopped_by_time = True
            run.log(f"stopping after iteration {run.iteration}: the time budget of {session.max_seconds:g} s is spent")
            break


def _log_iteration(run: _TrainingRun, session: _Session, *, validating: bool) -> None:
    """A row of the metrics log; with `validating`, also validation, checkpoints and the plot."""
    row: dict[str, Any] = {
        "iteration": run.iteration,
        "elapsed_s": round(_elapsed(run, session), 3),
        "train_loss": session.loss.take_mean(),
        "learning_rate": run.network.optimizer.param_groups[0]["lr"],
    }
    if validating:
        _validate_and_save(run, session, row)
    run.metrics.add(row)
    if validating:
        _plot(run.metrics, run.run_dir, run.log)


def _elapsed(run: _TrainingRun, session: _Session) -> float:
    """Training seconds of the whole run so far, earlier calls included."""
    return run.elapsed_before + time.perf_counter() - session.started


def _validate_and_save(run: _TrainingRun, session: _Session, row: dict[str, Any]) -> None:
    """Validate, add the Dice to `row`, write validation.json and the best and last checkpoints."""
    network = run.network
    validation_started = time.perf_counter()
    validation = validate(network.model, session.validation_cases, run.config, network.device,
                          amp_dtype=network.amp_dtype, iteration=run.iteration)
    run.validation_seconds += time.perf_counter() - validation_started
    run.last_validation = validation
    row["val_mean_dice"] = validation.mean_dice
    row.update({f"val_dice_{g}": v for g, v in validation.dice_by_group.items()})
    _write_json(run.run_dir / VALIDATION_FILE, validation_dict(validation))
    score = validation.mean_dice if math.isfinite(validation.mean_dice) else -math.inf
    if score > run.best["mean_dice"] or run.best["iteration"] == 0:
        run.best = {"iteration": run.iteration, "mean_dice": score}
        _save_best(run, validation)
    _save_last(run, elapsed=_elapsed(run, session))
    session.bar.set_postfix(loss=f"{row['train_loss']:.3f}", dice=f"{validation.mean_dice:.3f}",
                            best=f"{run.best['mean_dice']:.3f}")


def _plot(metrics: MetricsLog, run_dir: Path, log: Callable[[str], None]) -> None:
    try:
        plot_metrics(metrics.path, run_dir / PLOT_FILE, title=f"{run_dir.name}: UNETR")
    except ImportError as error:  # matplotlib is optional on a bare GPU machine
        log(f"no plot ({error}); the metrics are in {metrics.path}")


# --- what a run leaves in its folder -------------------------------------------------------------

def _finish(run: _TrainingRun, *, session_seconds: float) -> TrainResult:
    """The result of this call, also written as summary.json (with the plot of the metrics)."""
    trained = run.iteration - run.start
    per_iteration = (session_seconds - run.validation_seconds) / trained if trained > 0 else 0.0
    result = TrainResult(
        run_dir=run.run_dir,
        iterations=run.iteration,
        resumed_from=run.start,
        best_iteration=int(run.best["iteration"]),
        best_mean_dice=float(run.best["mean_dice"]),
        last_validation=run.last_validation,
        seconds=run.elapsed_before + session_seconds,
        seconds_per_iteration=per_iteration,
        validation_seconds=run.validation_seconds,
        stopped_by_time=run.stopped_by_time,
        device=str(run.network.device),
        extra={"parameters": count_parameters(run.network.model)},
    )
    _write_json(run.run_dir / SUMMARY_FILE, _summary(result))
    if run.metrics.rows:
        _plot(run.metrics, run.run_dir, run.log)
    return result


def _summary(result: TrainResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "iterations": result.iterations,
        "resumed_from": result.resumed_from,
        "best_iteration": result.best_iteration,
        "best_mean_dice": json_number(result.best_mean_dice),
        "training_seconds": round(result.seconds, 3),
        "seconds_per_training_iteration_this_session": round(result.seconds_per_iteration, 4),
        "validation_seconds_this_session": round(result.validation_seconds, 3),
        "stopped_by_time_budget": result.stopped_by_time,
        "device": result.device,
        "parameters": result.extra["parameters"],
        "last_validation": validation_dict(result.last_validation) if result.last_validation else None,
    }


def _checkpoint_header(config: BaselineConfig) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "config": config.to_dict(),
        "class_values": list(config.classes.class_map().values),
    }


def _save_last(run: _TrainingRun, *, elapsed: float) -> None:
    """What a resume needs: the network, optimizer, loss scaler, global RNG and progress."""
    network = run.network
    payload = {
        **_checkpoint_header(run.config),
        "model": network.model.state_dict(),
        "optimizer": network.optimizer.state_dict(),
        "scaler": network.scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "iteration": run.iteration,
        "elapsed_s": elapsed,
        "best": run.best,
    }
    _atomic_save(payload, checkpoint_path(run.run_dir, "last"))


def _save_best(run: _TrainingRun, validation: Validation) -> None:
    payload = {
        **_checkpoint_header(run.config),
        "model": run.network.model.state_dict(),
        "iteration": validation.iteration,
        "validation": validation_dict(validation),
    }
    _atomic_save(payload, checkpoint_path(run.run_dir, "best"))


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    """Write next to the target and rename: a crash mid-write never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    partial.replace(path)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
