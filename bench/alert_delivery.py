"""Alert delivery (issue 5): sighting to email accepted by SMTP, and a 60 s SMTP outage.

    python bench/alert_delivery.py [--lfw ../shared/data/lfw/images] [--count 200]
        [--rate 20] [--outage 60] [--outage-count 100] [--smoke]

A real ``OneEyeApp`` (SQLite, in-process bus, its alert service and notifier) runs;
a real SMTP server (aiosmtpd) on 127.0.0.1 accepts the mail. A case is filed from an LFW
photo, with one all-cases email subscription and no cooldown (so every sighting notifies).
Sightings of the case's person are published on the bus, as a camera worker publishes them,
each with a stored snapshot (another LFW photo of the person) that the email attaches.

(a) Latency: ``--count`` sightings at ``--rate`` per second. For each: from publishing the
    sighting on the bus (the server then stores it, records the case match and its outbox row
    in one transaction, wakes the notifier, which composes and sends the email) to the SMTP
    server's DATA handler accepting the message. p50/p95/max; target p95 <= 2 s.
(b) Outage: the SMTP server is stopped; ``--outage-count`` sightings arrive spread over
    ``--outage`` seconds; the server comes back on the same port. Counted per notification
    id (the ``X-OneEye-Notification`` header): delivered, duplicated, lost; and how long the
    backlog took to drain once the server was back. Target: all delivered exactly once.

Writes ``bench/results/alert_delivery.json``. ``--smoke``: 3 sightings and a 1 s outage with 2
sightings, the first retry after 0.5 s (not 2 s), nothing written (the test suite runs it on a
tiny LFW-shaped folder so the script keeps working).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import numpy as np
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from oneeye.app import OneEyeApp
from oneeye.bus.base import SIGHTINGS
from oneeye.bus.messages import SightingPayload
from oneeye.config import NotifySettings, ServeSettings, SmtpSettings
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import CaseMatch, Notification, new_id
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine

logger = logging.getLogger("bench.alert_delivery")

RESULTS = Path(__file__).with_name("results") / "alert_delivery.json"
PERSON = "George_W_Bush"
WARM_UP = 1_000_000
"""The warm-up sighting's track and frame number: apart from the measured ones (0.. and
10,000..), and not negative, which the sighting payload refuses."""


class Inbox:
    """The SMTP server's handler: when each message arrived, by notification id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: list[tuple[int, float, float]] = []
        """(notification id, perf_counter, wall time) per accepted message."""

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        now, wall = time.perf_counter(), time.time()
        headers = BytesHeaderParser().parsebytes(envelope.original_content or b"")
        with self.lock:
            self.arrivals.append((int(headers["X-OneEye-Notification"]), now, wall))
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def since(self, start: int) -> list[tuple[int, float, float]]:
        with self.lock:
            return list(self.arrivals[start:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(array, 50)), 4),
        "p95": round(float(np.percentile(array, 95)), 4),
        "max": round(float(array.max()), 4),
        "mean": round(float(array.mean()), 4),
    }


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


class Rig:
    """The server, its alert service and notifier, an SMTP server, and a filed case."""

    def __init__(self, lfw: Path, data_dir: Path, smtp_port: int, backoff_initial: float) -> None:
        self.smtp_port = smtp_port
        self.inbox = Inbox()
        self.controller: Controller | None = None
        notify = NotifySettings(
            smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, security="none", timeout=10.0),
            cooldown=0.0,  # every sighting notifies: we measure delivery, not the cooldown
            backoff_initial=backoff_initial,
            backoff_max=30.0,
        )
        self.settings = ServeSettings(data_dir=data_dir, notify=notify)
        self.app = OneEyeApp(self.settings, engine=FaceEngine(self.settings.engine))
        self.app.start()
        s = self.app.services
        self.notifier = s.notifier
        self.alerts = s.alerts
        photos = sorted((lfw / PERSON).glob("*.jpg"))
        case_photo = photos[0].read_bytes()
        self.snapshot = photos[1].read_bytes()
        case = self.alerts.create_case(
            "George W. Bush",
            "benchmark case",
            "desk +1 555 0100",
            [(case_photo, photos[0].name)],
            actor="user:bench",
            approved=True,
        )
        self.person_id = case.person_id
        self.alerts.add_subscription("email", "desk@example.org", actor="user:bench")
        for n in range(8):  # the server's own cameras (not running): sightings come from them
            s.cameras.add(CameraConfig(id=f"cam-{n}", name=f"cam-{n}", source="0", enabled=False))

    def smtp_up(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.smtp_port)
        self.controller.start()

    def smtp_down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def publish_sighting(self, index: int) -> tuple[str, float]:
        """One sighting of the case's person, as a camera worker publishes it."""
        s = self.app.services
        camera = f"cam-{index % 8}"
        key = s.photos.add(snapshot_kind(camera), self.snapshot)
        sighting_id = new_id()
        payload = {
            "v": 1,
            "id": sighting_id,
            "event": "sighting",
            "camera": camera,
            "track": index,
            "person": self.person_id,
            "watchlist": "amber-alert",
            "distance": 0.38,
            "quality": 1.0,
            "frame": index,
            "t": 0.0,
            "box": [40, 160, 160, 40],
            "seen_at": datetime.now(UTC).isoformat(),
            "snapshot_key": key,
            "embedding": None,
        }
        started = time.perf_counter()
        s.bus.publish(SIGHTINGS.format(camera=camera), SightingPayload.model_validate(payload))
        return sighting_id, started

    def notifications_of(self, sighting_ids: list[str]) -> dict[int, str]:
        """Outbox row id -> sighting id, for these sightings."""
        with self.app.services.db.session() as session:
            rows = session.execute(
                select(Notification.id, Notification.sighting_id).where(
                    Notification.sighting_id.in_(sighting_ids)
                )
            ).all()
        return dict(rows)

    def matches_of(self, sighting_ids: list[str]) -> int:
        with self.app.services.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(CaseMatch)
                    .where(CaseMatch.sighting_id.in_(sighting_ids))
                )
                or 0
            )

    def close(self) -> None:
        self.app.stop()
        self.smtp_down()


