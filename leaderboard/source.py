"""Reading a phase from the submission registry into the leaderboard's input records.

The registry's read API (`submissions.queries.phase_results`) gives submissions, result rows
and jobs. Where a prediction file and the phase's test set folder are kept is not part of that
API yet, so `load_phase` reads those two facts (Job.output_path, PhaseRecord.data_dir and the
phase's case list) from the registry's tables directly, read-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from leaderboard.inputs import JobRecord, ResultRow, SubmissionResults

GROUP_LEVEL = "all"
"""The level the scoring engine writes for a whole group's value in a case (evaluation.rows)."""


@dataclass(frozen=True)
class PhaseData:
    """Everything the site needs about one phase of the registry."""

    phase: str
    submissions: tuple[SubmissionResults, ...]
    cases: tuple[str, ...]
    test_set: Path | None


def _value(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def convert(record, *, prediction_paths: dict[str, str] | None = None) -> SubmissionResults:
    """One `submissions.queries.SubmissionResults` as a leaderboard record.

    Level "all" (or empty) becomes None, NaN values become None, the id becomes text.
    """
    prediction_paths = prediction_paths or {}
    rows = tuple(
        ResultRow(
            case=r.case, structure=r.structure, level=None if r.level in (GROUP_LEVEL, "", None) else r.level,
            metric=r.metric, value=_value(r.value), status=r.status,
        )
        for r in record.results
    )
    jobs = tuple(
        JobRecord(case=j.case, status=j.status, reason=j.reason, seconds=j.seconds, log_path=j.log_path,
                  prediction_path=getattr(j, "output_path", None) or prediction_paths.get(j.case))
        for j in record.jobs
    )
    return SubmissionResults(
        id=str(record.id), team=record.team, algorithm=record.algorithm_name, image_digest=record.image_digest,
        created_at=record.created_at, status=record.status, rows=rows, jobs=jobs, rules_version=record.rules_version,
    )


def load_phase(db: str | None, phase: str, *, work: Path | None = None) -> PhaseData:
    """The phase's submissions, its case list and its test set folder from the registry.

    `db` and `work` resolve as in every registry command (--db, $SPIDER_DB, the work folder).
    """
    from sqlalchemy import select

    from submissions.db import open_registry
    from submissions.models import Case, Job, PhaseRecord
    from submissions.queries import phase_results

    registry = open_registry(db, work=work)
    try:
        records = phase_results(registry, phase)
        with registry.session() as session:
            phase_record = session.scalars(select(PhaseRecord).where(PhaseRecord.name == phase)).one()
            cases = tuple(session.scalars(select(Case.name).where(Case.phase_id == phase_record.id).order_by(Case.name)))
            data_dir = phase_record.data_dir
            outputs: dict[str, dict[str, str]] = {}
            ids = [record.id for record in records]
            if ids:
                for submission_id, case, output in session.execute(
                    select(Job.submission_id, Job.case, Job.output_path).where(Job.submission_id.in_(ids))
                ):
                    if output:
                        outputs.setdefault(str(submission_id), {})[case] = output
    finally:
        registry.dispose()
    submissions = tuple(convert(r, prediction_paths=outputs.get(str(r.id))) for r in records)
    test_set = Path(data_dir) if data_dir and Path(data_dir).is_dir() else None
    return PhaseData(phase, submissions, cases, test_set)
