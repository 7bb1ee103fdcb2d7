"""The built site: pages, escaping, data files beside each table, values checked by hand."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from challenge import labels
from challenge.ranking import get_ranking
from challenge.statuses import SubmissionStatus
from leaderboard.errors import LeaderboardError
from leaderboard.site import PUBLIC, SiteInput, build_site

from .conftest import (
    CASES,
    EVIL_TEAM,
    make_phase_submissions,
    page_file,
    submission_id,
    synthetic_submission,
    write_test_set,
)


class _Tables(HTMLParser):
    """Table names and their body row counts, plus every img src, of one page."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, int] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("data-name")
            self.rows[self._table] = 0
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table:
            self.rows[self._table] += 1
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None


def _parse(path: Path) -> _Tables:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _rows(submission, metric, structure, cases=CASES):
    values = {r.case: r.value for r in submission.rows
              if r.is_group and r.metric == metric and r.structure == structure}
    return [values[c] for c in cases]


def test_every_page_table_has_csv_and_json_beside_it_and_images_exist(built_site):
    pages = list(built_site.out.rglob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "compare.html", "breakdowns.html", "rules.html", page_file("s1")}
    assert set(built_site.pages) == set(pages)
    checked = 0
    for page in pages:
        parsed = _parse(page)
        for name, count in parsed.rows.items():
            rows = _csv(page.parent / f"{page.stem}.{name}.csv")
            document = json.loads((page.parent / f"{page.stem}.{name}.json").read_text(encoding="utf-8"))
            assert len(rows) == count == len(document["rows"]), (page, name)
            assert document["schema_version"] == 1
            checked += 1
        for src in parsed.images:
            assert (page.parent / src).is_file(), (page, src)
    assert checked >= 20


