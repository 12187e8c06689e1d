"""watchlist threshold mode: fixed, or automatic for a target FPIR (site calibration)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watchlists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("threshold_mode", sa.String(length=8), nullable=False, server_default="fixed")
        )
        batch_op.add_column(sa.Column("target_fpir", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watchlists", schema=None) as batch_op:
        batch_op.drop_column("target_fpir")
        batch_op.drop_column("threshold_mode")
