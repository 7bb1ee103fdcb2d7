"""Private reports of a hidden phase: a team sees its own cases and why they failed, never another team's
data; the organizer sees everything, with the cases every submission fails flagged."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from challenge.phases import load_phases
from challenge.ranking import get_ranking
from leaderboard.errors import LeaderboardError
from leaderboard.reports import FLAG_DICE_BELOW, build_team_report, flag_reason
from leaderboard.site import SiteInput

from .conftest import CASES, PIXELS, build_audiences, submission_id

FINAL = load_phases()["final"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """The hidden phase built three ways: (inputs root, submissions, public site, crashy's report, organizer report)."""
    root = tmp_path_factory.mktemp("reports")
    built = build_audiences(root, team="crashy", draws=20)
    return root, built.site.submissions, built.public, built.team, built.organizer


def _texts(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): p.read_bytes().decode("utf-8", errors="replace")
            for p in sorted(out.rglob("*")) if p.is_file()}


def _names(text: str) -> set[str]:
    return {case for case in CASES if re.search(rf"(?<![A-Za-z0-9_]){re.escape(case)}(?![A-Za-z0-9_])", text)}


def test_the_public_site_of_the_hidden_phase_holds_no_case_no_log_text_and_no_picture(outputs):
    root, _, public, _, _ = outputs
    for name, text in _texts(public.out).items():
        assert not _names(name) and not _names(text), name
        assert PIXELS not in text and "cannot segment" not in text and str(root) not in text, name
        assert not name.endswith(".png"), name


def test_a_team_report_shows_its_cases_and_the_runners_reason_but_not_its_log_or_other_teams(outputs):
    root, submissions, _, team, _ = outputs
    texts = _texts(team.out)
    others = [s for s in submissions if s.team != "crashy"]
    crashy = next(s for s in submissions if s.team == "crashy")
    for name, text in texts.items():
        assert PIXELS not in text and "cannot segment" not in text and str(root) not in text, name
        assert not name.endswith(".png"), name
        for other in others:
            assert other.image_digest not in text and f"submissions/{other.id}." not in text, name
    assert sorted(p.name for p in (team.out / "submissions").glob("*.html")) == [f"{crashy.id}.html"]
    jobs = texts[f"submissions/{crashy.id}.jobs.csv"]
    assert {"2_t1", "5_t2"} <= _names(jobs) and _names(jobs) == set(CASES)
    assert "exited with code 1" in jobs
    assert (team.out / f"submissions/{crashy.id}.cases.csv").is_file()
    index = texts["index.html"]
    assert "Private report for team crashy" in index and f"{crashy.id}" in index


def test_an_unknown_team_is_refused_with_the_teams_that_have_submissions(outputs, tmp_path):
    _, submissions, _, _, _ = outputs
    with pytest.raises(LeaderboardError, match=r"team 'nobody' has no submission in phase 'final'; teams with one: "):
        build_team_report(SiteInput(submissions, cases=CASES), team="nobody", out=tmp_path / "r",
                          config=get_ranking("final"), disclosure=FINAL.team_report, draws=5)
    assert not (tmp_path / "r").exists()


def test_a_team_is_found_whatever_the_spelling(outputs, tmp_path):
    _, submissions, _, _, _ = outputs
    report = build_team_report(SiteInput(submissions, cases=CASES), team=" CRASHY", out=tmp_path / "r",
                               config=get_ranking("final"), disclosure=FINAL.team_report, draws=5)
    assert "Private report for team crashy" in report.index.read_text(encoding="utf-8")


def test_a_team_report_that_would_hold_another_teams_data_is_not_written(outputs, tmp_path):
    """The leak check of a team report is itself tested: a team whose algorithm is named by another's digest."""
    import dataclasses

    _, submissions, _, _, _ = outputs
    crashy = next(s for s in submissions if s.team == "crashy")
    other = next(s for s in submissions if s.team == "no-discs")
    renamed = [dataclasses.replace(s, algorithm_name=f"copy of {other.image_digest}") if s.id == crashy.id else s
               for s in submissions]
    with pytest.raises(LeaderboardError, match=rf"report of team 'crashy'.*the image digest of submission {other.id}"):
        build_team_report(SiteInput(renamed, cases=CASES), team="crashy", out=tmp_path / "r",
                          config=get_ranking("final"), disclosure=FINAL.team_report, draws=5)
    assert not (tmp_path / "r").exists()


def test_the_organizer_report_shows_pictures_reasons_logs_and_flags_failing_cases(outputs):
    _, submissions, _, _, organizer = outputs
    texts = _texts(organizer.out)
    assert list(organizer.out.rglob("case-*.png"))
    crashy = next(s for s in submissions if s.team == "crashy")
    jobs = texts[f"submissions/{crashy.id}.jobs.csv"]
    assert PIXELS in jobs and "cannot segment /input/images/2_t1.mha" in jobs
    assert "Organizer report of phase final" in texts["cases.html"]
    cases = texts["cases.cases.csv"].splitlines()
    assert len(cases) == len(CASES) + 1
    assert all(str(submission_id(sid)) in cases[0] for sid in ("s1", "s2", "s3", "s4", "s5"))
    assert "cases.html" in texts["index.html"]


def test_a_case_is_flagged_when_every_submission_fails_or_its_mean_dice_is_low():
    assert flag_reason(np.array([0.9, 0.8]), failed=2, submissions=2) == "every submission failed"
    assert flag_reason(np.array([0.9, np.nan]), failed=1, submissions=2) == ""
    low = flag_reason(np.array([0.2, 0.3, np.nan]), failed=0, submissions=3)
    assert low == f"mean Dice 0.250 below {FLAG_DICE_BELOW}"
    assert flag_reason(np.array([np.nan]), failed=0, submissions=1) == ""


def test_efficiency_is_shown_beside_accuracy_on_the_public_site_and_per_case_in_reports(outputs):
    import csv

    _, submissions, public, team, _ = outputs
    crashy = next(s for s in submissions if s.team == "crashy")
    seconds = sorted(job.seconds for job in crashy.jobs if job.seconds is not None)
    peaks = [job.peak_memory_bytes for job in crashy.jobs if job.peak_memory_bytes is not None]
    rows = list(csv.DictReader((public.out / "index.leaderboard.csv").read_text(encoding="utf-8").splitlines()))
    row = next(r for r in rows if r["team"] == "crashy")
    assert float(row["max_seconds"]) == pytest.approx(max(seconds))
    assert float(row["median_seconds"]) == pytest.approx(float(np.median(seconds)))
    assert float(row["max_peak_memory_mb"]) == pytest.approx(max(peaks) / 1e6)
    jobs = list(csv.DictReader((team.out / f"submissions/{crashy.id}.jobs.csv").read_text().splitlines()))
    by_case = {job.case: job for job in crashy.jobs}
    for job_row in jobs:
        peak = by_case[job_row["case"]].peak_memory_bytes
        assert (job_row["peak_memory_mb"] == "") if peak is None else float(job_row["peak_memory_mb"]) == peak / 1e6
