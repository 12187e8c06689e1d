"""Gallery propagation (issue 6): an enrolment on the server to every one of N edges having it.

    python bench/edge_propagation.py [--edges 1 4 16] [--enrolments 20] [--smoke]
        [--broker mqtt://127.0.0.1:1883] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

A real ``oneeye serve`` (PostgreSQL, the MQTT bus) and N real ``oneeye edge`` processes run on
this machine, all under a topic prefix of the run's own on the broker. Each edge has one
camera playing a tiny blank clip (so the edges spend the cores on nothing but the gallery).
An admin enrols ``--enrolments`` people one after the other through the API (a person, then
a photo: the server detects and encodes the face, adds it to its gallery and publishes the
change). Every edge publishes its retained status with ``gallery_version`` and
``gallery_applied_at`` (wall clock) the moment a version comes into force; all processes share
this machine's clock.

Per enrolment: latency to *every* edge = the last edge's ``gallery_applied_at`` minus the time
the photo upload was sent (what an operator sees: includes the server's face detection and
encoding), and minus the time the change was heard on the broker by this script (the
propagation itself). p50/p95/max over the enrolments, for each N. Target p95 <= 1 s.

Writes ``bench/results/edge_propagation.json``. ``--smoke``: one edge, two enrolments,
nothing written (the test suite runs it so the script keeps working).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psycopg

from oneeye.bus.base import GALLERY_CHANGES, Message
from oneeye.bus.mqtt import MqttBus
from oneeye.services.auth import AuthService
from oneeye.services.edge.monitor import ALL_EDGE_STATUS
from oneeye.store.db import Database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PASSWORD = "correct horse battery"
PHOTO = Path.home() / ".cache/oneeye-tests/face_recognition-1.3.0-test_images/obama2.jpg"
FAST_ENGINE = {"ONEEYE_ENGINE__ALIGNMENT": "5", "ONEEYE_ENGINE__MIRROR": "false"}


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0..100) of ``values``."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    """p50 / p95 / max / mean of ``values`` (seconds, to 0.1 ms)."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "max": round(max(values), 4) if values else float("nan"),
        "mean": round(statistics.fmean(values), 4) if values else float("nan"),
    }


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in the PostgreSQL at ``base_url``, dropped afterwards."""
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{base_url}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def blank_clip(path: Path, frames: int = 10, fps: float = 5.0) -> Path:
    """A tiny clip with no face in it (a camera that costs next to nothing)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), 40 + i, dtype=np.uint8))
    writer.release()
    return path


