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
import enum
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Callable

from challenge.release import image_path, mask_path
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


class TaskKind(str, enum.Enum):
    """What a dispatched task does with its job."""

    RUN = "run"      # run the submission's container on the case
    SCORE = "score"  # score the run's stored output

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class _Task:
    kind: TaskKind
    job: ClaimedJob


@dataclass(frozen=True)
class EngineSettings:
    """How one engine run takes and keeps jobs (see `evaluate`)."""

    submission_ids: list[int] | None = None
    job_function: JobFunction = run_container_job
    score_function: ScoreFunction | None = None
    scoring_only: bool = False
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0:
            raise EngineError(f"lease_seconds must be larger than 0, found {self.lease_seconds}")


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
    settings = EngineSettings(submission_ids, job_function, score_function, scoring_only, lease_seconds, max_attempts)
    return _EngineRun(registry, executor, settings, progress or (lambda _message: None)).run()


class _EngineRun:
    """The state of one `evaluate` call: the tasks in flight, the report, and why it must stop."""

    def __init__(self, registry: Registry, executor: Executor, settings: EngineSettings,
                 say: Callable[[str], None]):
        self.registry = registry
        self.executor = executor
        self.settings = settings
        self.score_function = settings.score_function or _default_score_function()
        self.say = say
        self.owner = claims.new_owner()
        self.report = EngineReport()
        self.in_flight: dict[Future, _Task] = {}
        # Jobs whose task raised in this run are not taken again by it: a node or engine problem must
        # not burn a job's attempts in a tight loop. They wait for the next run (or another engine).
        self.raised: set[int] = set()
        self.consecutive_errors = 0
        self.stop_error: str | None = None
        self.renew_every = max(0.05, settings.lease_seconds / 3)

    def run(self) -> EngineReport:
        began = time.monotonic()
        claims.expire_dead_local_leases(self.registry)
        try:
            for submission_id in claims.ready_to_complete(self.registry, self.settings.submission_ids):
                self._complete(submission_id)
            self._loop()
        except BaseException:
            self._give_back_in_flight()
            raise
        self.report.seconds = time.monotonic() - began
        self.report.held_by_others = claims.held_elsewhere(self.registry, self.owner,
                                                           submission_ids=self.settings.submission_ids)
        if self.stop_error is not None:
            raise EngineError(f"the engine stopped: {self.stop_error}. Jobs not done stay pending; "
                              "fix the cause and run it again.")
        return self.report

    def _loop(self) -> None:
        last_renewal = time.monotonic()
        while True:
            if self.stop_error is None:
                self._take_jobs()
            if not self.in_flight:
                return
            done, _ = wait(list(self.in_flight), timeout=self.renew_every, return_when=FIRST_COMPLETED)
            for future in done:
                self._finished(self.in_flight.pop(future), future)
            if self.in_flight and time.monotonic() - last_renewal >= self.renew_every:
                claims.renew(self.registry, self.owner, {task.job.job_id for task in self.in_flight.values()},
                             lease_seconds=self.settings.lease_seconds)
                last_renewal = time.monotonic()

    def _take_jobs(self) -> None:
        settings = self.settings
        if not settings.scoring_only:
            self.report.failed_after_attempts += claims.fail_exhausted(
                self.registry, max_attempts=settings.max_attempts, submission_ids=settings.submission_ids)
        for job in claims.claim_scores(self.registry, self.owner, limit=self._room(),
                                       lease_seconds=settings.lease_seconds, submission_ids=settings.submission_ids,
                                       exclude=self.raised):
            self._dispatch_score(job)
        if settings.scoring_only:
            return
        for job in claims.claim_runs(self.registry, self.owner, limit=self._room(),
                                     lease_seconds=settings.lease_seconds, submission_ids=settings.submission_ids,
                                     exclude=self.raised):
            self._dispatch_run(job)
            self.say(f"submission {job.submission_id} case {job.case}: started (attempt {job.attempt})")

    def _room(self) -> int:
        return self.executor.capacity - len(self.in_flight)

    def _dispatch_run(self, job: ClaimedJob) -> None:
        spec = JobSpec(
            job_id=job.job_id,
            submission_id=job.submission_id,
            case=job.case,
            attempt=job.attempt,
            image_digest=job.image_digest,
            image_archive=job.image_archive,
            input_image=str(image_path(job.data_dir, job.case)),
            job_dir=str(job_attempt_dir(self.registry.work_dir, job.submission_id, job.job_id, job.attempt)),
            phase=job.phase,
        )
        resources = Resources(cpus=job.phase.cpus, memory_bytes=job.phase.memory_bytes, gpus=job.phase.gpus)
        future = self.executor.submit(self.settings.job_function, spec, resources=resources)
        self.in_flight[future] = _Task(TaskKind.RUN, job)

    def _dispatch_score(self, job: ClaimedJob) -> None:
        spec = ScoreSpec(
            job_id=job.job_id,
            case=job.case,
            reference_mask=str(mask_path(job.data_dir, job.case)),
            job_status=job.status,
            reason=job.reason,
            output_path=job.output_path,
            scoring_time_limit_seconds=job.phase.scoring_time_limit_seconds,
        )
        future = self.executor.submit(self.score_function, spec, resources=SCORING_RESOURCES)
        self.in_flight[future] = _Task(TaskKind.SCORE, job)

    def _finished(self, task: _Task, future: Future) -> None:
        error = future.exception()
        if error is not None:
            self._task_raised(task, error)
            return
        self.consecutive_errors = 0
        if task.kind is TaskKind.RUN:
            self._run_finished(task.job, future.result())
        else:
            self._score_finished(task.job, future.result())

    def _task_raised(self, task: _Task, error: BaseException) -> None:
        self.consecutive_errors += 1
        if self._give_back_or_end(task, error):
            self.raised.add(task.job.job_id)
        if self.consecutive_errors >= MAX_CONSECUTIVE_TASK_ERRORS and self.stop_error is None:
            self.stop_error = f"{self.consecutive_errors} tasks in a row raised; the last: {error!r}"

    def _run_finished(self, job: ClaimedJob, outcome: JobOutcome) -> None:
        if not claims.record_run(self.registry, self.owner, job.job_id, outcome,
                                 lease_seconds=self.settings.lease_seconds):
            self.report.lost_leases += 1
            self.say(f"submission {job.submission_id} case {job.case}: lease lost; another engine took the job over")
            return
        self.report.runs += 1
        self.say(f"submission {job.submission_id} case {job.case}: {outcome.status} in {outcome.seconds:.1f} s")
        self._dispatch_score(dataclasses.replace(job, status=outcome.status, reason=outcome.reason,
                                                 output_path=outcome.output_path))

    def _score_finished(self, job: ClaimedJob, score: CaseScore) -> None:
        if not claims.record_score(self.registry, self.owner, job, score):
            self.report.lost_leases += 1
            return
        self.report.scored += 1
        if job.submission_id in claims.ready_to_complete(self.registry, [job.submission_id]):
            self._complete(job.submission_id)

    def _complete(self, submission_id: int) -> None:
        path, rules_version = write_metrics(self.registry, submission_id)
        with self.registry.session() as session, session.begin():
            completed = claims.complete_if_scored(session, submission_id, rules_version=rules_version,
                                                  metrics_path=str(path))
        if completed:
            self.report.completed.append(submission_id)
            self.say(f"submission {submission_id}: completed; results in {path}")

    def _give_back_or_end(self, task: _Task, error: BaseException) -> bool:
        """Give the job back (True), or end it as not_started after its last attempt (False)."""
        job, max_attempts = task.job, self.settings.max_attempts
        message = f"{type(error).__name__}: {error}"
        if task.kind is TaskKind.RUN and job.attempt >= max_attempts:
            claims.end_unrun(self.registry, self.owner, job.job_id,
                             reason=f"could not be run in {max_attempts} attempts; last error: {message}")
            self.report.failed_after_attempts.append(job.job_id)
            self.say(f"submission {job.submission_id} case {job.case}: not started after {max_attempts} attempts "
                     f"({message})")
            return False
        claims.release(self.registry, self.owner, job.job_id, reason=f"attempt {job.attempt} raised {message}")
        self.report.retried_later += 1
        self.say(f"submission {job.submission_id} case {job.case}: {task.kind} task raised {message}; job given back")
        return True

    def _give_back_in_flight(self) -> None:
        """Interrupted (Ctrl-C, an error): give the jobs back now rather than when leases expire."""
        for task in self.in_flight.values():
            try:
                claims.release(self.registry, self.owner, task.job.job_id, reason="the engine was interrupted")
            except Exception:  # best effort: already failing
                pass
