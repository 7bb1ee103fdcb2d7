"""Job logs in reports: a page per job where the audience may see logs, escaped, bounded, with no host path;
never a page where it may not, and never another team's log."""

from __future__ import annotations

import dataclasses
import html
import os
import re

import pytest

from challenge.phases import load_phases
from challenge.ranking import get_ranking
from leaderboard.job_logs import (
    HOST_PATH_SHOWN,
    LOGS_FOLDER,
    log_page_of,
    read_log_tail,
    without_host_paths,
)
from leaderboard.reports import build_team_report

from .conftest import PIXELS, build_audiences, hostile_site

FINAL = load_phases()["final"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    return root, build_audiences(root, team="crashy", draws=10)


def test_the_organizer_report_links_every_jobs_log_shown_escaped_and_without_host_paths(outputs):
    root, built = outputs
    for submission in built.site.submissions:
        if not submission.status.ranked:
            continue
        page = (built.organizer.out / "submissions" / f"{submission.id}.html").read_text(encoding="utf-8")
        for job in submission.jobs:
            relative = log_page_of(submission, job)
            assert f'href="../{relative}"' in page, (submission.id, job.case)
            log = (built.organizer.out / relative).read_text(encoding="utf-8")
            assert PIXELS in log and f"/input/images/{job.case}.mha" in log
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in log and "<script>alert(1)" not in log
            assert str(root) not in log and f"bind source {html.escape(HOST_PATH_SHOWN)}/work failed" in log


def test_no_log_page_where_the_audience_may_not_see_logs(outputs):
    _, built = outputs
    assert not (built.public.out / LOGS_FOLDER).exists()
    assert not (built.team.out / LOGS_FOLDER).exists()
    assert not FINAL.team_report.job_logs and not FINAL.disclosure.job_logs


def test_a_team_allowed_logs_sees_its_own_and_no_other_teams(tmp_path):
    site = hostile_site(tmp_path)
    disclosure = dataclasses.replace(FINAL.team_report, job_logs=True)
    report = build_team_report(site, team="crashy", out=tmp_path / "team", config=get_ranking("final"),
                               disclosure=disclosure, draws=5)
    crashy = [s for s in site.submissions if s.team == "crashy"]
    own = {f"{s.id}" for s in crashy}
    shown = {p.name for p in (report.out / LOGS_FOLDER).iterdir()}
    assert shown == own
    for path in (report.out / LOGS_FOLDER).rglob("*.html"):
        assert str(tmp_path) not in path.read_text(encoding="utf-8")


def test_a_log_is_shown_from_its_end_as_printable_lines(tmp_path):
    log = tmp_path / "log.txt"
    log.write_bytes(b"start\n" + b"x" * 5000 + b"\nbad \xff byte, NUL \x00 here\nlast line\n")
    text, cut = read_log_tail(log, limit_chars=100)
    assert cut and "start" not in text
    assert text.endswith("last line\n") and "bad \\xff byte, NUL  here" in text
    whole, cut = read_log_tail(log)
    assert not cut and whole.startswith("start\n")


def test_a_log_that_is_a_link_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("organizer's secret\n", encoding="utf-8")
    link = tmp_path / "log.txt"
    os.symlink(secret, link)
    with pytest.raises(OSError):
        read_log_tail(link)


def test_host_folders_are_hidden_deepest_first_and_page_names_are_safe(tmp_path):
    text = "at /srv/spider/work/jobs/1/log.txt and /srv/spider/test-set/images/1_t1.mha; /srv/other stays"
    hidden = without_host_paths(text, ["/srv/spider/work/", "/srv/spider"])
    assert hidden == f"at {HOST_PATH_SHOWN}/jobs/1/log.txt and {HOST_PATH_SHOWN}/test-set/images/1_t1.mha; " \
                     "/srv/other stays"
    site = hostile_site(tmp_path)
    submission = site.submissions[0]
    job = dataclasses.replace(submission.jobs[0], case="../../etc/pass wd")
    assert re.fullmatch(rf"{LOGS_FOLDER}/{submission.id}/[A-Za-z0-9_.-]+\.html", log_page_of(submission, job))
    assert not log_page_of(submission, job).split("/")[-1].startswith(".")
