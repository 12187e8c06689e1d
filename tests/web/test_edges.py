"""Edge camera registration: an edge registers its own cameras with its key (which names the
edge), a camera id that is a server's or another edge's is refused and changes nothing, and
admins list and remove registrations."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.cameras import CameraConfig, CameraExistsError
from oneeye.services.edge.registry import SERVER
from tests.web.conftest import ClientFor
from tests.web.test_gallery_routes import edge_client

OWN = "/api/v1/edge/cameras"


def cameras(*ids: str) -> dict[str, Any]:
    return {"cameras": [{"id": camera, "name": f"Camera {camera}"} for camera in ids]}


def test_an_edge_registers_its_cameras_and_no_one_else_s(server: OneEyeApp) -> None:
    server.services.cameras.add(CameraConfig(id="hall", name="Hall", source="0", enabled=False))
    door = edge_client(server, "edge-door")
    lobby = edge_client(server, "edge-lobby")
    first = door.put(OWN, json=cameras("door", "door-2"))
    assert first.status_code == 200, first.text
    assert first.json()["edge"] == "edge-door"
    assert [c["camera_id"] for c in first.json()["cameras"]] == ["door", "door-2"]
    again = door.put(OWN, json=cameras("door"))  # a restart: still both
    assert [c["camera_id"] for c in again.json()["cameras"]] == ["door", "door-2"]
    registry = server.services.registry
    assert registry.allows("edge-door", "door")
    assert not registry.allows("edge-lobby", "door")
    assert not registry.allows(None, "door")
    assert registry.owner("hall") == SERVER

    for taken in ("door", "hall"):
        refused = lobby.put(OWN, json=cameras("lobby", taken))
        assert refused.status_code == 409, refused.text
        assert taken in refused.json()["error"]["message"]
    assert registry.owner("lobby") is None, "a refused registration changes nothing"
    assert registry.owner("door") == "edge-door"
    with pytest.raises(CameraExistsError, match="edge-door"):
        server.services.cameras.add(CameraConfig(id="door", name="Door", source="0"))
    assert registry.owner("door") == "edge-door"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cameras": []}, "cameras"),
        ({"cameras": [{"id": "Front Door", "name": "x"}]}, "cameras.0.id"),
        ({"cameras": [{"id": "a", "name": "x" * 201}]}, "cameras.0.name"),
        ({"cameras": [{"id": "a", "name": "a", "owner": "edge-x"}]}, "cameras.0.owner"),
    ],
)
def test_bad_registrations_are_refused(server: OneEyeApp, body: dict[str, Any], field: str) -> None:
    response = edge_client(server, "edge-door").put(OWN, json=body)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]
    assert server.services.registry.edge_cameras() == []


def test_only_an_edge_key_registers_itself_and_admins_manage(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    admin = client_for("admin")
    assert admin.put(OWN, json=cameras("x")).status_code == 403
    assert client_for("teller").get("/api/v1/edges/cameras").status_code == 403
    made = admin.put("/api/v1/edges/edge-door/cameras", json=cameras("door"))
    assert made.status_code == 200, made.text
    listed = admin.get("/api/v1/edges/cameras").json()
    assert [(c["edge_id"], c["camera_id"]) for c in listed] == [("edge-door", "door")]
    door: TestClient = edge_client(server, "edge-lobby")
    assert door.get("/api/v1/edges/cameras").status_code == 403
    assert admin.delete("/api/v1/edges/edge-lobby/cameras/door").status_code == 404
    assert admin.delete("/api/v1/edges/edge-door/cameras/door").status_code == 204
    assert server.services.registry.owner("door") is None
    actions = [e.action for e in server.services.auth.audit_entries(action="edge.")]
    assert actions == ["edge.cameras.unregister", "edge.cameras.register"]
