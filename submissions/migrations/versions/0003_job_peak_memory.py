"""Jobs: the run's peak memory as the runner measured it (None for runs recorded before it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # BigInteger: a peak of 2 GiB or more does not fit PostgreSQL's 4-byte integer.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("peak_memory_bytes")
