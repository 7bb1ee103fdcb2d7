"""The closed set of job statuses and the six that reports show to participants."""

from __future__ import annotations

import enum


class JobStatus(str, enum.Enum):
    """How one algorithm job ended. Every job ends with exactly one of these."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"
    MISSING_OUTPUT = "missing_output"
    INVALID_OUTPUT = "invalid_output"
    OUTPUT_TOO_LARGE = "output_too_large"
    NOT_STARTED = "not_started"

    def __str__(self) -> str:
        return self.value

    @property
    def reported(self) -> "JobStatus":
        """The closest of the six statuses in jobs.json; the job's reason keeps the detail."""
        return _REPORTED.get(self, self)

    @property
    def ok(self) -> bool:
        return self is JobStatus.SUCCEEDED


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
