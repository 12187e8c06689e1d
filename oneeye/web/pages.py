"""The dashboard pages: server-rendered HTML (Jinja2) with a little JavaScript.

Every page needs a logged-in browser session; an anonymous request is sent to ``/login`` with
``next`` set to where it was going. The pages render their first content from the database
(recent arrivals, cameras, customers, users) and then change only through the JSON API and the
``/ws`` WebSocket, so a page shows exactly what the API would. Account details (address,
balance) are rendered only for ``teller`` and above, and each render is written to the audit log.

The Amber Alert pages: ``/report`` (``reporter``; made for a phone: the camera opens, the photo is
checked as soon as it is chosen), ``/cases`` and ``/cases/{id}`` (every sighting of the person on a
timeline, live ones arriving over the WebSocket), and the dashboard's alert banner. They follow
the API's rules (``oneeye.services.alerts``): a reporter sees only its own cases (others' are
"no such case"); resolving and subscriptions are for the case's filer, coordinators and admins;
contact details and subscribers for tellers and above and the filer; the Approve button for
coordinators and admins.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from oneeye.services.alerts import (
    AlertError,
    AlertService,
    CaseInfo,
    MatchInfo,
    as_seen_by,
    held_matches,
    may_approve,
    may_manage_case,
    may_see_case,
    may_see_contact,
    may_see_held,
    sees_own_cases_only,
    visible_matches,
)
from oneeye.services.auth import ROLES, AuthError, Principal
from oneeye.services.cameras import CameraState, iso
from oneeye.services.context import Services
from oneeye.services.events import HubEvent
from oneeye.services.sightings import photo_url
from oneeye.store.models import CustomerAccount, Person
from oneeye.web.deps import ServicesDep, audit_access, session_token_of
from oneeye.web.routes.auth import safe_next
from oneeye.web.routes.users import AuditEntryPublic, AuditFilter

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
RECENT_EVENTS = 300
"""How many of the newest dashboard events the first render of the dashboard looks at."""
MAX_CARDS = 60
"""How many arrival cards the dashboard shows (the JavaScript client keeps the same bound)."""
ARRIVAL_TYPES = frozenset({"sighting", "customer.arrived", "sighting_update", "sighting.update"})

LOGIN_ERRORS = {
    "1": "Wrong username or password.",
    "throttled": "Too many failed logins from this address; wait a few minutes and try again.",
}
"""What the login page says for the ``error`` the login route redirects back with."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: https:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Pages run only their own scripts (no inline code), so an injected name cannot run; profile
photos may come from the bank's own HTTPS server."""

router = APIRouter(include_in_schema=False)


@cache
def templates() -> Jinja2Templates:
    """The page templates (built on first use, not at import)."""
    return Jinja2Templates(directory=TEMPLATES)


# Who is asking --------------------------------------------------------------------------------


def page_principal(request: Request, services: Services) -> Principal | None:
    """The user of this browser session, or ``None`` (no cookie, or an ended session)."""
    token = session_token_of(request)
    if not token:
        return None
    try:
        return services.auth.session_principal(token)
    except AuthError:
        return None


