"""User administration as ``AuthService`` does it (``UserAdmin``, a part of it): create,
change, remove users and the first admin; every change writes an audit line in its own
transaction."""

from __future__ import annotations

import re
import secrets
from typing import Any

from argon2 import PasswordHasher

from oneeye.services.auth.audit_log import AuditLog
from oneeye.services.auth.errors import UserError, UserExistsError, UserNotFoundError
from oneeye.services.auth.passwords import check_password
from oneeye.services.auth.roles import check_role
from oneeye.store.repos import audit, users
from oneeye.store.repos.users import UserRecord

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
"""A username: 2-64 letters, digits or ``. _ @ -``, starting with a letter or digit."""


class UserAdmin(AuditLog):
    """The users part of ``AuthService``."""

    _hasher: PasswordHasher

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
        if not USERNAME.match(username):
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

    def reset_password(self, user_id: int, *, actor: str) -> tuple[UserRecord, str]:
        """Give a user a new random one-time password, to be shown once to the admin who
        asked (``actor``, who may not be that user: their own password they change
        themselves). The user must change it at their next login, every session of theirs
        ends, and the reset is audited (without the password).

        Returns:
            The user and the one-time password.

        Raises:
            UserNotFoundError: no user has this id.
            UserError: ``actor`` is that user.
        """
        password = secrets.token_urlsafe(15)
        password_hash = self._hasher.hash(password)
        with self.db.session() as session:
            before = users.get(session, user_id)
            if before is None:
                raise UserNotFoundError(f"no user with id {user_id}")
            if actor == f"user:{before.username}":
                raise UserError(
                    "you cannot reset your own password here: change it on your account page"
                )
            user = users.update(
                session, user_id, password_hash=password_hash, must_change_password=True
            )
            assert user is not None  # read above, in this transaction
            users.end_sessions(session, user.id)
            audit.add(session, actor, "user.password_reset", user.username)
        return user, password

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
