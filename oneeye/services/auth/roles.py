"""The role ladder and ``Principal``: who is asking and what their role lets them do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oneeye.services.auth.errors import UserError

Role = Literal["viewer", "reporter", "teller", "coordinator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "reporter", "teller", "coordinator", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
EDGE_ROLE = "edge"
"""The role of an edge's API key: outside the ladder, allowed only where a route names it."""
METRICS_ROLE = "metrics"
"""The role of a monitoring system's API key: outside the ladder, it may read ``/metrics`` and
nothing else."""
KEY_ROLES: tuple[str, ...] = (*ROLES, EDGE_ROLE, METRICS_ROLE)
"""The roles an API key may have (users log in with the ladder's roles only)."""


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` is ``needed`` or above it on the ladder."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


def check_role(role: str) -> Role:
    """``role`` if it is one of ``ROLES``, else a ``UserError`` listing them."""
    if role not in ROLE_RANK:
        raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


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
