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


def test_a_runs_peak_memory_reads_back_and_a_new_attempt_clears_it(registry, db_url, work_dir, phase, submit_fake):
    """The runner's peak memory is stored with the run's outcome and read back by read_phase (5 GiB:
    more than a 4-byte integer holds); a job claimed again starts without one."""
    import datetime as dt

    from sqlalchemy import update

    from submissions import claims
    from submissions.jobs import JobOutcome
    from submissions.models import Job, utcnow
    from submissions.queries import read_phase

    submit_fake()
    measured, unmeasured = claims.claim_runs(registry, "me", limit=2, lease_seconds=60)
    peak = 5 * 1024**3
    assert claims.record_run(registry, "me", measured.job_id, JobOutcome("failed", "exited with code 1", 1, 0.1,
                                                                          None, None, peak), lease_seconds=60)
    assert claims.record_run(registry, "me", unmeasured.job_id, JobOutcome("failed", "exited with code 1", 1, 0.1,
                                                                            None, None), lease_seconds=60)
    [submission] = read_phase(db_url, "sanity-check", work=work_dir).submissions
    by_case = {job.case: job.peak_memory_bytes for job in submission.jobs}
    assert (by_case[measured.case], by_case[unmeasured.case]) == (peak, None)
    assert [value for case, value in by_case.items() if case not in (measured.case, unmeasured.case)] == [None] * 4

    # A job with a peak whose lease ran out while running (set by hand) is claimed again: a new attempt.
    with registry.session() as session, session.begin():
        session.execute(update(Job).where(Job.id == measured.job_id).values(
            status="running", lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    [again] = claims.claim_runs(registry, "other", limit=1, lease_seconds=60, submission_ids=[measured.submission_id],
                                exclude=[unmeasured.job_id])
    assert again.job_id == measured.job_id
    with registry.session() as session:
        assert session.get(Job, measured.job_id).peak_memory_bytes is None
