"""Two servers, edges, enrolments through both and one server killed with -9 (issue 15).

    python bench/cluster_failover.py [--enrolments 10] [--sim-edges 2] [--rate 20] [--smoke]
        [--broker mqtt://127.0.0.1:1883] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Everything runs on this machine, under a topic prefix and a PostgreSQL schema of the run's own:
two real ``oneeye serve`` processes (A and B: one database, one broker, one share group), two
real ``oneeye edge`` processes (edge 1 fetches its gallery from A, edge 2 from B; each plays a
tiny blank clip, so they spend the cores on the gallery), and ``--sim-edges`` simulated edges
(``bench/edge_faults.py``'s: the real edge sending path, disk queue -> broker, fed with
unknown-face sightings at ``--rate`` per second each, every id queued written to disk).

An admin enrols ``--enrolments`` people one after the other, through A and B in turn. After
half of them, A is killed with -9 while the sightings stream in; two more people are enrolled
and the first person deleted, all through B; A is started again (resuming its broker session)
and the rest are enrolled in turn, with one photo deleted through A. Then the simulated edges
stop queuing; each is started again to send what its disk still holds, and the run waits (up to
600 s) until everything queued is stored.

Figures: sightings queued / stored / lost / duplicated (stored twice: impossible by the primary
key, so also the repeats the servers received and ignored, and the dashboard events announced
twice), with what the simulated edges still held on their disks when they stopped and the time
from their stop until everything was stored (how far behind the servers were); the enrolments
through each server; per change (enrolment or deletion), the time from the request being sent
to both real edges having that version in force (``gallery_applied_at`` of their statuses,
this machine's clock), median and max; the time from the kill to the
survivor having finished every action the killed server left unfinished (their lease, 60 s, has
to run out first); each real edge's resyncs; whether each edge and each server ended at the
database's version and each edge with the database's entries.

Writes ``bench/results/cluster_failover.json``. ``--smoke``: four enrolments, one simulated
edge at 10/s, the killed server's leases ended by hand instead of waited for, nothing written
(the test suite runs it so the script keeps working).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib
from bench.edge_faults import SimEdges, queued, stored_ids
from bench.edge_propagation import (
    PHOTO,
    RESULTS,
    Deployment,
    Proc,
    StatusLog,
    blank_clip,
    free_port,
    postgres_schema,
    wait_for,
)
from oneeye.bus.mqtt import MqttBus
from oneeye.services.edge.monitor import ALL_EDGE_STATUS
from oneeye.services.gallery_log import gallery_id
from oneeye.store.repos import gallery_log, templates

PHOTOS = [PHOTO.parent / name for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]
METRIC_VERSION = re.compile(r"^oneeye_gallery_version\{[^}]*\} (-?[0-9.e+]+)$", re.MULTILINE)
REPEAT_LINES = ("already stored; ignoring the repeat", "stored meanwhile; ignoring the repeat")


class Cluster:
    """Servers A and B and two real edges on one deployment, with the edges' statuses heard."""

    def __init__(self, deployment: Deployment, broker: str) -> None:
        self.deployment = deployment
        self.ports = {"a": deployment.port, "b": free_port()}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.started = {"a": 0, "b": 0}
        self.servers: dict[str, Proc] = {}
        self.log = StatusLog()
        self.listener = MqttBus(broker, topic_prefix=deployment.prefix)
        self.listener.subscribe(ALL_EDGE_STATUS, self.log.on_status)
        self.listener.start()
        self.edges = [f"edge1-{deployment.run}", f"edge2-{deployment.run}"]

    def start_server(self, name: str) -> float:
        """Start server ``name`` (again: the same MQTT client id, so its session resumes);
        seconds until it answered."""
        self.started[name] += 1
        began = time.monotonic()
        self.servers[name] = self.deployment.start_server(
            name=f"server-{name}{self.started[name]}", port=self.ports[name], client=name
        )
        return time.monotonic() - began

    def server_version(self, name: str) -> int | None:
        """The gallery version in force in a server, from its /metrics (no catch-up first)."""
        try:
            with self.deployment.admin(self.urls[name]) as admin:
                found = METRIC_VERSION.search(admin.get("/metrics").text)
        except httpx.HTTPError:
            return None
        return None if found is None else int(float(found.group(1)))

    def edge_gallery(self, edge: str) -> tuple[int, set[str]] | None:
        """The version and entry ids of the gallery an edge cached on its disk."""
        try:
            held = json.loads((self.deployment.work / edge / "gallery.json").read_text())
        except (OSError, ValueError):
            return None
        return int(held["version"]), {str(e["id"]) for e in held["entries"]}

    def resyncs(self, edge: str) -> int | None:
        """How many times an edge fetched its whole gallery, from its last status."""
        with self.log.lock:
            said = [s.get("resyncs") for s in self.log.statuses if s.get("edge") == edge]
        counts = [n for n in said if isinstance(n, int)]
        return counts[-1] if counts else None