def to_password_change(request: Request) -> RedirectResponse:
    """A 303 to the password page (a one-time password must be changed first), coming back
    to this page after."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        f"/account/password?next={quote(here, safe='')}", status.HTTP_303_SEE_OTHER
    )


def to_login(request: Request) -> RedirectResponse:
    """A 303 to the login page that comes back to this page after logging in."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status.HTTP_303_SEE_OTHER)


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page from its template, with the user and their CSRF token in the context."""
    values: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else "",
        "is_admin": principal is not None and principal.allows("admin"),
        "can_report": principal is not None and principal.allows("reporter"),
        "path": request.url.path,
    }
    values.update(context or {})
    response = templates().TemplateResponse(request, name, values, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def page_gate(request: Request, services: Services, needed: str) -> Principal | Response:
    """The user, if logged in with ``needed`` or above; else the redirect to the login page
    (nobody logged in) or the 403 page (a lower role) to answer with."""
    principal = page_principal(request, services)
    if principal is None:
        return to_login(request)
    if principal.must_change_password:
        return to_password_change(request)
    if not principal.allows(needed):
        return forbidden(request, principal, needed)
    return principal


def forbidden(request: Request, principal: Principal, needed: str) -> HTMLResponse:
    """The 403 page: who you are, and which role the page needs."""
    return render(
        request,
        "403.html",
        principal,
        {"needed": needed},
        status_code=status.HTTP_403_FORBIDDEN,
    )


# Arrival cards --------------------------------------------------------------------------------


@dataclass(slots=True)
class ArrivalCard:
    """One visit on the dashboard, merged from its ``sighting`` / ``customer.arrived`` events."""

    sighting_id: str
    event_id: int
    camera_id: str = ""
    camera_name: str = ""
    person_id: str | None = None
    person_name: str | None = None
    watchlist: str | None = None
    seen_at: str = ""
    snapshot_url: str | None = None
    account: dict[str, Any] | None = None
    account_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The card's data as the dashboard's JavaScript keeps it."""
        return {
            "sighting_id": self.sighting_id,
            "event_id": self.event_id,
            "camera_id": self.camera_id,
            "camera_name": self.camera_name,
            "person_id": self.person_id,
            "person_name": self.person_name,
            "watchlist": self.watchlist,
            "seen_at": self.seen_at,
            "snapshot_url": self.snapshot_url,
            "account": self.account,
            "account_error": self.account_error,
        }

    def merge(self, event_id: int, data: dict[str, Any]) -> None:
        """Take the fields of a later event of the same visit."""
        self.event_id = max(self.event_id, event_id)
        for name in ("camera_id", "camera_name", "person_id", "person_name", "watchlist"):
            if data.get(name) is not None:
                setattr(self, name, data[name])
        if data.get("snapshot_url"):
            self.snapshot_url = data["snapshot_url"]
        if data.get("seen_at") and not self.seen_at:
            self.seen_at = str(data["seen_at"])
        if isinstance(data.get("account"), dict):
            self.account = data["account"]
            self.account_error = data.get("account_error")


def format_money(balance: Any, currency: Any) -> str:
    """``"1520.4", "USD"`` -> ``"1,520.40 USD"`` (Decimal, never a float); ``"—"`` when the
    directory gave no balance."""
    if balance is None or balance == "":
        return "—"
    try:
        amount = Decimal(str(balance))
    except (InvalidOperation, ValueError):
        return f"{balance} {currency or ''}".strip()
    return f"{amount:,.2f} {currency or ''}".strip()


def arrival_cards(events: list[HubEvent], can_see_accounts: bool) -> list[ArrivalCard]:
    """One card per visit (keyed by sighting id), newest first; account details kept only
    when the viewer may see them."""
    cards: dict[str, ArrivalCard] = {}
    for event in sorted(events, key=lambda e: e.id):
        if event.type not in ARRIVAL_TYPES:
            continue
        data = dict(event.payload)
        sighting_id = str(data.get("sighting_id") or data.get("id") or "")
        if not sighting_id:
            continue
        if not can_see_accounts:
            data.pop("account", None)
            data.pop("account_error", None)
        card = cards.get(sighting_id)
        if card is None:
            card = cards[sighting_id] = ArrivalCard(sighting_id=sighting_id, event_id=event.id)
        card.merge(event.id, data)
    newest = sorted(cards.values(), key=lambda c: (c.seen_at, c.event_id), reverse=True)
    return newest[:MAX_CARDS]


def recent_events(services: Services, role: str) -> tuple[list[HubEvent], int]:
    """The newest dashboard events ``role`` may see (oldest first), and the newest event id
    (where the page's WebSocket resumes)."""
    last = services.events.latest_id()
    events = services.events.since(max(0, last - RECENT_EVENTS), role, limit=RECENT_EVENTS)
    return events, max([last, *(e.id for e in events)])


def audit_account_views(
    services: Services, principal: Principal, request: Request, cards: list[ArrivalCard]
) -> None:
    """One audit line per account whose details this page shows."""
    shown: dict[str, list[str]] = {}
    for card in cards:
        if card.account is not None:
            shown.setdefault(str(card.account.get("account_id", "")), []).append(card.sighting_id)
    for account_id, sightings in sorted(shown.items()):
        detail = {"via": "dashboard", "sighting_ids": sightings}
        audit_access(services, principal, request, "account.view", account_id, detail)


