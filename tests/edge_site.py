"""The processes of an edge + central site over the real Mosquitto and PostgreSQL, for the
tests that run them: ``oneeye serve`` and ``oneeye edge`` subprocesses under one topic prefix,
a test client on the broker hearing the edges' statuses and sightings, and the site's database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from oneeye.bus.base import ALL_EDGE_SIGHTINGS, EDGE_CAMERA_STATUS
from oneeye.bus.mqtt import MqttBus
from oneeye.services.auth import AuthService
from oneeye.services.edge.monitor import ALL_EDGE_STATUS, EdgeMonitor
from oneeye.services.edge.registry import CameraRegistry
from oneeye.store.db import Database
from tests.bus.helpers import Inbox, Note
from tests.conftest import free_port

PASSWORD = "correct horse battery"
START_TIMEOUT = 180.0
"""A server or edge loads its face models at start: minutes on a busy two-core machine."""
FAST_ENGINE = {"ONEEYE_ENGINE__ALIGNMENT": "5", "ONEEYE_ENGINE__MIRROR": "false"}
"""Every process encodes faces the same way (cheaper than the default: two cores, three
processes)."""


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    explain: Callable[[], str] | None = None,
) -> None:
    """Wait until ``condition()``; on timeout fail naming ``what`` and, when given, what
    ``explain()`` says about the state then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    detail = f": {explain()}" if explain is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


