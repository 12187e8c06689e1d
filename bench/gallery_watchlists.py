"""What deciding per watchlist costs ``identify`` on a 100,000-template gallery.

Each watchlist decides on its own persons (issue 12), so ``identify`` may search a watchlist
on its own when its first search (the k nearest groups over every watchlist) may have missed
that watchlist's nearest person or their rival. This times, turn by turn on the same queries
(half enrolled faces seen again, half strangers), single-face ``identify(q, k=2)`` and
20-face ``identify_batch`` on:

- ``one-watchlist``: every template on ``customers`` (never a second search: the baseline);
- ``two-watchlists``: 1 person in 10 on ``amber-alert``, shipped thresholds (the usual case);
- ``forced``: the same, but amber-alert's threshold at 2.0, so every face also searches
  amber-alert on its own (the worst case: a second full pass over the matrix).

Usage:
    python bench/gallery_watchlists.py [--size 100000] [--turns 30] [--output FILE] [--smoke]

``--smoke``: 2,000 templates, 3 turns, the same paths; writes nothing unless ``--output`` says
where (the test suite runs it so the script cannot rot between real runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench

from bench.gallery_scale import queries_for, unit
from oneeye.gallery import GalleryIndex


def build(vectors: np.ndarray, amber_every: int, amber_threshold: float | None) -> GalleryIndex:
    thresholds = {} if amber_threshold is None else {"amber-alert": amber_threshold}
    index = GalleryIndex(thresholds=thresholds)
    n = len(vectors)
    persons = [f"p{i // 2}" for i in range(n)]
    watchlists = [
        "amber-alert" if amber_every and (i // 2) % amber_every == 0 else "customers"
        for i in range(n)
    ]
    index.add_arrays([f"t{i}" for i in range(n)], persons, watchlists, vectors)
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds), for tests")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.turns = 2000, 3
    if args.size < 1 or args.turns < 1:
        parser.error("--size and --turns must be at least 1")
    rng = np.random.default_rng(12)
    vectors = unit(rng, args.size)
    galleries = {
        "one-watchlist": build(vectors, 0, None),
        "two-watchlists": build(vectors, 10, None),
        "forced": build(vectors, 10, 2.0),
    }
    queries = queries_for(rng, vectors, args.turns)
    batch = queries_for(rng, vectors, 20)
    single: dict[str, list[float]] = {name: [] for name in galleries}
    batched: dict[str, list[float]] = {name: [] for name in galleries}
    load_before = os.getloadavg()
    for turn in range(args.turns):
        for name, index in galleries.items():
            start = time.perf_counter()
            index.identify(queries[turn], k=2)
            single[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            index.identify_batch(batch, k=2)
            batched[name].append(time.perf_counter() - start)
    result = {
        "size": args.size,
        "turns": args.turns,
        "smoke": args.smoke,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "identify_ms_median": {k: round(1e3 * statistics.median(v), 2) for k, v in single.items()},
        "identify_batch20_ms_median": {
            k: round(1e3 * statistics.median(v), 2) for k, v in batched.items()
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
