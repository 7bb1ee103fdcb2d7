"""Alembic environment: migrations run on the connection that submissions.db hands over.

`submissions.db.upgrade(engine)` runs `alembic upgrade head` programmatically and passes its
open connection in `config.attributes["connection"]`; there is no alembic.ini. To write a new
revision from a checkout, run for example:
    python -m submissions.db revision -m "add a column" --db sqlite:////tmp/scratch.sqlite
"""

from __future__ import annotations

from alembic import context

from submissions.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through submissions.db.upgrade(), which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; use submissions.db.upgrade()")
run_migrations_online()
