"""The dashboard WebSocket ``/ws``: live ``sighting``, ``customer.arrived`` and
``camera.status`` events, each a JSON frame ``{"id", "type", "at", "data"}``.

Authentication is the session cookie (a browser) or an API key, sent in a header, never in
the URL (where access logs and proxies would keep it): ``Authorization: Bearer``,
``X-API-Key``, or, for a browser script that cannot set headers on a WebSocket, as the
subprotocol ``oneeye.key.<key>`` offered together with ``oneeye`` (the server answers
``oneeye``, never echoing the key). A ``?api_key=`` in the URL is refused (4401) and, like
every query string, never logged (see ``oneeye.redact``). A connection without valid credentials is
accepted and closed at once with code ``4401``, so a script can tell "log in" from a network
fault; a cookie-authenticated connection from a page of another origin is closed with
``4403``. A client that reconnects passes ``?since=<last event id>``: the events it missed
(that its role may see) come first, then live ones, none twice. Events with account details
go to ``teller`` and above only; each one's audit row is committed before it is sent (see
``oneeye.services.events``). A reporter gets the events of its own Amber Alert cases only
(``CASE_EVENTS``), without the sightings held until a case is approved, and no ``sighting``
frame of a case's person unless it filed that case and the case is approved (``CaseScope``,
asked off the event loop and kept until the next case event). A client that falls
too far behind is closed with ``4408`` and should reconnect with ``since``: one whose queue
holds ``ONEEYE_LIMITS__WS_QUEUE`` events it has not been sent yet (256), or one send to which
waits ``ONEEYE_LIMITS__WS_SEND_SECONDS`` (10 s) because the client does not read. Such a client
is counted (``EventHub.dropped_clients``); if even the close frame cannot reach it, its
connection is aborted. Every ``RECHECK_SECONDS`` the session or key is checked again: a user
who logged out, was deactivated or changed role is closed with ``4401``.

Without ``since`` a client gets only the events published after it subscribed; a dashboard
always passes the id of the last event it has (``0`` the first time).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from oneeye.services.alerts import (
    CASE_EVENTS,
    WATCHLIST,
    CaseScope,
    may_see_held,
    sees_own_cases_only,
)
from oneeye.services.auth import AuthError, Principal
from oneeye.services.context import Services
from oneeye.services.events import ACCOUNT_EVENT, EventHub, HubEvent, Subscription
from oneeye.services.sightings import REVISED_EVENT
from oneeye.web.deps import session_token_of

logger = logging.getLogger(__name__)

router = APIRouter()

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TOO_SLOW = 4408
REPLAY_LIMIT = 1000
OWNED_CASES_KEPT = 1000
"""Cases whose ownership one reporter's connection remembers before it asks again."""
RECHECK_SECONDS = 60.0
"""How often an open connection's session or key is checked again."""
SIGHTING_EVENT = "sighting"
SIGHTING_EVENTS = frozenset({SIGHTING_EVENT, REVISED_EVENT})
"""A sighting, and a sighting whose decision was revised (it names the earlier one too)."""
SUBPROTOCOL = "oneeye"
"""The subprotocol the server answers with when a client offers it."""
KEY_SUBPROTOCOL = "oneeye.key."
"""A client offers ``oneeye.key.<API key>`` (with ``oneeye``) to authenticate by key."""


def _subprotocol_key(websocket: WebSocket) -> str | None:
    """The API key offered as the subprotocol ``oneeye.key.<key>``, if any."""
    for offered in websocket.scope.get("subprotocols", ()):
        if isinstance(offered, str) and offered.startswith(KEY_SUBPROTOCOL):
            return offered[len(KEY_SUBPROTOCOL) :] or None
    return None


CLOSE_SECONDS = 2.0
"""How long a close frame may wait for a client to take it before the connection is aborted."""


@dataclass(slots=True)
class Known:
    """What one reporter's connection remembers of the database's answers, so that the event
    loop asks it (in a thread) only when something changed."""

    owned: dict[str, bool] = field(default_factory=dict)
    """Case id -> whether this reporter filed it."""
    scope: CaseScope | None = None
    """The reporter's ``CaseScope``; ``None``: ask again (a case event passed)."""


class SlowClientError(Exception):
    """A send waited too long for the client to read."""


def _key_of(websocket: WebSocket, api_key: str | None) -> str | None:
    if api_key:
        return api_key
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return websocket.headers.get("x-api-key") or None