class Proc:
    """A ``oneeye`` subprocess with its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "oneeye.cli", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM: a process started in the background of a script inherits
        SIGINT ignored, and then only a SIGKILL 60 s later stopped it) and wait."""
        if self.alive():
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a power cut would."""
        self.process.kill()
        self.process.wait()


class Deployment:
    """A central server and its edges on one broker prefix and one PostgreSQL schema."""

    def __init__(self, work: Path, broker: str, database_url: str, *, prefix: str = "") -> None:
        self.work = work
        self.broker = broker
        self.database_url = database_url
        self.run = uuid.uuid4().hex[:8]
        self.prefix = prefix or f"oneeye-bench/{self.run}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("ONEEYE_")}
        self.env = {
            **base,
            **FAST_ENGINE,
            "ONEEYE_BUS": broker,
            "ONEEYE_MQTT__TOPIC_PREFIX": self.prefix,
            "ONEEYE_MQTT__SESSION_EXPIRY": "600",
            "ONEEYE_MQTT__SHARE_GROUP": f"servers-{self.run}",
        }
        self.db = Database(database_url)
        self.db.migrate()
        self.auth = AuthService(self.db)
        self.auth.create_user("boss", PASSWORD, "admin")
        self.servers: list[Proc] = []
        self.edges: dict[str, Proc] = {}

    def start_server(
        self, name: str = "server", port: int | None = None, client: str = "server"
    ) -> Proc:
        """Start ``oneeye serve`` and wait until it answers. ``client`` names its MQTT
        session: a restarted server keeps its client id, and so the messages queued for it."""
        port = port or self.port
        env = {
            **self.env,
            "ONEEYE_DATABASE_URL": self.database_url,
            "ONEEYE_MQTT__CLIENT_ID": f"oneeye-{client}-{self.run}",
        }
        args = ["-v", "serve", "--port", str(port), "--data-dir", str(self.work / name)]
        proc = Proc(args, env, self.work / f"{name}.log")
        self.servers.append(proc)

        def answers() -> bool:
            if not proc.alive():
                raise RuntimeError(f"the server exited: {proc.log.read_text()[-2000:]}")
            try:
                url = f"http://127.0.0.1:{port}/openapi.json"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, 120, "the server")
        return proc

    def start_edge(self, edge_id: str, source: Path, server: str | None = None) -> Proc:
        """Start ``oneeye edge`` with one looping camera, with a key of its own (a key names
        its edge; the edge registers its camera with it), fetching its gallery from ``server``
        (a URL; the first server's by default)."""
        key = self.auth.create_api_key(edge_id, "edge", edge_id=edge_id)[1]
        env = {**self.env, "ONEEYE_EDGE_API_KEY": key}
        args = [
            "-v",
            "edge",
            "--server",
            server or self.url,
            "--camera",
            f"{edge_id}-cam={source}",
            "--edge-id",
            edge_id,
            "--data-dir",
            str(self.work / edge_id),
            "--detect-every",
            "5",
            "--min-face-px",
            "60",
            "--loop",
        ]
        proc = Proc(args, env, self.work / f"{edge_id}.log")
        self.edges[edge_id] = proc
        return proc

    @contextmanager
    def admin(self, url: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client logged in as the admin on ``url`` (the first server's by default)."""
        with httpx.Client(base_url=url or self.url, timeout=60) as client:
            response = client.post(
                "/api/v1/auth/login", json={"username": "boss", "password": PASSWORD}
            )
            response.raise_for_status()
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client

    def stop(self) -> None:
        """Stop every process (edges first)."""
        for proc in [*self.edges.values(), *self.servers]:
            proc.stop()
        self.db.close()


class StatusLog:
    """Every edge status and gallery change heard on the broker, with the time heard."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: list[dict[str, Any]] = []
        self.changes: list[tuple[float, dict[str, Any]]] = []

    def on_status(self, message: Message) -> None:
        """Keep an edge status."""
        with self.lock:
            self.statuses.append(message.payload)

    def on_change(self, message: Message) -> None:
        """Keep a gallery change with the time it was heard."""
        with self.lock:
            self.changes.append((time.time(), message.payload))

    def version(self, edge: str) -> int | None:
        """The newest gallery version an edge reported."""
        with self.lock:
            reported = [s.get("gallery_version") for s in self.statuses if s.get("edge") == edge]
        versions = [v for v in reported if isinstance(v, int)]
        return max(versions) if versions else None

    def applied_at(self, edge: str, version: int) -> float | None:
        """When an edge first reported ``version`` (or a later one) in force."""
        with self.lock:
            for status in self.statuses:
                if status.get("edge") == edge and (status.get("gallery_version") or -1) >= version:
                    return float(status["gallery_applied_at"])
        return None

    def change_for(self, person: str) -> tuple[float, int] | None:
        """When the ``add`` change of ``person`` was heard, and its version."""
        with self.lock:
            for heard, change in self.changes:
                templates = change.get("templates") or []
                if change.get("op") == "add" and any(t.get("person") == person for t in templates):
                    return heard, int(change["version"])
        return None


def run(
    edges: int, enrolments: int, broker: str, postgres: str, work: Path, pause: float
) -> dict[str, Any]:
    """One deployment with ``edges`` edges; ``enrolments`` timed enrolments, ``pause`` seconds
    apart."""
    clip = blank_clip(work / "blank.mp4")
    with postgres_schema(postgres) as url:
        deployment = Deployment(work, broker, url)
        log = StatusLog()
        listener = MqttBus(broker, topic_prefix=deployment.prefix)
        listener.subscribe(ALL_EDGE_STATUS, log.on_status)
        listener.subscribe(GALLERY_CHANGES, log.on_change)
        listener.start()
        try:
            deployment.start_server()
            names = [f"edge{i:02d}-{deployment.run}" for i in range(edges)]
            for name in names:
                deployment.start_edge(name, clip)
            wait_for(
                lambda: all(log.version(n) is not None for n in names),
                60 + 10 * edges,
                "every edge online with the gallery",
            )
            photo = PHOTO.read_bytes()
            total: list[float] = []
            from_bus: list[float] = []
            requests: list[float] = []
            with deployment.admin() as admin:
                for i in range(enrolments):
                    person = admin.post("/api/v1/people", json={"name": f"Person {i}"})
                    person.raise_for_status()
                    person_id = person.json()["id"]
                    sent = time.time()
                    upload = admin.post(
                        f"/api/v1/people/{person_id}/photos",
                        files={"file": ("face.jpg", photo, "image/jpeg")},
                    )
                    answered = time.time()
                    upload.raise_for_status()
                    wait_for(lambda: log.change_for(person_id) is not None, 10, "the change")  # noqa: B023
                    heard, version = log.change_for(person_id) or (0.0, 0)
                    wait_for(
                        lambda: all(log.applied_at(n, version) is not None for n in names),  # noqa: B023
                        30,
                        f"version {version} on every edge",
                    )
                    last = max(log.applied_at(n, version) or 0.0 for n in names)
                    total.append(last - sent)
                    from_bus.append(last - heard)
                    requests.append(answered - sent)
                    time.sleep(pause)
        finally:
            listener.stop()
            deployment.stop()
    return {
        "edges": edges,
        "enrolments": enrolments,
        "upload_to_every_edge_s": summary(total),
        "change_on_broker_to_every_edge_s": summary(from_bus),
        "enrol_request_s": summary(requests),
    }


def main() -> None:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--enrolments", type=int, default=20)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="Keep the logs folder.")
    parser.add_argument("--smoke", action="store_true", help="one edge, two enrolments")
    args = parser.parse_args()
    if args.smoke:
        args.edges, args.enrolments = [1], 2
    if not PHOTO.exists():
        raise SystemExit(f"needs the test photos (run the tests once): {PHOTO}")
    runs = []
    for edges in args.edges:
        work = Path(tempfile.mkdtemp(prefix=f"oneeye-prop{edges}-"))
        started = time.monotonic()
        pause = 0.0 if args.smoke else 0.5  # the smoke run checks the paths, not the figures
        result = run(edges, args.enrolments, args.broker, args.postgres, work, pause)
        result["wall_s"] = round(time.monotonic() - started, 1)
        print(json.dumps(result), flush=True)
        runs.append(result)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "benchmark": "edge_propagation",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python", "bench/edge_propagation.py", *sys.argv[1:]]),
        "target_p95_s": 1.0,
        "runs": runs,
    }
    if args.smoke:
        print(f"smoke run: {RESULTS / 'edge_propagation.json'} left as it was")
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "edge_propagation.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
