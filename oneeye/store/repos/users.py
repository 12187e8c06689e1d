"""Who may sign in: users, their browser sessions, and API keys.

Functions take the caller's ``Session`` (a change and its audit line share one transaction)
and return ``UserRecord``, ``SessionRecord`` and ``ApiKeyRecord`` values, never rows. Only
hashes of passwords, session tokens and keys are stored, and only hashes come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from oneeye.store.models import ApiKey, LoginSession, User


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A person who logs in to the dashboard."""

    id: int
    username: str
    role: str
    active: bool
    created_at: datetime
    must_change_password: bool
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A logged-in browser, by the hash of its cookie's token."""

    token_hash: str
    user_id: int
    csrf_token: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A machine's key, by its hash."""

    id: int
    name: str
    prefix: str
    role: str
    edge_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool
    key_hash: str = field(repr=False)


def _user(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        role=row.role,
        active=row.active,
        created_at=row.created_at,
        must_change_password=row.must_change_password,
        password_hash=row.password_hash,
    )


def _session(row: LoginSession) -> SessionRecord:
    return SessionRecord(
        token_hash=row.token_hash,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
    )


def _key(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=row.role,
        edge_id=row.edge_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked=row.revoked,
        key_hash=row.key_hash,
    )


# users ----------------------------------------------------------------------------------------


def get(session: Session, user_id: int) -> UserRecord | None:
    """The user with this id, or ``None``."""
    row = session.get(User, user_id)
    return None if row is None else _user(row)


def named(session: Session, username: str) -> UserRecord | None:
    """The user with this name, or ``None``."""
    row = session.scalar(select(User).where(User.username == username))
    return None if row is None else _user(row)


def every(session: Session) -> list[UserRecord]:
    """Every user, by name."""
    return [_user(row) for row in session.scalars(select(User).order_by(User.username))]


def admins(session: Session, *, active_only: bool = False) -> int:
    """How many users are admins (only active ones, with ``active_only``)."""
    query = select(func.count()).select_from(User).where(User.role == "admin")
    if active_only:
        query = query.where(User.active.is_(True))
    return int(session.scalar(query) or 0)


def add(
    session: Session, username: str, password_hash: str, role: str, *, must_change_password: bool
) -> UserRecord:
    """Add a user (the name must be free); flushed, so it has its id."""
    row = User(
        username=username,
        password_hash=password_hash,
        role=role,
        must_change_password=must_change_password,
    )
    session.add(row)
    session.flush()
    return _user(row)


def update(
    session: Session,
    user_id: int,
    *,
    role: str | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
    must_change_password: bool | None = None,
) -> UserRecord | None:
    """Set the fields given; returns the user as changed, or ``None`` if there is none."""
    row = session.get(User, user_id)
    if row is None:
        return None
    if role is not None:
        row.role = role
    if active is not None:
        row.active = active
    if password_hash is not None:
        row.password_hash = password_hash
    if must_change_password is not None:
        row.must_change_password = must_change_password
    return _user(row)


def delete_user(session: Session, user_id: int) -> None:
    """Delete a user and their sessions."""
    end_sessions(session, user_id)
    session.execute(delete(User).where(User.id == user_id))


# sessions -------------------------------------------------------------------------------------


def add_session(
    session: Session,
    *,
    token_hash: str,
    user_id: int,
    csrf_token: str,
    expires_at: datetime,
    last_seen_at: datetime,
) -> None:
    """Store a new login session."""
    session.add(
        LoginSession(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            expires_at=expires_at,
            last_seen_at=last_seen_at,
        )
    )


def login_session(session: Session, token_hash: str) -> SessionRecord | None:
    """The session of this token hash, or ``None``."""
    row = session.get(LoginSession, token_hash)
    return None if row is None else _session(row)


def touch_session(session: Session, token_hash: str, at: datetime) -> None:
    """Record that the session was used at ``at``."""
    row = session.get(LoginSession, token_hash)
    if row is not None:
        row.last_seen_at = at


def delete_session(session: Session, token_hash: str) -> None:
    """End one session (nothing happens for an unknown one)."""
    row = session.get(LoginSession, token_hash)
    if row is not None:
        session.delete(row)


def end_sessions(session: Session, user_id: int, *, keep: str | None = None) -> None:
    """End every session of a user, but the one whose token hash is ``keep``."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None:
        query = query.where(LoginSession.token_hash != keep)
    session.execute(query)


def sweep_sessions(session: Session, now: datetime, idle: timedelta) -> None:
    """Delete every session past its lifetime or idle longer than ``idle``."""
    session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    session.execute(delete(LoginSession).where(LoginSession.last_seen_at < now - idle))


# API keys -------------------------------------------------------------------------------------


def add_key(
    session: Session, *, name: str, prefix: str, key_hash: str, role: str, edge_id: str | None
) -> ApiKeyRecord:
    """Store a new API key; flushed, so it has its id."""
    row = ApiKey(name=name, prefix=prefix, key_hash=key_hash, role=role, edge_id=edge_id)
    session.add(row)
    session.flush()
    return _key(row)


def keys(session: Session) -> list[ApiKeyRecord]:
    """Every API key, oldest first."""
    return [_key(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(session: Session, key_id: int) -> tuple[ApiKeyRecord, bool] | None:
    """Revoke a key; returns it and whether it was live until now, or ``None`` if there is
    no such key."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return None
    was_live = not row.revoked
    row.revoked = True
    return _key(row), was_live


def key_by_hash(session: Session, key_hash: str) -> ApiKeyRecord | None:
    """The key with this hash, or ``None``."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
    return None if row is None else _key(row)


def touch_key(session: Session, key_id: int, at: datetime) -> None:
    """Record that the key was used at ``at``."""
    row = session.get(ApiKey, key_id)
    if row is not None:
        row.last_used_at = at
