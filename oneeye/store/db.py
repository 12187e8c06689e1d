"""The database: one SQLAlchemy engine and session factory, migrated to the newest schema.

SQLite (the embedded default) runs in WAL mode with foreign keys on, so the web server and the
camera workers can read while one of them writes; PostgreSQL is chosen by its URL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from oneeye.errors import OneEyeError
from oneeye.store.files import private_sqlite

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseError(OneEyeError):
    """The database cannot be reached, or its schema cannot be brought up to date."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """An engine and a session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        """Connect lazily to ``url`` (a SQLAlchemy URL: ``sqlite:///path``,
        ``postgresql+psycopg://...``). A SQLite file and its folder are created owner-only
        (0600 / 0700; its ``-wal`` and ``-shm`` files follow the file's mode)."""
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise DatabaseError(f"not a database URL: {url!r} ({exc})") from exc
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                private_sqlite(Path(parsed.database))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            # Plain postgresql:// means psycopg 3 here, the driver OneEye installs.
            self.url = parsed.set(drivername="postgresql+psycopg")
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs."""
        return self.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (an empty database gets every table)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except Exception as exc:
            raise DatabaseError(
                f"cannot migrate the database at {self.display_url}: {exc}"
            ) from exc
        logger.info("database %s is at the newest schema", self.display_url)

    def tables(self) -> list[str]:
        """The names of the tables the database holds."""
        return sorted(inspect(self.engine).get_table_names())

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back otherwise."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
