"""Forged sightings from an edge's broker credential change nothing on a real server.

A server (``OneEyeApp`` on SQLite, its bus on a real Mosquitto run with the shipped
``deploy/mosquitto`` configuration and ACL) has two edges whose cameras registered over HTTP
with their keys, one camera of its own, a bank customer and an active Amber Alert case. Edge A
logs in to the broker as itself and publishes, under its own prefix (all the broker lets it),
sightings naming the customer and the case's person: for a camera nobody registered, for edge
B's camera, for the server's camera, for its own camera with the customer's enrolment photo or
another camera's snapshot as ``snapshot_key``, and a status for edge B's camera. None of them
leaves a sighting row, a card, a dashboard event, a case match or a notification; each is
counted. Then its genuine sightings (its own camera, its own snapshot) do all of that, so the
refusals are the checks at work, not a server that heard nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.bus.base import EDGE_CAMERA_STATUS, EDGE_SIGHTINGS
from oneeye.bus.mqtt import MqttBus
from oneeye.config import MqttSettings, ServeSettings
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import (
    AlertCase,
    CaseMatch,
    CustomerAccount,
    DashboardEvent,
    Notification,
    Person,
    Sighting,
    Subscription,
    Watchlist,
    new_id,
)
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine
from tests.bus.helpers import Note, ShippedBroker
from tests.conftest import wait_until

pytestmark = pytest.mark.mqtt

USERS = {"oneeye-server": "server pass 1", "edge-a": "edge a pass", "edge-b": "edge b pass"}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


class World:
    """The server, its edges' registrations, a customer and a case."""

    def __init__(self, tmp_path: Path, engine: FaceEngine) -> None:
        (tmp_path / "broker").mkdir()
        self.broker = ShippedBroker(tmp_path / "broker", USERS)
        self.broker.start()
        settings = ServeSettings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
            bus=self.broker.url(),
            mqtt=MqttSettings(
                username="oneeye-server",
                password=USERS["oneeye-server"],  # type: ignore[arg-type]
                client_id="oneeye-serve-test",
                session_expiry=60,
            ),
        )
        self.app = OneEyeApp(settings, engine=engine)
        self.app.start()
        s = self.app.services
        for edge, camera in (("edge-a", "a-door"), ("edge-b", "b-door")):
            _, key = s.auth.create_api_key(edge, "edge", edge_id=edge)
            with TestClient(self.app.web) as client:
                client.headers["Authorization"] = f"Bearer {key}"
                body = {"cameras": [{"id": camera, "name": camera}]}
                assert client.put("/api/v1/edge/cameras", json=body).status_code == 200
        s.cameras.add(CameraConfig(id="hall", name="Hall", source="0", enabled=False))
        self.customer, self.missing = new_id(), new_id()
        self.enrolment_photo = s.photos.add("templates", JPEG)
        self.case_id = new_id()
        with s.db.session() as session:
            lists = {w.name: w for w in session.scalars(select(Watchlist))}
            session.add(
                Person(
                    id=self.customer,
                    name="Barack Obama",
                    account_id="ACC-1",
                    watchlists=[lists["customers"]],
                )
            )
            session.add(
                CustomerAccount(
                    account_id="ACC-1",
                    name="Barack Obama",
                    address="1600 Pennsylvania Ave NW",
                    balance=Decimal("1520.40"),
                )
            )
            session.add(
                Person(id=self.missing, name="Missing Child", watchlists=[lists["amber-alert"]])
            )
            session.flush()
            session.add(
                AlertCase(
                    id=self.case_id,
                    person_id=self.missing,
                    name="Missing Child",
                    reporter="user:admin",
                    expires_at=datetime.now(UTC) + timedelta(hours=2),
                )
            )
            session.flush()
            session.add(Subscription(case_id=self.case_id, channel="email", address="a@b.org"))
        self.edge = MqttBus(
            self.broker.url(),
            username="edge-a",
            password=USERS["edge-a"],
            client_id="oneeye-edge-edge-a",
        )
        self.edge.start()

    def sighting(self, camera: str, person: str, watchlist: str, **more: Any) -> dict[str, Any]:
        """A sighting as edge A publishes it, under its own prefix, naming ``camera``."""
        payload: dict[str, Any] = {
            "id": new_id(),
            "event": "sighting",
            "camera": camera,
            "track": 1,
            "person": person,
            "watchlist": watchlist,
            "distance": 0.2,
            "quality": 0.9,
            "frame": 1,
            "t": 0.1,
            "box": [10, 60, 60, 10],
            "seen_at": datetime.now(UTC).isoformat(),
            "snapshot_key": None,
            "embedding": None,
            **more,
        }
        self.edge.publish(
            EDGE_SIGHTINGS.format(edge="edge-a", camera=camera), Note.model_validate(payload)
        )
        return payload

    def rows(self, model: type[Any], column: Any, values: set[str]) -> list[Any]:
        with self.app.services.db.session() as session:
            return list(session.scalars(select(model).where(column.in_(values))))

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        with self.app.services.db.session() as session:
            found = session.scalars(select(DashboardEvent).order_by(DashboardEvent.id))
            return [(e.type, _json(e.payload)) for e in found]

    def close(self) -> None:
        self.edge.stop()
        self.app.stop()
        self.broker.stop()


