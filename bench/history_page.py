"""History page benchmark: how long a page of the sightings history and a CSV export take on
SQLite as the table grows.

``python bench/history_page.py [--sightings 100000] [--revised 0.01] [--repeats 20]``
(``--smoke``: 2,000 sightings, 2 repeats, for the test suite): fills a
fresh SQLite database (in a temporary folder) with that many sightings over 30 days, 8
cameras and 200 people (a third unknown faces), a share of them revised to another decision,
then times through :mod:`oneeye.services.history`: the newest page, a page 100 pages deep
(keyset), a person's page (which also looks through the revised decisions), unknown faces in
one day, and a 10,000-row CSV export. Prints the median and p95 in milliseconds and writes
them to ``bench/results/history_page.json`` (``--out``).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oneeye.services.history import HistoryQuery, csv_lines, export, page
from oneeye.services.sighting_queries import SightingQueries
from oneeye.store.db import Database
from oneeye.store.models import Person, Sighting, SightingDecision, new_id

CAMERAS = [f"cam-{i}" for i in range(8)]


def fill(db: Database, count: int, revised: float, seed: int = 7) -> list[str]:
    """Write ``count`` sightings (and the revisions of a ``revised`` share); returns the
    people's ids."""
    rng = random.Random(seed)
    people = [new_id() for _ in range(200)]
    start = datetime.now(UTC) - timedelta(days=30)
    with db.session() as session:
        session.add_all(Person(id=p, name=f"Person {i}") for i, p in enumerate(people))
    batch: list[dict[str, object]] = []
    decisions: list[dict[str, object]] = []
    for i in range(count):
        seen = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        person = rng.choice(people) if rng.random() > 1 / 3 else None
        sid = new_id()
        batch.append(
            {
                "id": sid,
                "camera_id": rng.choice(CAMERAS),
                "track": i,
                "person_id": person,
                "watchlist": "customers" if person else None,
                "distance": rng.uniform(0.2, 0.4) if person else None,
                "quality": 0.8,
                "frame": 0,
                "t": 0.0,
                "top": 0,
                "right": 10,
                "bottom": 10,
                "left": 0,
                "first_seen": seen,
                "last_seen": seen,
                "left_at": seen,
                "snapshot_key": f"snapshots/cam/{sid[:2]}/{sid}.jpg",
            }
        )
        if person and rng.random() < revised:
            decisions.append(
                {
                    "sighting_id": sid,
                    "person_id": rng.choice(people),
                    "watchlist": "customers",
                    "distance": 0.31,
                    "decided_at": seen,
                    "revised_at": seen + timedelta(seconds=2),
                }
            )
        if len(batch) == 5000:
            with db.session() as session:
                session.execute(insert(Sighting), batch)
            batch = []
    with db.session() as session:
        if batch:
            session.execute(insert(Sighting), batch)
        if decisions:
            session.execute(insert(SightingDecision), decisions)
    return people


def timed(what: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and p95 wall time of ``what`` in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        what()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sightings", default=100_000, show_default=True)
@click.option("--revised", default=0.01, show_default=True, help="share of named ones revised")
@click.option("--repeats", default=20, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path(__file__).resolve().parent / "results" / "history_page.json",
    show_default=True,
)
@click.option("--smoke", is_flag=True, help="2,000 sightings, 2 repeats; writes nothing")
def main(sightings: int, revised: float, repeats: int, out: Path, smoke: bool) -> None:
    """Fill a database and time the history's pages and export."""
    if smoke:
        sightings, repeats = 2_000, 2
    results: dict[str, object] = {"sightings": sightings, "revised": revised, "repeats": repeats}
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        db.migrate()
        started = time.perf_counter()
        people = fill(db, sightings, revised)
        print(f"filled {sightings} sightings in {time.perf_counter() - started:.1f} s")
        service = SightingQueries(db)
        cursor = None
        for _ in range(100):
            cursor = page(service, HistoryQuery(), after=cursor).next_after
        deep = cursor
        day = (datetime.now(UTC) - timedelta(days=3)).date()
        cases: dict[str, Callable[[], object]] = {
            "newest page": lambda: page(service, HistoryQuery()),
            "page 101 (keyset)": lambda: page(service, HistoryQuery(), after=deep),
            "a person's page": lambda: page(service, HistoryQuery(person=people[3])),
            "a camera's page": lambda: page(service, HistoryQuery(camera=CAMERAS[2])),
            "unknown faces, one day": lambda: page(
                service, HistoryQuery(unknown=True, since=day, until=day)
            ),
        }
        for name, what in cases.items():
            median, p95 = timed(what, repeats)
            results[name] = {"median_ms": round(median, 2), "p95_ms": round(p95, 2)}
            print(f"{name:26s} median {median:7.1f} ms   p95 {p95:7.1f} ms")
        median, p95 = timed(
            lambda: sum(len(line) for line in csv_lines(export(service, HistoryQuery()))),
            max(3, repeats // 5),
        )
        results["CSV export, 10,000 rows"] = {
            "median_ms": round(median, 2),
            "p95_ms": round(p95, 2),
        }
        print(f"{'CSV export, 10,000 rows':26s} median {median:7.1f} ms   p95 {p95:7.1f} ms")
    if smoke:
        print("smoke run: nothing written")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
