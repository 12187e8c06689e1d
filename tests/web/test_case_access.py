"""Who may act on a case, against the real server on loopback (uvicorn on 127.0.0.1, plain HTTP
clients with their own logins) and a real SMTP server (aiosmtpd): a second reporter can
neither see nor change the family's case, a reporter lists only its own cases, contact
details are for tellers and above and the filer, a case's sightings (live and retro-search)
are held until a coordinator approves it and sent then, a coordinator's own case is approved
as it is filed, and every approval is in the audit log. Each of these failed on the main
before case ownership and approval existed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from websockets.sync.client import connect

from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import AlertCase, CaseMatch, Notification, Sighting, Subscription
from oneeye.vision.engine import FaceEngine
from tests.conftest import free_port
from tests.services.notify.receivers import MailServer, settings_for
from tests.web.browser import serve
from tests.web.conftest import PASSWORD
from tests.web.helpers import publish, sighting, wait_for

API = "/api/v1"
CASES = f"{API}/cases"
OWNER_ONLY = "only the person who filed this case, a coordinator or an admin may"


@dataclass
class Site:
    """A started server on loopback whose notifier mails the test SMTP server."""

    app: OneEyeApp
    url: str
    mail: MailServer
    clients: list[httpx.Client]

    def client(self, username: str, role: str) -> httpx.Client:
        """A new user ``username`` with ``role``, logged in over HTTP (cookie + CSRF)."""
        self.app.services.auth.create_user(username, PASSWORD, role)
        client = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(client)
        answer = client.post(f"{API}/auth/login", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return client

    def count(self, model: type[Any], *where: Any) -> int:
        with self.app.services.db.session() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int(session.scalar(query) or 0)


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Site]:
    mail = MailServer(free_port())
    mail.start()
    notify = settings_for(smtp_port=mail.port, cooldown=0.0)
    app = OneEyeApp(ServeSettings(data_dir=tmp_path / "data", notify=notify), engine=face_engine)
    app.start()
    clients: list[httpx.Client] = []
    try:
        app.services.cameras.add(
            CameraConfig(id="door", name="Front door", source=str(tmp_path / "none"))
        )
        with serve(app.web) as url:
            yield Site(app, url, mail, clients)
    finally:
        for client in clients:
            client.close()
        app.stop()
        mail.stop()


def file_case(
    client: httpx.Client, face_photos: Path, contact: str = "+15551234567"
) -> dict[str, Any]:
    """File Obama (obama2.jpg) as a case through the API."""
    photo = (face_photos / "obama2.jpg").read_bytes()
    answer = client.post(
        CASES,
        data={"name": "Barack Obama", "description": "grey suit", "contact": contact},
        files=[("photo", ("obama2.jpg", photo, "image/jpeg"))],
    )
    assert answer.status_code == 201, answer.text
    case: dict[str, Any] = answer.json()
    return case


def case_events(url: str, client: httpx.Client) -> list[tuple[str, str]]:
    """``(type, case_id)`` of the case events ``/ws?since=0`` replays to ``client``'s user
    (over a real WebSocket, with its session cookie)."""
    cookie = f"oneeye_session={client.cookies['oneeye_session']}"
    frames = []
    with connect(
        url.replace("http://", "ws://") + "/ws?since=0", additional_headers={"Cookie": cookie}
    ) as socket:
        try:
            while True:
                frames.append(json.loads(socket.recv(timeout=1.0)))
        except TimeoutError:
            pass
    return [(f["type"], f["data"]["case_id"]) for f in frames if "case_id" in f["data"]]


def message(answer: httpx.Response) -> str:
    text: str = answer.json()["error"]["message"]
    return text


def test_a_second_reporter_can_neither_see_nor_change_the_familys_case(
    site: Site, face_photos: Path
) -> None:
    family = site.client("family", "reporter")
    stranger = site.client("stranger", "reporter")
    teller = site.client("tina", "teller")
    case = file_case(family, face_photos)
    hook = family.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "webhook", "address": "https://family.example.org/hook"},
    )
    assert hook.status_code == 201, hook.text
    sub = hook.json()["id"]

    # On main, the stranger listed, deleted and replaced the family's webhook and resolved the
    # case. Now the case does not exist for it: the same 404 as an unknown id.
    attempts = [
        stranger.get(f"{CASES}/{case['id']}"),
        stranger.get(f"{CASES}/{case['id']}/subscriptions"),
        stranger.delete(f"{API}/subscriptions/{sub}"),
        stranger.post(
            f"{CASES}/{case['id']}/subscriptions",
            json={"channel": "email", "address": "stalker@example.org"},
        ),
        stranger.post(f"{CASES}/{case['id']}/resolve"),
    ]
    assert [a.status_code for a in attempts] == [404] * 5, [a.text for a in attempts]
    assert "no case with id" in message(attempts[0])
    assert message(attempts[2]) == f"no subscription with id {sub}"
    assert stranger.get(CASES).json() == []

    # A teller sees the case and who is told, but may not change either: a 403 that says who may.
    assert teller.get(f"{CASES}/{case['id']}/subscriptions").status_code == 200
    refused = [
        teller.delete(f"{API}/subscriptions/{sub}"),
        teller.post(
            f"{CASES}/{case['id']}/subscriptions",
            json={"channel": "email", "address": "tina@example.org"},
        ),
        teller.post(f"{CASES}/{case['id']}/resolve"),
    ]
    assert [a.status_code for a in refused] == [403] * 3, [a.text for a in refused]
    assert f"{OWNER_ONLY} resolve it; you are teller" == message(refused[2])
    assert OWNER_ONLY in message(refused[0])

    # Nothing changed: the family's webhook alone, the case active, the face still looked for.
    with site.app.services.db.session() as session:
        subs = list(session.scalars(select(Subscription)))
        status = session.get(AlertCase, case["id"]).status  # type: ignore[union-attr]
    assert [(s.id, s.address) for s in subs] == [(sub, "https://family.example.org/hook")]
    assert status == "active"
    assert len(site.app.services.gallery) == 1
    # The filer may do all of it.
    assert family.delete(f"{API}/subscriptions/{sub}").status_code == 204
    resolved = family.post(f"{CASES}/{case['id']}/resolve")
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["closed_by"] == "user:family"


def test_a_reporter_lists_only_its_own_cases_and_contacts_are_for_tellers(
    site: Site, face_photos: Path
) -> None:
    alice, bob = site.client("alice", "reporter"), site.client("bob", "reporter")
    viewer, teller = site.client("vic", "viewer"), site.client("tina", "teller")
    mine = file_case(alice, face_photos, contact="+15550000001")
    theirs = file_case(bob, face_photos, contact="+15550000002")
    assert mine["contact"] == "+15550000001"  # the filer sees its own contact details

    assert [c["id"] for c in alice.get(CASES).json()] == [mine["id"]]
    assert [c["id"] for c in bob.get(CASES).json()] == [theirs["id"]]
    assert [c["id"] for c in alice.get(CASES, params={"status": "active"}).json()] == [mine["id"]]
    assert alice.get(f"{CASES}/{theirs['id']}").status_code == 404

    # Viewers see every case, without contact details (on main they got the contact field).
    listed = viewer.get(CASES).json()
    assert {c["id"] for c in listed} == {mine["id"], theirs["id"]}
    assert {(c["contact"], c["reporter"]) for c in listed} == {(None, None)}
    one = viewer.get(f"{CASES}/{mine['id']}").json()
    assert one["contact"] is None
    assert one["reporter"] is None
    assert one["description"] == "grey suit"
    assert viewer.get(f"{CASES}/{mine['id']}/subscriptions").status_code == 403
    page = viewer.get(f"/cases/{mine['id']}")
    assert page.status_code == 200
    assert "+15550000001" not in page.text
    assert "alice" not in page.text

    # Tellers and above see them.
    seen = teller.get(f"{CASES}/{theirs['id']}").json()
    assert (seen["contact"], seen["reporter"]) == ("+15550000002", "user:bob")

    # The dashboards' WebSocket: a reporter hears of its own cases only, a viewer of all.
    assert case_events(site.url, alice) == [("case.created", mine["id"])]
    assert sorted(case_events(site.url, viewer)) == sorted(
        [("case.created", mine["id"]), ("case.created", theirs["id"])]
    )


def test_sightings_are_held_until_a_coordinator_approves_then_sent(
    site: Site, face_photos: Path, face_engine: FaceEngine
) -> None:
    s = site.app.services
    reporter = site.client("rita", "reporter")
    teller = site.client("tina", "teller")
    coordinator = site.client("cora", "coordinator")
    # An unknown face of the person at the door 20 minutes before the case: a retro match.
    photo = (face_photos / "obama2.jpg").read_bytes()
    embedding = face_engine.enrolment_face(s.enrolment.decode_upload(photo, "x.jpg")).embedding
    earlier = datetime.now(UTC) - timedelta(minutes=20)
    publish(site.app, sighting("door", None, earlier, embedding=[float(x) for x in embedding]))
    wait_for(lambda: site.count(Sighting) == 1, "the unknown face to be stored")

    case = file_case(reporter, face_photos)
    assert case["approved"] is False
    assert case["approved_at"] is None
    # Staff see the held match at once; the filer, a reporter, learns only that there is one.
    assert (case["timeline"], case["matches"], case["held_matches"]) == ([], 0, 1)
    staff = teller.get(f"{CASES}/{case['id']}").json()["timeline"]
    assert [(m["kind"], m["held"], m["notified"]) for m in staff] == [("retro", True, False)]
    sub = reporter.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "email", "address": "family@example.org"},
    )
    assert sub.status_code == 201, sub.text
    # Live: the cameras and dashboards know at once; nothing goes outside.
    publish(site.app, sighting("door", case["person_id"], datetime.now(UTC)))
    wait_for(lambda: site.count(CaseMatch) == 2, "the live match")

    def dashboard_alerts() -> list[dict[str, Any]]:
        return [e.payload for e in s.events.since(0, "viewer") if e.type == "alert.sighting"]

    wait_for(lambda: len(dashboard_alerts()) == 2, "both matches on the dashboards")
    assert [(a["kind"], a["held"]) for a in dashboard_alerts()] == [("retro", True), ("live", True)]
    assert site.count(Notification) == 0  # the outbox row would be written with the match
    assert site.mail.handler.messages == []
    assert case_events(site.url, reporter) == [("case.created", case["id"])]
    assert reporter.get(f"{CASES}/{case['id']}").json()["held_matches"] == 2

    # Only coordinators and admins approve; the filer and a teller cannot.
    for who, role in ((reporter, "reporter"), (teller, "teller")):
        refused = who.post(f"{CASES}/{case['id']}/approve")
        assert refused.status_code == 403
        assert message(refused) == f"this needs the coordinator role or above; you are {role}"
    assert s.auth.audit_entries(action="case.approve") == []
    before = datetime.now(UTC)
    approved = coordinator.post(f"{CASES}/{case['id']}/approve")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["approved"] is True
    assert body["approved_by"] == "user:cora"
    assert datetime.fromisoformat(body["approved_at"]) >= before - timedelta(seconds=1)
    again = coordinator.post(f"{CASES}/{case['id']}/approve")
    assert again.status_code == 409
    assert "approved already" in message(again)
    [audit] = s.auth.audit_entries(action="case.approve")
    assert (audit.actor, audit.subject) == ("user:cora", case["id"])
    assert audit.detail == {"held": 2, "released": 2, "notifications": 2}
    assert audit.at >= before - timedelta(seconds=1)

    # The held matches (retro and live) go out now, once each.
    wait_for(lambda: len(site.mail.handler.messages) == 2, "the two held sightings' emails")
    assert [rcpt for _, rcpt in site.mail.handler.envelopes] == [["family@example.org"]] * 2
    released = reporter.get(f"{CASES}/{case['id']}").json()
    assert (released["matches"], released["held_matches"]) == (2, 0)
    assert [(m["kind"], m["held"], m["notified"]) for m in released["timeline"]] == [
        ("retro", False, True),
        ("live", False, True),
    ]
    # A new sighting is sent as it happens.
    publish(site.app, sighting("door", case["person_id"], datetime.now(UTC)))
    wait_for(lambda: len(site.mail.handler.messages) == 3, "the new sighting's email")
    page = reporter.get(f"/cases/{case['id']}").text
    assert 'data-testid="case-approval" data-approved="yes"' in page
    assert "approved" in page
    assert "by cora" in page


def test_a_case_filed_by_a_coordinator_is_approved_as_it_is_filed(
    site: Site, face_photos: Path
) -> None:
    s = site.app.services
    admin = site.client("ada", "admin")
    # The users API takes the new role.
    made = admin.post(
        f"{API}/users", json={"username": "cora", "password": PASSWORD, "role": "coordinator"}
    )
    assert made.status_code == 201, made.text
    coordinator = httpx.Client(base_url=site.url, timeout=30)
    site.clients.append(coordinator)
    login = coordinator.post(f"{API}/auth/login", json={"username": "cora", "password": PASSWORD})
    coordinator.headers["X-CSRF-Token"] = login.json()["csrf_token"]

    case = file_case(coordinator, face_photos)
    assert case["approved"] is True
    assert case["approved_by"] == "user:cora"
    [audit] = s.auth.audit_entries(action="case.approve")
    assert (audit.actor, audit.subject, audit.detail) == (
        "user:cora",
        case["id"],
        {"as_filed": True},
    )
    assert (
        coordinator.post(
            f"{CASES}/{case['id']}/subscriptions",
            json={"channel": "email", "address": "desk@example.org"},
        ).status_code
        == 201
    )
    publish(site.app, sighting("door", case["person_id"], datetime.now(UTC)))
    wait_for(lambda: len(site.mail.handler.messages) == 1, "the sighting's email")
    assert admin.get(f"{CASES}/{case['id']}").json()["can_manage"] is True
    assert file_case(admin, face_photos)["approved"] is True


def sighting_frames(url: str, client: httpx.Client) -> list[dict[str, Any]]:
    """The data of the ``sighting`` frames ``/ws?since=0`` replays to ``client``'s user."""
    cookie = f"oneeye_session={client.cookies['oneeye_session']}"
    frames = []
    with connect(
        url.replace("http://", "ws://") + "/ws?since=0", additional_headers={"Cookie": cookie}
    ) as socket:
        try:
            while True:
                frames.append(json.loads(socket.recv(timeout=1.0)))
        except TimeoutError:
            pass
    return [f["data"] for f in frames if f["type"] == "sighting"]


