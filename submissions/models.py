"""The registry's tables as SQLAlchemy 2.0 ORM classes (the schema itself lives in migrations/)."""

from __future__ import annotations

import datetime as dt
import enum
import math
from typing import Any

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

from challenge.phases import DEFAULT_IMAGE_LIMIT_BYTES, DEFAULT_MAX_IMAGE_LAYERS, DEFAULT_SCORING_TIME_LIMIT_S
from challenge.results import ScoreRow
from challenge.statuses import CaseStatus, JobStatus, RowStatus, SubmissionStatus
from submissions.names import team_key
from submissions.records import JobRecord


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


class StatusValue(TypeDecorator):
    """A challenge.statuses enum stored as its value (plain text) and read back as the enum."""

    impl = String
    cache_ok = True

    def __init__(self, enum_type: type[enum.Enum], length: int = 32):
        super().__init__(length)
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect) -> str | None:
        if value is None:
            return None
        try:
            return self.enum_type(value).value
        except ValueError:
            allowed = [member.value for member in self.enum_type]
            raise ValueError(f"{self.enum_type.__name__} must be one of {allowed}, found {value!r}") from None

    def process_result_value(self, value: Any, dialect) -> enum.Enum | None:
        return None if value is None else self.enum_type(value)


class Base(DeclarativeBase):
    pass


class Team(Base):
    """A participating team; `name` is stored exactly as first given and never used in a path; `key`
    (submissions.names.team_key of the name) is its identity."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("name", name="uq_teams_name"), Index("uq_teams_key", "key", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text, default=lambda context: team_key(context.get_current_parameters()["name"]))
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
    scoring_time_limit_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_SCORING_TIME_LIMIT_S)
    image_limit_bytes: Mapped[int] = mapped_column(BigInteger, default=DEFAULT_IMAGE_LIMIT_BYTES)
    max_image_layers: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_IMAGE_LAYERS)
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
    status: Mapped[SubmissionStatus] = mapped_column(StatusValue(SubmissionStatus, 16),
                                                     default=SubmissionStatus.PENDING)
    rules_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metrics_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    team: Mapped[Team] = relationship()
    phase: Mapped[PhaseRecord] = relationship()
    jobs: Mapped[list["Job"]] = relationship(back_populates="submission", order_by="Job.case")


class Job(Base):
    """One container run of a submission on one case, and the state of scoring its output.

    `status` is pending or running while the engine owns the job, then how the run ended
    (challenge.statuses.JobStatus). `lease_owner`/`lease_expires_at` mark the engine that holds the job (to run
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
    status: Mapped[JobStatus] = mapped_column(StatusValue(JobStatus, 32), default=JobStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    scored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    scored_rules_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    case_status: Mapped[CaseStatus | None] = mapped_column(StatusValue(CaseStatus, 16), nullable=True)
    case_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    submission: Mapped[Submission] = relationship(back_populates="jobs")

    def as_record(self) -> JobRecord:
        return JobRecord(self.case, self.status, self.reason, self.seconds, self.log_path, self.attempts,
                         self.output_path, self.case_status, self.peak_memory_bytes)


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
    status: Mapped[RowStatus] = mapped_column(StatusValue(RowStatus, 64))
    rules_version: Mapped[str] = mapped_column(String(32))

    def as_row(self) -> ScoreRow:
        return ScoreRow(self.case, self.structure, self.level, self.metric, self.value, self.status, self.label)

    @staticmethod
    def values_of(row: ScoreRow, *, job_id: int, submission_id: int, rules_version: str) -> dict[str, Any]:
        """The column values that store `row` (for a bulk insert)."""
        return dict(job_id=job_id, submission_id=submission_id, case=row.case, structure=row.structure,
                    level=row.level, label=row.label, metric=row.metric, value=row.value, status=row.status,
                    rules_version=rules_version)
