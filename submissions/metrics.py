"""A submission's metrics.json and cases.csv, written from its stored rows (the registry is the truth)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import select

from challenge.rules import RULES_VERSION
from evaluation.report import CASES_FILE, CaseOutcome, build_report, cases_csv_text, metrics_json_text
from submissions.db import Registry
from submissions.errors import EngineError
from submissions.layout import metrics_path, write_atomically
from submissions.models import Job, Result
from submissions.scoring import SCORING_PROFILE


def write_metrics(registry: Registry, submission_id: int) -> tuple[Path, str]:
    """Write <work>/submissions/<id>/metrics.json (grand-challenge layout) and cases.csv from the
    registry's rows; returns the metrics path and the rules version of the rows."""
    with registry.session() as session:
        jobs = session.execute(
            select(Job.case, Job.case_status, Job.case_reason)
            .where(Job.submission_id == submission_id)
            .order_by(Job.case)
        ).all()
        results = session.scalars(select(Result).where(Result.submission_id == submission_id).order_by(Result.id)).all()
    unscored = [case for case, status, _ in jobs if status is None]
    if unscored:
        raise EngineError(f"submission {submission_id}: cases {unscored[:5]} are not scored yet")
    versions = {row.rules_version for row in results}
    if len(versions) > 1:
        raise EngineError(f"submission {submission_id}: results of several rules versions {sorted(versions)}")
    # Every status is set (unscored cases raised above); the filter narrows the type.
    outcomes = [CaseOutcome(case, status, reason or "") for case, status, reason in jobs if status is not None]
    rows = [result.as_row() for result in results]
    version = versions.pop() if versions else RULES_VERSION
    report = dataclasses.replace(build_report(SCORING_PROFILE, outcomes, rows), rules_version=version)
    path = metrics_path(registry.work_dir, submission_id)
    write_atomically(path, metrics_json_text(report))
    write_atomically(path.with_name(CASES_FILE), cases_csv_text(report))
    return path, version

