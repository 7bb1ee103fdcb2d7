"""The evaluation engine: claims jobs, runs and scores them through an executor, survives crashes.

Loop: take scorable jobs, then runnable jobs, up to the executor's capacity (atomic claims with
leases, see submissions.claims); wait for any task; store its outcome in its own transaction;
score each finished run at once; write a submission's metrics.json when its last job is scored.
Leases are renewed while tasks run.

Crash safety comes from the order of writes: a run's outcome is committed before it is scored,
a case's result rows and its "scored" mark are committed together, and metrics.json is written
(atomically) from the committed rows before the submission is marked completed. An engine killed
at any point (SIGKILL included) leaves jobs that are pending, running under a lease that will
expire (a retry, as a new attempt in a fresh folder), finished but unscored (scored from the
stored output, never run again) or scored (never touched again).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from submissions import claims
from submissions.claims import ClaimedJob
from submissions.db import Registry
from submissions.errors import EngineError
from submissions.executors import SCORING_RESOURCES, Executor, Resources
from submissions.jobs import (
    CaseScore,
    JobFunction,
    JobOutcome,
    JobSpec,
    ScoreFunction,
    ScoreSpec,
    run_container_job,
)
from submissions.layout import job_attempt_dir
from submissions.metrics import write_metrics

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
# Tasks that raise (an engine or node problem, not a container result) this many times in a row
# stop the engine: it is better to stop with jobs pending than to burn every job's attempts.
MAX_CONSECUTIVE_TASK_ERRORS = 3


def _default_score_function() -> ScoreFunction:
    from submissions.scoring import score_job

    return score_job


@dataclass
class EngineReport:
    """What one engine run did."""

    runs: int = 0
    scored: int = 0
    retried_later: int = 0
    completed: list[int] = field(default_factory=list)
    failed_after_attempts: list[int] = field(default_factory=list)
    lost_leases: int = 0
    held_by_others: int = 0  # jobs left to other engines (their leases had not expired)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Task:
    kind: str  # "run" or "score"
    job: ClaimedJob


def evaluate(
    registry: Registry,
    executor: Executor,
    *,
    submission_ids: list[int] | None = None,
    job_function: JobFunction = run_container_job,
    score_function: ScoreFunction | None = None,
    scoring_only: bool = False,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    progress: Callable[[str], None] | None = None,
) -> EngineReport:
    """Run and score every job of `submission_ids` (None: of every unfinished submission) not done yet.

    Returns when no job in scope is left that this engine could take; jobs held by other live
    engines are left to them. `scoring_only` never starts a container (used by rescore).
    """
    if lease_seconds <= 0:
        raise EngineError(f"lease_seconds must be larger than 0, found {lease_seconds}")
    score_function = score_function or _default_score_function()
    say = progress or (lambda _message: None)
    owner = claims.new_owner()
    report = EngineReport()
    began = time.monotonic()
    renew_every = max(0.05, lease_seconds / 3)
    in_flight: dict[Future, _Task] = {}
    # Jobs whose task raised in this run are not taken again by it: a node or engine problem must
    # not burn a job's attempts in a tight loop. They wait for the next run (or another engine).
    raised: set[int] = set()
    consecutive_errors = 0
    stop_error: str | None = None
    claims.expire_dead_local_leases(registry)
    try:
        for submission_id in claims.ready_to_complete(registry, submission_ids):
            _complete(registry, submission_id, report, say)
        last_renewal = time.monotonic()
        while True:
            if stop_error is None:
                if not scoring_only:
                    report.failed_after_attempts += claims.fail_exhausted(
                        registry, max_attempts=max_attempts, submission_ids=submission_ids
                    )
                room = executor.capacity - len(in_flight)
                for job in claims.claim_scores(registry, owner, limit=room, lease_seconds=lease_seconds,
                                               submission_ids=submission_ids, exclude=raised):
                    _dispatch_score(executor, score_function, job, in_flight)
                room = executor.capacity - len(in_flight)
                if not scoring_only:
                    for job in claims.claim_runs(registry, owner, limit=room, lease_seconds=lease_seconds,
                                                 submission_ids=submission_ids, exclude=raised):
                        _dispatch_run(executor, registry, job_function, job, in_flight)
                        say(f"submission {job.submission_id} case {job.case}: started (attempt {job.attempt})")
            if not in_flight:
                break
            done, _ = wait(list(in_flight), timeout=renew_every, return_when=FIRST_COMPLETED)
            for future in done:
                task = in_flight.pop(future)
                error = future.exception()
                if error is not None:
                    consecutive_errors += 1
                    if _task_failed(registry, owner, task, error, max_attempts, report, say):
                        raised.add(task.job.job_id)
                    if consecutive_errors >= MAX_CONSECUTIVE_TASK_ERRORS and stop_error is None:
                        stop_error = f"{consecutive_errors} tasks in a row raised; the last: {error!r}"
                    continue
                consecutive_errors = 0
                if task.kind == "run":
                    _run_finished(registry, owner, executor, score_function, task.job, future.result(), lease_seconds, in_flight, report, say)
                else:
                    _score_finished(registry, owner, task.job, future.result(), report, say)
            if in_flight and time.monotonic() - last_renewal >= renew_every:
                claims.renew(registry, owner, {task.job.job_id for task in in_flight.values()}, lease_seconds=lease_seconds)
                last_renewal = time.monotonic()
    except BaseException:
        # Interrupted (Ctrl-C, an error): give the jobs back now rather than when leases expire.
        for task in in_flight.values():
            try:
                claims.release(registry, owner, task.job.job_id, reason="the engine was interrupted")
            except Exception:
                pass
        raise
    report.seconds = time.monotonic() - began
    report.held_by_others = claims.held_elsewhere(registry, owner, submission_ids=submission_ids)
    if stop_error is not None:
        raise EngineError(f"the engine stopped: {stop_error}. Jobs not done stay pending; fix the cause and run it again.")
    return report


def _dispatch_run(executor: Executor, registry: Registry, job_function: JobFunction, job: ClaimedJob, in_flight) -> None:
    data_dir = Path(job.data_dir)
    spec = JobSpec(
        job_id=job.job_id,
        submission_id=job.submission_id,
        case=job.case,
        attempt=job.attempt,
        image_digest=job.image_digest,
        image_archive=job.image_archive,
        input_image=str(data_dir / "images" / f"{job.case}.mha"),
        job_dir=str(job_attempt_dir(registry.work_dir, job.submission_id, job.job_id, job.attempt)),
        phase=job.phase,
    )
    resources = Resources(cpus=job.phase.cpus, memory_bytes=job.phase.memory_bytes, gpus=job.phase.gpus)
    in_flight[executor.submit(job_function, spec, resources=resources)] = _Task("run", job)


def _dispatch_score(executor: Executor, score_function: ScoreFunction, job: ClaimedJob, in_flight) -> None:
    spec = ScoreSpec(
        job_id=job.job_id,
        case=job.case,
        reference_mask=str(Path(job.data_dir) / "masks" / f"{job.case}.mha"),
        job_status=job.status,
        reason=job.reason,
        output_path=job.output_path,
    )
    in_flight[executor.submit(score_function, spec, resources=SCORING_RESOURCES)] = _Task("score", job)


def _run_finished(registry, owner, executor, score_function, job: ClaimedJob, outcome: JobOutcome, lease_seconds, in_flight, report, say) -> None:
    if not claims.record_run(registry, owner, job.job_id, outcome, lease_seconds=lease_seconds):
        report.lost_leases += 1
        say(f"submission {job.submission_id} case {job.case}: lease lost; another engine took the job over")
        return
    report.runs += 1
    say(f"submission {job.submission_id} case {job.case}: {outcome.status} in {outcome.seconds:.1f} s")
    finished = dataclasses.replace(job, status=outcome.status, reason=outcome.reason, output_path=outcome.output_path)
    _dispatch_score(executor, score_function, finished, in_flight)


def _score_finished(registry, owner, job: ClaimedJob, score: CaseScore, report, say) -> None:
    if not claims.record_score(registry, owner, job, score):
        report.lost_leases += 1
        return
    report.scored += 1
    if job.submission_id in claims.ready_to_complete(registry, [job.submission_id]):
        _complete(registry, job.submission_id, report, say)


def _complete(registry: Registry, submission_id: int, report: EngineReport, say) -> None:
    path, rules_version = write_metrics(registry, submission_id)
    with registry.session() as session, session.begin():
        completed = claims.complete_if_scored(session, submission_id, rules_version=rules_version, metrics_path=str(path))
    if completed:
        report.completed.append(submission_id)
        say(f"submission {submission_id}: completed; results in {path}")


def _task_failed(registry, owner, task: _Task, error: BaseException, max_attempts: int, report, say) -> bool:
    """Give the job back (True), or end it as not_started after its last attempt (False)."""
    job = task.job
    message = f"{type(error).__name__}: {error}"
    if task.kind == "run" and job.attempt >= max_attempts:
        claims.end_unrun(registry, owner, job.job_id, reason=f"could not be run in {max_attempts} attempts; last error: {message}")
        report.failed_after_attempts.append(job.job_id)
        say(f"submission {job.submission_id} case {job.case}: not started after {max_attempts} attempts ({message})")
        return False
    claims.release(registry, owner, job.job_id, reason=f"attempt {job.attempt} raised {message}")
    report.retried_later += 1
    say(f"submission {job.submission_id} case {job.case}: {task.kind} task raised {message}; job given back")
    return True
