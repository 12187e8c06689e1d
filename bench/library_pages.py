"""The face library's customers page with many customers: is a page under 300 ms on SQLite?

    python bench/library_pages.py [--customers 10000] [--repeats 30] [--out FILE] [--smoke]

A real ``OneEyeApp`` on a fresh SQLite database (WAL, as ``oneeye serve`` runs it), started,
with ``--customers`` accounts written directly through the repositories: each account, a
person holding it on the customers watchlist, and one template with a random unit embedding
(no photo is decoded: the page shows thumbnails by URL, which the browser fetches later).
An admin logs in; each request is timed end to end through the ASGI app (routing, session
check, two queries, the audit row the page writes, rendering) with ``TestClient``, in turns:
the first page, a middle page, a search by part of a name, a search by account id, and one
customer's page. Prints p50/p95 per request, and with ``--out`` writes them as JSON.
``--smoke``: 200 customers, 3 repeats (the test suite runs it so the script keeps working).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings
from oneeye.store.repos import accounts, people, templates
from oneeye.types import Face, FaceBox, FaceQuality
from oneeye.vision.engine import FaceEngine
from oneeye.web.pages.customers import CUSTOMERS_PAGE_SIZE as PAGE_SIZE

PASSWORD = "library bench password"
LIMIT_MS = 300.0
FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Katherine")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus")


def enrol_rows(app: OneEyeApp, count: int, rng: np.random.Generator) -> None:
    """``count`` accounts, each held by a person with one random template, in batches."""
    db = app.services.db
    for start in range(0, count, 1000):
        with db.session() as session:
            for i in range(start, min(count, start + 1000)):
                account_id = f"ACC-{i:06d}"
                name = f"{FIRST[i % len(FIRST)]} {LAST[(i // 7) % len(LAST)]} {i}"
                accounts.save(
                    session,
                    account_id,
                    name=name,
                    account_type="Checking",
                    address=f"{i} Main Street",
                    balance=Decimal(i) / 10,
                    currency="USD",
                )
                person = people.create(
                    session, name=name, account_id=account_id, notes="", watchlists=["customers"]
                )
                vector = rng.normal(size=128).astype(np.float32)
                face = Face(
                    box=FaceBox(top=40, right=140, bottom=140, left=40),
                    embedding=vector / np.linalg.norm(vector),
                    detector="hog",
                    landmarks=np.zeros((5, 2), np.float32),
                    quality=FaceQuality(size=100, sharpness=120.0, frontalness=0.9, score=0.8),
                )
                templates.add(session, person.id, f"templates/bench-{i}.jpg", face)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear interpolation)."""
    return float(np.quantile(np.asarray(values), q))


def main() -> None:
    """Build the site, time the requests, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--smoke", action="store_true", help="200 customers, to see it runs")
    args = parser.parse_args()
    if args.smoke:
        args.customers, args.repeats = 200, 3
    rng = np.random.default_rng(12)
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServeSettings(
            data_dir=Path(tmp) / "data", database_url=f"sqlite:///{Path(tmp) / 'oneeye.db'}"
        )
        app = OneEyeApp(settings, engine=FaceEngine(settings.engine), announce=lambda _: None)
        app.start()
        try:
            started = time.perf_counter()
            enrol_rows(app, args.customers, rng)
            print(f"enrolled {args.customers:,} customers in {time.perf_counter() - started:.1f} s")
            app.services.auth.create_user("bench-admin", PASSWORD, "admin")
            middle = max(1, args.customers // PAGE_SIZE // 2)
            probe = random.Random(12).randrange(args.customers)
            requests = {
                "first page": "/admin/customers",
                f"middle page ({middle})": f"/admin/customers?page={middle}",
                "search by name ('hopper')": "/admin/customers?q=hopper",
                "search by account id": f"/admin/customers?q=ACC-{probe:06d}",
                "one customer's page": f"/admin/customers/ACC-{probe:06d}",
            }
            times: dict[str, list[float]] = {name: [] for name in requests}
            with TestClient(app.web) as client:
                login = client.post(
                    "/api/v1/auth/login", json={"username": "bench-admin", "password": PASSWORD}
                )
                login.raise_for_status()
                for name, url in requests.items():  # warm up: first use of each query plan
                    assert client.get(url).status_code == 200, name
                for _ in range(args.repeats):
                    for name, url in requests.items():
                        begun = time.perf_counter()
                        response = client.get(url)
                        times[name].append((time.perf_counter() - begun) * 1000)
                        assert response.status_code == 200, (name, response.status_code)
                        assert 'data-testid="customer-' in response.text, name
        finally:
            app.stop()
    results = {}
    for name, values in times.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        results[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "n": len(values)}
        verdict = "ok" if p95 < LIMIT_MS else f"OVER {LIMIT_MS:.0f} ms"
        print(
            f"{name:32s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(values):7.1f} ms  {verdict}"
        )
    every = [t for values in times.values() for t in values]
    print(f"mean of all requests {statistics.fmean(every):.1f} ms")
    if args.out:
        document = {
            "benchmark": "library_pages",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "customers": args.customers,
            "repeats": args.repeats,
            "page_size": PAGE_SIZE,
            "limit_ms": LIMIT_MS,
            "requests": results,
        }
        args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
