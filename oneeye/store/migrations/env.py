"""Alembic's entry point: runs migrations on the connection ``Database.migrate`` passes in."""

from __future__ import annotations

from alembic import context

from oneeye.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("OneEye's migrations run through oneeye.store.db.Database.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
