"""From the registry to the site: the adapter over submissions.queries and `spider leaderboard build`."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from challenge.cli import main
from challenge.rules import RULES_VERSION

from .conftest import CASES, EVIL_TEAM, T0, make_phase_submissions, write_predictions, write_test_set


@pytest.fixture
def registry_url(tmp_path):
    """A SQLite registry holding the synthetic phase 'final' (written through the registry's models)."""
    from submissions.db import open_registry
    from submissions.models import Case, Job, PhaseRecord, Result, Submission, Team

    test_set = write_test_set(tmp_path / "test-set")
    submissions = make_phase_submissions()
    predictions = write_predictions(tmp_path / "stored", submissions)
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    registry = open_registry(url, work=tmp_path / "work")
    with registry.session() as session:
        phase = PhaseRecord(name="final", description="", data_dir=str(test_set), time_limit_seconds=60,
                            memory_bytes=2**30, cpus=1.0, gpus=0, pids_limit=64, tmp_bytes=2**20,
                            output_limit_bytes=2**20, submission_period="phase")
        phase.cases = [Case(name=case) for case in CASES]
        session.add(phase)
        teams = {}
        for index, s in enumerate(submissions):
            team = teams.get(s.team) or Team(name=s.team)
            teams[s.team] = team
            record = Submission(phase=phase, team=team, algorithm_name=s.algorithm, image_digest=s.image_digest,
                                source="test", created_at=T0 + timedelta(hours=index), status="completed",
                                rules_version=RULES_VERSION)
            session.add(record)
            session.flush()
            for job in s.jobs:
                output = predictions / s.id / f"{job.case}.mha"
                job_record = Job(submission_id=record.id, case=job.case, status=job.status, reason=job.reason,
                                 seconds=job.seconds, log_path=job.log_path,
                                 output_path=str(output) if output.is_file() else None)
                session.add(job_record)
                session.flush()
                for row in s.rows:
                    if row.case == job.case:
                        session.add(Result(job_id=job_record.id, submission_id=record.id, case=row.case,
                                           structure=row.structure, level=row.level or "all", metric=row.metric,
                                           value=row.value, status=row.status, rules_version=RULES_VERSION))
        session.commit()
    registry.dispose()
    return url


@pytest.mark.timeout(120)
def test_load_phase_converts_levels_values_and_paths(registry_url):
    from leaderboard.source import load_phase

    data = load_phase(registry_url, "final")
    assert data.cases == tuple(sorted(CASES))
    assert data.test_set is not None and (data.test_set / "overview.csv").is_file()
    first = data.submissions[0]
    assert first.id == "1" and first.team == "reference" and first.algorithm == "unet-s1"
    assert {row.level for row in first.rows} >= {None, "L5", "L5/S1"}
    assert all(row.value is None or not math.isnan(row.value) for row in first.rows)
    assert all(job.prediction_path and job.prediction_path.endswith(f"{job.case}.mha") for job in first.jobs)
    crashy = next(s for s in data.submissions if s.team == "crashy")
    assert sum(1 for job in crashy.jobs if job.prediction_path is None) == 2


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cli_builds_the_site_from_the_registry(registry_url, tmp_path, capsys):
    out = tmp_path / "site"
    code = main(["leaderboard", "build", "--db", registry_url, "--work", str(tmp_path / "work"),
                 "--out", str(out), "--draws", "20"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"leaderboard: {out / 'index.html'}" in printed
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and EVIL_TEAM not in index
    assert (out / "submissions" / "1.html").is_file()
    # Pictures come from the jobs' stored outputs found in the registry.
    assert any((out / "img" / "1").glob("case-*.png"))


def test_cli_refuses_a_foreign_folder_and_bad_draws(registry_url, tmp_path, capsys):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    assert main(["leaderboard", "build", "--db", registry_url, "--out", str(foreign), "--draws", "5"]) == 2
    assert "is not a leaderboard site built before" in capsys.readouterr().err
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert main(["leaderboard", "build", "--db", registry_url, "--out", str(tmp_path / "s"), "--draws", "0"]) == 2
    assert "--draws must be at least 1, found 0" in capsys.readouterr().err
    assert main(["leaderboard", "build", "--db", registry_url, "--phase", "nope", "--out", str(tmp_path / "s")]) == 2
    assert "no ranking declared for phase 'nope'" in capsys.readouterr().err
