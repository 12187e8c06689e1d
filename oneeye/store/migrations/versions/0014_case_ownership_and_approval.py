"""case ownership and approval

A case is owned by the user or key that filed it (``cases.filed_by``, by row id), and its
sightings leave the server only once a coordinator or admin approved it (``approved_at``,
``approved_by``); matches found before that are ``held``.

Cases that exist before this migration: the owner is found by the reporter's user name (a
key's case, or a deleted user's, gets none: only coordinators and admins may act on it); a
case filed by a current admin counts as approved when it was filed; every other case waits for
a coordinator's approval, and its matches from then on are held (see SECURITY.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filed_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_filed_by"), ["filed_by"], unique=False)
    with op.batch_alter_table("case_matches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # ``||`` and CAST work the same on SQLite and PostgreSQL.
    op.execute(
        "UPDATE cases SET filed_by = (SELECT 'user:' || CAST(users.id AS VARCHAR) FROM users "
        "WHERE 'user:' || users.username = cases.reporter)"
    )
    op.execute(
        "UPDATE cases SET approved_at = created_at, approved_by = reporter WHERE reporter IN "
        "(SELECT 'user:' || users.username FROM users WHERE users.role = 'admin')"
    )


def downgrade() -> None:
    with op.batch_alter_table("case_matches", schema=None) as batch_op:
        batch_op.drop_column("held")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_filed_by"))
        batch_op.drop_column("approved_by")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("filed_by")
