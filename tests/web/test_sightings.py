"""``/api/v1/sightings`` on SQLite and PostgreSQL: sightings sent on the server's bus are
stored and found by camera, person, watchlist and time; roles and errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.bus.base import SIGHTINGS
from oneeye.store.models import Person, new_id
from tests.bus.helpers import Note
from tests.web.conftest import PASSWORD, login
from tests.web.helpers import ensure_camera

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
"""Sightings are near now: the server refuses times far from its clock."""


@pytest.fixture
def viewer(server_any_db: OneEyeApp) -> Iterator[TestClient]:
    server_any_db.services.auth.create_user("vera", PASSWORD, "viewer")
    with TestClient(server_any_db.web) as client:
        yield login(client, "vera")


def send(server: OneEyeApp, camera: str, minutes: int, **changes: Any) -> str:
    sighting_id = new_id()
    payload: dict[str, Any] = {
        "id": sighting_id,
        "event": "sighting",
        "camera": camera,
        "track": minutes,
        "person": None,
        "watchlist": None,
        "distance": None,
        "quality": 0.7,
        "frame": 5,
        "t": 0.5,
        "box": [20, 120, 120, 20],
        "seen_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "snapshot_key": f"snapshots/{camera}/ab/{'ab' * 16}.jpg",
        "embedding": [0.0] * 128,
        **changes,
    }
    ensure_camera(server, camera)
    server.services.bus.publish(SIGHTINGS.format(camera=camera), Note.model_validate(payload))
    return sighting_id


def test_sightings_are_found_by_camera_person_watchlist_and_time(
    server_any_db: OneEyeApp, viewer: TestClient
) -> None:
    server = server_any_db
    person = new_id()
    with server.services.db.session() as session:
        session.add(Person(id=person, name="Joe Biden"))
    ids = [
        send(server, "door", 0, person=person, watchlist="customers", distance=0.25),
        send(server, "door", 1),
        send(server, "back", 2, person=person, watchlist="amber-alert", distance=0.3),
    ]
    deadline = time.monotonic() + 10
    while len(viewer.get("/api/v1/sightings").json()) < 3:
        assert time.monotonic() < deadline, "the sightings were not stored"
        time.sleep(0.05)

    def found(**params: Any) -> list[str]:
        response = viewer.get("/api/v1/sightings", params=params)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()]

    assert found() == [ids[2], ids[1], ids[0]]
    assert found(camera="door") == [ids[1], ids[0]]
    assert found(person=person) == [ids[2], ids[0]]
    assert found(watchlist="amber-alert") == [ids[2]]
    assert found(since=(T0 + timedelta(minutes=1)).isoformat()) == [ids[2], ids[1]]
    assert found(until=(T0 + timedelta(minutes=1)).isoformat()) == [ids[0]]
    assert found(limit=1) == [ids[2]]

    one = viewer.get(f"/api/v1/sightings/{ids[0]}").json()
    assert one["person_name"] == "Joe Biden"
    assert one["camera_id"] == "door"
    assert one["box"] == [20, 120, 120, 20]
    assert one["distance"] == pytest.approx(0.25)
    assert one["snapshot_url"] == f"/api/v1/photos/snapshots/door/ab/{'ab' * 16}.jpg"
    assert datetime.fromisoformat(one["first_seen"]) == T0
    assert "embedding" not in one


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/v1/sightings/0123", {}, 404, "no sighting"),
        ("/api/v1/sightings", {"limit": 0}, 422, "limit"),
        ("/api/v1/sightings", {"since": "yesterday"}, 422, "since"),
        ("/api/v1/sightings", {"since": "2026-03-01T09:00:00"}, 422, "time zone"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    viewer: TestClient, path: str, params: dict[str, Any], status: int, message: str
) -> None:
    response = viewer.get(path, params=params)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_sightings_need_a_login(server_any_db: OneEyeApp) -> None:
    with TestClient(server_any_db.web) as anonymous:
        assert anonymous.get("/api/v1/sightings").status_code == 401
        assert anonymous.get(f"/api/v1/sightings/{new_id()}").status_code == 401
