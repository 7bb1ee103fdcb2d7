"""Benchmark: the full metric set of `evaluation` against MONAI on the same synthetic cases.

Generates a SPACE-sized (about 200 x 600 x 600 voxels, 0.9 x 0.47 x 0.47 mm) and a TSE-sized
synthetic case with `challenge.synth`, perturbs each reference into a plausible prediction, and
times, each in its own process pinned to one CPU core:

- ours:  `evaluation.score.score_case(..., profile="full")`: every row of the case (per level:
         Dice, ASSD, HD95, NSD, detection, identification; per group: instance means, rates and
         the merged-mask metrics);
- MONAI: `compute_dice`, `compute_hausdorff_distance(percentile=95)`,
         `compute_average_surface_distance(symmetric=True)` and `compute_surface_dice` (four
         public calls) for each reference level and each merged group mask.

It prints the time, the ratio, the peak memory (ru_maxrss of each process, inputs and imports
included) and the largest difference between the two sides' values. Run on demand, not in the
test suite: MONAI needs a few minutes for the SPACE case.

    .venv/bin/python benchmarks/bench_metrics.py [--cases space,tse] [--seed 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEQUENCE = {"space": "t2_SPACE", "tse": "t2"}
SPACE_SIZE_XYZ = (600, 600, 200)  # the synthetic generator makes its smallest axis the slice axis


def _one_core() -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def make_case(kind: str, seed: int, folder: Path) -> dict:
    """Write reference.npy, prediction.npy and case.json for one synthetic case."""
    import SimpleITK as sitk
    from scipy import ndimage

    from challenge.geometry import Geometry
    from challenge.synth import make_series

    series = make_series(sequence=SEQUENCE[kind], seed=seed, size_xyz=SPACE_SIZE_XYZ if kind == "space" else None)
    reference = sitk.GetArrayFromImage(series.mask).astype(np.uint8)
    geometry = Geometry.of(series.mask)
    prediction = perturb(reference, seed=seed, ndimage=ndimage)
    np.save(folder / "reference.npy", reference)
    np.save(folder / "prediction.npy", prediction)
    info = {"kind": kind, "shape": list(reference.shape), "spacing_zyx_mm": list(geometry.spacing_zyx_mm),
            "labels": [int(v) for v in np.unique(reference) if v]}
    (folder / "case.json").write_text(json.dumps(info))
    return info


def perturb(reference: np.ndarray, *, seed: int, ndimage) -> np.ndarray:
    """A plausible prediction that keeps every label: per structure a one-voxel shift, a grown
    or a shrunk boundary or no change, plus a few small spurious islands of existing labels
    anywhere in the field of view (as networks produce; they stretch those labels' boxes)."""
    rng = np.random.default_rng(seed)
    prediction = np.zeros_like(reference)
    present = [int(v) for v in np.unique(reference) if v]
    for value in present:
        mask = reference == value
        change = rng.integers(0, 4)
        if change == 0:
            axis = int(rng.integers(0, 3))
            moved = np.zeros_like(mask)
            index = [slice(None)] * 3
            source = [slice(None)] * 3
            index[axis], source[axis] = slice(1, None), slice(None, -1)
            moved[tuple(index)] = mask[tuple(source)]
            mask = moved
        elif change == 1:
            mask = ndimage.binary_dilation(mask)
        elif change == 2:
            mask = ndimage.binary_erosion(mask)
        prediction[mask & (prediction == 0)] = value
    for _ in range(6):
        centre = [int(rng.integers(3, n - 3)) for n in reference.shape]
        island = tuple(slice(c - 2, c + 2) for c in centre)
        prediction[island] = np.where(prediction[island] == 0, present[int(rng.integers(len(present)))],
                                      prediction[island])
    return prediction


def _structures(labels_present: list[int]) -> list[tuple[str, tuple[int, ...], float]]:
    """(name, scored raw values, NSD tolerance) for each reference level and merged group."""
    from challenge import labels, rules

    found: dict[int, set[int]] = {}
    for value in labels_present:
        found.setdefault(rules.scored_value(value), set()).add(value)
    structures = []
    for scored in sorted(found):
        group = rules.scored_group(scored)
        raw = {scored, scored + labels.PARTIAL_VERTEBRA_OFFSET} if group is labels.Group.VERTEBRAE else {scored}
        structures.append((f"{group.value}/{labels.structure(scored).name}", tuple(sorted(raw)),
                           rules.tolerance_mm(group)))
    for group in labels.SCORED_GROUPS:
        values = [v for v in labels.LABEL_MAP if rules.scored_group(v) is group]
        if any(rules.scored_value(v) in found for v in values) and group is not labels.Group.SPINAL_CANAL:
            structures.append((f"{group.value}/all/merged", tuple(values), rules.tolerance_mm(group)))
    return structures


def run_ours(folder: Path, repeat: int) -> dict:
    from evaluation.score import score_case

    info = json.loads((folder / "case.json").read_text())
    reference = np.load(folder / "reference.npy")
    prediction = np.load(folder / "prediction.npy")
    spacing = tuple(info["spacing_zyx_mm"])
    times, cpu_times = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        rows = score_case(reference, prediction, spacing, profile="full")
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    values = {}
    for row in rows:
        if row.level == "all" and row.metric.startswith("merged_"):
            values[f"{row.structure}/all/merged/{row.metric[len('merged_'):]}"] = row.value
        elif row.level != "all" and row.metric in ("dice", "assd", "hd95", "nsd"):
            values[f"{row.structure}/{row.level}/{row.metric}"] = row.value
    identified = [row.value for row in rows if row.metric == "identified"]
    return {"seconds": float(np.median(times)), "all_seconds": times, "cpu_seconds": float(np.median(cpu_times)),
            "values": values,
            "all_identified": bool(all(v == 1.0 for v in identified)), "rows": len(rows)}


def run_monai(folder: Path) -> dict:
    import warnings

    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    torch.set_num_threads(1)
    info = json.loads((folder / "case.json").read_text())
    reference = np.load(folder / "reference.npy")
    prediction = np.load(folder / "prediction.npy")
    spacing = tuple(info["spacing_zyx_mm"])
    values = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, raw, tolerance in _structures(info["labels"]):
            y = torch.from_numpy(np.isin(reference, raw))[None, None]
            y_pred = torch.from_numpy(np.isin(prediction, raw))[None, None]
            values[f"{name}/dice"] = float(compute_dice(y_pred, y, include_background=True))
            values[f"{name}/hd95"] = float(compute_hausdorff_distance(
                y_pred, y, include_background=True, percentile=95, spacing=spacing))
            values[f"{name}/assd"] = float(compute_average_surface_distance(
                y_pred, y, include_background=True, symmetric=True, spacing=spacing))
            values[f"{name}/nsd"] = float(compute_surface_dice(
                y_pred, y, [tolerance], include_background=True, spacing=spacing))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
            "values": values}


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM is reset by exec; ru_maxrss is not (on Linux it
    keeps the peak of the forked parent's copy), so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(side: str, folder: Path, repeat: int) -> None:
    _one_core()
    result = run_ours(folder, repeat) if side == "ours" else run_monai(folder)
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))


