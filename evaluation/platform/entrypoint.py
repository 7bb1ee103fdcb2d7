"""The evaluation container's program: /input/predictions.json and the jobs' outputs -> /output/metrics.json.

The platform runs it once per submission, after every algorithm job succeeded. It reads the job
list, finds each job's output image (/input/<job pk>/output/<socket path>/<image pk>.mha) and the
case it belongs to (the job's input image name), finds the ground truth (the phase's tarball at
/opt/ml/input/data/ground_truth/, or the one baked into the image; a SPIDER-layout folder with
masks/<case>.mha), and scores with `spider score`'s own call (evaluation.score.score_folders) on
a folder of the outputs renamed to their cases: same rules, same per-case guard, same report. A
ground-truth case that no job ran on is scored by the missing-case rule. metrics.json is that
report with finite numbers only (evaluation.platform.metrics).

It fails, with a non-zero exit and one readable last line on stderr (what the platform shows),
when predictions.json is missing or malformed, a job's output image is missing, a job's case has
no ground truth, or a prediction is not on its ground truth's voxel grid (a grid mismatch on the
platform means an orientation or resampling error that a score of 0 would hide).

Measured (Docker 20.10, 2 CPUs, under the platform's 8 GB / 2 CPU limits; peak memory is the
container's memory cgroup high-water mark): three tiny test series (6 x 20 x 24 voxels) 5 s of
scoring, 173 MiB; eight full-size synthetic series (six TSE up to 528 x 528 x 15, two T2 SPACE up
to 688 x 688 x 198) 16 s in the container, 1.2 GiB. Well within the platform's 3,600 s and 8 GB
(docs/grand-challenge.md has the figures and the extrapolation to the 97 hidden series).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import stat
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from challenge import images
from challenge.errors import DataError, SpiderError
from challenge.geometry import Geometry
from challenge.release import MASKS_DIR, SERIES_SUFFIX, case_name
from challenge.rules import fov_diagonal_mm
from challenge.statuses import CaseStatus
from challenge.text import shown
from evaluation.platform.config import (
    BAKED_GROUND_TRUTH,
    CONFIG_PATH,
    INPUT_ROOT,
    MEASURED_MARK,
    METRICS_FILE,
    OUTPUT_ROOT,
    PLATFORM_GROUND_TRUTH,
    EvaluationConfig,
)
from evaluation.platform.errors import GroundTruthError, JobOutputError
from evaluation.platform.metrics import metrics_text, platform_document
from evaluation.platform.predictions import PREDICTIONS_FILE, Job, read_predictions
from evaluation.report import ScoreReport
from evaluation.score import read_reference, score_folders

NO_JOB_REASON = "no algorithm job ran on this case (it is not in predictions.json)"
FAILURE_PREFIX = "evaluation failed: "
LAST_LINE_LIMIT = 600
_CGROUP_PEAK_FILES = ("/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes")


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found: the report as scored, the document written, and how long it took."""

    report: ScoreReport
    document: dict
    metrics_path: Path
    seconds: float


# ---- ground truth -------------------------------------------------------------------------