def test_team_names_are_escaped_in_html_and_raw_in_data(built_site):
    for page in built_site.out.rglob("*.html"):
        assert EVIL_TEAM not in page.read_text(encoding="utf-8"), page
    index = (built_site.out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    teams = [row["team"] for row in _csv(built_site.out / "index.leaderboard.csv")]
    assert EVIL_TEAM in teams
    document = json.loads((built_site.out / "index.leaderboard.json").read_text(encoding="utf-8"))
    assert EVIL_TEAM in [row["team"] for row in document["rows"]]


def test_leaderboard_values_are_the_means_of_the_rows(built_site):
    submissions = {s.id: s for s in make_phase_submissions()}
    s1 = submissions[submission_id("s1")]
    rows = {row["algorithm"]: row for row in _csv(built_site.out / "index.leaderboard.csv")}
    assert [row["team"] for row in _csv(built_site.out / "index.leaderboard.csv")][0] == "reference"
    reference = rows["unet-s1"]
    assert float(reference["dice_vertebrae"]) == pytest.approx(np.mean(_rows(s1, "dice", "vertebrae")))
    assert float(reference["hd95_discs"]) == pytest.approx(np.mean(_rows(s1, "hd95", "discs")))
    crashy = rows["unet-s4"]
    assert crashy["failed_jobs"] == "2" and crashy["cases_scored"] == "8"
    # The team's worse, later submission is listed but not ranked ("best" per team).
    others = _csv(built_site.out / "index.others.csv")
    assert [(o["algorithm"], o["ranked"]) for o in others] == [("unet-s5", "not the team's best")]
    assert "unet-s5" not in rows


def test_breakdowns_by_sequence_scanner_and_grade_by_hand(built_site):
    s1 = next(s for s in make_phase_submissions() if s.id == submission_id("s1"))
    sequence = {row["team"]: row for row in _csv(built_site.out / "breakdowns.sequence-dice-vertebrae.csv")}
    t1 = [c for c in CASES if c.endswith("_t1")]
    assert float(sequence["reference"]["t1"]) == pytest.approx(np.mean(_rows(s1, "dice", "vertebrae", t1)))
    assert float(sequence["reference"]["t2_space"]) == pytest.approx(_rows(s1, "dice", "vertebrae", ["2_t2_SPACE"])[0])
    manufacturer = {row["team"]: row for row in _csv(built_site.out / "breakdowns.manufacturer-dice-discs.csv")}
    philips = [c for i, c in enumerate(CASES) if i % 2 == 0]
    assert float(manufacturer["reference"]["philips"]) == pytest.approx(np.mean(_rows(s1, "dice", "discs", philips)))
    field = _csv(built_site.out / "breakdowns.field-strength-dice-discs.csv")
    assert set(field[0]) == {"team", "algorithm", "1_5_t", "3_t"}
    # Grade of disc level L of patient P is 2 + (P + L) % 3 (conftest); L5/S1 (label 201) is level 1.
    expected: dict[str, list[float]] = {}
    for row in s1.rows:
        if row.structure == "discs" and row.metric == "dice" and not row.is_group:
            level = labels.structure(row.label).level
            patient = int(row.case.split("_")[0])
            expected.setdefault(f"grade_{2 + (patient + level) % 3}", []).append(row.value)
    grades = {row["team"]: row for row in _csv(built_site.out / "breakdowns.pfirrmann-grade-dice-discs.csv")}
    for grade, values in expected.items():
        assert float(grades["reference"][grade]) == pytest.approx(np.mean(values)), grade


def test_submission_page_shows_failures_with_reasons(built_site):
    jobs = _csv(built_site.out / "submissions" / page_file("s4", ".jobs.csv"))
    failed = [job for job in jobs if job["status"] == "failed"]
    assert [job["case"] for job in failed] == ["2_t1", "5_t2"]
    assert all("out of memory" in job["reason"] for job in failed)
    page = (built_site.out / "submissions" / page_file("s4")).read_text(encoding="utf-8")
    assert "Rank</dt><dd>4 of 4" in page
    # Worst cases first: the two failed cases, with pictures of the reference alone.
    assert page.index("case-2_t1.png") < page.index("case-5_t2.png")
    assert "No prediction was stored" in page
    levels = _csv(built_site.out / "submissions" / page_file("s1", ".levels.csv"))
    assert {row["level"] for row in levels} == {"L5", "L4", "L3", "L5/S1", "L4/L5", "L3/L4"}


def test_rules_page_shows_version_and_edge_cases(built_site):
    from challenge import rules

    page = (built_site.out / "rules.html").read_text(encoding="utf-8")
    assert f"Scoring rules, version {rules.RULES_VERSION}" in page
    edges = {row["metric"]: row for row in _csv(built_site.out / "rules.edge-cases.csv")}
    assert edges["dice"]["both_empty"] == "1.0" and edges["dice"]["missing"] == "0.0"
    assert edges["assd"]["missing"] == rules.FOV_DIAGONAL


def _small_phase(tmp_path: Path):
    cases = CASES[:3]
    submissions = [synthetic_submission("a", "team a", quality=1.0, seed=1, cases=cases),
                   synthetic_submission("b", "team b", quality=0.9, seed=2, cases=cases, crash=(cases[0],))]
    return submissions, cases, write_test_set(tmp_path / "test-set")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_rebuild_is_byte_identical_and_replaces_the_old_site(tmp_path):
    submissions, cases, test_set = _small_phase(tmp_path)
    moment = datetime(2024, 5, 1, tzinfo=timezone.utc)
    config = get_ranking("final")
    site = SiteInput(submissions, cases=cases, test_set=test_set)
    first = build_site(site, out=tmp_path / "one", config=config, disclosure=PUBLIC, draws=30, now=moment)
    second = build_site(site, out=tmp_path / "two", config=config, disclosure=PUBLIC, draws=30, now=moment)
    files = sorted(p.relative_to(first.out) for p in first.out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second.out) for p in second.out.rglob("*") if p.is_file())
    for relative in files:
        assert (first.out / relative).read_bytes() == (second.out / relative).read_bytes(), relative
    (first.out / "stale.html").write_text("old")
    build_site(SiteInput(submissions[:1], cases=cases), out=first.out, config=config, disclosure=PUBLIC, draws=5,
               now=moment)
    assert not (first.out / "stale.html").exists()
    assert not (first.out / "submissions" / page_file("b")).exists()
    assert not list(tmp_path.glob(".one.*")), "no building or old folder is left behind"


