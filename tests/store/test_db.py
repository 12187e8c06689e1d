"""The database on SQLite and PostgreSQL: migrations from empty (and back down), the migrated
schema equal to the models, timezone-aware times, SQLite's pragmas, sessions that roll back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from oneeye.store.db import MIGRATIONS, Database, DatabaseError
from oneeye.store.models import AuditEntry, Base, User

DOMAIN_TABLES = {
    "api_keys",
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
"""The issue's domain: person, template, watchlist, camera, sighting, user, API key, audit log,
customer account (and the tables that serve them). Later features add tables of their own."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_migrations_from_empty_create_every_table_and_run_twice(database_url: str) -> None:
    db = Database(database_url)
    assert db.tables() == []
    db.migrate()
    tables = set(db.tables())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert tables >= DOMAIN_TABLES
    db.migrate()
    db.close()


def test_the_migrated_schema_is_the_models_schema(db: Database) -> None:
    """A column or index added to a model without a migration shows up here."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_every_migration_goes_down_to_empty_and_up_again(db: Database) -> None:
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(db.tables()) <= {"alembic_version"}
    db.migrate()
    assert set(db.tables()) == set(Base.metadata.tables) | {"alembic_version"}


def add_naive_time(db: Database) -> None:
    with db.session() as session:
        session.add(AuditEntry(actor="system", action="test", at=datetime(2026, 3, 1)))


def test_times_come_back_timezone_aware_utc_and_naive_ones_are_refused(db: Database) -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2026, 3, 1, 9, 30, 15, 123000, tzinfo=eastern)
    with db.session() as session:
        session.add(AuditEntry(actor="system", action="test", at=moment))
    with db.session() as session:
        stored = session.scalars(select(AuditEntry.at)).one()
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == moment
    assert stored.hour == 14
    with pytest.raises(StatementError, match="naive datetimes are not stored"):
        add_naive_time(db)
    with db.session() as session:
        assert len(session.scalars(select(AuditEntry)).all()) == 1


def add_then_fail(db: Database) -> None:
    with db.session() as session:
        session.add(User(username="ghost", password_hash="x", role="viewer"))
        session.flush()
        raise RuntimeError("changed my mind")


def test_a_session_rolls_back_when_its_block_fails(db: Database) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"):
        add_then_fail(db)
    with db.session() as session:
        assert session.scalars(select(User)).all() == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("sqlite") / "nested" / "deeper"
    db = Database(f"sqlite:///{folder / 'oneeye.db'}")
    db.migrate()
    assert db.is_sqlite
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.close()


def test_urls_are_checked_and_passwords_kept_out_of_logs() -> None:
    with pytest.raises(DatabaseError, match="not a database URL"):
        Database("definitely not a url")
    db = Database("postgresql://oneeye:s3cret@db.example:5432/oneeye")
    assert db.url.drivername == "postgresql+psycopg"
    assert "s3cret" not in db.display_url
    assert "db.example" in db.display_url
    db.close()


def test_an_unreachable_database_is_a_clear_error() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseError, match="cannot migrate the database at"):
        db.migrate()
    db.close()


def test_times_default_to_now(db: Database) -> None:
    before = datetime.now(UTC)
    with db.session() as session:
        session.add(User(username="alice", password_hash="x", role="viewer"))
    with db.session() as session:
        created = session.scalars(select(User.created_at)).one()
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC) + timedelta(seconds=1)