def database_gallery(deployment: Deployment) -> tuple[int, set[str]]:
    """The database's gallery version and the entry ids its tables make."""
    with deployment.db.session() as session:
        state = gallery_log.state(session)
        rows = templates.on_watchlists(session)
    ids = {gallery_id(t, w) for t, w in zip(rows.template_ids, rows.watchlists, strict=True)}
    return (0 if state is None else state.version), ids


def actions_of(deployment: Deployment, pid: int) -> int:
    """Unfinished sighting actions leased to the server process ``pid`` (owners are named
    host-pid-token)."""
    with deployment.db.session() as session:
        found = session.execute(
            text("SELECT count(*) FROM sighting_actions WHERE owner LIKE :p"), {"p": f"%-{pid}-%"}
        ).scalar_one()
    return int(found)


class Changes:
    """The gallery changes the admin makes, each timed to both real edges having it."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.people: list[tuple[str, str]] = []
        self.through = {"a": 0, "b": 0}
        self.to_every_edge: list[float] = []

    def _timed(self, sent: float) -> None:
        """Wait for both edges to have the database's version now; keep the time it took."""
        version, _ = database_gallery(self.cluster.deployment)
        log, edges = self.cluster.log, self.cluster.edges
        wait_for(
            lambda: all(log.applied_at(e, version) is not None for e in edges),
            60,
            f"version {version} on every edge",
        )
        self.to_every_edge.append(max(log.applied_at(e, version) or 0.0 for e in edges) - sent)

    def enrol(self, server: str) -> None:
        """A person with one photo through ``server`` (the photos repeat across people, so
        the same-face check is overridden)."""
        number = len(self.people)
        photo = PHOTOS[number % len(PHOTOS)]
        with self.cluster.deployment.admin(self.cluster.urls[server]) as admin:
            person = admin.post("/api/v1/people", json={"name": f"Person {number}"})
            person.raise_for_status()
            person_id = str(person.json()["id"])
            sent = time.time()
            enrolled = admin.post(
                f"/api/v1/people/{person_id}/photos",
                params={"force": "true"},
                files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
            )
            enrolled.raise_for_status()
        self.people.append((person_id, str(enrolled.json()["id"])))
        self.through[server] += 1
        self._timed(sent)

    def delete(self, server: str, path: str) -> None:
        """DELETE ``path`` through ``server``."""
        with self.cluster.deployment.admin(self.cluster.urls[server]) as admin:
            sent = time.time()
            admin.delete(path).raise_for_status()
        self._timed(sent)


