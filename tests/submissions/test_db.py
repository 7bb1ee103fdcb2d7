"""Opening the registry: URL resolution, SQLite settings, migrations that match the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from submissions.db import (
    DB_ENV,
    WORK_ENV,
    current_revision,
    head_revision,
    open_registry,
    resolve_url,
    resolve_work_dir,
)
from submissions.errors import RegistryError
from submissions.models import Base


def test_url_from_argument_then_environment_then_work_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(DB_ENV, raising=False)
    assert resolve_url(None, work_dir=tmp_path) == f"sqlite:///{tmp_path / 'registry.sqlite'}"
    monkeypatch.setenv(DB_ENV, "postgresql+psycopg://u@h/db")
    assert resolve_url(None, work_dir=tmp_path) == "postgresql+psycopg://u@h/db"
    assert resolve_url("sqlite:////x/y.sqlite", work_dir=tmp_path) == "sqlite:////x/y.sqlite"
    assert resolve_url(str(tmp_path / "r.db"), work_dir=tmp_path) == f"sqlite:///{tmp_path / 'r.db'}"


def test_work_folder_from_argument_then_environment_then_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv(WORK_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_work_dir(None) == tmp_path / "data" / "spider"
    monkeypatch.setenv(WORK_ENV, str(tmp_path / "env-work"))
    assert resolve_work_dir(None) == tmp_path / "env-work"
    assert resolve_work_dir(tmp_path / "given") == tmp_path / "given"
    assert (tmp_path / "given").is_dir()


def test_default_registry_is_sqlite_in_wal_mode_in_the_work_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(DB_ENV, raising=False)
    registry = open_registry(work=tmp_path / "work")
    try:
        assert (tmp_path / "work" / "registry.sqlite").is_file()
        with registry.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert current_revision(registry.engine) == head_revision()
    finally:
        registry.dispose()


def test_migrations_create_exactly_the_models_schema(db_url, work_dir):
    registry = open_registry(db_url, work=work_dir)
    try:
        with registry.engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
            )
            tables = set(inspect(connection).get_table_names())
        assert differences == []
        assert tables >= {"alembic_version", "teams", "phases", "cases", "submissions", "jobs", "results"}
    finally:
        registry.dispose()


def test_opening_again_is_a_no_op_and_keeps_data(db_url, work_dir):
    first = open_registry(db_url, work=work_dir)
    with first.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO teams (name, key, created_at) VALUES ('kept', 'kept', '2026-01-01 00:00:00')"))
    first.dispose()
    second = open_registry(db_url, work=work_dir)
    try:
        with second.engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM teams")).scalars().all() == ["kept"]
    finally:
        second.dispose()


@pytest.mark.timeout(120)
def test_processes_opening_a_fresh_database_together_migrate_once(db_url, work_dir):
    script = (
        "import sys\n"
        "from submissions.db import open_registry, current_revision\n"
        "registry = open_registry(sys.argv[1], work=sys.argv[2])\n"
        "print(current_revision(registry.engine))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url, str(work_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=100) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {head_revision()}


def test_unusable_urls_are_refused_with_a_reason(tmp_path):
    with pytest.raises(RegistryError, match="in-memory SQLite"):
        open_registry("sqlite://", work=tmp_path)
    with pytest.raises(RegistryError, match="unsupported database 'mysql'"):
        open_registry("mysql://u@h/db", work=tmp_path)
    with pytest.raises(RegistryError, match="cannot open the registry"):
        open_registry("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", work=tmp_path)


def test_migrations_are_packaged_with_the_code():
    import submissions.db as db

    versions = Path(db.MIGRATIONS_DIR) / "versions"
    assert (Path(db.MIGRATIONS_DIR) / "env.py").is_file()
    assert sorted(p.name for p in versions.glob("0*.py")) == [
        "0001_initial.py", "0002_scoring_time_limit.py", "0003_job_peak_memory.py", "0004_team_key_image_limits.py"
    ]


def test_phases_registered_before_the_scoring_time_limit_get_the_declared_default(db_url, work_dir):
    from alembic import command

    from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S
    from submissions.db import _alembic_config, create_db_engine
    from submissions.intake import phase_of
    from submissions.models import PhaseRecord

    engine = create_db_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0001")
        connection.execute(text(
            "INSERT INTO phases (name, description, data_dir, time_limit_seconds, memory_bytes, cpus, gpus, "
            "pids_limit, tmp_bytes, output_limit_bytes, submission_period, created_at, updated_at) VALUES "
            "('final', '', '/data', 60, 1024, 1.0, 0, 64, 1024, 1024, 'phase', '2026-01-01 00:00:00', "
            "'2026-01-01 00:00:00')"))
    engine.dispose()
    registry = open_registry(db_url, work=work_dir)
    try:
        with registry.session() as session:
            record = session.query(PhaseRecord).filter_by(name="final").one()
            assert phase_of(record).scoring_time_limit_seconds == DEFAULT_SCORING_TIME_LIMIT_S == 300
    finally:
        registry.dispose()


def _job_rows(connection) -> list[tuple]:
    return [tuple(row) for row in connection.execute(text(
        'SELECT id, submission_id, "case", status, reason, exit_code, seconds, attempts, log_path FROM jobs ORDER BY id'
    ))]


def test_jobs_recorded_before_peak_memory_keep_their_rows_and_get_none(db_url, work_dir):
    """0002 -> 0003 adds jobs.peak_memory_bytes: every job and its run stay as they were, with no peak
    memory; the downgrade drops the column and keeps the rows again."""
    from alembic import command

    from submissions.db import _alembic_config, create_db_engine
    from submissions.models import Job

    stamp = "'2026-01-01 00:00:00'"
    engine = create_db_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0002")
        connection.execute(text(f"INSERT INTO teams (id, name, created_at) VALUES (1, 'team a', {stamp})"))
        connection.execute(text(
            "INSERT INTO phases (id, name, description, data_dir, time_limit_seconds, memory_bytes, cpus, gpus, "
            "pids_limit, tmp_bytes, output_limit_bytes, submission_period, scoring_time_limit_seconds, created_at, "
            f"updated_at) VALUES (1, 'final', '', '/data', 60, 1024, 1.0, 0, 64, 1024, 1024, 'phase', 300, {stamp}, "
            f"{stamp})"))
        connection.execute(text(
            "INSERT INTO submissions (id, phase_id, team_id, algorithm_name, image_digest, source, created_at, status) "
            f"VALUES (1, 1, 1, 'algo', 'sha256:ab', 'image.tar', {stamp}, 'completed')"))
        connection.execute(text(
            'INSERT INTO jobs (id, submission_id, "case", status, reason, exit_code, seconds, attempts, log_path) '
            "VALUES (1, 1, '1_t1', 'succeeded', 'valid segmentation', 0, 12.5, 1, '/work/log.txt'), "
            "(2, 1, '1_t2', 'pending', NULL, NULL, NULL, 0, NULL)"))
        before = _job_rows(connection)
    engine.dispose()

    registry = open_registry(db_url, work=work_dir)  # migrates to the head
    try:
        assert current_revision(registry.engine) == head_revision()
        with registry.engine.connect() as connection:
            assert _job_rows(connection) == before
        with registry.session() as session:
            assert [job.peak_memory_bytes for job in session.query(Job).order_by(Job.id)] == [None, None]
    finally:
        registry.dispose()

    engine = create_db_engine(db_url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0002")
            assert "peak_memory_bytes" not in {column["name"] for column in inspect(connection).get_columns("jobs")}
            assert _job_rows(connection) == before
    finally:
        engine.dispose()


def test_teams_registered_before_the_team_key_get_one_and_colliding_names_stay_separate(db_url, work_dir):
    """0003 -> 0004: every team gets its key; two old teams whose names now share a key are not merged
    (the later one's key carries its id), phases get the image limits' defaults; the downgrade keeps the rows."""
    from alembic import command

    from challenge.phases import DEFAULT_IMAGE_LIMIT_BYTES, DEFAULT_MAX_IMAGE_LAYERS
    from submissions.db import _alembic_config, create_db_engine
    from submissions.models import PhaseRecord, Team

    stamp = "'2026-01-01 00:00:00'"
    engine = create_db_engine(db_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0003")
        connection.execute(text(f"INSERT INTO teams (id, name, created_at) VALUES (1, 'Team A', {stamp}), "
                                f"(2, 'team a ', {stamp}), (3, 'Other', {stamp})"))
        connection.execute(text(
            "INSERT INTO phases (id, name, description, data_dir, time_limit_seconds, memory_bytes, cpus, gpus, "
            "pids_limit, tmp_bytes, output_limit_bytes, submission_period, scoring_time_limit_seconds, created_at, "
            f"updated_at) VALUES (1, 'final', '', '/data', 60, 1024, 1.0, 0, 64, 1024, 1024, 'phase', 300, {stamp}, "
            f"{stamp})"))
    engine.dispose()

    registry = open_registry(db_url, work=work_dir)
    try:
        with registry.session() as session:
            assert [(t.name, t.key) for t in session.query(Team).order_by(Team.id)] == [
                ("Team A", "team a"), ("team a ", "team a#2"), ("Other", "other")]
            phase = session.query(PhaseRecord).one()
            assert (phase.image_limit_bytes, phase.max_image_layers) == (DEFAULT_IMAGE_LIMIT_BYTES,
                                                                         DEFAULT_MAX_IMAGE_LAYERS)
    finally:
        registry.dispose()
    engine = create_db_engine(db_url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0003")
            assert connection.execute(text("SELECT name FROM teams ORDER BY id")).scalars().all() == [
                "Team A", "team a ", "Other"]
    finally:
        engine.dispose()


def test_the_work_folder_and_the_sqlite_file_are_private_to_the_harness_user(tmp_path):
    """They hold the hidden test set's copies, the images and every output: mode 0700 and 0600, also for a
    work folder that existed with wider modes; the journal SQLite writes takes the database's mode."""
    import stat

    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    work.chmod(0o755)
    registry = open_registry(work=work)
    try:
        with registry.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO teams (name, key, created_at) VALUES ('kept', 'kept', '2026-01-01 00:00:00')"))
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        database = work / "registry.sqlite"
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
        for companion in work.glob("registry.sqlite-*"):
            assert stat.S_IMODE(companion.stat().st_mode) & 0o077 == 0, companion
    finally:
        registry.dispose()
    fresh = open_registry(work=tmp_path / "fresh" / "work")
    try:
        assert stat.S_IMODE((tmp_path / "fresh" / "work").stat().st_mode) == 0o700
    finally:
        fresh.dispose()
