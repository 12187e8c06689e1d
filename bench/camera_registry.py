"""The sender check's cost on the bus thread: ``CameraRegistry.allows`` per sighting.

    python bench/camera_registry.py [--cameras 200] [--checks 200000] [--runs 3] [--smoke]

A registry on a fresh SQLite database with ``--cameras`` cameras of one edge. Each run times
``--checks`` checks of a registered camera (the hot path: a dictionary lookup under a lock)
and as many of made-up camera ids (a miss reloads the cache at most once a second). Prints
microseconds per check; the one-second card promise is 1,000,000 of them. ``--smoke``: 5
cameras, 1,000 checks, one run (the test suite runs it so the script keeps working).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from oneeye.services.edge.registry import CameraRegistry
from oneeye.store.db import Database


def main() -> None:
    """Run the timing and print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few checks, to see it runs")
    args = parser.parse_args()
    if args.smoke:
        args.cameras, args.checks, args.runs = 5, 1_000, 1
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'registry.db'}")
        db.migrate()
        registry = CameraRegistry(db)
        registry.register("edge-a", [(f"cam-{i}", f"Camera {i}") for i in range(args.cameras)])
        ghosts = [f"ghost-{i}" for i in range(args.checks)]
        for _ in range(args.runs):
            started = time.perf_counter()
            for _ in range(args.checks):
                registry.allows("edge-a", "cam-17")
            hit = (time.perf_counter() - started) / args.checks
            started = time.perf_counter()
            for ghost in ghosts:
                registry.allows("edge-a", ghost)
            miss = (time.perf_counter() - started) / args.checks
            print(f"registered camera {hit * 1e6:.2f} us/check, unknown {miss * 1e6:.2f} us/check")
        db.close()


if __name__ == "__main__":
    main()
