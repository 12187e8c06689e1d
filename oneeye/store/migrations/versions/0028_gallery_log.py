"""gallery versions from the database: one state row and the log of changes every server applies

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The state row is made by the first server that starts (store.repos.gallery_log.state).
    op.create_table(
        "gallery_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "gallery_log",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("gallery_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gallery_log_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gallery_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gallery_log_created_at"))
    op.drop_table("gallery_log")
    op.drop_table("gallery_state")
