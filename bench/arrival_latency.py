"""Arrival latency of the whole server: from the frame in which a customer becomes
identifiable to the account card arriving over the WebSocket, with many tellers connected.

    python bench/arrival_latency.py [--lfw ../shared/data/lfw/images] [--customers 40]
        [--clients 200] [--width 1280 --height 720 --fps 25] [--seed 0] [--smoke]

A real ``OneEyeApp`` is served by uvicorn on a free port. ``--customers`` LFW people are
enrolled through the enrolment service from one photo each, with an account in the built-in
customer directory; a labelled clip (``bench.lib.synth``) shows each of them walk through
the door as another photo of theirs, one after the other. ``--clients`` WebSocket clients (the
``websockets`` library, in a separate process so the server's memory is its own) connect as
tellers with an API key. The clip is then played into a camera paced at its native frame
rate, as a live camera would deliver it.

Reported (``bench/results/arrival_latency.json``, and a histogram PNG if matplotlib is
installed):

(a) identifiable frame -> card received: the ground truth gives each visit's first frame in
    which the face is fully visible at ``min_face_px`` or more; its capture time is the clip's
    start plus its index over the frame rate. p50/p95 over every (arrival, client), and over
    arrivals of the slowest client. Target p95 <= 1 s.
(b) sighting published on the bus -> card received (store, directory lookup, event store,
    push), and event stored -> card received. Target <= 50 ms.
(c) fan-out: every arrival delivered to every client; the server's RSS growth per connected
    client.

``--smoke``: two customers, two clients, a small clip, results and clip in the run's
temporary folder (the test suite runs it on a tiny LFW-shaped folder so the script keeps
working).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.synth import Actor, GroundTruth, Movement, write_clip
from oneeye.app import OneEyeApp
from oneeye.bus.base import ALL_SIGHTINGS, SIGHTINGS, Message
from oneeye.bus.messages import SightingPayload
from oneeye.config import ServeSettings
from oneeye.errors import OneEyeError
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import new_id, utcnow
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image

logger = logging.getLogger("bench.arrival_latency")


def rss_bytes() -> int:
    """This process's resident memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# The teller clients, in their own process ------------------------------------------------------


def run_clients(
    url: str, key: str, count: int, ready: EventType, stop: EventType, results: Connection
) -> None:
    """Connect ``count`` WebSocket clients with API key ``key`` (in a header: the server
    refuses one in the URL), record when each frame arrives, send the records back when
    ``stop`` is set."""
    asyncio.run(_clients(url, key, count, ready, stop, results))


async def _clients(
    url: str, key: str, count: int, ready: EventType, stop: EventType, results: Connection
) -> None:
    from websockets.asyncio.client import connect  # noqa: PLC0415 - the client process only

    records: list[tuple[int, int, str, str | None, float]] = []
    sockets = []
    for index in range(count):
        sockets.append(
            await connect(
                url, additional_headers={"X-API-Key": key}, max_queue=None, open_timeout=30
            )
        )
        if index % 50 == 49:
            await asyncio.sleep(0)

    async def listen(index: int, ws: Any) -> None:
        try:
            async for text in ws:
                received = time.time()
                frame = json.loads(text)
                records.append(
                    (index, frame["id"], frame["type"], frame["data"].get("sighting_id"), received)
                )
        except Exception as exc:  # a dropped client shows up as missing deliveries
            logger.warning("client %d: %s", index, exc)

    tasks = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.send(records)
    results.close()


# The scenario -------------------------------------------------------------------------------


