"""Users, roles, password logins, sessions, API keys and the audit log.

Roles form a ladder: ``viewer`` < ``reporter`` < ``teller`` < ``coordinator`` < ``admin``. A
route names the lowest role it needs; account details (balance, address) and the contact details
of Amber Alert cases need ``teller``. ``coordinator`` runs the Amber Alert cases of the whole
site: it may change, resolve and approve any case (approval is what lets a case's sightings go
to email, SMS and webhook addresses outside). It sits above ``teller`` because approving a case
turns the cameras into a tracker of one face for whoever is subscribed, a heavier trust than
reading the accounts a teller reads; it sits below ``admin`` because it manages no users, keys,
cameras or customers. A ``reporter`` files cases and acts only on its own (see
``oneeye.services.alerts``). One more role sits
outside the ladder: ``edge``, for the API keys of camera hosts (``oneeye edge``). It passes no
ladder check and is let in only by the few routes that name it (the gallery export and
snapshot uploads): an edge holds the embeddings, not admin rights.

Passwords are hashed with argon2id; session tokens and API keys are random and only their
SHA-256 is stored, so a copy of the database logs nobody in. No default credentials exist: the
first start creates an ``admin`` with a random one-time password that is printed once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from oneeye.bus.base import is_slug
from oneeye.config import ServerSettings
from oneeye.errors import Conflict, Forbidden, Invalid, NotFound, OneEyeError
from oneeye.store.db import Database
from oneeye.store.repos import audit, users
from oneeye.store.repos.audit import AuditRecord
from oneeye.store.repos.users import ApiKeyRecord, UserRecord

logger = logging.getLogger(__name__)

Role = Literal["viewer", "reporter", "teller", "coordinator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "reporter", "teller", "coordinator", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
EDGE_ROLE = "edge"
"""The role of an edge's API key: outside the ladder, allowed only where a route names it."""
KEY_ROLES: tuple[str, ...] = (*ROLES, EDGE_ROLE)
"""The roles an API key may have (users log in with the ladder's roles only)."""
MIN_PASSWORD = 10
SESSION_IDLE_MINUTES = 30.0
"""A browser session ends after this long without a request (besides its absolute lifetime)."""
SEEN_RESOLUTION = timedelta(minutes=1)
"""A session's last use is written at most this often (less with a shorter idle timeout)."""
API_KEY_PREFIX = "oek_"
KEY_USE_RESOLUTION = timedelta(minutes=1)
"""An API key's ``last_used_at`` is written at most this often."""
LOGIN_ATTEMPTS = 5
"""Failed logins from one client address within ``LOGIN_WINDOW`` seconds before its logins
pause."""
LOGIN_WINDOW = 300.0
GLOBAL_LOGIN_ATTEMPTS = 100
THROTTLE_LOG_SECONDS = 60.0
"""While an address stays paused, how often at most its refused logins are logged (as one
count): a flood of refusals must not become a flood of log lines."""
"""Failed logins from all addresses together within ``LOGIN_WINDOW`` seconds before every
address that has failed lately pauses too."""
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
"""An edge id: also its broker user name and its topics' level, so a slug."""


class AuthError(OneEyeError):
    """A login, session or key is not valid (the message never says which part was wrong)."""


