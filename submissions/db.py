"""Opening the registry: database URL from --db / SPIDER_DB, else SQLite (WAL) in the work folder.

The work folder (--work, else SPIDER_WORK, else $XDG_DATA_HOME/spider or ~/.local/share/spider)
holds the default SQLite database and every file the engine writes: image archives, job
outputs and logs, metrics.json. With several engines (or Ray nodes) it must be the same shared
folder, at the same path, on every machine.

Opening runs `alembic upgrade head` (migrations packaged in submissions/migrations) inside
one transaction that holds the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
advisory lock), so engines that start together migrate once.

SQLite connections run every transaction as BEGIN IMMEDIATE: a transaction that reads then
writes cannot fail half-way with "database is locked"; writers queue for up to
`SQLITE_BUSY_TIMEOUT_S` instead.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from submissions.errors import RegistryError

DB_ENV = "SPIDER_DB"
WORK_ENV = "SPIDER_WORK"
DEFAULT_DB_FILE = "registry.sqlite"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 120
# Any fixed 64-bit number: the PostgreSQL advisory lock that serializes migrations.
_PG_MIGRATION_LOCK = 0x5350494445520001


def resolve_work_dir(work: Path | str | None = None, *, create: bool = True) -> Path:
    """The work folder: `work`, else $SPIDER_WORK, else the user's data folder; created if missing
    (unless `create` is False: a reader never creates anything)."""
    if work is None:
        work = os.environ.get(WORK_ENV) or None
    if work is None:
        data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        work = Path(data_home) / "spider"
    path = Path(work).expanduser().resolve()
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    except OSError as error:
        raise RegistryError(f"cannot create the work folder {path}: {error.strerror}") from error
    make_private(path, PRIVATE_FOLDER_MODE)
    return path


PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private(path: Path, mode: int) -> None:
    """Give `path` `mode` (no access for group and others) when this user owns it. The work folder
    holds copies of the hidden test set, the submitted images and every job's output: nobody but the
    harness's user may read it (the containers see only what is mounted for them)."""
    try:
        status = path.stat()
        if status.st_uid == os.geteuid() and status.st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError as error:
        raise RegistryError(f"cannot make {path} private to this user: {error.strerror}") from error


def resolve_url(db: str | None, *, work_dir: Path) -> str:
    """The database URL: `db`, else $SPIDER_DB, else SQLite at <work>/registry.sqlite.

    A value without '://' is taken as the path of a SQLite file.
    """
    value = db or os.environ.get(DB_ENV) or None
    if value is None:
        return f"sqlite:///{work_dir / DEFAULT_DB_FILE}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def create_db_engine(url: str) -> Engine:
    """An SQLAlchemy engine with the registry's connection settings (not yet migrated)."""
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise RegistryError("an in-memory SQLite database cannot be shared by engines; give a file path")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Created private before SQLite opens it (its journal and WAL files take the database's mode).
        os.close(os.open(database, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE))
        make_private(Path(database), PRIVATE_FILE_MODE)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _parse_url(url: str) -> URL:
    """`url` parsed, with psycopg 3 as PostgreSQL's driver; RegistryError for anything but SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise RegistryError(
            f"not a database URL: {url!r} (expected e.g. sqlite:///path or postgresql+psycopg://...)") from error
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise RegistryError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
    return parsed


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise RegistryError(f"no database migration in {MIGRATIONS_DIR}: the installation is incomplete")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """`alembic upgrade head` on this database, serialized across processes."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        command.upgrade(_alembic_config(connection), "head")


@dataclass(frozen=True)
class Registry:
    """An open registry: the database engine, a session factory and the work folder."""

    engine: Engine
    work_dir: Path
    sessions: sessionmaker

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def connect(url: str, *, migrate: bool = True) -> Engine:
    """An engine on the database at `url`, migrated to the newest schema unless `migrate` is False."""
    engine = create_db_engine(url)
    if migrate:
        try:
            if current_revision(engine) != head_revision():
                upgrade(engine)
        except Exception as error:
            engine.dispose()
            if isinstance(error, RegistryError):
                raise
            raise RegistryError(f"cannot open the registry at {engine.url!r}: {error}") from error
    return engine


def connect_read_only(url: str) -> Engine:
    """An engine that only reads the registry at `url`: it creates no database, migrates nothing, and
    refuses (RegistryError) a database that does not exist or is not at the newest schema."""
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = Path(parsed.database or "")
        if not database.is_file():
            raise RegistryError(
                f"no registry database at {database.resolve()}: nothing to read "
                "(a registry is created by `spider phase set`; check --db, --work or $SPIDER_DB)")
        # SQLite's own read-only mode, through a file: URI with the path percent-encoded (a URL
        # string would be unquoted again by SQLAlchemy, and '#' or '?' in a path would cut it).
        uri = f"file:{quote(str(database.resolve()))}?mode=ro"
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True,
                                                                            timeout=SQLITE_BUSY_TIMEOUT_S))
    else:
        engine = create_engine(parsed, pool_pre_ping=True, execution_options={"postgresql_readonly": True})
    try:
        found = current_revision(engine)
    except Exception as error:
        engine.dispose()
        raise RegistryError(
            f"cannot read the registry at {parsed.render_as_string(hide_password=True)}: {error}"
        ) from error
    expected = head_revision()
    if found != expected:
        engine.dispose()
        where = parsed.render_as_string(hide_password=True)
        if found is None:
            raise RegistryError(f"{where} holds no registry (no schema version): nothing to read")
        raise RegistryError(
            f"the registry at {where} is at schema {found}, this version reads {expected}: upgrade it first with a "
            "command that writes (e.g. `spider status --db ...`); a reader never changes it")
    return engine


def open_registry(db: str | None = None, *, work: Path | str | None = None, migrate: bool = True,
                  read_only: bool = False) -> Registry:
    """Open (and by default migrate) the registry named by `db`, $SPIDER_DB or the work folder.

    `read_only` opens it for reading only (see `connect_read_only`): nothing is created or changed.
    """
    work_dir = resolve_work_dir(work, create=not read_only)
    url = resolve_url(db, work_dir=work_dir)
    engine = connect_read_only(url) if read_only else connect(url, migrate=migrate)
    return Registry(engine=engine, work_dir=work_dir, sessions=sessionmaker(engine, expire_on_commit=False))


def _main(argv: list[str]) -> int:
    """Developer helper: `python -m submissions.db revision -m MESSAGE --db URL` autogenerates one."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m submissions.db")
    parser.add_argument("action", choices=["revision", "upgrade"])
    parser.add_argument("-m", "--message", default="change")
    parser.add_argument("--db", required=True, help="a scratch database at the current head")
    arguments = parser.parse_args(argv)
    engine = create_db_engine(resolve_url(arguments.db, work_dir=Path.cwd()))
    if arguments.action == "upgrade":
        upgrade(engine)
        return 0
    with engine.begin() as connection:
        command.revision(_alembic_config(connection), message=arguments.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
