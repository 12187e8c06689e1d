"""``AuthService``: users, sessions, API keys and the audit log, in the database; its parts
by concern are in ``users``, ``sessions``, ``keys`` and ``audit_log``."""

from __future__ import annotations

import secrets
from datetime import timedelta

from oneeye.config import ServerSettings
from oneeye.services.auth.keys import ApiKeys
from oneeye.services.auth.passwords import new_hasher
from oneeye.services.auth.sessions import SEEN_RESOLUTION, SESSION_IDLE_MINUTES, Logins
from oneeye.services.auth.throttle import LoginThrottle
from oneeye.services.auth.users import UserAdmin
from oneeye.store.db import Database


class AuthService(UserAdmin, Logins, ApiKeys):
    """Users, sessions, API keys and the audit log, in the database.

    Every change to a user or an API key writes an audit line in the same transaction; the
    ``actor`` argument names who made it (``user:<name>``, ``key:<name>`` or ``system`` for the
    command line and the first start).
    """

    def __init__(
        self,
        db: Database,
        session_hours: float = 12.0,
        throttle: LoginThrottle | None = None,
        idle_minutes: float = SESSION_IDLE_MINUTES,
    ) -> None:
        """Keep users in ``db``; sessions last ``session_hours`` at most and end after
        ``idle_minutes`` without a request; ``throttle`` counts failed logins (a fresh
        in-memory one by default)."""
        self.db = db
        self.session_lifetime = timedelta(hours=session_hours)
        self.session_idle = timedelta(minutes=idle_minutes)
        # How often a session's last use is written: often enough for the idle timeout to be
        # right within a few percent, rarely enough that a busy dashboard is not a write each.
        self._seen_resolution = min(SEEN_RESOLUTION, self.session_idle / 10)
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self._hasher = new_hasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @classmethod
    def from_settings(cls, db: Database, settings: ServerSettings) -> AuthService:
        """The service with the session and login-throttle limits of ``settings``."""
        throttle = LoginThrottle(
            attempts=settings.login_attempts,
            window=settings.login_window_seconds,
            global_attempts=settings.login_global_attempts,
        )
        return cls(db, settings.session_hours, throttle, settings.session_idle_minutes)
