"""Heavy requests do not freeze the server or the cameras (SECURITY.md sections 4 and 5).

A real server (uvicorn on loopback) with a camera playing a synthetic clip at 20 frames a
second: a flood of logins with made-up names must not slow an authenticated cheap route or the
camera; a huge blank PNG, an animated GIF and a case photo must be answered in seconds with
little memory; an upload never waits for the cameras' engine; photo work stops at its time
limit and when its client leaves.
"""

from __future__ import annotations

import io
import logging
import secrets
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from oneeye.app import OneEyeApp
from oneeye.config import EngineSettings, LimitSettings, ServeSettings
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.services.helpers import LabelledClip, make_clip
from tests.web.browser import serve

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

CLIP_FPS = 20.0
FLOOD_SECONDS = 15.0
FLOOD_CLIENTS = 8
LATENCY_P95 = 0.100
"""An authenticated cheap route's p95 during a login flood (seconds)."""
PNG_SECONDS = 5.0
PNG_EXTRA_RSS = 500 * 1024 * 1024


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, load_photo: PhotoLoader
) -> LabelledClip:
    return make_clip(tmp_path_factory.mktemp("loadclip"), face_engine, load_photo, CLIP_FPS)


@pytest.fixture(scope="module")
def photo_engine() -> FaceEngine:
    """The uploads' own face engine, as ``oneeye serve`` builds it beside the cameras'."""
    return FaceEngine(EngineSettings())


@dataclass
class Site:
    app: OneEyeApp
    url: str
    viewer: dict[str, str]
    reporter: dict[str, str]
    teller: dict[str, str]


def start_site(
    tmp_path: Path, engine: FaceEngine, photo_engine: FaceEngine, limits: LimitSettings
) -> OneEyeApp:
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
        limits=limits,
    )
    app = OneEyeApp(settings, engine=engine, photo_engine=photo_engine)
    app.start()
    return app


def site_of(app: OneEyeApp, url: str) -> Site:
    auth = app.services.auth
    return Site(
        app,
        url,
        {"Authorization": f"Bearer {auth.create_api_key('viewer', 'viewer')[1]}"},
        {"Authorization": f"Bearer {auth.create_api_key('reporter', 'reporter')[1]}"},
        {"Authorization": f"Bearer {auth.create_api_key('teller', 'teller')[1]}"},
    )


@pytest.fixture
def site(tmp_path: Path, face_engine: FaceEngine, photo_engine: FaceEngine) -> Iterator[Site]:
    """A server with the default limits."""
    app = start_site(tmp_path, face_engine, photo_engine, LimitSettings())
    try:
        with serve(app.web) as url:
            yield site_of(app, url)
    finally:
        app.stop()


def start_camera(site: Site, clip: LabelledClip) -> None:
    """Play ``clip`` on camera ``door``, looped at its own frame rate, and wait for frames."""
    auth = site.app.services.auth
    admin = {"Authorization": f"Bearer {auth.create_api_key('admin', 'admin')[1]}"}
    body = {"id": "door", "source": str(clip.path), "loop": True, "min_face_px": 80}
    made = httpx.post(f"{site.url}/api/v1/cameras", json=body, headers=admin, timeout=30)
    assert made.status_code == 201, made.text
    cameras = site.app.services.cameras
    deadline = time.monotonic() + 120
    while cameras.status("door").frames < 5:
        assert time.monotonic() < deadline, "the camera did not start"
        time.sleep(0.1)


def contention() -> float:
    """How many times longer than its CPU time a pure-Python spin takes now: about 1 on an
    idle core, 9 when nine busy processes share it. Wall-clock bounds are multiplied by it, so
    a shared CI box does not fail a promise made for a machine of one's own."""
    ratios: list[float] = []

    def spin() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        while time.thread_time() - cpu < 0.3:
            pass
        ratios.append((time.perf_counter() - wall) / (time.thread_time() - cpu))

    thread = threading.Thread(target=spin)
    thread.start()
    thread.join()
    return max(1.0, ratios[0])


