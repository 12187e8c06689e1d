"""sighting feedback (confirm / reject a match) and templates enrolled from sightings

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 00:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sighting_feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sighting_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("actual_person_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sighting_id", "person_id"),
    )
    with op.batch_alter_table("sighting_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sighting_feedback_sighting_id"), ["sighting_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sighting_feedback_person_id"), ["person_id"], unique=False
        )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_sighting_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("source_sighting_id")
    with op.batch_alter_table("sighting_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sighting_feedback_person_id"))
        batch_op.drop_index(batch_op.f("ix_sighting_feedback_sighting_id"))
    op.drop_table("sighting_feedback")
