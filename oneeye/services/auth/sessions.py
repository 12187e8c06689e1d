"""Password logins and browser sessions as ``AuthService`` keeps them (``Logins``, a part of
it): check a password (throttled per client address), open, check, touch and end sessions,
change one's own password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from oneeye.services.auth.audit_log import AuditLog
from oneeye.services.auth.errors import AuthError, UserError, WrongPasswordError
from oneeye.services.auth.passwords import check_password, digest
from oneeye.services.auth.roles import Principal
from oneeye.services.auth.throttle import LoginThrottle
from oneeye.store.repos import audit, users

SESSION_IDLE_MINUTES = 30.0
"""A browser session ends after this long without a request (besides its absolute lifetime)."""
SEEN_RESOLUTION = timedelta(minutes=1)
"""A session's last use is written at most this often (less with a shorter idle timeout)."""


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: the cookie's token (shown once) and its CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime
    principal: Principal


class Logins(AuditLog):
    """The logins and sessions part of ``AuthService``."""

    _hasher: PasswordHasher
    _dummy_hash: str
    """A hash of a random password: verified against when the username is unknown, so the
    time taken does not tell a wrong name from a wrong password."""
    _seen_resolution: timedelta
    throttle: LoginThrottle
    session_lifetime: timedelta
    session_idle: timedelta

    def verify_password(self, username: str, password: str) -> Principal:
        """The user whose name and password these are; ``AuthError`` otherwise (timing does
        not tell a wrong name from a wrong password)."""
        with self.db.session() as session:
            user = users.named(session, username)
            stored = user.password_hash if user is not None else self._dummy_hash
            try:
                self._hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                raise AuthError("wrong username or password") from None
            if user is None or not user.active:
                raise AuthError("wrong username or password")
            if self._hasher.check_needs_rehash(stored):
                users.update(session, user.id, password_hash=self._hasher.hash(password))
            return Principal(
                "user",
                user.id,
                user.username,
                user.role,
                must_change_password=user.must_change_password,
            )

    def login(self, username: str, password: str, *, client: str = "unknown") -> NewSession:
        """Check a password and open a session for a browser.

        ``client`` is the address the login comes from. ``ThrottledError`` (before the
        password is even checked) when that address is paused (see ``LoginThrottle``: the
        account itself is never locked); ``AuthError`` for a wrong name or password, which
        counts as one failure of that address.
        """
        self.throttle.check(client)
        try:
            principal = self.verify_password(username, password)
        except AuthError:
            self.throttle.failed(client)
            # The role of the account tried (if it exists): guesses at an admin stand out.
            with self.db.session() as session:
                found = users.named(session, username)
                tried = None if found is None else found.role
            self.audit(
                f"user:{username[:64]}",
                "login.failed",
                username[:64],
                role=tried or "",
                address=client,
            )
            raise
        self.throttle.succeeded(client)
        new = self._open_session(principal)
        self.audit(principal.actor, "login", principal.name, role=principal.role, address=client)
        return new

    def _open_session(self, principal: Principal) -> NewSession:
        """A new session for ``principal`` (ended sessions of anyone are swept meanwhile)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        expires = now + self.session_lifetime
        with self.db.session() as session:
            users.sweep_sessions(session, now, self.session_idle)
            users.add_session(
                session,
                token_hash=digest(token),
                user_id=principal.id,
                csrf_token=csrf,
                expires_at=expires,
                last_seen_at=now,
            )
        return NewSession(
            token,
            csrf,
            expires,
            Principal(
                "user",
                principal.id,
                principal.name,
                principal.role,
                csrf,
                must_change_password=principal.must_change_password,
            ),
        )

    def session_principal(self, token: str, *, touch: bool = True) -> Principal:
        """The user a session cookie belongs to; ``AuthError`` if unknown, past its lifetime,
        or idle longer than the idle timeout (an idle session is deleted).

        ``touch``: this use counts as activity (a request); the WebSocket's periodic re-check
        passes ``False``, so an unattended dashboard still ends after the idle timeout.
        """
        principal: Principal | None = None
        with self.db.session() as session:
            row = users.login_session(session, digest(token))
            now = datetime.now(UTC)
            if row is None or row.expires_at < now:
                raise AuthError("your session has ended; log in again")
            last = row.last_seen_at or row.created_at
            if now - last > self.session_idle:
                # committed as the block ends, then refused below
                users.delete_session(session, row.token_hash)
            else:
                user = users.get(session, row.user_id)
                if user is None or not user.active:
                    raise AuthError("your session has ended; log in again")
                if touch and now - last > self._seen_resolution:
                    users.touch_session(session, row.token_hash, now)
                principal = Principal(
                    "user",
                    user.id,
                    user.username,
                    user.role,
                    row.csrf_token,
                    must_change_password=user.must_change_password,
                )
        if principal is None:
            raise AuthError("your session ended after a while without use; log in again")
        return principal

    def change_password(
        self, principal: Principal, current: str, new: str, *, token: str, client: str = "unknown"
    ) -> None:
        """A user changes their own password: ``current`` must be right (a wrong one counts
        as a failed login of ``client``, so a stolen session cannot guess it), ``new`` strong
        enough and different. Every other session of the user ends; the one of ``token``
        (this browser) stays. Clears ``must_change_password``.

        Raises:
            ThrottledError: ``client`` has failed too often lately.
            AuthError: ``current`` is wrong, or the principal is not a user.
            UserError: ``new`` is too weak or the same as ``current``.
        """
        if principal.kind != "user":
            raise AuthError("an API key has no password to change")
        self.throttle.check(client)
        check_password(new)
        if new == current:
            raise UserError("choose a new password that differs from the current one")
        with self.db.session() as session:
            user = users.get(session, principal.id)
            if user is None or not user.active:
                raise AuthError("your session has ended; log in again")
            try:
                self._hasher.verify(user.password_hash, current)
            except (VerificationError, InvalidHashError):
                wrong = True
            else:
                wrong = False
            if not wrong:
                users.update(
                    session,
                    user.id,
                    password_hash=self._hasher.hash(new),
                    must_change_password=False,
                )
                users.end_sessions(session, user.id, keep=digest(token))
                audit.add(session, principal.actor, "user.password_change", user.username)
        if wrong:
            self.throttle.failed(client)
            self.audit(principal.actor, "user.password_change_failed", principal.name)
            raise WrongPasswordError("the current password is not right")

    def logout(self, token: str) -> None:
        """End the session of this cookie (nothing happens for an unknown one)."""
        with self.db.session() as session:
            row = users.login_session(session, digest(token))
            if row is None:
                return
            user = users.get(session, row.user_id)
            users.delete_session(session, row.token_hash)
            if user is not None:
                audit.add(session, f"user:{user.username}", "logout", user.username)
