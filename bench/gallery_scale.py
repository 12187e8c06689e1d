"""Gallery search speed and memory from ten thousand to a million templates.

For each size: random unit templates (two per person, one person in ten on ``amber-alert``,
the rest on ``customers``), built with ``GalleryIndex.add_arrays``; then single-query latency
of ``search(q, k=5)`` over 50 queries (half near an enrolled template, half strangers) and the
latency of ``search_batch`` on batches of 20 faces (one busy video frame). In the same run the
reference: ``face_recognition.face_distance`` over the same (n, 128) array, which is all that
library offers (``np.linalg.norm(face_encodings - face_to_compare, axis=1)``), once per face;
the two take turns query by query so they see the same load. At a million templates it also
times the bare BLAS products for the two storage layouts (a row per template vs a column per
template), the evidence for the index's layout.

For the sizes in ``--ivf-sizes`` the same templates also go into an approximate index
(``GalleryIndex(ivf=IvfParameters(...))``: inverted file, exact re-ranking), timed in the same
turns, and its answers are compared with exact search's: ``--accuracy-probes`` enrolled
templates seen again (moved on the sphere to a euclidean distance drawn uniformly from
0.20-0.35, about where a real second photo of an enrolled person falls) and as many random
strangers, through ``identify_batch`` with the shipped threshold and margin.

With ``--faiss`` (faiss-cpu installed), the ivf sizes also go into faiss's flat index and its
IVF-Flat with the same cell count and probes, timed in the same turns on the same batches
(``search(faces, 32)``: the candidate pool the gallery re-ranks); every approximate answer is
scored as recall@1 against exact search (its nearest template is exact search's nearest) on
the same members and strangers.

Usage:
    python bench/gallery_scale.py [--sizes 10000,100000,1000000] [--queries 50] [--batches 20]
        [--ivf-sizes 100000,1000000] [--ivf-probes 32] [--accuracy-probes 1000] [--faiss]
    python bench/gallery_scale.py --smoke --output /tmp/gallery_scale_smoke.json
        (a few seconds: every path on a tiny gallery, for the test suite)

Results go to ``bench/results/gallery_scale.json``. The machine is shared: the JSON records
the load average before and after each size so a noisy run can be recognised.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oneeye.gallery import GalleryIndex
from oneeye.gallery.ivf import IvfParameters
from oneeye.types import Identification

RESULTS = Path(__file__).resolve().parent / "results" / "gallery_scale.json"
K = 5
BATCH = 20
TARGET_SINGLE_MS = 50.0
TARGET_BATCH_MS = 100.0
TARGET_SIZE = 1_000_000
MEMBER_DISTANCE = (0.20, 0.35)
FAISS_POOL = 32
"""Templates asked of faiss per face: the first candidate pool the gallery re-ranks."""
TRAIN_PER_LIST = 32
"""Training sample per cell for faiss, as the gallery's own inverted file takes."""

Vectors = npt.NDArray[np.float32]
Distances = Callable[[Vectors, Vectors], npt.NDArray[np.floating[Any]]]


def numpy_face_distance(face_encodings: Vectors, face_to_compare: Vectors) -> Any:
    """face_recognition 1.3.0's ``face_distance``, verbatim, for when it is not installed."""
    if len(face_encodings) == 0:
        return np.empty(0)
    return np.linalg.norm(face_encodings - face_to_compare, axis=1)


def reference() -> tuple[str, Distances]:
    """``face_recognition.face_distance`` if importable, else the same numpy expression."""
    try:
        import face_recognition  # noqa: PLC0415 - optional, bench-only, slow to import
    except ImportError:
        return "numpy np.linalg.norm(E - q, axis=1) (face_recognition not importable)", (
            numpy_face_distance
        )
    try:
        # The package's own __version__ says 1.2.3 in the 1.3.0 release; ask the installer.
        version = importlib.metadata.version("face_recognition")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(face_recognition, "__version__", "?")
    function: Distances = face_recognition.face_distance
    return f"face_recognition.face_distance {version}", function


