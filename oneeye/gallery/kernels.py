"""Exact nearest-person search over a :class:`~oneeye.gallery.storage.TemplateStore`.

Every template is compared (brute force, no approximation). One BLAS product with the
augmented queries ``[q, -1]`` over the store's (129, n) matrix gives
``key = q.g - |g|^2 / 2`` per template, and the squared euclidean distance is
``|q|^2 - 2 key``: the largest keys are the nearest templates. The column layout is
deliberate: on the 2-core benchmark machine numpy's ``q @ V`` over a (128, n) matrix ran about
twice as fast as ``G @ q`` over the same data stored a row per template (36 vs 68 ms at a
million; 20 faces: 118 vs 183 ms), and it is what brings one query on a million templates
under 50 ms (``bench/gallery_scale.py``).

One face: one gemv for every key, then an exact selection. A batch of faces on a large gallery:
thresholds from a sample of columns first, then the gallery in a few large blocks of columns,
keeping only the keys that reach each face's threshold, so 20 faces x 1M templates never
materialise 80 MB of keys. A batch is bound by the float32 matrix product itself (~5 GFLOP for
20 faces x 1M templates), 110-120 ms on two cores, above the 100 ms target.

The same exact re-ranking (:func:`rerank`) finishes the approximate index's candidates.
Nothing here locks: the caller holds the gallery's lock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from oneeye.gallery.storage import NORM_ROW, ROWS, TemplateStore
from oneeye.types import EMBEDDING_SIZE, Embedding, Match

_FIRST_POOL: Final = 32
"""Templates examined first per query; widened x4 until k distinct persons are certain."""
_SAMPLED_TOP_MIN_ROWS: Final = 200_000
"""From this many rows, top-T uses a sampled threshold instead of a full argpartition."""
_BLOCK_COLUMNS: Final = 262_144
"""Templates per block when a batch streams over a large gallery (20 faces: 21 MB of keys).

Fewer, larger BLAS calls: on a busy 2-core machine each call waits for OpenBLAS's second
thread to be scheduled, and 64k-column blocks took 1.4x as long as one product; 256k-column
blocks cost the same as one product and hold a quarter of its keys."""
_BATCH_CHUNK: Final = 64
"""Faces per product when a batch is larger than this."""
_SAMPLE_RUNS: Final = 16
_SAMPLE_RUN: Final = 1024
"""A batch's thresholds come from 16 runs of 1024 columns (at most _BLOCK_COLUMNS in all)."""
_KEY_RELATIVE_ERROR: Final = 3e-5
"""Bound on float32 rounding in a 129-term dot product, relative to its magnitude."""

Allowed = npt.NDArray[np.bool_] | None
"""Per row, whether it may be answered (its watchlist was asked for); ``None``: every row."""
Candidates = tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]
"""Gallery rows and their keys."""


def check_k(k: int) -> int:
    """``k`` as an int if it is an integer >= 1.

    Raises:
        ValueError: it is not.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def augment(queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The (faces, 129) augmented queries ``[q, -1]``."""
    augmented = np.empty((queries.shape[0], ROWS), dtype=np.float32)
    augmented[:, :EMBEDDING_SIZE] = queries
    augmented[:, NORM_ROW] = -1.0
    return augmented


