"""sighting decisions: the trail of a sighting's revised decisions

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sighting_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=True),
        sa.Column("watchlist", sa.String(length=64), nullable=True),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revised_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sighting_id"], ["sightings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sighting_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sighting_decisions_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sighting_decisions_sighting_id"), ["sighting_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sighting_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sighting_decisions_sighting_id"))
        batch_op.drop_index(batch_op.f("ix_sighting_decisions_person_id"))
    op.drop_table("sighting_decisions")