class ThrottledError(AuthError):
    """Too many failed logins from one client address: its logins pause for ``retry_after``
    seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(
            f"too many failed logins from your address; try again in {self.retry_after} seconds"
        )


class WrongPasswordError(AuthError, Forbidden):
    """The current password given to change it is wrong."""


class UserError(Invalid):
    """A user cannot be created or changed as asked (bad name, weak password, name taken)."""


class UserNotFoundError(UserError, NotFound):
    """No user or API key with that id or name."""


class UserExistsError(UserError, Conflict):
    """The username is taken."""


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
    must_change_password: bool = False
    """A user whose password was a printed one-time one: they may only change it."""
    edge: str | None = None
    """For an ``edge`` key: the edge it is bound to (``None``: an old key bound to none)."""

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"{self.kind}:{self.name}"

    @property
    def ref(self) -> str:
        """Who this is by row id (``user:<id>`` or ``key:<id>``): what owns a case. Names are
        not enough there: two API keys may share a name."""
        return f"{self.kind}:{self.id}"

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


def client_key(address: str) -> str:
    """How the throttle names a client: its IPv4 address, or its IPv6 /64 network (one host
    holds a whole /64, so counting single IPv6 addresses would count nothing). A name that is
    not an address (a test client's) stays as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _PauseLog:
    """What has been logged about one paused address: when its pause was first logged, when
    its refusals were last counted in the log, and how many since."""

    started: float
    reported: float
    unreported: int = 0


class LoginThrottle:
    """Counts failed logins per client address, in memory, and slows the attacker, never the
    account: after ``attempts`` failures within ``window`` seconds from one address (an IPv6
    /64), that address's logins pause until its oldest failure is ``window`` seconds old, while
    the right password from any other address still works.

    Globally bounded too: once ``global_attempts`` failures from all addresses together fall
    within one window (many addresses guessing), every address that has failed lately pauses
    as well, so each gets one guess per window; an address with no recent failure (the real
    user's) is still let through. At most ``max_tracked`` addresses are remembered.

    Refusals are logged once per paused address per window, then as a count at most once every
    ``THROTTLE_LOG_SECONDS`` and when the pause ends; never with the username typed.

    In memory on purpose: one server process is the embedded shape, a restart forgets the
    counts, and several server processes each keep their own (an attacker gets ``attempts``
    tries per address per process per window, still far too few to guess a password).
    """

    def __init__(
        self,
        attempts: int = LOGIN_ATTEMPTS,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 10_000,
        global_attempts: int = GLOBAL_LOGIN_ATTEMPTS,
    ) -> None:
        """Pause an address after ``attempts`` failures within ``window`` seconds, and every
        failing address once ``global_attempts`` failures fall within a window; keep at most
        ``max_tracked`` addresses' failures in memory."""
        self.attempts = attempts
        self.window = window
        self.max_tracked = max_tracked
        self.global_attempts = global_attempts
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._everyone: deque[float] = deque(maxlen=global_attempts)
        self._paused: dict[str, _PauseLog] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def check(self, client: str) -> None:
        """``ThrottledError`` if the address ``client`` has failed too often lately, or has
        failed at all while everyone together has."""
        with self._lock:
            now = self._clock()
            key = client_key(client)
            failures = self._recent(key, now)
            if len(failures) >= self.attempts:
                self._log_refusal(key, now)
                raise ThrottledError(failures[0] + self.window - now)
            everyone = self._everyone
            flooded = len(everyone) == everyone.maxlen and everyone[0] > now - self.window
            if flooded and failures:
                self._log_refusal(key, now)
                # Free again once the flood or this address's own failures age out.
                raise ThrottledError(min(everyone[0], failures[-1]) + self.window - now)
            self._log_pause_end(key)

    def _log_refusal(self, key: str, now: float) -> None:
        """Log a refused login of ``key``: a line when its pause starts (or a window after the
        last such line), otherwise only counted, the count logged at most once a minute."""
        entry = self._paused.get(key)
        if entry is None or now - entry.started >= self.window:
            self._log_pause_end(key)
            logger.warning(
                "logins from client %s are paused after too many failures; further refusals "
                "are counted, logged at most every %d s",
                key,
                THROTTLE_LOG_SECONDS,
            )
            self._paused[key] = _PauseLog(now, now)
            if len(self._paused) > self.max_tracked:
                # A flood of addresses: forget the pause logged longest ago (bounded memory;
                # at worst that address gets one more line).
                del self._paused[next(iter(self._paused))]
            return
        entry.unreported += 1
        if now - entry.reported >= THROTTLE_LOG_SECONDS:
            logger.warning(
                "%d more logins from client %s refused in the last %d s (still paused)",
                entry.unreported,
                key,
                now - entry.reported,
            )
            entry.reported = now
            entry.unreported = 0

    def _log_pause_end(self, key: str) -> None:
        """Forget ``key``'s pause, logging the refusals not yet counted in the log."""
        entry = self._paused.pop(key, None)
        if entry is not None and entry.unreported:
            logger.warning(
                "%d more logins from client %s were refused before its pause ended",
                entry.unreported,
                key,
            )

    def failed(self, client: str) -> None:
        """Count one failed login from the address ``client``."""
        with self._lock:
            key = client_key(client)
            now = self._clock()
            failures = self._recent(key, now)
            failures.append(now)
            self._everyone.append(now)
            self._failures.pop(key, None)
            self._failures[key] = failures  # newest failure last: a flood drops the oldest
            if len(self._failures) > self.max_tracked:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget failures older than the window; if a flood of addresses is still too many,
        forget the addresses that failed longest ago (memory stays bounded)."""
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) > self.max_tracked:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        """Forget the address ``client``'s failures (it knew a password)."""
        with self._lock:
            key = client_key(client)
            self._failures.pop(key, None)
            self._log_pause_end(key)


class AuthService:
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
        self._hasher = PasswordHasher()
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

    # users ---------------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        actor: str = "system",
        must_change_password: bool = False,
    ) -> UserRecord:
        """Add a user; ``UserError`` for a bad name, a weak password or a bad role,
        ``UserExistsError`` for a taken name. ``must_change_password``: the user may do
        nothing but change this password at their first login."""
        if not _USERNAME.match(username):
            raise UserError(
                "a username is 2-64 letters, digits or . _ @ -, starting with a letter or digit"
            )
        check_role(role)
        check_password(password)
        with self.db.session() as session:
            if users.named(session, username) is not None:
                raise UserExistsError(f"user {username!r} already exists")
            user = users.add(
                session,
                username,
                self._hasher.hash(password),
                role,
                must_change_password=must_change_password,
            )
            audit.add(session, actor, "user.create", username, {"role": role})
            return user

    def ensure_admin(self) -> str | None:
        """Create the first ``admin`` with a random password if there is no admin yet.

        Returns ``"name:password"`` (the one-time password, to print once), or ``None`` if an
        admin exists. There is never a default password, and the printed one works once: the
        admin must change it at the first login before doing anything else.
        """
        with self.db.session() as session:
            if users.admins(session):
                return None
            name = "admin"
            if users.named(session, name) is not None:
                name = f"admin-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(15)
        self.create_user(name, password, "admin", actor="system", must_change_password=True)
        self.audit("system", "user.first_admin", name)
        return f"{name}:{password}"

    def user(self, user_id: int) -> UserRecord:
        """The user with this id; ``UserNotFoundError`` otherwise."""
        with self.db.session() as session:
            user = users.get(session, user_id)
        if user is None:
            raise UserNotFoundError(f"no user with id {user_id}")
        return user

    def user_named(self, username: str) -> UserRecord:
        """The user with this name; ``UserNotFoundError`` otherwise."""
        with self.db.session() as session:
            user = users.named(session, username)
        if user is None:
            raise UserNotFoundError(f"no user {username!r}")
        return user

    def set_password(self, username: str, password: str, *, actor: str = "system") -> None:
        """Give ``username`` a new password and end all their sessions."""
        self.update_user(self.user_named(username).id, password=password, actor=actor)

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self.db.session() as session:
            return users.every(session)

    def update_user(
        self,
        user_id: int,
        *,
        role: str | None = None,
        active: bool | None = None,
        password: str | None = None,
        actor: str = "system",
    ) -> UserRecord:
        """Change a user's role, active flag or password.

        Deactivating or a new password ends the user's sessions. The last active admin cannot
        be demoted or deactivated (``UserError``).
        """
        if role is not None:
            check_role(role)
        if password is not None:
            check_password(password)
        with self.db.session() as session:
            before = users.get(session, user_id)
            if before is None:
                raise UserNotFoundError(f"no user with id {user_id}")
            demoting = (role is not None and role != "admin") or active is False
            active_admin = before.role == "admin" and before.active
            if active_admin and demoting and users.admins(session, active_only=True) <= 1:
                raise UserError("the last active admin cannot be demoted or deactivated")
            changes: dict[str, Any] = {}
            if role is not None and role != before.role:
                changes["role"] = [before.role, role]
            if active is not None and active != before.active:
                changes["active"] = [before.active, active]
            if password is not None:
                changes["password"] = "reset"
            user = users.update(
                session,
                user_id,
                role=role,
                active=active,
                password_hash=None if password is None else self._hasher.hash(password),
            )
            assert user is not None  # read above, in this transaction
            if user.active is False or password is not None:
                users.end_sessions(session, user.id)
            if changes:
                audit.add(session, actor, "user.update", user.username, changes)
            return user

    def delete_user(self, user_id: int, *, actor: str = "system") -> None:
        """Remove a user (not the last active admin) and their sessions."""
        user = self.update_user(user_id, active=False, actor=actor)
        with self.db.session() as session:
            users.delete_user(session, user_id)
            audit.add(session, actor, "user.delete", user.username, {"role": user.role})

    # logins and sessions -----------------------------------------------------------------------

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
                token_hash=_digest(token),
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
            row = users.login_session(session, _digest(token))
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
                users.end_sessions(session, user.id, keep=_digest(token))
                audit.add(session, principal.actor, "user.password_change", user.username)
        if wrong:
            self.throttle.failed(client)
            self.audit(principal.actor, "user.password_change_failed", principal.name)
            raise WrongPasswordError("the current password is not right")

    def logout(self, token: str) -> None:
        """End the session of this cookie (nothing happens for an unknown one)."""
        with self.db.session() as session:
            row = users.login_session(session, _digest(token))
            if row is None:
                return
            user = users.get(session, row.user_id)
            users.delete_session(session, row.token_hash)
            if user is not None:
                audit.add(session, f"user:{user.username}", "logout", user.username)

    # API keys ------------------------------------------------------------------------------

    def create_api_key(
        self, name: str, role: str, *, edge_id: str | None = None, actor: str = "system"
    ) -> tuple[ApiKeyRecord, str]:
        """A new API key; returns its row and the key itself (shown once, never stored).

        ``role`` is one of the ladder's roles or ``edge`` (a camera host's key), which must
        name the ``edge_id`` it is: the edge registers cameras and uploads snapshots as that
        edge only (its broker user has the same name)."""
        if role != EDGE_ROLE:
            check_role(role)
            if edge_id is not None:
                raise UserError("only an edge key names an edge id")
        elif edge_id is None or not is_slug(edge_id):
            raise UserError(
                "an edge key needs the edge's id: 1-64 lower-case letters, digits, - or _ "
                f"(its broker user has the same name), got {edge_id!r}"
            )
        name = name.strip()
        if not name or len(name) > 100:
            raise UserError("an API key needs a name of 1-100 characters")
        prefix = secrets.token_hex(4)
        key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        with self.db.session() as session:
            row = users.add_key(
                session, name=name, prefix=prefix, key_hash=_digest(key), role=role, edge_id=edge_id
            )
            detail = {"role": role} if edge_id is None else {"role": role, "edge": edge_id}
            audit.add(session, actor, "api_key.create", f"{row.id}:{name}", detail)
        return row, key

    def api_keys(self) -> list[ApiKeyRecord]:
        """Every API key (without the keys themselves)."""
        with self.db.session() as session:
            return users.keys(session)

    def revoke_api_key(self, key_id: int, *, actor: str = "system") -> ApiKeyRecord:
        """Stop a key from working; ``UserNotFoundError`` for an unknown id."""
        with self.db.session() as session:
            revoked = users.revoke_key(session, key_id)
            if revoked is None:
                raise UserNotFoundError(f"no API key with id {key_id}")
            row, was_live = revoked
            if was_live:
                audit.add(session, actor, "api_key.revoke", f"{row.id}:{row.name}")
            return row

    def key_principal(self, key: str) -> Principal:
        """The principal of an API key; ``AuthError`` if unknown or revoked."""
        with self.db.session() as session:
            row = users.key_by_hash(session, _digest(key))
            if row is None or row.revoked or not hmac.compare_digest(row.key_hash, _digest(key)):
                raise AuthError("this API key is not valid")
            now = datetime.now(UTC)
            # One write a minute per key is enough to say when it was last used; a write per
            # request would make every edge call a database commit.
            if row.last_used_at is None or now - row.last_used_at > KEY_USE_RESOLUTION:
                users.touch_key(session, row.id, now)
            return Principal("key", row.id, row.name, row.role, edge=row.edge_id)

    # audit ---------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        subject: str = "",
        detail: dict[str, Any] | None = None,
        *,
        role: str = "",
        address: str = "",
    ) -> None:
        """Write one line to the audit log and commit it before returning.

        Blocking database work: call it from a worker thread (a sync route), never on the
        event loop. ``subject`` and ``detail`` name records by id, never by name.
        """
        with self.db.session() as session:
            audit.add(session, actor, action, subject, detail, role=role, address=address)

    def audit_entries(
        self,
        limit: int = 100,
        action: str | None = None,
        *,
        actor: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
    ) -> list[AuditRecord]:
        """The newest ``limit`` audit entries that match every filter given, newest first.

        Args:
            limit: at most this many entries.
            action: only this action; one ending in ``.`` or ``*`` matches every action
                starting with it (``user.`` for every user change).
            actor: ``user:<name>`` or ``key:<name>`` exactly, or a bare name for either.
            subject: entries about this id: their subject is it, or their detail names it
                (a face search lists the people it showed there).
            since: entries at or after this time.
            until: entries before this time.
            before: entries with an id below this one (the next page after an entry).

        Returns:
            The entries, newest first.
        """
        names = []
        if actor:
            names = [actor] if ":" in actor else [f"user:{actor}", f"key:{actor}", actor]
        with self.db.session() as session:
            return audit.search(
                session,
                limit=limit,
                action=action,
                actors=names,
                subject=subject,
                since=since,
                until=until,
                before=before,
            )
