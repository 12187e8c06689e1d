"""Sighting throughput and faults (issue 6): edges -> broker -> server -> PostgreSQL.

    python bench/edge_faults.py [--edges 16] [--per-edge 1000] [--smoke]    # throughput
    python bench/edge_faults.py --faults [--fault-edges 4] [--rate 20] [--broker-down 30]
        [--pause 5] [--smoke]

Everything runs on this machine: a Mosquitto of the benchmark's own on a free port (it is
stopped in the fault run; the shared one at 1883 is never touched), a real ``oneeye serve``
(PostgreSQL schema of its own, the MQTT bus) and *simulated edges*: processes that run the real
edge sending path (``EdgeOutbox`` on disk -> ``OutboxSender`` -> ``MqttBus`` with the edge's
will, deleting only what ``flush`` confirmed) and feed it real sighting messages (an unknown
face with its 128-D embedding, as a camera worker publishes it) instead of camera frames. Each
writes the id of every sighting it queued to ``generated.txt`` (after the queue committed it).

Throughput: ``--edges`` simulated edges each queue ``--per-edge`` sightings as fast as they
can; sustained rate = sightings stored / (last stored - first queued), and the rate stored
over the middle 80 % of the run, from the database's count sampled every 0.5 s.

Faults: ``--fault-edges`` edges at ``--rate`` sightings/s each, then in turn, each time waiting
until everything queued before the fault's end is stored (time to recover); P is ``--pause``
(5 s), the run's unit of waiting (2P of sending once every edge sends, P after each fault):
  1. kill -9 of one edge mid-stream, restarted P later with the same data folder;
  2. the broker stopped for ``--broker-down`` s, then started again (its sessions persisted);
     halfway through, another edge is killed with -9 (its backlog on its disk) and restarted
     P later;
  3. the server stopped (Ctrl-C) for 2P and started again (its persistent session kept
     what was published meanwhile).
Counted over the whole run: queued (generated), stored, lost (queued, never stored), and
duplicated (stored twice: impossible by the primary key, so also counted: the repeats the
server received and ignored, from its log), and the sightings the edges sent again because the
broker had no subscriber for them (from their logs: after a broker restart, until the server's
shared subscription is made again).

Writes ``bench/results/edge_throughput.json`` or ``bench/results/edge_faults.json``.
``--smoke``: the throughput run with one edge and 20 sightings, nothing written (the test
suite runs it so the script keeps working). ``--smoke --faults``: the fault run with two edges
at 5 sightings/s, the broker down 4 s and P = 1 s, nothing written; about 50 s (two server
starts and 13 s of waiting), too long for the test suite. Its first tries lost the sightings
queued during the outage: Mosquitto does not restore the server's shared subscription after a
restart, the edges (reconnecting within 2 s) sent their backlog before the server (its backoff
had reached 4 s) subscribed again, and the broker dropped it as having no subscriber; the edge
sender now keeps and resends such sightings. ``--keep`` keeps the logs of a smoke run too.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib
from bench.edge_propagation import RESULTS, ROOT, Deployment, postgres_schema, wait_for
from oneeye.bus.base import EDGE_SIGHTINGS
from oneeye.bus.messages import EdgeStatusPayload, SightingPayload
from oneeye.bus.mqtt import Announcement, MqttBus
from oneeye.services.edge.monitor import EDGE_STATUS
from oneeye.services.edge.outbox import EdgeOutbox, OutboxSender
from oneeye.services.edge.registry import CameraRegistry
from oneeye.store.db import Database
from oneeye.store.models import new_id

UNROUTED = re.compile(r"the broker had no subscriber for (\d+) sighting")
"""The edge sender's warning when it keeps sightings to send them again."""


class Broker:
    """A Mosquitto of this benchmark's own on a free loopback port, with persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        (folder / "data").mkdir(exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {folder / 'data'}/\n"
            "allow_anonymous true\nmax_queued_messages 1000000\nlog_dest stderr\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker's URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "broker.log").open("ab"),
        )

        def accepts() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(accepts, 10, "the broker")

    def stop(self) -> None:
        """Stop it (SIGTERM: it saves its sessions)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


# A simulated edge (a process of its own) --------------------------------------------------


