"""``/``: the dashboard. Arrivals as cards, newest first, under a heading per day (Today,
Yesterday, the date; the browser redraws them in its own time zone), older ones loaded as the
teller scrolls (``/api/v1/arrivals``); a missing person's card stands apart from a customer's;
which cameras are looking (a warning when none is), the cameras with their live view, and a
banner for each active Amber Alert case seen lately. An empty dashboard shows the first steps
the user's role may take. The first render comes from the stored dashboard events; after it
the page changes only through ``/ws``. Account details (address, balance) are shown only to
``teller`` and above, and each render that shows them is written to the audit log. The
favicon is ``/favicon.ico`` (an SVG).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from oneeye.services.auth import Principal
from oneeye.services.context import Services
from oneeye.services.events import ARRIVAL_EVENTS, HubEvent
from oneeye.services.sightings import REVISED_EVENT
from oneeye.web.deps import ServicesDep, ViewerPage, audit_access
from oneeye.web.pages.cameras import camera_tiles
from oneeye.web.pages.cases import TimelineEntry, alert_banners, alert_service, camera_watch
from oneeye.web.pages.render import format_money, render

router = APIRouter(include_in_schema=False)

RECENT_EVENTS = 300
"""How many of the newest dashboard events the first render of the dashboard looks at."""
MAX_CARDS = 60
"""How many arrival cards the dashboard opens with (the JavaScript client keeps the same bound
for live cards until the user scrolls to older ones)."""
ARRIVAL_TYPES = ARRIVAL_EVENTS
WITHDRAWN = "sighting.withdrawn"
"""A match rejected by a teller or coordinator (``services.feedback``): its card goes."""


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
    confirmed: bool = False
    """A teller or coordinator said the match is right ("It is them")."""
    revised_from: str | None = None
    """Set when the decision shown first was revised: who the card first said it was."""

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
            "revised": self.revised_from is not None,
            "revised_from": self.revised_from,
            "confirmed": self.confirmed,
        }

    def revise(self, event_id: int, data: dict[str, Any]) -> None:
        """Take a revised decision: who it is now (perhaps nobody known), and no account
        card any more (it was the earlier person's; the new person's comes as its own
        event)."""
        self.event_id = max(self.event_id, event_id)
        for name in ("person_id", "person_name", "watchlist"):
            setattr(self, name, data.get(name))
        self.account = self.account_error = None
        if self.revised_from is None:
            previous = data.get("previous") or {}
            self.revised_from = str(previous.get("person_name") or "an unknown face")

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


def arrival_cards(events: list[HubEvent], can_see_accounts: bool) -> list[ArrivalCard]:
    """One card per visit (keyed by sighting id), newest first; account details kept only
    when the viewer may see them."""
    cards: dict[str, ArrivalCard] = {}
    withdrawn: set[str] = set()
    for event in sorted(events, key=lambda e: e.id):
        if event.type == WITHDRAWN:
            gone = str(event.payload.get("sighting_id") or "")
            withdrawn.add(gone)
            cards.pop(gone, None)
            continue
        if event.type not in ARRIVAL_TYPES:
            continue
        data = dict(event.payload)
        sighting_id = str(data.get("sighting_id") or data.get("id") or "")
        if not sighting_id or sighting_id in withdrawn:
            continue
        if not can_see_accounts:
            data.pop("account", None)
            data.pop("account_error", None)
        card = cards.get(sighting_id)
        if card is None:
            card = cards[sighting_id] = ArrivalCard(sighting_id=sighting_id, event_id=event.id)
        if event.type == REVISED_EVENT:
            card.revise(event.id, data)
        elif card.revised_from is None or data.get("person_id", card.person_id) == card.person_id:
            # (an event about a decision since revised, e.g. a card looked up late, is stale)
            card.merge(event.id, data)
    newest = sorted(cards.values(), key=lambda c: (c.seen_at, c.event_id), reverse=True)
    return newest[:MAX_CARDS]


@dataclass(frozen=True, slots=True)
class DayOfArrivals:
    """The cards of one day (UTC) under their heading."""

    day: str
    """``YYYY-MM-DD``; ``""`` for cards without a time."""
    label: str
    cards: list[ArrivalCard]


def day_label(day: date, today: date) -> str:
    """``Today``, ``Yesterday``, or the date in words (``Tuesday 1 December 2026``)."""
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return f"{day:%A} {day.day} {day:%B %Y}"


def by_day(cards: list[ArrivalCard], today: date) -> list[DayOfArrivals]:
    """``cards`` (newest first) under one heading per day, in the same order."""
    days: list[DayOfArrivals] = []
    for card in cards:
        key = card.seen_at[:10]
        try:
            label = day_label(date.fromisoformat(key), today)
        except ValueError:
            key, label = "", "Time unknown"
        if not days or days[-1].day != key:
            days.append(DayOfArrivals(key, label, []))
        days[-1].cards.append(card)
    return days


def older_cursor(events: list[HubEvent], cards: list[ArrivalCard], last_id: int) -> int | None:
    """Where ``/api/v1/arrivals`` starts for the cards older than ``cards``: the oldest event
    of a card shown; ``None`` when every stored event was looked at and every card shown."""
    if last_id <= RECENT_EVENTS and len(cards) < MAX_CARDS:
        return None
    shown = {card.sighting_id for card in cards}
    ids = [
        e.id
        for e in events
        if e.type in ARRIVAL_TYPES
        and str(e.payload.get("sighting_id") or e.payload.get("id") or "") in shown
    ]
    return min(ids, default=max(1, last_id - RECENT_EVENTS + 1))


@dataclass(frozen=True, slots=True)
class FirstStep:
    """A link an empty dashboard offers."""

    testid: str
    href: str
    text: str


def first_steps(principal: Principal) -> list[FirstStep]:
    """What a new site needs done, as far as ``principal``'s role may do it."""
    steps = []
    if principal.allows("admin"):
        steps += [
            FirstStep("step-customers", "/admin/customers", "Enrol your customers"),
            FirstStep("step-cameras", "/admin/cameras", "Add a camera"),
        ]
    if principal.allows("reporter"):
        steps.append(FirstStep("step-report", "/report", "File a missing-person case"))
    steps.append(FirstStep("step-cases", "/cases", "See the cases"))
    return steps


