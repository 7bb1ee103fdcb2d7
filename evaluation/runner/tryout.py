"""`spider try`: run an algorithm image on every series of a SPIDER-layout folder, as the
organizer will (same runner, same flags, the phase's limits), then score what it wrote."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from challenge.labels import SCORED_GROUPS
from challenge.phases import Phase
from challenge.release import MASKS_DIR, SERIES_SUFFIX, read_release
from challenge.statuses import JobStatus
from evaluation.runner.docker_runner import CaseInput, JobResult, RunnerSettings, pin_image, run_cases
from evaluation.runner.errors import ImageNotFoundError, RunnerError

if TYPE_CHECKING:
    from evaluation.report import ScoreReport

JOBS_FILE = "jobs.json"
PREDICTIONS_FOLDER = "predictions"
JOBS_FOLDER = "jobs"
# What a previous try-out left in OUT, replaced by the next one.
SERVERS_FOLDER = "servers"
_OWN_OUTPUTS = (JOBS_FILE, PREDICTIONS_FOLDER, JOBS_FOLDER, SERVERS_FOLDER, "metrics.json", "cases.csv")


@dataclass(frozen=True)
class SeriesInput:
    """One series to run: its name (the case), its image and its reference mask (if any)."""

    name: str
    image_path: Path
    mask_path: Path | None


@dataclass(frozen=True)
class TryResult:
    image_id: str
    phase: Phase
    jobs: tuple[JobResult, ...]
    out_dir: Path
    jobs_path: Path
    scores: ScoreReport | None  # None when not scored (no masks/)
    scoring_note: str | None

    @property
    def all_succeeded(self) -> bool:
        return all(job.status is JobStatus.SUCCEEDED for job in self.jobs)


def list_series(data_dir: Path) -> list[SeriesInput]:
    """The series of a SPIDER-layout folder (images/, optional masks/), sorted by name."""
    release = read_release(data_dir, check_masks=False, require_masks=False).raise_for_problems()
    return [SeriesInput(s.name, s.image_path, s.mask_path) for s in release.series]


def resolve_image(client, image: str) -> str:
    """The id of IMAGE: a local tag or id, or a `docker save` tarball that is loaded first."""
    path = Path(image)
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise ImageNotFoundError(
                f"{path} is a file but not a tar archive; pass an image tag or a `docker save` tarball"
            )
        try:
            with open(path, "rb") as stream:
                loaded = client.images.load(stream)
        except Exception as error:  # docker.errors.APIError: not an image archive
            raise ImageNotFoundError(f"{path} could not be loaded as a `docker save` tarball: {error}") from error
        ids = sorted({image.id for image in loaded})
        if len(ids) != 1:
            raise ImageNotFoundError(
                f"{path} holds {len(ids)} images ({', '.join(ids) or 'none'}); save exactly one image "
                "(`docker save -o algorithm.tar TAG`)"
            )
        return ids[0]
    return pin_image(client, image)


def fit_to_engine(client, phase: Phase, *, progress: Callable[[str], None] = lambda _message: None) -> Phase:
    """`phase` with its CPU quota cut to what this engine has (a laptop may have fewer CPUs than
    the organizer's nodes; the engine refuses a larger quota). Says so through `progress`."""
    try:
        available = int(client.info().get("NCPU") or 0)
    except Exception:  # an engine that does not answer fails later with a clear error
        return phase
    if available and phase.cpus > available:
        progress(
            f"note: phase {phase.name!r} grants {phase.cpus:g} CPUs per case, this engine has {available}: "
            f"jobs run with {available} here (slower than on the organizer's machines)"
        )
        return dataclasses.replace(phase, cpus=float(available))
    return phase


def try_image(
    client,
    image: str,
    *,
    data_dir: Path,
    out_dir: Path,
    phase: Phase,
    settings: RunnerSettings | None = None,
    progress: Callable[[str], None] = lambda _message: None,
) -> TryResult:
    """Run IMAGE on each series of `data_dir` (one job each), write OUT/jobs.json, score.

    Valid outputs go to OUT/predictions/<series>.mha, each job's log and flags to
    OUT/jobs/<series>/; an invoke image serves all the series from one server (OUT/servers/<n>/
    holds its whole log), as the platform runs it. Scoring uses `spider score`'s library call;
    cases whose job failed are scored as missing with the job's reason.
    """
    data_dir, out_dir = Path(data_dir).resolve(), Path(out_dir).resolve()  # relative paths work
    series = list_series(data_dir)
    _check_out_dir(out_dir)
    image_id = resolve_image(client, image)
    _clear_out_dir(out_dir)
    phase = fit_to_engine(client, phase, progress=progress)
    progress(f"image {image_id}, phase {phase.describe()}, {len(series)} series")
    predictions_dir = out_dir / PREDICTIONS_FOLDER
    predictions_dir.mkdir(parents=True)
    def collect(job: JobResult) -> None:
        if job.prediction_path is not None:
            shutil.copyfile(job.prediction_path, predictions_dir / f"{job.case}{SERIES_SUFFIX}")
        progress(f"[{len(jobs) + 1}/{len(series)}] {job.case}: {job.status.value} in {job.seconds:.1f} s")
        jobs.append(job)

    jobs: list[JobResult] = []
    run_cases(
        client,
        image_id=image_id,
        cases=[CaseInput(item.name, item.image_path, out_dir / JOBS_FOLDER / item.name) for item in series],
        phase=phase,
        servers_dir=out_dir / SERVERS_FOLDER,
        settings=settings,
        on_result=collect,
        say=progress,
    )
    jobs_path = out_dir / JOBS_FILE
    jobs_path.write_text(
        json.dumps([job.as_record() for job in jobs], indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    scores, note = _score(data_dir, predictions_dir, out_dir, jobs,
                          scoring_time_limit_s=phase.scoring_time_limit_seconds)
    return TryResult(image_id, phase, tuple(jobs), out_dir, jobs_path, scores, note)


def _score(data_dir: Path, predictions_dir: Path, out_dir: Path, jobs: list[JobResult], *,
           scoring_time_limit_s: int):
    masks_dir = data_dir / MASKS_DIR
    if not masks_dir.is_dir():
        return None, f"not scored: {data_dir} has no {MASKS_DIR}/ folder"
    from evaluation.score import score_folders

    failure_reasons = {
        job.case: f"{job.status.reported.value}: {job.reason}" for job in jobs if job.prediction_path is None
    }
    scores = score_folders(
        reference_dir=masks_dir,
        predictions_dir=predictions_dir,
        out_dir=out_dir,
        profile="full",
        failure_reasons=failure_reasons,
        progress=False,
        scoring_time_limit_s=scoring_time_limit_s,
    )
    return scores, None


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RunnerError(f"--out {out_dir} is a file; give a folder")
    # A folder holding only what a try-out writes is an earlier try-out, also one that failed
    # before its first job (no jobs.json yet): it must not block the next.
    foreign = [entry.name for entry in out_dir.iterdir() if entry.name not in _OWN_OUTPUTS] if out_dir.is_dir() else []
    if foreign and not (out_dir / JOBS_FILE).is_file():
        raise RunnerError(
            f"--out {out_dir} is not empty and holds no earlier try-out ({JOBS_FILE}); give an empty or new folder"
        )


def _clear_out_dir(out_dir: Path) -> None:
    """Remove what an earlier try-out wrote (only its own files) and create the folder."""
    for name in _OWN_OUTPUTS:
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)

def format_report(result: TryResult) -> str:
    """The per-case table (status, seconds, peak memory, Dice per structure), the reasons of the
    cases that did not succeed, and where the logs and result files are."""
    from challenge.results import GROUP_LEVEL, column_name

    header = ["case", "status", "seconds", "peak memory"] + [f"Dice {group.value}" for group in SCORED_GROUPS]
    rows = [header]
    for job in result.jobs:
        row = [job.case, job.status.reported.value, f"{job.seconds:.1f}", _memory(job.peak_memory_bytes)]
        for group in SCORED_GROUPS:
            row.append(_dice(result.scores, job.case, column_name(group.value, GROUP_LEVEL, "dice")))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    failed = [job for job in result.jobs if job.status is not JobStatus.SUCCEEDED]
    if failed:
        lines.append("")
        lines += [f"{job.case}: {job.status.value}: {job.reason}" for job in failed]
    lines.append("")
    lines.append(f"logs: {result.out_dir / JOBS_FOLDER}/<case>/log.txt (flags applied: container.json)")
    if (result.out_dir / SERVERS_FOLDER).is_dir():
        lines.append(f"invoke servers: {result.out_dir / SERVERS_FOLDER}/<n>/log.txt (the whole log of each)")
    lines.append(f"jobs: {result.jobs_path}")
    if result.scores is not None:
        lines.append(f"scores: {result.out_dir / 'metrics.json'}, {result.out_dir / 'cases.csv'}")
    if result.scoring_note:
        lines.append(result.scoring_note)
    succeeded = sum(job.status is JobStatus.SUCCEEDED for job in result.jobs)
    lines.append(f"{succeeded} of {len(result.jobs)} cases succeeded under phase {result.phase.describe()}")
    return "\n".join(lines)


def _dice(scores, case: str, column: str) -> str:
    if scores is None:
        return "-"
    try:
        return f"{scores.value(case, column):.3f}"
    except KeyError:
        return "-"


def _memory(n_bytes: int | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 1024**2:.0f} MiB"
