"""Secrets every central server shares through the database (``server_keys``), by name.

The rows hold raw bytes (e.g. the gallery's Ed25519 private key); what a secret is for and
how it is made is the caller's business.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from oneeye.store.models import ServerKey


def get(session: Session, name: str) -> bytes | None:
    """The secret stored under ``name``, or ``None`` when there is none yet."""
    row = session.get(ServerKey, name)
    return None if row is None else bytes(row.secret)


def add(session: Session, name: str, secret: bytes) -> None:
    """Store ``secret`` under ``name``; when another server stored one under that name first,
    the transaction fails with ``IntegrityError`` as it commits (the stored one stands)."""
    session.add(ServerKey(name=name, secret=secret))
