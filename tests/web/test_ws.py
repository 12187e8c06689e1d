"""The dashboard WebSocket end to end: a labelled clip of real photos played into a camera of a
running server gives exactly one stored sighting and one ``customer.arrived`` card (from the
``customer_accounts`` table) on a teller's socket, nothing with account details on a
viewer's, an audit row per delivery; a client that reconnects with ``since`` gets what it
missed; no credentials, a bad key or a foreign origin is refused."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from oneeye.app import OneEyeApp
from oneeye.bus.base import SIGHTINGS
from oneeye.services.events import HubEvent
from oneeye.store.models import CustomerAccount, new_id, utcnow
from oneeye.vision.engine import FaceEngine
from oneeye.web import ws as ws_module
from tests.bus.helpers import Note
from tests.conftest import PhotoLoader
from tests.services.helpers import LabelledClip, enrol_customer, make_clip
from tests.web.conftest import ClientFor
from tests.web.helpers import ensure_camera

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, load_photo: PhotoLoader
) -> LabelledClip:
    return make_clip(tmp_path_factory.mktemp("wsclip"), face_engine, load_photo)


def add_account(server: OneEyeApp) -> None:
    with server.services.db.session() as session:
        session.add(
            CustomerAccount(
                account_id="ACC-1",
                name="Barack Obama",
                account_type="premier checking",
                address="1600 Pennsylvania Ave NW, Washington",
                balance=Decimal("1520.40"),
                currency="USD",
                profile_photo_key="customers/ab/abcdef.jpg",
            )
        )


def frames_until(socket: WebSocketTestSession, last: str, **match: Any) -> list[dict[str, Any]]:
    """Frames received up to and including the first of type ``last`` whose data has
    ``match``."""
    got: list[dict[str, Any]] = []
    while True:
        frame = socket.receive_json()
        got.append(frame)
        data = frame["data"]
        if frame["type"] == last and all(data.get(k) == v for k, v in match.items()):
            return got


def test_a_customer_walking_in_reaches_tellers_once_and_viewers_without_details(
    server: OneEyeApp,
    client_for: ClientFor,
    clip: LabelledClip,
    face_engine: FaceEngine,
    load_photo: PhotoLoader,
) -> None:
    s = server.services
    customer = enrol_customer(s.db, s.gallery, face_engine, load_photo)
    add_account(server)
    teller, viewer, admin = client_for("teller"), client_for("viewer"), client_for("admin")
    since = f"/ws?since={s.events.latest_id()}"  # nothing is missed while subscribing
    with teller.websocket_connect(since) as teller_ws, viewer.websocket_connect(since) as viewer_ws:
        response = admin.post(
            "/api/v1/cameras",
            json={
                "id": "door",
                "name": "Front door",
                "source": str(clip.path),
                "pace": False,
                "min_face_px": 80,
            },
        )
        assert response.status_code == 201, response.text
        ended = {"camera_id": "door", "state": "ended", "error": "the video ended"}
        for_teller = frames_until(teller_ws, "camera.status", **ended)
        for_viewer = frames_until(viewer_ws, "camera.status", **ended)

    arrivals = [f for f in for_teller if f["type"] == "customer.arrived"]
    assert len(arrivals) == 1, [f["type"] for f in for_teller]
    card = arrivals[0]["data"]
    assert card["person_id"] == customer.person_id
    assert card["person_name"] == "Barack Obama"
    assert card["camera_id"] == "door"
    assert card["camera_name"] == "Front door"
    assert card["snapshot_url"].startswith("/api/v1/photos/snapshots/")
    assert card["account"] == {
        "account_id": "ACC-1",
        "name": "Barack Obama",
        "account_type": "premier checking",
        "address": "1600 Pennsylvania Ave NW, Washington",
        "balance": "1520.40",
        "currency": "USD",
        "profile_photo_url": "/api/v1/photos/customers/ab/abcdef.jpg",
    }
    ids = [f["id"] for f in for_teller]
    assert ids == sorted(ids)

    assert not [f for f in for_viewer if f["type"] == "customer.arrived"]
    assert "balance" not in str(for_viewer)
    named = [f["data"] for f in for_viewer if f["type"] == "sighting" and f["data"]["person_id"]]
    assert [d["sighting_id"] for d in named] == [card["sighting_id"]]

    # Exactly one sighting of the customer is stored, the one the card names.
    stored = admin.get("/api/v1/sightings", params={"person": customer.person_id}).json()
    assert [row["id"] for row in stored] == [card["sighting_id"]]
    # The camera says its video ended (not "online" at 0 fps), and every visit has left.
    status = admin.get("/api/v1/cameras/door").json()["status"]
    assert (status["state"], status["fps"], status["error"]) == ("ended", 0.0, "the video ended")
    every = admin.get("/api/v1/sightings", params={"camera": "door"}).json()
    assert every
    assert [row["id"] for row in every if row["left_at"] is None] == []
    # The delivery of account details to the teller is in the audit log (written before it
    # was sent), with the teller's role and address.
    views = s.auth.audit_entries(action="account.view")
    assert [(v.actor, v.subject) for v in views] == [("user:teller-0", "ACC-1")]
    assert views[0].detail["sighting_id"] == card["sighting_id"]
    assert (views[0].role, views[0].address) == ("teller", "testclient")


def customer_sighting(server: OneEyeApp, person: str | None) -> str:
    """Publish a sighting as a camera would; returns its id."""
    sighting_id = new_id()
    ensure_camera(server, "door")
    server.services.bus.publish(
        SIGHTINGS.format(camera="door"),
        Note.model_validate(
            {
                "id": sighting_id,
                "event": "sighting",
                "camera": "door",
                "track": 1,
                "person": person,
                "watchlist": "customers" if person else None,
                "distance": 0.2,
                "quality": 0.9,
                "frame": 3,
                "t": 0.3,
                "box": [10, 60, 60, 10],
                "seen_at": utcnow().isoformat(),
                "snapshot_key": None,
                "embedding": None,
            }
        ),
    )
    return sighting_id


def test_a_client_that_reconnects_with_since_gets_what_it_missed(
    server: OneEyeApp, client_for: ClientFor, face_engine: FaceEngine, load_photo: PhotoLoader
) -> None:
    s = server.services
    customer = enrol_customer(s.db, s.gallery, face_engine, load_photo)
    add_account(server)
    teller = client_for("teller")
    with teller.websocket_connect(f"/ws?since={s.events.latest_id()}") as ws:
        first = customer_sighting(server, customer.person_id)
        seen: set[str] = set()
        while seen != {"sighting", "customer.arrived"}:
            frame = ws.receive_json()
            if frame["data"].get("sighting_id") == first:
                seen.add(frame["type"])
    last_seen = frame["id"]
    missed = [customer_sighting(server, None), customer_sighting(server, customer.person_id)]
    deadline = time.monotonic() + 10
    while len(s.events.since(last_seen, "teller")) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    with teller.websocket_connect(f"/ws?since={last_seen}") as ws:
        replayed = [ws.receive_json() for _ in range(3)]
        assert sorted((f["type"], f["data"]["sighting_id"]) for f in replayed) == sorted(
            [
                ("sighting", missed[0]),
                ("customer.arrived", missed[1]),
                ("sighting", missed[1]),
            ]
        )
        assert [f["id"] for f in replayed] == sorted(f["id"] for f in replayed)
        assert replayed[0]["id"] > last_seen
        live = customer_sighting(server, None)
        frame = ws.receive_json()
        assert frame["data"]["sighting_id"] == live
        assert frame["id"] > replayed[-1]["id"]


def test_a_viewer_replay_holds_no_account_details(server: OneEyeApp, client_for: ClientFor) -> None:
    hub = server.services.events
    hub.publish("customer.arrived", {"account": {"account_id": "A", "balance": "9"}}, "teller")
    plain: HubEvent = hub.publish("sighting", {"sighting_id": "x"})
    viewer = client_for("viewer")
    with viewer.websocket_connect("/ws?since=0") as ws:
        frame = ws.receive_json()
        assert frame["id"] == plain.id
        assert frame["type"] == "sighting"


def test_an_api_key_opens_the_socket(server: OneEyeApp, anonymous: TestClient) -> None:
    _, key = server.services.auth.create_api_key("wall display", "teller")
    hub = server.services.events
    # A browser script offers the key as a subprotocol; the server answers "oneeye", never
    # the key itself.
    with anonymous.websocket_connect(
        "/ws?since=0", subprotocols=["oneeye", f"oneeye.key.{key}"]
    ) as ws:
        assert ws.accepted_subprotocol == "oneeye"
        event = hub.publish("customer.arrived", {"account": {"account_id": "B"}}, "teller")
        assert ws.receive_json()["id"] == event.id
        # The audit row was committed before the frame was sent (nothing waits in memory).
        [view] = server.services.auth.audit_entries(action="account.view")
        assert (view.actor, view.role, view.subject) == ("key:wall display", "teller", "B")
    # Without since, only events after the subscription arrive: pass the newest id so none
    # is lost between connecting and subscribing.
    newest = hub.latest_id()
    with anonymous.websocket_connect(
        f"/ws?since={newest}", headers={"Authorization": f"Bearer {key}"}
    ) as ws:
        event = hub.publish("sighting", {"n": 1})
        assert ws.receive_json()["id"] == event.id
    views = server.services.auth.audit_entries(action="account.view")
    assert [(v.actor, v.subject) for v in views] == [("key:wall display", "B")]


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/ws", {}),
        ("/ws?api_key=oek_nope_nothing", {}),
        ("/ws", {"Sec-WebSocket-Protocol": "oneeye, oneeye.key.oek_nope_nothing"}),
        ("/ws", {"Authorization": "Bearer oek_nope_nothing"}),
        ("/ws", {"Cookie": "oneeye_session=forged"}),
    ],
)
def test_no_valid_credentials_closes_with_4401(
    anonymous: TestClient, url: str, headers: dict[str, str]
) -> None:
    with (
        anonymous.websocket_connect(url, headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


def test_a_key_in_the_url_is_refused_even_when_valid(
    server: OneEyeApp, anonymous: TestClient
) -> None:
    """A key in the URL ends up in access logs and proxies: the server does not take it."""
    _, key = server.services.auth.create_api_key("old display", "teller")
    with (
        anonymous.websocket_connect(f"/ws?since=0&api_key={key}") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401
    assert "header" in (closed.value.reason or "")


def test_a_cookie_from_another_origin_is_refused(server: OneEyeApp, client_for: ClientFor) -> None:
    teller = client_for("teller")
    with (
        teller.websocket_connect("/ws", headers={"Origin": "https://evil.example"}) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4403
    newest = server.services.events.latest_id()
    with teller.websocket_connect(
        f"/ws?since={newest}", headers={"Origin": "http://testserver"}
    ) as ws:
        event = server.services.events.publish("sighting", {})
        assert ws.receive_json()["id"] == event.id


def test_a_deactivated_user_is_disconnected(
    server: OneEyeApp, client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_module, "RECHECK_SECONDS", 0.2)
    teller = client_for("teller")
    auth = server.services.auth
    with teller.websocket_connect(f"/ws?since={server.services.events.latest_id()}") as ws:
        event = server.services.events.publish("sighting", {})
        assert ws.receive_json()["id"] == event.id
        user = next(u for u in auth.users() if u.username == "teller-0")
        auth.update_user(user.id, active=False)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401
