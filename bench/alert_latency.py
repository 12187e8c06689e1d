"""Amber Alert activation: from a case's photo accepted by the server to every running camera
worker recognising the face.

    python bench/alert_latency.py [--lfw ../shared/data/lfw/images] [--cases 30]
        [--cameras 4] [--width 480 --height 360 --fps 10] [--seed 0] [--smoke]

A real ``OneEyeApp`` (SQLite, in-process bus) is served by uvicorn on a free port, with an
``AlertService`` on its services and ``--cameras`` camera workers. For each case an LFW person
is picked whose first two photos the gallery matches to each other (distance <= ``--within``;
how often one photo suffices is measured by the LFW benchmarks, not here). Every camera
plays, paced at its native frame rate and looping, a labelled clip (``bench.lib.synth``)
in which that person walks through the frame (about ``--walk`` seconds in view, then a short
gap) as one photo of theirs. A reporter then files the case over HTTP (``POST
/api/v1/cases``, multipart) with the OTHER photo, at a random moment of the walk, after every
camera has seen the person as a stranger. The case is resolved before the next one.

Measured per case, from the moment the POST's response is received (and from the moment it
was sent):

(a) gallery active: a probe thread asks the shared ``GalleryIndex`` (the one every camera
    worker in this process searches) about the clip photo's face every millisecond.
(b) per camera, first frame identifying the person: the gallery's ``identify_batch`` is
    wrapped to note, per camera worker thread, the first call after the upload whose answer
    names the case's person.
(c) per camera, first live ``CaseMatch`` (sighting stored, match and notifications written).

Results: ``bench/results/alert_latency.json``. Target: p95 of (b) and (c) <= 1 s.
``--smoke``: one case, one camera, results in the run's temporary folder (the test suite
runs it on a tiny LFW-shaped folder so the script keeps working).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import uvicorn
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.synth import Actor, Movement, write_clip
from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings
from oneeye.errors import OneEyeError
from oneeye.services.alerts import AlertService
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import CaseMatch
from oneeye.types import Identification
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image
from oneeye.web.routes import cases

logger = logging.getLogger("bench.alert_latency")

PASSWORD = "bench password 1234"


class Quiet:
    """The notifier's stand-in: the delivery side is measured by bench/alert_delivery.py."""

    def wake(self) -> None:
        """Nothing to send here."""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values``."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    """p50 / p95 / max of latencies in seconds."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "max": round(max(values), 4) if values else float("nan"),
        "mean": round(statistics.fmean(values), 4) if values else float("nan"),
    }


def pick_people(
    lfw: Path, engine: FaceEngine, count: int, seed: int, within: float
) -> list[tuple[str, Path, Path]]:
    """``count`` LFW people with two usable photos that the gallery matches to each other
    (distance <= ``within``): ``(name, upload photo, clip photo)``. Recognition accuracy is
    measured in the LFW benchmarks; here a person the threshold cannot match from one photo
    would only measure a timeout."""
    names = sorted(d.name for d in lfw.iterdir() if d.is_dir() and len(list(d.iterdir())) >= 2)
    random.Random(seed).shuffle(names)
    chosen = []
    for name in names:
        photos = sorted((lfw / name).iterdir())[:2]
        try:
            first, second = (engine.enrolment_face(load_image(p)).embedding for p in photos)
        except OneEyeError:
            continue
        if float(np.linalg.norm(first - second)) > within:
            continue
        chosen.append((name, photos[0], photos[1]))
        if len(chosen) == count:
            break
    return chosen


def walking_clip(
    folder: Path, engine: FaceEngine, name: str, photo: Path, args: argparse.Namespace
) -> tuple[Path, npt.NDArray[np.float32]]:
    """A clip of the person walking through the frame once (looped by the camera), and the
    embedding of the photo it is made from."""
    image = load_image(photo)
    face = engine.enrolment_face(image)
    walk = round(args.walk * args.fps)
    gap = round(args.gap * args.fps)
    mid = args.height / 2
    movements = [
        Movement(0, 0, walk, (args.width * 0.1, mid), (args.width * 0.9, mid), args.face_px)
    ]
    path = folder / f"{name}.mp4"
    write_clip(
        path,
        [Actor(name, image, face.box)],
        movements,
        width=args.width,
        height=args.height,
        frames=walk + gap,
        fps=args.fps,
    )
    return path, face.embedding


