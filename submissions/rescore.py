"""Rescoring: results recomputed from stored job outputs under the current rules, no container run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select

from challenge.rules import RULES_VERSION
from submissions import claims
from submissions.db import Registry
from submissions.engine import evaluate
from submissions.errors import UnknownRecordError
from submissions.executors import Executor
from submissions.jobs import ScoreFunction
from submissions.models import PhaseRecord, Submission


@dataclass(frozen=True)
class RescoreReport:
    cases: int
    submissions: tuple[int, ...]
    rules_version: str


def _in_phase(registry: Registry, phase: str, submission_ids) -> list[int]:
    with registry.session() as session:
        phase_id = session.scalar(select(PhaseRecord.id).where(PhaseRecord.name == phase))
        if phase_id is None:
            raise UnknownRecordError(f"phase {phase!r} is not registered")
        query = select(Submission.id).where(Submission.phase_id == phase_id)
        if submission_ids is not None:
            query = query.where(Submission.id.in_(list(submission_ids)))
        return list(session.scalars(query.order_by(Submission.id)).all())


def rescore(
    registry: Registry,
    executor: Executor,
    *,
    submission_ids: list[int] | None = None,
    phase: str | None = None,
    everything: bool = False,
    score_function: ScoreFunction | None = None,
    rules_version: str = RULES_VERSION,
    progress: Callable[[str], None] | None = None,
) -> RescoreReport:
    """Score finished jobs again from their stored outputs and rewrite the submissions' metrics.json.

    `everything` rescores every finished case; otherwise only cases not scored under
    `rules_version` (the current challenge.rules.RULES_VERSION). Jobs still pending or running are
    left to `spider evaluate`. Interrupted, it resumes where it stopped when run again.
    """
    scope = submission_ids
    if phase is not None:
        scope = _in_phase(registry, phase, submission_ids)
    touched = claims.reset_scores(registry, submission_ids=scope, stale_for=None if everything else rules_version)
    report = evaluate(
        registry,
        executor,
        submission_ids=scope,
        score_function=score_function,
        scoring_only=True,
        progress=progress,
    )
    return RescoreReport(
        cases=report.scored,
        submissions=tuple(sorted(set(touched) | set(report.completed))),
        rules_version=rules_version,
    )