def sighting(camera: str, track: int, rng: np.random.Generator) -> SightingPayload:
    """A sighting message as a camera worker publishes it for an unknown face."""
    embedding = rng.normal(size=128)
    embedding /= np.linalg.norm(embedding)
    return SightingPayload.model_validate(
        {
            "id": new_id(),
            "event": "sighting",
            "camera": camera,
            "track": track,
            "person": None,
            "watchlist": None,
            "distance": 0.61,
            "quality": 0.8,
            "frame": track * 3,
            "t": track * 0.1,
            "box": [100, 260, 260, 100],
            "seen_at": datetime.now(UTC).isoformat(),
            "snapshot_key": None,
            "embedding": [round(float(v), 6) for v in embedding],
        }
    )


def simulated_edge(args: argparse.Namespace) -> None:
    """Queue ``--count`` sightings at ``--rate``/s (0: as fast as possible) through the real
    edge sending path; a restart with the same data folder goes on where it stopped."""
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    camera = f"{args.sim_edge}-cam"
    status = EDGE_STATUS.format(edge=args.sim_edge)
    bus = MqttBus(
        args.broker,
        client_id=f"oneeye-edge-{args.sim_edge}",
        topic_prefix=args.prefix,
        session_expiry=600,
        reconnect_max=2,
        will=Announcement(
            status,
            EdgeStatusPayload(
                edge=args.sim_edge, cameras=[camera], state="offline", error="connection lost"
            ),
        ),
        birth=Announcement(
            status, EdgeStatusPayload(edge=args.sim_edge, cameras=[camera], state="online")
        ),
    )
    outbox = EdgeOutbox(data / "outbox.sqlite3")
    sender = OutboxSender(outbox, bus, lambda key, body: None)
    generated = data / "generated.txt"
    done = len(generated.read_text().split()) if generated.exists() else 0
    bus.start()
    sender.start()
    rng = np.random.default_rng()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    topic = EDGE_SIGHTINGS.format(edge=args.sim_edge, camera=camera)
    started = time.monotonic()
    with generated.open("a") as log:
        for n in range(done, args.count):
            if stop.is_set():
                break
            payload = sighting(camera, n, rng)
            outbox.add_sighting(topic, payload)
            log.write(payload.id + "\n")
            log.flush()
            if args.rate > 0:
                delay = started + (n - done + 1) / args.rate - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
    while not stop.is_set() and outbox.counts()[0]:
        stop.wait(0.1)
    sender.stop(drain=2)
    bus.stop()
    outbox.close()


# The runs -----------------------------------------------------------------------------------


class SimEdges:
    """Simulated edge processes of one deployment."""

    def __init__(self, work: Path, broker: str, prefix: str, db: Database) -> None:
        self.work = work
        self.broker = broker
        self.prefix = prefix
        self.db = db
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, count: int, rate: float) -> None:
        """Start (or restart) one simulated edge (its camera registered to it first: the
        servers accept a camera's sightings only from its edge)."""
        CameraRegistry(self.db).register(name, [(f"{name}-cam", f"{name}-cam")])
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--sim-edge",
            name,
            "--data-dir",
            str(self.work / name),
            "--broker",
            self.broker,
            "--prefix",
            self.prefix,
            "--count",
            str(count),
            "--rate",
            str(rate),
        ]
        with (self.work / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=log, cwd=ROOT)

    def kill(self, name: str) -> None:
        """SIGKILL one edge."""
        self.procs[name].kill()
        self.procs[name].wait()

    def generated(self) -> set[str]:
        """Every sighting id the edges queued so far."""
        ids: set[str] = set()
        for name in self.procs:
            ids.update(self.generated_by(name))
        return ids

    def generated_by(self, name: str) -> list[str]:
        """The sighting ids one edge queued so far, in order."""
        path = self.work / name / "generated.txt"
        if not path.exists():
            return []
        return [line for line in path.read_text().split() if len(line) == 32]

    def sending(self, name: str) -> bool:
        """Whether one edge has queued a sighting yet (its first written id)."""
        return bool(self.generated_by(name))

    def wait(self, timeout: float) -> None:
        """Wait for every edge to finish (stopping those that do not)."""
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                proc.wait(30)


def stored_ids(deployment: Deployment) -> list[str]:
    """Every sighting id in the database (with repeats, if there ever were any)."""
    with deployment.db.session() as session:
        return [row[0] for row in session.execute(text("SELECT id FROM sightings"))]


