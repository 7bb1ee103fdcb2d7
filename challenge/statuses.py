"""Every status vocabulary of the challenge, declared once: jobs, cases, result rows, submissions.

Each is a string enum stored by its value (the registry's columns, jobs.json, metrics.json and
cases.csv all hold `.value`) and read back as the enum; no layer spells a status by hand.
"""

from __future__ import annotations

import enum

from challenge.rules import EdgeCase


class _Status(str, enum.Enum):
    """A status: a string enum whose text is its stored value."""

    def __str__(self) -> str:
        return self.value


class JobStatus(_Status):
    """Where one algorithm job (one case of a submission) stands.

    PENDING and RUNNING belong to the evaluation engine; every other value is how the
    container run ended (the runner's closed set: each run ends with exactly one of them).
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"
    MISSING_OUTPUT = "missing_output"
    INVALID_OUTPUT = "invalid_output"
    OUTPUT_TOO_LARGE = "output_too_large"
    NOT_STARTED = "not_started"

    @property
    def ended(self) -> bool:
        """True once the run is over (every status but pending and running)."""
        return self not in ENGINE_JOB_STATUSES

    @property
    def ok(self) -> bool:
        return self is JobStatus.SUCCEEDED

    @property
    def left_invalid_output(self) -> bool:
        """The run wrote a file that the output contract rejects (the case is scored as invalid)."""
        return self in (JobStatus.INVALID_OUTPUT, JobStatus.OUTPUT_TOO_LARGE)

    @property
    def reported(self) -> JobStatus:
        """The closest of the six statuses in jobs.json; the job's reason keeps the detail."""
        if not self.ended:
            raise ValueError(f"job status {self.value!r} has not ended: only ended jobs are reported")
        return _REPORTED.get(self, self)


ENGINE_JOB_STATUSES: tuple[JobStatus, ...] = (JobStatus.PENDING, JobStatus.RUNNING)
ENDED_JOB_STATUSES: tuple[JobStatus, ...] = tuple(s for s in JobStatus if s not in ENGINE_JOB_STATUSES)

REPORTED_STATUSES: tuple[JobStatus, ...] = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.TIMED_OUT,
    JobStatus.OUT_OF_MEMORY,
    JobStatus.MISSING_OUTPUT,
    JobStatus.INVALID_OUTPUT,
)

_REPORTED = {
    JobStatus.OUTPUT_TOO_LARGE: JobStatus.INVALID_OUTPUT,
    JobStatus.NOT_STARTED: JobStatus.FAILED,
}


class CaseStatus(_Status):
    """How a case entered the results: its prediction was scored, absent, or rejected."""

    SCORED = "scored"
    MISSING = "missing"
    INVALID = "invalid"

    @property
    def row_status(self) -> RowStatus:
        """The status of the rows of a case that was not scored (SCORED: computed rows)."""
        return RowStatus(self.value)


class RowStatus(_Status):
    """How a row's value was obtained: computed, or set by a declared edge-case rule."""

    SCORED = "scored"
    BOTH_EMPTY = EdgeCase.BOTH_EMPTY.value
    PREDICTION_EMPTY = EdgeCase.PREDICTION_EMPTY.value
    REFERENCE_EMPTY = EdgeCase.REFERENCE_EMPTY.value
    MISSING = "missing"
    INVALID = "invalid"

    @property
    def edge_case(self) -> EdgeCase | None:
        """The edge case whose declared value this row holds (None for a computed value)."""
        if self is RowStatus.SCORED:
            return None
        if self in (RowStatus.MISSING, RowStatus.INVALID):
            return EdgeCase.MISSING
        return EdgeCase(self.value)


class SubmissionStatus(_Status):
    """Where a submission stands in the registry."""

    PENDING = "pending"        # jobs created, none finished
    EVALUATING = "evaluating"  # some jobs ended or are being (re)scored
    COMPLETED = "completed"    # every job scored and metrics.json written

    @property
    def ranked(self) -> bool:
        """Only a completed submission has a full, consistent set of results to rank."""
        return self is SubmissionStatus.COMPLETED