def seen_at_door(site: Site, person_id: str) -> tuple[str, str]:
    """Publish a sighting of ``person_id`` at the door with a stored snapshot; once it is
    stored (and on the dashboards), its id and its snapshot's URL."""
    name = uuid.uuid4().hex
    key = f"snapshots/door/{name[:2]}/{name}.jpg"
    site.app.services.photos.put(key, b"\xff\xd8 not really a jpeg")
    message = sighting("door", person_id, datetime.now(UTC), snapshot_key=key)
    publish(site.app, message)
    wait_for(
        lambda: site.count(CaseMatch, CaseMatch.sighting_id == message["id"]) == 1,
        "the sighting to be stored as a match",
    )
    wait_for(
        lambda: any(
            e.payload.get("sighting_id") == message["id"]
            for e in site.app.services.events.since(0, "viewer")
            if e.type == "sighting"
        ),
        "the sighting's dashboard event",
    )
    return message["id"], f"{API}/photos/{key}"


def test_the_filer_learns_where_and_when_only_once_the_case_is_approved(
    site: Site, face_photos: Path
) -> None:
    """Issue 11 #29: before approval the filer got the sighting's camera and time from /ws
    ``sighting`` frames, ``/sightings?person=``, ``/sightings/{id}`` and the snapshot."""
    reporter = site.client("rita", "reporter")
    teller = site.client("tina", "teller")
    coordinator = site.client("cora", "coordinator")
    case = file_case(reporter, face_photos)
    person = case["person_id"]
    sid, snapshot = seen_at_door(site, person)

    # Staff see it at once, as before.
    assert [s["id"] for s in teller.get(f"{API}/sightings", params={"person": person}).json()] == [
        sid
    ]
    assert teller.get(snapshot).status_code == 200
    assert [f["sighting_id"] for f in sighting_frames(site.url, teller)] == [sid]

    # The filer: "not found", as for an id that does not exist; no frame, no card.
    assert reporter.get(f"{API}/sightings", params={"person": person}).json() == []
    assert sid not in {s["id"] for s in reporter.get(f"{API}/sightings").json()}
    hidden, unknown = reporter.get(f"{API}/sightings/{sid}"), reporter.get(f"{API}/sightings/x")
    assert (hidden.status_code, unknown.status_code) == (404, 404)
    assert message(hidden) == f"there is no sighting {sid!r}"
    missing = reporter.get(snapshot)
    assert missing.status_code == 404
    assert message(missing) == f"no photo {snapshot.removeprefix(API + '/photos/')!r}"
    assert sighting_frames(site.url, reporter) == []
    assert sid not in reporter.get("/").text
    assert reporter.get(f"{CASES}/{case['id']}").json()["held_matches"] == 1

    # Approved: the filer sees it all.
    assert coordinator.post(f"{CASES}/{case['id']}/approve").status_code == 200
    listed = reporter.get(f"{API}/sightings", params={"person": person}).json()
    assert [(s["id"], s["camera_id"]) for s in listed] == [(sid, "door")]
    assert reporter.get(f"{API}/sightings/{sid}").status_code == 200
    assert reporter.get(snapshot).status_code == 200
    assert [f["sighting_id"] for f in sighting_frames(site.url, reporter)] == [sid]


