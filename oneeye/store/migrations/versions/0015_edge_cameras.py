"""edge cameras and edge-bound API keys

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edge_cameras",
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("camera_id"),
    )
    with op.batch_alter_table("edge_cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_edge_cameras_edge_id"), ["edge_id"], unique=False)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edge_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("edge_id")
    with op.batch_alter_table("edge_cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_edge_cameras_edge_id"))
    op.drop_table("edge_cameras")