# Cameras --------------------------------------------------------------------------------------


@dataclass(slots=True)
class CameraTile:
    """A camera as the dashboard and the admin page show it."""

    id: str
    name: str
    location: str
    source: str
    enabled: bool
    pace: bool
    loop: bool
    min_face_px: int
    detect_every: int
    state: CameraState = "offline"
    fps: float | None = None
    last_frame_at: str | None = None
    error: str | None = None


def camera_tiles(services: Services) -> list[CameraTile]:
    """Every camera, with its worker's live status."""
    statuses = services.cameras.statuses()
    tiles = []
    for config in sorted(services.cameras.configs(), key=lambda c: (c.name, c.id)):
        live = statuses.get(config.id)
        tiles.append(
            CameraTile(
                id=config.id,
                name=config.name,
                location=config.location,
                source=config.source,
                enabled=config.enabled,
                pace=config.pace,
                loop=config.loop,
                min_face_px=config.min_face_px,
                detect_every=config.detect_every,
                state=live.state if live is not None else "offline",
                fps=live.fps if live is not None else None,
                last_frame_at=iso(live.last_frame_at) if live is not None else None,
                error=live.error if live is not None else None,
            )
        )
    return tiles


# Pages ----------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep, next: str = "/") -> Response:
    """The login form; a logged-in user goes straight on to ``next``."""
    target = safe_next(next)
    if page_principal(request, services) is not None:
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    error = request.query_params.get("error")
    message = LOGIN_ERRORS.get(error, LOGIN_ERRORS["1"]) if error else None
    return render(request, "login.html", None, {"next": target, "error": message})


PASSWORD_ERRORS = {
    "wrong": "The current password is not right.",
    "weak": "The new password needs at least 10 characters and must differ from the current one.",
    "mismatch": "The two new passwords differ.",
    "throttled": "Too many wrong passwords from this address; wait a few minutes and try again.",
    "missing": "Fill in every field.",
}
"""What the password page says for the ``error`` the password route redirects back with."""


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, services: ServicesDep, next: str = "/") -> Response:
    """Change your own password (current password required). A user whose password was a
    one-time one is sent here by every page until they have changed it."""
    principal = page_principal(request, services)
    if principal is None:
        return to_login(request)
    error = request.query_params.get("error")
    return render(
        request,
        "account_password.html",
        principal,
        {
            "next": safe_next(next),
            "error": PASSWORD_ERRORS.get(error, PASSWORD_ERRORS["missing"]) if error else None,
            "forced": principal.must_change_password,
        },
    )


@router.get("/", response_class=HTMLResponse)
def dashboard_page(request: Request, services: ServicesDep) -> Response:
    """Arrivals as cards, newest first, and the cameras with their live view; above them a
    banner for each active case seen lately."""
    principal = page_gate(request, services, "viewer")
    if isinstance(principal, Response):
        return principal
    can_see_accounts = principal.allows("teller")
    events, last_id = recent_events(services, principal.role)
    alerts = alert_service(request, services)
    scope = alerts.scope_of(principal) if alerts is not None else None
    if scope is not None:  # a reporter: no card for a sighting it may not know of
        events = [
            e
            for e in events
            if e.type not in ARRIVAL_TYPES
            or scope.sighting_visible(
                str(e.payload.get("sighting_id") or e.payload.get("id") or ""),
                e.payload.get("person_id"),
            )
        ]
    cards = arrival_cards(events, can_see_accounts)
    if can_see_accounts:
        audit_account_views(services, principal, request, cards)
    return render(
        request,
        "dashboard.html",
        principal,
        {
            "cards": cards,
            "initial_cards": [card.as_json() for card in cards],
            "cameras": camera_tiles(services),
            "last_event_id": last_id,
            "can_see_accounts": can_see_accounts,
            "money": format_money,
            "max_cards": MAX_CARDS,
            "banners": alert_banners(alert_service(request, services), principal),
        },
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, services: ServicesDep) -> Response:
    """The admin section starts at the customers."""
    principal = page_gate(request, services, "admin")
    if isinstance(principal, Response):
        return principal
    return RedirectResponse("/admin/customers", status.HTTP_303_SEE_OTHER)


