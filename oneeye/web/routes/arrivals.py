"""``/arrivals``: older arrival events for the dashboard, a page at a time, read backwards from
the oldest event the page has (``before``). Viewer and above; each event in the shape of a
``/ws`` frame, so the dashboard merges a page into its cards as it does live frames.

The rules are the WebSocket's: a ``customer.arrived`` event (account details) only for tellers
and above, each page that shows one written to the audit log (``account.view``, one row per
account); a reporter gets no sighting of an Amber Alert case's person unless it filed the case
and the case is approved (``CaseScope``). A page holds at most ``MAX_PAGE`` events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from oneeye.services.events import ACCOUNT_EVENT, ARRIVAL_EVENTS, HubEvent
from oneeye.web.deps import ServicesDep, Viewer, audit_access

router = APIRouter(prefix="/arrivals", tags=["arrivals"])

MAX_PAGE = 200
"""The most events one page of ``/arrivals`` returns."""
DEFAULT_PAGE = 100
"""Events per page when the client does not say."""


class ArrivalEvent(BaseModel):
    """One dashboard event of a visit, as a ``/ws`` frame."""

    id: int
    type: str
    at: datetime
    data: dict[str, Any]


class ArrivalPage(BaseModel):
    """A page of older arrival events, newest first."""

    events: list[ArrivalEvent]
    before: int | None
    """Ask with ``?before=`` this for the next page; ``None``: no older event is kept."""


def _sighting_of(event: HubEvent) -> str:
    return str(event.payload.get("sighting_id") or event.payload.get("id") or "")


@router.get("", response_model=ArrivalPage)
def older_arrivals(
    request: Request,
    services: ServicesDep,
    principal: Viewer,
    before: Annotated[int, Query(ge=1, le=2**62, description="the oldest event id you have")],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> ArrivalPage:
    """The arrival events (``sighting``, ``customer.arrived``, their updates) before
    ``before`` that you may see, newest first, at most ``limit``."""
    found = services.events.before(before, principal.role, ARRIVAL_EVENTS, limit)
    scope = services.alerts.scope_of(principal)
    shown = [
        event
        for event in found
        if scope is None
        or scope.sighting_visible(_sighting_of(event), event.payload.get("person_id"))
    ]
    # A match rejected ("Not them") is never shown again (``services.feedback``).
    rejected = services.feedback.rejected({_sighting_of(e) for e in shown})
    shown = [e for e in shown if (_sighting_of(e), e.payload.get("person_id")) not in rejected]
    accounts: dict[str, list[str]] = {}
    for event in shown:
        if event.type == ACCOUNT_EVENT:
            account = event.payload.get("account") or {}
            accounts.setdefault(str(account.get("account_id") or ""), []).append(
                _sighting_of(event)
            )
    for account_id, sightings in sorted(accounts.items()):
        detail = {"via": "dashboard.older", "sighting_ids": sightings}
        audit_access(services, principal, request, "account.view", account_id, detail)
    return ArrivalPage(
        events=[ArrivalEvent.model_validate(event.as_json()) for event in shown],
        before=found[-1].id if len(found) == limit else None,
    )
