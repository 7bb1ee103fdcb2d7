"""From the registry to the site: the read path (`submissions.queries.read_phase`) and `spider leaderboard build`.

The registry here is written through the registry's ORM models, as the engine writes it; the
leaderboard reads it only through the read API, read-only.
"""

from __future__ import annotations

import ast
import math
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from challenge.cli import main
from challenge.results import GROUP_LEVEL
from challenge.rules import RULES_VERSION
from challenge.statuses import JobStatus, RowStatus, SubmissionStatus
from submissions.queries import read_phase

from .conftest import CASES, EVIL_TEAM, T0, make_phase_submissions, write_predictions, write_test_set

LEADERBOARD = Path(__file__).resolve().parents[2] / "leaderboard"
# One group row stored without a value (NaN): (submission index, case, metric, structure).
NAN_ROW = (2, "1_t1", "hd95", "vertebrae")


@dataclass(frozen=True)
class Registry:
    path: Path
    test_set: Path
    stored: Path
    """Stored predictions as <stored>/<registry id>/<case>.mha."""

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"


def write_registry(root: Path, *, store_outputs: bool = True) -> Registry:
    """A SQLite registry holding the synthetic phase 'final', registry ids 1-5 in conftest's order."""
    from submissions.db import open_registry
    from submissions.models import Case, Job, PhaseRecord, Result, Submission, Team

    test_set = write_test_set(root / "test-set")
    submissions = make_phase_submissions()
    registry_id = {s.id: index + 1 for index, s in enumerate(submissions)}
    stored = write_predictions(root / "stored", submissions, folder_of=lambda s: str(registry_id[s.id]))
    path = root / "registry.sqlite"
    registry = open_registry(f"sqlite:///{path}", work=root / "work")
    with registry.session() as session:
        phase = PhaseRecord(name="final", description="", data_dir=str(test_set), time_limit_seconds=60,
                            memory_bytes=2**30, cpus=1.0, gpus=0, pids_limit=64, tmp_bytes=2**20,
                            output_limit_bytes=2**20, submission_period="phase")
        phase.cases = [Case(name=case) for case in CASES]
        session.add(phase)
        teams: dict[str, Team] = {}
        for index, s in enumerate(submissions):
            team = teams.setdefault(s.team, Team(name=s.team))
            record = Submission(id=registry_id[s.id], phase=phase, team=team, algorithm_name=s.algorithm_name,
                                image_digest=s.image_digest, source="test", created_at=T0 + timedelta(hours=index),
                                status=SubmissionStatus.COMPLETED, rules_version=RULES_VERSION)
            session.add(record)
            session.flush()
            for job in s.jobs:
                output = stored / str(record.id) / f"{job.case}.mha"
                job_record = Job(submission_id=record.id, case=job.case, status=job.status, reason=job.reason,
                                 seconds=job.seconds, log_path=job.log_path, attempts=job.attempts,
                                 output_path=str(output) if store_outputs and output.is_file() else None)
                session.add(job_record)
                session.flush()
                for row in s.rows:
                    if row.case != job.case:
                        continue
                    nan = (index, row.case, row.metric, row.structure) == NAN_ROW and row.is_group
                    session.add(Result(job_id=job_record.id, submission_id=record.id, case=row.case,
                                       structure=row.structure, level=row.level, label=row.label, metric=row.metric,
                                       value=math.nan if nan else row.value, status=row.status,
                                       rules_version=RULES_VERSION))
        session.commit()
    registry.dispose()
    return Registry(path, test_set, stored)


@pytest.fixture
def registry(tmp_path) -> Registry:
    return write_registry(tmp_path)


def public_phases_file(root: Path) -> Path:
    """The packaged phases file with phase 'final' on public test data (its site may show everything)."""
    from challenge.phases import default_phases_path

    text = default_phases_path().read_text(encoding="utf-8")
    assert 'test_data = "hidden"' in text
    path = root / "phases-public.toml"
    path.write_text(text.replace('test_data = "hidden"', 'test_data = "public"'), encoding="utf-8")
    return path


def _sort_key(row):
    return (row.case, row.structure, row.level, row.metric)


@pytest.mark.timeout(120)
def test_read_phase_gives_the_rows_and_jobs_as_written(registry):
    before = registry.path.read_bytes()
    phase = read_phase(registry.url, "final")
    assert registry.path.read_bytes() == before
    assert phase.cases == tuple(sorted(CASES))
    assert phase.data_dir == registry.test_set and (phase.data_dir / "overview.csv").is_file()
    written = make_phase_submissions()
    assert [s.id for s in phase.submissions] == [1, 2, 3, 4, 5]
    first = phase.submissions[0]
    assert (first.team, first.algorithm_name, first.status) == ("reference", "unet-s1", SubmissionStatus.COMPLETED)
    # Rows come back as written: group rows at level "all", level rows with their label, enum statuses.
    assert first.rows == tuple(sorted(written[0].rows, key=_sort_key))
    assert {row.level for row in first.rows} >= {GROUP_LEVEL, "L5", "L5/S1"}
    assert all(row.is_group == (row.label is None) for row in first.rows)
    # A value stored as NaN stays NaN: a row without a value, not a dropped row.
    index, case, metric, structure = NAN_ROW
    (nan_row,) = [r for r in phase.submissions[index].rows
                  if (r.case, r.metric, r.structure, r.level) == (case, metric, structure, GROUP_LEVEL)]
    assert math.isnan(nan_row.value) and not nan_row.has_value and nan_row.status is RowStatus.SCORED
    # Jobs carry the stored prediction's path; a failed job has none.
    assert all(job.output_path == str(registry.stored / "1" / f"{job.case}.mha") for job in first.jobs)
    crashy = next(s for s in phase.submissions if s.team == "crashy")
    failed = [job for job in crashy.jobs if job.failed]
    assert [(job.case, job.status, job.output_path) for job in failed] == [
        ("2_t1", JobStatus.FAILED, None), ("5_t2", JobStatus.FAILED, None)]
    assert "out of memory" in failed[0].reason


