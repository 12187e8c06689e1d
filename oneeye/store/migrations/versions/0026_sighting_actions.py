"""sighting actions not yet finished (a server that dies mid-sighting leaves its row)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sighting_actions",
        sa.Column("sighting_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sighting_id"], ["sightings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sighting_id"),
    )
    with op.batch_alter_table("sighting_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sighting_actions_lease_until"), ["lease_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sighting_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sighting_actions_lease_until"))
    op.drop_table("sighting_actions")
