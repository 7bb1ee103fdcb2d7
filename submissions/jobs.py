"""The two kinds of task the engine dispatches, as picklable specs and results.

A *run* task runs one submission's container on one case: `JobFunction(JobSpec) -> JobOutcome`.
Production uses `run_container_job` (evaluation.runner with the production flags); tests may
inject a fast stand-in. A *score* task turns a finished run into the case's long result rows:
`ScoreFunction(ScoreSpec) -> CaseScore` (production: submissions.scoring.score_job).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from challenge.phases import Phase
from challenge.results import ScoreRow
from challenge.statuses import ENDED_JOB_STATUSES, JobStatus
from evaluation.report import CaseOutcome


@dataclass(frozen=True)
class JobSpec:
    """Everything a node needs to run one job; paths are in the shared work folder."""

    job_id: int
    submission_id: int
    case: str
    attempt: int
    image_digest: str
    image_archive: str | None
    input_image: str
    job_dir: str
    phase: Phase


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended: `status` is one of challenge.statuses.ENDED_JOB_STATUSES; `peak_memory_bytes`
    is the runner's measure of the job's memory (None when it could not measure it)."""

    status: JobStatus
    reason: str
    exit_code: int | None
    seconds: float
    log_path: str | None
    output_path: str | None
    peak_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        ended = {status.value: status for status in ENDED_JOB_STATUSES}
        if self.status not in ended:  # a str enum member is found by its value
            raise ValueError(f"a run ends with one of {list(ended)}, found {str(self.status)!r}")
        object.__setattr__(self, "status", ended[self.status])


@dataclass(frozen=True)
class ScoreSpec:
    """One finished run to score: the reference, the run's status and its output (if any), and the
    phase's scoring time limit (a case whose scoring takes longer is invalid)."""

    job_id: int
    case: str
    reference_mask: str
    job_status: JobStatus
    reason: str | None
    output_path: str | None
    scoring_time_limit_seconds: int


@dataclass(frozen=True)
class CaseScore:
    """A case's rows, the rules version they follow, and how the case entered the results."""

    rules_version: str
    outcome: CaseOutcome
    rows: tuple[ScoreRow, ...]


JobFunction = Callable[[JobSpec], JobOutcome]
ScoreFunction = Callable[[ScoreSpec], CaseScore]


def run_container_job(spec: JobSpec) -> JobOutcome:
    """Run the submission's image on the case with the production flags (on this node's Docker)."""
    from evaluation.runner.docker_runner import connect, run_job
    from submissions.images import ensure_loaded

    client = connect()
    ensure_loaded(spec.image_digest, spec.image_archive, client=client)
    result = run_job(
        client,
        image_id=spec.image_digest,
        case=spec.case,
        input_image=Path(spec.input_image),
        phase=spec.phase,
        job_dir=Path(spec.job_dir),
    )
    return JobOutcome(
        status=result.status,
        reason=result.reason,
        exit_code=result.exit_code,
        seconds=float(result.seconds),
        log_path=str(result.log_path),
        output_path=str(result.prediction_path) if result.prediction_path is not None else None,
        peak_memory_bytes=result.peak_memory_bytes,
    )