def check_real_time(fps_calm: float, fps_busy: float, slowdown: float) -> None:
    """The camera kept its frame rate (within 20%: ``FPS_KEPT``) while the server was busy;
    skipped only when other processes load this box (``slowdown``, from ``contention``),
    because then their load, not the server's, moves the camera. A camera that cannot play
    the clip in real time even when calm is CPU-bound, which is the case where a server
    stealing its core would show."""
    if slowdown > MAX_CONTENTION_FOR_FPS:
        pytest.skip(
            f"this box is shared (contention x{slowdown:.1f}): the camera played "
            f"{fps_calm:.1f} fps calm, {fps_busy:.1f} busy, but others' load moves that figure"
        )
    assert fps_busy >= FPS_KEPT * fps_calm, (fps_calm, fps_busy)


FPS_KEPT = 0.8
"""The share of its calm frame rate the camera must keep. The 2-second frame count of a looped
clip varies by about 15% on its own on an idle box (17.3 fps calm then 20.0 busy in one run,
20.0 calm then 17.0 busy in another), so a 10% bound tested the measure's noise; a server that
took the camera's core would halve it."""

MAX_CONTENTION_FOR_FPS = 1.5
"""Above this contention the frame-rate comparison says more about other jobs than the server."""


class FrameCounter:
    """The camera's processed frames per second over a stretch of time."""

    def __init__(self, app: OneEyeApp) -> None:
        self.cameras = app.services.cameras
        self.frames = self.cameras.status("door").frames
        self.started = time.monotonic()

    def fps(self) -> float:
        return (self.cameras.status("door").frames - self.frames) / (
            time.monotonic() - self.started
        )