def test_the_leaderboard_reads_the_registry_only_through_its_read_api():
    imported = set()
    for path in LEADERBOARD.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported.update((path.name, alias.name) for alias in node.names)
    registry_modules = {module for _, module in imported if module.split(".")[0] == "submissions"}
    # submissions.names holds no state: what makes two spellings of a team name one team (team_key).
    assert registry_modules <= {"submissions.records", "submissions.queries", "submissions.names"}, sorted(imported)
    assert {name for name, module in imported if module == "submissions.queries"} == {"commands.py"}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cli_builds_the_site_from_the_registry(registry, tmp_path, capsys):
    out = tmp_path / "site"
    before = registry.path.read_bytes()
    code = main(["leaderboard", "build", "--db", registry.url, "--work", str(tmp_path / "work"),
                 "--out", str(out), "--draws", "20", "--phases", str(public_phases_file(tmp_path))])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert registry.path.read_bytes() == before
    assert f"leaderboard: {out / 'index.html'}" in printed
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and EVIL_TEAM not in index
    assert (out / "submissions" / "1.html").is_file()
    # Pictures come from the jobs' stored outputs found in the registry.
    assert any((out / "img" / "1").glob("case-*.png"))
    assert "No prediction was stored" not in (out / "submissions" / "1.html").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cli_finds_predictions_in_a_folder_where_the_registry_names_none(tmp_path, capsys):
    registry = write_registry(tmp_path, store_outputs=False)
    assert all(job.output_path is None for s in read_phase(registry.url, "final").submissions for job in s.jobs)
    out = tmp_path / "site"
    without = ["leaderboard", "build", "--db", registry.url, "--out", str(out), "--draws", "5",
               "--phases", str(public_phases_file(tmp_path))]
    assert main(without) == 0, capsys.readouterr()
    assert "No prediction was stored" in (out / "submissions" / "1.html").read_text(encoding="utf-8")
    assert main(without + ["--predictions", str(registry.stored)]) == 0, capsys.readouterr()
    assert "No prediction was stored" not in (out / "submissions" / "1.html").read_text(encoding="utf-8")


def test_cli_refuses_a_foreign_folder_and_bad_draws(registry, tmp_path, capsys):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    assert main(["leaderboard", "build", "--db", registry.url, "--out", str(foreign), "--draws", "5"]) == 2
    assert "is not a leaderboard site or report built before" in capsys.readouterr().err
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert main(["leaderboard", "build", "--db", registry.url, "--out", str(tmp_path / "s"), "--draws", "0"]) == 2
    assert "--draws must be at least 1, found 0" in capsys.readouterr().err
    assert main(["leaderboard", "build", "--db", registry.url, "--phase", "nope", "--out", str(tmp_path / "s")]) == 2
    assert "no ranking declared for phase 'nope'" in capsys.readouterr().err


def test_a_missing_registry_is_a_clear_error_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SPIDER_DB", raising=False)
    monkeypatch.setenv("SPIDER_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    missing = tmp_path / "missing.db"
    code = main(["leaderboard", "build", "--db", f"sqlite:///{missing}", "--out", str(tmp_path / "site")])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith(f"spider leaderboard: error: no registry database at {missing}: nothing to read"), error
    assert "Traceback" not in error
    assert list(tmp_path.iterdir()) == [], "no database, site or work folder is created"


def _set_version(path: Path, statement: str) -> None:
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(statement)
    finally:
        connection.close()


@pytest.mark.parametrize("downgrade, message", [
    ("UPDATE alembic_version SET version_num = '0000_older'", "is at schema 0000_older, this version reads "),
    ("DROP TABLE alembic_version", "holds no registry (no schema version): nothing to read"),
])
def test_a_registry_at_an_older_schema_is_refused_and_left_as_it_is(registry, tmp_path, capsys, downgrade, message):
    _set_version(registry.path, downgrade)
    before = registry.path.read_bytes()
    out = tmp_path / "site"
    assert main(["leaderboard", "build", "--db", registry.url, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("spider leaderboard: error: ") and message in error, error
    assert str(registry.path) in error
    assert registry.path.read_bytes() == before
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cli_writes_a_team_report_and_the_organizer_report_of_the_hidden_phase(registry, tmp_path, capsys):
    before = registry.path.read_bytes()
    team, organizer = tmp_path / "team", tmp_path / "organizer"
    assert main(["report", "team", "--team", "crashy", "--db", registry.url, "--work", str(tmp_path / "work"),
                 "--out", str(team), "--draws", "10"]) == 0
    printed = capsys.readouterr().out
    assert f"team report: {team / 'index.html'}" in printed and "team report shows:" in printed
    assert main(["report", "organizer", "--db", registry.url, "--work", str(tmp_path / "work"),
                 "--out", str(organizer), "--draws", "10"]) == 0
    assert f"organizer report: {organizer / 'index.html'}" in capsys.readouterr().out
    assert registry.path.read_bytes() == before
    assert len(list((team / "submissions").glob("*.html"))) == 1
    assert any(organizer.rglob("case-*.png")) and not any(team.rglob("*.png"))
    assert (organizer / "cases.html").is_file()
    assert main(["report", "team", "--team", "nobody", "--db", registry.url, "--out", str(tmp_path / "x")]) == 2
    assert "team 'nobody' has no submission" in capsys.readouterr().err
