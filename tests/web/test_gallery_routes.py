"""The edge routes: the gallery export (admin or an edge key only) and snapshot uploads (an
edge's key only under its own cameras' snapshots); an edge's API key passes no other route and
gets no dashboard events."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.services.auth import UserError
from oneeye.services.cameras import CameraConfig
from oneeye.services.gallery import GalleryEntry
from oneeye.store.models import ApiKey, new_id
from oneeye.store.photos import snapshot_kind
from oneeye.web.routes.gallery import MAX_SNAPSHOT_BYTES
from tests.web.conftest import PASSWORD, ClientFor
from tests.web.test_roles import http_routes

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def edge_client(server: OneEyeApp, edge_id: str, *cameras: str) -> TestClient:
    """A client with a fresh key of edge ``edge_id``, its ``cameras`` registered."""
    _, key = server.services.auth.create_api_key(edge_id, "edge", edge_id=edge_id)
    client = TestClient(server.web)
    client.headers["Authorization"] = f"Bearer {key}"
    if cameras:
        body = {"cameras": [{"id": camera, "name": camera} for camera in cameras]}
        registered = client.put("/api/v1/edge/cameras", json=body)
        assert registered.status_code == 200, registered.text
    return client


@pytest.fixture
def edge(server: OneEyeApp) -> TestClient:
    return edge_client(server, "edge-door", "door")


def snapshot_key(server: OneEyeApp, camera: str) -> str:
    return server.services.photos.new_key(snapshot_kind(camera))


def enrol(server: OneEyeApp, watchlists: list[str], seed: int) -> tuple[str, str]:
    person, template = new_id(), new_id()
    server.services.gallery_service.add_templates(
        watchlists, [GalleryEntry(template, person, unit(seed), 0.9)]
    )
    return person, template


def test_an_edge_key_fetches_the_whole_gallery_at_one_version(
    server: OneEyeApp, edge: TestClient
) -> None:
    person, template = enrol(server, ["customers", "amber-alert"], 1)
    server.services.gallery_service.update_watchlist("amber-alert", threshold=0.4)
    response = edge.get("/api/v1/gallery")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == server.services.gallery_service.version
    assert body["thresholds"]["amber-alert"] == pytest.approx(0.4)
    assert body["margin"] == pytest.approx(server.services.gallery.margin)
    entries = {e["id"]: e for e in body["entries"]}
    assert set(entries) == {f"{template}@customers", f"{template}@amber-alert"}
    entry = entries[f"{template}@customers"]
    assert entry["person"] == person
    assert entry["watchlist"] == "customers"
    assert np.allclose(entry["embedding"], unit(1), atol=1e-6)
    # Only the public key goes to edges (issue 11, finding 1): the private one stays put.
    service = server.services.gallery_service
    assert body["verify_key"] == service.verify_key.hex()
    private = service.signing_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    assert private.hex() not in response.text
    assert "signing_key" not in body


def test_only_admins_and_edges_get_embeddings(server: OneEyeApp, client_for: ClientFor) -> None:
    assert client_for("admin").get("/api/v1/gallery").status_code == 200
    refused = client_for("teller").get("/api/v1/gallery")
    assert refused.status_code == 403
    assert "admin role or above or edge" in refused.json()["error"]["message"]


def test_an_edge_uploads_a_snapshot_once_under_its_own_key(
    server: OneEyeApp, edge: TestClient
) -> None:
    key = snapshot_key(server, "door")
    first = edge.put(f"/api/v1/edge/snapshots/{key}", content=JPEG)
    assert first.status_code == 200, first.text
    assert first.json() == {"key": key, "created": True}
    assert server.services.photos.get(key) == JPEG
    again = edge.put(f"/api/v1/edge/snapshots/{key}", content=JPEG)
    assert again.json() == {"key": key, "created": False}
    other = edge.put(f"/api/v1/edge/snapshots/{key}", content=JPEG + b"x")
    assert other.status_code == 409
    assert server.services.photos.get(key) == JPEG


DOOR = "snapshots/door/ab/" + "ab" * 16 + ".jpg"


@pytest.mark.parametrize(
    ("key", "body", "expected"),
    [
        ("templates/ab/" + "ab" * 16 + ".jpg", JPEG, 422),
        ("customers/ab/" + "ab" * 16 + ".jpg", JPEG, 422),
        ("snapshots/../x.jpg", JPEG, 422),
        ("snapshots/ab/abc.jpg", JPEG, 422),  # the old form, without a camera
        ("snapshots/lobby/ab/" + "ab" * 16 + ".jpg", JPEG, 403),  # another edge's camera
        ("snapshots/hall/ab/" + "ab" * 16 + ".jpg", JPEG, 403),  # the server's camera
        ("snapshots/nowhere/ab/" + "ab" * 16 + ".jpg", JPEG, 403),  # nobody's camera
        (DOOR, b"GIF89a not a jpeg", 422),
        (DOOR, b"\xff\xd8\xff" + b"\x00" * MAX_SNAPSHOT_BYTES, 413),
    ],
)
def test_bad_snapshot_uploads_are_refused_and_store_nothing(
    server: OneEyeApp, edge: TestClient, key: str, body: bytes, expected: int
) -> None:
    edge_client(server, "edge-lobby", "lobby")
    server.services.cameras.add(CameraConfig(id="hall", name="Hall", source="0", enabled=False))
    response = edge.put(f"/api/v1/edge/snapshots/{key}", content=body)
    assert response.status_code == expected, response.text
    assert "message" in response.json()["error"]
    assert not any(p.is_file() for p in server.settings.resolved_photos_dir().rglob("*"))


def test_an_edge_key_bound_to_no_edge_uploads_nothing(server: OneEyeApp) -> None:
    edge_client(server, "edge-door", "door")
    unbound = edge_client(server, "edge-old")
    with server.services.db.session() as session:  # as a key made before keys named an edge
        session.scalars(select(ApiKey).where(ApiKey.edge_id == "edge-old")).one().edge_id = None
    response = unbound.put(f"/api/v1/edge/snapshots/{DOOR}", content=JPEG)
    assert response.status_code == 403, response.text
    registered = unbound.put("/api/v1/edge/cameras", json={"cameras": [{"id": "x", "name": "x"}]})
    assert registered.status_code == 403
    assert "names no edge" in registered.json()["error"]["message"]
    assert not server.services.photos.exists(DOOR)


def test_an_edge_key_passes_no_other_route(server: OneEyeApp, edge: TestClient) -> None:
    allowed = {
        ("GET", "/api/v1/gallery"),
        ("PUT", "/api/v1/edge/snapshots/{key:path}"),
        ("PUT", "/api/v1/edge/cameras"),
    }
    problems = []
    for route in http_routes(server):
        if not route.is_api or (route.method, route.path) in allowed:
            continue
        if route.path in ("/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/me"):
            continue
        if route.path == "/api/v1/auth/password":
            continue  # a key has no password to change: refused with 400, changes nothing
        if route.path.startswith("/api/v1/links/"):
            continue  # public, signed links
        response = edge.request(route.method, route.url(), follow_redirects=False)
        if response.status_code != 403:
            problems.append(f"{route}: an edge key got {response.status_code}")
    assert not problems, "\n".join(problems)
    assert edge.get("/api/v1/photos/snapshots/ab/abc.jpg").status_code == 403


def test_edge_is_a_role_for_api_keys_only(server: OneEyeApp) -> None:
    with pytest.raises(UserError, match="unknown role"):
        server.services.auth.create_user("edgy", PASSWORD, "edge")
    row, _ = server.services.auth.create_api_key("edge-2", "edge", edge_id="edge-2")
    assert (row.role, row.edge_id) == ("edge", "edge-2")
    with pytest.raises(UserError, match="needs the edge's id"):
        server.services.auth.create_api_key("edge-3", "edge")
    with pytest.raises(UserError, match="only an edge key"):
        server.services.auth.create_api_key("script", "viewer", edge_id="edge-3")
