"""Teams: an identity key (submissions.names.team_key) so "TeamA" and "teama " are one team;
phases: the submitted image's size and layer limits (phases.toml `image_limit`, `max_image_layers`).

Teams registered before this revision whose names share a key stay separate teams (nothing is
merged by a migration): the later ones get their id appended to the key, and new submissions
under any spelling of the name go to the earliest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from submissions.names import team_key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# challenge.phases' defaults when this revision was written (a migration must not change with them).
_DEFAULT_IMAGE_LIMIT_BYTES = 10 * 1000**3
_DEFAULT_MAX_IMAGE_LAYERS = 125


def upgrade() -> None:
    # No table is rebuilt (SQLite's batch mode would drop `teams`, which submissions reference): the
    # column comes with a placeholder default, then the filled keys get a unique index.
    op.add_column("teams", sa.Column("key", sa.Text(), nullable=False, server_default=sa.text("''")))
    teams = sa.table("teams", sa.column("id", sa.Integer), sa.column("name", sa.Text), sa.column("key", sa.Text))
    connection = op.get_bind()
    taken: set[str] = set()
    for team_id, name in connection.execute(sa.select(teams.c.id, teams.c.name).order_by(teams.c.id)).all():
        key = team_key(name)
        if key in taken:
            key = f"{key}#{team_id}"
        taken.add(key)
        connection.execute(teams.update().where(teams.c.id == team_id).values(key=key))
    op.create_index("uq_teams_key", "teams", ["key"], unique=True)
    op.add_column("phases", sa.Column("image_limit_bytes", sa.BigInteger(), nullable=False,
                                      server_default=sa.text(str(_DEFAULT_IMAGE_LIMIT_BYTES))))
    op.add_column("phases", sa.Column("max_image_layers", sa.Integer(), nullable=False,
                                      server_default=sa.text(str(_DEFAULT_MAX_IMAGE_LAYERS))))


def downgrade() -> None:
    op.drop_column("phases", "max_image_layers")
    op.drop_column("phases", "image_limit_bytes")
    op.drop_index("uq_teams_key", table_name="teams")
    op.drop_column("teams", "key")
