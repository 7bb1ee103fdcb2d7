"""Per-case overhead of the container runner: a do-nothing container from start to exit plus the
output checks, on an input and a prediction of a real SPIDER size.

    .venv/bin/python benchmarks/bench_runner.py [--runs 10] [--shape 18x512x512]

Needs a Docker engine and the offline base image (`spider images base`). Prints, per phase of a
job, the median, min and max over the runs in seconds:
  noop job        run_job() of an image whose command is `true` (fresh folders, copy of the input,
                  create, start, wait, log, audit, remove, output check finding nothing)
  output check    check_output() of one valid prediction of --shape (find, lstat, read, grid and
                  label checks), the part a real job adds on top of the noop job
  bare engine     the same container flags straight through the SDK (create, start, wait,
                  remove): the engine's share of the noop job
  good job        run_job() of the test threshold algorithm on a small case (Python start-up,
                  pure-Python inference, a valid output), for comparison
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from challenge.contract import OUTPUT_SOCKET
from challenge.geometry import Geometry
from challenge.phases import Phase
from challenge.statuses import JobStatus
from evaluation.runner import base_image
from evaluation.runner.docker_runner import RunnerSettings, connect, container_options, run_job
from evaluation.runner.output_check import check_output

CONTAINERS = Path(__file__).resolve().parent.parent / "tests" / "runner" / "containers"
PHASE = Phase(
    name="bench", description="runner overhead", time_limit_seconds=60, memory_bytes=1024**3, cpus=1.0, gpus=0,
    pids_limit=256, tmp_bytes=64 * 1024**2, output_limit_bytes=1024**3,
)


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.6, 0.6, 3.3))
    image.SetDirection((0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    return image


def _build(client, name: str) -> str:
    image, _logs = client.images.build(
        path=str(CONTAINERS), dockerfile=f"{name}/Dockerfile", tag=f"spider-test/{name}:latest",
        rm=True, forcerm=True, network_mode="none",
    )
    return image.id


def _summary(label: str, seconds: list[float]) -> str:
    return (f"{label:<14} median {statistics.median(seconds):7.3f} s   min {min(seconds):7.3f} s   "
            f"max {max(seconds):7.3f} s   (n={len(seconds)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--shape", default="18x512x512", help="z x y x x of the input and prediction")
    arguments = parser.parse_args(argv)
    shape = tuple(int(v) for v in arguments.shape.split("x"))
    client = connect()
    try:
        client.images.get(base_image.SLIM_TAG)
    except Exception:
        print(f"no {base_image.SLIM_TAG} image: run `spider images base` first", file=sys.stderr)
        return 2
    noop, good = _build(client, "noop"), _build(client, "good")
    info = client.info()
    print(f"engine {info.get('ServerVersion')}, {info.get('NCPU')} CPUs, storage {info.get('Driver')}; "
          f"input {arguments.shape} (z x y x x) int16, {arguments.runs} runs")

    with tempfile.TemporaryDirectory(prefix="bench-runner-") as folder:
        root = Path(folder)
        rng = np.random.default_rng(0)
        big_input = root / "big.mha"
        sitk.WriteImage(_image(rng.integers(0, 1000, size=shape, dtype=np.int16)), str(big_input), True)
        small_input = root / "small.mha"
        sitk.WriteImage(_image(rng.integers(0, 1000, size=(9, 28, 20), dtype=np.int16)), str(small_input), True)
        prediction_root = root / "prediction"
        (prediction_root / OUTPUT_SOCKET.relative_path).mkdir(parents=True)
        labels = np.zeros(shape, np.uint8)
        labels[2:-2, 100:300, 100:200] = 1
        labels[2:-2, 310:330, 100:200] = 201
        labels[:, 100:400, 250:280] = 100
        sitk.WriteImage(_image(labels), str(prediction_root / OUTPUT_SOCKET.relative_path / "seg.mha"), True)
        expected = Geometry.of(_image(labels))

        timings: dict[str, list[float]] = {"noop job": [], "output check": [], "bare engine": [], "good job": []}
        for run in range(arguments.runs):
            began = time.perf_counter()
            job = run_job(
                client, image_id=noop, case="bench", input_image=big_input, phase=PHASE, job_dir=root / f"noop{run}"
            )
            timings["noop job"].append(time.perf_counter() - began)
            if job.status is not JobStatus.MISSING_OUTPUT:
                raise SystemExit(f"noop job ended {job.status}: {job.reason}")
            began = time.perf_counter()
            checked = check_output(prediction_root, expected)
            timings["output check"].append(time.perf_counter() - began)
            if checked.status is not JobStatus.SUCCEEDED:
                raise SystemExit(f"output check failed: {checked.reason}")
            bare = root / f"bare{run}"
            for sub in ("input", "output"):
                (bare / sub).mkdir(parents=True)
            options = container_options(
                image_id=noop,
                phase=PHASE,
                input_dir=bare / "input",
                output_dir=bare / "output",
                settings=RunnerSettings(),
                image_config={},
            )
            began = time.perf_counter()
            container = client.containers.create(**options)
            container.start()
            container.wait()
            container.remove(force=True)
            timings["bare engine"].append(time.perf_counter() - began)
            began = time.perf_counter()
            job = run_job(
                client, image_id=good, case="bench", input_image=small_input, phase=PHASE, job_dir=root / f"good{run}"
            )
            timings["good job"].append(time.perf_counter() - began)
            if job.status is not JobStatus.SUCCEEDED:
                raise SystemExit(f"good job ended {job.status}: {job.reason}")
        for label, seconds in timings.items():
            print(_summary(label, seconds))
        overhead = [a + b for a, b in zip(timings["noop job"], timings["output check"], strict=True)]
        print(_summary("per-case overhead (noop job + output check)", overhead))
    return 0


if __name__ == "__main__":
    sys.exit(main())
