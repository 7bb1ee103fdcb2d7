"""Benchmark: the full metric set of `evaluation` against MONAI on the same synthetic cases.

Generates a SPACE-sized (about 200 x 600 x 600 voxels, 0.9 x 0.47 x 0.47 mm) and a TSE-sized
synthetic case with `challenge.synth` and scores predictions of the reference, each valid under
the output check (SPIDER label values on the reference grid):

- plausible:    per structure a one-voxel shift, a grown or a shrunk boundary or no change, plus a
                few small spurious islands (what a network produces);
- one-label:    every voxel labelled 1 (L5);
- columns:      alternating columns of 0 and 1 along the last axis (x % 2);
- random:       a random SPIDER label (background included) in every voxel, seeded;
- checkerboard: a 3D checkerboard ((z + y + x) % 2) of the reference's lowest vertebra and its
                lowest disc;
- speckles:     the reference plus 5,000 one-voxel speckles of every label it holds, anywhere.

For each it times, each side in its own process pinned to one CPU core:

- ours:  `evaluation.score.score_case(..., profile="full")`: every row of the case (per level:
         Dice, ASSD, HD95, NSD, detection, identification; per group: instance means, rates and
         the merged-mask metrics);
- MONAI: `compute_dice`, `compute_hausdorff_distance(percentile=95)`,
         `compute_average_surface_distance(symmetric=True)` and `compute_surface_dice` (four
         public calls) for each reference level and each merged group mask;
- spider score: the whole process, as the issue measured its target: the reference and the
         prediction written as REF/<case>.mha and PRED/<case>.mha (uint8, compressed, outside the
         timing), then `spider score --reference REF --predictions PRED --out OUT --workers 1`
         (reading and checking the files, scoring in its worker process, writing metrics.json),
         its wall time and the peak memory of its largest process (VmHWM of the process and each
         descendant, read every 50 ms, and the wait4 peak); metrics.json must show the case
         "scored". Left out with --skip-whole-process; stopped after --ours-timeout where set.

It prints one row per (case, prediction): the time (wall and CPU), the peak memory (VmHWM of each
process, inputs and imports included; the baseline in parentheses is the peak after loading the
inputs and imports, before scoring), the ratio MONAI / ours, ours' time over ours' time on the
plausible prediction (score_case only), spider score's time, peak and time over its time on the
plausible prediction (the whole-process ratio), and the largest |ours - MONAI| per metric, then a
Markdown summary and the targets of issue 12. A MONAI run longer than --monai-timeout is stopped
and shown as "> N s" (its ratio as a lower bound).

Values are compared like with like only: ours matches each reference level to the predicted label
of its group that overlaps it most, MONAI always measures the level's own label. A level's row is
compared where that match is the level's own label (the benchmark recomputes the match from the
joint label histogram and checks it against ours' "identified" row) and ours scored it (status
"scored", not an edge-case value); the merged group rows compare like with like whenever scored.
The rest are counted as skipped. Run on demand, not in the test suite: MONAI needs a few minutes
for the plausible SPACE case and up to --monai-timeout for each adversarial one.

    .venv/bin/python benchmarks/bench_metrics.py [--cases space,tse] [--predictions plausible,random]
        [--seed 7] [--repeat 3] [--skip-monai] [--monai-timeout 1800] [--ours-timeout 0]
        [--skip-whole-process]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SEQUENCE = {"space": "t2_SPACE", "tse": "t2"}
SPACE_SIZE_XYZ = (600, 600, 200)  # the synthetic generator makes its smallest axis the slice axis
PREDICTIONS = ("plausible", "one-label", "columns", "random", "checkerboard", "speckles")
SPECKLES_PER_LABEL = 5000
METRICS = ("dice", "assd", "hd95", "nsd")
CHUNK_VOXELS = 1 << 22  # slabs of the arrays built or counted here (a few MiB of temporaries)

# Issue 12's targets.
TARGET_ADVERSARIAL_X = 20.0  # every adversarial prediction at most 20x ours' plausible time
TARGET_PEAK_MB = 1500.0
TARGET_DIFFERENCE = 1e-4
TARGET_TSE_RATIO = 50.0  # TSE plausible at least 50x faster than MONAI


def _one_core() -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


# ---- the case and its predictions -------------------------------------------------------------


def make_reference(kind: str, seed: int, folder: Path) -> tuple[np.ndarray, dict]:
    """Write reference.npy and case.json for one synthetic case; returns the reference and the info."""
    import SimpleITK as sitk

    from challenge.geometry import Geometry
    from challenge.synth import make_series

    series = make_series(sequence=SEQUENCE[kind], seed=seed, size_xyz=SPACE_SIZE_XYZ if kind == "space" else None)
    reference = sitk.GetArrayFromImage(series.mask).astype(np.uint8)
    geometry = Geometry.of(series.mask)
    np.save(folder / "reference.npy", reference)
    info = {"kind": kind, "shape": list(reference.shape), "spacing_zyx_mm": list(geometry.spacing_zyx_mm),
            "labels": [int(v) for v in np.unique(reference) if v]}
    (folder / "case.json").write_text(json.dumps(info))
    return reference, info


def make_prediction(name: str, reference: np.ndarray, *, seed: int) -> np.ndarray:
    """Prediction `name` (one of PREDICTIONS) of `reference`, uint8 on the same grid. Built with uint8
    arithmetic and in slabs: no full-volume index grid or int64 temporary."""
    rng = np.random.default_rng([seed, PREDICTIONS.index(name)])
    if name == "plausible":
        from scipy import ndimage

        return perturb(reference, rng=rng, ndimage=ndimage)
    if name == "one-label":
        return np.ones_like(reference)
    if name == "columns":
        prediction = np.empty_like(reference)
        prediction[...] = (np.arange(reference.shape[-1]) % 2).astype(np.uint8)
        return prediction
    if name == "random":
        from challenge import labels

        values = np.array(sorted(labels.ALLOWED_VALUES), dtype=np.uint8)
        prediction = np.empty_like(reference)
        for part in _slabs(reference.shape):
            picks = rng.integers(0, values.size, size=prediction[part].shape, dtype=np.uint8)
            prediction[part] = values[picks]
        return prediction
    if name == "checkerboard":
        vertebra, disc = _lowest_vertebra_and_disc(reference)
        z, y, x = ((np.arange(n) % 2).astype(np.uint8) for n in reference.shape)
        prediction = np.empty_like(reference)
        np.bitwise_xor(z[:, None, None] ^ y[None, :, None], x[None, None, :], out=prediction)  # (z+y+x) % 2
        prediction *= np.uint8(disc - vertebra)
        prediction += np.uint8(vertebra)
        return prediction
    if name == "speckles":
        prediction = reference.copy()
        flat = prediction.reshape(-1)  # a view: the copy is contiguous
        for value in _values_present(reference):
            flat[rng.integers(0, flat.size, size=SPECKLES_PER_LABEL)] = value
        return prediction
    raise ValueError(f"unknown prediction {name!r} (expected one of {', '.join(PREDICTIONS)})")


def _slabs(shape: tuple[int, ...]):
    step = max(1, CHUNK_VOXELS // max(1, int(np.prod(shape[1:]))))
    for begin in range(0, shape[0], step):
        yield np.s_[begin:begin + step]


def _values_present(array: np.ndarray) -> list[int]:
    """The foreground values of a uint8 array, counted in slabs (np.unique would sort a full copy)."""
    counts = np.zeros(256, dtype=np.int64)
    for part in _slabs(array.shape):
        counts += np.bincount(array[part].reshape(-1), minlength=256)
    return [int(v) for v in np.flatnonzero(counts) if v]


def _lowest_vertebra_and_disc(reference: np.ndarray) -> tuple[int, int]:
    from challenge import labels

    present = _values_present(reference)
    vertebrae = [v for v in present if labels.structure(v).group is labels.Group.VERTEBRAE]
    discs = [v for v in present if labels.structure(v).group is labels.Group.DISCS]
    if not vertebrae or not discs:
        raise SystemExit("the checkerboard needs a reference with a vertebra and a disc")
    return min(vertebrae), min(discs)


def perturb(reference: np.ndarray, *, rng: np.random.Generator, ndimage) -> np.ndarray:
    """A plausible prediction that keeps every label: per structure a one-voxel shift, a grown
    or a shrunk boundary or no change, plus a few small spurious islands of existing labels
    anywhere in the field of view (as networks produce; they stretch those labels' boxes)."""
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


def matched_labels(reference: np.ndarray, prediction: np.ndarray) -> dict[int, int | None]:
    """For each scored reference level, the scored predicted label of its group that overlaps it
    most (ties to the lower value; None: no overlap): the `full` profile's matching rule, recomputed
    here from a joint histogram counted in slabs, so that the comparison knows which rows of ours
    measure the level's own label."""
    from challenge import labels, rules

    joint = np.zeros(256 * 256, dtype=np.int64)
    for part in _slabs(reference.shape):
        codes = reference[part].astype(np.uint16)
        codes <<= 8
        codes |= prediction[part]
        joint += np.bincount(codes.reshape(-1), minlength=joint.size)
    scored = np.arange(256)
    for value in labels.LABEL_MAP:
        scored[value] = rules.scored_value(value)
    folded = np.zeros((256, 256), dtype=np.int64)
    np.add.at(folded, (scored[:, None], scored[None, :]), joint.reshape(256, 256))
    predicted = [int(p) for p in np.flatnonzero(folded.sum(axis=0)) if p]
    matches: dict[int, int | None] = {}
    for value in (int(r) for r in np.flatnonzero(folded.sum(axis=1)) if r):
        group = rules.scored_group(value)
        candidates = [p for p in predicted if rules.scored_group(p) is group]
        overlaps = [int(folded[value, p]) for p in candidates]
        matches[value] = candidates[int(np.argmax(overlaps))] if overlaps and max(overlaps) > 0 else None
    return matches


def _structures(labels_present: list[int]) -> list[tuple[str, tuple[int, ...], float, int | None]]:
    """(name, scored raw values, NSD tolerance, the level's scored value or None for a merged group)
    for each reference level and merged group."""
    from challenge import labels, rules

    found: dict[int, set[int]] = {}
    for value in labels_present:
        found.setdefault(rules.scored_value(value), set()).add(value)
    structures: list[tuple[str, tuple[int, ...], float, int | None]] = []
    for scored in sorted(found):
        group = rules.scored_group(scored)
        raw = {scored, scored + labels.PARTIAL_VERTEBRA_OFFSET} if group is labels.Group.VERTEBRAE else {scored}
        structures.append((f"{group.value}/{labels.structure(scored).name}", tuple(sorted(raw)),
                           rules.tolerance_mm(group), scored))
    for group in labels.SCORED_GROUPS:
        values = [v for v in labels.LABEL_MAP if rules.scored_group(v) is group]
        if any(rules.scored_value(v) in found for v in values) and group is not labels.Group.SPINAL_CANAL:
            structures.append((f"{group.value}/all/merged", tuple(values), rules.tolerance_mm(group), None))
    return structures


# ---- the two sides, each in a child process --------------------------------------------------


def _load(folder: Path) -> tuple[dict, np.ndarray, np.ndarray, tuple[float, float, float]]:
    info = json.loads((folder / "case.json").read_text())
    reference = np.load(folder / "reference.npy")
    prediction = np.load(folder / "prediction.npy")
    z, y, x = (float(s) for s in info["spacing_zyx_mm"])
    return info, reference, prediction, (z, y, x)


def _ready(path: Path) -> float:
    """Tell the parent that imports and inputs are loaded (its timeout starts now); returns the
    baseline peak memory."""
    baseline = _peak_mb()
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"cpu_seconds": time.process_time(), "baseline_mb": baseline}))
    partial.replace(path)
    return baseline


