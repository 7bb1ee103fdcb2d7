"""What the leaderboard reads about each submission of a phase, as plain frozen records.

These mirror the registry's read API (`submissions.queries.phase_results`); `leaderboard.source`
turns its records into these, so that ranking, stability and the site depend on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Result-row and job statuses the leaderboard treats specially; anything else is shown as found.
JOB_SUCCEEDED = ("succeeded", "success", "ok", "completed", "done")


@dataclass(frozen=True)
class ResultRow:
    """One scored value: a metric of a structure group in one case, whole group or one level.

    `structure` is a scored group (vertebrae, discs, spinal_canal); `level` is None for the
    value of the whole group in the case, else the structure's name in challenge.labels
    ("L4", "L5/S1", "spinal canal"). `value` is None where the scoring left no number (the
    row's `status` says why).
    """

    case: str
    structure: str
    level: str | None
    metric: str
    value: float | None
    status: str = "ok"


@dataclass(frozen=True)
class JobRecord:
    """One algorithm job: a case run in the submission's container, and where its output is kept."""

    case: str
    status: str
    reason: str | None = None
    seconds: float | None = None
    log_path: str | None = None
    prediction_path: str | None = None

    @property
    def failed(self) -> bool:
        return self.status.lower() not in JOB_SUCCEEDED


@dataclass(frozen=True)
class SubmissionResults:
    """A submission of a phase with everything the leaderboard shows about it."""

    id: str
    team: str
    algorithm: str
    image_digest: str
    created_at: datetime
    status: str
    rows: tuple[ResultRow, ...] = ()
    jobs: tuple[JobRecord, ...] = ()
    rules_version: str | None = None

    @property
    def cases(self) -> tuple[str, ...]:
        """Every case this submission has a job or a result for, sorted."""
        return tuple(sorted({job.case for job in self.jobs} | {row.case for row in self.rows}))
