"""Atomic job claims with leases: the only way an engine takes, keeps or gives back a job.

A claim is one conditional UPDATE (`... WHERE id = :id AND status = 'pending' OR <lease
expired>`), and the engine owns the job only if that UPDATE changed a row. SQLite runs it
inside BEGIN IMMEDIATE (one writer at a time); PostgreSQL re-checks the WHERE clause on the
row's newest version after waiting for a concurrent writer (READ COMMITTED), so of two engines
that race for a job exactly one gets it on either database.

A lease lasts `lease_seconds` and the engine renews it while the task runs. When an engine
dies, its jobs come free when their leases expire, or at once for an engine that ran on this
host and whose process is gone (the owner string is 'host/pid/token'). Every later write of an
engine about a job repeats `lease_owner = :me`, so an engine that lost its lease cannot
overwrite the work of the engine that took the job over.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from challenge.phases import Phase
from challenge.statuses import ENGINE_JOB_STATUSES, JobStatus, SubmissionStatus
from challenge.text import shown
from submissions.db import Registry
from submissions.intake import phase_of
from submissions.jobs import CaseScore, JobOutcome
from submissions.models import Job, PhaseRecord, Result, Submission, utcnow


def _changed_rows(result: object) -> int:
    """The rows an UPDATE changed: `Session.execute` returns a CursorResult for DML statements,
    though its signature says Result (which has no `rowcount`)."""
    return cast("CursorResult[Any]", result).rowcount


STORED_REASON_LIMIT = 4000
"""A run's reason is stored as printable text (challenge.text.shown) of at most this many characters."""

