"""Users, roles, password logins, sessions, API keys and the audit log.

Roles form a ladder: ``viewer`` < ``reporter`` < ``teller`` < ``admin``. A route names the
lowest role it needs; account details (balance, address) need ``teller``. Passwords are hashed
with argon2id; session tokens and API keys are random and only their SHA-256 is stored, so a
copy of the database logs nobody in. No default credentials exist: the first start creates an
``admin`` with a random one-time password that is printed once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update

from oneeye.errors import OneEyeError
from oneeye.store.db import Database
from oneeye.store.models import ApiKey, AuditEntry, LoginSession, User, utcnow

logger = logging.getLogger(__name__)

Role = Literal["viewer", "reporter", "teller", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "reporter", "teller", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
MIN_PASSWORD = 10
API_KEY_PREFIX = "oek_"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


class AuthError(OneEyeError):
    """A login, session or key is not valid (the message never says which part was wrong)."""


class UserError(OneEyeError):
    """A user cannot be created or changed as asked (bad name, weak password, name taken)."""


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` is ``needed`` or above it on the ladder."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a logged-in user or an API key."""

    kind: Literal["user", "key"]
    id: int
    name: str
    role: str
    csrf_token: str | None = None
    """For a browser session: the token its forms and scripts must send back."""

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"{self.kind}:{self.name}"

    def allows(self, needed: str) -> bool:
        """Whether this principal's role is ``needed`` or above."""
        return role_allows(self.role, needed)


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: the cookie's token (shown once) and its CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime
    principal: Principal