def stored_count(deployment: Deployment) -> int:
    """How many sightings the database holds."""
    with deployment.db.session() as session:
        return int(session.execute(text("SELECT count(*) FROM sightings")).scalar_one())


def throughput(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``--edges`` simulated edges publishing as fast as they can."""
    broker = Broker(work / "broker")
    broker.start()
    try:
        with postgres_schema(args.postgres) as url:
            deployment = Deployment(work, broker.url, url)
            try:
                deployment.start_server()
                edges = SimEdges(work, broker.url, deployment.prefix, deployment.db)
                total = args.edges * args.per_edge
                samples: list[tuple[float, int]] = []
                started = time.monotonic()
                for i in range(args.edges):
                    edges.start(f"sim{i:02d}", args.per_edge, 0)
                while time.monotonic() - started < 600:
                    samples.append((time.monotonic() - started, stored_count(deployment)))
                    if samples[-1][1] >= total:
                        break
                    time.sleep(0.5)
                edges.wait(60)
                ids = stored_ids(deployment)
                generated = edges.generated()
            finally:
                deployment.stop()
    finally:
        broker.stop()
    first = next(t for t, n in samples if n > 0)
    last = samples[-1][0]
    low, high = 0.1 * total, 0.9 * total
    t_low = next(t for t, n in samples if n >= low)
    t_high = next((t for t, n in samples if n >= high), last)
    return {
        "edges": args.edges,
        "per_edge": args.per_edge,
        "generated": len(generated),
        "stored": len(set(ids)),
        "lost": len(generated - set(ids)),
        "duplicated_rows": len(ids) - len(set(ids)),
        "wall_s": round(last, 2),
        "first_stored_s": round(first, 2),
        "sustained_per_s": round(len(set(ids)) / max(last, 1e-9), 1),
        "middle_80pct_per_s": round((high - low) / max(t_high - t_low, 1e-9), 1),
    }


def recovered(deployment: Deployment, edges: SimEdges, timeout: float) -> float | None:
    """Seconds until everything the edges queued so far is stored (``None``: not within
    ``timeout``; the run goes on and the final count says whether anything was lost)."""
    began = time.monotonic()
    wanted = edges.generated()
    try:
        wait_for(lambda: wanted <= set(stored_ids(deployment)), timeout, "recovery")
    except TimeoutError:
        missing = len(wanted - set(stored_ids(deployment)))
        print(f"not recovered within {timeout:g} s: {missing} of {len(wanted)} missing", flush=True)
        return None
    return round(time.monotonic() - began, 2)


def queued(folder: Path) -> int:
    """Sightings waiting in a (stopped) edge's disk queue."""
    with sqlite3.connect(folder / "outbox.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM sightings").fetchone()[0])


def note(events: list[dict[str, Any]], event: dict[str, Any]) -> None:
    """Keep one fault's figures and show them at once."""
    events.append(event)
    print(json.dumps(event), flush=True)


