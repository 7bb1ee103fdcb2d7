"""`spider gc`: this harness's scoring as grand-challenge.org's evaluation method (build the image, run it locally)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation.commands.score import PROFILE_CHOICES

CASE_VALUE_CHOICES = ("phase", "include", "withhold")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gc",
        help="grand-challenge.org: build the evaluation container, and run it locally on a `spider try` output",
        description="Our scoring as the platform's evaluation method (docs/grand-challenge.md).",
    )
    commands = parser.add_subparsers(dest="gc_command", metavar="COMMAND", required=True)

    build = commands.add_parser(
        "evaluation-image",
        help="build (offline) the evaluation container to upload to a grand-challenge phase",
        description=(
            "Build the image TAG offline from the local python:3.11-slim: it reads the platform's "
            "/input/predictions.json and the jobs' outputs, scores them with `spider score`'s code and rules "
            "against the phase's ground truth (/opt/ml/input/data/ground_truth/masks/<case>.mha) or the one "
            "baked in with --ground-truth, and writes /output/metrics.json without NaN or Infinity (with "
            "spider2024 also the official SPIDER columns, e.g. DiceScoreVertebrae.mean). Upload it with "
            "`docker save TAG | gzip`."
        ),
    )
    build.add_argument("--phase", required=True, metavar="NAME",
                       help="phase of phases.toml: its scoring time limit per case and whether its public site "
                            "may show per-case values")
    build.add_argument("--tag", required=True, metavar="TAG", help="tag of the image to build")
    build.add_argument("--profile", choices=PROFILE_CHOICES, default="full",
                       help="metric set: 'full' (default, as `spider score`) or 'spider2024' (the official columns)")
    build.add_argument("--ground-truth", type=Path, metavar="DIR",
                       help="bake this SPIDER-layout folder's masks/ into the image (then never share the image); "
                            "without it the phase's ground-truth tarball is used")
    build.add_argument("--case-values", choices=CASE_VALUE_CHOICES, default="phase",
                       help="per-case values in metrics.json: as the phase's public site allows (default; "
                            "none on hidden test data), or always included, or always withheld")
    build.add_argument("--base-image", default="python:3.11-slim", metavar="IMAGE",
                       help="local base image (default python:3.11-slim, built by `spider images base`)")
    build.add_argument("--wheels", type=Path, metavar="DIR",
                       help="folder of wheels for the image (default: a per-user cache, filled with pip download)")
    build.set_defaults(handler=_evaluation_image)

    local = commands.add_parser(
        "evaluate-locally",
        help="run an evaluation image on a `spider try` output as the platform does, and print the leaderboard",
        description=(
            "Turn TRY_OUT (OUT of `spider try`) into the platform's evaluation input (predictions.json, uuid "
            "job pks, outputs renamed to /input/<pk>/output/...), run IMAGE with the platform's flags (no "
            "network, read-only input, 8 GB, 2 CPUs, non-root, 3600 s) and print the leaderboard columns. "
            "Exit code 0 when the evaluation succeeded; otherwise the error names what the platform would show."
        ),
    )
    local.add_argument("--image", required=True, metavar="TAG", help="an image built by `spider gc evaluation-image`")
    local.add_argument("--predictions-from", required=True, type=Path, metavar="TRY_OUT",
                       help="the OUT folder of `spider try` (jobs.json and predictions/)")
    local.add_argument("--ground-truth", type=Path, metavar="DIR",
                       help="the phase's ground truth (a folder with masks/<case>.mha); needed unless baked in")
    local.add_argument("--out", type=Path, metavar="DIR",
                       help="new or empty folder to keep input/, output/metrics.json and log.txt (default: none kept)")
    local.add_argument("--time-limit", type=_positive_int, default=3600, metavar="SECONDS",
                       help="the evaluation's wall clock (default 3600, the platform's)")
    local.add_argument("--memory", default="8g", metavar="SIZE", help="memory limit (default 8g, the platform's)")
    local.set_defaults(handler=_evaluate_locally)


def _positive_int(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return int(text)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _evaluation_image(arguments: argparse.Namespace) -> int:
    from challenge.phases import get_phase
    from evaluation.platform.image import build_evaluation_image

    phase = get_phase(arguments.phase)
    case_values = {"phase": None, "include": True, "withhold": False}[arguments.case_values]
    result = build_evaluation_image(
        tag=arguments.tag, phase=phase, profile=arguments.profile, ground_truth=arguments.ground_truth,
        case_values=case_values, base_image=arguments.base_image, wheels_dir=arguments.wheels, log=_progress,
    )
    config = result.config
    ground_truth = (f"{config.ground_truth_cases} ground-truth cases baked in (do not share this image)"
                    if config.ground_truth_cases else "ground truth from the phase (/opt/ml/input/data/ground_truth)")
    print(f"built {result.tag} ({result.image_id[:19]}): {result.size_bytes / 1e6:.0f} MB in "
          f"{result.build_seconds:.0f} s; profile {config.profile}, phase {config.phase}, scoring time limit "
          f"{config.scoring_time_limit_s} s per case, per-case values "
          f"{'included' if config.case_values else 'withheld'}, {ground_truth}")
    print(f"upload: docker save {result.tag} | gzip > evaluation.tar.gz")
    return 0


def _evaluate_locally(arguments: argparse.Namespace) -> int:
    from challenge.phases import parse_size
    from evaluation.platform.local_run import evaluate_locally, format_result
    from evaluation.runner.docker_runner import connect

    memory = parse_size(arguments.memory, what="--memory")
    result = evaluate_locally(
        connect(), image=arguments.image, try_out=arguments.predictions_from, ground_truth=arguments.ground_truth,
        out_dir=arguments.out, time_limit_s=arguments.time_limit, memory_bytes=memory, progress=_progress,
    )
    print(format_result(result))
    return 0