def check_role(role: str) -> Role:
    """``role`` if it is one of ``ROLES``, else a ``UserError`` listing them."""
    if role not in ROLE_RANK:
        raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def check_password(password: str) -> str:
    """``password`` if it is strong enough, else a ``UserError`` saying why."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


class AuthService:
    """Users, sessions, API keys and the audit log, in the database."""

    def __init__(self, db: Database, session_hours: float = 12.0) -> None:
        self.db = db
        self.session_lifetime = timedelta(hours=session_hours)
        self._hasher = PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # users ---------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str) -> User:
        """Add a user; ``UserError`` for a bad or taken name, a weak password, a bad role."""
        if not _USERNAME.match(username):
            raise UserError(
                "a username is 2-64 letters, digits or . _ @ -, starting with a letter or digit"
            )
        check_role(role)
        check_password(password)
        with self.db.session() as session:
            if session.scalar(select(User).where(User.username == username)) is not None:
                raise UserError(f"user {username!r} already exists")
            user = User(username=username, password_hash=self._hasher.hash(password), role=role)
            session.add(user)
            session.flush()
            return user

    def ensure_admin(self) -> str | None:
        """Create the first ``admin`` with a random password if there is no admin yet.

        Returns the one-time password (to print once), or ``None`` if an admin exists.
        """
        with self.db.session() as session:
            admins = session.scalar(
                select(func.count()).select_from(User).where(User.role == "admin")
            )
            if admins:
                return None
            name = "admin"
            if session.scalar(select(User).where(User.username == name)) is not None:
                name = f"admin-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(15)
        self.create_user(name, password, "admin")
        self.audit("system", "user.create", name, {"role": "admin", "first_start": True})
        return f"{name}:{password}"

    def set_password(self, username: str, password: str) -> None:
        """Give ``username`` a new password and end all their sessions."""
        check_password(password)
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise UserError(f"no user {username!r}")
            user.password_hash = self._hasher.hash(password)
            session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))

    def users(self) -> list[User]:
        """Every user, by name."""
        with self.db.session() as session:
            return list(session.scalars(select(User).order_by(User.username)))

    def update_user(
        self, user_id: int, *, role: str | None = None, active: bool | None = None
    ) -> User:
        """Change a user's role or active flag; deactivating ends their sessions. The last
        active admin cannot be demoted or deactivated."""
        with self.db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise UserError(f"no user with id {user_id}")
            demoting = (role is not None and role != "admin") or active is False
            if user.role == "admin" and user.active and demoting:
                admins = session.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.role == "admin", User.active.is_(True))
                )
                if (admins or 0) <= 1:
                    raise UserError("the last active admin cannot be demoted or deactivated")
            if role is not None:
                user.role = check_role(role)
            if active is not None:
                user.active = active
                if not active:
                    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
            return user

    def delete_user(self, user_id: int) -> None:
        """Remove a user (not the last active admin)."""
        self.update_user(user_id, active=False)
        with self.db.session() as session:
            session.execute(delete(User).where(User.id == user_id))

    # logins and sessions -----------------------------------------------------------------------

    def verify_password(self, username: str, password: str) -> Principal:
        """The user whose name and password these are; ``AuthError`` otherwise (timing does
        not tell a wrong name from a wrong password)."""
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            stored = user.password_hash if user is not None else self._dummy_hash
            try:
                self._hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                raise AuthError("wrong username or password") from None
            if user is None or not user.active:
                raise AuthError("wrong username or password")
            if self._hasher.check_needs_rehash(stored):
                user.password_hash = self._hasher.hash(password)
            return Principal("user", user.id, user.username, user.role)

    def login(self, username: str, password: str) -> NewSession:
        """Check a password and open a session for a browser."""
        principal = self.verify_password(username, password)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = utcnow() + self.session_lifetime
        with self.db.session() as session:
            session.add(
                LoginSession(
                    token_hash=_digest(token),
                    user_id=principal.id,
                    csrf_token=csrf,
                    expires_at=expires,
                )
            )
            session.execute(delete(LoginSession).where(LoginSession.expires_at < utcnow()))
        self.audit(principal.actor, "login", principal.name)
        return NewSession(
            token,
            csrf,
            expires,
            Principal("user", principal.id, principal.name, principal.role, csrf),
        )

    def session_principal(self, token: str) -> Principal:
        """The user a session cookie belongs to; ``AuthError`` if unknown or expired."""
        with self.db.session() as session:
            row = session.get(LoginSession, _digest(token))
            if row is None or row.expires_at < utcnow():
                raise AuthError("your session has ended; log in again")
            user = session.get(User, row.user_id)
            if user is None or not user.active:
                raise AuthError("your session has ended; log in again")
            return Principal("user", user.id, user.username, user.role, row.csrf_token)

    def logout(self, token: str) -> None:
        """End the session of this cookie."""
        with self.db.session() as session:
            session.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(token)))

    # API keys ------------------------------------------------------------------------------

    def create_api_key(self, name: str, role: str) -> tuple[ApiKey, str]:
        """A new API key; returns its row and the key itself (shown once, never stored)."""
        check_role(role)
        if not name.strip():
            raise UserError("an API key needs a name")
        prefix = secrets.token_hex(4)
        key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        with self.db.session() as session:
            row = ApiKey(name=name.strip(), prefix=prefix, key_hash=_digest(key), role=role)
            session.add(row)
            session.flush()
        return row, key

    def api_keys(self) -> list[ApiKey]:
        """Every API key (without the keys themselves)."""
        with self.db.session() as session:
            return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))

    def revoke_api_key(self, key_id: int) -> None:
        """Stop a key from working."""
        with self.db.session() as session:
            result = session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked=True))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise UserError(f"no API key with id {key_id}")

    def key_principal(self, key: str) -> Principal:
        """The principal of an API key; ``AuthError`` if unknown or revoked."""
        with self.db.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
            if row is None or row.revoked or not hmac.compare_digest(row.key_hash, _digest(key)):
                raise AuthError("this API key is not valid")
            row.last_used_at = utcnow()
            return Principal("key", row.id, row.name, row.role)

    # audit ---------------------------------------------------------------------------------

    def audit(
        self, actor: str, action: str, subject: str = "", detail: dict[str, Any] | None = None
    ) -> None:
        """Write one line to the audit log."""
        with self.db.session() as session:
            session.add(
                AuditEntry(actor=actor, action=action, subject=subject, detail=detail or {})
            )

    def audit_entries(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        """The newest audit entries, newest first."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        with self.db.session() as session:
            return list(session.scalars(query))