def without_rejected(services: Services, banners: list[TimelineEntry]) -> list[TimelineEntry]:
    """The Amber Alert banners but those whose sighting a coordinator rejected."""
    rejected = {
        sighting for sighting, _ in services.feedback.rejected([b.sighting_id for b in banners])
    }
    return [b for b in banners if b.sighting_id not in rejected]


def judge_role(principal: Principal) -> str:
    """Which arrival cards the page offers "It is them" / "Not them" on: ``coordinator``
    (every match), ``teller`` (customers' arrivals) or ``""`` (none); the API checks again."""
    for role in ("coordinator", "teller"):
        if principal.allows(role):
            return role
    return ""


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


@router.get("/", response_class=HTMLResponse)
def dashboard_page(request: Request, services: ServicesDep, principal: ViewerPage) -> Response:
    """Arrivals as cards, newest first, and the cameras with their live view; above them a
    banner for each active case seen lately."""
    can_see_accounts = principal.allows("teller")
    events, last_id = recent_events(services, principal.role)
    alerts = alert_service(request, services)
    scope = alerts.scope_of(principal) if alerts is not None else None
    if scope is not None:  # a reporter: no card for a sighting it may not know of
        events = [
            e
            for e in events
            if e.type not in ARRIVAL_TYPES
            or all(
                scope.sighting_visible(
                    str(e.payload.get("sighting_id") or e.payload.get("id") or ""), person
                )
                for person in (
                    e.payload.get("person_id"),
                    (e.payload.get("previous") or {}).get("person_id"),
                )
            )
        ]
    cards = arrival_cards(events, can_see_accounts)
    # A rejection older than the events looked at still hides its card.
    judged = [c.sighting_id for c in cards if c.person_id]
    rejected = services.feedback.rejected(judged)
    cards = [c for c in cards if (c.sighting_id, c.person_id) not in rejected]
    confirmed = services.feedback.confirmed(judged)
    for card in cards:
        card.confirmed = (card.sighting_id, card.person_id) in confirmed
    today = datetime.now(UTC).date()
    if can_see_accounts:
        audit_account_views(services, principal, request, cards)
    return render(
        request,
        "dashboard.html",
        principal,
        {
            "cards": cards,
            "days": by_day(cards, today),
            "older_before": older_cursor(events, cards, last_id),
            "first_steps": first_steps(principal),
            "initial_cards": [card.as_json() for card in cards],
            "cameras": camera_tiles(services),
            "last_event_id": last_id,
            "can_see_accounts": can_see_accounts,
            "money": format_money,
            "max_cards": MAX_CARDS,
            "banners": without_rejected(services, alert_banners(alerts, principal)),
            "watch": camera_watch(services),
            "judge": judge_role(principal),
        },
    )


FAVICON = Path(__file__).parent.with_name("static") / "favicon.svg"


@router.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers ask for (an SVG: one eye); the pages also link it."""
    return FileResponse(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )
