"""Read API of the registry, for the leaderboard and for scripts. Stable: change only by adding.

    read_phase(db, phase, *, work=None) -> PhaseResults
        opens the registry read-only (submissions.db.connect_read_only: a database that does not
        exist or is at an older schema is a RegistryError, and nothing on disk changes), reads one
        phase: its case names, its test set folder and every submission, and closes it again.
    phase_results(source, phase) -> list[SubmissionResults]
        every submission of the phase, oldest first, whatever its status.
    submission_summaries(source, phase=None) -> list[SubmissionSummary]
        what `spider status --json` prints: per submission the count of jobs per status.

`source` is an open SQLAlchemy Session, a submissions.db.Registry, or a database URL (or a SQLite
file path), which is opened read-only for the call and closed again. The records are defined in
submissions.records; rows are challenge.results.ScoreRow, statuses challenge.statuses enums.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from challenge.results import ScoreRow
from submissions.errors import UnknownRecordError
from submissions.records import JobRecord, PhaseResults, SubmissionResults, SubmissionSummary

if TYPE_CHECKING:
    from submissions.db import Registry

__all__ = ["JobRecord", "PhaseResults", "SubmissionResults", "SubmissionSummary",
           "phase_results", "read_phase", "submission_summaries"]


@contextmanager
def _session(source: Session | Registry | str) -> Iterator[Session]:
    from submissions.db import Registry, open_registry

    if isinstance(source, Session):
        yield source
        return
    if isinstance(source, Registry):
        with source.session() as session:
            yield session
        return
    if not isinstance(source, str):
        raise TypeError(f"expected a Session, a Registry or a database URL, found {type(source).__name__}")
    registry = open_registry(source, read_only=True)
    try:
        with registry.session() as session:
            yield session
    finally:
        registry.dispose()


def read_phase(db: str | None, phase: str, *, work: Path | str | None = None) -> PhaseResults:
    """One phase of the registry named by `db` / $SPIDER_DB / the work folder, read without writing."""
    from submissions.db import open_registry
    from submissions.models import Case, PhaseRecord

    registry = open_registry(db, work=work, read_only=True)
    try:
        with registry.session() as session:
            record = session.scalars(select(PhaseRecord).where(PhaseRecord.name == phase)).one_or_none()
            if record is None:
                raise UnknownRecordError(f"phase {phase!r} is not registered")
            cases = tuple(session.scalars(select(Case.name).where(Case.phase_id == record.id).order_by(Case.name)))
            submissions = tuple(phase_results(session, phase))
            return PhaseResults(phase, cases, Path(record.data_dir), submissions)
    finally:
        registry.dispose()


def phase_results(source: Session | Registry | str, phase: str) -> list[SubmissionResults]:
    """Every submission of `phase` with its long result rows and its jobs, oldest first."""
    from submissions.models import Job, PhaseRecord, Result, Submission, Team

    with _session(source) as session:
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
        rows: dict[int, list[ScoreRow]] = defaultdict(list)
        jobs: dict[int, list[JobRecord]] = defaultdict(list)
        if ids:
            for result in session.scalars(
                select(Result)
                .where(Result.submission_id.in_(ids))
                .order_by(Result.submission_id, Result.case, Result.structure, Result.level, Result.metric, Result.id)
            ):
                rows[result.submission_id].append(result.as_row())
            for job in session.scalars(
                select(Job).where(Job.submission_id.in_(ids)).order_by(Job.submission_id, Job.case)
            ):
                jobs[job.submission_id].append(job.as_record())
        return [
            SubmissionResults(
                id=submission.id,
                team=team,
                algorithm_name=submission.algorithm_name,
                image_digest=submission.image_digest,
                created_at=submission.created_at,
                status=submission.status,
                rules_version=submission.rules_version,
                rows=tuple(rows[submission.id]),
                jobs=tuple(jobs[submission.id]),
            )
            for submission, team in submissions
        ]


def submission_summaries(source: Session | Registry | str, phase: str | None = None, *,
                         submission_ids: Iterable[int] | None = None) -> list[SubmissionSummary]:
    """Each submission (of `phase`, or all) with its job counts by status, oldest first."""
    from submissions.models import Job, PhaseRecord, Submission, Team

    with _session(source) as session:
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
        found = session.execute(query).all()
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        for submission_id, status, count in session.execute(
            select(Job.submission_id, Job.status, func.count(Job.id)).group_by(Job.submission_id, Job.status)
        ):
            counts[submission_id][status.value] = int(count)
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
            for submission, team, phase_name in found
        ]
