"""`spider baseline train | predict | export | container`: parse arguments, call the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train the MONAI UNETR baseline, predict with it, build its reference container",
        description="The SPIDER reference algorithm: MONAI UNETR trained on a release folder.",
    )
    commands = parser.add_subparsers(dest="baseline_command", metavar="SUBCOMMAND", required=True)
    _add_train(commands)
    _add_predict(commands)
    _add_export(commands)
    _add_container(commands)


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train (or resume) a run on a SPIDER release folder",
        description="Train UNETR on DIR (images/, masks/, overview.csv; its `subset` column gives the "
        "validation series). Writes config.toml, metrics.csv, metrics.png, summary.json and "
        "checkpoints/{best,last}.pt into RUN; run it again on the same RUN to resume.",
    )
    train.add_argument("--data", type=Path, required=True, metavar="DIR", help="release folder")
    train.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder (created, or resumed)")
    train.add_argument("--config", type=Path, metavar="FILE",
                       help="TOML file with the keys to change from the defaults")
    train.add_argument("--smoke", action="store_true",
                       help="start from the smoke configuration (minutes on a CPU; proves learning, not for results)")
    train.add_argument("--max-iterations", type=int, metavar="N", help="override train.max_iterations")
    train.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="segment every .mha of a folder with a trained run",
        description="Segment each INPUT/*.mha into OUTPUT/<same name>.mha (SPIDER values on the input grid), "
        "with the same inference code as the container.",
    )
    predict.add_argument("--run", type=Path, required=True, metavar="RUN")
    predict.add_argument("--input", type=Path, required=True, metavar="DIR")
    predict.add_argument("--output", type=Path, required=True, metavar="DIR")
    predict.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                         help="run the PyTorch checkpoint (default) or the ONNX export the container runs")
    predict.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="for --backend torch")
    predict.set_defaults(handler=_predict)


def _add_export(commands) -> None:
    export = commands.add_parser("export", help="export the best checkpoint to ONNX (RUN/export/)")
    export.add_argument("--run", type=Path, required=True, metavar="RUN")
    export.add_argument("--force", action="store_true", help="export again even if RUN/export is current")
    export.set_defaults(handler=_export)


def _add_container(commands) -> None:
    container = commands.add_parser(
        "container",
        help="build the reference algorithm container of a run (offline)",
        description="Export the run, then build an image that implements the algorithm contract. "
        "Wheels are downloaded on this host with pip (or taken from --wheels); the build has no network.",
    )
    container.add_argument("--run", type=Path, required=True, metavar="RUN")
    container.add_argument("--tag", required=True, help="image tag, e.g. spider-baseline:latest")
    container.add_argument("--base-image", default=None, help="base image (default python:3.11-slim)")
    container.add_argument("--wheels", type=Path, metavar="DIR",
                           help="folder with (or to cache) the wheels of numpy, SimpleITK and onnxruntime")
    container.set_defaults(handler=_container)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _train(arguments: argparse.Namespace) -> int:
    from baselines.config import load_config, smoke_config_path
    from baselines.train import train

    base = smoke_config_path() if arguments.smoke else None
    config = load_config(arguments.config, base=base)
    if arguments.max_iterations is not None:
        config = config.with_max_iterations(arguments.max_iterations)
    result = train(arguments.data, arguments.out, config=config, device=arguments.device,
                   progress=not arguments.no_progress, log=_log)
    validation = result.last_validation
    groups = ", ".join(f"{k} {v:.3f}" for k, v in validation.dice_by_group.items()) if validation else "none"
    print(
        f"trained {result.iterations} iterations ({result.seconds:.0f} s, "
        f"{result.seconds_per_iteration:.2f} s/iteration on {result.device}); best mean foreground Dice "
        f"{result.best_mean_dice:.3f} at iteration {result.best_iteration}; last validation: {groups}\n"
        f"run: {result.run_dir}"
    )
    return 0


def _predict(arguments: argparse.Namespace) -> int:
    from baselines.infer import predict_folder

    model, spec = _window_model(arguments.run, arguments.backend, arguments.device)
    written = predict_folder(arguments.input, arguments.output, model, spec, progress=_log)
    print(f"wrote {len(written)} segmentation(s) to {arguments.output}")
    return 0


def _window_model(run: Path, backend: str, device: str):
    if backend == "onnx":
        from baselines.export import export_run
        from baselines.infer import load_exported

        return load_exported(export_run(run).folder)
    from baselines.export import spec_of_config
    from baselines.model import TorchWindowModel, model_from_checkpoint
    from baselines.train import checkpoint_path, resolve_device

    torch_device = resolve_device(device)
    model, config = model_from_checkpoint(checkpoint_path(run, "best"), device=torch_device)
    return TorchWindowModel(model, device=torch_device), spec_of_config(config)


def _export(arguments: argparse.Namespace) -> int:
    from baselines.export import export_run

    exported = export_run(arguments.run, force=arguments.force)
    print(f"exported {exported.model_path} (sha256 {exported.spec.model_sha256}; ONNX vs PyTorch logits "
          f"differ by at most {exported.max_logit_difference:.2g})")
    return 0


def _container(arguments: argparse.Namespace) -> int:
    from baselines.container.build import DEFAULT_BASE_IMAGE, build_container

    image = build_container(
        arguments.run, tag=arguments.tag, base_image=arguments.base_image or DEFAULT_BASE_IMAGE,
        wheels_dir=arguments.wheels, log=_log,
    )
    print(f"built {image.tag} ({image.image_id[:19]}): {image.size_bytes / 1e6:.0f} MB, model sha256 "
          f"{image.model_sha256}, in {image.build_seconds:.0f} s")
    return 0
