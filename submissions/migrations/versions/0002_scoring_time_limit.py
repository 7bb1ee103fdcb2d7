"""Phases: the scoring time limit per case (phases.toml `scoring_time_limit_seconds`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# challenge.phases.DEFAULT_SCORING_TIME_LIMIT_S when this revision was written: what phases
# registered before it get (a migration must not change when that default changes).
_DEFAULT_SECONDS = 300


def upgrade() -> None:
    with op.batch_alter_table("phases") as batch:
        batch.add_column(sa.Column("scoring_time_limit_seconds", sa.Integer(), nullable=False,
                                   server_default=sa.text(str(_DEFAULT_SECONDS))))


def downgrade() -> None:
    with op.batch_alter_table("phases") as batch:
        batch.drop_column("scoring_time_limit_seconds")
