"""customer accounts indexed by name (the customers page is paged in name order)

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-04 00:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_accounts_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_accounts_name"))