@dataclass(slots=True)
class CustomerRow:
    """A customer account with the people (faces) enrolled for it."""

    account: CustomerAccount
    people: list[Person]


@router.get("/admin/customers", response_class=HTMLResponse)
def admin_customers_page(request: Request, services: ServicesDep) -> Response:
    """Customers: create accounts, upload profile photos, enrol face photos."""
    principal = page_gate(request, services, "admin")
    if isinstance(principal, Response):
        return principal
    with services.db.session() as session:
        accounts = list(session.scalars(select(CustomerAccount).order_by(CustomerAccount.name)))
        people = list(
            session.scalars(
                select(Person)
                .where(Person.account_id.is_not(None))
                .options(selectinload(Person.templates), selectinload(Person.watchlists))
                .order_by(Person.name)
            )
        )
        session.expunge_all()
    by_account: dict[str, list[Person]] = {}
    for person in people:
        by_account.setdefault(str(person.account_id), []).append(person)
    rows = [CustomerRow(account, by_account.get(account.account_id, [])) for account in accounts]
    if rows:
        audit_access(
            services,
            principal,
            request,
            "account.view",
            "*",
            {"via": "admin/customers", "count": len(rows)},
        )
    return render(
        request,
        "admin_customers.html",
        principal,
        {"customers": rows, "money": format_money},
    )


@router.get("/admin/cameras", response_class=HTMLResponse)
def admin_cameras_page(request: Request, services: ServicesDep) -> Response:
    """Cameras: add, edit, enable or disable, remove; live status."""
    principal = page_gate(request, services, "admin")
    if isinstance(principal, Response):
        return principal
    return render(
        request,
        "admin_cameras.html",
        principal,
        {"cameras": camera_tiles(services), "last_event_id": services.events.latest_id()},
    )


@router.get("/admin/users", response_class=HTMLResponse)
def admin_users_page(request: Request, services: ServicesDep) -> Response:
    """Users and API keys: add, change role, deactivate; keys are shown once."""
    principal = page_gate(request, services, "admin")
    if isinstance(principal, Response):
        return principal
    return render(
        request,
        "admin_users.html",
        principal,
        {"users": services.auth.users(), "api_keys": services.auth.api_keys(), "roles": ROLES},
    )


AUDIT_PAGE_SIZE = 50
"""Audit entries per page of ``/admin/audit``."""
AUDIT_FILTERS = ("actor", "action", "target", "since", "until")
"""The filters ``/admin/audit`` offers (and keeps in its paging links)."""