def _spawn(side: str, folder: Path, repeat: int) -> dict:
    command = [sys.executable, __file__, "--child", side, "--folder", str(folder), "--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(ours: dict, monai: dict) -> dict[str, float]:
    worst: dict[str, float] = {}
    missing = sorted(set(monai["values"]) - set(ours["values"]))
    if missing:
        raise SystemExit(f"values MONAI has and ours lacks: {missing[:5]}")
    for key, theirs in monai["values"].items():
        metric = key.rsplit("/", 1)[1]
        worst[metric] = max(worst.get(metric, 0.0), abs(ours["values"][key] - theirs))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="space,tse", help="comma-separated: space, tse")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (the median is reported)")
    parser.add_argument("--child", choices=("ours", "monai"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        _child(arguments.child, arguments.folder, arguments.repeat)
        return 0
    print(f"load average before: {os.getloadavg()[0]:.2f} (CPUs: {os.cpu_count()}); each side pinned to one core")
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as scratch:
        for kind in [k.strip() for k in arguments.cases.split(",") if k.strip()]:
            folder = Path(scratch) / kind
            folder.mkdir()
            info = make_case(kind, arguments.seed, folder)
            structures = len(_structures(info["labels"]))
            ours = _spawn("ours", folder, arguments.repeat)
            monai = _spawn("monai", folder, 1)
            worst = _compare(ours, monai)
            shape = "x".join(str(n) for n in info["shape"])
            spacing = "x".join(f"{s:.3g}" for s in info["spacing_zyx_mm"])
            print(f"\n{kind}: {shape} voxels (z, y, x) at {spacing} mm, {structures} structures "
                  f"(levels + merged groups), {ours['rows']} rows")
            print(f"  ours : {ours['seconds']:8.2f} s wall, {ours['cpu_seconds']:8.2f} s CPU (median of "
                  f"{len(ours['all_seconds'])} runs, wall: " + ", ".join(f"{s:.2f}" for s in ours["all_seconds"])
                  + f"), peak {ours['peak_mb']:.0f} MB")
            print(
                f"  MONAI: {monai['seconds']:8.2f} s wall, {monai['cpu_seconds']:8.2f} s CPU, "
                f"peak {monai['peak_mb']:.0f} MB"
            )
            print(f"  ratio: {monai['seconds'] / ours['seconds']:.0f}x faster (wall), "
                  f"{monai['cpu_seconds'] / ours['cpu_seconds']:.0f}x (CPU time; steadier on a shared machine)")
            print("  largest |ours - MONAI|: " + ", ".join(f"{m} {v:.2e}" for m, v in sorted(worst.items()))
                  + ("" if ours["all_identified"] else "  (WARNING: some levels matched another label)"))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
