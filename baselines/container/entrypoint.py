"""The reference container's program: one case in, one segmentation out, per challenge.contract.

Runs with numpy, SimpleITK and onnxruntime only. Exit codes: 0 done, 2 the input does not follow
the contract (the message says what was expected and what was found), 1 any other failure.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import SimpleITK as sitk

from baselines.errors import InputContractError
from baselines.infer import available_cpus, load_exported, predict_image
from challenge import contract
from challenge.errors import SpiderError
from challenge.images import read_image

MODEL_DIR_ENV = "SPIDER_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("/opt/spider/model")


def find_input(input_root: Path) -> Path:
    """The one input image of the job, after checking inputs.json when it is there."""
    folder = input_root / contract.INPUT_SOCKET.relative_path
    if not folder.is_dir():
        raise InputContractError(f"no input folder {folder}.\n{contract.describe()}")
    entries = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    images = [name for name in entries if name.endswith(contract.IMAGE_SUFFIX)]
    if len(images) != 1:
        found = ", ".join(entries) if entries else "nothing"
        raise InputContractError(
            f"expected exactly one {contract.IMAGE_SUFFIX} image in {folder}, found {found}.\n{contract.describe()}"
        )
    _check_inputs_json(input_root / contract.INPUTS_JSON_IN_INPUT, images[0])
    return folder / images[0]


def _check_inputs_json(path: Path, image_name: str) -> None:
    if not path.exists():
        return  # optional locally; the image file is what the job works on
    try:
        sockets = json.loads(path.read_text(encoding="utf-8"))
        # The platform writes the socket under `socket` (2026) and under `interface` (before).
        slugs = [(entry.get("socket") or entry["interface"])["slug"] for entry in sockets]
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise InputContractError(
            f"{path} is not a list of sockets with interface slugs ({type(error).__name__}: {error}).\n"
            f"{contract.describe()}"
        ) from error
    if contract.INPUT_SOCKET.slug not in slugs:
        raise InputContractError(
            f"{path} lists the sockets {slugs}, not '{contract.INPUT_SOCKET.slug}' (image {image_name}).\n"
            f"{contract.describe()}"
        )


def run(input_root: Path, output_root: Path, model_dir: Path, *, threads: int | None = None) -> Path:
    """Segment the job's image into output_root/<socket folder>/<same uuid>.mha; return that path."""
    started = time.perf_counter()
    image_path = find_input(Path(input_root))
    try:
        image = read_image(image_path)
    except SpiderError as error:
        raise InputContractError(f"{error}.\n{contract.describe()}") from error
    threads = threads or available_cpus()
    # SimpleITK (resampling, components) would start a thread per host core, not per granted CPU.
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    model, spec = load_exported(Path(model_dir), threads=threads)
    prediction = predict_image(image, model, spec)
    out_folder = Path(output_root) / contract.OUTPUT_SOCKET.relative_path
    out_folder.mkdir(parents=True, exist_ok=True)
    target = out_folder / image_path.name
    sitk.WriteImage(prediction.labels, str(target), True)
    print(
        f"{image_path.name}: size {image.GetSize()}, spacing {tuple(round(s, 3) for s in image.GetSpacing())} mm; "
        f"preprocess {prediction.seconds_preprocess:.1f} s, network {prediction.seconds_network:.1f} s, "
        f"back to the input grid {prediction.seconds_postprocess:.1f} s, total {time.perf_counter() - started:.1f} s; "
        f"wrote {target}",
        flush=True,
    )
    return target


def main(argv: list[str] | None = None) -> int:
    model_dir = Path(os.environ.get(MODEL_DIR_ENV, str(DEFAULT_MODEL_DIR)))
    try:
        run(Path(str(contract.INPUT_ROOT)), Path(str(contract.OUTPUT_ROOT)), model_dir)
    except InputContractError as error:
        print(f"input does not follow the algorithm contract: {error}", file=sys.stderr, flush=True)
        return 2
    except SpiderError as error:
        print(f"segmentation failed: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