def new_owner() -> str:
    """This engine's lease owner: host, process id and a random token."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ClaimedJob:
    """A job this engine holds, with what is needed to build its task."""

    job_id: int
    submission_id: int
    case: str
    attempt: int
    status: JobStatus
    reason: str | None
    output_path: str | None
    image_digest: str
    image_archive: str | None
    data_dir: str
    phase: Phase


def _scope(query, submission_ids):
    if submission_ids is not None:
        query = query.where(Job.submission_id.in_(list(submission_ids)))
    return query


def _runnable(now: dt.datetime):
    return or_(Job.status == JobStatus.PENDING, and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now))


def _scorable(now: dt.datetime):
    return and_(
        Job.status.not_in(ENGINE_JOB_STATUSES),
        Job.scored_at.is_(None),
        or_(Job.lease_owner.is_(None), Job.lease_expires_at < now),
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def expire_dead_local_leases(registry: Registry) -> int:
    """Expire at once the leases of engines on this host whose process no longer exists."""
    host = socket.gethostname()
    now = utcnow()
    with registry.session() as session, session.begin():
        owners = session.scalars(
            select(Job.lease_owner).where(Job.lease_owner.like(f"{host}/%"), Job.lease_expires_at >= now).distinct()
        ).all()
        dead = []
        for owner in owners:
            if owner is None:  # LIKE never matches NULL; this only narrows the column's type
                continue
            parts = owner.split("/")
            if (
                len(parts) == 3
                and parts[1].isdigit()
                and int(parts[1]) != os.getpid()
                and not _pid_alive(int(parts[1]))
            ):
                dead.append(owner)
        if not dead:
            return 0
        result = session.execute(
            update(Job).where(Job.lease_owner.in_(dead)).values(lease_expires_at=now - dt.timedelta(seconds=1)),
            execution_options={"synchronize_session": False},
        )
        return _changed_rows(result)


def fail_exhausted(registry: Registry, *, max_attempts: int, submission_ids=None) -> list[int]:
    """Jobs interrupted `max_attempts` times end as failed instead of being tried again."""
    now = utcnow()
    with registry.session() as session, session.begin():
        query = select(Job.id).where(
            Job.status == JobStatus.RUNNING, Job.lease_expires_at < now, Job.attempts >= max_attempts
        )
        ids = session.scalars(_scope(query, submission_ids)).all()
        for job_id in ids:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
                .values(
                    status=JobStatus.FAILED,
                    reason=f"the evaluation was interrupted during each of {max_attempts} attempts; not tried again",
                    finished_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                ),
                execution_options={"synchronize_session": False},
            )
        return list(ids)


def claim_runs(registry: Registry, owner: str, *, limit: int, lease_seconds: float, submission_ids=None,
               exclude=()) -> list[ClaimedJob]:
    """Take up to `limit` jobs that wait for a run (or whose runner vanished) and start a new attempt;
    jobs in `exclude` are skipped."""
    return _claim(registry, owner, limit=limit, lease_seconds=lease_seconds, submission_ids=submission_ids,
                  kind="run", exclude=exclude)


def claim_scores(registry: Registry, owner: str, *, limit: int, lease_seconds: float, submission_ids=None,
                 exclude=()) -> list[ClaimedJob]:
    """Take up to `limit` jobs whose run ended but whose results are not stored yet."""
    return _claim(registry, owner, limit=limit, lease_seconds=lease_seconds, submission_ids=submission_ids,
                  kind="score", exclude=exclude)


def _claim(registry, owner, *, limit, lease_seconds, submission_ids, kind, exclude) -> list[ClaimedJob]:
    if limit <= 0:
        return []
    now = utcnow()
    until = now + dt.timedelta(seconds=lease_seconds)
    condition = _runnable(now) if kind == "run" else _scorable(now)
    claimed_ids: list[int] = []
    with registry.session() as session, session.begin():
        query = _scope(select(Job.id).where(condition), submission_ids)
        if exclude:
            query = query.where(Job.id.not_in(list(exclude)))
        candidates = session.scalars(query.order_by(Job.submission_id, Job.id).limit(limit * 2)).all()
        for job_id in candidates:
            if len(claimed_ids) >= limit:
                break
            values = {"lease_owner": owner, "lease_expires_at": until}
            if kind == "run":
                values.update(
                    status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_at=now, finished_at=None, reason=None,
                    exit_code=None, seconds=None, peak_memory_bytes=None, log_path=None, output_path=None,
                    scored_at=None, scored_rules_version=None, case_status=None, case_reason=None,
                )
            result = session.execute(
                update(Job).where(Job.id == job_id, condition).values(**values),
                execution_options={"synchronize_session": False},
            )
            if _changed_rows(result) == 1:
                claimed_ids.append(job_id)
        if not claimed_ids:
            return []
        rows = session.execute(
            select(Job, Submission, PhaseRecord)
            .join(Submission, Job.submission_id == Submission.id)
            .join(PhaseRecord, Submission.phase_id == PhaseRecord.id)
            .where(Job.id.in_(claimed_ids))
            .order_by(Job.id)
        ).all()
        session.execute(
            update(Submission)
            .where(
                Submission.id.in_({submission.id for _job, submission, _phase in rows}),
                Submission.status != SubmissionStatus.EVALUATING,
            )
            .values(status=SubmissionStatus.EVALUATING, completed_at=None),
            execution_options={"synchronize_session": False},
        )
        return [
            ClaimedJob(
                job_id=job.id, submission_id=submission.id, case=job.case, attempt=job.attempts, status=job.status,
                reason=job.reason, output_path=job.output_path, image_digest=submission.image_digest,
                image_archive=submission.image_archive, data_dir=phase.data_dir, phase=phase_of(phase),
            )
            for job, submission, phase in rows
        ]


def renew(registry: Registry, owner: str, job_ids, *, lease_seconds: float) -> int:
    """Extend this engine's leases on `job_ids`; returns how many it still holds."""
    if not job_ids:
        return 0
    until = utcnow() + dt.timedelta(seconds=lease_seconds)
    with registry.session() as session, session.begin():
        result = session.execute(
            update(Job).where(Job.id.in_(list(job_ids)), Job.lease_owner == owner).values(lease_expires_at=until),
            execution_options={"synchronize_session": False},
        )
        return _changed_rows(result)


def record_run(registry: Registry, owner: str, job_id: int, outcome: JobOutcome, *, lease_seconds: float) -> bool:
    """Store how a run ended, keeping the lease for scoring; False when the lease was lost."""
    now = utcnow()
    with registry.session() as session, session.begin():
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
            .values(
                status=outcome.status, reason=shown(outcome.reason, limit=STORED_REASON_LIMIT),
                exit_code=outcome.exit_code, seconds=outcome.seconds, peak_memory_bytes=outcome.peak_memory_bytes,
                log_path=outcome.log_path, output_path=outcome.output_path, finished_at=now,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
            ),
            execution_options={"synchronize_session": False},
        )
        return _changed_rows(result) == 1


