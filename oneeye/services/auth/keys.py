"""API keys as ``AuthService`` issues them (``ApiKeys``, a part of it): create, list,
revoke, and the principal of a key (only its SHA-256 is stored)."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from oneeye.bus.base import is_slug
from oneeye.services.auth.errors import AuthError, UserError, UserNotFoundError
from oneeye.services.auth.passwords import digest
from oneeye.services.auth.roles import EDGE_ROLE, METRICS_ROLE, Principal, check_role
from oneeye.store.db import Database
from oneeye.store.repos import audit, users
from oneeye.store.repos.users import ApiKeyRecord

API_KEY_PREFIX = "oek_"
KEY_USE_RESOLUTION = timedelta(minutes=1)
"""An API key's ``last_used_at`` is written at most this often."""


class ApiKeys:
    """The API keys part of ``AuthService``."""

    db: Database

    def create_api_key(
        self, name: str, role: str, *, edge_id: str | None = None, actor: str = "system"
    ) -> tuple[ApiKeyRecord, str]:
        """A new API key; returns its row and the key itself (shown once, never stored).

        ``role`` is one of the ladder's roles or ``edge`` (a camera host's key), which must
        name the ``edge_id`` it is: the edge registers cameras and uploads snapshots as that
        edge only (its broker user has the same name)."""
        if role == METRICS_ROLE:
            if edge_id is not None:
                raise UserError("only an edge key names an edge id")
        elif role != EDGE_ROLE:
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
                session, name=name, prefix=prefix, key_hash=digest(key), role=role, edge_id=edge_id
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
            row = users.key_by_hash(session, digest(key))
            if row is None or row.revoked or not hmac.compare_digest(row.key_hash, digest(key)):
                raise AuthError("this API key is not valid")
            now = datetime.now(UTC)
            # One write a minute per key is enough to say when it was last used; a write per
            # request would make every edge call a database commit.
            if row.last_used_at is None or now - row.last_used_at > KEY_USE_RESOLUTION:
                users.touch_key(session, row.id, now)
            return Principal("key", row.id, row.name, row.role, edge=row.edge_id)