def latency(rig: Rig, count: int, rate: float) -> dict[str, Any]:
    """(a): sighting published -> email accepted by the SMTP server."""
    start = rig.inbox.count()
    started: dict[str, float] = {}
    for index in range(count):
        sighting, at = rig.publish_sighting(index)
        started[sighting] = at
        time.sleep(1.0 / rate)
    wait_for(lambda: rig.inbox.count() - start >= count, 60.0)
    arrivals = rig.inbox.since(start)
    by_row = rig.notifications_of(list(started))
    latencies = [at - started[by_row[row_id]] for row_id, at, _ in arrivals if row_id in by_row]
    return {
        "sightings": count,
        "rate_per_s": rate,
        "emails_received": len(arrivals),
        "latency_s": percentiles(latencies),
    }


def outage(rig: Rig, count: int, seconds: float, settle: float) -> dict[str, Any]:
    """(b): the SMTP server is down while ``count`` sightings arrive, then comes back; the
    count of emails is taken ``settle`` seconds after the outbox emptied."""
    start = rig.inbox.count()
    rig.smtp_down()
    down_at = time.perf_counter()
    sightings: list[str] = []
    for index in range(count):
        due = down_at + index * seconds / count
        time.sleep(max(0.0, due - time.perf_counter()))
        sightings.append(rig.publish_sighting(10_000 + index)[0])
    time.sleep(max(0.0, down_at + seconds - time.perf_counter()))
    during = rig.inbox.count() - start
    stats_before = rig.notifier.stats().as_dict()
    rig.smtp_up()
    up_at = time.perf_counter()
    expected = rig.notifications_of(sightings)
    wait_for(lambda: rig.notifier.stats().pending == 0, 300.0)
    time.sleep(settle)  # anything sent twice would arrive now
    arrivals = [a for a in rig.inbox.since(start) if a[0] in expected]
    received = Counter(row_id for row_id, _, _ in arrivals)
    delivered = sum(1 for row_id in expected if received[row_id] >= 1)
    with rig.app.services.db.session() as session:
        attempts = [
            a
            for (a,) in session.execute(
                select(Notification.attempts).where(Notification.id.in_(list(expected)))
            ).all()
        ]
    return {
        "down_s": seconds,
        "sightings": count,
        "case_matches": rig.matches_of(sightings),
        "notifications": len(expected),
        "emails_while_down": during,
        "outbox_when_back": stats_before,
        "delivered": delivered,
        "duplicated": sum(n - 1 for n in received.values() if n > 1),
        "lost": len(expected) - delivered,
        "drain_s_after_back": round(max((at for _, at, _ in arrivals), default=up_at) - up_at, 2),
        "attempts_per_notification": {
            "min": min(attempts, default=0),
            "max": max(attempts, default=0),
            "mean": round(float(np.mean(attempts)) if attempts else 0.0, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw/images"))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--outage-count", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="a few sightings; writes nothing")
    args = parser.parse_args()
    backoff_initial, settle = 2.0, 2.0
    if args.smoke:
        args.count, args.outage, args.outage_count = 3, 1.0, 2
        backoff_initial, settle = 0.5, 0.5  # the smoke run checks the paths, not the figures
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(args.lfw, Path(tmp) / "data", free_port(), backoff_initial)
        try:
            rig.smtp_up()
            rig.publish_sighting(WARM_UP)  # first connection, first email
            wait_for(lambda: rig.inbox.count() >= 1, 30.0)
            a = latency(rig, args.count, args.rate)
            print(f"(a) sighting -> email accepted: {a['latency_s']}")
            b = outage(rig, args.outage_count, args.outage, settle)
            print(f"(b) outage: {b}")
        finally:
            rig.close()
    result = {
        "command": "python bench/alert_delivery.py "
        f"--count {args.count} --rate {args.rate} --outage {args.outage} "
        f"--outage-count {args.outage_count}",
        "measured_from": "sighting published on the in-process bus (stored by SightingService, "
        "matched by AlertService, outbox row in the match's transaction, notifier woken)",
        "settings": {
            "backoff_initial": backoff_initial,
            "backoff_max": 30.0,
            "cooldown": 0.0,
            "smtp": "aiosmtpd on 127.0.0.1, no TLS",
            "database": "SQLite (WAL)",
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "latency": a,
        "outage": b,
    }
    if args.smoke:
        print(f"smoke run: {RESULTS} left as it was")
        return
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
