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
from pathlib import Path

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

    from baselines.config import config_from_mapping, load_config, smoke_config_path
    from baselines.train import train
    from challenge.synth import write_release

    tiny = arguments.tiny
    if arguments.device == "cuda" and not torch.cuda.is_available():
        print("gpu_baseline: PyTorch sees no CUDA device (for a CPU check use --device cpu --tiny)", file=sys.stderr)
        return 3
    log_dir = arguments.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    cases = arguments.cases or (4 if tiny else 16)
    iterations = arguments.iterations or (4 if tiny else 3000)
    budget = arguments.time_budget_s if arguments.time_budget_s is not None else (None if tiny else 210.0)

    def say(message: str) -> None:
        print(message, flush=True)

    say(f"python {platform.python_version()}, torch {torch.__version__}, device {arguments.device}"
        + (f" ({torch.cuda.get_device_name(0)})" if arguments.device == "cuda" else "")
        + f", {os.cpu_count()} CPUs")

    began = time.perf_counter()
    data_dir = log_dir / "data"
    write_release(data_dir, cases=cases, seed=arguments.seed, voxel_scale=3.0 if tiny else 1.0)
    say(f"synthetic data: {cases} series in {time.perf_counter() - began:.0f} s ({data_dir})")

    if tiny:
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
    document["seed"] = arguments.seed
    document["train"]["max_iterations"] = iterations
    config = config_from_mapping(document, source="gpu_baseline")

    if arguments.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = train(data_dir, log_dir / "run", config=config, device=arguments.device, progress=False,
                   log=say, max_seconds=budget)
    peak_bytes = torch.cuda.max_memory_allocated() if arguments.device == "cuda" else None

    trained = result.iterations - result.resumed_from
    per_second = 1.0 / result.seconds_per_iteration if result.seconds_per_iteration > 0 else float("nan")
    validation = result.last_validation
    report = {
        "device": arguments.device,
        "device_name": torch.cuda.get_device_name(0) if arguments.device == "cuda" else platform.processor(),
        "mixed_precision": bool(config.train.amp and arguments.device == "cuda"),
        "cases": cases,
        "iterations": trained,
        "stopped_by_time_budget": result.stopped_by_time,
        "iterations_per_second": round(per_second, 3),
        "training_seconds": round(result.seconds, 1),
        "validation_seconds": round(result.validation_seconds, 1),
        "peak_gpu_memory_bytes": peak_bytes,
        "crop": list(config.model.patch_size),
        "crops_per_iteration": config.train.crops_per_iteration,
        "validation_mean_dice": _number(validation.mean_dice) if validation else None,
        "validation_dice_by_group": {k: _number(v) for k, v in validation.dice_by_group.items()} if validation else {},
        "best_mean_dice": _number(result.best_mean_dice),
        "best_iteration": result.best_iteration,
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    (log_dir / "benchmark.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    say(f"iterations: {trained} ({'time budget reached' if result.stopped_by_time else 'all'}), "
        f"{per_second:.2f} iterations/s (batch {config.train.crops_per_iteration} x {tuple(config.model.patch_size)})")
    say("peak GPU memory: " + (f"{peak_bytes / 2**30:.2f} GiB" if peak_bytes is not None else "n/a (CPU)"))
    if validation:
        groups = ", ".join(f"{k} {_text(v)}" for k, v in validation.dice_by_group.items())
        say(f"validation Dice at iteration {validation.iteration}: mean {_text(validation.mean_dice)}; {groups}")
    say(f"total {report['total_seconds']:.0f} s; report {log_dir / 'benchmark.json'}; curve {log_dir / 'run' / 'metrics.png'}")
    return 0


def _number(value: float) -> float | None:
    return round(value, 4) if value == value and abs(value) != float("inf") else None


def _text(value: float) -> str:
    return f"{value:.3f}" if value == value else "n/a"


if __name__ == "__main__":
    sys.exit(main())