def record_score(registry: Registry, owner: str, job: ClaimedJob, score: CaseScore) -> bool:
    """Replace the case's result rows and mark the job scored, in one transaction."""
    now = utcnow()
    with registry.session() as session, session.begin():
        result = session.execute(
            update(Job)
            .where(Job.id == job.job_id, Job.lease_owner == owner, Job.status.not_in(ENGINE_JOB_STATUSES))
            .values(
                scored_at=now, scored_rules_version=score.rules_version, case_status=score.outcome.status,
                case_reason=shown(score.outcome.reason, limit=STORED_REASON_LIMIT),
                lease_owner=None, lease_expires_at=None,
            ),
            execution_options={"synchronize_session": False},
        )
        if _changed_rows(result) != 1:
            return False  # the lease was lost: another engine scores this job
        session.execute(delete(Result).where(Result.job_id == job.job_id))
        if score.rows:
            session.execute(
                insert(Result),
                [Result.values_of(row, job_id=job.job_id, submission_id=job.submission_id,
                                  rules_version=score.rules_version) for row in score.rows],
            )
        return True


def release(registry: Registry, owner: str, job_id: int, *, reason: str | None = None) -> None:
    """Give a job back: a job still running goes back to pending, a finished one waits for scoring."""
    with registry.session() as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.PENDING, reason=reason, lease_owner=None, lease_expires_at=None),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None),
            execution_options={"synchronize_session": False},
        )


def complete_if_scored(session: Session, submission_id: int, *, rules_version: str, metrics_path: str) -> bool:
    """Mark the submission completed if every one of its jobs is scored (one conditional UPDATE)."""
    unscored = exists().where(Job.submission_id == submission_id, Job.scored_at.is_(None))
    result = session.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.status != SubmissionStatus.COMPLETED, ~unscored)
        .values(
            status=SubmissionStatus.COMPLETED,
            rules_version=rules_version,
            metrics_path=metrics_path,
            completed_at=utcnow(),
        ),
        execution_options={"synchronize_session": False},
    )
    return _changed_rows(result) == 1


def ready_to_complete(registry: Registry, submission_ids=None) -> list[int]:
    """Submissions not completed yet whose jobs are all scored."""
    unscored = exists().where(Job.submission_id == Submission.id, Job.scored_at.is_(None))
    has_jobs = exists().where(Job.submission_id == Submission.id)
    query = select(Submission.id).where(Submission.status != SubmissionStatus.COMPLETED, has_jobs, ~unscored)
    if submission_ids is not None:
        query = query.where(Submission.id.in_(list(submission_ids)))
    with registry.session() as session:
        return list(session.scalars(query.order_by(Submission.id)).all())


def reset_scores(registry: Registry, *, submission_ids=None, stale_for: str | None = None) -> list[int]:
    """Mark finished runs for scoring again (all of them, or those not scored under `stale_for`);
    returns the submissions touched. Containers are not run again: their outputs are reused."""
    with registry.session() as session, session.begin():
        query = select(Job.id, Job.submission_id).where(
            Job.status.not_in(ENGINE_JOB_STATUSES), Job.scored_at.is_not(None)
        )
        if stale_for is not None:
            query = query.where(or_(Job.scored_rules_version.is_(None), Job.scored_rules_version != stale_for))
        rows = session.execute(_scope(query, submission_ids)).all()
        job_ids = [job_id for job_id, _ in rows]
        touched = sorted({submission_id for _, submission_id in rows})
        for start in range(0, len(job_ids), 500):
            session.execute(
                update(Job).where(Job.id.in_(job_ids[start:start + 500])).values(scored_at=None),
                execution_options={"synchronize_session": False},
            )
        if touched:
            session.execute(
                update(Submission)
                .where(Submission.id.in_(touched))
                .values(status=SubmissionStatus.EVALUATING, completed_at=None),
                execution_options={"synchronize_session": False},
            )
        return touched


def scope_of_pending(registry: Registry) -> list[int]:
    with registry.session() as session:
        return list(
            session.scalars(
                select(Submission.id).where(Submission.status != SubmissionStatus.COMPLETED).order_by(Submission.id)
            ).all()
        )



def end_unrun(registry: Registry, owner: str, job_id: int, *, reason: str) -> bool:
    """End a job that could not be run after its last attempt as not_started (it is then scored
    as a missing case, like any failed job)."""
    now = utcnow()
    with registry.session() as session, session.begin():
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.NOT_STARTED, reason=reason, finished_at=now, lease_owner=None, lease_expires_at=None
            ),
            execution_options={"synchronize_session": False},
        )
        return _changed_rows(result) == 1


def held_elsewhere(registry: Registry, owner: str, *, submission_ids=None) -> int:
    """Jobs in scope that other engines hold under a lease that has not expired."""
    from sqlalchemy import func

    now = utcnow()
    query = select(func.count(Job.id)).where(
        Job.lease_owner.is_not(None), Job.lease_owner != owner, Job.lease_expires_at >= now
    )
    with registry.session() as session:
        return int(session.scalar(_scope(query, submission_ids)) or 0)
