"""Fixtures of the registry and engine tests: databases (SQLite always, PostgreSQL when
SPIDER_TEST_POSTGRES_URL is set), small hidden test sets, a registered phase, fake jobs."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # so that workers and subprocesses import submissions_fakes by name

POSTGRES_ENV = "SPIDER_TEST_POSTGRES_URL"

from submissions_testdata import case_names, write_hidden_set  # noqa: E402


@pytest.fixture(autouse=True)
def _stop_engine_processes():
    """Engines that a test started with engine_process.start_engine do not outlive it."""
    yield
    from engine_process import stop_started_engines

    stop_started_engines()


@pytest.fixture
def hidden_set(tmp_path) -> Path:
    """Six cases of patients 1-3."""
    return write_hidden_set(tmp_path / "hidden", case_names(6))


@pytest.fixture
def make_hidden_set(tmp_path):
    def make(names, folder: str = "hidden-extra") -> Path:
        return write_hidden_set(tmp_path / folder, names)

    return make


def _postgres_params():
    url = os.environ.get(POSTGRES_ENV)
    marks = [] if url else [pytest.mark.skip(reason=f"{POSTGRES_ENV} is not set")]
    return pytest.param("postgresql", marks=marks, id="postgresql")


@pytest.fixture(params=["sqlite", _postgres_params()])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new schema in the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
        return
    from sqlalchemy import text

    from submissions.db import create_db_engine

    base = os.environ[POSTGRES_ENV]
    schema = f"spider_test_{secrets.token_hex(6)}"
    admin = create_db_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def work_dir(tmp_path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def registry(db_url, work_dir):
    from submissions.db import open_registry

    registry = open_registry(db_url, work=work_dir)
    yield registry
    registry.dispose()


@pytest.fixture
def phase(registry, hidden_set):
    """Phase 'sanity-check' registered on the six-case hidden set, without a submission limit."""
    from submissions.intake import set_phase
    from submissions.models import PhaseRecord

    summary = set_phase(registry, "sanity-check", data_dir=hidden_set)
    with registry.session() as session, session.begin():
        record = session.query(PhaseRecord).filter_by(name="sanity-check").one()
        record.max_submissions = None
    return summary


@pytest.fixture
def ledger(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "ledger.txt"
    monkeypatch.setenv("SUBMISSIONS_FAKE_LEDGER", str(path))
    return path


@pytest.fixture
def submit_fake(registry, tmp_path):
    """submit_fake(team, name, content=..., phase=...) -> receipt, with a fake image file."""
    from submissions_fakes import fake_pinner

    from submissions.intake import submit

    counter = iter(range(10_000))

    def make(
        team: str = "team a",
        name: str = "algo",
        *,
        content: bytes | None = None,
        phase: str = "sanity-check",
        now=None,
    ):
        image = tmp_path / f"image-{next(counter)}.tar"
        image.write_bytes(content if content is not None else secrets.token_bytes(16))
        return submit(registry, team=team, name=name, image=str(image), phase=phase, pinner=fake_pinner, now=now)

    return make


CONTAINERS = HERE / "containers"


@pytest.fixture(scope="session")
def identity_image(docker_client, base_image) -> str:
    """Tag of tests/submissions/containers/identity, built (offline) for this session."""
    tag = "spider-test/submissions-identity:latest"
    docker_client.images.build(path=str(CONTAINERS / "identity"), tag=tag, rm=True, forcerm=True, network_mode="none")
    return tag
