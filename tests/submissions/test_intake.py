"""Phases and submissions on the way in: data checks, limits, duplicates, names as given."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import select

from challenge.errors import ConfigError, DataError
from challenge.phases import get_phase
from submissions.errors import (
    DuplicateSubmissionError,
    IntakeError,
    SubmissionLimitError,
    UnknownRecordError,
)
from submissions.intake import set_phase
from submissions.models import Job, PhaseRecord, Submission, Team


def test_phase_set_takes_the_declared_limits_and_the_case_list(registry, hidden_set):
    summary = set_phase(registry, "final", data_dir=hidden_set)
    declared = get_phase("final")
    assert summary.created
    assert summary.phase == declared
    assert summary.cases == ("1_t1", "1_t2", "2_t1", "2_t2", "3_t1", "3_t2")
    with registry.session() as session:
        record = session.scalar(select(PhaseRecord).where(PhaseRecord.name == "final"))
        assert record.data_dir == str(hidden_set.resolve())
        assert [case.name for case in record.cases] == list(summary.cases)
        assert (record.time_limit_seconds, record.memory_bytes, record.max_submissions, record.submission_period) == (
            declared.time_limit_seconds, declared.memory_bytes, declared.max_submissions, declared.submission_period
        )


def test_phase_update_keeps_limits_not_given(registry, hidden_set):
    set_phase(registry, "final", data_dir=hidden_set, time_limit_seconds=60, memory="2g", max_submissions=9, per="week",
              scoring_time_limit_seconds=30)
    summary = set_phase(registry, "final", data_dir=hidden_set, memory="3g")
    assert not summary.created
    assert summary.phase.time_limit_seconds == 60
    assert summary.phase.scoring_time_limit_seconds == 30
    assert summary.phase.memory_bytes == 3 * 1024**3
    assert (summary.phase.max_submissions, summary.phase.submission_period) == (9, "week")


def test_phase_set_refuses_an_undeclared_phase_and_a_broken_test_set(registry, hidden_set, tmp_path):
    with pytest.raises(ConfigError, match="unknown phase 'nope'"):
        set_phase(registry, "nope", data_dir=hidden_set)
    (hidden_set / "masks" / "2_t1.mha").unlink()
    with pytest.raises(DataError, match="2_t1.mha: no mask"):
        set_phase(registry, "final", data_dir=hidden_set)
    with pytest.raises(DataError, match="not found"):
        set_phase(registry, "final", data_dir=tmp_path / "missing")


def test_phase_set_refuses_bad_limits(registry, hidden_set):
    with pytest.raises(IntakeError, match="--per must be one of"):
        set_phase(registry, "final", data_dir=hidden_set, per="month")
    with pytest.raises(IntakeError, match="positive integer"):
        set_phase(registry, "final", data_dir=hidden_set, max_submissions=0)
    with pytest.raises(ConfigError, match="memory"):
        set_phase(registry, "final", data_dir=hidden_set, memory="lots")
    with pytest.raises(IntakeError, match="--scoring-time-limit must be a positive integer, found 0"):
        set_phase(registry, "final", data_dir=hidden_set, scoring_time_limit_seconds=0)


def test_phase_cases_cannot_change_once_submissions_exist(registry, hidden_set, make_hidden_set, phase, submit_fake):
    other = make_hidden_set(["1_t1", "9_t2"])
    submit_fake()
    with pytest.raises(IntakeError, match="another phase"):
        set_phase(registry, "sanity-check", data_dir=other)
    # Same cases in a moved folder: fine.
    moved = hidden_set.rename(hidden_set.parent / "moved")
    assert set_phase(registry, "sanity-check", data_dir=moved).data_dir == moved.resolve()


def test_submit_creates_one_pending_job_per_case(registry, phase, submit_fake):
    receipt = submit_fake("team a", "unet")
    assert receipt.jobs == 6
    with registry.session() as session:
        submission = session.get(Submission, receipt.id)
        assert submission.status == "pending"
        assert submission.image_digest.startswith("sha256:") and len(submission.image_digest) == 71
        assert os.path.isfile(submission.image_archive)
        jobs = session.scalars(select(Job).where(Job.submission_id == receipt.id).order_by(Job.case)).all()
        assert [(job.case, job.status, job.attempts) for job in jobs] == [(case, "pending", 0) for case in phase.cases]


def test_duplicate_digest_refused_per_phase_and_team(registry, phase, hidden_set, submit_fake):
    set_phase(registry, "final", data_dir=hidden_set, max_submissions=10)
    first = submit_fake("team a", content=b"same image")
    with pytest.raises(DuplicateSubmissionError, match=f"submission {first.id}"):
        submit_fake("team a", "renamed", content=b"same image")
    # Another team, or the same team in another phase, may submit the same image.
    assert submit_fake("team b", content=b"same image").id != first.id
    assert submit_fake("team a", content=b"same image", phase="final").phase == "final"


@pytest.mark.parametrize(
    ("period", "within", "outside"),
    [
        ("day", dt.timedelta(hours=23), dt.timedelta(hours=25)),
        ("week", dt.timedelta(days=6, hours=23), dt.timedelta(days=7, hours=1)),
    ],
)
def test_limit_per_rolling_period(registry, phase, hidden_set, submit_fake, period, within, outside):
    set_phase(registry, "sanity-check", data_dir=hidden_set, max_submissions=2, per=period)
    start = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
    submit_fake("team a", now=start)
    submit_fake("team a", now=start + dt.timedelta(minutes=5))
    with pytest.raises(SubmissionLimitError, match=r"allows 2 submission\(s\) per team .*this team has made 2"):
        submit_fake("team a", now=start + within)
    submit_fake("team b", now=start + within)  # the limit is per team
    submit_fake("team a", now=start + outside)  # the first one has left the window


def test_limit_per_phase_counts_all_time(registry, phase, hidden_set, submit_fake):
    set_phase(registry, "sanity-check", data_dir=hidden_set, max_submissions=1, per="phase")
    start = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    submit_fake("team a", now=start)
    with pytest.raises(SubmissionLimitError, match="in this phase"):
        submit_fake("team a", now=start + dt.timedelta(days=400))
    with registry.session() as session:
        assert session.query(Submission).count() == 1  # the refused one left nothing behind


def test_one_team_whatever_the_spelling_one_quota_shown_as_first_written(registry, phase, hidden_set, submit_fake):
    """NFKC, trimmed, case-folded: a trailing space, another case or full-width letters buy no submission."""
    set_phase(registry, "sanity-check", data_dir=hidden_set, max_submissions=2, per="phase")
    first = submit_fake("TeamA")
    second = submit_fake("teama ")
    with pytest.raises(SubmissionLimitError, match="this team has made 2"):
        submit_fake("\uff34\uff45\uff41\uff4d\uff21")  # full-width "TeamA"
    with pytest.raises(SubmissionLimitError):
        submit_fake("  TEAMA")
    with registry.session() as session:
        teams = session.query(Team).all()
        assert [(t.name, t.key) for t in teams] == [("TeamA", "teama")]
        assert {session.get(Submission, r.id).team_id for r in (first, second)} == {teams[0].id}
    assert second.team == "teama "  # the receipt echoes what was typed; pages show the stored name
    submit_fake("Team B")  # another team is another quota


def test_team_key_normalises_unicode_space_and_case():
    from submissions.names import team_key

    assert team_key("  Team\u00a0 A ") == team_key("team a") == "team a"
    assert team_key("\uff34\uff25\uff21\uff2d") == "team"
    assert team_key("Stra\u00dfe") == team_key("STRASSE")
    assert team_key("team a") != team_key("team b")


HOSTILE_NAMES = [
    "../../etc/passwd",
    "team; rm -rf / #",
    "$(touch /tmp/pwned) `id`",
    "<script>alert('x')</script> & \"quotes\"",
    "Ünïcødé 🦴 チーム",
    "  spaces around  ",
    "a" * 200,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_are_stored_as_given_and_never_used_in_paths(registry, phase, submit_fake, work_dir, name):
    receipt = submit_fake(name, name)
    with registry.session() as session:
        submission = session.get(Submission, receipt.id)
        assert session.get(Team, submission.team_id).name == name
        assert submission.algorithm_name == name
    for path in work_dir.rglob("*"):
        assert name not in str(path)
        assert "passwd" not in path.name and "script" not in path.name
    assert not os.path.exists("/tmp/pwned")


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "must not be empty"), ("   ", "must not be empty"), ("a" * 201, "at most 200"),
     ("line\nbreak", "U\\+000A"), ("nul\x00", "U\\+0000"), ("bidi\u202etxt", "U\\+202E")],
)
def test_unusable_names_are_refused(registry, phase, submit_fake, name, message):
    with pytest.raises(IntakeError, match=message):
        submit_fake(name, "algo")
    with pytest.raises(IntakeError, match=message):
        submit_fake("team", name)


def test_submit_to_an_unregistered_phase_says_how_to_register_it(registry, submit_fake):
    with pytest.raises(UnknownRecordError, match="spider phase set final --data DIR"):
        submit_fake(phase="final")


def test_the_phase_image_limit_reaches_the_pinner_and_a_refusal_stores_nothing(registry, phase, submit_fake):
    from submissions.models import PhaseRecord

    with registry.session() as session, session.begin():
        session.query(PhaseRecord).filter_by(name="sanity-check").one().image_limit_bytes = 100
    with pytest.raises(IntakeError, match="larger than the phase's image limit of 100 bytes"):
        submit_fake("team a", content=b"x" * 101)
    with registry.session() as session:
        assert session.query(Submission).count() == 0 and session.query(Team).count() == 0
    submit_fake("team a", content=b"x" * 100)
