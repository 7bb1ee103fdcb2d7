"""The engine in this process with the fake job: results, leases, retries, give-ups."""

from __future__ import annotations

import datetime as dt
import json
import math
import time

import pytest
from sqlalchemy import select, update
from submissions_fakes import (
    HANGING_CASE,
    copy_reference_job,
    must_not_run,
    raising_job,
    read_ledger,
    score_job_hanging_on_one_case,
)

from challenge.rules import RULES_VERSION
from submissions import claims
from submissions.engine import evaluate
from submissions.errors import EngineError
from submissions.executors import LocalExecutor
from submissions.models import Job, Result, Submission, utcnow
from submissions.queries import phase_results


@pytest.fixture
def executor():
    executor = LocalExecutor(2)
    yield executor
    executor.close()


def rows_of(result, case: str) -> dict[tuple[str, str, str], tuple[float, str]]:
    return {(r.structure, r.level, r.metric): (r.value, r.status) for r in result.rows if r.case == case}


@pytest.mark.timeout(120)
def test_evaluate_runs_scores_and_completes(registry, phase, submit_fake, executor, ledger, work_dir):
    receipt = submit_fake("team a", "copy")
    report = evaluate(registry, executor, job_function=copy_reference_job)
    assert (report.runs, report.scored, report.completed) == (6, 6, [receipt.id])

    [result] = phase_results(registry, "sanity-check")
    assert (result.status, result.team, result.algorithm_name, result.rules_version) == (
        "completed", "team a", "copy", RULES_VERSION
    )
    assert [(job.case, job.status, job.attempts) for job in result.jobs] == [
        (case, "succeeded", 1) for case in phase.cases
    ]
    perfect = rows_of(result, "1_t1")
    assert perfect[("vertebrae", "all", "dice")] == (1.0, "scored")
    assert perfect[("spinal_canal", "all", "assd")] == (0.0, "scored")
    assert perfect[("discs", "all", "detection_rate")] == (1.0, "scored")
    with registry.session() as session:
        stored_versions = set(session.scalars(select(Result.rules_version).where(Result.submission_id == receipt.id)))
        assert stored_versions == {RULES_VERSION}

    metrics_path = work_dir / "submissions" / str(receipt.id) / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    assert set(metrics) >= {"case", "aggregates", "rules_version", "schema_version"}
    assert sorted(metrics["case"]) == list(phase.cases)
    assert metrics["aggregates"]["vertebrae/all/dice"]["mean"] == 1.0
    assert metrics["aggregates"]["vertebrae/all/dice"]["n"] == 6
    assert (metrics_path.parent / "cases.csv").read_text(encoding="utf-8").startswith(
        "case,structure,level,metric,value,status\n"
    )
    with registry.session() as session:
        assert session.get(Submission, receipt.id).metrics_path == str(metrics_path)
    # Run again: nothing left to do, nothing runs twice.
    again = evaluate(registry, executor, job_function=must_not_run)
    assert (again.runs, again.scored, again.completed) == (0, 0, [])
    assert len([e for e in read_ledger(ledger) if e[0] == "start"]) == 6


@pytest.mark.timeout(120)
def test_failed_and_empty_predictions_take_the_declared_worst_values(registry, make_hidden_set, submit_fake, executor):
    from submissions.intake import set_phase

    hidden = make_hidden_set(["5_t1", "7_t2"])  # patient 5: empty prediction; patient 7: the job fails
    set_phase(registry, "sanity-check", data_dir=hidden)
    submit_fake()
    evaluate(registry, executor, job_function=copy_reference_job)
    [result] = phase_results(registry, "sanity-check")
    empty, failed = rows_of(result, "5_t1"), rows_of(result, "7_t2")
    assert empty[("vertebrae", "all", "dice")] == (0.0, "prediction_empty")
    assert failed[("vertebrae", "all", "dice")] == (0.0, "missing")
    # The worst distance: the field-of-view diagonal of the 10 x 24 x 16 grid at (3.3, 0.6, 0.7) mm.
    assert failed[("spinal_canal", "all", "hd95")] == (pytest.approx(math.sqrt(33.0**2 + 14.4**2 + 11.2**2)), "missing")
    job = {j.case: j for j in result.jobs}["7_t2"]
    assert (job.status, job.reason) == ("failed", "exited with code 3; last log line: fake: giving up")
    metrics = json.loads(open(result_metrics(registry, result.id), encoding="utf-8").read())
    assert metrics["case"]["7_t2"]["status"] == "missing"
    assert metrics["case"]["7_t2"]["reason"].startswith("exited with code 3")


