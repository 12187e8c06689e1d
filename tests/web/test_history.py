"""The sightings history through the web: ``/api/v1/sightings?person=`` after a revision
(issue 12, bug 3), the ``/history`` and ``/people/{id}`` pages with their filters and paging,
the CSV export, who may see them, the audit rows, and the revised card on the dashboard."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.events import HubEvent
from oneeye.services.history import EXPORT_MAX_ROWS, PAGE_SIZE, HistoryQuery, export
from oneeye.store.models import Person, SightingDecision, Watchlist, new_id
from oneeye.web.pages.dashboard import ArrivalCard, arrival_cards
from tests.web.conftest import PASSWORD, login
from tests.web.helpers import publish, sighting, wait_for

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
"""Sightings are near now: the server refuses times far from its clock."""

PageClient = Callable[[str], TestClient]


@pytest.fixture
def page_client(server: OneEyeApp) -> Iterator[PageClient]:
    """``page_client("teller")``: a browser-like client with a session cookie."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        name = f"page-{role}-{len(clients)}"
        server.services.auth.create_user(name, PASSWORD, role)
        session = server.services.auth.login(name, PASSWORD)
        client = TestClient(server.web, follow_redirects=False)
        client.cookies.set("oneeye_session", session.token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def add_person(server: OneEyeApp, name: str, watchlist: str = "customers") -> str:
    person = new_id()
    with server.services.db.session() as session:
        listed = session.query(Watchlist).filter_by(name=watchlist).one()
        session.add(Person(id=person, name=name, watchlists=[listed]))
    return person


def stored_count(server: OneEyeApp) -> int:
    return len(server.services.sighting_queries.query(limit=1000))


def send_all(server: OneEyeApp, messages: list[dict[str, Any]]) -> None:
    """Publish sightings (and updates) as the cameras would, and wait until all are stored."""
    before = stored_count(server)
    new = sum(1 for m in messages if m["event"] == "sighting")
    for message in messages:
        publish(server, message)
    wait_for(lambda: stored_count(server) >= before + new, "the sightings to be stored")
    server.services.bus.stop()  # drain: updates come after their sighting
    server.services.bus.start()


def revised_to_unknown(server: OneEyeApp, person: str) -> str:
    """Issue 12's case: shown as ``person`` (0.309), then updated to unknown (0.346)."""
    first = sighting("door", person, T0, watchlist="customers", distance=0.309)
    update = {
        **first,
        "event": "sighting_update",
        "person": None,
        "watchlist": None,
        "distance": 0.346,
        "seen_at": (T0 + timedelta(seconds=3)).isoformat(),
    }
    send_all(server, [first, update])

    def revised() -> bool:
        view = server.services.sighting_queries.get(first["id"])
        return view is not None and view.revised

    wait_for(revised, "the revision to be stored")
    return str(first["id"])


def history_ids(html: str) -> list[str]:
    return re.findall(r'data-testid="history-row" data-sighting-id="([0-9a-f]+)"', html)


def test_the_history_by_person_returns_what_tellers_saw(
    server_any_db: OneEyeApp,
) -> None:
    # Issue 12, bug 3: on d82f336 the update rewrote the row and this list was empty.
    server = server_any_db
    person = add_person(server, "Lin-Manuel Miranda")
    sid = revised_to_unknown(server, person)
    server.services.auth.create_user("tess", PASSWORD, "teller")
    with TestClient(server.web) as client:
        login(client, "tess")
        response = client.get("/api/v1/sightings", params={"person": person})
        assert response.status_code == 200, response.text
        found = response.json()
        assert [row["id"] for row in found] == [sid]
        row = found[0]
        assert row["revised"] is True
        assert row["person_id"] is None
        trail = [(d["person_name"], d["distance"]) for d in row["decisions"]]
        assert trail == [("Lin-Manuel Miranda", pytest.approx(0.309)), (None, 0.346)]
        assert datetime.fromisoformat(row["decisions"][1]["decided_at"]) == T0 + timedelta(
            seconds=3
        )
        assert client.get("/api/v1/sightings", params={"unknown": True}).json()[0]["id"] == sid
    kinds = [e.type for e in server.services.events.since(0, "viewer")]
    assert [k for k in kinds if k.startswith("sighting")] == ["sighting", "sighting.revised"]


def test_history_page_filters_pages_and_links_the_person(
    server: OneEyeApp, page_client: PageClient
) -> None:
    obama = add_person(server, "Barack Obama")
    biden = add_person(server, "Joe Biden", "amber-alert")
    at = [T0 + timedelta(minutes=m) for m in range(4)]
    messages = [
        sighting("door", obama, at[0], watchlist="customers"),
        sighting("back", None, at[1]),
        sighting("back", biden, at[2]),
        sighting("door", None, at[3]),
    ]
    send_all(server, messages)
    ids = [str(m["id"]) for m in messages]
    teller = page_client("teller")

    def shown(**params: Any) -> list[str]:
        response = teller.get("/history", params=params)
        assert response.status_code == 200, response.text
        return history_ids(response.text)

    assert shown() == ids[::-1]
    assert shown(person=obama) == [ids[0]]
    assert shown(camera="back") == [ids[2], ids[1]]
    assert shown(watchlist="amber-alert") == [ids[2]]
    assert shown(unknown="true") == [ids[3], ids[1]]
    day = T0.date().isoformat()
    assert (
        shown(since=day, until=day, person="")
        == [  # blank fields mean "any"
            i for i, when in zip(ids, at, strict=True) if when.date() == T0.date()
        ][::-1]
    )
    assert shown(until=(T0.date() - timedelta(days=1)).isoformat()) == []
    page = teller.get("/history").text
    assert f'href="/people/{obama}"' in page
    assert "/api/v1/photos/snapshots/" not in page or 'data-testid="history-snapshot"' in page
    bad = teller.get("/history", params={"person": "not-an-id"})
    assert bad.status_code == 400
    assert "person" in bad.text

    person_page = teller.get(f"/people/{obama}")
    assert person_page.status_code == 200
    assert history_ids(person_page.text) == [ids[0]]
    assert "Barack Obama" in person_page.text
    assert teller.get(f"/people/{new_id()}").status_code == 404


def test_history_pages_by_keyset_at_most_page_size(
    server: OneEyeApp, page_client: PageClient
) -> None:
    messages = [
        sighting("door", None, T0 + timedelta(seconds=i), track=i) for i in range(PAGE_SIZE + 3)
    ]
    send_all(server, messages)
    teller = page_client("teller")
    first = teller.get("/history")
    ids = history_ids(first.text)
    assert len(ids) == PAGE_SIZE
    older = re.search(r'href="([^"]+)" data-testid="history-older"', first.text)
    assert older is not None
    second = teller.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    rest = history_ids(second.text)
    assert len(rest) == 3
    newest_first = [str(m["id"]) for m in reversed(messages)]
    assert ids + rest == newest_first
    assert 'data-testid="history-older"' not in second.text
    assert teller.get("/history", params={"after": "yesterday~x"}).status_code == 400


def test_a_revised_sighting_shows_its_trail_under_both_decisions(
    server: OneEyeApp, page_client: PageClient
) -> None:
    person = add_person(server, "Lin-Manuel Miranda")
    sid = revised_to_unknown(server, person)
    teller = page_client("teller")
    for path in (f"/people/{person}", "/history?unknown=true"):
        html = teller.get(path).text
        assert history_ids(html) == [sid], path
        assert 'data-testid="history-revised"' in html
        assert html.count('data-testid="history-decision"') == 2
        assert "(0.309)" in html
        assert "(0.346)" in html


def test_csv_export_has_the_filtered_rows_and_is_audited(
    server: OneEyeApp, page_client: PageClient
) -> None:
    obama = add_person(server, "=HYPERLINK(evil)")
    messages = [
        sighting("door", obama, T0, watchlist="customers", distance=0.3),
        sighting("back", None, T0 + timedelta(minutes=1)),
    ]
    send_all(server, messages)
    teller = page_client("teller")
    with teller.stream("GET", "/api/v1/sightings/export.csv", params={"person": obama}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        text = r.read().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["sighting_id"] for row in rows] == [messages[0]["id"]]
    assert rows[0]["person_name"] == "'=HYPERLINK(evil)"  # never a live formula
    assert rows[0]["distance"] == "0.3000"
    assert rows[0]["revised"] == "no"
    everything = teller.get("/api/v1/sightings/export.csv").text
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 2
    entries = server.services.auth.audit_entries(10, "sighting.export")
    assert [e.subject for e in entries] == ["*", obama]
    assert entries[1].detail == {"person": obama, "max_rows": EXPORT_MAX_ROWS}


def test_csv_export_stops_at_its_row_limit(server: OneEyeApp) -> None:
    messages = [sighting("door", None, T0 + timedelta(seconds=i), track=i) for i in range(7)]
    send_all(server, messages)
    found = list(export(server.services.sighting_queries, HistoryQuery(), max_rows=5))
    assert [v.sighting.id for v in found] == [str(m["id"]) for m in reversed(messages)][:5]


def test_history_page_view_is_audited(server: OneEyeApp, page_client: PageClient) -> None:
    person = add_person(server, "Barack Obama")
    message = sighting("door", person, T0, watchlist="customers")
    send_all(server, [message])
    teller = page_client("teller")
    assert teller.get(f"/people/{person}").status_code == 200
    entries = server.services.auth.audit_entries(10, "sighting.history")
    assert len(entries) == 1
    assert entries[0].subject == person
    assert entries[0].detail["sighting_ids"] == [message["id"]]


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_history_and_csv_are_403_below_teller(
    server: OneEyeApp, page_client: PageClient, role: str
) -> None:
    person = add_person(server, "Barack Obama")
    client = page_client(role)
    assert client.get("/history").status_code == 403
    assert client.get(f"/people/{person}").status_code == 403
    assert 'data-testid="nav-history"' not in client.get("/").text
    server.services.auth.create_user(f"api-{role}", PASSWORD, role)
    with TestClient(server.web) as api:
        login(api, f"api-{role}")
        assert api.get("/api/v1/sightings/export.csv").status_code == 403
    assert server.services.auth.audit_entries(10, "sighting.export") == []


def test_anonymous_history_goes_to_login(server: OneEyeApp) -> None:
    with TestClient(server.web, follow_redirects=False) as anonymous:
        assert anonymous.get("/history").status_code in (302, 303)
        assert anonymous.get("/api/v1/sightings/export.csv").status_code == 401


def test_the_dashboard_withdraws_a_revised_card_on_reload(
    server: OneEyeApp, page_client: PageClient
) -> None:
    person = add_person(server, "Lin-Manuel Miranda")
    sid = revised_to_unknown(server, person)
    html = page_client("teller").get("/").text
    card = re.search(
        rf'<article class="([^"]*)"\s+data-testid="arrival-card" data-sighting-id="{sid}"', html
    )
    assert card is not None
    assert "revised" in card.group(1)
    assert "unknown" in card.group(1)
    assert "Withdrawn: first shown as Lin-Manuel Miranda" in html


def test_erasing_a_person_removes_the_sightings_once_shown_as_them(server: OneEyeApp) -> None:
    person = add_person(server, "Lin-Manuel Miranda")
    sid = revised_to_unknown(server, person)
    other = sighting("back", None, T0 + timedelta(minutes=5), track=9)
    send_all(server, [other])
    report = server.services.privacy.erase(person, actor="user:admin")
    assert report.sightings == 1
    assert server.services.sighting_queries.get(sid) is None
    assert server.services.sighting_queries.get(str(other["id"])) is not None
    with server.services.db.session() as session:
        assert session.query(SightingDecision).count() == 0


def test_dashboard_cards_follow_revisions_and_ignore_a_late_card_of_the_earlier_person() -> None:
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    sid = new_id()
    a, b = new_id(), new_id()
    seen = {"sighting_id": sid, "camera_id": "door", "seen_at": at.isoformat()}
    shown_a = {**seen, "person_id": a, "person_name": "A", "watchlist": "customers"}
    card_a = {**shown_a, "account": {"account_id": "ACC-A", "name": "A"}}
    to_unknown = {
        **seen,
        "person_id": None,
        "person_name": None,
        "watchlist": None,
        "previous": {"person_id": a, "person_name": "A", "watchlist": "customers"},
    }
    to_b = {**to_unknown, "person_id": b, "person_name": "B", "watchlist": "customers"}
    card_b = {**seen, "person_id": b, "person_name": "B", "account": {"account_id": "ACC-B"}}

    def cards(*events: tuple[str, dict[str, Any]]) -> list[ArrivalCard]:
        hub = [HubEvent(i + 1, kind, at, "viewer", data) for i, (kind, data) in enumerate(events)]
        return arrival_cards(hub, can_see_accounts=True)

    [withdrawn] = cards(
        ("sighting", shown_a), ("sighting.revised", to_unknown), ("customer.arrived", card_a)
    )
    assert (withdrawn.person_id, withdrawn.account, withdrawn.revised_from) == (None, None, "A")
    [revised] = cards(
        ("customer.arrived", card_a),
        ("sighting", shown_a),
        ("sighting.revised", to_b),
        ("customer.arrived", card_b),
    )
    assert (revised.person_name, revised.revised_from) == ("B", "A")
    assert revised.account == {"account_id": "ACC-B"}
