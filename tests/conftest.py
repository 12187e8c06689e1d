"""Shared fixtures. Real face photos come from a registry package, fetched once and cached:
the face_recognition 1.3.0 source distribution on PyPI ships ``tests/test_images/``."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import psycopg
import pytest

from oneeye.bus.broker import parse_broker_url
from oneeye.config import EngineSettings
from oneeye.store.db import Database
from oneeye.types import RGBImage
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image
from tests.services.bank import BankApi

if TYPE_CHECKING:
    from tests.edge_site import Site
    from tests.services.helpers import LabelledClip

PhotoLoader = Callable[[str], RGBImage]

FACE_RECOGNITION_SDIST = "face_recognition-1.3.0.tar.gz"
FACE_RECOGNITION_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"


class WakeCounter:
    """Stands in for the notifier (not under test here): counts ``wake()`` calls."""

    def __init__(self) -> None:
        self.wakes = 0
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            self.wakes += 1


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cache_dir() -> Path:
    """Where downloaded test data is kept between runs (``ONEEYE_TEST_CACHE`` overrides)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oneeye-tests"
    return Path(os.environ.get("ONEEYE_TEST_CACHE", default))


def _fetch_face_photos(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", "face_recognition==1.3.0", "--dest", tmp,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        sdist = Path(tmp) / FACE_RECOGNITION_SDIST
        if done.returncode != 0 or not sdist.exists():
            raise RuntimeError(
                "could not download the face_recognition 1.3.0 sdist from PyPI for its test "
                f"photos (pip said: {done.stderr.strip()[-500:]})"
            )
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != FACE_RECOGNITION_SHA256:
            raise RuntimeError(
                f"{sdist.name} has sha256 {digest}, expected {FACE_RECOGNITION_SHA256}"
            )
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                if "/tests/test_images/" in member.name and member.isfile():
                    member.name = Path(member.name).name
                    archive.extract(member, staging, filter="data")
        staging.rename(target)


@pytest.fixture(scope="session")
def face_photos() -> Path:
    """The folder of face_recognition's test photos: obama.jpg, obama2.jpg, obama3.jpg,
    biden.jpg, obama_partial_face.jpg, obama_partial_face2.jpg, 32bit.png."""
    target = cache_dir() / "face_recognition-1.3.0-test_images"
    if not (target / "obama.jpg").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _fetch_face_photos(target)
    return target


@pytest.fixture(scope="session")
def load_photo(face_photos: Path) -> PhotoLoader:
    """A function: photo file name -> RGB image."""

    def load(name: str) -> RGBImage:
        return load_image(face_photos / name)

    return load


def side_by_side(*images: RGBImage) -> RGBImage:
    """Images placed left to right on one canvas (padded to the tallest)."""
    height = max(image.shape[0] for image in images)
    width = sum(image.shape[1] for image in images)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for image in images:
        canvas[: image.shape[0], x : x + image.shape[1]] = image
        x += image.shape[1]
    return canvas


def shrunk(image: RGBImage, divisor: int) -> RGBImage:
    """The image made ``divisor`` times smaller on each side."""
    size = (image.shape[1] // divisor, image.shape[0] // divisor)
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def blurred(image: RGBImage, sigma: float) -> RGBImage:
    """The image under a Gaussian blur."""
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)


# Services -----------------------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "ONEEYE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
"""The PostgreSQL the ``postgres`` tests use; each test gets a schema of its own in it."""


def service_unavailable(what: str, reason: str) -> None:
    """Skip a test whose service is absent, with the reason; in CI (``CI=true``), fail it."""
    message = f"{what} is not reachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: the service must run in CI)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty schema in the test PostgreSQL, dropped afterwards."""
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL at {plain}", str(exc).strip().splitlines()[0])
        raise AssertionError("unreachable") from exc
    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database: SQLite in a temporary folder, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oneeye.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database on each of ``database_url``'s databases; closed after."""
    database = Database(database_url)
    database.migrate()
    yield database
    database.close()


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    """One face engine for every server test (the models load once)."""
    return FaceEngine(EngineSettings())


@pytest.fixture
def bank() -> Iterator[BankApi]:
    """A bank account API listening on 127.0.0.1 (no accounts until a test adds them)."""
    api = BankApi()
    api.thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()


BROKER_URL = os.environ.get("ONEEYE_TEST_MQTT", "mqtt://127.0.0.1:1883")


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The test MQTT broker's URL, once it answers (``ONEEYE_TEST_MQTT`` overrides)."""
    address = parse_broker_url(BROKER_URL)
    try:
        socket.create_connection((address.host, address.port), timeout=2).close()
    except OSError as exc:
        service_unavailable(f"the MQTT broker at {address.redacted()}", str(exc))
    return BROKER_URL


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, load_photo: PhotoLoader
) -> LabelledClip:
    """A labelled clip of enrolled people walking, made once per test module (the edge and
    cluster tests play it through their edges)."""
    from tests.services.helpers import make_clip  # noqa: PLC0415  (it imports this module)

    return make_clip(tmp_path_factory.mktemp("clip"), face_engine, load_photo)


@pytest.fixture
def site(tmp_path: Path, broker_url: str, postgres_url: str) -> Iterator[Site]:
    """An edge + central site over the real broker and PostgreSQL (``tests.edge_site``); the
    tails of its processes' error logs are printed when it closes."""
    from tests.edge_site import Site  # noqa: PLC0415  (it imports this module)

    made = Site(tmp_path, broker_url, postgres_url)
    try:
        yield made
    finally:
        made.close()
        for name in sorted(p.name for p in made.logs.glob("*.err")):
            print(f"--- {name}\n{(made.logs / name).read_text(errors='replace')[-3000:]}")