def _same_origin(websocket: WebSocket) -> bool:
    """A browser sends ``Origin``; a page of another site must not ride on the cookie."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


def _authenticate(
    services: Services, websocket: WebSocket, api_key: str | None, touch: bool = True
) -> Principal:
    """Who the connection is (database work: in a thread). ``touch=False`` for the periodic
    re-check, which is not the user's activity (an unattended dashboard still goes idle)."""
    if "api_key" in websocket.query_params:
        raise AuthError(
            "send the API key in a header or the oneeye.key.<key> subprotocol, not in the URL"
        )
    key = _key_of(websocket, api_key)
    if key is not None:
        return services.auth.key_principal(key)
    token = session_token_of(websocket)
    if token is None:
        raise AuthError("log in, or send an API key, to use this")
    principal = services.auth.session_principal(token, touch=touch)
    if principal.must_change_password:
        raise AuthError("change your one-time password first")
    return principal


@router.websocket("/ws")
async def dashboard_socket(
    websocket: WebSocket,
    since: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """Push dashboard events to one client (see the module docstring)."""
    services: Services = websocket.app.state.services
    api_key = _subprotocol_key(websocket)
    offered = websocket.scope.get("subprotocols", ())
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        principal = await run_in_threadpool(_authenticate, services, websocket, api_key)
    except AuthError as exc:
        await websocket.close(CLOSE_UNAUTHENTICATED, str(exc)[:120])
        return
    if principal.kind == "user" and not _same_origin(websocket):
        await websocket.close(CLOSE_FORBIDDEN_ORIGIN, "cross-origin connection refused")
        return
    hub = services.events
    timeout = services.settings.limits.ws_send_seconds
    subscription = hub.subscribe(principal.role)
    known = Known()
    logger.info("dashboard socket opened for %s (since %s)", principal.actor, since)
    try:
        last = 0
        if since is not None:
            missed = await run_in_threadpool(hub.since, since, principal.role, REPLAY_LIMIT)
            for event in missed:
                await _send(websocket, event, principal, services, timeout, known)
                last = event.id
        # Four tasks, waited on once: the per-event path is just queue -> send. ``behind``
        # ends the connection even while the sender is stuck on a client that does not read.
        sender = asyncio.create_task(
            _pump(websocket, subscription, last, principal, services, timeout, known)
        )
        receiver = asyncio.create_task(_drain(websocket))
        checker = asyncio.create_task(_recheck(services, websocket, api_key, principal))
        behind = asyncio.create_task(subscription.fell_behind.wait())
        tasks = {sender, receiver, checker, behind}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
        if checker in done:
            await _close(websocket, CLOSE_UNAUTHENTICATED, "your session has ended")
        elif behind in done or sender in done:
            failure = sender.exception() if sender in done else None
            if failure is not None and not isinstance(failure, SlowClientError):
                raise failure  # the client went away mid-send (or a bug, to be logged)
            await _drop(websocket, hub, subscription, principal)
    except SlowClientError:
        await _drop(websocket, hub, subscription, principal)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        hub.unsubscribe(subscription)
        logger.info("dashboard socket closed for %s", principal.actor)


async def _drop(
    websocket: WebSocket, hub: EventHub, subscription: Subscription, principal: Principal
) -> None:
    """Disconnect a client that fell behind, and count it."""
    hub.dropped(subscription)
    logger.warning("dashboard client %s fell behind; disconnecting it", principal.actor)
    await _close(websocket, CLOSE_TOO_SLOW, "too far behind; reconnect with since")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Send a close frame; abort the connection if the client does not take it in time."""
    try:
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_SECONDS)
        return
    except (TimeoutError, WebSocketDisconnect, RuntimeError):
        pass
    _abort(websocket)


def _abort(websocket: WebSocket) -> None:
    """Drop the connection at once, unsent data and all.

    ASGI gives an application no way to do this, and the server (uvicorn) only closes a
    connection gracefully, which waits for ever on a client that does not read. Its protocol
    object is the owner of the ``receive`` the connection was given: reach its transport. On
    a server without one, the close frame above is all that can be done.
    """
    protocol = getattr(websocket._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()


async def _pump(
    websocket: WebSocket,
    subscription: Subscription,
    last: int,
    principal: Principal,
    services: Services,
    timeout: float,
    known: Known,
) -> None:
    """Send live events until the client falls too far behind (returns, or ``SlowClientError``) or
    goes away (raises)."""
    while True:
        event = await subscription.queue.get()
        if event is None:
            return
        if event.id <= last:
            continue  # already sent in the replay
        await _send(websocket, event, principal, services, timeout, known)
        last = event.id


async def _recheck(
    services: Services, websocket: WebSocket, api_key: str | None, principal: Principal
) -> None:
    """Return once the connection's credentials stop working."""
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        if not await _still_allowed(services, websocket, api_key, principal):
            return


async def _still_allowed(
    services: Services, websocket: WebSocket, api_key: str | None, principal: Principal
) -> bool:
    """Whether the connection's session or key still works, with the same role (a user
    logged out, deactivated or demoted must stop receiving account details)."""
    try:
        now = await run_in_threadpool(_authenticate, services, websocket, api_key, False)
    except AuthError:
        return False
    return now.role == principal.role


async def _may_get(
    event: HubEvent,
    principal: Principal,
    services: Services,
    known: Known,
) -> bool:
    """Whether ``principal`` may get ``event``: a reporter only its own cases' events (asked
    of the database once per case, off the event loop, and remembered in ``owned``), and
    sightings only of people it may know were seen (see ``_sighting_visible``)."""
    if not sees_own_cases_only(principal):
        return True
    if event.type in CASE_EVENTS:
        known.scope = None  # a case was filed, approved or closed: who is held may have changed
    elif event.type in SIGHTING_EVENTS:
        return await _sighting_visible(event, principal, services, known)
    else:
        return True
    if event.payload.get("held") and not may_see_held(principal):
        return False  # a sighting held for approval: its filer learns of it once approved
    owned = known.owned
    case_id = str(event.payload.get("case_id", ""))
    if case_id not in owned:
        alerts = getattr(services, "alerts", None)
        if alerts is None:
            return False
        if len(owned) >= OWNED_CASES_KEPT:
            owned.clear()
        owned[case_id] = await run_in_threadpool(alerts.filed_by, case_id, principal)
    return owned[case_id]


async def _sighting_visible(
    event: HubEvent, principal: Principal, services: Services, known: Known
) -> bool:
    """Whether a reporter may get a ``sighting`` frame: not of a case's person unless it
    filed the case and the case is approved. The scope is asked of the database off the event
    loop and kept in ``known`` until a case event clears it; a sighting on the Amber Alert
    watchlist of a person the kept scope does not know asks again (a case filed since)."""
    if not await _decision_visible(event, event.payload, principal, services, known):
        return False
    previous = event.payload.get("previous")
    return not isinstance(previous, dict) or await _decision_visible(
        event, previous, principal, services, known
    )


async def _decision_visible(
    event: HubEvent,
    decision: dict[str, Any],
    principal: Principal,
    services: Services,
    known: Known,
) -> bool:
    """Whether a reporter may learn that the event's sighting was decided to be
    ``decision``'s person (a revision names the earlier decision as well)."""
    person = decision.get("person_id")
    person_id = person if isinstance(person, str) else None
    scope = known.scope
    if scope is None or (
        decision.get("watchlist") == WATCHLIST and person_id not in scope.held_people
    ):
        alerts = getattr(services, "alerts", None)
        if alerts is None:
            return person_id is None
        scope = known.scope = await run_in_threadpool(alerts.scope_of, principal)
    return scope is None or scope.sighting_visible(str(event.payload.get("sighting_id")), person_id)


async def _send(
    websocket: WebSocket,
    event: HubEvent,
    principal: Principal,
    services: Services,
    timeout: float,
    known: Known,
) -> None:
    """Send one event (unless ``principal`` may not get it, see ``_may_get``);
    ``SlowClientError`` when the client has not taken it within ``timeout``."""
    if not await _may_get(event, principal, services, known):
        return
    if event.type == ACCOUNT_EVENT:
        # The row is committed before the details leave, so no kill can lose it.
        address = websocket.client.host if websocket.client is not None else ""
        await run_in_threadpool(
            services.events.delivered,
            event,
            principal.actor,
            role=principal.role,
            address=address,
        )
    try:
        await asyncio.wait_for(websocket.send_text(event.as_text()), timeout)
    except TimeoutError:
        raise SlowClientError(f"a send waited {timeout:g} s") from None


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
