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
    """How a run ended: `status` is from the runner's closed set (evaluation.runner.status)."""

    status: str
    reason: str
    exit_code: int | None
    seconds: float
    log_path: str | None
    output_path: str | None


@dataclass(frozen=True)
class ScoreSpec:
    """One finished run to score: the reference, the run's status and its output (if any)."""

    job_id: int
    case: str
    reference_mask: str
    job_status: str
    reason: str | None
    output_path: str | None


@dataclass(frozen=True)
class ResultRow:
    """One row of the long result table (the layout of cases.csv); `label` is the scored mask
    value of a level's row (None for a group's row), as in evaluation.rows.ScoreRow."""

    case: str
    structure: str
    level: str
    metric: str
    value: float
    status: str
    label: int | None = None


@dataclass(frozen=True)
class CaseScore:
    """A case's rows, the rules version they follow, and how the case entered the results:
    `case_status` 'scored', 'missing' or 'invalid' (evaluation.rows.CaseStatus) with the reason."""

    rules_version: str
    rows: tuple[ResultRow, ...]
    case_status: str
    case_reason: str


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
        status=str(result.status.value),
        reason=result.reason,
        exit_code=result.exit_code,
        seconds=float(result.seconds),
        log_path=str(result.log_path),
        output_path=str(result.prediction_path) if result.prediction_path is not None else None,
    )