def enrol(
    app: OneEyeApp, lfw: Path, customers: int, rng: random.Random
) -> tuple[list[Actor], dict[str, str]]:
    """Enrol LFW people with accounts; returns their walking photos and folder -> person id."""
    s = app.services
    engine = s.engine
    folders = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 2)
    actors: list[Actor] = []
    ids: dict[str, str] = {}
    for folder in rng.sample(folders, len(folders)):
        if len(actors) == customers:
            break
        photos = sorted(folder.iterdir())
        try:
            walker = load_image(photos[1])
            actor = Actor(folder.name, walker, engine.enrolment_face(walker).box)
            account = f"ACC-{len(actors) + 1:04d}"
            s.directory.save(
                account,
                name=folder.name.replace("_", " "),
                account_type="checking",
                address=f"{len(actors) + 1} Main Street",
                balance=f"{rng.randint(10, 99999)}.{rng.randint(0, 99):02d}",
            )
            person = s.enrolment.create_person(
                folder.name.replace("_", " "), ["customers"], actor="system", account_id=account
            )
            s.enrolment.enrol_photo(
                person.id, photos[0].read_bytes(), photos[0].name, actor="system"
            )
        except OneEyeError as exc:
            print(f"skipped {folder.name}: {exc}")
            continue
        actors.append(actor)
        ids[folder.name] = person.id
    return actors, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw/images"))
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--face", type=int, default=110, help="face height in the clip, px")
    parser.add_argument("--min-face", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--direct", type=int, default=20, help="sightings put on the bus with the camera idle"
    )
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--clip-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "oneeye-arrival-clips",
        help="where the rendered clip is kept for the next run",
    )
    parser.add_argument("--smoke", action="store_true", help="two customers, two clients")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="oneeye-arrival-"))
    if args.smoke:
        args.customers, args.clients, args.direct = 2, 2, 2
        args.width, args.height, args.fps, args.face, args.min_face = 480, 360, 10.0, 100, 60
        args.results, args.clip_cache = work / "results", work / "clips"
    # Seconds: each walk, from one walk's start to the next's, the empty door before the first
    # walk (and one step more after the last), the pause for the server's memory to settle,
    # between sightings put on the bus directly. The smoke run's are shorter: it checks the
    # paths, not the figures.
    walk, step_s, empty, settle, gap = (
        (1.5, 1.75, 0.5, 0.5, 0.1) if args.smoke else (2.5, 2.75, 1.0, 2.0, 0.5)
    )
    settings = ServeSettings(data_dir=work / "data")
    app = OneEyeApp(settings, engine=FaceEngine(settings.engine), announce=lambda _: None)
    published: dict[str, tuple[float, int, str]] = {}

    def on_sighting(message: Message) -> None:
        # Subscribed before the server's consumer, so this runs first: the publish time.
        payload = message.payload
        if payload["event"] == "sighting":
            published[payload["id"]] = (time.time(), payload["frame"], payload["seen_at"])

    app.services.bus.subscribe(ALL_SIGHTINGS, on_sighting)
    app.start()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app.web, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, name="uvicorn", daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    began = time.perf_counter()
    actors, person_ids = enrol(app, args.lfw, args.customers, rng)
    print(f"enrolled {len(actors)} customers in {time.perf_counter() - began:.1f} s")
    fps, width, height = args.fps, args.width, args.height
    length, step = round(walk * fps), round(step_s * fps)
    movements = []
    for number in range(len(actors)):
        start = number * step + round(empty * fps)
        y = height * (0.45 + 0.1 * (number % 2))
        a, b = (width * 0.1, width * 0.9) if number % 2 == 0 else (width * 0.9, width * 0.1)
        movements.append(Movement(number, start, start + length, (a, y), (b, y), args.face))
    frames = len(actors) * step + length + 2 * round(empty * fps)
    args.clip_cache.mkdir(parents=True, exist_ok=True)
    clip = args.clip_cache / (
        f"door-{len(actors)}-{args.seed}-{width}x{height}-{fps:g}-{args.face}.mp4"
    )
    began = time.perf_counter()
    truth = GroundTruth.load(clip.with_suffix(".json")) if clip.exists() else None
    if truth is None or {str(v["person"]) for v in truth.visits} != set(person_ids):
        truth = write_clip(
            clip, actors, movements, width=width, height=height, frames=frames, fps=fps, seed=1
        )
    print(
        f"clip: {frames} frames {width}x{height} at {fps:g} fps ({frames / fps:.0f} s), "
        f"ready in {time.perf_counter() - began:.1f} s ({clip})"
    )
    identifiable: dict[str, int] = {}
    visit_frames: dict[str, tuple[int, int]] = {}
    for index, faces in enumerate(truth.faces):
        for face in faces:
            top, _, bottom, _ = face.box
            if bottom - top + 1 >= args.min_face and face.covered == 0:
                identifiable.setdefault(person_ids[face.person], index)
    for visit in truth.visits:
        visit_frames[person_ids[str(visit["person"])]] = (
            int(visit["first_frame"]),
            int(visit["last_frame"]),
        )

    _, key = app.services.auth.create_api_key("bench tellers", "teller")
    since = app.services.events.latest_id()
    url = f"ws://127.0.0.1:{port}/ws?since={since}"
    rss_before = rss_bytes()
    context = mp.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    receiver, sender = context.Pipe(duplex=False)
    clients = context.Process(
        target=run_clients, args=(url, key, args.clients, ready, stop, sender), daemon=True
    )
    clients.start()
    if not ready.wait(120):
        raise SystemExit("the WebSocket clients did not connect within 120 s")
    time.sleep(settle)
    rss_connected = rss_bytes()
    connected = app.services.events.subscribers
    grown = (rss_connected - rss_before) / 2**20
    print(f"{connected} WebSocket clients connected; server RSS +{grown:.1f} MiB")

    app.services.cameras.add(
        CameraConfig(
            id="door", name="Front door", source=str(clip), pace=True, min_face_px=args.min_face
        )
    )
    played = time.perf_counter()
    load_before = os.getloadavg()[0]
    while app.services.cameras.status("door").state not in ("offline", "ended"):
        time.sleep(0.2)
    status = app.services.cameras.status("door")
    load_after = os.getloadavg()[0]
    play_seconds = time.perf_counter() - played
    print(f"clip played in {time.perf_counter() - played:.1f} s ({status.error})")
    time.sleep(settle)
    rss_after = rss_bytes()
    # (b) once more with the camera idle: sightings published on the bus as a camera would.
    direct: set[str] = set()
    people = list(person_ids.values())
    for number in range(args.direct):
        sighting_id = new_id()
        direct.add(sighting_id)
        app.services.bus.publish(
            SIGHTINGS.format(camera="door"),
            SightingPayload.model_validate(
                {
                    "id": sighting_id,
                    "event": "sighting",
                    "camera": "door",
                    "track": 10_000 + number,
                    "person": people[number % len(people)],
                    "watchlist": "customers",
                    "distance": 0.25,
                    "quality": 0.9,
                    "frame": 0,
                    "t": 0.0,
                    "box": [100, 210, 210, 100],
                    "seen_at": utcnow().isoformat(),
                    "snapshot_key": None,
                    "embedding": None,
                }
            ),
        )
        time.sleep(gap)
    time.sleep(settle / 2)  # the last of them delivered
    stop.set()
    records: list[tuple[int, int, str, str | None, float]] = receiver.recv()
    clients.join(30)
    events = {e.id: e for e in app.services.events.since(since, "admin", limit=100_000)}
    server.should_exit = True
    app.stop()

    # Figures ------------------------------------------------------------------------------------
    arrivals = {
        e.payload["sighting_id"]: e for e in events.values() if e.type == "customer.arrived"
    }
    from_camera = [v for k, v in published.items() if k not in direct]
    start_wall = min(
        datetime.fromisoformat(seen).timestamp() - frame / fps for _, frame, seen in from_camera
    )
    lag = [
        datetime.fromisoformat(seen).timestamp() - (start_wall + frame / fps)
        for _, frame, seen in from_camera
    ]
    a_all: list[float] = []
    b_bus: list[float] = []
    b_store: list[float] = []
    b_direct: list[float] = []
    b_first: list[float] = []
    per_arrival_worst: list[float] = []
    delivered: dict[str, int] = {}
    wrong = 0
    for sighting_id, event in arrivals.items():
        got = [r for r in records if r[1] == event.id]
        delivered[sighting_id] = len({r[0] for r in got})
        if got and sighting_id in published:
            b_first.append(min(r[4] for r in got) - published[sighting_id][0])
        if sighting_id in direct:
            b_direct.extend(r[4] - published[sighting_id][0] for r in got)
            continue
        person = event.payload["person_id"]
        frame = published[sighting_id][1] if sighting_id in published else -1
        first, last = visit_frames.get(person, (-1, -1))
        if not first <= frame <= last:
            wrong += 1
        visible_at = start_wall + identifiable[person] / fps
        latencies = [r[4] - visible_at for r in got]
        a_all.extend(latencies)
        if latencies:
            per_arrival_worst.append(max(latencies))
        if sighting_id in published:
            b_bus.extend(r[4] - published[sighting_id][0] for r in got)
        b_store.extend(r[4] - event.at.timestamp() for r in got)
    complete = sum(1 for n in delivered.values() if n == args.clients)
    result: dict[str, Any] = {
        "command": "python bench/arrival_latency.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "clip_cache"
        ),
        "clip": {"frames": frames, "width": width, "height": height, "fps": fps},
        "customers_enrolled": len(actors),
        "visits": len(truth.visits),
        "arrivals": len(arrivals) - len(direct & set(arrivals)),
        "wrong_arrivals": wrong,
        "clients": args.clients,
        "clients_connected": connected,
        "arrivals_with_direct": len(arrivals),
        "arrivals_delivered_to_every_client": complete,
        "a_identifiable_to_ws_s": {
            "p50": percentile(a_all, 50),
            "p95": percentile(a_all, 95),
            "max": max(a_all, default=float("nan")),
            "slowest_client_per_arrival_p50": percentile(per_arrival_worst, 50),
            "slowest_client_per_arrival_p95": percentile(per_arrival_worst, 95),
        },
        "b_bus_to_ws_ms": {
            "p50": 1000 * percentile(b_bus, 50),
            "p95": 1000 * percentile(b_bus, 95),
            "max": 1000 * max(b_bus, default=float("nan")),
        },
        "b_bus_to_ws_camera_idle_ms": {
            "sightings": len(direct),
            "deliveries": len(b_direct),
            "p50": 1000 * percentile(b_direct, 50),
            "p95": 1000 * percentile(b_direct, 95),
            "max": 1000 * max(b_direct, default=float("nan")),
        },
        "b_bus_to_first_client_ms": {
            "p50": 1000 * percentile(b_first, 50),
            "p95": 1000 * percentile(b_first, 95),
        },
        "b_event_stored_to_ws_ms": {
            "p50": 1000 * percentile(b_store, 50),
            "p95": 1000 * percentile(b_store, 95),
        },
        "camera_lag_behind_real_time_s": {"p50": percentile(lag, 50), "max": max(lag, default=0)},
        "server_rss_mib": {
            "before_clients": rss_before / 2**20,
            "clients_connected": rss_connected / 2**20,
            "after_clip": rss_after / 2**20,
        },
        "rss_per_client_kib": (rss_connected - rss_before) / max(1, connected) / 1024,
        "frames_processed": status.frames,
        "frames_dropped_late": status.dropped,
        "clip_seconds": frames / fps,
        "play_seconds": play_seconds,
        "load_average_1min": {"clip_start": load_before, "clip_end": load_after},
        "cpus": os.cpu_count(),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "arrival_latency.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    try:
        import matplotlib  # noqa: PLC0415 - optional

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.hist(a_all, bins=40, color="#3498db")
    left.axvline(1.0, color="#e74c3c", linestyle="--", label="target p95 1 s")
    left.set_xlabel("identifiable frame -> card on the WebSocket (s)")
    left.set_ylabel("deliveries")
    left.legend()
    right.hist([1000 * v for v in b_bus], bins=40, color="#2ecc71")
    right.axvline(50, color="#e74c3c", linestyle="--", label="target 50 ms")
    right.set_xlabel("sighting on the bus -> card on the WebSocket (ms)")
    right.legend()
    figure.suptitle(
        f"{result['arrivals']} arrivals x {args.clients} teller clients, "
        f"{width}x{height} at {fps:g} fps, median {statistics.median(a_all) if a_all else 0:.2f} s"
    )
    figure.tight_layout()
    figure.savefig(args.results / "arrival_latency.png", dpi=100)
    print(f"wrote {args.results / 'arrival_latency.png'}")


if __name__ == "__main__":
    main()