def progress(began: float, what: str) -> None:
    """One line on how far the run got."""
    print(f"{time.monotonic() - began:6.1f} s  {what}", flush=True)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The scenario; its figures."""
    began = time.monotonic()
    clip = blank_clip(work / "blank.mp4")
    with postgres_schema(args.postgres) as url:
        deployment = Deployment(work, args.broker, url)
        cluster = Cluster(deployment, args.broker)
        sims = SimEdges(work, args.broker, deployment.prefix, deployment.db)
        try:
            # Servers and edges load their models at once (an edge retries its server until
            # it answers).
            with ThreadPoolExecutor(2) as pool:
                servers = [pool.submit(cluster.start_server, name) for name in ("a", "b")]
                for edge, server in zip(cluster.edges, ["a", "b"], strict=True):
                    deployment.start_edge(edge, clip, cluster.urls[server])
                for started in servers:
                    started.result()
            progress(began, "servers A and B answer")
            for i in range(args.sim_edges):
                sims.start(f"sim{i:02d}", 10**7, args.rate)
            wait_for(
                lambda: all(cluster.log.version(e) is not None for e in cluster.edges),
                180,
                "both edges online with the gallery",
            )
            progress(began, "both edges online")
            changes = Changes(cluster)
            half = args.enrolments // 2
            for i in range(half):
                changes.enrol("a" if i % 2 == 0 else "b")

            victim = cluster.servers["a"]
            victim.kill()
            killed = time.monotonic()
            progress(began, "server A killed")
            orphaned = actions_of(deployment, victim.process.pid)
            finished: list[float] = []

            def watch_orphans() -> None:
                while time.monotonic() - killed < 300:
                    if actions_of(deployment, victim.process.pid) == 0:
                        finished.append(time.monotonic() - killed)
                        return
                    time.sleep(0.2)

            watcher = threading.Thread(target=watch_orphans, daemon=True)
            watcher.start()
            for _ in range(min(2, args.enrolments - half)):
                changes.enrol("b")
            changes.delete("b", f"/api/v1/people/{changes.people[0][0]}")
            restart_s = cluster.start_server("a")
            progress(began, "server A answers again")
            if args.smoke:
                # The leases (60 s) ended by hand, as if they had run out: the sweeper's
                # take-over still runs, the wait for the lease does not.
                with deployment.db.session() as session:
                    session.execute(
                        text("UPDATE sighting_actions SET lease_until = :t WHERE owner LIKE :p"),
                        {
                            "t": datetime.now(UTC) - timedelta(seconds=1),
                            "p": f"%-{victim.process.pid}-%",
                        },
                    )
            for i in range(len(changes.people), args.enrolments):
                changes.enrol("a" if i % 2 == 0 else "b")
            person, template = changes.people[1]
            changes.delete("a", f"/api/v1/people/{person}/templates/{template}")

            for proc in sims.procs.values():
                proc.send_signal(signal.SIGINT)  # they stop queuing (and sending)
            sims.wait(60)
            stopped = time.monotonic()
            left_on_disks = sum(queued(work / name) for name in sims.procs)
            # Started again to queue nothing more, each sends what its disk holds and exits.
            for name in list(sims.procs):
                sims.start(name, len(sims.generated_by(name)), args.rate)
            sims.wait(300)
            progress(began, f"changes done; the simulated edges sent their {left_on_disks} left")
            generated = sims.generated()
            try:
                wait_for(lambda: generated <= set(stored_ids(deployment)), 600, "every sighting")
            except TimeoutError:
                print("not every sighting stored within 600 s", flush=True)
            caught_up = time.monotonic() - stopped
            ids = stored_ids(deployment)
            progress(began, "sightings counted")
            watcher.join(300)

            version, entries = database_gallery(deployment)
            try:
                wait_for(
                    lambda: (
                        all(
                            cluster.log.version(e) == version
                            and cluster.edge_gallery(e) == (version, entries)
                            for e in cluster.edges
                        )
                        and all(cluster.server_version(s) == version for s in ("a", "b"))
                    ),
                    60,
                    "every edge and server at the final version",
                )
            except TimeoutError:
                print("not every edge and server at the final version within 60 s", flush=True)
            progress(began, "final versions checked")
            edges_final = {
                e: cluster.log.version(e) == version
                and cluster.edge_gallery(e) == (version, entries)
                for e in cluster.edges
            }
            servers_final = {s: cluster.server_version(s) for s in ("a", "b")}
            with deployment.db.session() as session:
                events = list(
                    session.execute(
                        text("SELECT payload FROM dashboard_events WHERE type = 'sighting'")
                    ).scalars()
                )
        finally:
            for proc in sims.procs.values():
                if proc.poll() is None:
                    proc.kill()
            cluster.listener.stop()
            deployment.stop()
    repeats = sum(
        log.read_text(errors="replace").count(line)
        for log in work.glob("server-*.log")
        for line in REPEAT_LINES
    )
    announced = [(e if isinstance(e, dict) else json.loads(e))["sighting_id"] for e in events]
    latencies = changes.to_every_edge
    return {
        "servers": 2,
        "edges": len(cluster.edges),
        "sim_edges": args.sim_edges,
        "rate_per_sim_edge": args.rate,
        "sightings": {
            "generated": len(generated),
            "stored": len(set(ids)),
            "lost": len(generated - set(ids)),
            "duplicated_rows": len(ids) - len(set(ids)),
            "repeats_received_and_ignored": repeats,
            "announced_twice": len(announced) - len(set(announced)),
            "left_on_sim_edge_disks_at_stop": left_on_disks,
            "stop_to_all_stored_s": round(caught_up, 1),
        },
        "enrolments_through": {"A": changes.through["a"], "B": changes.through["b"]},
        "deletions": 2,
        "change_to_every_edge_s": {
            "n": len(latencies),
            "median": round(statistics.median(latencies), 3),
            "max": round(max(latencies), 3),
        },
        "killed_server": {
            "unfinished_actions_at_kill": orphaned,
            # None: nothing was left to finish, or it was not finished within 300 s.
            "kill_to_orphaned_actions_finished_s": (
                round(finished[0], 2) if finished and orphaned else None
            ),
            "leases_ended_by_hand": bool(args.smoke),
            "restart_to_answering_s": round(restart_s, 2),
        },
        "final_gallery": {
            "version": version,
            "entries": len(entries),
            "edges_at_final_with_its_entries": edges_final,
            "server_versions": {"A": servers_final["a"], "B": servers_final["b"]},
        },
        "resyncs_per_edge": {e: cluster.resyncs(e) for e in cluster.edges},
    }


def main() -> None:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrolments", type=int, default=10)
    parser.add_argument("--sim-edges", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="sightings/s per sim edge")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="Keep the logs folder.")
    parser.add_argument("--smoke", action="store_true", help="four enrolments, one sim edge")
    args = parser.parse_args()
    if args.smoke:
        args.enrolments, args.sim_edges, args.rate = 4, 1, 10.0
    if args.enrolments < 4:
        parser.error("--enrolments must be at least 4 (two before the kill, two deleted)")
    missing = [p for p in PHOTOS if not p.exists()]
    if missing:
        raise SystemExit(f"needs the test photos (run the tests once): {missing[0]}")
    work = Path(tempfile.mkdtemp(prefix="oneeye-cluster-"))
    started = time.monotonic()
    result = run(args, work)
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2), flush=True)
    if args.smoke:
        print(f"smoke run: {RESULTS / 'cluster_failover.json'} left as it was")
        shutil.rmtree(work, ignore_errors=True)
        return
    report = {
        "benchmark": "cluster_failover",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python", "bench/cluster_failover.py", *sys.argv[1:]]),
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster_failover.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.keep:
        print(f"logs in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