def machine() -> dict[str, Any]:
    """CPU, cores, numpy and its BLAS, and the BLAS-related environment."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    config: Any = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "blas": {
            "name": blas.get("name"),
            "version": blas.get("version"),
            "configuration": blas.get("openblas configuration"),
        },
        "environment": {
            name: os.environ.get(name)
            for name in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS")
        },
    }
    try:
        info["threadpools"] = importlib.import_module("threadpoolctl").threadpool_info()
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    return info


def rss_bytes() -> int:
    """Resident memory of this process (Linux), 0 elsewhere."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def summary(seconds: list[float]) -> dict[str, float | int]:
    """Median, 95th percentile and minimum in milliseconds."""
    ms = np.asarray(seconds) * 1000.0
    return {
        "median": round(float(np.median(ms)), 3),
        "p95": round(float(np.percentile(ms, 95)), 3),
        "min": round(float(ms.min()), 3),
        "runs": len(seconds),
    }


def unit(rng: np.random.Generator, count: int) -> Vectors:
    vectors = rng.standard_normal((count, 128), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def queries_for(rng: np.random.Generator, gallery: Vectors, count: int) -> Vectors:
    """Half enrolled faces seen again (a little noise), half strangers."""
    near = gallery[rng.integers(len(gallery), size=count // 2)]
    near = near + 0.03 * rng.standard_normal(near.shape, dtype=np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    return np.concatenate([near, unit(rng, count - count // 2)]).astype(np.float32)


def members_seen_again(
    rng: np.random.Generator, gallery: Vectors, count: int
) -> tuple[Vectors, npt.NDArray[np.intp]]:
    """Enrolled templates moved on the unit sphere to a distance in ``MEMBER_DISTANCE``.

    Returns the probes and the rows they came from.
    """
    rows = rng.integers(len(gallery), size=count)
    source = gallery[rows].astype(np.float64)
    source /= np.linalg.norm(source, axis=1, keepdims=True)
    away = rng.standard_normal(source.shape)
    away -= np.einsum("ij,ij->i", away, source)[:, np.newaxis] * source
    away /= np.linalg.norm(away, axis=1, keepdims=True)
    distance = rng.uniform(*MEMBER_DISTANCE, size=count)
    # |q - g| = d on the unit sphere: q = cos(t) g + sin(t) u with 2 - 2 cos(t) = d^2.
    cosine = 1.0 - distance**2 / 2.0
    sine = np.sqrt(1.0 - cosine**2)
    probes = cosine[:, np.newaxis] * source + sine[:, np.newaxis] * away
    return probes.astype(np.float32), rows


def decision(answer: Identification) -> str | None:
    """The name an identification gives, ``None`` for unknown."""
    return answer.match.person if answer.match is not None else None


def agreement(exact: list[Identification], approximate: list[Identification]) -> dict[str, Any]:
    """How often the approximate answers equal the exact ones."""
    count = len(exact)
    top1 = sum(
        bool(a.candidates)
        and bool(e.candidates)
        and a.candidates[0].person == e.candidates[0].person
        for e, a in zip(exact, approximate, strict=True)
    )
    same = sum(decision(e) == decision(a) for e, a in zip(exact, approximate, strict=True))
    named = sum(decision(e) is not None for e in exact)
    return {
        "probes": count,
        "top1_person_agrees": round(top1 / count, 5),
        "decision_agrees": round(same / count, 5),
        "disagreements": count - same,
        "exact_named": round(named / count, 4),
        "approximate_named": round(sum(decision(a) is not None for a in approximate) / count, 4),
    }


def faiss_indexes(
    embeddings: Vectors, lists: int, probes: int, seed: int
) -> tuple[str, dict[str, Any]]:
    """faiss's flat index and its IVF-Flat (``lists`` cells, ``probes`` probed) over
    ``embeddings``, the IVF trained like the gallery's (``TRAIN_PER_LIST`` sampled templates
    per cell, 8 k-means iterations)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as oneeye.gallery.ivf imports it
    faiss: Any = importlib.import_module("faiss")
    size, dimension = embeddings.shape
    flat = faiss.IndexFlatL2(dimension)
    flat.add(embeddings)
    quantizer = faiss.IndexFlatL2(dimension)
    ivf = faiss.IndexIVFFlat(quantizer, dimension, lists)
    ivf.cp.niter = 8
    ivf.cp.seed = seed
    ivf.cp.min_points_per_centroid = TRAIN_PER_LIST
    rng = np.random.default_rng(seed)
    sample = embeddings[
        np.sort(rng.choice(size, size=min(size, lists * TRAIN_PER_LIST), replace=False))
    ]
    ivf.train(np.ascontiguousarray(sample))
    ivf.add(embeddings)
    ivf.nprobe = probes
    label = (
        f"faiss-cpu {faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})"
    )
    return label, {"faiss_flat": flat, "faiss_ivf": ivf, "_quantizer": quantizer}


def recall_at_1(
    exact: GalleryIndex,
    approximate: GalleryIndex,
    faiss: dict[str, Any],
    probes: Vectors,
) -> dict[str, float]:
    """Share of ``probes`` whose nearest template, per index, is exact search's nearest."""
    truth = [int(m[0].template[1:]) for m in exact.search_batch(probes, 1)]
    found: dict[str, list[int]] = {
        "oneeye_ivf": [int(m[0].template[1:]) for m in approximate.search_batch(probes, 1)]
    }
    for name, index in faiss.items():
        if not name.startswith("_"):
            found[name] = index.search(probes, 1)[1][:, 0].tolist()
    count = len(truth)
    return {
        name: round(sum(a == b for a, b in zip(rows, truth, strict=True)) / count, 5)
        for name, rows in found.items()
    }


def reference_batch(distances: Distances, embeddings: Vectors, faces: Vectors) -> list[Any]:
    """What face_recognition offers for several faces: one ``face_distance`` call per face."""
    return [distances(embeddings, face) for face in faces]


def bench_size(
    size: int, args: argparse.Namespace, distances: Distances, progress: Progress
) -> dict[str, Any]:
    """Build, search and compare one gallery size."""
    rng = np.random.default_rng(size)
    task = progress.add_task(f"{size:>9,}: generating", total=None)
    embeddings = unit(rng, size)
    ids = [f"t{i}" for i in range(size)]
    persons = [f"p{i // 2}" for i in range(size)]
    watchlists = ["amber-alert" if (i // 2) % 10 == 0 else "customers" for i in range(size)]
    queries = queries_for(rng, embeddings, args.queries)
    batches = [queries_for(rng, embeddings, BATCH) for _ in range(4)]
    load_before = os.getloadavg()

    progress.update(task, description=f"{size:>9,}: building")
    gc.collect()
    rss_before = rss_bytes()
    start = time.perf_counter()
    index = GalleryIndex()
    index.add_arrays(ids, persons, watchlists, embeddings)
    build_s = time.perf_counter() - start
    rss_delta = rss_bytes() - rss_before

    approximate: GalleryIndex | None = None
    ivf_build_s = 0.0
    ivf_rss_delta = 0
    faiss: dict[str, Any] = {}
    faiss_label = ""
    faiss_build_s = 0.0
    if size in args.ivf_sizes:
        progress.update(task, description=f"{size:>9,}: building ivf")
        gc.collect()
        rss_before = rss_bytes()
        start = time.perf_counter()
        approximate = GalleryIndex(
            ivf=IvfParameters(probes=args.ivf_probes, min_templates=args.ivf_min_templates)
        )
        approximate.add_arrays(ids, persons, watchlists, embeddings)
        ivf_build_s = time.perf_counter() - start
        ivf_rss_delta = rss_bytes() - rss_before
        if args.faiss:
            progress.update(task, description=f"{size:>9,}: building faiss")
            start = time.perf_counter()
            faiss_label, faiss = faiss_indexes(
                embeddings, approximate.ivf_lists, args.ivf_probes, seed=size
            )
            faiss_build_s = time.perf_counter() - start
    others = {name: index for name, index in faiss.items() if not name.startswith("_")}

    turns = 3 if approximate is not None else 2
    total = (turns + len(others)) * args.queries + (turns - 1 + len(others)) * args.batches
    total += min(args.batches, args.reference_batches)
    progress.update(task, description=f"{size:>9,}: timing", total=total, completed=0)

    def tick() -> None:
        progress.advance(task)

    # Ours and the reference take turns, so both see the same load on a shared machine.
    def clock(run: Callable[..., object], *args: Any) -> float:
        start = time.perf_counter()
        run(*args)
        tick()
        return time.perf_counter() - start

    ours = [index] if approximate is None else [index, approximate]
    for gallery in ours:
        gallery.search(queries[0], K)  # warm-up: first-call allocations
        gallery.search_batch(batches[0], K)
    for other in others.values():
        other.search(batches[0], FAISS_POOL)
    single: list[list[float]] = [[] for _ in ours]
    other_single: dict[str, list[float]] = {name: [] for name in others}
    ref_single: list[float] = []
    for query in queries:
        for gallery, times in zip(ours, single, strict=True):
            times.append(clock(gallery.search, query, K))
        for name, other in others.items():
            other_single[name].append(clock(other.search, query[np.newaxis], FAISS_POOL))
        ref_single.append(clock(distances, embeddings, query))
    batch: list[list[float]] = [[] for _ in ours]
    other_batch: dict[str, list[float]] = {name: [] for name in others}
    ref_batch: list[float] = []
    every = max(1, args.batches // max(1, args.reference_batches))
    for n in range(args.batches):
        faces = batches[n % len(batches)]
        for gallery, times in zip(ours, batch, strict=True):
            times.append(clock(gallery.search_batch, faces, K))
        for name, other in others.items():
            other_batch[name].append(clock(other.search, faces, FAISS_POOL))
        if n % every == 0 and len(ref_batch) < args.reference_batches:
            ref_batch.append(clock(reference_batch, distances, embeddings, faces))

    progress.update(task, description=f"{size:>9,}: checking")
    agree = 0
    for query in queries[:10]:
        nearest = int(np.argmin(distances(embeddings, query)))
        found = index.search(query, 1)[0]
        agree += found.template == ids[nearest]
    load_after = os.getloadavg()
    progress.update(task, description=f"{size:>9,}: done", completed=total)

    ref_bytes = int(embeddings.nbytes)
    result: dict[str, Any] = {
        "templates": size,
        "persons": len(set(persons)),
        "build_s": round(build_s, 3),
        "index_array_bytes": index.nbytes,
        "index_rss_delta_bytes": rss_delta,
        "reference_array_bytes": ref_bytes,
        "single_ms": summary(single[0]),
        "batch20_ms": summary(batch[0]),
        "reference_single_ms": summary(ref_single),
        "reference_batch20_ms": summary(ref_batch),
        "top1_agrees_with_reference": f"{agree}/{len(queries[:10])}",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    result["speedup_single"] = round(
        result["reference_single_ms"]["median"] / result["single_ms"]["median"], 2
    )
    result["speedup_batch20"] = round(
        result["reference_batch20_ms"]["median"] / result["batch20_ms"]["median"], 2
    )
    if approximate is not None:
        progress.update(task, description=f"{size:>9,}: ivf accuracy")
        result["ivf"] = ivf_result(
            rng, args, embeddings, index, approximate, single[1], batch[1], result
        )
        result["ivf"]["build_s"] = round(ivf_build_s, 3)
        result["ivf"]["rss_delta_bytes"] = ivf_rss_delta
        if faiss:
            progress.update(task, description=f"{size:>9,}: faiss recall")
            result["faiss"] = faiss_result(
                rng, args, embeddings, index, approximate, faiss, other_single, other_batch
            )
            result["faiss"]["library"] = faiss_label
            result["faiss"]["build_s"] = round(faiss_build_s, 3)
            result["faiss"]["ratios"] = faiss_ratios(result)
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if size >= TARGET_SIZE:
        result["layout_blas_ms"] = layout_products(embeddings, queries, batches[0])
    return result


def ivf_result(
    rng: np.random.Generator,
    args: argparse.Namespace,
    embeddings: Vectors,
    exact: GalleryIndex,
    approximate: GalleryIndex,
    single: list[float],
    batch: list[float],
    exact_result: dict[str, Any],
) -> dict[str, Any]:
    """The approximate index's timings, size and agreement with exact search."""
    members, _ = members_seen_again(rng, embeddings, args.accuracy_probes)
    strangers = unit(rng, args.accuracy_probes)
    accuracy = {}
    for name, probes in (("members", members), ("strangers", strangers)):
        accuracy[name] = agreement(
            exact.identify_batch(probes, K), approximate.identify_batch(probes, K)
        )
    parameters = approximate.ivf
    assert parameters is not None
    single_ms, batch_ms = summary(single), summary(batch)
    return {
        "parameters": {
            "probes": parameters.probes,
            "lists": approximate.ivf_lists,
            "min_templates": parameters.min_templates,
        },
        "index_array_bytes": approximate.nbytes,
        "single_ms": single_ms,
        "batch20_ms": batch_ms,
        "speedup_single_vs_exact": round(
            exact_result["single_ms"]["median"] / single_ms["median"], 2
        ),
        "speedup_batch20_vs_exact": round(
            exact_result["batch20_ms"]["median"] / batch_ms["median"], 2
        ),
        "speedup_single": round(
            exact_result["reference_single_ms"]["median"] / single_ms["median"], 2
        ),
        "speedup_batch20": round(
            exact_result["reference_batch20_ms"]["median"] / batch_ms["median"], 2
        ),
        "accuracy": accuracy,
        "member_distance": list(MEMBER_DISTANCE),
    }


def faiss_result(
    rng: np.random.Generator,
    args: argparse.Namespace,
    embeddings: Vectors,
    exact: GalleryIndex,
    approximate: GalleryIndex,
    faiss: dict[str, Any],
    single: dict[str, list[float]],
    batch: dict[str, list[float]],
) -> dict[str, Any]:
    """faiss's timings and every approximate index's recall@1 against exact search."""
    members, _ = members_seen_again(rng, embeddings, args.accuracy_probes)
    strangers = unit(rng, args.accuracy_probes)
    return {
        "pool": FAISS_POOL,
        "lists": int(faiss["faiss_ivf"].nlist),
        "probes": int(faiss["faiss_ivf"].nprobe),
        "single_ms": {name: summary(times) for name, times in single.items()},
        "batch20_ms": {name: summary(times) for name, times in batch.items()},
        "recall_at_1_vs_exact": {
            "members": recall_at_1(exact, approximate, faiss, members),
            "strangers": recall_at_1(exact, approximate, faiss, strangers),
        },
    }


def faiss_ratios(result: dict[str, Any]) -> dict[str, float]:
    """Median time of OneEye's index over faiss's (above 1: faiss is faster)."""

    def ratio(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
        return round(float(ours["median"]) / float(theirs["median"]), 2)

    faiss = result["faiss"]
    return {
        "exact_vs_flat_single": ratio(result["single_ms"], faiss["single_ms"]["faiss_flat"]),
        "exact_vs_flat_batch20": ratio(result["batch20_ms"], faiss["batch20_ms"]["faiss_flat"]),
        "ivf_vs_faiss_ivf_single": ratio(
            result["ivf"]["single_ms"], faiss["single_ms"]["faiss_ivf"]
        ),
        "ivf_vs_faiss_ivf_batch20": ratio(
            result["ivf"]["batch20_ms"], faiss["batch20_ms"]["faiss_ivf"]
        ),
    }


def layout_products(embeddings: Vectors, queries: Vectors, batch: Vectors) -> dict[str, Any]:
    """The bare float32 products: a row per template (n, 128) vs a column per one (128, n).

    Outputs are preallocated and the four products take turns, so page faults and changes
    of load on a shared machine do not favour either layout. Median ms over 8 turns.
    """
    size = embeddings.shape[0]
    columns = np.ascontiguousarray(embeddings.T)
    batch_t = np.ascontiguousarray(batch.T)
    one = np.empty(size, dtype=np.float32)
    rows_out = np.empty((size, BATCH), dtype=np.float32)
    columns_out = np.empty((BATCH, size), dtype=np.float32)
    products: dict[str, Callable[[], object]] = {
        "rows_gemv (n,128)@q": lambda: np.matmul(embeddings, queries[0], out=one),
        "columns_gemv q@(128,n)": lambda: np.matmul(queries[0], columns, out=one),
        "rows_gemm (n,128)@(128,20)": lambda: np.matmul(embeddings, batch_t, out=rows_out),
        "columns_gemm (20,128)@(128,n)": lambda: np.matmul(batch, columns, out=columns_out),
    }
    times: dict[str, list[float]] = {name: [] for name in products}
    for run in products.values():
        run()
    for _ in range(8):
        for name, run in products.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: summary(found)["median"] for name, found in times.items()}


def report(results: list[dict[str, Any]], label: str, console: Console) -> None:
    table = Table(title=f"Gallery search, k={K}, vs {label}")
    for column in (
        "templates",
        "build s",
        "index MB",
        "1 query ms\nmedian / p95",
        "20 faces ms\nmedian / p95",
        "reference 1 ms\nmedian / p95",
        "reference 20 ms\nmedian",
        "speedup\n1 / 20",
        "load avg",
    ):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r['templates']:,}",
            f"{r['build_s']:.2f}",
            f"{r['index_array_bytes'] / 2**20:.0f}",
            f"{r['single_ms']['median']:.2f} / {r['single_ms']['p95']:.2f}",
            f"{r['batch20_ms']['median']:.2f} / {r['batch20_ms']['p95']:.2f}",
            f"{r['reference_single_ms']['median']:.2f} / {r['reference_single_ms']['p95']:.2f}",
            f"{r['reference_batch20_ms']['median']:.1f}",
            f"{r['speedup_single']:.1f}x / {r['speedup_batch20']:.1f}x",
            f"{r['load_average_before'][0]:.1f}-{r['load_average_after'][0]:.1f}",
        )
    console.print(table)
    approximate = [r for r in results if "ivf" in r]
    if approximate:
        table = Table(title="Approximate (ivf, exact re-ranking) on the same templates and turns")
        for column in (
            "templates",
            "cells / probes",
            "build s",
            "index MB",
            "1 query ms\nmedian / p95",
            "20 faces ms\nmedian / p95",
            "vs exact\n1 / 20",
            "members: top-1 /\ndecision = exact",
            "strangers:\ndecision = exact",
        ):
            table.add_column(column, justify="right")
        for r in approximate:
            a = r["ivf"]
            members, strangers = a["accuracy"]["members"], a["accuracy"]["strangers"]
            table.add_row(
                f"{r['templates']:,}",
                f"{a['parameters']['lists']} / {a['parameters']['probes']}",
                f"{a['build_s']:.2f}",
                f"{a['index_array_bytes'] / 2**20:.0f}",
                f"{a['single_ms']['median']:.2f} / {a['single_ms']['p95']:.2f}",
                f"{a['batch20_ms']['median']:.2f} / {a['batch20_ms']['p95']:.2f}",
                f"{a['speedup_single_vs_exact']:.1f}x / {a['speedup_batch20_vs_exact']:.1f}x",
                f"{members['top1_person_agrees']:.2%} / {members['decision_agrees']:.2%}",
                f"{strangers['decision_agrees']:.2%}",
            )
        console.print(table)
    compared = [r for r in results if "faiss" in r]
    if compared:
        table = Table(title=f"OneEye vs {compared[0]['faiss']['library']}, same turns and batches")
        for column in (
            "templates",
            "cells / probes",
            "20 faces ms: exact /\nfaiss flat",
            "20 faces ms: ivf /\nfaiss ivf",
            "1 face ms: ivf /\nfaiss ivf",
            "recall@1 members:\nivf / faiss ivf",
            "recall@1 strangers:\nivf / faiss ivf",
        ):
            table.add_column(column, justify="right")
        for r in compared:
            f = r["faiss"]
            members = f["recall_at_1_vs_exact"]["members"]
            strangers = f["recall_at_1_vs_exact"]["strangers"]
            table.add_row(
                f"{r['templates']:,}",
                f"{f['lists']} / {f['probes']}",
                f"{r['batch20_ms']['median']:.1f} / {f['batch20_ms']['faiss_flat']['median']:.1f}",
                f"{r['ivf']['batch20_ms']['median']:.1f} / "
                f"{f['batch20_ms']['faiss_ivf']['median']:.1f}",
                f"{r['ivf']['single_ms']['median']:.2f} / "
                f"{f['single_ms']['faiss_ivf']['median']:.2f}",
                f"{members['oneeye_ivf']:.2%} / {members['faiss_ivf']:.2%}",
                f"{strangers['oneeye_ivf']:.2%} / {strangers['faiss_ivf']:.2%}",
            )
        console.print(table)
    for r in results:
        if "layout_blas_ms" in r:
            console.print(f"bare BLAS at {r['templates']:,} (ms): {r['layout_blas_ms']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--batches", type=int, default=20, help="batches of 20 to time")
    parser.add_argument("--reference-batches", type=int, default=5)
    parser.add_argument(
        "--ivf-sizes", default="100000,1000000", help="sizes that also get an approximate index"
    )
    parser.add_argument("--ivf-probes", type=int, default=IvfParameters().probes)
    parser.add_argument("--ivf-min-templates", type=int, default=IvfParameters().min_templates)
    parser.add_argument("--accuracy-probes", type=int, default=1000)
    parser.add_argument(
        "--faiss", action="store_true", help="also time faiss-cpu's flat and IVF-Flat indexes"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny run of every path (seconds), for tests"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.smoke:
        args.sizes = args.ivf_sizes = "3000"
        args.queries, args.batches, args.reference_batches = 4, 2, 1
        args.accuracy_probes, args.ivf_min_templates, args.ivf_probes = 20, 1000, 4
        args.faiss = importlib.util.find_spec("faiss") is not None
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    args.ivf_sizes = {int(s.replace("_", "")) for s in args.ivf_sizes.split(",") if s}

    console = Console(width=max(Console().width, 150))
    label, distances = reference()
    info = machine()
    console.print(f"[bold]machine[/]: {info['cpu']}, {info['cores']} cores, numpy {info['numpy']}")
    console.print(f"[bold]BLAS[/]: {info['blas']}  env: {info['environment']}")
    console.print(f"[bold]reference[/]: {label}")
    results = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for size in sizes:
            results.append(bench_size(size, args, distances, progress))
            gc.collect()
    report(results, label, console)
    targets = [
        {
            "templates": r["templates"],
            "single_median_ms": r["single_ms"]["median"],
            "single_target_ms": TARGET_SINGLE_MS,
            "single_met": r["single_ms"]["median"] <= TARGET_SINGLE_MS,
            "batch20_median_ms": r["batch20_ms"]["median"],
            "batch20_target_ms": TARGET_BATCH_MS,
            "batch20_met": r["batch20_ms"]["median"] <= TARGET_BATCH_MS,
        }
        | (
            {
                "ivf_single_median_ms": r["ivf"]["single_ms"]["median"],
                "ivf_single_met": r["ivf"]["single_ms"]["median"] <= TARGET_SINGLE_MS,
                "ivf_batch20_median_ms": r["ivf"]["batch20_ms"]["median"],
                "ivf_batch20_met": r["ivf"]["batch20_ms"]["median"] <= TARGET_BATCH_MS,
                "ivf_member_decision_agrees": r["ivf"]["accuracy"]["members"]["decision_agrees"],
            }
            if "ivf" in r
            else {}
        )
        for r in results
        if r["templates"] >= TARGET_SIZE
    ]
    document = {
        "benchmark": "gallery_scale",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "settings": {
            "k": K,
            "batch": BATCH,
            "queries": args.queries,
            "batches": args.batches,
            "reference_batches": args.reference_batches,
            "templates_per_person": 2,
            "ivf_sizes": sorted(args.ivf_sizes),
            "ivf_probes": args.ivf_probes,
            "ivf_min_templates": args.ivf_min_templates,
            "accuracy_probes": args.accuracy_probes,
            "faiss": args.faiss,
            "smoke": args.smoke,
        },
        "reference": label,
        "targets": targets,
        "results": results,
        "median_speedup_single": statistics.median(r["speedup_single"] for r in results),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