@pytest.mark.timeout(120)
def test_a_case_whose_scoring_hangs_is_invalid_and_the_rest_of_the_phase_is_scored(
        registry, phase, hidden_set, submit_fake, executor):
    from submissions.intake import set_phase

    set_phase(registry, "sanity-check", data_dir=hidden_set, scoring_time_limit_seconds=2)
    receipt = submit_fake()
    began = time.monotonic()
    report = evaluate(registry, executor, job_function=copy_reference_job, score_function=score_job_hanging_on_one_case)
    assert time.monotonic() - began < 60
    assert (report.runs, report.scored, report.completed, report.retried_later) == (6, 6, [receipt.id], 0)
    [result] = phase_results(registry, "sanity-check")
    statuses = {job.case: (job.status, job.case_status) for job in result.jobs}
    assert statuses == {case: ("succeeded", "invalid" if case == HANGING_CASE else "scored") for case in phase.cases}
    assert rows_of(result, HANGING_CASE)[("vertebrae", "all", "dice")] == (0.0, "invalid")
    assert {status for _, status in rows_of(result, HANGING_CASE).values()} == {"invalid"}
    assert rows_of(result, "1_t1")[("vertebrae", "all", "dice")] == (1.0, "scored")
    metrics = json.loads(open(result_metrics(registry, receipt.id), encoding="utf-8").read())
    assert metrics["case"][HANGING_CASE]["status"] == "invalid"
    assert metrics["case"][HANGING_CASE]["reason"] == "scoring took longer than 2 s (the scoring time limit)"
    assert metrics["counts"] == {"scored": 5, "missing": 0, "invalid": 1}


def result_metrics(registry, submission_id: int) -> str:
    with registry.session() as session:
        return session.get(Submission, submission_id).metrics_path


@pytest.mark.timeout(120)
def test_a_finished_but_unscored_job_is_scored_without_running_again(registry, phase, submit_fake, executor):
    """The engine died after storing a run and before storing its scores."""
    receipt = submit_fake()
    owner = "elsewhere/1/dead"
    [job] = claims.claim_runs(registry, owner, limit=1, lease_seconds=60)
    outcome = copy_reference_job(_spec_for(registry, job))
    assert claims.record_run(registry, owner, job.job_id, outcome, lease_seconds=60)
    _expire_leases(registry)
    report = evaluate(registry, executor, job_function=copy_reference_job, submission_ids=[receipt.id])
    assert (report.runs, report.scored) == (5, 6)
    with registry.session() as session:
        stored = session.get(Job, job.job_id)
        assert (stored.attempts, stored.output_path, stored.scored_rules_version) == (
            1, outcome.output_path, RULES_VERSION)


def _spec_for(registry, job):
    from pathlib import Path

    from submissions.jobs import JobSpec
    from submissions.layout import job_attempt_dir

    return JobSpec(job.job_id, job.submission_id, job.case, job.attempt, job.image_digest, job.image_archive,
                   str(Path(job.data_dir) / "images" / f"{job.case}.mha"),
                   str(job_attempt_dir(registry.work_dir, job.submission_id, job.job_id, job.attempt)), job.phase)


def _expire_leases(registry) -> None:
    with registry.session() as session, session.begin():
        session.execute(
            update(Job).where(Job.lease_owner.is_not(None)).values(lease_expires_at=utcnow() - dt.timedelta(seconds=1))
        )


@pytest.mark.timeout(120)
def test_leases_of_other_engines_are_respected_until_they_expire(registry, phase, submit_fake, executor):
    submit_fake()
    [held] = claims.claim_runs(registry, "another-host/4242/live", limit=1, lease_seconds=600)
    report = evaluate(registry, executor, job_function=copy_reference_job)
    assert (report.runs, report.completed, report.held_by_others) == (5, [], 1)  # the held job is left to its engine
    with registry.session() as session:
        assert session.get(Job, held.job_id).status == "running"
    _expire_leases(registry)  # that engine died
    report = evaluate(registry, executor, job_function=copy_reference_job)
    assert (report.runs, len(report.completed)) == (1, 1)
    with registry.session() as session:
        assert session.get(Job, held.job_id).attempts == 2


@pytest.mark.timeout(120)
def test_a_job_interrupted_max_attempts_times_ends_failed(registry, phase, submit_fake, executor):
    submit_fake()
    [job] = claims.claim_runs(registry, "another-host/1/gone", limit=1, lease_seconds=60)
    with registry.session() as session, session.begin():
        session.execute(update(Job).where(Job.id == job.job_id).values(attempts=3))
    _expire_leases(registry)
    report = evaluate(registry, executor, job_function=copy_reference_job, max_attempts=3)
    assert report.failed_after_attempts == [job.job_id]
    assert report.completed  # the failed job is scored as a missing case and the submission completes
    with registry.session() as session:
        stored = session.get(Job, job.job_id)
        assert (stored.status, stored.attempts, stored.case_status) == ("failed", 3, "missing")
        assert "interrupted during each of 3 attempts" in stored.reason