def test_a_phase_without_completed_submissions_still_builds(tmp_path):
    pending = synthetic_submission("p", "late team", quality=1.0, seed=1, cases=CASES[:2])
    pending = dataclasses.replace(pending, status=SubmissionStatus.EVALUATING)
    report = build_site(SiteInput([pending]), out=tmp_path / "site", config=get_ranking("final"), disclosure=PUBLIC,
                        draws=5)
    index = (report.out / "index.html").read_text(encoding="utf-8")
    assert "No completed submission in this phase yet" in index
    assert [row["ranked"] for row in _csv(report.out / "index.others.csv")] == ["not ranked: evaluating"]
    assert report.ranked == ()
    empty = build_site(SiteInput([]), out=tmp_path / "empty", config=get_ranking("final"), disclosure=PUBLIC, draws=5)
    assert (empty.out / "compare.html").is_file()


@pytest.mark.parametrize("method", ["score", "median-rank", "rank-then-aggregate", "test-based"])
def test_every_method_builds_a_site(tmp_path, method):
    submissions, cases, _ = _small_phase(tmp_path)
    config = get_ranking("final")
    config = dataclasses.replace(config, method=method,
                                 columns=config.columns[:1] if method == "score" else config.columns)
    report = build_site(SiteInput(submissions, cases=cases), out=tmp_path / "site", config=config, disclosure=PUBLIC,
                        draws=10)
    assert report.ranked[0] == submission_id("a")
    header = _csv(report.out / "index.leaderboard.csv")[0]
    assert "score" in header


def test_duplicate_ids_and_foreign_folders_are_refused(tmp_path):
    submissions, cases, _ = _small_phase(tmp_path)
    with pytest.raises(LeaderboardError, match="submission ids must be unique"):
        build_site(SiteInput([submissions[0], submissions[0]]), out=tmp_path / "site", config=get_ranking("final"),
                   disclosure=PUBLIC, draws=5)
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(LeaderboardError, match="not a leaderboard site or report built before"):
        build_site(SiteInput(submissions), out=target, config=get_ranking("final"), disclosure=PUBLIC, draws=5)


def test_a_phase_ranked_by_seconds_shows_it_as_a_ranked_column_and_per_case(tmp_path):
    from challenge.ranking import JOB, RankedColumn

    final = get_ranking("final")
    config = dataclasses.replace(final, columns=(*final.columns, RankedColumn("seconds", JOB, "lower")))
    submissions = make_phase_submissions()
    report = build_site(SiteInput(submissions, cases=CASES), out=tmp_path / "site", config=config,
                        disclosure=PUBLIC, draws=5)
    index = (report.out / "index.html").read_text(encoding="utf-8")
    assert "Seconds per case (s)" in index and "Seconds per case (lower is better)" in index
    rows = list(csv.DictReader((report.out / "index.leaderboard.csv").read_text(encoding="utf-8").splitlines()))
    crashy = next(s for s in submissions if s.team == "crashy")
    other = next(s for s in submissions if s.team == "no-discs")
    row = next(r for r in rows if r["team"] == "no-discs")
    assert float(row["seconds_job"]) == pytest.approx(np.mean([job.seconds for job in other.jobs]), abs=1e-3)
    # A case without a result makes the aggregate missing (the worst rank of the column), as for every column.
    assert next(r for r in rows if r["team"] == "crashy")["seconds_job"] == ""
    cases = list(csv.DictReader((report.out / "submissions" / f"{crashy.id}.cases.csv").read_text(
        encoding="utf-8").splitlines()))
    by_case = {r["case"]: r["seconds_job"] for r in cases}
    assert by_case["2_t1"] == "" and float(by_case["1_t1"]) == next(j.seconds for j in crashy.jobs if j.case == "1_t1")


def test_a_team_named_like_a_formula_is_text_in_the_csv_and_as_written_elsewhere(tmp_path):
    formula = '=HYPERLINK("http://evil.example","click")'
    submissions = [dataclasses.replace(s, team=formula) if s.team == "crashy" else s for s in make_phase_submissions()]
    report = build_site(SiteInput(submissions, cases=CASES), out=tmp_path / "site", config=get_ranking("final"),
                        disclosure=PUBLIC, draws=5)
    teams = [row["team"] for row in _csv(report.out / "index.leaderboard.csv")]
    assert "'" + formula in teams and formula not in teams
    numbers = [row["dice_vertebrae"] for row in _csv(report.out / "index.leaderboard.csv")]
    assert all(not n.startswith("'") for n in numbers)
    document = json.loads((report.out / "index.leaderboard.json").read_text(encoding="utf-8"))
    assert formula in [row["team"] for row in document["rows"]]
