"""The dashboard's arrivals (issue 12, section 4) through a TestClient: cards newest first under
a heading per day, a missing person's card labelled apart, the first steps on an empty
dashboard per role, the favicon, and ``/api/v1/arrivals``: older events a page at a time,
role-checked, size-limited and audited like the page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.store.models import new_id
from oneeye.web.pages.dashboard import MAX_CARDS, day_label
from oneeye.web.routes.arrivals import MAX_PAGE
from tests.web.conftest import ClientFor
from tests.web.helpers import alerts_of

API = "/api/v1/arrivals"


def visit(
    app: OneEyeApp,
    name: str,
    seen_at: datetime,
    *,
    watchlist: str = "customers",
    person_id: str | None = None,
    account: bool = True,
) -> str:
    """A visit as the sightings service announces it: a ``sighting`` for everyone and, for a
    customer, a ``customer.arrived`` with the account for tellers. Returns the sighting id."""
    sighting_id = new_id()
    data: dict[str, Any] = {
        "sighting_id": sighting_id,
        "camera_id": "front-door",
        "camera_name": "Front door",
        "person_id": person_id or new_id(),
        "person_name": name,
        "watchlist": watchlist,
        "distance": 0.31,
        "seen_at": seen_at.isoformat(),
        "snapshot_url": None,
    }
    events = app.services.events
    events.publish("sighting", data, "viewer")
    if account:
        details = {"account_id": f"ACC-{name[:3].upper()}", "name": name, "balance": "10.00"}
        events.publish("customer.arrived", {**data, "account": details}, "teller")
    return sighting_id


def cards_in(html: str) -> list[str]:
    return re.findall(r'data-testid="arrival-card" data-sighting-id="([0-9a-f]+)"', html)


def headings_in(html: str) -> list[str]:
    return re.findall(r'data-testid="day-heading" data-day="[0-9-]*">([^<]+)<', html)


def test_day_labels() -> None:
    today = date(2026, 12, 4)
    assert day_label(today, today) == "Today"
    assert day_label(date(2026, 12, 3), today) == "Yesterday"
    assert day_label(date(2026, 12, 1), today) == "Tuesday 1 December 2026"


def test_arrivals_read_newest_first_under_a_heading_per_day(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    now = datetime.now(UTC).replace(hour=12, minute=0)
    three_days_ago = now - timedelta(days=3)
    old = visit(server, "Ada Old", three_days_ago)
    yesterday = visit(server, "Yuri Yesterday", now - timedelta(days=1))
    morning = visit(server, "Mona Morning", now - timedelta(hours=2))
    noon = visit(server, "Nora Noon", now)
    html = client_for("viewer").get("/").text
    assert cards_in(html) == [noon, morning, yesterday, old]
    assert headings_in(html) == ["Today", "Yesterday", day_label(three_days_ago.date(), now.date())]
    assert html.index("Nora Noon") < html.index("Yesterday") < html.index("Yuri Yesterday")


def test_a_missing_person_card_is_labelled_and_styled_apart(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    now = datetime.now(UTC)
    missing = visit(server, "Barack Obama", now, watchlist="amber-alert", account=False)
    customer = visit(server, "Joe Biden", now - timedelta(minutes=1))
    html = client_for("teller").get("/").text
    pattern = (
        r'<article class="([^"]*)"\s+data-testid="arrival-card" data-sighting-id="([0-9a-f]+)"'
    )
    cards = {sid: classes for classes, sid in re.findall(pattern, html)}
    assert "missing" in cards[missing].split()
    assert "missing" not in cards[customer].split()
    assert html.count('data-testid="card-kind">Missing person<') == 1
    assert 'data-watchlist="amber-alert"' in html


@pytest.mark.parametrize(
    ("role", "steps"),
    [
        ("viewer", ["step-cases"]),
        ("reporter", ["step-report", "step-cases"]),
        ("teller", ["step-report", "step-cases"]),
        ("admin", ["step-customers", "step-cameras", "step-report", "step-cases"]),
    ],
)
def test_an_empty_dashboard_shows_the_first_steps_of_the_role(
    client_for: ClientFor, role: str, steps: list[str]
) -> None:
    html = client_for(role).get("/").text
    block = html[html.index('data-testid="no-arrivals"') :]
    block = block[: block.index("</div>")]
    assert "hidden" not in block.split(">", 1)[0]
    assert re.findall(r'data-testid="(step-[a-z]+)"', block) == steps
    assert 'data-testid="load-older"' not in html or 'data-testid="older" hidden' in html


def test_the_favicon_is_an_svg_for_everyone(server: OneEyeApp, client_for: ClientFor) -> None:
    with TestClient(server.web) as anonymous:
        icon = anonymous.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    assert "<script" not in icon.text
    assert '<link rel="icon" href="/favicon.ico"' in client_for("viewer").get("/").text


def test_older_arrivals_come_a_page_at_a_time_until_none_is_left(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    start = datetime.now(UTC) - timedelta(days=2)
    visits = [
        visit(server, f"Person {i}", start + timedelta(minutes=i)) for i in range(MAX_CARDS + 8)
    ]
    teller = client_for("teller")
    html = teller.get("/").text
    shown = cards_in(html)
    assert shown == visits[::-1][:MAX_CARDS]
    before = re.search(r'data-testid="load-older" data-before="(\d+)"', html)
    assert before is not None, "the page says where older arrivals start"

    seen: set[str] = set()
    cursor: int | None = int(before.group(1))
    pages = 0
    while cursor is not None:
        page = teller.get(API, params={"before": cursor, "limit": 5}).json()
        assert len(page["events"]) <= 5
        ids = [e["id"] for e in page["events"]]
        assert ids == sorted(ids, reverse=True)
        assert all(i < cursor for i in ids)
        seen |= {e["data"]["sighting_id"] for e in page["events"]}
        cursor = page["before"]
        pages += 1
        assert pages < 20
    assert set(visits) - set(shown) <= seen, "every visit not on the page comes in a page"
    types = {
        e["type"] for e in teller.get(API, params={"before": 10**6, "limit": 4}).json()["events"]
    }
    assert types == {"sighting", "customer.arrived"}
    views = server.services.auth.audit_entries(action="account.view")
    assert any((v.detail or {}).get("via") == "dashboard.older" for v in views)


def test_older_arrivals_are_role_checked_and_size_limited(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    customer = visit(server, "Joe Biden", datetime.now(UTC))
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = alerts_of(server).create_case(
        "Barack Obama", "", "+15551234567", [(photo, "obama2.jpg")], actor="user:rita"
    )
    missing = visit(
        server,
        "Barack Obama",
        datetime.now(UTC),
        watchlist="amber-alert",
        person_id=case.person_id,
        account=False,
    )
    with client_for("viewer") as viewer:
        page = viewer.get(API, params={"before": 10**6}).json()
        assert {e["type"] for e in page["events"]} == {"sighting"}, "no account for a viewer"
        assert {e["data"]["sighting_id"] for e in page["events"]} == {customer, missing}
        assert viewer.get(API, params={"before": 1, "limit": MAX_PAGE + 1}).status_code == 422
        assert viewer.get(API, params={"before": 0}).status_code == 422
        assert viewer.get(API).status_code == 422
    reporter = client_for("reporter").get(API, params={"before": 10**6}).json()
    assert {e["data"]["sighting_id"] for e in reporter["events"]} == {customer}, (
        "a reporter does not learn where another's case's person was seen"
    )
    assert server.services.auth.audit_entries(action="account.view") == []
    with TestClient(server.web) as anonymous:
        assert anonymous.get(API, params={"before": 10}).status_code == 401


def test_older_arrivals_carry_revisions_so_a_card_is_never_shown_unrevised(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    sighting_id = visit(server, "Lin-Manuel Miranda", datetime.now(UTC), account=False)
    revised = {
        "sighting_id": sighting_id,
        "person_id": None,
        "person_name": None,
        "watchlist": None,
        "previous": {"person_name": "Lin-Manuel Miranda"},
    }
    server.services.events.publish("sighting.revised", revised, "viewer")
    page = client_for("viewer").get(API, params={"before": 10**6}).json()
    assert [e["type"] for e in page["events"]] == ["sighting.revised", "sighting"]
