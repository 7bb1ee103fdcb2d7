"""What the public site of a phase may show (challenge.phases.Disclosure) and the build's check of its own output."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from challenge.errors import ConfigError
from challenge.phases import Disclosure, load_phases
from challenge.ranking import get_ranking
from challenge.statuses import JobStatus
from leaderboard.errors import LeaderboardError
from leaderboard.leaks import case_pattern
from leaderboard.site import PUBLIC, SiteInput, build_site

from .conftest import CASES, PIXELS, container_reason, hostile_site, make_phase_submissions, page_file

HIDDEN = load_phases()["final"].disclosure

PHASE = """
[phases.dev]
time_limit_seconds = 60
memory = "512m"
cpus = 1
gpus = 0
network = false
pids_limit = 64
tmp_size = "100m"
output_limit = "1g"
"""


def _phases(tmp_path: Path, extra: str) -> dict:
    path = tmp_path / "phases.toml"
    path.write_text(PHASE + extra)
    return load_phases(path)


# --- phases.toml -----------------------------------------------------------------------------------------------


def test_packaged_phases_declare_their_disclosure():
    phases = load_phases()
    final, sanity = phases["final"].disclosure, phases["sanity-check"].disclosure
    assert final.hidden and final.min_breakdown_cases == 5
    assert (final.aggregates, final.level_aggregates, final.ranking, final.stability, final.breakdowns) == (True,) * 5
    assert not (final.case_values or final.case_names or final.case_pictures or final.job_logs)
    assert sanity == Disclosure.default_for("public") and sanity.case_pictures and sanity.job_logs


def test_a_phase_without_test_data_is_hidden_and_single_flags_can_be_overridden(tmp_path):
    assert _phases(tmp_path, "")["dev"].disclosure == Disclosure()
    overridden = _phases(tmp_path, 'test_data = "hidden"\n[phases.dev.public_site]\nstability = false\n'
                                   "min_breakdown_cases = 10\ncase_names = true\njob_logs = true\n")["dev"].disclosure
    assert not overridden.stability and overridden.min_breakdown_cases == 10 and overridden.job_logs
    assert overridden.breakdown_minimum == 10 and PUBLIC.breakdown_minimum == 1
    public = _phases(tmp_path, 'test_data = "public"\n[phases.dev.public_site]\ncase_pictures = false\n')["dev"]
    assert public.disclosure.case_values and not public.disclosure.case_pictures


@pytest.mark.parametrize("extra, message", [
    ('test_data = "secret"', r"phase 'dev': test_data must be one of \['hidden', 'public'\], found 'secret'"),
    ("test_data = true", r"phase 'dev': test_data must be one of .*, found True"),
    ('public_site = "all"', r"phase 'dev': public_site must be a table"),
    ('[phases.dev.public_site]\ncase_values = "yes"', r"phase 'dev': public_site: case_values must be true or false, "
                                                       r"found 'yes'"),
    ("[phases.dev.public_site]\npictures = true", r"phase 'dev': public_site: unknown key\(s\) \['pictures'\]"),
    ("[phases.dev.public_site]\nmin_breakdown_cases = 0",
     r"phase 'dev': public_site: min_breakdown_cases must be a positive integer, found 0"),
    ("[phases.dev.public_site]\ncase_pictures = true",
     r"phase 'dev': public_site: case_pictures = true needs case_names = true"),
    ('test_data = "public"\n[phases.dev.public_site]\ncase_names = false',
     r"public_site: case_values = true needs case_names = true"),
])
def test_invalid_disclosure_names_file_phase_key_and_value(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message) as caught:
        _phases(tmp_path, extra)
    assert str(tmp_path / "phases.toml") in str(caught.value)


def test_a_phase_built_without_a_disclosure_gets_the_hidden_defaults():
    phase = load_phases()["final"]
    fields = {f.name: getattr(phase, f.name) for f in dataclasses.fields(phase) if f.name != "disclosure"}
    assert type(phase)(**fields).disclosure == Disclosure() == HIDDEN


# --- the site of a hidden phase ---------------------------------------------------------------------------------


def _case_tokens(text: str) -> list[str]:
    """Case names in `text` as whole tokens (an independent check of leaderboard.leaks.case_pattern)."""
    return [case for case in CASES if re.search(rf"(?<![A-Za-z0-9_]){re.escape(case)}(?![A-Za-z0-9_])", text, re.I)]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """The same phase built as a hidden and as a public phase: (root of the inputs, hidden site, public site)."""
    root = tmp_path_factory.mktemp("disclosure")
    site = hostile_site(root)
    config = get_ranking("final")
    hidden = build_site(site, out=root / "hidden", config=config, disclosure=HIDDEN, draws=50)
    public = build_site(site, out=root / "public", config=config, disclosure=PUBLIC, draws=50)
    return root, hidden, public


def _files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def test_the_hidden_site_names_no_case_shows_no_picture_no_reason_and_no_path(sites):
    root, hidden, _ = sites
    files = _files(hidden.out)
    assert len(files) > 20
    for path in files:
        relative = path.relative_to(hidden.out).as_posix()
        assert not _case_tokens(relative), relative
        assert path.suffix != ".png", relative
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not _case_tokens(text), (relative, _case_tokens(text))
        assert PIXELS not in text and "RuntimeError" not in text and "cannot segment" not in text, relative
        assert str(root) not in text and "/input/" not in text and ".log" not in text, relative
    assert not list(hidden.out.rglob("case-*"))


def test_the_hidden_site_still_shows_aggregates_levels_ranking_stability_and_large_breakdowns(sites):
    _, hidden, public = sites
    assert hidden.ranked == public.ranked and len(hidden.ranked) == 4
    assert (hidden.out / "index.leaderboard.csv").read_text() == (public.out / "index.leaderboard.csv").read_text()
    assert (hidden.out / "compare.stability.csv").is_file() and (hidden.out / "img" / "compare" / "blob.svg").is_file()
    assert not list((hidden.out / "img" / "compare").glob("box-*"))
    # Breakdown groups of fewer than 5 cases are left out: 8 cases give 3 T1, 4 T2, 1 SPACE; 4 per scanner.
    breakdowns = {p.name for p in hidden.out.glob("breakdowns.*.csv")}
    assert breakdowns and all("pfirrmann" in name for name in breakdowns), breakdowns
    assert (public.out / "breakdowns.sequence-dice-vertebrae.csv").is_file()
    assert "Groups of fewer than 5 cases are not shown." in (hidden.out / "breakdowns.html").read_text()
    crashy = hidden.out / "submissions"
    jobs = (crashy / page_file("s4", ".jobs.csv")).read_text().splitlines()
    assert jobs == ["status,jobs", "failed,2", "succeeded,6"]
    assert not (crashy / page_file("s4", ".cases.csv")).exists()
    levels = (crashy / page_file("s1", ".levels.csv")).read_text().splitlines()
    assert levels[0].startswith("structure,level,cases,dice,assd") and len(levels) == 1 + 6
    s1 = make_phase_submissions()[0]
    expected = np.mean([r.value for r in s1.rows if (r.structure, r.level, r.metric) == ("vertebrae", "L5", "dice")])
    (l5,) = [line.split(",") for line in levels if line.startswith("vertebrae,L5,")]
    assert l5[2] == "8" and float(l5[3]) == pytest.approx(expected)


def test_the_public_site_shows_cases_values_pictures_and_reasons_but_no_host_path(sites):
    root, _, public = sites
    submissions = public.out / "submissions"
    page = (submissions / page_file("s4")).read_text(encoding="utf-8")
    assert "case-2_t1.png" in page and list(public.out.rglob("case-*.png"))
    jobs = (submissions / page_file("s4", ".jobs.csv")).read_text(encoding="utf-8")
    assert container_reason("2_t1") in jobs and "2_t1" in jobs
    assert (submissions / page_file("s4", ".cases.csv")).is_file()
    assert list((public.out / "img" / "compare").glob("box-*.svg"))
    for path in _files(public.out):
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert str(root) not in text and ".log" not in text, path


# --- the build's check of its own output ------------------------------------------------------------------------


def test_case_identifiers_match_as_whole_tokens_only():
    pattern = case_pattern(["1_t1", "2_t2"])
    assert pattern is not None
    for text in ("1_t1", "case-1_t1.png", "(1_T1)", '"2_t2",', "a 2_t2."):
        assert pattern.search(text.encode()), text
    for text in ("11_t1", "1_t10", "x1_t1", "2_t2_SPACE", "1_t1x", "_1_t1"):
        assert not pattern.search(text.encode()), text
    assert case_pattern([]) is None


def _small_site(root: Path) -> SiteInput:
    site = hostile_site(root)
    return dataclasses.replace(site, submissions=site.submissions[:2], predictions=None)


def test_a_page_that_prints_a_case_identifier_fails_the_build_and_leaves_nothing(tmp_path, monkeypatch):
    import leaderboard.site as site_module

    original = site_module.write_rules

    def leaky_rules(writer):
        original(writer)
        (writer.root / "rules.html").write_text("<p>see case 5_t2</p>", encoding="utf-8")

    monkeypatch.setattr(site_module, "write_rules", leaky_rules)
    out = tmp_path / "site"
    with pytest.raises(LeaderboardError, match=r"rules\.html: holds the case identifier '5_t2'"):
        build_site(_small_site(tmp_path), out=out, config=get_ranking("final"), disclosure=HIDDEN, draws=5)
    assert not out.exists()
    assert not list(tmp_path.glob(".site.*")), "the building folder is removed"
    # Where case names may be published, the same page builds.
    report = build_site(_small_site(tmp_path / "again"), out=out, config=get_ranking("final"), disclosure=PUBLIC,
                        draws=5)
    assert "5_t2" in (report.out / "rules.html").read_text(encoding="utf-8")


def test_container_text_and_host_paths_are_found_and_not_quoted(tmp_path, monkeypatch):
    import leaderboard.site as site_module

    site = _small_site(tmp_path)
    reason = f"RuntimeError: cannot segment this input: {PIXELS}"  # no case name: only the text gives it away
    failed = dataclasses.replace(site.submissions[0].jobs[0], status=JobStatus.FAILED, reason=reason)
    first = dataclasses.replace(site.submissions[0], jobs=(failed, *site.submissions[0].jobs[1:]))
    site = dataclasses.replace(site, submissions=(first, *site.submissions[1:]))
    original = site_module.write_rules
    leaked = {"text": ""}

    def leaky_rules(writer):
        original(writer)
        (writer.root / "rules.txt").write_text(leaked["text"], encoding="utf-8")

    monkeypatch.setattr(site_module, "write_rules", leaky_rules)
    leaked["text"] = f"<p>{reason}</p>"
    with pytest.raises(LeaderboardError, match=r"rules\.txt: holds the failure reason text of the job of submission "
                                               rf"{first.id}, case {failed.case}") as caught:
        build_site(site, out=tmp_path / "site", config=get_ranking("final"), disclosure=HIDDEN, draws=5)
    assert PIXELS not in str(caught.value)
    leaked["text"] = f"data from {site.test_set}"
    for disclosure in (HIDDEN, PUBLIC):
        with pytest.raises(LeaderboardError, match=r"rules\.txt: holds the absolute path of the test set folder"):
            build_site(site, out=tmp_path / "site", config=get_ranking("final"), disclosure=disclosure, draws=5)
    leaked["text"] = f"log at {failed.log_path}"
    with pytest.raises(LeaderboardError, match=r"rules\.txt: holds the absolute log path of the job"):
        build_site(site, out=tmp_path / "site", config=get_ranking("final"), disclosure=PUBLIC, draws=5)
    assert not (tmp_path / "site").exists()


def test_a_failed_rebuild_keeps_the_site_built_before(tmp_path, monkeypatch):
    import leaderboard.site as site_module

    site = _small_site(tmp_path)
    out = tmp_path / "site"
    build_site(site, out=out, config=get_ranking("final"), disclosure=HIDDEN, draws=5)
    before = (out / "index.html").read_text(encoding="utf-8")
    monkeypatch.setattr(site_module, "write_rules", lambda writer: (writer.root / "rules.html").write_text("1_t1"))
    with pytest.raises(LeaderboardError, match="1_t1"):
        build_site(site, out=out, config=get_ranking("final"), disclosure=HIDDEN, draws=5)
    assert (out / "index.html").read_text(encoding="utf-8") == before
    assert not list(tmp_path.glob(".site.*"))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cli_builds_the_hidden_final_phase_from_the_registry_without_cases(tmp_path, capsys):
    from challenge.cli import main

    from .test_source import write_registry

    registry = write_registry(tmp_path)
    out = tmp_path / "site"
    code = main(["leaderboard", "build", "--db", f"sqlite:///{registry.path}", "--out", str(out), "--draws", "10"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "disclosure: hidden test data" in printed
    assert (out / "submissions" / "1.html").is_file() and not list(out.rglob("*.png"))
    for path in _files(out):
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not _case_tokens(text) and not _case_tokens(path.name), path
        assert "out of memory" not in text and str(tmp_path) not in text and "/logs/" not in text, path


def test_a_level_found_in_fewer_cases_than_the_minimum_is_not_averaged_on_a_hidden_site():
    """A mean over one case is that case's value: such levels are left out of the per-level means."""
    import dataclasses

    from challenge.results import ScoreRow
    from challenge.statuses import RowStatus
    from leaderboard.submission_page import _level_means_table

    base = make_phase_submissions()[0]
    rare = ScoreRow(base.rows[0].case, "vertebrae", "T9", "dice", 0.123, RowStatus.SCORED, label=9)
    submission = dataclasses.replace(base, rows=base.rows + (rare,))
    cases = submission.cases
    shown_levels = {row[1].text for row in _level_means_table(submission, cases, min_cases=5).rows}
    assert "T9" not in shown_levels and "L5" in shown_levels
    assert "T9" in {row[1].text for row in _level_means_table(submission, cases, min_cases=1).rows}