class IdentifyRecorder:
    """Wraps the shared gallery's ``identify_batch`` to note, per camera thread, when it
    first names a person (an observer: answers are returned unchanged)."""

    def __init__(self, gallery: Any) -> None:
        self._inner: Callable[..., list[Identification]] = gallery.identify_batch
        self._lock = threading.Lock()
        self.first: dict[tuple[str, str], float] = {}
        """(thread name, person) -> time.time() of the first answer naming the person."""
        gallery.identify_batch = self

    def __call__(self, embeddings: Any, k: int = 5) -> list[Identification]:
        answers = self._inner(embeddings, k=k)
        thread = threading.current_thread().name
        if thread.startswith("camera-"):
            now = time.time()
            with self._lock:
                for answer in answers:
                    if answer.match is not None:
                        self.first.setdefault((thread, answer.match.person), now)
        return answers


def wire_alerts(app: OneEyeApp) -> AlertService:
    """The server's AlertService (built on its services until ``oneeye.app`` wires one)."""
    wired = getattr(app.services, "alerts", None)
    if isinstance(wired, AlertService):
        return wired
    s = app.services
    service = AlertService(
        s.db,
        s.photos,
        s.enrolment,
        s.gallery_service,
        s.events,
        s.sightings,
        Quiet(),
        s.settings.alerts,
        cooldown=s.settings.notify.cooldown,
        public_url=s.settings.public_url,
    )
    if not any(getattr(r, "path", "").startswith("/api/v1/cases") for r in app.web.routes):
        app.web.include_router(cases.router, prefix="/api/v1")
    app.web.state.alerts = service
    service.start()
    return service


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    """Poll ``condition``; whether it held within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw/images"))
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--face-px", type=int, default=96)
    parser.add_argument("--walk", type=float, default=1.5, help="seconds in view per pass")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds out of view per pass")
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument(
        "--within",
        type=float,
        default=0.26,
        help="only people whose two photos are this close (the threshold is 0.32)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--smoke", action="store_true", help="one case, one camera")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logger.setLevel(logging.INFO)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="oneeye-alert-bench-"))
    if args.smoke:
        args.cases, args.cameras, args.results = 1, 1, tmp / "results"
    engine = FaceEngine()
    people = pick_people(args.lfw, engine, args.cases, args.seed, args.within)
    logger.info("rendering %d clips into %s", len(people), tmp)
    clips = [walking_clip(tmp, engine, name, clip, args) for name, _, clip in people]

    settings = ServeSettings(data_dir=tmp / "data")
    app = OneEyeApp(settings, engine=engine)
    recorder = IdentifyRecorder(app.services.gallery)
    app.start()
    alerts = wire_alerts(app)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app.web, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, name="uvicorn", daemon=True).start()
    wait_until(lambda: server.started, 10)
    app.services.auth.create_user("rita", PASSWORD, "reporter")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    login = client.post("/api/v1/auth/login", json={"username": "rita", "password": PASSWORD})
    login.raise_for_status()
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]

    manager = app.services.cameras
    cameras = [f"cam{n}" for n in range(args.cameras)]
    rows: list[dict[str, Any]] = []
    try:
        for number, ((name, upload, _), (clip, probe)) in enumerate(
            zip(people, clips, strict=True)
        ):
            for camera in cameras:
                config = CameraConfig(
                    id=camera,
                    name=camera,
                    source=str(clip),
                    pace=True,
                    loop=True,
                    min_face_px=80,
                )
                if number == 0:
                    manager.add(config)
                else:
                    manager.update(camera, source=str(clip))
            # Every camera has seen the person as a stranger; then a random moment of a pass.
            seen = wait_until(
                lambda: all(manager.status(c).sightings >= 1 for c in cameras), args.timeout
            )
            if not seen:
                logger.warning("case %d (%s): not every camera saw the person", number, name)
            time.sleep(rng.uniform(0.0, args.walk + args.gap))

            gallery_at: list[float] = []

            def probe_gallery(
                embedding: npt.NDArray[np.float32] = probe, found: list[float] = gallery_at
            ) -> None:
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline:
                    if app.services.gallery.identify(embedding).match is not None:
                        found.append(time.time())
                        return
                    time.sleep(0.001)

            prober = threading.Thread(target=probe_gallery, daemon=True)
            sent = time.time()
            prober.start()
            response = client.post(
                "/api/v1/cases",
                data={"name": name.replace("_", " ")},
                files={"photo": (upload.name, upload.read_bytes(), "image/jpeg")},
            )
            received = time.time()
            response.raise_for_status()
            case = response.json()
            person = case["person_id"]

            def live_matches(case_id: str = case["id"]) -> dict[str, tuple[float, float]]:
                """Per camera, the first live match: (found at, frame captured at)."""
                with app.services.db.session() as session:
                    found = session.execute(
                        select(CaseMatch.camera_id, CaseMatch.found_at, CaseMatch.seen_at).where(
                            CaseMatch.case_id == case_id, CaseMatch.kind == "live"
                        )
                    ).all()
                first: dict[str, tuple[float, float]] = {}
                for camera_id, at, seen in found:
                    stamps = (at.timestamp(), seen.timestamp())
                    first[camera_id] = min(first.get(camera_id, stamps), stamps)
                return first

            wait_until(lambda: len(live_matches()) == len(cameras), args.timeout, 0.02)
            prober.join()
            matched = live_matches()
            identified = {
                camera: recorder.first.get((f"camera-{camera}", person)) for camera in cameras
            }
            row = {
                "case": number,
                "person": name,
                "upload_seconds": round(received - sent, 4),
                "gallery_from_sent": round(gallery_at[0] - sent, 4) if gallery_at else None,
                "gallery_from_response": round(gallery_at[0] - received, 4) if gallery_at else None,
                "identified_from_response": {
                    c: None if t is None else round(t - received, 4) for c, t in identified.items()
                },
                "match_from_response": {
                    c: round(matched[c][0] - received, 4) if c in matched else None for c in cameras
                },
                "frame_from_response": {
                    c: round(matched[c][1] - received, 4) if c in matched else None for c in cameras
                },
                "match_from_frame": {
                    c: round(matched[c][0] - matched[c][1], 4) if c in matched else None
                    for c in cameras
                },
                "camera_fps": {c: round(manager.status(c).fps, 1) for c in cameras},
                "retro_matches": sum(1 for m in case["timeline"] if m["kind"] == "retro"),
            }
            rows.append(row)
            logger.info(
                "case %2d %-28s upload %.2f s, gallery %+.3f s, identified %s, matched %s",
                number,
                name,
                row["upload_seconds"],
                row["gallery_from_response"] or float("nan"),
                row["identified_from_response"],
                row["match_from_response"],
            )
            resolved = client.post(f"/api/v1/cases/{case['id']}/resolve")
            resolved.raise_for_status()
    finally:
        alerts.stop()
        server.should_exit = True
        app.stop()

    def collect(key: str) -> tuple[list[float], int]:
        values = [v for r in rows for v in r[key].values() if v is not None]
        missing = sum(1 for r in rows for v in r[key].values() if v is None)
        return values, missing

    identified_all, identified_missing = collect("identified_from_response")
    matched_all, matched_missing = collect("match_from_response")
    frame_all, _ = collect("frame_from_response")
    server_side, _ = collect("match_from_frame")
    fps = [v for r in rows for v in r["camera_fps"].values()]
    gallery = [r["gallery_from_response"] for r in rows if r["gallery_from_response"] is not None]
    gallery_sent = [r["gallery_from_sent"] for r in rows if r["gallery_from_sent"] is not None]
    slowest_identified = [
        max(v for v in r["identified_from_response"].values() if v is not None)
        for r in rows
        if all(v is not None for v in r["identified_from_response"].values())
    ]
    slowest_matched = [
        max(r["match_from_response"].values())
        for r in rows
        if all(v is not None for v in r["match_from_response"].values())
    ]
    result = {
        "command": "python bench/alert_latency.py "
        f"--cases {args.cases} --cameras {args.cameras} --width {args.width} "
        f"--height {args.height} --fps {args.fps} --walk {args.walk} --gap {args.gap} "
        f"--within {args.within} "
        f"--seed {args.seed}",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "upload_seconds": summary([r["upload_seconds"] for r in rows]),
        "gallery_active_from_sent": summary(gallery_sent),
        "gallery_active_from_response": summary(gallery),
        "first_identifying_frame_per_camera": summary(identified_all),
        "first_identifying_frame_missing": identified_missing,
        "every_camera_identified": summary(slowest_identified),
        "first_live_match_per_camera": summary(matched_all),
        "first_live_match_missing": matched_missing,
        "every_camera_matched": summary(slowest_matched),
        "confirming_frame_per_camera": summary(frame_all),
        "confirming_frame_to_match": summary(server_side),
        "camera_fps": summary(fps),
        "cases": rows,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / "alert_latency.json"
    out.write_text(json.dumps(result, indent=2))
    for key in (
        "upload_seconds",
        "gallery_active_from_sent",
        "gallery_active_from_response",
        "first_identifying_frame_per_camera",
        "every_camera_identified",
        "first_live_match_per_camera",
        "every_camera_matched",
        "confirming_frame_per_camera",
        "confirming_frame_to_match",
        "camera_fps",
    ):
        print(f"{key:38s} {result[key]}")
    print(f"missing: identified {identified_missing}, matched {matched_missing}; wrote {out}")


if __name__ == "__main__":
    main()
