"""The Amber Alert pages: ``/report`` (``reporter``; made for a phone: the camera opens, the
photo is checked as soon as it is chosen), ``/cases`` and ``/cases/{id}`` (every sighting of
the person on a timeline, live ones arriving over the WebSocket), and the dashboard's alert
banners. They follow the API's rules (``oneeye.services.alerts``): a reporter sees only its own
cases (others' are "no such case"); resolving and subscriptions are for the case's filer,
coordinators and admins; contact details and subscribers for tellers and above and the filer;
the Approve button for coordinators and admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response

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
from oneeye.services.auth import Principal
from oneeye.services.cameras import CameraWatch
from oneeye.services.context import Services
from oneeye.services.notify.senders import mask_address
from oneeye.services.sightings import photo_url
from oneeye.web.deps import ReporterPage, ServicesDep, ViewerPage, audit_access
from oneeye.web.pages.render import as_utc, iso_time, render

router = APIRouter(include_in_schema=False)

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
    likeness: str = "a likeness"
    """How alike the face is, in words (``AlertService.likeness``)."""


def timeline_entry(
    case: CaseInfo, match: MatchInfo, alerts: AlertService | None = None
) -> TimelineEntry:
    """A match with what the page says about it (its likeness in words when ``alerts`` is
    given)."""
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
        likeness=alerts.likeness(match.distance) if alerts is not None else "a likeness",
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


def camera_watch(services: Services) -> CameraWatch:
    """Which cameras are looking now, servers' and edges' (database work: call it off the
    event loop, as the sync pages are)."""
    return services.cameras.watch(services.sightings.statuses.latest)


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
def report_page(request: Request, services: ServicesDep, principal: ReporterPage) -> Response:
    """File a case from a phone: the camera opens, the photo is checked as soon as it is
    taken, and the case goes live for every camera when it is sent."""
    alerts = alert_service(request, services)
    if alerts is None:
        return alerts_unavailable(request, principal)
    return render(
        request,
        "report.html",
        principal,
        {
            "default_hours": alerts.settings.default_hours,
            "channels": alerts.channels(),
            "approves": may_approve(principal),
        },
    )


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, services: ServicesDep, principal: ViewerPage) -> Response:
    """Every case, newest first (``?status=active`` and so on to filter); for admins, the
    subscriptions to every case (add and remove) and the notifications not delivered."""
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
            "every_case": alerts.subscriptions() if principal.allows("admin") else [],
            "channels": alerts.channels(),
            "mask": mask_address,
        },
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request, services: ServicesDep, principal: ViewerPage, case_id: str
) -> Response:
    """A case: its photos and details, every sighting on a timeline (newest first, live ones
    arriving without a reload), whether it is approved (and the Approve button for
    coordinators and admins), and for those who may see them the contact details, who is told
    (each subscription with a masked address and what it was told: sent, waiting, retrying,
    failed; "nobody is subscribed" when so) and the notifications that could not be
    delivered; the resolve button and the subscription controls (the channels this server
    has set up) for those who may manage the case. While the case is active, which cameras
    are looking for the person, and a warning when none is."""
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
    # A match a coordinator rejected ("Not them") is never shown again.
    rejected = services.feedback.rejected([m.sighting_id for m in shown])
    kept = [m for m in shown if (m.sighting_id, case.person_id) not in rejected]
    timeline = [timeline_entry(case, m, alerts) for m in reversed(kept)]
    told = alerts.told(case_id) if sees_contact else []
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
            "rejected": len(shown) - len(kept),
            "can_judge": may_approve(principal),
            "told": told,
            "waiting": sum(t.tally.pending + t.tally.retrying for t in told),
            "sent": sum(t.tally.sent for t in told),
            "channels": alerts.channels(),
            "manages_every_case": principal.allows("admin"),
            "failures": delivery_failures(services, case_id) if sees_contact else [],
            "last_event_id": services.events.latest_id(),
            "watch": camera_watch(services) if case.status == "active" else None,
        },
    )