@pytest.mark.timeout(120)
def test_jobs_that_raise_are_given_back_and_the_engine_stops(registry, phase, submit_fake, executor, ledger):
    submit_fake()
    with pytest.raises(EngineError, match="3 tasks in a row raised.*no Docker engine on this node"):
        evaluate(registry, executor, job_function=raising_job)
    with registry.session() as session:
        jobs = session.scalars(select(Job)).all()
        assert {job.status for job in jobs} == {"pending"}  # nothing lost, nothing ended
        assert {job.attempts for job in jobs} <= {0, 1}  # no job was tried twice in one run
        assert sum(job.attempts for job in jobs) == len([e for e in read_ledger(ledger) if e[0] == "start"])
        assert all(job.lease_owner is None for job in jobs)


@pytest.mark.timeout(120)
def test_a_job_that_cannot_run_in_max_attempts_ends_not_started(registry, make_hidden_set, submit_fake, executor):
    from submissions.intake import set_phase

    set_phase(registry, "sanity-check", data_dir=make_hidden_set(["1_t1"]))
    submit_fake()
    for attempt in (1, 2):  # one try per engine run: a problem of the node must not burn all attempts at once
        report = evaluate(registry, executor, job_function=raising_job, max_attempts=3)
        assert (report.retried_later, report.scored, report.completed) == (1, 0, [])
        with registry.session() as session:
            assert session.scalars(select(Job)).one().attempts == attempt
    report = evaluate(registry, executor, job_function=raising_job, max_attempts=3)
    assert (report.failed_after_attempts, report.scored, len(report.completed)) == ([1], 1, 1)
    with registry.session() as session:
        job = session.scalars(select(Job)).one()
        assert (job.status, job.attempts, job.case_status) == ("not_started", 3, "missing")
        assert "could not be run in 3 attempts" in job.reason


def test_a_lost_lease_cannot_overwrite_the_new_owners_work(registry, phase, submit_fake):
    submit_fake()
    [job] = claims.claim_runs(registry, "slow-engine", limit=1, lease_seconds=60)
    _expire_leases(registry)
    [again] = [
        j for j in claims.claim_runs(registry, "fast-engine", limit=6, lease_seconds=60) if j.job_id == job.job_id
    ]
    assert again.attempt == 2
    outcome = copy_reference_job(_spec_for(registry, again))
    assert not claims.record_run(registry, "slow-engine", job.job_id, outcome, lease_seconds=60)
    assert claims.record_run(registry, "fast-engine", job.job_id, outcome, lease_seconds=60)
    assert claims.renew(registry, "slow-engine", [job.job_id], lease_seconds=60) == 0


def test_nan_values_survive_the_database(registry, phase, submit_fake):
    from challenge.results import ScoreRow
    from challenge.statuses import CaseStatus, RowStatus
    from evaluation.report import CaseOutcome
    from submissions.jobs import CaseScore

    submit_fake()
    [job] = claims.claim_runs(registry, "me", limit=1, lease_seconds=60)
    outcome = copy_reference_job(_spec_for(registry, job))
    claims.record_run(registry, "me", job.job_id, outcome, lease_seconds=60)
    rows = (ScoreRow(job.case, "discs", "all", "dice", math.nan, RowStatus.SCORED),
            ScoreRow(job.case, "discs", "all", "hd95", math.inf, RowStatus.SCORED))
    assert claims.record_score(registry, "me", job, CaseScore("1.0.0", CaseOutcome(job.case, CaseStatus.SCORED), rows))
    with registry.session() as session:
        values = [r.value for r in session.scalars(select(Result).order_by(Result.id))]
    assert math.isnan(values[0]) and values[1] == math.inf


class _RecordingExecutor:
    def __init__(self):
        self.calls = []

    def abandon(self):
        self.calls.append("abandon")

    def close(self):
        self.calls.append("close")


def test_an_opened_executor_is_closed_after_its_block_and_abandoned_when_it_fails(monkeypatch):
    import submissions.executors as executors

    made = []
    monkeypatch.setattr(executors, "make_executor", lambda kind, **_: made.append(_RecordingExecutor()) or made[-1])
    with executors.opened_executor("local", workers=1) as executor:
        assert executor.calls == []
    assert executor.calls == ["close"]
    with pytest.raises(KeyboardInterrupt):
        with executors.opened_executor("local", workers=1):
            raise KeyboardInterrupt
    assert made[-1].calls == ["abandon"]


def test_container_chosen_text_is_stored_printable_on_every_database(registry, phase, submit_fake):
    """A NUL (refused by PostgreSQL) or a lone surrogate (an undecodable file name, refused by every
    driver) in a run's reason is stored as printable text instead of failing the engine."""
    import os

    from submissions.jobs import JobOutcome

    submit_fake()
    [job] = claims.claim_runs(registry, "me", limit=1, lease_seconds=60)
    reason = "exited with code 1; last log line: bad\x00byte " + os.fsdecode(b"seg\xff.mha")
    outcome = JobOutcome("failed", reason, 1, 0.5, None, None)
    assert claims.record_run(registry, "me", job.job_id, outcome, lease_seconds=60)
    with registry.session() as session:
        stored = session.get(Job, job.job_id).reason
    assert stored == "exited with code 1; last log line: badbyte seg\\xff.mha"