class Prober(threading.Thread):
    """Calls a cheap authenticated route every 50 ms and keeps each call's latency."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                answer = client.get(f"{self.url}/api/v1/auth/me")
                self.latencies.append(time.perf_counter() - started)
                self.failures += answer.status_code != 200
                self.stop.wait(0.05)

    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]


def probe(site: Site, seconds: float, during: Callable[[], None] | None = None) -> Prober:
    prober = Prober(site.url, site.viewer)
    prober.start()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    prober.stop.set()
    prober.join()
    assert prober.failures == 0
    return prober


def flood(url: str, seconds: float, clients: int) -> list[int]:
    """``clients`` threads logging in with made-up names for ``seconds``; the statuses."""
    statuses: list[int] = []
    stop = time.monotonic() + seconds

    def attacker() -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < stop:
                name = f"nobody-{secrets.token_hex(4)}"
                answer = client.post(
                    f"{url}/api/v1/auth/login",
                    json={"username": name, "password": secrets.token_hex(8)},
                )
                statuses.append(answer.status_code)

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_login_flood_leaves_a_cheap_route_fast_and_the_camera_at_its_frame_rate(
    site: Site, clip: LabelledClip
) -> None:
    slowdown = contention()
    start_camera(site, clip)
    frames = FrameCounter(site.app)
    calm = probe(site, 4.0)
    fps_calm = frames.fps()

    statuses: list[int] = []
    frames = FrameCounter(site.app)
    busy = probe(site, 0, lambda: statuses.extend(flood(site.url, FLOOD_SECONDS, FLOOD_CLIENTS)))
    fps_busy = frames.fps()

    logging.getLogger(__name__).warning(
        "login flood: /auth/me p95 %.1f ms calm, %.1f ms during %d logins (%s); "
        "camera %.1f fps calm, %.1f during; box contention x%.1f",
        calm.p95() * 1000,
        busy.p95() * 1000,
        len(statuses),
        {s: statuses.count(s) for s in set(statuses)},
        fps_calm,
        fps_busy,
        slowdown,
    )
    assert len(statuses) >= FLOOD_CLIENTS  # the flood happened (each attacker was answered)
    assert set(statuses) <= {401, 429, 503}, set(statuses)  # 429: the per-address throttle
    # Under 100 ms (times the box's contention); on a shared box the calm figure is noisy
    # too, so 3x calm is let through as well.
    assert busy.p95() < max(LATENCY_P95 * slowdown, 3 * calm.p95()), (calm.p95(), busy.p95())
    check_real_time(fps_calm, fps_busy, slowdown)


def blank_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), "white").save(buffer, "PNG")
    return buffer.getvalue()


class PeakRss(threading.Thread):
    """The most resident memory this process (the server's) used while it ran."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.page = 4096
        self.baseline = self.now()
        self.peak = self.baseline
        self.stop = threading.Event()

    def now(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.now())
            self.stop.wait(0.01)

    def extra(self) -> int:
        self.stop.set()
        self.join()
        return self.peak - self.baseline


def test_a_huge_blank_png_is_answered_in_seconds_and_little_memory_while_the_camera_keeps_up(
    site: Site, clip: LabelledClip
) -> None:
    slowdown = contention()
    start_camera(site, clip)
    png = blank_png(6300)
    frames = FrameCounter(site.app)
    time.sleep(3.0)
    fps_calm = frames.fps()

    frames = FrameCounter(site.app)
    memory = PeakRss()
    memory.start()
    started = time.monotonic()
    answer = httpx.post(
        f"{site.url}/api/v1/identify",
        files={"file": ("blank.png", png, "image/png")},
        headers=site.teller,
        timeout=60,
    )
    seconds = time.monotonic() - started
    extra = memory.extra()
    time.sleep(max(0.0, 2.0 - seconds))  # at least 2 s of frames to count
    fps_busy = frames.fps()
    logging.getLogger(__name__).warning(
        "6300x6300 PNG (%d bytes): answered in %.2f s, +%.0f MB RSS; camera %.1f fps calm, "
        "%.1f during; box contention x%.1f",
        len(png),
        seconds,
        extra / 2**20,
        fps_calm,
        fps_busy,
        slowdown,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"faces": []}
    assert seconds < PNG_SECONDS * slowdown
    assert extra < PNG_EXTRA_RSS
    check_real_time(fps_calm, fps_busy, slowdown)


def animated_gif(side: int, frames: int) -> bytes:
    colours = [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0)]
    images = [Image.new("RGB", (side, side), colours[n % len(colours)]) for n in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return buffer.getvalue()


def test_an_animated_gif_and_a_huge_case_photo_are_answered_in_seconds(site: Site) -> None:
    slowdown = contention()
    gif = animated_gif(1000, 60)
    started = time.monotonic()
    answer = httpx.post(
        f"{site.url}/api/v1/identify",
        files={"file": ("moving.gif", gif, "image/gif")},
        headers=site.teller,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"faces": []}
    assert time.monotonic() - started < PNG_SECONDS * slowdown

    started = time.monotonic()
    checked = httpx.post(
        f"{site.url}/api/v1/cases/check-photo",
        files={"photo": ("blank.png", blank_png(6300), "image/png")},
        headers=site.reporter,
        timeout=60,
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["usable"] is False
    assert "no face found in the 1280x1280 photo" in checked.json()["reason"]
    assert time.monotonic() - started < PNG_SECONDS * slowdown


def test_an_upload_never_waits_for_the_cameras_engine(site: Site, face_photos: Path) -> None:
    photo = (face_photos / "obama.jpg").read_bytes()
    with site.app.services.engine._lock:  # a camera busy encoding for as long as this takes
        answer = httpx.post(
            f"{site.url}/api/v1/identify",
            files={"file": ("obama.jpg", photo, "image/jpeg")},
            headers=site.teller,
            timeout=20,
        )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["faces"]) == 1


def test_photo_work_stops_at_its_time_limit(
    tmp_path: Path, face_engine: FaceEngine, photo_engine: FaceEngine
) -> None:
    app = start_site(tmp_path, face_engine, photo_engine, LimitSettings(photo_seconds=0.05))
    try:
        with serve(app.web) as url:
            site = site_of(app, url)
            answer = httpx.post(
                f"{url}/api/v1/identify",
                files={"file": ("blank.png", blank_png(4000), "image/png")},
                headers=site.teller,
                timeout=60,
            )
    finally:
        app.stop()
    assert answer.status_code == 503, answer.text
    assert "took longer than 0.05 s to search and was given up" in answer.text


def test_photo_work_stops_when_its_client_leaves(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    png = blank_png(6300)
    boundary = "cut"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    port = int(site.url.rsplit(":", 1)[1])
    gate = site.app.web.state.gates.photos
    caplog.set_level(logging.INFO, logger="oneeye.web.offload")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            (
                f"POST /api/v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: {site.teller['Authorization']}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        deadline = time.monotonic() + 10
        while gate.in_flight == 0:
            assert time.monotonic() < deadline, "the photo never reached its thread"
            time.sleep(0.01)
    # The client has gone: the work is given up at its next step, well before it would end.
    deadline = time.monotonic() + 10
    while gate.in_flight:
        assert time.monotonic() < deadline, "the photo work went on without its client"
        time.sleep(0.05)
    assert "given up: the client left" in caplog.text