def audit_detail(detail: dict[str, Any], limit: int = 300) -> str:
    """An entry's detail as compact JSON, cut at ``limit`` characters for the table."""
    text = json.dumps(detail, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@router.get("/admin/audit", response_class=HTMLResponse)
def admin_audit_page(request: Request, services: ServicesDep) -> Response:
    """The audit log: who saw or changed what, when and from where, newest first, filtered
    by actor, action, target and time, a page at a time."""
    principal = page_gate(request, services, "admin")
    if isinstance(principal, Response):
        return principal
    # A blank form field means "any": only the filled-in ones are parsed and applied.
    sent = {k: v.strip() for k, v in request.query_params.items() if k in AUDIT_FILTERS}
    values = {k: v for k, v in sent.items() if v}
    before = request.query_params.get("before", "")
    error = None
    entries: list[AuditEntryPublic] = []
    try:
        query = AuditFilter.model_validate(
            {**values, "limit": AUDIT_PAGE_SIZE, "before": before or None}
        )
        entries = query.entries(services.auth)
    except ValidationError as exc:
        error = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    older = None
    if len(entries) == AUDIT_PAGE_SIZE:
        older = "/admin/audit?" + urlencode({**values, "before": entries[-1].id})
    newest = "/admin/audit?" + urlencode(values) if before else None
    return render(
        request,
        "admin_audit.html",
        principal,
        {
            "entries": entries,
            "filters": sent,
            "error": error,
            "older_url": older,
            "newest_url": newest,
            "detail": audit_detail,
            "iso": iso_time,
        },
        status_code=status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK,
    )


# Amber Alert ----------------------------------------------------------------------------------

RECENT_ALERT = timedelta(hours=1)
"""A case whose newest match was found within this long ago has its banner on the dashboard
when the page loads (newer ones arrive over the WebSocket)."""
MAX_FAILURES = 50
"""How many failed notifications a page lists."""


def alert_service(request: Request, services: Services) -> AlertService | None:
    """The server's ``AlertService`` (``services.alerts``, or ``app.state.alerts``), or
    ``None`` when this server runs without Amber Alert."""
    alerts = getattr(services, "alerts", None)
    if alerts is None:
        alerts = getattr(request.app.state, "alerts", None)
    return alerts if isinstance(alerts, AlertService) else None


def as_utc(when: datetime) -> datetime:
    """``when`` as aware UTC (a naive time from the database is UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def iso_time(when: datetime | None) -> str:
    """``when`` as ISO-8601 UTC (``""`` for none): what ``<time datetime=...>`` carries."""
    return "" if when is None else as_utc(when).isoformat()


def span(minutes: int) -> str:
    """``20`` -> ``"20 minutes"``, ``1`` -> ``"1 minute"``, ``135`` -> ``"2 h 15 min"``."""
    if minutes < 1:
        return "less than a minute"
    if minutes == 1:
        return "1 minute"
    if minutes < 120:
        return f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} hours"


def sighting_label(kind: str, camera_name: str, seen_at: datetime, filed_at: datetime) -> str:
    """What a match says in a sentence: ``"seen at Lobby"`` for a live one, ``"seen at Lobby,
    20 minutes before the case was filed"`` for one the retro-search found."""
    if kind != "retro":
        return f"seen at {camera_name}"
    before = int((as_utc(filed_at) - as_utc(seen_at)).total_seconds() // 60)
    return f"seen at {camera_name}, {span(max(0, before))} before the case was filed"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A match of a case as its page and the dashboard's banner show it."""

    case_id: str
    case_name: str
    case_photo_url: str | None
    match_id: int
    sighting_id: str
    camera_id: str
    camera_name: str
    location: str
    kind: str
    seen_at: str
    distance: float
    snapshot_url: str | None
    label: str


def timeline_entry(case: CaseInfo, match: MatchInfo) -> TimelineEntry:
    """A match with what the page says about it."""
    return TimelineEntry(
        case_id=case.id,
        case_name=case.name,
        case_photo_url=photo_url(case.photo_keys[0]) if case.photo_keys else None,
        match_id=match.id,
        sighting_id=match.sighting_id,
        camera_id=match.camera_id,
        camera_name=match.camera_name,
        location=match.location,
        kind=match.kind,
        seen_at=iso_time(match.seen_at),
        distance=match.distance,
        snapshot_url=photo_url(match.snapshot_key),
        label=sighting_label(match.kind, match.camera_name, match.seen_at, case.created_at),
    )


def alert_banners(
    alerts: AlertService | None, principal: Principal, now: datetime | None = None
) -> list[TimelineEntry]:
    """The newest match of each active case ``principal`` may see found within
    ``RECENT_ALERT``, newest first: the banners the dashboard opens with."""
    if alerts is None:
        return []
    since = (now or datetime.now(UTC)) - RECENT_ALERT
    banners = []
    mine = principal if sees_own_cases_only(principal) else None
    for case in alerts.cases("active", filed_by=mine):
        if case.matches == 0 or (case.approved_at is None and not may_see_held(principal)):
            continue
        try:
            matches = alerts.matches(case.id)
        except AlertError:
            continue  # purged or gone since the list was read
        recent = [m for m in matches if as_utc(m.found_at) >= since]
        if recent:
            newest = max(recent, key=lambda m: (as_utc(m.found_at), m.id))
            banners.append((as_utc(newest.found_at), timeline_entry(case, newest)))
    return [entry for _, entry in sorted(banners, key=lambda b: b[0], reverse=True)]


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """A notification whose last attempt failed (still retrying, or given up)."""

    id: int
    case_id: str
    channel: str
    address: str
    status: str
    attempts: int
    last_error: str
    created_at: str


def delivery_failures(services: Services, case_id: str | None = None) -> list[DeliveryFailure]:
    """The newest failed notifications (of one case, if given), from the notifier."""
    return [
        DeliveryFailure(
            id=r.id,
            case_id=r.case_id,
            channel=r.channel,
            address=r.address,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            created_at=iso_time(r.created_at),
        )
        for r in services.notifier.failures(MAX_FAILURES, case_id=case_id)
    ]


def alerts_unavailable(request: Request, principal: Principal) -> HTMLResponse:
    """The page shown when this server runs without Amber Alert."""
    return render(
        request,
        "message.html",
        principal,
        {
            "title": "Amber Alert is not running",
            "message": "This server runs without Amber Alert cases; ask an administrator.",
        },
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request, services: ServicesDep) -> Response:
    """File a case from a phone: the camera opens, the photo is checked as soon as it is
    taken, and the case goes live for every camera when it is sent."""
    principal = page_gate(request, services, "reporter")
    if isinstance(principal, Response):
        return principal
    alerts = alert_service(request, services)
    if alerts is None:
        return alerts_unavailable(request, principal)
    return render(
        request,
        "report.html",
        principal,
        {"default_hours": alerts.settings.default_hours},
    )


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, services: ServicesDep) -> Response:
    """Every case, newest first (``?status=active`` and so on to filter)."""
    principal = page_gate(request, services, "viewer")
    if isinstance(principal, Response):
        return principal
    alerts = alert_service(request, services)
    if alerts is None:
        return alerts_unavailable(request, principal)
    wanted = request.query_params.get("status") or None
    if wanted not in (None, "active", "resolved", "expired"):
        wanted = None
    mine = principal if sees_own_cases_only(principal) else None
    cases = [as_seen_by(principal, c) for c in alerts.cases(wanted, limit=500, filed_by=mine)]
    return render(
        request,
        "cases.html",
        principal,
        {
            "cases": cases,
            "status_filter": wanted,
            "photo_url": photo_url,
            "iso": iso_time,
            "failures": delivery_failures(services) if principal.allows("admin") else [],
        },
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, services: ServicesDep, case_id: str) -> Response:
    """A case: its photos and details, every sighting on a timeline (newest first, live ones
    arriving without a reload), whether it is approved (and the Approve button for
    coordinators and admins), and for those who may see them the contact details, the
    subscriptions and the notifications that could not be delivered; the resolve button and
    the subscription controls for those who may manage the case."""
    principal = page_gate(request, services, "viewer")
    if isinstance(principal, Response):
        return principal
    alerts = alert_service(request, services)
    if alerts is None:
        return alerts_unavailable(request, principal)
    try:
        case = alerts.case(case_id)
        if not may_see_case(principal, case):
            raise AlertError("not this principal's case")  # the same page as no case at all
        matches = alerts.matches(case_id)
    except AlertError:
        return render(
            request,
            "message.html",
            principal,
            {"title": "No such case", "message": f"There is no case with id {case_id}."},
            status_code=status.HTTP_404_NOT_FOUND,
        )
    audit_access(services, principal, request, "case.view", case_id, {"via": "page"})
    sees_contact = may_see_contact(principal, case)
    manages = may_manage_case(principal, case)
    shown = visible_matches(principal, matches)
    timeline = [timeline_entry(case, m) for m in reversed(shown)]
    return render(
        request,
        "case.html",
        principal,
        {
            "case": case,
            "photo_urls": [url for key in case.photo_keys if (url := photo_url(key))],
            "timeline": timeline,
            "iso": iso_time,
            "can_resolve": manages and case.status == "active",
            "can_manage": manages,
            "can_approve": may_approve(principal)
            and case.status == "active"
            and case.approved_at is None,
            "sees_contact": sees_contact,
            "held_hidden": held_matches(case) if len(shown) < len(matches) else 0,
            "subscriptions": alerts.subscriptions(case_id) if sees_contact else [],
            "failures": delivery_failures(services, case_id) if sees_contact else [],
            "last_event_id": services.events.latest_id(),
        },
    )
