"""A real SIGKILL of an engine process in the middle of a run, a restart, and exact counts after."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest
from engine_process import job_states, start_engine, wait_until  # noqa: E402  (this folder is on sys.path)
from sqlalchemy import func, select
from submissions_fakes import read_ledger
from submissions_testdata import case_names

from submissions.intake import set_phase
from submissions.models import Job, Result, Submission

CASES = 14
SUBMISSIONS = 2


@pytest.fixture
def busy_registry(registry, make_hidden_set, submit_fake, ledger, monkeypatch):
    """Two submissions of fourteen cases each (patients 1-7); each fake job takes 0.3 s."""
    hidden = make_hidden_set(case_names(CASES), folder="hidden-14")
    set_phase(registry, "sanity-check", data_dir=hidden, max_submissions=10)
    for index in range(SUBMISSIONS):
        submit_fake(f"team {index}", "algo")
    monkeypatch.setenv("SUBMISSIONS_FAKE_SECONDS", "0.3")
    return registry


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_mid_run_then_restart_loses_nothing_and_reruns_nothing_finished(
    busy_registry, db_url, work_dir, ledger, tmp_path
):
    registry = busy_registry
    log = tmp_path / "engines.log"
    snapshots = []
    for kill_after_scored in (4, 13):
        engine = start_engine(db_url, work_dir, log)
        try:
            wait_until(
                lambda target=kill_after_scored: sum(s for _, _, s in job_states(registry).values()) >= target
                and any(status == "running" for status, _, _ in job_states(registry).values()),
                timeout_s=90, what=f"{kill_after_scored} scored cases and a running job",
            )
        finally:
            engine.send_signal(signal.SIGKILL)
            engine.wait(timeout=30)
        assert engine.returncode == -signal.SIGKILL
        snapshots.append(job_states(registry))
    interrupted = {job for job, (status, _, _) in snapshots[-1].items() if status == "running"}
    assert interrupted, "the kill must land while a job runs"

    engine = start_engine(db_url, work_dir, log)
    stdout, _ = engine.communicate(timeout=120)
    assert engine.returncode == 0, log.read_text()
    report = json.loads(stdout.strip().splitlines()[-1])
    final = job_states(registry)

    # Every job ended and is scored; both submissions are completed with their metrics.json.
    assert all(scored and status not in ("pending", "running") for status, _, scored in final.values())
    with registry.session() as session:
        submissions = session.scalars(select(Submission)).all()
        assert [s.status for s in submissions] == ["completed"] * SUBMISSIONS
        for submission in submissions:
            metrics = json.loads(Path(submission.metrics_path).read_text(encoding="utf-8"))
            assert metrics["counts"] == {"scored": CASES - 2, "missing": 2, "invalid": 0}  # patient 7 "fails"
            assert len(metrics["case"]) == CASES
        # Exactly one set of rows per case: no row lost, none doubled.
        rows_per_job = Counter(session.scalars(select(Result.job_id)).all())
        assert set(rows_per_job) == set(final)
        distinct = session.execute(
            select(func.count()).select_from(
                select(Result.job_id, Result.structure, Result.level, Result.metric).distinct().subquery()
            )
        ).scalar_one()
        assert distinct == sum(rows_per_job.values())
        assert len(set(rows_per_job.values())) == 1  # every case has the same structures here
    assert report["runs"] + report["scored"] > 0

    # Runs: each attempt started at most once, the last one exactly once (an attempt claimed just
    # before a kill may never have started); a job finished before a kill never ran again; a job
    # interrupted was retried as a new attempt.
    started = Counter((job, attempt) for event, job, attempt, _pid in read_ledger(ledger) if event == "start")
    assert max(started.values()) == 1
    for job, (_status, attempts, _) in final.items():
        assert started[(job, attempts)] == 1, f"job {job}: its last attempt {attempts} did not run"
        assert all(attempt <= attempts for j, attempt in started if j == job)
    for snapshot in snapshots:
        for job, (status, attempts, _) in snapshot.items():
            if status not in ("pending", "running"):
                assert final[job][1] == attempts, f"job {job} finished before a kill and ran again"
            if status == "running":
                assert final[job][1] >= attempts + 1, f"interrupted job {job} was not retried"
    with registry.session() as session:
        for job in session.scalars(select(Job).where(Job.status == "succeeded")):
            assert f"attempt-{job.attempts}" in job.output_path  # results come from the last attempt's folder
