"""The leaderboard's read API: every submission of a phase with its rows and jobs."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from submissions_fakes import copy_reference_job

from challenge.results import ScoreRow
from challenge.rules import RULES_VERSION
from submissions.engine import evaluate
from submissions.errors import UnknownRecordError
from submissions.executors import LocalExecutor
from submissions.queries import JobRecord, SubmissionResults, phase_results, submission_summaries


@pytest.mark.timeout(120)
def test_phase_results_by_session_registry_or_url(registry, db_url, phase, submit_fake, ledger):
    done = submit_fake("team a", "first")
    waiting = submit_fake("team b", "second")
    executor = LocalExecutor(1)
    try:
        evaluate(registry, executor, submission_ids=[done.id], job_function=copy_reference_job)
    finally:
        executor.close()
    with registry.session() as session:
        by_session = phase_results(session, "sanity-check")
    assert phase_results(registry, "sanity-check") == by_session
    assert phase_results(db_url, "sanity-check") == by_session

    first, second = by_session
    assert isinstance(first, SubmissionResults) and [first.id, second.id] == [done.id, waiting.id]
    assert (first.team, first.algorithm_name, first.status, first.rules_version) == (
        "team a", "first", "completed", RULES_VERSION
    )
    assert first.created_at.tzinfo is not None and first.created_at <= dt.datetime.now(dt.timezone.utc)
    assert first.image_digest == done.image_digest
    assert all(isinstance(row, ScoreRow) and isinstance(row.value, float) for row in first.rows)
    assert [row.case for row in first.rows] == sorted(row.case for row in first.rows)
    assert {row.case for row in first.rows} == set(phase.cases)
    assert all(isinstance(job, JobRecord) for job in first.jobs)
    assert [(j.case, j.status, j.attempts) for j in first.jobs] == [(c, "succeeded", 1) for c in phase.cases]
    assert all(j.seconds is not None and j.log_path.endswith("log.txt") for j in first.jobs)
    assert (second.status, second.rows, second.rules_version) == ("pending", (), None)
    assert [(j.status, j.seconds, j.log_path) for j in second.jobs] == [("pending", None, None)] * 6
    assert not any(math.isnan(row.value) for row in first.rows)

    summaries = submission_summaries(registry, "sanity-check")
    assert [(s.id, s.job_counts) for s in summaries] == [(done.id, {"succeeded": 6}), (waiting.id, {"pending": 6})]
    assert summaries[0].as_json()["name"] == "first" and summaries[0].as_json()["digest"] == done.image_digest


def test_unknown_phase(registry):
    with pytest.raises(UnknownRecordError, match="phase 'nope' is not registered"):
        phase_results(registry, "nope")
