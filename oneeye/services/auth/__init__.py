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

The package splits the work by concern: ``roles`` (the ladder and ``Principal``), ``errors``,
``passwords`` (password rules, argon2id and the SHA-256 of tokens), ``throttle``
(``LoginThrottle``), and ``AuthService`` (``service``) made of its parts ``users``,
``sessions`` (logins and browser sessions), ``keys`` (API keys) and ``audit_log``. Every name
callers use is importable from ``oneeye.services.auth`` itself.
"""

from __future__ import annotations

from oneeye.services.auth.errors import (
    AuthError,
    ThrottledError,
    UserError,
    UserExistsError,
    UserNotFoundError,
    WrongPasswordError,
)
from oneeye.services.auth.keys import API_KEY_PREFIX, KEY_USE_RESOLUTION
from oneeye.services.auth.passwords import MIN_PASSWORD, check_password
from oneeye.services.auth.roles import (
    EDGE_ROLE,
    KEY_ROLES,
    METRICS_ROLE,
    ROLE_RANK,
    ROLES,
    Principal,
    Role,
    check_role,
    role_allows,
)
from oneeye.services.auth.service import AuthService
from oneeye.services.auth.sessions import SEEN_RESOLUTION, SESSION_IDLE_MINUTES, NewSession
from oneeye.services.auth.throttle import (
    GLOBAL_LOGIN_ATTEMPTS,
    LOGIN_ATTEMPTS,
    LOGIN_WINDOW,
    THROTTLE_LOG_SECONDS,
    LoginThrottle,
    client_key,
)

__all__ = [
    "API_KEY_PREFIX",
    "EDGE_ROLE",
    "GLOBAL_LOGIN_ATTEMPTS",
    "KEY_ROLES",
    "KEY_USE_RESOLUTION",
    "LOGIN_ATTEMPTS",
    "LOGIN_WINDOW",
    "METRICS_ROLE",
    "MIN_PASSWORD",
    "ROLES",
    "ROLE_RANK",
    "SEEN_RESOLUTION",
    "SESSION_IDLE_MINUTES",
    "THROTTLE_LOG_SECONDS",
    "AuthError",
    "AuthService",
    "LoginThrottle",
    "NewSession",
    "Principal",
    "Role",
    "ThrottledError",
    "UserError",
    "UserExistsError",
    "UserNotFoundError",
    "WrongPasswordError",
    "check_password",
    "check_role",
    "client_key",
    "role_allows",
]
