"""What the registry's read API returns: plain frozen records, no ORM (see submissions.queries).

The leaderboard and scripts read a phase only through these. Text that came from a team
(`team`, `algorithm_name`) is user input: escape it wherever it is shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from challenge.results import ScoreRow
from challenge.statuses import CaseStatus, JobStatus, SubmissionStatus


@dataclass(frozen=True)
class JobRecord:
    """One algorithm job: a case run in the submission's container, and what it left.

    `output_path` is the stored prediction the output check accepted or rejected (None when the
    run left none); `case_status` is how the case entered the results once it is scored;
    `peak_memory_bytes` is the run's peak memory as the runner measured it (None when not run yet,
    or when it could not be measured: see evaluation.runner.docker_runner._MemorySampler).
    """

    case: str
    status: JobStatus
    reason: str | None
    seconds: float | None
    log_path: str | None
    attempts: int
    output_path: str | None = None
    case_status: CaseStatus | None = None
    peak_memory_bytes: int | None = None

    @property
    def failed(self) -> bool:
        """True unless the run succeeded (a job not run yet counts as not succeeded)."""
        return not self.status.ok


@dataclass(frozen=True)
class SubmissionInfo:
    """Who submitted what, and where it stands."""

    id: int
    team: str
    algorithm_name: str
    image_digest: str
    created_at: dt.datetime
    status: SubmissionStatus
    rules_version: str | None


@dataclass(frozen=True)
class SubmissionResults(SubmissionInfo):
    """A submission of a phase with its long result rows (sorted by case, structure, level, metric)
    and its jobs (one per case, sorted by case). Only a submission whose `status.ranked` is True
    (completed) has a full, consistent set of rows; while it is evaluated or rescored, `rows` may
    hold a part of the cases."""

    rows: tuple[ScoreRow, ...]
    jobs: tuple[JobRecord, ...]

    @property
    def cases(self) -> tuple[str, ...]:
        """Every case this submission has a job or a result for, sorted."""
        return tuple(sorted({job.case for job in self.jobs} | {row.case for row in self.rows}))


@dataclass(frozen=True)
class PhaseResults:
    """One phase as the registry holds it: its case list, its test set folder, every submission."""

    phase: str
    cases: tuple[str, ...]
    data_dir: Path
    submissions: tuple[SubmissionResults, ...]


@dataclass(frozen=True)
class SubmissionSummary(SubmissionInfo):
    """One line of `spider status`: a submission, its phase and the count of its jobs per status."""

    phase: str
    job_counts: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = data.pop("algorithm_name")
        data["digest"] = data.pop("image_digest")
        data["status"] = self.status.value
        data["created_at"] = self.created_at.isoformat()
        data["job_counts"] = dict(sorted(self.job_counts.items()))
        return data
