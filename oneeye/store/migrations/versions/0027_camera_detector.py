"""each camera may choose its face detector: hog, cnn or auto (NULL: the server's setting)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing cameras keep working as the server's video settings say (NULL: hog by default).
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detector", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("detector")