def _json(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(str(value))


@pytest.fixture
def world(tmp_path: Path, face_engine: FaceEngine) -> Iterator[World]:
    made = World(tmp_path, face_engine)
    try:
        yield made
    finally:
        made.close()


def test_forged_sightings_from_an_edge_change_nothing(world: World) -> None:
    s = world.app.services
    other_snapshot = s.photos.add(snapshot_kind("b-door"), JPEG)
    forged = [
        world.sighting("ghost", world.customer, "customers"),  # nobody's camera
        world.sighting("b-door", world.missing, "amber-alert"),  # edge B's camera
        world.sighting("hall", world.customer, "customers"),  # the server's camera
        world.sighting(  # its own camera, the customer's enrolment photo as the snapshot
            "a-door", world.missing, "amber-alert", snapshot_key=world.enrolment_photo
        ),
        world.sighting(  # its own camera, another camera's snapshot
            "a-door", world.customer, "customers", snapshot_key=other_snapshot
        ),
    ]
    world.edge.publish(
        EDGE_CAMERA_STATUS.format(edge="edge-a", camera="b-door"),
        Note.model_validate(
            {"camera": "b-door", "name": "b-door", "state": "offline", "error": "forged"}
        ),
        retain=True,
    )
    # Then the edge's genuine sightings, after the forged ones on the same connection.
    own = s.photos.add(snapshot_kind("a-door"), JPEG)
    genuine = [
        world.sighting("a-door", world.customer, "customers", snapshot_key=own),
        world.sighting("a-door", world.missing, "amber-alert", snapshot_key=own, track=2),
    ]
    assert world.edge.flush(5)
    genuine_ids = {p["id"] for p in genuine}

    def arrived() -> bool:
        cards = [d for t, d in world.events() if t == "customer.arrived"]
        matches = world.rows(CaseMatch, CaseMatch.sighting_id, genuine_ids)
        return len(cards) == 1 and len(matches) == 1

    assert wait_until(arrived, timeout=15), "the genuine sightings were acted on"
    assert s.sightings.wait_idle()

    forged_ids = {p["id"] for p in forged}
    assert world.rows(Sighting, Sighting.id, forged_ids) == []
    assert world.rows(CaseMatch, CaseMatch.sighting_id, forged_ids) == []
    assert world.rows(Notification, Notification.sighting_id, forged_ids) == []
    events = world.events()
    assert not [d for _, d in events if d.get("sighting_id") in forged_ids]
    cards = [d for t, d in events if t == "customer.arrived"]
    assert [c["sighting_id"] for c in cards] == [genuine[0]["id"]]
    assert cards[0]["account"]["balance"] is not None, "the card a forgery would have shown"
    assert not [d for t, d in events if t == "camera.status" and d.get("camera_id") == "b-door"]
    assert s.sightings.statuses.latest("b-door") is None
    assert {r.id for r in world.rows(Sighting, Sighting.id, genuine_ids)} == genuine_ids

    refused = s.sightings.refused.counts()
    assert sum(refused.values()) == len(forged) + 1  # and the status
    assert set(refused) == {
        ("edge edge-a", "the camera is not registered"),
        ("edge edge-a", "the camera is registered to another sender"),
        ("edge edge-a", "its snapshot_key is not under the camera's snapshots"),
    }
