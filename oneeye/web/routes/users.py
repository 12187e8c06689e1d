"""Users, API keys and the audit log: ``/users``, ``/api-keys``, ``/audit`` (admin only).

Every change is written to the audit log by ``AuthService`` with the admin who made it.
Passwords and API keys are never returned, except a new key once, in the answer that created
it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from oneeye.services.auth import (
    MIN_PASSWORD,
    AuthService,
    Role,
)
from oneeye.web.deps import Admin, ServicesDep

logger = logging.getLogger(__name__)

users_router = APIRouter(prefix="/users", tags=["users"])
keys_router = APIRouter(prefix="/api-keys", tags=["api-keys"])
audit_router = APIRouter(prefix="/audit", tags=["audit"])


# schemas -------------------------------------------------------------------------------------


class UserCreate(BaseModel):
    """A new user."""

    username: str = Field(min_length=2, max_length=64, examples=["alice"])
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)
    role: Role


class UserUpdate(BaseModel):
    """Changes to a user: any of role, active, a new password (which ends their sessions)."""

    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=1024)


class UserPublic(BaseModel):
    """A user as the API shows it (never the password or its hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    active: bool
    created_at: datetime


class PasswordReset(BaseModel):
    """A user's password just reset: ``password`` is a one-time password, shown this once;
    the user must change it at their next login, and their sessions have ended."""

    user: UserPublic
    password: str


class ApiKeyCreate(BaseModel):
    """A new API key for a machine (an edge, a script)."""

    name: str = Field(min_length=1, max_length=100, examples=["branch-12 edge"])
    role: Literal["viewer", "reporter", "teller", "coordinator", "admin", "edge", "metrics"]
    """A role on the ladder, ``edge``: a camera host that may only fetch the gallery,
    register its cameras and upload their snapshots, or ``metrics``: a monitoring system that
    may only read ``/metrics``."""
    edge_id: str | None = Field(default=None, pattern=r"^[a-z0-9_-]{1,64}$", examples=["branch-12"])
    """For an ``edge`` key (required there): the edge's id, also its broker user name."""


class ApiKeyPublic(BaseModel):
    """An API key without the key itself."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    role: str
    edge_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyPublic):
    """A key just created: ``key`` is shown this once and cannot be shown again."""

    key: str


class AuditEntryPublic(BaseModel):
    """One line of the audit log: who (``actor`` and their ``role``), did or saw what
    (``action``), about which record (``subject``, an id or a photo key), when, and from which
    client ``address``."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    address: str
    detail: dict[str, Any]


AUDIT_PAGE = 100
"""Audit entries per page unless asked for fewer or more (up to 1000)."""


class AuditFilter(BaseModel):
    """Which audit entries to read; every filter given must match. Times without a zone are
    UTC. Page back with ``before`` set to the id of the last entry of a page."""

    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(
        default=None,
        max_length=100,
        description="`user:<name>` or `key:<name>`, or a bare name for either",
    )
    action: str | None = Field(
        default=None,
        max_length=64,
        description="only this action (e.g. face.search); `user.` or `user.*` for a family",
    )
    target: str | None = Field(
        default=None,
        max_length=200,
        description="entries about this id (a person, case, account or photo key)",
    )
    since: datetime | None = Field(default=None, description="at or after this time")
    until: datetime | None = Field(default=None, description="before this time")
    before: int | None = Field(default=None, ge=1, description="ids below this one")
    limit: int = Field(default=AUDIT_PAGE, ge=1, le=1000)

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def entries(self, auth: AuthService) -> list[AuditEntryPublic]:
        """The entries this filter selects, newest first (blocking database work)."""
        rows = auth.audit_entries(
            self.limit,
            self.action or None,
            actor=self.actor or None,
            subject=self.target or None,
            since=self.since,
            until=self.until,
            before=self.before,
        )
        return [AuditEntryPublic.model_validate(row) for row in rows]


# users ---------------------------------------------------------------------------------------


@users_router.get("", response_model=list[UserPublic], summary="List users")
def list_users(services: ServicesDep, admin: Admin) -> list[UserPublic]:
    """Every user, by name."""
    return [UserPublic.model_validate(u) for u in services.auth.users()]


@users_router.post(
    "", response_model=UserPublic, status_code=status.HTTP_201_CREATED, summary="Add a user"
)
def create_user(body: UserCreate, services: ServicesDep, admin: Admin) -> UserPublic:
    """Add a user with a password (at least 10 characters) and a role."""
    user = services.auth.create_user(body.username, body.password, body.role, actor=admin.actor)
    logger.info("%s added user %r (%s)", admin.actor, user.username, user.role)
    return UserPublic.model_validate(user)


@users_router.get("/{user_id}", response_model=UserPublic, summary="One user")
def get_user(user_id: int, services: ServicesDep, admin: Admin) -> UserPublic:
    """The user with this id."""
    return UserPublic.model_validate(services.auth.user(user_id))


@users_router.patch("/{user_id}", response_model=UserPublic, summary="Change a user")
def update_user(user_id: int, body: UserUpdate, services: ServicesDep, admin: Admin) -> UserPublic:
    """Change a user's role, deactivate or reactivate them, or reset their password.

    Deactivating and a new password end the user's sessions. The last active admin cannot be
    demoted or deactivated.
    """
    user = services.auth.update_user(
        user_id,
        role=body.role,
        active=body.active,
        password=body.password,
        actor=admin.actor,
    )
    return UserPublic.model_validate(user)


@users_router.post(
    "/{user_id}/password-reset",
    response_model=PasswordReset,
    summary="Reset a user's password",
)
def reset_password(user_id: int, services: ServicesDep, admin: Admin) -> PasswordReset:
    """Give a user a new one-time password, shown in this answer only: the user must change
    it at their next login, and every session of theirs ends. Not for your own password (400:
    change it on your account page)."""
    user, password = services.auth.reset_password(user_id, actor=admin.actor)
    logger.info("%s reset the password of user %d", admin.actor, user.id)
    return PasswordReset(user=UserPublic.model_validate(user), password=password)


@users_router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a user",
)
def delete_user(user_id: int, services: ServicesDep, admin: Admin) -> Response:
    """Remove a user and end their sessions (not the last active admin)."""
    services.auth.delete_user(user_id, actor=admin.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# API keys ------------------------------------------------------------------------------------


@keys_router.get("", response_model=list[ApiKeyPublic], summary="List API keys")
def list_api_keys(services: ServicesDep, admin: Admin) -> list[ApiKeyPublic]:
    """Every API key, revoked ones included, without the keys themselves."""
    return [ApiKeyPublic.model_validate(k) for k in services.auth.api_keys()]


@keys_router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key",
)
def create_api_key(body: ApiKeyCreate, services: ServicesDep, admin: Admin) -> ApiKeyCreated:
    """A new key with a role; the answer holds the key, shown this once. Send it as
    ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    row, key = services.auth.create_api_key(
        body.name, body.role, edge_id=body.edge_id, actor=admin.actor
    )
    public = ApiKeyPublic.model_validate(row)
    return ApiKeyCreated(**public.model_dump(), key=key)


@keys_router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke an API key",
)
def revoke_api_key(key_id: int, services: ServicesDep, admin: Admin) -> Response:
    """Stop a key from working (it stays listed, marked revoked)."""
    services.auth.revoke_api_key(key_id, actor=admin.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# audit log -----------------------------------------------------------------------------------


@audit_router.get("", response_model=list[AuditEntryPublic], summary="Read the audit log")
def audit_log(
    services: ServicesDep, admin: Admin, query: Annotated[AuditFilter, Query()]
) -> list[AuditEntryPublic]:
    """The newest audit entries matching the filters, newest first, ``limit`` at a time;
    the next page is ``before=<id of the last entry>``."""
    return query.entries(services.auth)


router = APIRouter()
"""The routes of this module: ``/users``, ``/api-keys`` and ``/audit``."""
router.include_router(users_router)
router.include_router(keys_router)
router.include_router(audit_router)
