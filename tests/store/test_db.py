"""The database: migrations from empty on SQLite and PostgreSQL."""

from __future__ import annotations

from oneeye.store.db import Database

TABLES = {
    "api_keys",
    "case_matches",
    "cases",
    "notifications",
    "subscriptions",
    "audit_log",
    "cameras",
    "customer_accounts",
    "dashboard_events",
    "login_sessions",
    "person_watchlists",
    "persons",
    "sightings",
    "templates",
    "users",
    "watchlists",
}


def test_migrations_from_empty_create_every_table_and_run_twice(database_url: str) -> None:
    db = Database(database_url)
    assert db.tables() == []
    db.migrate()
    assert set(db.tables()) == TABLES | {"alembic_version"}
    db.migrate()
    db.close()
