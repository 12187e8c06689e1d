"""Password rules and the hashing of secrets.

Passwords are hashed with argon2id (``new_hasher``); session tokens and API keys are random and
only their SHA-256 (``digest``) is stored, so a copy of the database logs nobody in.
"""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher

from oneeye.services.auth.errors import UserError

MIN_PASSWORD = 10


def check_password(password: str) -> str:
    """``password`` if it is strong enough, else a ``UserError`` saying why."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def digest(secret: str) -> str:
    """The SHA-256 of a session token or API key: what the database keeps of it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_hasher() -> PasswordHasher:
    """The argon2id hasher of user passwords (the library's current parameters)."""
    return PasswordHasher()