def _has_entries(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def find_ground_truth(platform_dir: Path, baked_dir: Path) -> Path:
    """The masks/ folder of the one ground truth there is: the phase's (extracted by the platform) or
    the image's own. GroundTruthError when there is none, or both, or one without masks/."""
    platform_dir, baked_dir = Path(platform_dir), Path(baked_dir)
    found = []
    places = ((platform_dir, "the phase's ground truth"), (baked_dir, "the ground truth baked into the image"))
    for folder, what in places:
        if not _has_entries(folder):
            continue
        masks = folder / MASKS_DIR
        if not masks.is_dir():
            top_level = sum(1 for entry in folder.iterdir() if entry.name.endswith(SERIES_SUFFIX))
            hint = (f" ({top_level} {SERIES_SUFFIX} files at its top level: put them in {MASKS_DIR}/)"
                    if top_level else "")
            raise GroundTruthError(f"{what} at {folder}: expected a SPIDER-layout folder with "
                                   f"{MASKS_DIR}/<case>{SERIES_SUFFIX}, found no {MASKS_DIR}/ folder{hint}")
        found.append(masks)
    if not found:
        raise GroundTruthError(
            f"no ground truth: expected {MASKS_DIR}/<case>{SERIES_SUFFIX} in {platform_dir} (the phase's ground-truth "
            f"tarball) or in {baked_dir} (baked into the image with `spider gc evaluation-image --ground-truth`), "
            "found neither")
    if len(found) > 1:
        raise GroundTruthError(
            f"expected one ground truth, found two: the phase's at {platform_dir} and one baked into the image at "
            f"{baked_dir}; remove the phase's ground truth or rebuild the image without --ground-truth")
    return found[0]


def ground_truth_cases(masks_dir: Path) -> dict[str, Path]:
    """Case -> reference mask of a masks/ folder; GroundTruthError when it holds none."""
    cases = {name: path for path in sorted(Path(masks_dir).iterdir()) if (name := case_name(path.name)) is not None}
    if not cases:
        raise GroundTruthError(f"ground truth {masks_dir}: expected reference masks <case>{SERIES_SUFFIX}, found none")
    return cases


# ---- the jobs' outputs --------------------------------------------------------------------


def job_output(job: Job, input_dir: Path) -> Path:
    """The job's output image: <image pk>.mha in its socket folder (else the folder's only .mha file)."""
    expected = job.output_path(input_dir)
    folder = expected.parent
    if expected.is_symlink() or (expected.exists() and not expected.is_file()):
        raise JobOutputError(f"job {job.pk}: expected its output image {expected} to be a regular file, found "
                             f"{'a symbolic link' if expected.is_symlink() else 'something else'}")
    if expected.is_file():
        return expected
    if not folder.is_dir():
        raise JobOutputError(f"job {job.pk}: expected its output image at {expected}, found no folder "
                             f"{folder.relative_to(input_dir)}")
    entries = sorted(folder.iterdir())
    images = [path for path in entries if path.name.endswith(SERIES_SUFFIX)]
    if len(images) == 1 and stat.S_ISREG(os.lstat(images[0]).st_mode):
        return images[0]
    if images:
        found = f"{len(images)} {SERIES_SUFFIX} entries there"
    elif entries:
        found = f"other files only ({', '.join(path.name for path in entries[:3])})"
    else:
        found = "an empty folder"
    raise JobOutputError(f"job {job.pk}: expected its output image at {expected}, found {found}")


def check_grid(job: Job, prediction: Path, reference: Geometry) -> None:
    """JobOutputError when the prediction's header declares another voxel grid than its ground truth's.
    An unreadable header is left to scoring, which scores the case as invalid (as `spider score` does)."""
    try:
        geometry = images.read_header(prediction, shown_as=f"the output of job {job.pk}")
    except DataError:
        return
    differences = reference.differences(geometry)
    if differences:
        raise JobOutputError(f"job {job.pk} (input image {job.input_image_name!r}): expected its output on the "
                             f"ground truth's voxel grid, found another: {'; '.join(differences)}")


# ---- evaluation ---------------------------------------------------------------------------


def evaluate(config: EvaluationConfig, *, input_dir: Path, output_dir: Path, platform_ground_truth: Path,
             baked_ground_truth: Path, work_dir: Path, log=print) -> Evaluation:
    """Score the jobs of `input_dir` and write output_dir/metrics.json (see the module doc)."""
    started = time.monotonic()
    input_dir, output_dir, work_dir = Path(input_dir), Path(output_dir), Path(work_dir)
    jobs = read_predictions(input_dir / PREDICTIONS_FILE)
    masks_dir = find_ground_truth(platform_ground_truth, baked_ground_truth)
    references = ground_truth_cases(masks_dir)
    log(f"[spider] {len(jobs)} jobs; ground truth {masks_dir} ({len(references)} cases); profile {config.profile}, "
        f"phase {config.phase}, rules {config.rules_version}")
    geometries = {}
    for case, path in references.items():
        try:
            geometries[case] = images.read_header(path, shown_as=f"reference mask {path.name}")
        except DataError as error:
            raise GroundTruthError(str(error)) from error
    predictions_dir = work_dir / "predictions"
    predictions_dir.mkdir(parents=True)
    for job in jobs:
        if job.case not in references:
            raise GroundTruthError(f"job {job.pk}: its input image {job.input_image_name!r} names the case "
                                   f"{job.case!r}, expected a ground-truth mask {MASKS_DIR}/{job.case}{SERIES_SUFFIX}, "
                                   "found none")
        source = job_output(job, input_dir)
        check_grid(job, source, geometries[job.case])
        shutil.copyfile(source, predictions_dir / f"{job.case}{SERIES_SUFFIX}")
    ran = {job.case for job in jobs}
    report = score_folders(
        masks_dir, predictions_dir, work_dir / "scores",
        profile=config.profile,
        workers=config.workers,
        progress=False,
        failure_reasons={case: NO_JOB_REASON for case in references if case not in ran},
        scoring_time_limit_s=config.scoring_time_limit_s,
    )
    fov = {case: fov_diagonal_mm(geometry.shape_zyx, geometry.spacing_zyx_mm) for case, geometry in geometries.items()}
    document = platform_document(report, fov_diagonal_mm=fov, phase=config.phase, case_values=config.case_values)
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = output_dir / METRICS_FILE
    metrics_path.write_text(metrics_text(document), encoding="utf-8", newline="\n")
    counts = {status.value: sum(o.status is status for o in report.cases) for status in CaseStatus}
    log(f"[spider] scored {len(report.cases)} cases: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    for outcome in report.cases:
        if outcome.status is not CaseStatus.SCORED:
            log(f"[spider]   {outcome.case}: {outcome.status.value}: {outcome.reason}")
    seconds = time.monotonic() - started
    log(f"[spider] wrote {metrics_path} in {seconds:.1f} s")
    return Evaluation(report, document, metrics_path, seconds)


def check_image(config: EvaluationConfig, baked_ground_truth: Path) -> int:
    """What the image build runs: the settings read, and every baked reference mask readable and in the
    label map. Returns the number of baked cases."""
    if not _has_entries(Path(baked_ground_truth)):
        cases = {}
    else:
        cases = ground_truth_cases(Path(baked_ground_truth) / MASKS_DIR)
        for path in cases.values():
            try:
                read_reference(path)
            except DataError as error:
                raise GroundTruthError(str(error)) from error
    if len(cases) != config.ground_truth_cases:
        raise GroundTruthError(f"expected {config.ground_truth_cases} baked ground-truth cases (the image's "
                               f"settings), found {len(cases)}")
    return len(cases)


def peak_memory() -> tuple[int | None, str]:
    """The container's peak memory in bytes (its memory cgroup's high-water mark), else this process's
    and its largest child's peak resident set; and which of the two it is."""
    for path in _CGROUP_PEAK_FILES:
        try:
            return int(Path(path).read_text().strip()), "cgroup"
        except (OSError, ValueError):
            continue
    kib = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return kib * 1024, "rusage"


# ---- the program --------------------------------------------------------------------------


def _fail(message: str) -> int:
    """One line on stderr, the last one: what the platform shows the submitter."""
    sys.stdout.flush()
    sys.stderr.flush()
    print(FAILURE_PREFIX + shown(" ".join(message.split()), limit=LAST_LINE_LIMIT), file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.platform.entrypoint",
        description="Score the platform's /input (predictions.json and job outputs) into /output/metrics.json.",
    )
    parser.add_argument("--config", type=Path, default=Path(CONFIG_PATH), help="the image's settings")
    parser.add_argument("--input", type=Path, default=Path(INPUT_ROOT), help="the platform's input folder")
    parser.add_argument("--output", type=Path, default=Path(OUTPUT_ROOT), help="where metrics.json goes")
    parser.add_argument("--ground-truth", type=Path, default=Path(PLATFORM_GROUND_TRUTH),
                        help="where the platform extracts the phase's ground truth")
    parser.add_argument("--baked-ground-truth", type=Path, default=Path(BAKED_GROUND_TRUTH),
                        help="ground truth baked into the image")
    parser.add_argument("--check", action="store_true",
                        help="only check the settings and the baked ground truth (the image build runs this)")
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    try:
        config = EvaluationConfig.read(arguments.config)
        if arguments.check:
            cases = check_image(config, arguments.baked_ground_truth)
            print(f"[spider] evaluation image ready: profile {config.profile}, phase {config.phase}, "
                  f"{cases} baked ground-truth cases")
            return 0
        with tempfile.TemporaryDirectory(prefix="spider-evaluation-") as work:
            result = evaluate(config, input_dir=arguments.input, output_dir=arguments.output,
                              platform_ground_truth=arguments.ground_truth,
                              baked_ground_truth=arguments.baked_ground_truth, work_dir=Path(work))
    except SpiderError as error:
        return _fail(str(error))
    except Exception as error:  # a bug: the trace for the organizers' log, one line for the submitter
        traceback.print_exc()
        return _fail(f"internal error ({type(error).__name__}: {error}); please report it to the organizers")
    peak, source = peak_memory()
    measured = {"cases": len(result.report.cases), "seconds": round(time.monotonic() - started, 3),
                "peak_memory_bytes": peak, "peak_memory_source": source}
    print(MEASURED_MARK + json.dumps(measured, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
