"""Rescoring from stored outputs under a new rules version, without running a container."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from submissions_fakes import TEST_RULES_VERSION, copy_reference_job, read_ledger, rescore_with_test_version

from challenge.rules import RULES_VERSION
from submissions.engine import evaluate
from submissions.executors import LocalExecutor
from submissions.models import Job, Result, Submission
from submissions.queries import phase_results
from submissions.rescore import rescore


@pytest.fixture
def executor():
    executor = LocalExecutor(2)
    yield executor
    executor.close()


@pytest.fixture
def evaluated(registry, phase, submit_fake, executor, ledger):
    first, second = submit_fake("team a"), submit_fake("team b")
    evaluate(registry, executor, job_function=copy_reference_job)
    return first.id, second.id


def job_snapshot(registry):
    with registry.session() as session:
        return {
            job.id: (job.status, job.attempts, job.output_path, job.finished_at) for job in session.scalars(select(Job))
        }


@pytest.mark.timeout(120)
def test_rescore_all_under_a_new_rules_version_runs_no_container(registry, evaluated, executor, ledger, phase):
    before_runs = read_ledger(ledger)
    before_jobs = job_snapshot(registry)
    [old_a, old_b] = phase_results(registry, "sanity-check")
    # The scorer labels its rows with another rules version (a stand-in for a changed challenge.rules);
    # the job function is not given: a container run would need Docker and fail.
    report = rescore(registry, executor, everything=True, score_function=rescore_with_test_version,
                     rules_version=TEST_RULES_VERSION)
    assert (report.cases, report.submissions) == (12, evaluated)
    assert read_ledger(ledger) == before_runs  # no job ran
    assert job_snapshot(registry) == before_jobs  # runs, attempts and outputs untouched
    [new_a, new_b] = phase_results(registry, "sanity-check")
    for old, new in ((old_a, new_a), (old_b, new_b)):
        assert (new.status, new.rules_version) == ("completed", TEST_RULES_VERSION)
        with registry.session() as session:
            stored = set(session.scalars(select(Result.rules_version).where(Result.submission_id == new.id)))
        assert stored == {TEST_RULES_VERSION}
        strip = lambda rows: [(r.case, r.structure, r.level, r.metric, r.value, r.status) for r in rows]  # noqa: E731
        assert strip(new.rows) == strip(old.rows)  # same outputs, same scoring code: same values
        with registry.session() as session:
            metrics = json.loads(open(session.get(Submission, new.id).metrics_path, encoding="utf-8").read())
        assert metrics["rules_version"] == TEST_RULES_VERSION


@pytest.mark.timeout(120)
def test_rescore_without_all_touches_only_stale_cases(registry, evaluated, executor):
    assert rescore(registry, executor).cases == 0  # everything is scored under the current rules
    with registry.session() as session, session.begin():
        stale = session.scalars(select(Job).where(Job.submission_id == evaluated[1]).order_by(Job.id)).first()
        stale.scored_rules_version = "0.9.0"
        session.get(Submission, evaluated[1]).rules_version = "0.9.0"
    report = rescore(registry, executor)
    assert (report.cases, report.submissions) == (1, (evaluated[1],))
    with registry.session() as session:
        assert session.get(Submission, evaluated[1]).rules_version == RULES_VERSION
        assert session.get(Job, stale.id).scored_rules_version == RULES_VERSION


@pytest.mark.timeout(120)
def test_rescore_of_one_phase_or_submission_leaves_the_others(registry, evaluated, executor):
    report = rescore(registry, executor, submission_ids=[evaluated[0]], everything=True,
                     score_function=rescore_with_test_version, rules_version=TEST_RULES_VERSION)
    assert report.submissions == (evaluated[0],)
    with registry.session() as session:
        versions = dict(session.execute(select(Result.submission_id, Result.rules_version).distinct()).all())
    assert versions == {evaluated[0]: TEST_RULES_VERSION, evaluated[1]: RULES_VERSION}
    from submissions.errors import UnknownRecordError

    with pytest.raises(UnknownRecordError, match="'final' is not registered"):
        rescore(registry, executor, phase="final")
