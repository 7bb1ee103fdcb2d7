"""`spider gc evaluate-locally`: a `spider try` output as the platform's evaluation input, run with its flags.

`spider try` leaves OUT/jobs.json (one record per case) and OUT/predictions/<case>.mha. Here each
case becomes a job with fresh uuid pks, its prediction the job's output image at
/input/<job pk>/output/images/sagittal-spine-mr-segmentation/<output image pk>.mha, and
/input/predictions.json lists the jobs in the platform's shape. The evaluation image then runs
as the platform runs it: no network, /input read-only, /output and /tmp writable (the root file
system read-only, which is stricter), 8 GB memory without swap, 2 CPUs, a non-root user, a
3,600 s limit, and the phase's ground truth (if given) read-only at /opt/ml/input/data/ground_truth.
A failure is reported as the platform reports it: the last non-empty stderr line, "Time limit
exceeded", or the memory message.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from challenge.contract import OUTPUT_SOCKET
from challenge.errors import ConfigError
from challenge.phases import format_size
from challenge.release import SERIES_SUFFIX
from challenge.statuses import JobStatus
from evaluation.platform.columns import LeaderboardColumn, column_value, leaderboard_columns
from evaluation.platform.config import (
    INPUT_ROOT,
    MEASURED_MARK,
    METRICS_FILE,
    OUTPUT_ROOT,
    PLATFORM_GROUND_TRUTH,
    EvaluationConfig,
)
from evaluation.platform.errors import LocalEvaluationError, PlatformError
from evaluation.platform.metrics import non_finite_paths
from evaluation.platform.predictions import JOB_OUTPUT_FOLDER, PREDICTIONS_FILE, job_entry

PLATFORM_MEMORY_BYTES = 8 * 1024**3
PLATFORM_CPUS = 2.0
PLATFORM_TIME_LIMIT_S = 3600
PIDS_LIMIT = 1024
"""Processes and threads (scoring runs a forkserver and a process per case, each with its BLAS threads)."""
NO_ERRORS = "No errors were reported in the logs."
OOM_MESSAGE = "The container was killed as it exceeded its memory limit"
TIME_MESSAGE = "Time limit exceeded"
JOBS_FILE = "jobs.json"
PREDICTIONS_FOLDER = "predictions"
LOG_FILE = "log.txt"


@dataclass(frozen=True)
class TryOutCase:
    """One case of a `spider try` output: its prediction and how long its job ran."""

    case: str
    prediction: Path
    seconds: float | None


@dataclass(frozen=True)
class ContainerRun:
    """How the evaluation container ended."""

    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    oom_killed: bool

    @property
    def last_stderr_line(self) -> str:
        """What the platform shows the submitter: the last non-empty stderr line, or its stock sentence."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else NO_ERRORS


@dataclass(frozen=True)
class LocalEvaluation:
    """A successful local evaluation: the document the image wrote and its leaderboard columns."""

    image_id: str
    config: EvaluationConfig
    document: dict
    columns: tuple[tuple[LeaderboardColumn, float], ...]
    jobs: dict[str, str]
    seconds: float
    peak_memory_bytes: int | None
    metrics_path: Path | None


# ---- the try-out --------------------------------------------------------------------------


