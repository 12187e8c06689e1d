"""Fixtures for the photo stores: a real S3-compatible server (moto's, over HTTP on loopback)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from oneeye.store.photos import LocalPhotoStore, PhotoStore
from oneeye.store.s3 import S3PhotoStore


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 server listens, and the credentials it is given."""

    endpoint_url: str
    access_key_id: str = "oneeye-test-key"
    secret_access_key: str = "oneeye-test-secret-never-shown"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 at a free port, for the whole session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


def make_s3_store(server: S3Server, *, prefix: str = "", region: str | None = None) -> S3PhotoStore:
    """An ``S3PhotoStore`` on a fresh bucket of the test server (created on the way)."""
    return S3PhotoStore(
        f"oneeye-{uuid.uuid4().hex[:12]}",
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        region=region,
        prefix=prefix,
        create_bucket=True,
    )


@pytest.fixture(scope="session")
def s3_photo_store(s3_server: S3Server) -> PhotoStore:
    """One S3 store for the session (keys are fresh per test; a boto3 client is slow to make)."""
    return make_s3_store(s3_server, prefix="shared")


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def photo_store(request: pytest.FixtureRequest, tmp_path: Path) -> PhotoStore:
    """Each photo store in turn: a local folder, then a bucket on the S3 test server."""
    if request.param == "local":
        return LocalPhotoStore(tmp_path / "photos")
    store: PhotoStore = request.getfixturevalue("s3_photo_store")
    return store