class Process:
    """A ``oneeye`` subprocess with its output in files."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path, name: str) -> None:
        self.name = name
        self.stderr = logs / f"{name}.err"
        with (logs / f"{name}.out").open("ab") as out, self.stderr.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "oneeye.cli", *args], stdout=out, stderr=err, env=env
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:]

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A process that ignores Ctrl-C is a bug to see, not to kill quietly.
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"{self.process.args!r} did not stop within 30 s of {how.name}:\n{self.log()}"
            ) from None


class Site:
    """The server, its edges, and a test client on the broker, all under one topic prefix."""

    def __init__(self, tmp: Path, broker_url: str, database_url: str) -> None:
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.run = uuid.uuid4().hex[:8]
        self.prefix = f"oneeye-test/{self.run}"
        self.broker_url = broker_url
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("ONEEYE_")}
        self.env = {
            **base,
            **FAST_ENGINE,
            "ONEEYE_BUS": broker_url,
            "ONEEYE_MQTT__TOPIC_PREFIX": self.prefix,
            "ONEEYE_MQTT__SESSION_EXPIRY": "300",
            "ONEEYE_MQTT__SHARE_GROUP": f"servers-{self.run}",
        }
        self.db = Database(database_url)
        self.db.migrate()
        self.auth = AuthService(self.db)
        self.auth.create_user("boss", PASSWORD, "admin")
        self.edge_keys: list[str] = []
        self.server: Process | None = None
        self.edges: dict[str, Process] = {}
        self.servers: list[Process] = []
        """Servers besides ``server`` (:func:`start_second_server`)."""
        self.statuses = Inbox()
        self.sightings = Inbox()
        self.bus = MqttBus(broker_url, topic_prefix=self.prefix)
        self.bus.subscribe(ALL_EDGE_STATUS, self.statuses)
        self.bus.subscribe(ALL_EDGE_SIGHTINGS, self.sightings)
        self.bus.start()
        # The servers' watch on edges, as a server runs it (see services/edge/monitor.py).
        self.monitor = EdgeMonitor(self.bus, None, CameraRegistry(self.db))
        self.monitor.start()

    def start_server(self) -> None:
        env = {
            **self.env,
            "ONEEYE_DATABASE_URL": self.database_url,
            "ONEEYE_MQTT__CLIENT_ID": f"oneeye-serve-{self.run}",
        }
        args = ["-v", "serve", "--port", str(self.port), "--data-dir", str(self.tmp / "server")]
        self.server = Process(args, env, self.logs, f"server-{time.monotonic():.0f}")
        server = self.server

        def answers() -> bool:
            assert server.alive(), server.log()
            try:
                return httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, START_TIMEOUT, "the server to answer")

    def start_edge(self, name: str, clip: Path, server: str | None = None) -> str:
        """Start ``oneeye edge`` playing ``clip`` in a loop, fetching its gallery from
        ``server`` (a URL; the site's server by default); returns its edge id."""
        edge_id = f"{name}-{self.run}"
        key = self.auth.create_api_key(edge_id, "edge", edge_id=edge_id)[1]
        self.edge_keys.append(key)
        env = {**self.env, "ONEEYE_EDGE_API_KEY": key}
        args = [
            "-v",
            "edge",
            "--server",
            server or self.url,
            "--camera",
            f"{name}-cam={clip}",
            "--edge-id",
            edge_id,
            "--data-dir",
            str(self.tmp / edge_id),
            "--detect-every",
            "2",
            "--min-face-px",
            "60",
            "--loop",
        ]
        self.edges[edge_id] = Process(args, env, self.logs, edge_id)
        return edge_id

    def edge_status(self, edge_id: str) -> dict[str, Any] | None:
        mine = [p for p in self.statuses.bodies() if p.get("edge") == edge_id]
        return mine[-1] if mine else None

    def gallery_version(self, edge_id: str) -> int | None:
        version = (self.edge_status(edge_id) or {}).get("gallery_version")
        return version if isinstance(version, int) else None

    @contextmanager
    def admin(self, url: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client logged in as the admin on ``url`` (the site's server by default)."""
        with httpx.Client(base_url=url or self.url, timeout=30) as client:
            response = client.post(
                "/api/v1/auth/login", json={"username": "boss", "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client

    def stored(self, sql: str, **params: object) -> list[Any]:
        with self.db.session() as session:
            return list(session.execute(text(sql), params).all())

    def take_over_unfinished_actions(self) -> int:
        """End the leases of the sighting actions a killed server left unfinished (as if their
        60 s had run out) and wait for a sweeper (every 5 s) to take them over; how many
        there were."""
        with self.db.session() as session:
            left = int(session.execute(text("SELECT count(*) FROM sighting_actions")).scalar_one())
            session.execute(
                text("UPDATE sighting_actions SET lease_until = :t"),
                {"t": datetime.now(UTC) - timedelta(seconds=1)},
            )
        wait_for(
            lambda: self.stored("SELECT count(*) FROM sighting_actions")[0][0] == 0,
            30,
            "the unfinished actions taken over",
        )
        return left

    def announced(self) -> list[str]:
        """The sighting ids of the dashboard's sighting events, repeats included."""
        rows = self.stored("SELECT payload FROM dashboard_events WHERE type = 'sighting'")
        return [json_object(r[0])["sighting_id"] for r in rows]

    def close(self) -> None:
        servers = [*self.servers, *([self.server] if self.server else [])]
        for process in [*self.edges.values(), *servers]:
            process.stop()
        self.bus.stop()
        cleaner = MqttBus(self.broker_url, topic_prefix=self.prefix)
        cleaner.start()
        for edge_id in self.edges:
            cleaner.clear_retained(f"oneeye/v1/edges/{edge_id}/status")
            camera = f"{edge_id.split('-')[0]}-cam"
            cleaner.clear_retained(EDGE_CAMERA_STATUS.format(edge=edge_id, camera=camera))
        cleaner.stop()
        self.db.close()


def start_second_server(site: Site, name: str, port: int) -> Process:
    """Another ``oneeye serve`` on the site's database and broker (its own client id, data
    folder and port), stopped with the rest; started again under the same ``name`` it
    resumes its broker session."""
    env = {
        **site.env,
        "ONEEYE_DATABASE_URL": site.database_url,
        "ONEEYE_MQTT__CLIENT_ID": f"oneeye-{name}-{site.run}",
    }
    args = ["-v", "serve", "--port", str(port), "--data-dir", str(site.tmp / name)]
    server = Process(args, env, site.logs, f"{name}-{time.monotonic():.0f}")
    site.servers.append(server)  # stopped with the rest

    def answers() -> bool:
        assert server.alive(), server.log()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, START_TIMEOUT, f"server {name}")
    return server


def edge_sighting(ident: str, number: int, camera: str) -> Note:
    """A sighting of an unknown face as an edge sends it."""
    return Note.model_validate(
        {
            "id": ident,
            "event": "sighting",
            "camera": camera,
            "track": number,
            "person": None,
            "watchlist": None,
            "distance": None,
            "quality": 0.5,
            "frame": number,
            "t": number / 10,
            "box": [1, 2, 3, 4],
            "seen_at": datetime.now(UTC).isoformat(),
            "snapshot_key": None,
            "embedding": None,
        }
    )


def json_object(value: object) -> dict[str, Any]:
    """A JSON column's value as a dict (PostgreSQL gives one, SQLite a string)."""
    return value if isinstance(value, dict) else json.loads(str(value))
