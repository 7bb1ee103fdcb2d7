"""Read API of the registry, for the leaderboard and for scripts. Stable: change only by adding.

    phase_results(session_or_db_url, phase: str) -> list[SubmissionResults]

`session_or_db_url` is an open SQLAlchemy Session, a submissions.db.Registry, or a database URL
(or a SQLite file path); a URL is opened (and migrated) for the call and closed again. The list holds every
submission of the phase, oldest first, whatever its status; each carries:

    SubmissionResults
        id: int                   submission id
        team: str                 team name as submitted (user input: escape it in HTML)
        algorithm_name: str       as submitted (user input: escape it in HTML)
        image_digest: str         "sha256:<64 hex>", the image id that ran
        created_at: datetime      timezone-aware, UTC
        status: str               "pending" | "evaluating" | "completed"
        rules_version: str|None   rules version of the results (set when completed)
        results: tuple[ResultRecord, ...]   the long table, sorted by case, structure, level, metric
        jobs: tuple[JobRecord, ...]         one per case, sorted by case

    ResultRecord(case, structure, level, metric, value: float (NaN kept), status: str, rules_version,
                 label: int|None)   label: the scored mask value of a level's row, None for a group row
    JobRecord(case, status, reason, seconds: float|None, log_path: str|None, attempts: int)

Only a submission with status "completed" has a full, consistent set of results; while a
submission is evaluated or rescored, `results` may hold a part of the cases (or rows of two
rules versions). A leaderboard should rank completed submissions only.

    submission_summaries(session_or_db_url, phase: str | None = None) -> list[SubmissionSummary]

is what `spider status --json` prints: per submission id, phase, team, name, digest, status and
the count of jobs per status.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from submissions.errors import UnknownRecordError


@dataclass(frozen=True)
class ResultRecord:
    case: str
    structure: str
    level: str
    metric: str
    value: float
    status: str
    rules_version: str
    label: int | None = None


@dataclass(frozen=True)
class JobRecord:
    case: str
    status: str
    reason: str | None
    seconds: float | None
    log_path: str | None
    attempts: int


@dataclass(frozen=True)
class SubmissionResults:
    id: int
    team: str
    algorithm_name: str
    image_digest: str
    created_at: dt.datetime
    status: str
    rules_version: str | None
    results: tuple[ResultRecord, ...]
    jobs: tuple[JobRecord, ...]


@dataclass(frozen=True)
class SubmissionSummary:
    id: int
    phase: str
    team: str
    algorithm_name: str
    image_digest: str
    created_at: dt.datetime
    status: str
    rules_version: str | None
    job_counts: dict[str, int]

    def as_json(self) -> dict:
        data = asdict(self)
        data["name"] = data.pop("algorithm_name")
        data["digest"] = data.pop("image_digest")
        data["created_at"] = self.created_at.isoformat()
        data["job_counts"] = dict(sorted(self.job_counts.items()))
        return data


@contextmanager
def _session(source) -> Iterator[Session]:
    from submissions.db import Registry, connect

    if isinstance(source, Session):
        yield source
        return
    if isinstance(source, Registry):
        with source.session() as session:
            yield session
        return
    if not isinstance(source, str):
        raise TypeError(f"expected a Session, a Registry or a database URL, found {type(source).__name__}")
    engine = connect(source if "://" in source else f"sqlite:///{source}")
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def phase_results(session_or_db_url, phase: str) -> list[SubmissionResults]:
    """Every submission of `phase` with its long result rows and its jobs (see module docstring)."""
    from submissions.models import Job, PhaseRecord, Result, Submission, Team

    with _session(session_or_db_url) as session:
        phase_id = session.scalar(select(PhaseRecord.id).where(PhaseRecord.name == phase))
        if phase_id is None:
            raise UnknownRecordError(f"phase {phase!r} is not registered")
        submissions = session.execute(
            select(Submission, Team.name)
            .join(Team, Submission.team_id == Team.id)
            .where(Submission.phase_id == phase_id)
            .order_by(Submission.created_at, Submission.id)
        ).all()
        ids = [submission.id for submission, _ in submissions]
        results: dict[int, list[ResultRecord]] = defaultdict(list)
        jobs: dict[int, list[JobRecord]] = defaultdict(list)
        if ids:
            for row in session.scalars(
                select(Result)
                .where(Result.submission_id.in_(ids))
                .order_by(Result.submission_id, Result.case, Result.structure, Result.level, Result.metric, Result.id)
            ):
                results[row.submission_id].append(
                    ResultRecord(row.case, row.structure, row.level, row.metric, row.value, row.status, row.rules_version, row.label)
                )
            for job in session.scalars(select(Job).where(Job.submission_id.in_(ids)).order_by(Job.submission_id, Job.case)):
                jobs[job.submission_id].append(
                    JobRecord(job.case, job.status, job.reason, job.seconds, job.log_path, job.attempts)
                )
        return [
            SubmissionResults(
                id=submission.id,
                team=team,
                algorithm_name=submission.algorithm_name,
                image_digest=submission.image_digest,
                created_at=submission.created_at,
                status=submission.status,
                rules_version=submission.rules_version,
                results=tuple(results[submission.id]),
                jobs=tuple(jobs[submission.id]),
            )
            for submission, team in submissions
        ]


def submission_summaries(session_or_db_url, phase: str | None = None, *, submission_ids=None) -> list[SubmissionSummary]:
    """Each submission (of `phase`, or all) with its job counts by status, oldest first."""
    from submissions.models import Job, PhaseRecord, Submission, Team

    with _session(session_or_db_url) as session:
        query = (
            select(Submission, Team.name, PhaseRecord.name)
            .join(Team, Submission.team_id == Team.id)
            .join(PhaseRecord, Submission.phase_id == PhaseRecord.id)
            .order_by(Submission.created_at, Submission.id)
        )
        if phase is not None:
            if session.scalar(select(PhaseRecord.id).where(PhaseRecord.name == phase)) is None:
                raise UnknownRecordError(f"phase {phase!r} is not registered")
            query = query.where(PhaseRecord.name == phase)
        if submission_ids is not None:
            query = query.where(Submission.id.in_(list(submission_ids)))
        rows = session.execute(query).all()
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        for submission_id, status, count in session.execute(
            select(Job.submission_id, Job.status, func.count(Job.id)).group_by(Job.submission_id, Job.status)
        ):
            counts[submission_id][status] = int(count)
        return [
            SubmissionSummary(
                id=submission.id,
                phase=phase_name,
                team=team,
                algorithm_name=submission.algorithm_name,
                image_digest=submission.image_digest,
                created_at=submission.created_at,
                status=submission.status,
                rules_version=submission.rules_version,
                job_counts=dict(sorted(counts[submission.id].items())),
            )
            for submission, team, phase_name in rows
        ]
