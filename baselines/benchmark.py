"""The GPU check of the baseline (run by benchmarks/gpu_baseline.sh): synthetic cases, training on
CUDA with mixed precision, then iterations per second, peak GPU memory and validation Dice.

`--tiny` is the CPU setting the test suite runs, so that the script is known to work before a
GPU is at hand. Needs torch, MONAI, einops, numpy, scipy and SimpleITK; tqdm and matplotlib are
used when present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: the script first checks that they are installed
    from baselines.config import BaselineConfig
    from baselines.train import TrainResult

REQUIRED_MODULES = ("numpy", "scipy", "SimpleITK", "torch", "monai", "einops")


def _missing_modules() -> list[str]:
    import importlib.util

    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def _ensure_tqdm() -> None:
    """challenge.synth shows progress with tqdm; a bare GPU machine may not have it."""
    try:
        import tqdm  # noqa: F401
    except ImportError:
        shim = types.ModuleType("tqdm")
        shim.tqdm = lambda iterable=None, **_kwargs: iterable  # type: ignore[attr-defined]
        sys.modules["tqdm"] = shim


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long CPU setting for the test suite")
    parser.add_argument("--cases", type=int, default=None, help="synthetic series (default 16; tiny 4)")
    parser.add_argument("--iterations", type=int, default=None, help="most iterations (default 3000; tiny 4)")
    parser.add_argument("--time-budget-s", type=float, default=None,
                        help="training stops after this many seconds (default 210; tiny none)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    missing = _missing_modules()
    if missing:
        print(f"gpu_baseline: missing Python modules: {', '.join(missing)}", file=sys.stderr)
        return 3
    _ensure_tqdm()
    import torch

    if arguments.device == "cuda" and not torch.cuda.is_available():
        print("gpu_baseline: PyTorch sees no CUDA device (for a CPU check use --device cpu --tiny)", file=sys.stderr)
        return 3
    plan = _Plan.of(arguments)
    plan.log_dir.mkdir(parents=True, exist_ok=True)
    _say(f"python {platform.python_version()}, torch {torch.__version__}, device {plan.device}"
         + (f" ({torch.cuda.get_device_name(0)})" if plan.device == "cuda" else "")
         + f", {os.cpu_count()} CPUs")

    began = time.perf_counter()
    data_dir = _write_data(plan)
    config = _benchmark_config(plan)
    result, peak_bytes = _train(plan, data_dir, config)
    report = _report(plan, config, result, peak_bytes)
    report["total_seconds"] = round(time.perf_counter() - began, 1)
    (plan.log_dir / "benchmark.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _say_results(plan, config, result, report)
    return 0


@dataclass(frozen=True)
class _Plan:
    """What this benchmark does: the command line with the defaults of the full or --tiny setting."""

    log_dir: Path
    device: str
    tiny: bool
    cases: int
    iterations: int
    time_budget_s: float | None
    seed: int

    @classmethod
    def of(cls, arguments: argparse.Namespace) -> _Plan:
        tiny = arguments.tiny
        budget = arguments.time_budget_s if arguments.time_budget_s is not None else (None if tiny else 210.0)
        return cls(
            log_dir=arguments.log_dir,
            device=arguments.device,
            tiny=tiny,
            cases=arguments.cases or (4 if tiny else 16),
            iterations=arguments.iterations or (4 if tiny else 3000),
            time_budget_s=budget,
            seed=arguments.seed,
        )


def _say(message: str) -> None:
    print(message, flush=True)


def _write_data(plan: _Plan) -> Path:
    from challenge.synth import write_release

    began = time.perf_counter()
    data_dir = plan.log_dir / "data"
    write_release(data_dir, cases=plan.cases, seed=plan.seed, voxel_scale=3.0 if plan.tiny else 1.0)
    _say(f"synthetic data: {plan.cases} series in {time.perf_counter() - began:.0f} s ({data_dir})")
    return data_dir


def _benchmark_config(plan: _Plan) -> BaselineConfig:
    from baselines.config import config_from_mapping, load_config, smoke_config_path

    if plan.tiny:
        document = load_config(base=smoke_config_path()).to_dict()
        document["data"].update(spacing_mm=[4.0, 4.0, 4.0])
        document["train"].update(validation_interval=4, log_interval=1)
        document["model"].update(patch_size=[16, 32, 32], hidden_size=48, mlp_dim=96, num_heads=4, feature_size=4)
    else:
        # The default UNETR at the default spacing and crop; the smoke learning rate, so that a
        # few minutes show learning (the default 1e-4 needs thousands of iterations).
        document = load_config().to_dict()
        workers = max(1, min(8, (os.cpu_count() or 2) - 2))
        document["data"].update(cache_workers=workers, loader_workers=workers)
        document["train"].update(learning_rate=1e-3, validation_interval=500, log_interval=50)
        document["inference"].update(window_batch_size=4)  # validation windows per pass on the GPU
    document["seed"] = plan.seed
    document["train"]["max_iterations"] = plan.iterations
    return config_from_mapping(document, source="gpu_baseline")


def _train(plan: _Plan, data_dir: Path, config: BaselineConfig) -> tuple[TrainResult, int | None]:
    """The training result and the peak GPU memory in bytes (None on the CPU)."""
    import torch

    from baselines.train import train

    if plan.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = train(data_dir, plan.log_dir / "run", config=config, device=plan.device, progress=False,
                   log=_say, max_seconds=plan.time_budget_s)
    peak_bytes = torch.cuda.max_memory_allocated() if plan.device == "cuda" else None
    return result, peak_bytes


def _iterations_per_second(result: TrainResult) -> float:
    return 1.0 / result.seconds_per_iteration if result.seconds_per_iteration > 0 else float("nan")


def _report(plan: _Plan, config: BaselineConfig, result: TrainResult, peak_bytes: int | None) -> dict[str, Any]:
    """benchmark.json, but for total_seconds."""
    import torch

    validation = result.last_validation
    return {
        "device": plan.device,
        "device_name": torch.cuda.get_device_name(0) if plan.device == "cuda" else platform.processor(),
        "mixed_precision": bool(config.train.amp and plan.device == "cuda"),
        "cases": plan.cases,
        "iterations": result.iterations - result.resumed_from,
        "stopped_by_time_budget": result.stopped_by_time,
        "iterations_per_second": round(_iterations_per_second(result), 3),
        "training_seconds": round(result.seconds, 1),
        "validation_seconds": round(result.validation_seconds, 1),
        "peak_gpu_memory_bytes": peak_bytes,
        "crop": list(config.model.patch_size),
        "crops_per_iteration": config.train.crops_per_iteration,
        "validation_mean_dice": _number(validation.mean_dice) if validation else None,
        "validation_dice_by_group": {k: _number(v) for k, v in validation.dice_by_group.items()} if validation else {},
        "best_mean_dice": _number(result.best_mean_dice),
        "best_iteration": result.best_iteration,
    }


def _say_results(plan: _Plan, config: BaselineConfig, result: TrainResult, report: dict[str, Any]) -> None:
    trained, peak_bytes = report["iterations"], report["peak_gpu_memory_bytes"]
    _say(f"iterations: {trained} ({'time budget reached' if result.stopped_by_time else 'all'}), "
         f"{_iterations_per_second(result):.2f} iterations/s "
         f"(batch {config.train.crops_per_iteration} x {tuple(config.model.patch_size)})")
    _say("peak GPU memory: " + (f"{peak_bytes / 2**30:.2f} GiB" if peak_bytes is not None else "n/a (CPU)"))
    validation = result.last_validation
    if validation:
        groups = ", ".join(f"{k} {_text(v)}" for k, v in validation.dice_by_group.items())
        _say(f"validation Dice at iteration {validation.iteration}: mean {_text(validation.mean_dice)}; {groups}")
    _say(f"total {report['total_seconds']:.0f} s; report {plan.log_dir / 'benchmark.json'}; "
         f"curve {plan.log_dir / 'run' / 'metrics.png'}")


def _number(value: float) -> float | None:
    return round(value, 4) if value == value and abs(value) != float("inf") else None


def _text(value: float) -> str:
    return f"{value:.3f}" if value == value else "n/a"


if __name__ == "__main__":
    sys.exit(main())