def faults(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The three faults in turn, each recovered before the next."""
    broker = Broker(work / "broker")
    broker.start()
    events: list[dict[str, Any]] = []
    try:
        with postgres_schema(args.postgres) as url:
            deployment = Deployment(work, broker.url, url)
            edges = SimEdges(work, broker.url, deployment.prefix, deployment.db)
            try:
                deployment.start_server()
                count = 10**7  # they run until the end of the run
                names = [f"sim{i:02d}" for i in range(args.fault_edges)]
                for name in names:
                    edges.start(name, count, args.rate)
                # An edge takes seconds to start on a busy machine: the 2P count from its first
                # sighting, and its disk queue exists by the time it is killed.
                wait_for(lambda: all(map(edges.sending, names)), 120, "the edges' first sightings")
                time.sleep(2 * args.pause)

                edges.kill(names[0])
                left = queued(work / names[0])
                time.sleep(args.pause)
                edges.start(names[0], count, args.rate)
                note(
                    events,
                    {
                        "fault": f"kill -9 of an edge mid-stream, restarted after {args.pause:g} s",
                        "queued_on_its_disk_at_kill": left,
                        "recovery_after_restart_s": recovered(deployment, edges, 180),
                    },
                )
                time.sleep(args.pause)

                broker.stop()
                time.sleep(args.broker_down / 2)
                # An edge killed while the broker is away, with a backlog on its disk.
                edges.kill(names[1])
                left = queued(work / names[1])
                time.sleep(args.pause)
                edges.start(names[1], count, args.rate)
                time.sleep(max(0.0, args.broker_down / 2 - args.pause))
                broker.start()
                note(
                    events,
                    {
                        "fault": f"broker stopped for {args.broker_down:g} s; meanwhile an edge "
                        "killed with -9 and restarted",
                        "queued_on_the_killed_edge_s_disk": left,
                        "recovery_after_broker_back_s": recovered(deployment, edges, 300),
                    },
                )
                time.sleep(args.pause)

                server = deployment.servers[-1]
                server.stop()
                time.sleep(2 * args.pause)
                began = time.monotonic()
                deployment.start_server(name="server-2", client="server")
                startup = round(time.monotonic() - began, 2)
                note(
                    events,
                    {
                        "fault": f"server stopped (Ctrl-C) for {2 * args.pause:g} s and started "
                        "again",
                        "server_startup_s": startup,
                        "recovery_after_ready_s": recovered(deployment, edges, 300),
                    },
                )
                time.sleep(args.pause)
                for proc in edges.procs.values():
                    proc.send_signal(signal.SIGINT)
                edges.wait(60)
                generated = edges.generated()
                try:
                    wait_for(lambda: generated <= set(stored_ids(deployment)), 600, "the rest")
                except TimeoutError:
                    print("not everything stored within 600 s", flush=True)
                ids = stored_ids(deployment)
            finally:
                for proc in edges.procs.values():
                    if proc.poll() is None:
                        proc.kill()
                deployment.stop()
            repeats = sum(
                p.read_text(errors="replace").count("already stored; ignoring the repeat")
                + p.read_text(errors="replace").count("stored meanwhile; ignoring the repeat")
                for p in work.glob("server*.log")
            )
            resent = sum(
                int(n)
                for p in work.glob("sim*.log")
                for n in UNROUTED.findall(p.read_text(errors="replace"))
            )
    finally:
        broker.stop()
    return {
        "edges": args.fault_edges,
        "rate_per_edge": args.rate,
        "faults": events,
        "generated": len(generated),
        "stored": len(set(ids)),
        "lost": len(generated - set(ids)),
        "duplicated_rows": len(ids) - len(set(ids)),
        "repeats_received_and_ignored": repeats,
        "resent_for_want_of_a_subscriber": resent,
    }


def main() -> None:
    """Run one benchmark (or be a simulated edge) and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=16)
    parser.add_argument("--per-edge", type=int, default=1000)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--fault-edges", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--broker-down", type=float, default=30.0)
    parser.add_argument(
        "--pause", type=float, default=5.0, help="the fault run's unit of waiting, seconds"
    )
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="Keep the logs folder.")
    parser.add_argument(
        "--smoke", action="store_true", help="one edge, 20 sightings (--faults: a short fault run)"
    )
    # A simulated edge (this script runs itself as one per edge):
    parser.add_argument("--sim-edge", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sim_edge:
        simulated_edge(args)
        return
    if args.smoke and args.faults:
        args.fault_edges, args.rate, args.broker_down, args.pause = 2, 5.0, 4.0, 1.0
    elif args.smoke:
        args.edges, args.per_edge = 1, 20
    if args.faults and not (args.fault_edges >= 2 and args.rate > 0 and args.pause > 0):
        parser.error("--faults needs --fault-edges of at least 2 and a --rate and --pause above 0")
    if args.faults and args.broker_down < 2 * args.pause:
        parser.error("--broker-down must be at least twice --pause (an edge restarts meanwhile)")
    work = Path(tempfile.mkdtemp(prefix="oneeye-edge-faults-"))
    started = time.monotonic()
    result = faults(args, work) if args.faults else throughput(args, work)
    result["wall_s_total"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2), flush=True)
    report = {
        "benchmark": "edge_faults" if args.faults else "edge_throughput",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python", "bench/edge_faults.py", *sys.argv[1:]]),
        **result,
    }
    if args.smoke:
        print("smoke run: nothing written")
        if args.keep:
            print(f"logs in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "edge_faults.json" if args.faults else "edge_throughput.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs in {work}")


if __name__ == "__main__":
    main()