def test_a_second_reporter_sees_nothing_of_the_familys_case_person(
    site: Site, face_photos: Path
) -> None:
    """Issue 11 #30: another reporter saw the case person in ``/people``, its templates and
    case photo, and its sightings (API and /ws), even after approval."""
    family = site.client("family", "reporter")
    stranger = site.client("stranger", "reporter")
    viewer = site.client("vera", "viewer")
    coordinator = site.client("cora", "coordinator")
    case = file_case(family, face_photos)
    person = case["person_id"]
    assert coordinator.post(f"{CASES}/{case['id']}/approve").status_code == 200
    sid, snapshot = seen_at_door(site, person)
    [photo] = case["photo_urls"]

    # The filer and staff see the person, its photos and its sighting.
    for who in (family, viewer):
        assert person in {p["id"] for p in who.get(f"{API}/people").json()}
        assert who.get(f"{API}/people/{person}").status_code == 200
        [template] = who.get(f"{API}/people/{person}/templates").json()
        assert who.get(template["photo_url"]).status_code == 200
        assert who.get(photo).status_code == 200
        assert [s["id"] for s in who.get(f"{API}/sightings", params={"person": person}).json()] == [
            sid
        ]
        assert [f["sighting_id"] for f in sighting_frames(site.url, who)] == [sid]

    # Another reporter: the person does not exist for it.
    assert stranger.get(f"{API}/people").json() == []
    assert stranger.get(f"{API}/people", params={"watchlist": "amber-alert"}).json() == []
    assert stranger.get(f"{API}/people", params={"q": "obama"}).json() == []
    for path in (f"{API}/people/{person}", f"{API}/people/{person}/templates"):
        answer = stranger.get(path)
        assert answer.status_code == 404
        assert message(answer) == f"no person with id {person!r}"
    assert stranger.get(photo).status_code == 404
    assert stranger.get(f"{API}/sightings", params={"person": person}).json() == []
    assert stranger.get(f"{API}/sightings/{sid}").status_code == 404
    assert stranger.get(snapshot).status_code == 404
    assert sighting_frames(site.url, stranger) == []
    assert sid not in stranger.get("/").text
    # An unknown face is not a case's: the stranger still sees it, as every viewer does.
    unknown = sighting("door", None, datetime.now(UTC))
    publish(site.app, unknown)
    wait_for(lambda: site.count(Sighting, Sighting.id == unknown["id"]) == 1, "the unknown face")
    assert [s["id"] for s in stranger.get(f"{API}/sightings").json()] == [unknown["id"]]


