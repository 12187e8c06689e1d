"""The approximate gallery index before and after faiss, head to head inside ``GalleryIndex``.

Issue 14 replaced the home-made inverted file (``oneeye/gallery/ivf.py`` at commit
``HOMEMADE``) with faiss-cpu's IVF-Flat. This loads the home-made one from git history and
puts both behind the same ``GalleryIndex`` (same templates, cell count, probes, exact
re-ranking, thresholds and margin), then times ``search`` (one face) and ``search_batch`` (20
faces, k = 5) in alternating turns, and compares ``identify_batch`` of each with exact search
on enrolled faces seen again and on strangers (as ``bench/gallery_scale.py`` does).

Usage (from a git checkout):
    python bench/gallery_ivf_headtohead.py [--sizes 200000,500000] [--queries 50]
        [--batches 20] [--accuracy-probes 1000]

Results go to ``bench/results/gallery_ivf_headtohead.json``. ``--smoke`` runs both on 4,000
templates in seconds and writes to a temporary folder (the test suite runs it; it needs the
git history that holds ``HOMEMADE``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.*

from bench import gallery_scale as scale
from oneeye.gallery import GalleryIndex
from oneeye.gallery.ivf import IvfParameters

HOMEMADE = "8203e8c"
"""A commit of main with the home-made inverted file (its last version)."""
RESULTS = Path(__file__).resolve().parent / "results" / "gallery_ivf_headtohead.json"
ROOT = Path(__file__).resolve().parents[1]


def homemade_module() -> ModuleType:
    """The home-made ``ivf.py`` from git history, loaded as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{HOMEMADE}:oneeye/gallery/ivf.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "homemade_ivf.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("homemade_ivf", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["homemade_ivf"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def homemade_file(module: ModuleType) -> type:
    """The home-made inverted file, given the interface ``GalleryIndex`` now calls."""

    class HomemadeFile(module.InvertedFile):  # type: ignore[name-defined,misc]
        @classmethod
        def build(cls, matrix: Any, size: int, wanted: IvfParameters) -> Any:
            old = module.IvfParameters(
                lists=wanted.lists,
                probes=wanted.probes,
                min_templates=wanted.min_templates,
                seed=wanted.seed,
            )
            built = module.InvertedFile.build(matrix, size, old)
            built.__class__ = cls
            return built

        def candidates(self, augmented: Any, probes: int, **_: Any) -> Any:
            return super().candidates(augmented, probes)  # every template of the cells

    return HomemadeFile


def run_size(size: int, args: argparse.Namespace, module: ModuleType) -> dict[str, Any]:
    """Build both, time them in turns, compare their answers with exact search."""
    rng = np.random.default_rng(size)
    embeddings = scale.unit(rng, size)
    ids = [f"t{i}" for i in range(size)]
    persons = [f"p{i // 2}" for i in range(size)]
    watchlists = ["amber-alert" if (i // 2) % 10 == 0 else "customers" for i in range(size)]
    queries = scale.queries_for(rng, embeddings, args.queries)
    batches = [scale.queries_for(rng, embeddings, scale.BATCH) for _ in range(4)]
    load_before = os.getloadavg()
    parameters = IvfParameters(probes=args.probes, min_templates=args.min_templates)

    exact = GalleryIndex()
    exact.add_arrays(ids, persons, watchlists, embeddings)
    built: dict[str, GalleryIndex] = {}
    build_s: dict[str, float] = {}
    for name in ("homemade", "faiss"):
        start = time.perf_counter()
        index = GalleryIndex(ivf=parameters)
        if name == "homemade":
            index_module: Any = sys.modules["oneeye.gallery.index"]
            original = index_module.InvertedFile
            index_module.InvertedFile = homemade_file(module)  # only while it builds
            try:
                index.add_arrays(ids, persons, watchlists, embeddings)
            finally:
                index_module.InvertedFile = original
        else:
            index.add_arrays(ids, persons, watchlists, embeddings)
        build_s[name] = round(time.perf_counter() - start, 3)
        built[name] = index
    for index in built.values():
        index.search(queries[0], scale.K)
        index.search_batch(batches[0], scale.K)
    single: dict[str, list[float]] = {name: [] for name in built}
    batch: dict[str, list[float]] = {name: [] for name in built}
    for turn, query in enumerate(queries):
        order = list(built) if turn % 2 == 0 else list(built)[::-1]
        for name in order:
            start = time.perf_counter()
            built[name].search(query, scale.K)
            single[name].append(time.perf_counter() - start)
    for turn in range(args.batches):
        faces = batches[turn % len(batches)]
        order = list(built) if turn % 2 == 0 else list(built)[::-1]
        for name in order:
            start = time.perf_counter()
            built[name].search_batch(faces, scale.K)
            batch[name].append(time.perf_counter() - start)
    members, _ = scale.members_seen_again(rng, embeddings, args.accuracy_probes)
    strangers = scale.unit(rng, args.accuracy_probes)
    accuracy: dict[str, dict[str, Any]] = {}
    for probe_name, probes in (("members", members), ("strangers", strangers)):
        truth = exact.identify_batch(probes, scale.K)
        for name, index in built.items():
            accuracy.setdefault(name, {})[probe_name] = scale.agreement(
                truth, index.identify_batch(probes, scale.K)
            )
    result: dict[str, Any] = {
        "templates": size,
        "lists": built["faiss"].ivf_lists,
        "probes": args.probes,
        "build_s": build_s,
        "index_array_bytes": {name: index.nbytes for name, index in built.items()},
        "single_ms": {name: scale.summary(times) for name, times in single.items()},
        "batch20_ms": {name: scale.summary(times) for name, times in batch.items()},
        "accuracy": accuracy,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    result["homemade_over_faiss"] = {
        what: round(result[what]["homemade"]["median"] / result[what]["faiss"]["median"], 2)
        for what in ("single_ms", "batch20_ms")
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--sizes", default="200000,500000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--probes", type=int, default=IvfParameters().probes)
    parser.add_argument("--accuracy-probes", type=int, default=1000)
    parser.add_argument("--min-templates", type=int, default=IvfParameters().min_templates)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds on 4,000 templates (approximate search forced on), results to a "
        "temporary file: proves the script runs",
    )
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.queries, args.batches, args.accuracy_probes = "4000", 5, 2, 50
        args.min_templates, args.probes = 1000, 8
        args.output = Path(tempfile.mkdtemp()) / "gallery_ivf_headtohead.json"
    module = homemade_module()
    results = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        result = run_size(size, args, module)
        print(json.dumps(result), flush=True)
        results.append(result)
    document = {
        "benchmark": "gallery_ivf_headtohead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "homemade_commit": HOMEMADE,
        "machine": scale.machine(),
        "settings": {
            "k": scale.K,
            "batch": scale.BATCH,
            "queries": args.queries,
            "batches": args.batches,
            "probes": args.probes,
            "accuracy_probes": args.accuracy_probes,
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.output}" + (" (smoke: bench/results left as it was)" if args.smoke else ""))


if __name__ == "__main__":
    main()