def run_ours(folder: Path, repeat: int, ready: Path) -> dict:
    from evaluation.score import score_case

    info, reference, prediction, spacing = _load(folder)
    baseline = _ready(ready)
    times, cpu_times = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        rows = score_case(reference, prediction, spacing, profile="full")
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    values, statuses, identified = {}, {}, {}
    for row in rows:
        if row.level == "all" and row.metric.startswith("merged_"):
            key = f"{row.structure}/all/merged/{row.metric[len('merged_'):]}"
        elif row.level != "all" and row.metric in METRICS:
            key = f"{row.structure}/{row.level}/{row.metric}"
        else:
            if row.level != "all" and row.metric == "identified":
                identified[f"{row.structure}/{row.level}"] = row.value
            continue
        values[key] = row.value
        statuses[key] = str(row.status)
    return {"seconds": float(np.median(times)), "all_seconds": times, "cpu_seconds": float(np.median(cpu_times)),
            "values": values, "statuses": statuses, "identified": identified, "rows": len(rows),
            "baseline_mb": baseline}


def run_monai(folder: Path, ready: Path) -> dict:
    import warnings

    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    torch.set_num_threads(1)
    info, reference, prediction, spacing = _load(folder)
    baseline = _ready(ready)
    values = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, raw, tolerance, _ in _structures(info["labels"]):
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
            "values": values, "baseline_mb": baseline}


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM is reset by exec; ru_maxrss is not (on Linux it
    keeps the peak of the forked parent's copy), so it is only the fallback."""
    peak = _status_mb(Path("/proc/self/status"))
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mb(path: Path, field: str = "VmHWM") -> float | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far (from /proc; None where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _child(side: str, folder: Path, repeat: int, result: Path) -> None:
    _one_core()
    ready = result.with_name(result.stem + ".ready.json")
    outcome = run_ours(folder, repeat, ready) if side == "ours" else run_monai(folder, ready)
    outcome["peak_mb"] = _peak_mb()
    result.write_text(json.dumps(outcome))


def _spawn(side: str, folder: Path, repeat: int, timeout_s: float) -> dict:
    """Run one side in its own process. Where it scores for longer than `timeout_s` (0: no limit;
    counted from when its imports and inputs are loaded), it is stopped and the result says
    "timed_out", with the time as a lower bound and the CPU time and peak memory it had reached."""
    result, ready, log = (folder / f"{side}.json", folder / f"{side}.ready.json", folder / f"{side}.log")
    for path in (result, ready):
        path.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", side, "--folder", str(folder), "--repeat", str(repeat),
               "--result", str(result)]
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        ready_at: float | None = None
        while True:
            try:
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if ready_at is None and ready.exists():
                ready_at = time.perf_counter()
            if timeout_s and ready_at is not None and time.perf_counter() - ready_at > timeout_s:
                peak, cpu = _status_mb(Path(f"/proc/{process.pid}/status")), _cpu_seconds_of(process.pid)
                process.kill()
                process.wait()
                loaded = json.loads(ready.read_text())
                return {"timed_out": True, "seconds": float(timeout_s),
                        "cpu_seconds": None if cpu is None else cpu - loaded["cpu_seconds"],
                        "peak_mb": peak, "baseline_mb": loaded["baseline_mb"]}
    if code != 0 or not result.exists():
        tail = log.read_text().strip().splitlines()[-15:]
        return {"failed": f"{side} exited with {code}:\n    " + "\n    ".join(tail)}
    return json.loads(result.read_text())


# ---- the whole process: `spider score --workers 1` on .mha files --------------------------------


def case_of(kind: str) -> str:
    """The case name of the reference and the prediction files (a SPIDER-like series name)."""
    return f"1_{SEQUENCE[kind]}"


def write_mha(array: np.ndarray, spacing_zyx_mm, path: Path) -> None:
    """`array` (z, y, x) as a uint8 .mha with the case's spacing (SimpleITK's x, y, z order),
    compressed like a container would write it."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx_mm)))
    sitk.WriteImage(image, str(path), useCompression=True)


def spider_score_command(time_limit_s: int) -> list[str]:
    """`spider score` (the console script next to this interpreter, else `python -c` on its entry
    point), with the scoring time limit and the no-progress flag where its --help lists them (the
    command is being edited: its flags are read, not assumed)."""
    script = Path(sys.executable).with_name("spider")
    command = [str(script)] if script.is_file() and os.access(script, os.X_OK) else \
        [sys.executable, "-c", "import sys; from challenge.cli import main; sys.exit(main())"]
    command.append("score")
    shown = subprocess.run(command + ["--help"], capture_output=True, text=True, check=False).stdout
    if "--scoring-time-limit" in shown:
        command += ["--scoring-time-limit", str(time_limit_s)]
    for flag in ("--quiet", "--no-progress"):
        if flag in shown:
            command.append(flag)
            break
    return command


def _process_tree(root: int) -> list[int]:
    """`root` and its living descendants (by the parent pids of /proc/*/stat; this kernel may lack
    /proc/<pid>/task/<tid>/children)."""
    parents: dict[int, list[int]] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                parent = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(parents.get(pid, ()))
    return tree


def run_whole_process(command: list[str], folder: Path, case: str, timeout_s: float, poll_s: float = 0.05) -> dict:
    """Time `command` (spider score on folder/REF and folder/PRED, writing folder/OUT) as a whole,
    pinned to one core, in a session of its own. Every `poll_s` it reads VmHWM of the process and
    each descendant (the scoring runs in a child process); the peak reported is the largest single
    process's, the larger of those readings and the wait4 peak (ru_maxrss of the process and its
    reaped descendants, which also covers a child that ended between two readings). Stopped after
    `timeout_s` (0: no limit, counted from the start) and then reported as "timed_out"."""
    import shutil
    import signal

    out, log = folder / "OUT", folder / "spider-score.log"
    shutil.rmtree(out, ignore_errors=True)
    arguments = command + ["--reference", str(folder / "REF"), "--predictions", str(folder / "PRED"),
                           "--out", str(out), "--workers", "1"]
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    core = sorted(os.sched_getaffinity(0))[0] if hasattr(os, "sched_getaffinity") else None

    def pin() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})

    peaks: dict[int, float] = {}  # pid -> the largest VmHWM seen, MB
    with log.open("w") as output:
        start = time.perf_counter()
        process = subprocess.Popen(arguments, stdout=output, stderr=subprocess.STDOUT, env=environment,
                                   preexec_fn=pin, start_new_session=True)
        timed_out, status, usage = False, 0, None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            for member in _process_tree(process.pid):
                peak = _status_mb(Path(f"/proc/{member}/status"))
                if peak is not None:
                    peaks[member] = max(peaks.get(member, 0.0), peak)
            if timeout_s and time.perf_counter() - start > timeout_s:
                timed_out = True
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # its own session: spider score and its workers
                except ProcessLookupError:
                    pass
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(poll_s)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, by wait4
    reaped_mb = usage.ru_maxrss / 1024.0 if usage is not None else 0.0
    polled_mb = max(peaks.values(), default=0.0)
    result: dict[str, Any] = {"seconds": seconds, "peak_mb": max(polled_mb, reaped_mb), "polled_mb": polled_mb,
              "reaped_mb": reaped_mb, "processes": len(peaks), "warnings": []}
    if timed_out:
        result.update(timed_out=True, seconds=float(timeout_s))
        return result
    if process.returncode != 0:
        tail = log.read_text().strip().splitlines()[-15:]
        return {"failed": f"spider score exited with {process.returncode}:\n    " + "\n    ".join(tail)}
    try:
        document = json.loads((out / "metrics.json").read_text())
        outcome = document.get("case", {}).get(case)
    except (OSError, ValueError) as error:
        outcome, result["warnings"] = None, [f"spider score: no readable metrics.json ({error})"]
    if outcome is None and not result["warnings"]:
        result["warnings"].append(f"spider score: metrics.json has no case {case!r}")
    elif outcome is not None and outcome.get("status") != "scored":
        result["warnings"].append(f"spider score: case {case} is {outcome.get('status')!r}, "
                                  f"reason: {outcome.get('reason')}")
    result["status"] = None if outcome is None else outcome.get("status")
    shutil.rmtree(out, ignore_errors=True)
    return result


# ---- comparing and reporting -----------------------------------------------------------------


def _difference(ours: float, theirs: float) -> float:
    if ours == theirs:  # both inf included
        return 0.0
    difference = abs(ours - theirs)
    return difference if math.isfinite(difference) else math.inf


def compare(ours: dict, monai: dict | None, structures, matches: dict[int, int | None]) -> dict:
    """Which structures of ours compare like with like to MONAI, and the largest |ours - MONAI| per
    metric over those (None without MONAI values)."""
    from challenge import rules

    counts = {"compared": 0, "other_label": 0, "edge": 0, "missing": 0}
    worst: dict[str, float] = {}
    warnings = []
    for name, _, _, scored in structures:
        keys = {metric: f"{name}/{metric}" for metric in METRICS}
        if any(key not in ours["values"] for key in keys.values()):
            counts["missing"] += 1
            warnings.append(f"ours lacks {name}")
            continue
        if scored is not None and ours["statuses"][keys["dice"]] == "scored":
            # Ours identifies a level when it matches its own label with a Dice of at least the
            # detection threshold; the benchmark's recomputed match must agree.
            own = matches.get(scored) == scored
            expected = own and ours["values"][keys["dice"]] >= rules.DETECTION_DICE_THRESHOLD
            if (ours["identified"].get(name) == 1.0) != expected:
                warnings.append(f"{name}: ours' identified = {ours['identified'].get(name)}, the benchmark's "
                                f"matching gives label {matches.get(scored)} (Dice {ours['values'][keys['dice']]:.3g})")
        if any(ours["statuses"][key] != "scored" for key in keys.values()):
            counts["edge"] += 1
            continue
        if scored is not None and matches.get(scored) != scored:
            counts["other_label"] += 1
            continue
        counts["compared"] += 1
        if monai is not None:
            for metric, key in keys.items():
                worst[metric] = max(worst.get(metric, 0.0), _difference(ours["values"][key], monai["values"][key]))
    return {"counts": counts, "worst": worst if monai is not None else None, "warnings": warnings}


def _seconds(side: dict | None, field: str = "seconds") -> str:
    if side is None:
        return "-"
    if "failed" in side:
        return "failed"
    if side.get(field) is None:
        return "?"
    return ("> " if side.get("timed_out") else "") + f"{side[field]:.2f}"


def _megabytes(side: dict | None) -> str:
    if side is None or "failed" in side or side.get("peak_mb") is None:
        return "-" if side is None or "failed" in side else "?"
    return (">= " if side.get("timed_out") else "") + f"{side['peak_mb']:.0f} ({side['baseline_mb']:.0f})"


def _times(x: float) -> str:
    return f"{x:.0f}x" if x >= 10 else f"{x:.2g}x"


def _ratio(monai: dict | None, ours: dict, field: str) -> tuple[str, float | None]:
    """MONAI / ours as text (a lower bound where MONAI timed out) and as a number."""
    if monai is None or "failed" in monai or "failed" in ours or ours.get("timed_out"):
        return "-", None
    if monai.get(field) is None or not ours[field]:
        return "?", None
    value = monai[field] / ours[field]
    return (">= " if monai.get("timed_out") else "") + _times(value), value


def _over_plausible(ours: dict | None, plausible: dict | None) -> tuple[str, float | None]:
    """A side's time over its own time on the plausible prediction (ours: score_case; the whole
    process: spider score); a lower bound where this run timed out."""
    if ours is None:
        return "-", None
    if plausible is None or "failed" in plausible or plausible.get("timed_out") or "failed" in ours:
        return "n/a", None
    value = ours["seconds"] / plausible["seconds"]
    return (">= " if ours.get("timed_out") else "") + _times(value), value


def _whole_megabytes(whole: dict | None) -> str:
    if whole is None or "failed" in whole:
        return "-"
    return (">= " if whole.get("timed_out") else "") + f"{whole['peak_mb']:.0f}"


def _worst_text(comparison: dict) -> dict[str, str]:
    worst = comparison["worst"]
    if worst is None:
        return {metric: "-" for metric in METRICS}
    return {metric: f"{worst[metric]:.1e}" if metric in worst else "-" for metric in METRICS}


COLUMNS = ("prediction", "ours wall s", "ours CPU s", "ours peak MB (base)", "MONAI wall s", "MONAI CPU s",
           "MONAI peak MB (base)", "MONAI/ours wall", "MONAI/ours CPU", "ours / plausible (score_case only)",
           "spider score s", "spider score peak MB", "spider score / plausible",
           "compared / other label / edge") + tuple(f"max diff {metric}" for metric in METRICS)


def row_cells(entry: dict) -> list[str]:
    ours, monai, comparison = entry["ours"], entry["monai"], entry["comparison"]
    compared, worst = "-", dict.fromkeys(METRICS, "-")
    if comparison is not None:  # None: ours failed or timed out
        counts = comparison["counts"]
        compared = f"{counts['compared']} / {counts['other_label']} / {counts['edge']}"
        if counts["missing"]:
            compared += f" (+{counts['missing']} missing)"
        worst = _worst_text(comparison)
    return [entry["prediction"], _seconds(ours), _seconds(ours, "cpu_seconds"), _megabytes(ours),
            _seconds(monai), _seconds(monai, "cpu_seconds"), _megabytes(monai),
            _ratio(monai, ours, "seconds")[0], _ratio(monai, ours, "cpu_seconds")[0],
            entry["over_plausible"][0], _seconds(entry["whole"]), _whole_megabytes(entry["whole"]),
            entry["whole_over_plausible"][0], compared] + [worst[metric] for metric in METRICS]


WIDTHS = (12, 11, 10, 19, 12, 11, 20, 15, 14, 34, 14, 20, 24, 29, 14, 14, 14, 14)


def _text_row(cells: list[str]) -> str:
    return "  " + " ".join(cell.rjust(width) if i else cell.ljust(width)
                           for i, (cell, width) in enumerate(zip(cells, WIDTHS, strict=True)))


def _peak_verdict(peaks: list[dict], side: str, total: int) -> bool | None:
    """Whether every measured peak of `side` is within the target; undecided for the runs without one.
    A stopped run's peak is a lower bound: it decides only when it already exceeds the target."""
    return _all([False if e[side]["peak_mb"] > TARGET_PEAK_MB else None if e[side].get("timed_out") else True
                 for e in peaks] + [None] * (total - len(peaks)))


def _answer(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "no")


def _all(verdicts: list[bool | None]) -> bool | None:
    """No where one entry fails, n/a where none fails and one is unknown (or none was measured)."""
    if any(v is False for v in verdicts):
        return False
    return None if not verdicts or any(v is None for v in verdicts) else True


def _within_plausible(entry: dict, side: str = "ours", ratio: str = "over_plausible") -> bool | None:
    ours, value = entry[side], entry[ratio][1]
    if ours is None:
        return None
    if "failed" in ours:
        return False
    if value is None:
        return None
    if ours.get("timed_out"):  # a lower bound: decides only when it already exceeds the target
        return False if value > TARGET_ADVERSARIAL_X else None
    return value <= TARGET_ADVERSARIAL_X


def _not_slower(entry: dict) -> bool | None:
    ours, monai = entry["ours"], entry["monai"]
    if monai is None or "failed" in monai:
        return None
    if "failed" in ours:
        return False
    if ours.get("timed_out"):
        return False if not monai.get("timed_out") and monai["seconds"] < ours["seconds"] else None
    value = _ratio(monai, ours, "seconds")[1]
    if value is None:
        return None
    if monai.get("timed_out"):
        return True if value >= 1.0 else None
    return value >= 1.0


def targets(kind: str, entries: list[dict]) -> list[str]:
    """The issue's targets for one case, one line each, with the worst offender."""
    name = kind.upper()
    lines = []
    adversarial = [e for e in entries if e["prediction"] != "plausible"]
    over = [e for e in adversarial if e["over_plausible"][1] is not None]
    detail = "no adversarial prediction run" if not adversarial else "plausible not run or not measured"
    if over:
        worst = max(over, key=lambda e: e["over_plausible"][1])
        detail = f"worst: {worst['prediction']} {worst['over_plausible'][0]}"
    failed = [e["prediction"] for e in adversarial if "failed" in e["ours"]]
    if failed:
        detail += "; ours failed on " + ", ".join(failed)
    lines.append(f"{name}: every adversarial <= {TARGET_ADVERSARIAL_X:.0f}x plausible (score_case only): "
                 f"{_answer(_all([_within_plausible(e) for e in adversarial]))} ({detail})")

    whole_run = [e for e in entries if e["whole"] is not None]
    if whole_run:
        over = [e for e in adversarial if e["whole_over_plausible"][1] is not None]
        detail = "no adversarial prediction run" if not adversarial else "plausible not run or not measured"
        if over:
            worst = max(over, key=lambda e: e["whole_over_plausible"][1])
            detail = f"worst: {worst['prediction']} {worst['whole_over_plausible'][0]}"
        failed = [e["prediction"] for e in adversarial if e["whole"] is not None and "failed" in e["whole"]]
        if failed:
            detail += "; spider score failed on " + ", ".join(failed)
        verdicts = [_within_plausible(e, "whole", "whole_over_plausible") for e in adversarial]
        lines.append(f"{name}: every adversarial <= {TARGET_ADVERSARIAL_X:.0f}x plausible (whole process, "
                     f"spider score): {_answer(_all(verdicts))} ({detail})")

    ratios = [e for e in entries if _ratio(e["monai"], e["ours"], "seconds")[1] is not None]
    detail = "MONAI not run" if all(e["monai"] is None for e in entries) else "no ratio measured"
    if ratios:
        worst = min(ratios, key=lambda e: _ratio(e["monai"], e["ours"], "seconds")[1] or 0.0)
        detail = f"closest: {worst['prediction']} {_ratio(worst['monai'], worst['ours'], 'seconds')[0]}"
        if len(ratios) < len(entries):
            detail += f"; {len(entries) - len(ratios)} of {len(entries)} without a ratio"
    lines.append(f"{name}: never slower than MONAI: {_answer(_all([_not_slower(e) for e in entries]))} ({detail})")

    peaks = [e for e in entries if "failed" not in e["ours"] and e["ours"].get("peak_mb") is not None]
    verdict: bool | None = None
    detail = "no peak measured"
    if peaks:
        worst = max(peaks, key=lambda e: e["ours"]["peak_mb"])
        verdict = _peak_verdict(peaks, "ours", len(entries))
        detail = (f"largest: {worst['prediction']} {worst['ours']['peak_mb']:.0f} MB, "
                  f"of which {worst['ours']['baseline_mb']:.0f} MB before scoring")
    lines.append(f"{name}: peak memory <= {TARGET_PEAK_MB:.0f} MB (score_case only): {_answer(verdict)} ({detail})")

    if whole_run:
        peaks = [e for e in whole_run if "failed" not in e["whole"]]
        verdict, detail = None, "no peak measured"
        if peaks:
            worst = max(peaks, key=lambda e: e["whole"]["peak_mb"])
            verdict = _peak_verdict(peaks, "whole", len(entries))
            detail = (f"largest: {worst['prediction']} {worst['whole']['peak_mb']:.0f} MB, "
                      f"of {worst['whole']['processes']} processes seen")
        lines.append(f"{name}: peak memory <= {TARGET_PEAK_MB:.0f} MB (spider score, largest process): "
                     f"{_answer(verdict)} ({detail})")

    compared = [e for e in entries if e["comparison"] is not None and e["comparison"]["worst"] is not None]
    differences = [(value, metric, e["prediction"]) for e in compared
                   for metric, value in e["comparison"]["worst"].items()]
    verdict, detail = None, "no MONAI values to compare"
    if differences:
        value, metric, prediction = max(differences, key=lambda item: item[0])
        verdict = value <= TARGET_DIFFERENCE
        detail = f"largest: {value:.1e} ({metric}, {prediction})"
        if len(compared) < len(entries):
            detail += f"; {len(entries) - len(compared)} of {len(entries)} predictions without MONAI values"
    lines.append(f"{name}: values within {TARGET_DIFFERENCE:.0e} of MONAI: {_answer(verdict)} ({detail})")

    if kind == "tse":
        plausible = next((e for e in entries if e["prediction"] == "plausible"), None)
        verdict, detail = None, "plausible not run"
        if plausible is not None:
            text, value = _ratio(plausible["monai"], plausible["ours"], "seconds")
            detail = "MONAI not run or not measured"
            if value is not None:
                verdict = value >= TARGET_TSE_RATIO or (None if plausible["monai"].get("timed_out") else False)
                detail = f"{text} wall, {_ratio(plausible['monai'], plausible['ours'], 'cpu_seconds')[0]} CPU"
        lines.append(f"{name}: plausible >= {TARGET_TSE_RATIO:.0f}x faster than MONAI: {_answer(verdict)} ({detail})")
    return lines


def _choices(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"unknown {what}: {', '.join(unknown) or '(none)'} (expected {', '.join(allowed)})")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="space,tse", help="comma-separated: space, tse")
    parser.add_argument("--predictions", default=",".join(PREDICTIONS),
                        help=f"comma-separated, of: {', '.join(PREDICTIONS)} (default: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs of ours, the median is reported (default: 3 for plausible, 1 for the others)")
    parser.add_argument("--skip-monai", action="store_true", help="time ours only")
    parser.add_argument("--monai-timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="stop a MONAI run scoring longer than this, reported as '> N s' (0: no limit)")
    parser.add_argument("--ours-timeout", type=float, default=0.0, metavar="SECONDS",
                        help="the same for ours (default 0: no limit), and for the whole spider score process "
                             "(counted from its start)")
    parser.add_argument("--skip-whole-process", action="store_true",
                        help="do not time the whole process (spider score --workers 1 on .mha files)")
    parser.add_argument("--child", choices=("ours", "monai"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        _child(arguments.child, arguments.folder, arguments.repeat, arguments.result)
        return 0
    cases = _choices(arguments.cases, tuple(SEQUENCE), "case")
    predictions = _choices(arguments.predictions, PREDICTIONS, "prediction")
    print(f"load average before: {os.getloadavg()[0]:.2f} (CPUs: {os.cpu_count()}); each side pinned to one core; "
          f"seed {arguments.seed}")
    whole_command = None
    if not arguments.skip_whole_process:
        # The guard must never stop a benchmark run: a limit far above any timeout of ours.
        whole_command = spider_score_command(max(3600, math.ceil(arguments.ours_timeout) + 60))
        print("whole process: " + " ".join(Path(part).name if i == 0 else part
                                           for i, part in enumerate(whole_command))
              + " --reference REF --predictions PRED --out OUT --workers 1 (pinned to one core)")
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as scratch:
        for kind in cases:
            folder = Path(scratch) / kind
            folder.mkdir()
            reference, info = make_reference(kind, arguments.seed, folder)
            case = case_of(kind)
            if whole_command is not None:
                for sub in ("REF", "PRED"):
                    (folder / sub).mkdir()
                write_mha(reference, info["spacing_zyx_mm"], folder / "REF" / f"{case}.mha")
            structures = _structures(info["labels"])
            shape = "x".join(str(n) for n in info["shape"])
            spacing = "x".join(f"{s:.3g}" for s in info["spacing_zyx_mm"])
            print(f"\n{kind}: {shape} voxels (z, y, x) at {spacing} mm, {len(structures)} structures "
                  f"(levels + merged groups) compared on 4 metrics each")
            print(_text_row(list(COLUMNS)))
            entries: list[dict] = []
            plausible: dict | None = None
            plausible_whole: dict | None = None
            for name in predictions:
                prediction = make_prediction(name, reference, seed=arguments.seed)
                np.save(folder / "prediction.npy", prediction)
                matches = matched_labels(reference, prediction)
                prediction_mha = folder / "PRED" / f"{case}.mha"
                if whole_command is not None:
                    write_mha(prediction, info["spacing_zyx_mm"], prediction_mha)
                del prediction
                repeat = arguments.repeat or (3 if name == "plausible" else 1)
                ours = _spawn("ours", folder, repeat, arguments.ours_timeout)
                monai = None if arguments.skip_monai else _spawn("monai", folder, 1, arguments.monai_timeout)
                whole = None
                if whole_command is not None:
                    whole = run_whole_process(whole_command, folder, case, arguments.ours_timeout)
                    prediction_mha.unlink(missing_ok=True)
                if name == "plausible":
                    plausible, plausible_whole = ours, whole
                comparable = "failed" not in ours and not ours.get("timed_out")
                monai_values = monai if monai is not None and "values" in monai else None
                comparison = compare(ours, monai_values, structures, matches) if comparable else None
                entry = {"prediction": name, "ours": ours, "monai": monai, "comparison": comparison,
                         "rows": ours.get("rows"), "whole": whole}
                entry["over_plausible"] = _over_plausible(ours, plausible) if name != "plausible" or comparable \
                    else ("n/a", None)
                whole_measured = whole is not None and "failed" not in whole and not whole.get("timed_out")
                entry["whole_over_plausible"] = _over_plausible(whole, plausible_whole) \
                    if name != "plausible" or whole_measured or whole is None else ("n/a", None)
                entries.append(entry)
                print(_text_row(row_cells(entry)), flush=True)
                for side in (ours, monai, whole):
                    if side is not None and "failed" in side:
                        print(f"    {side['failed']}")
                for warning in (comparison["warnings"] if comparison else []) + \
                        (whole.get("warnings", []) if whole is not None else []):
                    print(f"    WARNING: {warning}")
                if whole is not None and "failed" not in whole:
                    print(f"    spider score: {whole['processes']} processes seen, largest VmHWM read "
                          f"{whole['polled_mb']:.0f} MB, wait4 peak {whole['reaped_mb']:.0f} MB"
                          + (" (stopped at the timeout)" if whole.get("timed_out") else ""))
                if comparable and len(ours["all_seconds"]) > 1:
                    print("    ours wall per run: " + ", ".join(f"{s:.2f}" for s in ours["all_seconds"])
                          + f"; {ours['rows']} rows")
            results[kind] = entries
            del reference

    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print("\nTimes in s, peak memory in MB (VmHWM, inputs and imports included; in parentheses the peak "
          "before scoring). Structures compared / skipped (matched another label) / skipped (edge-case value). "
          "spider score: the whole process (reading and checking the .mha files, scoring, writing metrics.json), "
          "wall time and the largest single process's peak.\n")
    print("| case | " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * (len(COLUMNS) + 1))
    for kind, entries in results.items():
        for entry in entries:
            print(f"| {kind} | " + " | ".join(row_cells(entry)) + " |")
    print()
    for kind, entries in results.items():
        for line in targets(kind, entries):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