def search(
    store: TemplateStore,
    queries: npt.NDArray[np.float32],
    augmented: npt.NDArray[np.float32],
    k: int,
    allowed: Allowed,
) -> list[list[Match]]:
    """The k nearest groups of each face among the allowed templates, exactly.

    Args:
        store: the templates (at least one).
        queries: (faces, 128) embeddings.
        augmented: the same as :func:`augment` gives.
        k: groups per face.
        allowed: which rows may answer.

    Returns:
        Per face, up to k matches, nearest first.
    """
    size = store.size
    count = queries.shape[0]
    results: list[list[Match]] = [[] for _ in range(count)]
    wanted = 4 * max(_FIRST_POOL, 4 * k)
    if count == 1 or size <= _BLOCK_COLUMNS or 2 * wanted > _SAMPLE_RUNS * _SAMPLE_RUN:
        # Every key of the chunk fits in memory: one product, then select per face.
        step = max(1, _BLOCK_COLUMNS * _BATCH_CHUNK // size)
        for start in range(0, count, step):
            found_keys = keys(store, augmented[start : start + step], 0, size, allowed)
            for i in range(found_keys.shape[0]):
                found = nearest_groups(store, queries[start + i], None, found_keys[i], -np.inf, k)
                results[start + i] = found or []
        return results
    # A batch on a large gallery: never hold (faces x templates) keys; stream blocks.
    for start in range(0, count, _BATCH_CHUNK):
        chunk = augmented[start : start + _BATCH_CHUNK]
        for i, (rows, row_keys, outside) in enumerate(candidates(store, chunk, allowed, wanted)):
            query = queries[start + i]
            found = nearest_groups(store, query, rows, row_keys, outside, k)
            if found is None:  # the candidates were not enough: rescan this face alone
                every_key = keys(store, chunk[i : i + 1], 0, size, allowed)[0]
                found = nearest_groups(store, query, None, every_key, -np.inf, k)
            results[start + i] = found or []
    return results


def search_rows(
    store: TemplateStore,
    queries: npt.NDArray[np.float32],
    augmented: npt.NDArray[np.float32],
    rows: npt.NDArray[np.intp],
    columns: npt.NDArray[np.float32],
    k: int,
) -> list[list[Match]]:
    """The k nearest groups of each face among the templates in ``rows`` only, exactly.

    For a small part of the gallery (one small watchlist): only its columns, gathered once by
    the caller (a gather touches every cache line of the matrix), are multiplied, instead of
    the whole matrix with the rest masked out.

    Args:
        store: the templates.
        queries: (faces, 128) embeddings.
        augmented: the same as :func:`augment` gives.
        rows: the rows that may answer (at least one).
        columns: ``store.matrix[:, rows]``.
        k: groups per face.

    Returns:
        Per face, up to k matches, nearest first.
    """
    results: list[list[Match]] = []
    step = max(1, _BLOCK_COLUMNS * _BATCH_CHUNK // max(1, rows.shape[0]))
    for start in range(0, queries.shape[0], step):
        found_keys = augmented[start : start + step] @ columns
        for i in range(found_keys.shape[0]):
            query = queries[start + i]
            results.append(nearest_groups(store, query, rows, found_keys[i], -np.inf, k) or [])
    return results


def rerank(
    store: TemplateStore,
    queries: npt.NDArray[np.float32],
    augmented: npt.NDArray[np.float32],
    found: Sequence[Candidates],
    k: int,
    allowed: Allowed,
) -> list[list[Match]]:
    """Exact re-ranking of each face's candidates (an approximate index's answer).

    A face whose candidates hold fewer than k allowed groups (a small watchlist, say) is
    searched exactly instead, so "up to k" means what it means in exact mode.

    Args:
        store: the templates.
        queries: (faces, 128) embeddings.
        augmented: the same as :func:`augment` gives.
        found: per face, candidate rows and their keys (changed in place: rows that are
            not allowed get ``-inf``).
        k: groups per face.
        allowed: which rows may answer.

    Returns:
        Per face, up to k matches, nearest first.
    """
    results: list[list[Match]] = []
    for i, (rows, row_keys) in enumerate(found):
        if allowed is not None:
            np.copyto(row_keys, np.float32(-np.inf), where=~allowed[rows])
        matches = nearest_groups(store, queries[i], rows, row_keys, -np.inf, k) or []
        if len(matches) < k:
            every_key = keys(store, augmented[i : i + 1], 0, store.size, allowed)[0]
            matches = nearest_groups(store, queries[i], None, every_key, -np.inf, k) or []
        results.append(matches)
    return results


def top_indices(keys: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.intp]:
    """Indices of the ``count`` largest ``keys`` (any order); all of them if fewer.

    On long rows a full argpartition costs ~5 ms per million; instead take the ``count``-th
    largest of a strided sample as a threshold. A subset's ``count``-th largest is never above
    the whole row's, so every true top-``count`` key passes it; only the few thousand that
    pass are partitioned.
    """
    n = keys.shape[0]
    if count >= n:
        return np.arange(n, dtype=np.intp)
    if n >= _SAMPLED_TOP_MIN_ROWS:
        stride = max(1, n // max(64 * count, 2 * math.isqrt(count * n)))
        sample = keys[::stride]
        if sample.shape[0] > count:
            cut = sample.shape[0] - count
            threshold = np.partition(sample, cut)[cut]
            if np.isfinite(threshold):
                passed = np.flatnonzero(keys >= threshold)
                if passed.shape[0] > count:
                    cut = passed.shape[0] - count
                    passed = passed[np.argpartition(keys[passed], cut)[cut:]]
                return passed
    cut = n - count
    return np.argpartition(keys, cut)[cut:]


def keys(
    store: TemplateStore,
    augmented: npt.NDArray[np.float32],
    start: int,
    stop: int,
    allowed: Allowed,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """``keys[i, j] = q_i . g_j - |g_j|^2 / 2`` for columns start..stop, in one BLAS call.

    Templates not on an allowed watchlist get ``-inf``.
    """
    columns = store.matrix[:, start:stop]
    if out is None:
        out = np.empty((augmented.shape[0], stop - start), dtype=np.float32)
    if augmented.shape[0] == 1:
        np.matmul(augmented[0], columns, out=out[0])  # one face: a gemv
    else:
        np.matmul(augmented, columns, out=out)
    if allowed is not None:
        np.copyto(out, np.float32(-np.inf), where=~allowed[start:stop])
    return out


def candidates(
    store: TemplateStore,
    augmented: npt.NDArray[np.float32],
    allowed: Allowed,
    wanted: int,
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.float32], float]]:
    """Per face, the templates whose key reaches a threshold, and that threshold.

    The threshold is the ``wanted``-th largest key over a sample of the gallery (runs of
    columns spread over it, never overlapping): a subset's ``wanted``-th largest is never
    above the whole gallery's, so at least the true top ``wanted`` pass, and every template
    that does not pass has a smaller key (the bound returned). Keys are computed a block of
    columns at a time and filtered at once, so only one block of keys is held. Where the
    sample holds fewer than ``wanted`` allowed templates, every allowed template is a
    candidate and the bound is ``-inf``.
    """
    size = store.size
    faces = augmented.shape[0]
    starts = np.linspace(0, size - _SAMPLE_RUN, _SAMPLE_RUNS).astype(np.intp)
    sample = np.concatenate([store.matrix[:, s : s + _SAMPLE_RUN] for s in starts], axis=1)
    sample_keys = augmented @ sample
    if allowed is not None:
        picked = np.concatenate([allowed[s : s + _SAMPLE_RUN] for s in starts])
        np.copyto(sample_keys, np.float32(-np.inf), where=~picked)
    cut = sample_keys.shape[1] - wanted
    thresholds = np.partition(sample_keys, cut, axis=1)[:, cut]
    complete = ~np.isfinite(thresholds)
    thresholds[complete] = np.finfo(np.float32).min
    buffer = np.empty(faces * _BLOCK_COLUMNS, dtype=np.float32)
    face_parts: list[npt.NDArray[np.intp]] = []
    row_parts: list[npt.NDArray[np.intp]] = []
    key_parts: list[npt.NDArray[np.float32]] = []
    for start in range(0, size, _BLOCK_COLUMNS):
        stop = min(size, start + _BLOCK_COLUMNS)
        width = stop - start
        block = keys(
            store, augmented, start, stop, allowed, buffer[: faces * width].reshape(faces, width)
        )
        hits = np.flatnonzero(block >= thresholds[:, np.newaxis])
        face, column = np.divmod(hits, width)
        face_parts.append(face)
        row_parts.append(column + start)
        key_parts.append(block.reshape(-1)[hits])
    face = np.concatenate(face_parts)
    order = np.argsort(face, kind="stable")
    rows = np.concatenate(row_parts)[order]
    found_keys = np.concatenate(key_parts)[order]
    counts = np.bincount(face, minlength=faces)
    bounds = np.cumsum(counts)
    return [
        (
            rows[end - n : end],
            found_keys[end - n : end],
            -np.inf if complete[i] else float(thresholds[i]),
        )
        for i, (end, n) in enumerate(zip(bounds.tolist(), counts.tolist(), strict=True))
    ]


def nearest_groups(
    store: TemplateStore,
    query: Embedding,
    rows: npt.NDArray[np.intp] | None,
    keys: npt.NDArray[np.float32],
    outside: float,
    k: int,
) -> list[Match] | None:
    """The k nearest groups among candidates; exact, or ``None`` if they cannot tell.

    ``keys`` are the candidates' keys (of rows ``rows``; of every row when ``None``); every
    template that is not a candidate has a key below ``outside`` (``-inf``: there are
    none). Pool = the ``pool`` largest candidate keys. Its templates get exact float64
    distances; the first template of each group in distance order is that group's best.
    The answer is final once k groups are nearer than anything outside the pool can be
    (the larger of the pool's smallest key and ``outside``, less float32 rounding);
    otherwise the pool grows x4, and past the candidates the answer is ``None``.
    """
    query64 = query.astype(np.float64)
    query_norm2 = float(query64 @ query64)
    max_half_norm = store.max_half_norm
    slack = (
        2.0 * _KEY_RELATIVE_ERROR * (math.sqrt(query_norm2 * 2.0 * max_half_norm) + max_half_norm)
    )
    pool = max(_FIRST_POOL, 4 * k)
    while True:
        chosen = top_indices(keys, pool)
        pool_keys = keys[chosen]
        finite = np.isfinite(pool_keys)
        every_candidate = pool >= keys.shape[0] or not bool(finite.all())
        chosen, pool_keys = chosen[finite], pool_keys[finite]
        bound = outside
        if not every_candidate:
            bound = max(bound, float(pool_keys.min()))
        pool_rows = chosen if rows is None else rows[chosen]
        vectors = store.matrix[:EMBEDDING_SIZE, pool_rows].T.astype(np.float64)
        squared = np.einsum("ij,ij->i", vectors - query64, vectors - query64)
        order = np.argsort(squared, kind="stable")
        _, first = np.unique(store.row_group[pool_rows[order]], return_index=True)
        best = order[np.sort(first)[:k]]
        if bound == -np.inf or (
            best.shape[0] == k and float(squared[best[-1]]) <= query_norm2 - 2.0 * bound - slack
        ):
            return [_match(store, int(pool_rows[j]), float(squared[j])) for j in best]
        if every_candidate:
            return None
        pool *= 4


def _match(store: TemplateStore, row: int, squared: float) -> Match:
    group = int(store.row_group[row])
    return Match(
        person=store.group_person[group],
        watchlist=store.group_watchlist[group],
        template=store.row_ids[row],
        distance=math.sqrt(max(squared, 0.0)),
    )
