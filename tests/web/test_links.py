"""``GET /api/v1/links/snapshot``: public, the signature is the credential; 403 for a forged,
altered or expired link, 404 once the snapshot is gone."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.notify import LinkSigner, load_secret_key

SNAPSHOT = b"\xff\xd8\xff\xe0 not really a jpeg, but bytes to serve \xff\xd9"


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    """A client with no login."""
    return anonymous


@pytest.fixture
def signer(server: OneEyeApp) -> LinkSigner:
    """A signer with the server's key (from the key file the server made at first start)."""
    settings = server.services.settings
    return LinkSigner(load_secret_key(settings), settings.public_url)


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a link."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_signed_link_serves_the_snapshot_without_login(
    server: OneEyeApp, client: TestClient, signer: LinkSigner
) -> None:
    key = server.services.photos.add("snapshots", SNAPSHOT)
    url = signer.url(key, 3600)
    assert url.startswith(server.services.settings.public_url + "/api/v1/links/snapshot?")
    response = client.get("/api/v1/links/snapshot", params=query_of(url))
    assert response.status_code == 200, response.text
    assert response.content == SNAPSHOT
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"].startswith("private")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sig": "forged"}, "signature"),
        ({"exp": "+3600"}, "signature"),  # a later expiry written in by hand
        ({"key": "snapshots/aa/aaaa.jpg"}, "signature"),  # another snapshot
        ({"exp": "soon"}, "not valid"),
        ({"key": "../secret.key"}, "not valid"),
        ({"sig": None}, "incomplete"),
        ({"key": None, "exp": None, "sig": None}, "incomplete"),
    ],
)
def test_altered_links_are_forbidden(
    server: OneEyeApp,
    client: TestClient,
    signer: LinkSigner,
    change: dict[str, str | None],
    message: str,
) -> None:
    key = server.services.photos.add("snapshots", SNAPSHOT)
    params: dict[str, str] = query_of(signer.url(key, 3600))
    for name, value in change.items():
        if value is None:
            params.pop(name)
        elif value.startswith("+"):
            params[name] = str(int(params[name]) + int(value[1:]))
        else:
            params[name] = value
    response = client.get("/api/v1/links/snapshot", params=params)
    assert response.status_code == 403
    assert message in response.json()["error"]["message"]


def test_an_expired_link_is_forbidden(
    server: OneEyeApp, client: TestClient, signer: LinkSigner
) -> None:
    key = server.services.photos.add("snapshots", SNAPSHOT)
    expired = query_of(signer.url(key, 60, now=time.time() - 120))
    response = client.get("/api/v1/links/snapshot", params=expired)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "this link has expired"


def test_a_signed_template_photo_is_still_forbidden(
    server: OneEyeApp, client: TestClient, signer: LinkSigner
) -> None:
    """Only snapshots: even a correct signature over an enrolment photo's key is refused."""
    key = server.services.photos.add("templates", SNAPSHOT)
    exp = int(time.time()) + 60
    sig = signer._signature(key, exp)  # what a signer would make if it allowed templates
    response = client.get("/api/v1/links/snapshot", params={"key": key, "exp": exp, "sig": sig})
    assert response.status_code == 403


def test_a_deleted_snapshot_is_404(
    server: OneEyeApp, client: TestClient, signer: LinkSigner
) -> None:
    key = server.services.photos.add("snapshots", SNAPSHOT)
    url = signer.url(key, 3600)
    server.services.photos.delete(key)
    response = client.get("/api/v1/links/snapshot", params=query_of(url))
    assert response.status_code == 404
    assert "deleted" in response.json()["error"]["message"]
