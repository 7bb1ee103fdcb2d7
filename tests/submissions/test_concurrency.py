"""Engines that run at the same time on one registry never run a job twice."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from engine_process import job_states, start_engine  # noqa: E402  (this folder is on sys.path)
from sqlalchemy import select
from submissions_fakes import read_ledger
from submissions_testdata import case_names

from submissions import claims
from submissions.intake import set_phase
from submissions.models import Job, Submission


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_three_engines_at_once_run_each_job_exactly_once(
    registry, db_url, work_dir, make_hidden_set, submit_fake, ledger, monkeypatch, tmp_path
):
    hidden = make_hidden_set(case_names(10), folder="hidden-10")
    set_phase(registry, "sanity-check", data_dir=hidden, max_submissions=10)
    for index in range(3):
        submit_fake(f"team {index}")
    monkeypatch.setenv("SUBMISSIONS_FAKE_SECONDS", "0.1")
    log = tmp_path / "engines.log"
    engines = [start_engine(db_url, work_dir, log, workers=2) for _ in range(3)]
    reports = []
    for engine in engines:
        stdout, _ = engine.communicate(timeout=180)
        assert engine.returncode == 0, log.read_text()
        reports.append(json.loads(stdout.strip().splitlines()[-1]))

    final = job_states(registry)
    assert len(final) == 30
    assert all(attempts == 1 and scored for _, attempts, scored in final.values())
    starts = Counter((job, attempt) for event, job, attempt, _pid in read_ledger(ledger) if event == "start")
    assert starts == Counter({(job, 1): 1 for job in final})  # each job ran once, in one engine
    assert sum(report["runs"] for report in reports) == 30
    assert sum(report["scored"] for report in reports) == 30
    assert sum(len(report["completed"]) for report in reports) == 3
    assert sum(report["lost_leases"] for report in reports) == 0
    assert sum(1 for report in reports if report["runs"]) >= 2, "the engines should share the work"
    with registry.session() as session:
        assert [s.status for s in session.scalars(select(Submission))] == ["completed"] * 3


@pytest.mark.timeout(120)
def test_racing_claims_from_threads_take_each_job_once(registry, phase, submit_fake):
    """Eight claimers, each with its own connection, race for 3 x 6 jobs one claim at a time."""
    for index in range(3):
        submit_fake(f"team {index}")
    owners = [claims.new_owner() for _ in range(8)]
    taken: dict[str, list[int]] = {owner: [] for owner in owners}
    barrier = threading.Barrier(len(owners))

    def claimer(owner: str) -> None:
        barrier.wait()
        while True:
            jobs = claims.claim_runs(registry, owner, limit=1, lease_seconds=60)
            if not jobs:
                return
            taken[owner].extend(job.job_id for job in jobs)

    threads = [threading.Thread(target=claimer, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    claimed = [job for jobs in taken.values() for job in jobs]
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 18
    with registry.session() as session:
        for job in session.scalars(select(Job)):
            assert job.status == "running" and job.attempts == 1
            assert job.id in taken[job.lease_owner]
