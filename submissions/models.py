"""The registry's tables as SQLAlchemy 2.0 ORM classes (the schema itself lives in migrations/)."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Job statuses the engine owns; every other status comes from the runner's closed set
# (evaluation.runner) and means the container run has ended.
PENDING = "pending"
RUNNING = "running"
ENGINE_STATUSES = (PENDING, RUNNING)

# Submission statuses.
SUBMISSION_PENDING = "pending"        # jobs created, none finished
SUBMISSION_EVALUATING = "evaluating"  # some jobs ended or are being (re)scored
SUBMISSION_COMPLETED = "completed"    # every job scored and metrics.json written
SUBMISSION_STATUSES = (SUBMISSION_PENDING, SUBMISSION_EVALUATING, SUBMISSION_COMPLETED)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive text otherwise)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"datetimes stored in the registry must be timezone-aware, found {value!r}")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


class MetricValue(TypeDecorator):
    """A float that keeps NaN: SQLite turns NaN into NULL, so NULL reads back as NaN."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value)

    def process_result_value(self, value, dialect):
        return math.nan if value is None else float(value)


class Base(DeclarativeBase):
    pass


class Team(Base):
    """A participating team; `name` is stored exactly as given and never used in a path."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("name", name="uq_teams_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PhaseRecord(Base):
    """A phase as registered: its hidden test set folder and the limits jobs run under."""

    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("name", name="uq_phases_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    data_dir: Mapped[str] = mapped_column(Text)
    time_limit_seconds: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    cpus: Mapped[float] = mapped_column(Float)
    gpus: Mapped[int] = mapped_column(Integer)
    pids_limit: Mapped[int] = mapped_column(Integer)
    tmp_bytes: Mapped[int] = mapped_column(BigInteger)
    output_limit_bytes: Mapped[int] = mapped_column(BigInteger)
    max_submissions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submission_period: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    cases: Mapped[list["Case"]] = relationship(
        back_populates="phase", cascade="all, delete-orphan", order_by="Case.name"
    )


class Case(Base):
    """One series of a phase's hidden test set (`name` is the file stem, e.g. '12_t2')."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("phase_id", "name", name="uq_cases_phase_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))

    phase: Mapped[PhaseRecord] = relationship(back_populates="cases")


class Submission(Base):
    """One algorithm image submitted by a team to a phase, pinned by its image digest."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("phase_id", "team_id", "image_digest", name="uq_submissions_phase_team_digest"),
        Index("ix_submissions_phase_team_created", "phase_id", "team_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id"))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    algorithm_name: Mapped[str] = mapped_column(Text)
    image_digest: Mapped[str] = mapped_column(String(80))
    image_archive: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=SUBMISSION_PENDING)
    rules_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metrics_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    team: Mapped[Team] = relationship()
    phase: Mapped[PhaseRecord] = relationship()
    jobs: Mapped[list["Job"]] = relationship(back_populates="submission", order_by="Job.case")


class Job(Base):
    """One container run of a submission on one case, and the state of scoring its output.

    `status` is 'pending' or 'running' while the engine owns the job, then the runner's status
    for the run. `lease_owner`/`lease_expires_at` mark the engine that holds the job (to run
    or to score it); a lease that expires is taken over. `scored_rules_version` is set when
    the case's result rows are stored, with `case_status` (scored, missing or invalid: how the
    case entered the results) and `case_reason` (why it is missing or invalid).
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("submission_id", "case", name="uq_jobs_submission_case"),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    case: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default=PENDING)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    scored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scored_rules_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    case_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    case_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    submission: Mapped[Submission] = relationship(back_populates="jobs")


class Result(Base):
    """One row of the long result table of a case: (structure, level, metric) -> value."""

    __tablename__ = "results"
    __table_args__ = (Index("ix_results_submission", "submission_id"), Index("ix_results_job", "job_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    case: Mapped[str] = mapped_column(String(255))
    structure: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(64), default="")
    label: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(MetricValue, nullable=True)
    status: Mapped[str] = mapped_column(String(64))
    rules_version: Mapped[str] = mapped_column(String(32))
