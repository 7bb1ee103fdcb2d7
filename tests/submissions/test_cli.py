"""The registry's commands, run through the `spider` entry point in this process (no Docker)."""

from __future__ import annotations

import json

import pytest

from challenge.cli import main


@pytest.fixture
def env(monkeypatch, db_url, work_dir):
    monkeypatch.setenv("SPIDER_DB", db_url)
    monkeypatch.setenv("SPIDER_WORK", str(work_dir))


def test_phase_set_then_status(env, hidden_set, capsys, registry, submit_fake):
    assert main(["phase", "set", "final", "--data", str(hidden_set), "--time-limit", "300"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("phase final registered: 6 cases in ")
    assert "300 s and 16g per case, 4 CPUs, 0 GPU; 2 submission(s) per team per phase" in out
    assert main(["phase", "set", "final", "--data", str(hidden_set), "--max-submissions", "5", "--per", "week",
                 "--scoring-time-limit", "45"]) == 0
    out = capsys.readouterr().out
    assert "phase final updated" in out and "scoring 45 s per case" in out

    assert main(["status"]) == 0
    assert capsys.readouterr().out == "no submissions\n"
    team = "team 'x' \\ \"y\""
    receipt = submit_fake(team, "algo", phase="final")
    assert main(["status", "--json", "--phase", "final"]) == 0
    [summary] = json.loads(capsys.readouterr().out)
    assert summary["id"] == receipt.id and summary["job_counts"] == {"pending": 6} and summary["team"] == team
    assert main(["status"]) == 0
    assert f"team {team!r}" in capsys.readouterr().out  # names are shown quoted and escaped


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--submission", "999"], "no submission 999 in the registry"),
        (["status", "--phase", "nope"], "phase 'nope' is not registered"),
        (["submit", "--team", "t", "--name", "n", "--image", "x"], "phase 'final' is not registered"),
        (["evaluate", "--pending", "--workers", "0"], "--workers must be a positive integer"),
    ],
)
def test_errors_name_the_problem(env, registry, capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_evaluate_needs_a_scope(env, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate"])
    assert "one of the arguments --submission --pending is required" in capsys.readouterr().err
