"""Migration 0014 (case ownership and approval) on cases filed before it, on SQLite and
PostgreSQL: a case gets its filer's user as owner when the user still exists, a case filed by a
current admin counts as approved when it was filed, and every other case waits for approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text

from oneeye.store.db import Database
from oneeye.store.models import AlertCase
from tests.store.test_db import alembic_config


def test_cases_filed_before_0014_get_owners_and_only_admins_cases_are_approved(
    database_url: str,
) -> None:
    db = Database(database_url)
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0013")
    filed = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with db.engine.begin() as connection:
        for user_id, name, role in ((7, "rita", "reporter"), (9, "ada", "admin")):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, role, active, created_at) "
                    "VALUES (:id, :name, 'x', :role, :active, :at)"
                ),
                {"id": user_id, "name": name, "role": role, "active": True, "at": filed},
            )
        for case_id, reporter in (("a" * 32, "user:rita"), ("b" * 32, "user:ada"),
                                  ("c" * 32, "key:phone"), ("d" * 32, "user:gone")):  # fmt: skip
            connection.execute(
                text(
                    "INSERT INTO cases (id, name, description, contact, reporter, status, "
                    "created_at, expires_at) VALUES (:id, 'Someone', '', '', :reporter, "
                    "'active', :at, :expires)"
                ),
                {
                    "id": case_id,
                    "reporter": reporter,
                    "at": filed,
                    "expires": filed + timedelta(days=3),
                },
            )
    db.migrate()
    with db.session() as session:
        cases = {c.reporter: c for c in session.query(AlertCase)}
    assert cases["user:rita"].filed_by == "user:7"
    assert cases["user:rita"].approved_at is None
    assert cases["user:ada"].filed_by == "user:9"
    assert cases["user:ada"].approved_at == filed
    assert cases["user:ada"].approved_by == "user:ada"
    for orphan in ("key:phone", "user:gone"):
        assert cases[orphan].filed_by is None
        assert cases[orphan].approved_at is None
    db.close()