def read_try_out(folder: Path) -> list[TryOutCase]:
    """The cases of a `spider try` output; LocalEvaluationError when a job did not succeed (the platform
    then never evaluates) or a prediction is missing."""
    folder = Path(folder)
    jobs_path = folder / JOBS_FILE
    if not jobs_path.is_file():
        raise LocalEvaluationError(f"--predictions-from {folder}: expected a `spider try` output with {JOBS_FILE}, "
                                   f"found {'no such folder' if not folder.is_dir() else f'no {JOBS_FILE}'}")
    try:
        records = json.loads(jobs_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LocalEvaluationError(f"{jobs_path}: expected JSON, found text that is not ({error})") from None
    if not isinstance(records, list) or not records or not all(
            isinstance(r, dict) and isinstance(r.get("case"), str) and isinstance(r.get("status"), str)
            for r in records):
        raise LocalEvaluationError(f"{jobs_path}: expected a non-empty list of job records with 'case' and 'status', "
                                   f"found {str(records)[:120]}")
    failed = [f"{r['case']} ({r['status']})" for r in records if r["status"] != JobStatus.SUCCEEDED.value]
    if failed:
        raise LocalEvaluationError(
            f"The algorithm failed on one or more cases: {', '.join(failed)}. The platform evaluates a submission only "
            "when every job succeeded; fix the algorithm and run `spider try` again")
    cases = []
    for record in records:
        prediction = folder / PREDICTIONS_FOLDER / f"{record['case']}{SERIES_SUFFIX}"
        if not prediction.is_file():
            raise LocalEvaluationError(f"{folder}: job {record['case']} succeeded, expected its prediction at "
                                       f"{prediction}, found no such file")
        seconds = record.get("seconds")
        cases.append(TryOutCase(record["case"], prediction,
                                float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else None))
    return cases


def write_platform_input(cases: list[TryOutCase], input_dir: Path, *, algorithm_image: str) -> dict[str, str]:
    """Lay out `input_dir` as the platform's /input (see the module doc); returns job pk -> case."""
    input_dir = Path(input_dir)
    input_dir.mkdir(parents=True)
    entries = []
    jobs = {}
    for item in cases:
        pk, input_pk, output_pk = (str(uuid.uuid4()) for _ in range(3))
        target = input_dir / pk / JOB_OUTPUT_FOLDER / OUTPUT_SOCKET.relative_path / f"{output_pk}{SERIES_SUFFIX}"
        target.parent.mkdir(parents=True)
        shutil.copyfile(item.prediction, target)
        entries.append(job_entry(pk=pk, input_image_pk=input_pk, input_image_name=f"{item.case}{SERIES_SUFFIX}",
                                 output_image_pk=output_pk, exec_seconds=item.seconds, algorithm_image=algorithm_image))
        jobs[pk] = item.case
    (input_dir / PREDICTIONS_FILE).write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    for folder, _subfolders, files in os.walk(input_dir):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return jobs


# ---- the container ------------------------------------------------------------------------


def run_evaluation(client, image_id: str, *, input_dir: Path, output_dir: Path, tmp_dir: Path,
                   ground_truth: Path | None, time_limit_s: int = PLATFORM_TIME_LIMIT_S,
                   memory_bytes: int = PLATFORM_MEMORY_BYTES, cpus: float = PLATFORM_CPUS,
                   user: str | None = None) -> ContainerRun:
    """Run the image once on prepared folders with the platform's flags; never raises for what it does."""
    import docker.errors
    import requests
    from docker.types import Mount

    from evaluation.runner.docker_runner import PLATFORM_ENVIRONMENT, default_user

    user = user or default_user()
    uid, gid = (int(part) for part in user.split(":"))
    for folder, mode in ((output_dir, 0o755), (tmp_dir, 0o1777)):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(folder, uid, gid)
        os.chmod(folder, mode)
    mounts = [Mount(target=str(INPUT_ROOT), source=str(Path(input_dir).resolve()), type="bind", read_only=True),
              Mount(target=str(OUTPUT_ROOT), source=str(Path(output_dir).resolve()), type="bind", read_only=False),
              Mount(target="/tmp", source=str(Path(tmp_dir).resolve()), type="bind", read_only=False)]
    if ground_truth is not None:
        mounts.append(Mount(target=str(PLATFORM_GROUND_TRUTH), source=str(Path(ground_truth).resolve()), type="bind",
                            read_only=True))
    try:
        container = client.containers.create(
            image=image_id, user=user, network_mode="none", read_only=True, mounts=mounts, cap_drop=["ALL"],
            security_opt=["no-new-privileges"], mem_limit=memory_bytes, memswap_limit=memory_bytes,
            nano_cpus=int(round(cpus * 1e9)), pids_limit=PIDS_LIMIT, init=True, shm_size=memory_bytes // 2,
            environment={**PLATFORM_ENVIRONMENT, "HOME": "/tmp"}, detach=True,
        )
    except docker.errors.APIError as error:
        raise LocalEvaluationError(f"the engine refused to create the evaluation container: {error}") from error
    began = time.monotonic()
    timed_out = False
    try:
        container.start()
        try:
            exit_code: int | None = int(container.wait(timeout=time_limit_s)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out, exit_code = True, None
            try:
                container.kill()
                container.wait(timeout=30)
            except (docker.errors.APIError, requests.exceptions.RequestException):
                pass  # it ended meanwhile, or the engine is slow: removed by force below
        seconds = time.monotonic() - began
        container.reload()
        oom_killed = bool((container.attrs.get("State") or {}).get("OOMKilled"))
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
    finally:
        container.remove(force=True)
    return ContainerRun(exit_code, stdout, stderr, seconds, timed_out, oom_killed)


def _failure(run: ContainerRun, *, time_limit_s: int, memory_bytes: int) -> LocalEvaluationError | None:
    if run.timed_out:
        return LocalEvaluationError(f"{TIME_MESSAGE}: the evaluation ran longer than {time_limit_s} s",
                                    last_stderr_line=TIME_MESSAGE)
    if run.oom_killed or run.exit_code == 137:
        return LocalEvaluationError(f"{OOM_MESSAGE} ({format_size(memory_bytes)})", exit_code=run.exit_code,
                                    last_stderr_line=OOM_MESSAGE)
    if run.exit_code != 0:
        return LocalEvaluationError(f"the evaluation failed with exit code {run.exit_code}; the platform would show: "
                                    f"{run.last_stderr_line}", exit_code=run.exit_code,
                                    last_stderr_line=run.last_stderr_line)
    return None


def measured(stdout: str) -> dict:
    """What the entry point reported of its time and memory (its MEASURED_MARK line), {} without one."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MEASURED_MARK):
            try:
                value = json.loads(line[len(MEASURED_MARK):])
            except json.JSONDecodeError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def read_metrics(path: Path) -> dict:
    """The metrics.json the image wrote, checked as the platform reads it (finite numbers only)."""
    if not path.is_file():
        raise LocalEvaluationError(f"the evaluation exited 0 without writing {OUTPUT_ROOT}/{METRICS_FILE}")

    def refuse(constant: str):
        raise LocalEvaluationError(f"{path}: holds {constant}, which the platform reads as null")

    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LocalEvaluationError(f"{path}: expected JSON, found text that is not ({error})") from None
    left = non_finite_paths(document)
    if not isinstance(document, dict) or left:
        raise LocalEvaluationError(f"{path}: expected an object of finite numbers, found non-finite values at "
                                   f"{', '.join(left[:5]) or 'the top level'}")
    return document


# ---- the whole run ------------------------------------------------------------------------


def image_settings(client, image: str) -> tuple[str, EvaluationConfig]:
    """The id and settings (from its labels) of a local evaluation image."""
    from evaluation.runner.docker_runner import pin_image

    image_id = pin_image(client, image)
    labels = (client.images.get(image_id).attrs.get("Config") or {}).get("Labels") or {}
    return image_id, EvaluationConfig.from_labels(labels, image=image)


def ranked_columns(config: EvaluationConfig) -> tuple[LeaderboardColumn, ...]:
    from challenge.ranking import get_ranking

    try:
        ranking = get_ranking(config.phase)
    except ConfigError:
        ranking = None
    return leaderboard_columns(config.profile, ranking)


def _engine_cpus(client, cpus: float, progress: Callable[[str], None]) -> float:
    try:
        available = int(client.info().get("NCPU") or 0)
    except Exception:  # an engine that does not answer fails on create with a clear error
        return cpus
    if available and cpus > available:
        progress(f"note: the platform grants {cpus:g} CPUs, this engine has {available}: the evaluation runs with "
                 f"{available} here (slower than on the platform)")
        return float(available)
    return cpus


def evaluate_locally(
    client,
    *,
    image: str,
    try_out: Path,
    ground_truth: Path | None = None,
    out_dir: Path | None = None,
    time_limit_s: int = PLATFORM_TIME_LIMIT_S,
    memory_bytes: int = PLATFORM_MEMORY_BYTES,
    cpus: float = PLATFORM_CPUS,
    progress: Callable[[str], None] = lambda _message: None,
) -> LocalEvaluation:
    """Evaluate a `spider try` output with the evaluation image `image` (see the module doc).

    `out_dir` (new or empty) keeps input/ (predictions.json and the jobs' files), output/metrics.json
    and log.txt; without it they go to a temporary folder that is removed. Raises LocalEvaluationError
    with what the platform would show when the evaluation fails.
    """
    image_id, config = image_settings(client, image)
    if ground_truth is None and not config.ground_truth_cases:
        raise LocalEvaluationError(f"image {image} has no ground truth baked in: expected --ground-truth DIR (the "
                                   "phase's ground truth, a folder with masks/<case>.mha), found none")
    if ground_truth is not None and config.ground_truth_cases:
        raise LocalEvaluationError(f"image {image} has {config.ground_truth_cases} ground-truth cases baked in and "
                                   "--ground-truth was given too: expected one ground truth, found two; drop one")
    if ground_truth is not None and not Path(ground_truth).is_dir():
        raise LocalEvaluationError(f"--ground-truth {ground_truth}: expected a folder with masks/<case>.mha, "
                                   "found no such folder")
    cases = read_try_out(try_out)
    cpus = _engine_cpus(client, cpus, progress)
    if out_dir is not None:
        out_dir = Path(out_dir)
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise LocalEvaluationError(f"--out {out_dir}: expected a new or empty folder, found one with files")
    with tempfile.TemporaryDirectory(prefix="spider-gc-evaluation-") as scratch:
        root = out_dir if out_dir is not None else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        jobs = write_platform_input(cases, root / "input", algorithm_image=f"Algorithm Image local-try-out "
                                    f"(SHA256: {image_id.split(':')[-1][:8]})")
        progress(f"evaluating {len(jobs)} jobs with {image} (profile {config.profile}, phase {config.phase}; "
                 f"{format_size(memory_bytes)}, {cpus:g} CPUs, {time_limit_s} s) ...")
        run = run_evaluation(client, image_id, input_dir=root / "input", output_dir=root / "output",
                             tmp_dir=Path(scratch) / "tmp", ground_truth=ground_truth, time_limit_s=time_limit_s,
                             memory_bytes=memory_bytes, cpus=cpus)
        (root / LOG_FILE).write_text(f"--- stdout ---\n{run.stdout}--- stderr ---\n{run.stderr}", encoding="utf-8")
        failure = _failure(run, time_limit_s=time_limit_s, memory_bytes=memory_bytes)
        if failure is not None:
            raise failure
        metrics_path = root / "output" / METRICS_FILE
        document = read_metrics(metrics_path)
    try:
        columns = tuple((column, column_value(document, column.path)) for column in ranked_columns(config))
    except PlatformError as error:
        raise LocalEvaluationError(str(error)) from error
    stats = measured(run.stdout)
    peak = stats.get("peak_memory_bytes")
    return LocalEvaluation(image_id, config, document, columns, jobs, round(run.seconds, 3),
                           int(peak) if isinstance(peak, int) else None,
                           metrics_path if out_dir is not None else None)


def format_result(result: LocalEvaluation) -> str:
    """The leaderboard columns (the platform's score_jsonpath and value) and what the run measured."""
    width = max(len(column.path) for column, _ in result.columns)
    lines = [f"{'column (score_jsonpath)'.ljust(width)}  value", f"{'-' * width}  -----"]
    lines += [f"{column.path.ljust(width)}  {value:.6g}  ({column.direction} is better)"
              for column, value in result.columns]
    counts = result.document.get("counts") or {}
    peak = "-" if result.peak_memory_bytes is None else f"{result.peak_memory_bytes / 1024**2:.0f} MiB"
    lines += ["", f"profile {result.config.profile}, phase {result.config.phase}, rules {result.config.rules_version}: "
              + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
              f"evaluation container: {result.seconds:.1f} s, peak memory {peak}"]
    if result.metrics_path is not None:
        lines.append(f"metrics: {result.metrics_path}")
    return "\n".join(lines)
