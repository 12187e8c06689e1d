"""each camera may have its own scan rate and detector threads (NULL: the server's setting)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing cameras keep working as the server's video settings say (NULL).
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scan_every", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("detect_threads", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("detect_threads")
        batch_op.drop_column("scan_every")