def test_a_revised_sighting_of_a_case_person_stays_hidden_from_another_reporter(
    site: Site, face_photos: Path
) -> None:
    """Issue 12, bug 3's revision must not leak what issue 11 #30 hid: a sighting once decided
    to be a case's person, then revised to an unknown face, is still that person's for a
    reporter who may not know of them (list, id, /ws replay, dashboard)."""
    family = site.client("family", "reporter")
    stranger = site.client("stranger", "reporter")
    teller = site.client("tina", "teller")
    case = file_case(family, face_photos)
    person = case["person_id"]
    sid, _ = seen_at_door(site, person)
    first = sighting("door", person, datetime.now(UTC), id=sid)
    update = {**first, "event": "sighting_update", "person": None, "watchlist": None}
    publish(site.app, update)
    wait_for(
        lambda: any(
            e.type == "sighting.revised" for e in site.app.services.events.since(0, "viewer")
        ),
        "the revision's dashboard event",
    )
    # Staff see it under the person, revised.
    [row] = teller.get(f"{API}/sightings", params={"person": person}).json()
    assert (row["id"], row["revised"], row["person_id"]) == (sid, True, None)
    # The other reporter: nothing, although it is an unknown face now.
    assert sid not in {s["id"] for s in stranger.get(f"{API}/sightings").json()}
    assert stranger.get(f"{API}/sightings", params={"unknown": True}).json() == []
    assert stranger.get(f"{API}/sightings/{sid}").status_code == 404
    cookie = f"oneeye_session={stranger.cookies['oneeye_session']}"
    frames = []
    with connect(
        site.url.replace("http://", "ws://") + "/ws?since=0", additional_headers={"Cookie": cookie}
    ) as socket:
        try:
            while True:
                frames.append(json.loads(socket.recv(timeout=1.0)))
        except TimeoutError:
            pass
    assert [f for f in frames if f["data"].get("sighting_id") == sid] == []
    assert sid not in stranger.get("/").text
