"""The gallery: a thread-safe, versioned, in-memory index of enrolled face templates.

It answers "which enrolled persons are nearest to this face?" exactly (brute force over every
template, no approximation) and "is it one of them?" with a threshold per watchlist.

Storage is one preallocated float32 matrix with a *column* per template, grown by doubling.
Rows 0..127 hold the embedding; row 128 holds half the template's squared norm, so that a
single BLAS product with the augmented query ``[q, -1]`` gives ``key = q.g - |g|^2 / 2`` and the
squared euclidean distance is ``|q|^2 - 2 key``: the largest keys are the nearest templates. The
column layout is deliberate: on the 2-core benchmark machine numpy's ``q @ V`` over a
(128, n) matrix ran about twice as fast as ``G @ q`` over the same data stored a row per
template (36 vs 68 ms at a million; 20 faces: 118 vs 183 ms), and it is what brings one query
on a million templates under 50 ms (``bench/gallery_scale.py``). Removal swaps the last column
into the hole (O(1)).

One face: one gemv for every key, then an exact selection. A batch of faces on a large gallery:
thresholds from a sample of columns first, then the gallery in a few large blocks of columns,
keeping only the keys that reach each face's threshold, so 20 faces x 1M templates never
materialise 80 MB of keys. A batch is bound by the float32 matrix product itself (~5 GFLOP for
20 faces x 1M templates), 110-120 ms on two cores, above the 100 ms target.

Approximate mode (opt-in, ``ivf=IvfParameters(...)`` or ``GallerySettings.index = "ivf"``): from
``min_templates`` templates on, an inverted file (:mod:`oneeye.gallery.ivf`) picks each face's
candidates from its nearest k-means cells, and the candidates go through the same exact
re-ranking, person grouping, thresholds and margin as a full search. It can only miss
templates, never invent nearer ones: a face that exact search calls unknown is unknown here
too. The cells are trained under the write lock when the gallery reaches ``min_templates``
and again whenever it has doubled (or shrunk to a quarter) since; in between, new templates
go to their nearest cell.

Concurrency: one readers-writer lock. Searches share it; every change takes it alone. A writer
that is waiting stops new searches from entering, so a stream of searches cannot starve an
enrolment: a writer waits at most for the searches already running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from oneeye.config import DEFAULT_MARGIN, DEFAULT_THRESHOLD, GallerySettings
from oneeye.errors import GalleryError
from oneeye.gallery.ivf import InvertedFile, IvfParameters
from oneeye.types import (
    EMBEDDING_SIZE,
    Embedding,
    Identification,
    Match,
    Template,
    check_embedding,
)

logger = logging.getLogger(__name__)

FILE_FORMAT: Final = "oneeye-gallery"
FILE_FORMAT_VERSION: Final = 1

_FILE_MEMBERS: Final = ("embeddings", "metadata", "qualities")
_ROWS: Final = EMBEDDING_SIZE + 1
"""Matrix rows: the embedding, then half the squared norm."""
_NORM_ROW: Final = EMBEDDING_SIZE
_MIN_CAPACITY: Final = 1024
_FIRST_POOL: Final = 32
"""Templates examined first per query; widened x4 until k distinct persons are certain."""
_SAMPLED_TOP_MIN_ROWS: Final = 200_000
"""From this many rows, top-T uses a sampled threshold instead of a full argpartition."""
_TRANSPOSE_BLOCK: Final = 1024
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


class _ReadWriteLock:
    """Many readers or one writer. A waiting writer blocks new readers (no writer starvation).

    Writers pass through ``_turnstile`` and keep it while they wait for the readers inside to
    leave and while they write; readers only pass through it. So a writer waits for at most the
    readers already inside, and readers queue behind a waiting writer.
    """

    def __init__(self) -> None:
        self._turnstile = threading.Lock()
        self._room = threading.Condition(threading.Lock())
        self._readers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared for the ``with`` block."""
        with self._turnstile, self._room:
            self._readers += 1
        try:
            yield
        finally:
            with self._room:
                self._readers -= 1
                if self._readers == 0:
                    self._room.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock alone for the ``with`` block."""
        with self._turnstile:
            with self._room:
                while self._readers:
                    self._room.wait()
            yield


def _check_threshold(value: float, what: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and 0.0 < number <= 2.0):
        raise ValueError(f"{what} must be a distance in (0, 2], got {value!r}")
    return number


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _check_names(values: Sequence[object], what: str) -> None:
    # map() keeps a million-row bulk load out of a Python-level loop; the loop is for the error.
    if set(map(type, values)) <= {str} and all(values):
        return
    for value in values:
        _check_name(value, what)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def _check_batch(embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != EMBEDDING_SIZE:
        raise ValueError(f"embeddings must have shape (n, {EMBEDDING_SIZE}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("embeddings contain NaN or infinite values")
    return array


def _top_indices(keys: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.intp]:
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


class GalleryIndex:
    """Enrolled templates, searchable by nearest person, with a threshold per watchlist.

    Thread-safe. Every change bumps :attr:`version` by one and returns the new version.
    """

    def __init__(
        self,
        default_threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        *,
        margin: float = DEFAULT_MARGIN,
        capacity: int = _MIN_CAPACITY,
        ivf: IvfParameters | None = None,
    ) -> None:
        """Create an empty gallery.

        Args:
            default_threshold: the largest euclidean distance accepted as a match on a
                watchlist without a threshold of its own, in (0, 2].
            thresholds: per-watchlist thresholds that override the default.
            margin: how much nearer than the next person a match must be, in [0, 2).
            capacity: templates to allocate room for up front (it grows by doubling).
            ivf: search approximately with an inverted file from ``ivf.min_templates`` on;
                ``None`` (the default) keeps every search exact.
        """
        if ivf is not None and not isinstance(ivf, IvfParameters):
            raise TypeError(f"ivf must be IvfParameters or None, got {type(ivf).__name__}")
        self._ivf_parameters = ivf
        self._lock = _ReadWriteLock()
        self._default_threshold = _check_threshold(default_threshold, "default_threshold")
        if not 0.0 <= margin < 2.0:
            raise ValueError(f"margin must be in [0, 2), got {margin}")
        self._margin = float(margin)
        self._thresholds: dict[str, float] = {}
        for watchlist, value in (thresholds or {}).items():
            _check_name(watchlist, "watchlist")
            self._thresholds[watchlist] = _check_threshold(value, f"threshold of {watchlist!r}")
        self._version = 0
        self._reset(max(int(capacity), 1))

    @classmethod
    def from_settings(cls, settings: GallerySettings) -> GalleryIndex:
        """An empty gallery with the thresholds, margin and search mode of ``settings``.

        Args:
            settings: the gallery settings.

        Returns:
            A new, empty index.
        """
        return cls(
            default_threshold=settings.default_threshold,
            thresholds=settings.thresholds,
            margin=settings.margin,
            ivf=IvfParameters.from_settings(settings),
        )

    def _reset(self, capacity: int) -> None:
        self._matrix = np.zeros((_ROWS, capacity), dtype=np.float32)
        self._row_group = np.zeros(capacity, dtype=np.int32)
        self._row_watchlist = np.zeros(capacity, dtype=np.int32)
        self._row_quality = np.zeros(capacity, dtype=np.float32)
        self._size = 0
        self._max_half_norm = 0.0
        """Largest |g|^2 / 2 ever stored since the last reset: bounds float32 rounding."""
        self._row_ids: list[str] = []
        self._id_row: dict[str, int] = {}
        # A group is one (person, watchlist) pair: the unit search answers with.
        self._groups: dict[str, dict[str, int]] = {}
        self._group_person: list[str] = []
        self._group_watchlist: list[str] = []
        self._group_size: list[int] = []
        self._free_groups: list[int] = []
        self._watchlist_code: dict[str, int] = {}
        self._watchlist_name: list[str] = []
        self._watchlist_size: list[int] = []
        self._ivf: InvertedFile | None = None

    # ----------------------------------------------------------------- introspection

    @property
    def version(self) -> int:
        """Bumped by one on every change; saved and loaded with the gallery."""
        return self._version

    @property
    def margin(self) -> float:
        """How much nearer than the next person a match must be; nearer rivals mean "not sure".
        0 turns the rule off (the nearest candidate within its threshold wins)."""
        return self._margin

    @property
    def default_threshold(self) -> float:
        """The threshold of watchlists without one of their own."""
        return self._default_threshold

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's numpy arrays (allocated capacity, not just what is used),
        the approximate index's included."""
        with self._lock.read():
            return int(
                self._matrix.nbytes
                + self._row_group.nbytes
                + self._row_watchlist.nbytes
                + self._row_quality.nbytes
                + (self._ivf.nbytes if self._ivf is not None else 0)
            )

    @property
    def ivf(self) -> IvfParameters | None:
        """The approximate-search parameters; ``None`` when every search is exact."""
        return self._ivf_parameters

    @property
    def ivf_lists(self) -> int:
        """Cells of the inverted file now in use; 0 when there is none (yet)."""
        with self._lock.read():
            return self._ivf.lists if self._ivf is not None else 0

    @property
    def approximate(self) -> bool:
        """True when searches currently go through the inverted file (approximate mode and a
        gallery of at least ``min_templates``)."""
        with self._lock.read():
            return self._ivf_active()

    def _ivf_active(self) -> bool:
        parameters = self._ivf_parameters
        return (
            parameters is not None
            and self._ivf is not None
            and self._size >= parameters.min_templates
        )

    def __len__(self) -> int:
        """Number of templates."""
        return self._size

    def __contains__(self, template_id: object) -> bool:
        """True when a template with this id is enrolled."""
        with self._lock.read():
            return template_id in self._id_row

    def persons(self, watchlist: str | None = None) -> list[str]:
        """Enrolled persons, sorted.

        Args:
            watchlist: only persons with templates on this watchlist.

        Returns:
            Person ids, each once.
        """
        with self._lock.read():
            if watchlist is None:
                return sorted(self._groups)
            return sorted(p for p, lists in self._groups.items() if watchlist in lists)

    def watchlists(self) -> list[str]:
        """Watchlists that hold at least one template, sorted."""
        with self._lock.read():
            return sorted(
                name
                for name, size in zip(self._watchlist_name, self._watchlist_size, strict=True)
                if size
            )

    def thresholds(self) -> dict[str, float]:
        """The per-watchlist thresholds set explicitly (not the default)."""
        with self._lock.read():
            return dict(self._thresholds)

    def threshold(self, watchlist: str) -> float:
        """The largest distance accepted as a match on ``watchlist``.

        Args:
            watchlist: a watchlist name (it need not hold templates).

        Returns:
            Its own threshold, or the default.
        """
        with self._lock.read():
            return self._thresholds.get(watchlist, self._default_threshold)

    def template(self, template_id: str) -> Template:
        """One enrolled template.

        Args:
            template_id: the template's id.

        Returns:
            A copy of the template.

        Raises:
            GalleryError: no template has this id.
        """
        with self._lock.read():
            row = self._row_of(template_id)
            return self._template_at(row)

    def templates(self, person: str | None = None) -> list[Template]:
        """Enrolled templates (copies), in storage order.

        Args:
            person: only this person's templates.

        Returns:
            The templates; empty when the person has none.
        """
        with self._lock.read():
            if person is None:
                rows: Iterable[int] = range(self._size)
            else:
                codes = list(self._groups.get(person, {}).values())
                rows = np.flatnonzero(np.isin(self._row_group[: self._size], codes)).tolist()
            return [self._template_at(row) for row in rows]

    def _row_of(self, template_id: str) -> int:
        """The row of an enrolled template (call with the lock held)."""
        row = self._id_row.get(template_id)
        if row is None:
            raise GalleryError(
                f"expected the id of an enrolled template, got unknown id {template_id!r}"
            )
        return row

    def _template_at(self, row: int) -> Template:
        group = int(self._row_group[row])
        return Template(
            id=self._row_ids[row],
            person=self._group_person[group],
            watchlist=self._group_watchlist[group],
            embedding=self._matrix[:EMBEDDING_SIZE, row].copy(),
            quality=float(self._row_quality[row]),
        )

    # ----------------------------------------------------------------------- changes

    def add(self, template: Template) -> int:
        """Enrol one template.

        Args:
            template: the template; its id must be new.

        Returns:
            The new version.

        Raises:
            GalleryError: a template with this id is already enrolled.
        """
        return self.add_many([template])

    def add_many(self, templates: Iterable[Template]) -> int:
        """Enrol several templates at once: all or none, one version bump.

        Args:
            templates: templates with ids new to the gallery and to each other.

        Returns:
            The new version (unchanged when ``templates`` is empty).

        Raises:
            GalleryError: an id is already enrolled or repeated in ``templates``.
        """
        batch = list(templates)
        for item in batch:
            if not isinstance(item, Template):
                raise TypeError(f"add_many expects Template objects, got {type(item).__name__}")
        embeddings = np.empty((len(batch), EMBEDDING_SIZE), dtype=np.float32)
        for i, item in enumerate(batch):
            embeddings[i] = item.embedding
        return self._add(
            [t.id for t in batch],
            [t.person for t in batch],
            [t.watchlist for t in batch],
            embeddings,
            np.array([t.quality for t in batch], dtype=np.float32),
        )

    def add_arrays(
        self,
        ids: Sequence[str],
        persons: Sequence[str],
        watchlists: Sequence[str],
        embeddings: npt.ArrayLike,
        qualities: npt.ArrayLike | None = None,
    ) -> int:
        """Enrol many templates given as columns (bulk loads, resyncs): all or none.

        Args:
            ids: template ids, new to the gallery and to each other.
            persons: the person of each template.
            watchlists: the watchlist of each template.
            embeddings: an (n, 128) array.
            qualities: n quality scores; 1.0 each when omitted.

        Returns:
            The new version (unchanged when n is 0).

        Raises:
            ValueError: lengths or shapes disagree, a name is empty, an embedding not finite.
            GalleryError: an id is already enrolled or repeated.
        """
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.size == 0 and len(ids) == 0:
            vectors = vectors.reshape(0, EMBEDDING_SIZE)
        vectors = _check_batch(vectors)
        count = vectors.shape[0]
        if qualities is None:
            quality = np.ones(count, dtype=np.float32)
        else:
            quality = np.ascontiguousarray(qualities, dtype=np.float32).reshape(-1)
        lengths = {
            "ids": len(ids),
            "persons": len(persons),
            "watchlists": len(watchlists),
            "qualities": quality.shape[0],
        }
        if any(length != count for length in lengths.values()):
            raise ValueError(f"expected {count} of each (one per embedding row), got {lengths}")
        for name, column in (("id", ids), ("person", persons), ("watchlist", watchlists)):
            _check_names(column, f"template {name}")
        return self._add(list(ids), list(persons), list(watchlists), vectors, quality)

    def _add(
        self,
        ids: list[str],
        persons: list[str],
        watchlists: list[str],
        embeddings: npt.NDArray[np.float32],
        qualities: npt.NDArray[np.float32],
    ) -> int:
        if len(set(ids)) != len(ids):
            repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise GalleryError(f"expected distinct template ids, got repeats: {repeated[:5]}")
        with self._lock.write():
            if not ids:
                return self._version
            taken = [i for i in ids if i in self._id_row]
            if taken:
                raise GalleryError(
                    f"expected new template ids, got {len(taken)} already enrolled: {taken[:5]}"
                )
            self._insert(ids, persons, watchlists, embeddings, qualities)
            self._version += 1
            logger.debug("gallery: added %d templates (version %d)", len(ids), self._version)
            return self._version

    def _insert(
        self,
        ids: list[str],
        persons: list[str],
        watchlists: list[str],
        embeddings: npt.NDArray[np.float32],
        qualities: npt.NDArray[np.float32],
    ) -> None:
        """Append columns; the caller holds the write lock and has validated everything."""
        start, count = self._size, len(ids)
        self._reserve(start + count)
        stop = start + count
        half_norms = 0.5 * np.einsum("ij,ij->i", embeddings, embeddings, dtype=np.float64)
        # Transposing in blocks that fit in cache is ~4x faster than one strided copy.
        for first in range(0, count, _TRANSPOSE_BLOCK):
            block = embeddings[first : first + _TRANSPOSE_BLOCK]
            self._matrix[:EMBEDDING_SIZE, start + first : start + first + block.shape[0]] = block.T
        self._matrix[_NORM_ROW, start:stop] = half_norms
        self._max_half_norm = max(self._max_half_norm, float(half_norms.max(initial=0.0)))
        self._row_quality[start:stop] = qualities
        pairs = list(zip(persons, watchlists, strict=True))
        group_of = {pair: self._group_for(*pair, n) for pair, n in Counter(pairs).items()}
        self._row_group[start:stop] = list(map(group_of.__getitem__, pairs))
        list_of = {name: self._watchlist_for(name, n) for name, n in Counter(watchlists).items()}
        self._row_watchlist[start:stop] = list(map(list_of.__getitem__, watchlists))
        self._row_ids.extend(ids)
        self._id_row.update(zip(ids, range(start, stop), strict=True))
        self._size = stop
        if self._ivf is not None:
            self._ivf.add(np.arange(start, stop, dtype=np.intp), self._matrix[:, start:stop])
        self._maintain_ivf()

    def _maintain_ivf(self) -> None:
        """(Re)train the inverted file when the size calls for it; the caller holds the lock.

        Trained at ``min_templates``, retrained when the gallery has doubled or shrunk to a
        quarter since (cells sized for another gallery probe too much or too little), dropped
        below half of ``min_templates`` (search is exact there anyway).
        """
        parameters = self._ivf_parameters
        if parameters is None:
            return
        size = self._size
        current = self._ivf
        if size < parameters.min_templates:
            if current is not None and 2 * size < parameters.min_templates:
                self._ivf = None
            return
        if current is None or size >= 2 * current.trained_size or 4 * size <= current.trained_size:
            self._ivf = None  # free the old cells before building the new ones
            self._ivf = InvertedFile.build(self._matrix, size, parameters)

    def _reserve(self, needed: int) -> None:
        capacity = self._matrix.shape[1]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        logger.debug("gallery: growing to room for %d templates", capacity)
        used = self._size
        matrix = np.zeros((_ROWS, capacity), dtype=np.float32)
        matrix[:, :used] = self._matrix[:, :used]
        self._matrix = matrix
        for name in ("_row_group", "_row_watchlist", "_row_quality"):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=old.dtype)
            new[:used] = old[:used]
            setattr(self, name, new)

    def _group_for(self, person: str, watchlist: str, templates: int = 1) -> int:
        """The code of a (person, watchlist) group, created if new, counting ``templates`` more."""
        lists = self._groups.setdefault(person, {})
        code = lists.get(watchlist)
        if code is None:
            if self._free_groups:
                code = self._free_groups.pop()
                self._group_person[code] = person
                self._group_watchlist[code] = watchlist
                self._group_size[code] = 0
            else:
                code = len(self._group_person)
                self._group_person.append(person)
                self._group_watchlist.append(watchlist)
                self._group_size.append(0)
            lists[watchlist] = code
        self._group_size[code] += templates
        return code

    def _watchlist_for(self, watchlist: str, templates: int = 1) -> int:
        """The code of a watchlist, created if new, counting ``templates`` more."""
        code = self._watchlist_code.get(watchlist)
        if code is None:
            code = len(self._watchlist_name)
            self._watchlist_code[watchlist] = code
            self._watchlist_name.append(watchlist)
            self._watchlist_size.append(0)
        self._watchlist_size[code] += templates
        return code

    def _release_row(self, row: int) -> None:
        """Drop the group/watchlist counts of a row about to be overwritten or removed."""
        group = int(self._row_group[row])
        self._watchlist_size[int(self._row_watchlist[row])] -= 1
        self._group_size[group] -= 1
        if self._group_size[group] == 0:
            person = self._group_person[group]
            lists = self._groups[person]
            del lists[self._group_watchlist[group]]
            if not lists:
                del self._groups[person]
            self._free_groups.append(group)

    def _delete_row(self, row: int) -> None:
        """Remove a row by moving the last one into its place; the caller holds the lock."""
        self._release_row(row)
        last = self._size - 1
        removed_id = self._row_ids[row]
        if self._ivf is not None:
            self._ivf.remove(row)
            if row != last:
                self._ivf.move(last, row)
        if row != last:
            self._matrix[:, row] = self._matrix[:, last]
            self._row_group[row] = self._row_group[last]
            self._row_watchlist[row] = self._row_watchlist[last]
            self._row_quality[row] = self._row_quality[last]
            moved_id = self._row_ids[last]
            self._row_ids[row] = moved_id
            self._id_row[moved_id] = row
        self._row_ids.pop()
        del self._id_row[removed_id]
        self._size = last

    def remove(self, template_id: str) -> int:
        """Remove one template.

        Args:
            template_id: the template's id.

        Returns:
            The new version.

        Raises:
            GalleryError: no template has this id.
        """
        with self._lock.write():
            row = self._row_of(template_id)
            self._delete_row(row)
            self._maintain_ivf()
            self._version += 1
            logger.debug("gallery: removed template %s (version %d)", template_id, self._version)
            return self._version

    def remove_person(self, person: str, watchlist: str | None = None) -> int:
        """Remove every template of a person, on one watchlist or on all of them.

        Args:
            person: the person's id.
            watchlist: only this watchlist's templates; all watchlists when ``None``.

        Returns:
            The new version.

        Raises:
            GalleryError: the person has no templates (on that watchlist).
        """
        with self._lock.write():
            lists = self._groups.get(person, {})
            if watchlist is None:
                codes = list(lists.values())
            else:
                codes = [lists[watchlist]] if watchlist in lists else []
            if not codes:
                where = "" if watchlist is None else f" on watchlist {watchlist!r}"
                raise GalleryError(
                    f"expected an enrolled person, got {person!r} with no templates{where}"
                )
            rows = np.flatnonzero(np.isin(self._row_group[: self._size], codes))
            # Highest first: the last row, swapped into each hole, is never one still to go.
            for row in rows[::-1].tolist():
                self._delete_row(row)
            self._maintain_ivf()
            self._version += 1
            logger.debug(
                "gallery: removed %d templates of person %s (version %d)",
                rows.shape[0],
                person,
                self._version,
            )
            return self._version

    def replace(self, template: Template) -> int:
        """Replace an enrolled template by a new one with the same id.

        Args:
            template: the new template; may change person, watchlist, embedding or quality.

        Returns:
            The new version.

        Raises:
            GalleryError: no template has this id.
        """
        with self._lock.write():
            row = self._id_row.get(template.id)
            if row is None:
                raise GalleryError(
                    f"expected the id of an enrolled template to replace, got unknown id "
                    f"{template.id!r}"
                )
            self._release_row(row)
            self._row_group[row] = self._group_for(template.person, template.watchlist)
            self._row_watchlist[row] = self._watchlist_for(template.watchlist)
            vector = template.embedding
            half_norm = 0.5 * float(np.dot(vector.astype(np.float64), vector))
            self._matrix[:EMBEDDING_SIZE, row] = vector
            self._matrix[_NORM_ROW, row] = half_norm
            self._max_half_norm = max(self._max_half_norm, half_norm)
            self._row_quality[row] = template.quality
            if self._ivf is not None:
                self._ivf.remove(row)
                self._ivf.add(np.array([row], dtype=np.intp), self._matrix[:, row : row + 1])
            self._version += 1
            return self._version

    def clear(self) -> int:
        """Remove every template (thresholds stay).

        Returns:
            The new version.
        """
        with self._lock.write():
            self._reset(_MIN_CAPACITY)
            self._version += 1
            logger.info("gallery: cleared (version %d)", self._version)
            return self._version

    def set_threshold(self, watchlist: str, value: float) -> int:
        """Set one watchlist's threshold (a change: the version is bumped).

        Args:
            watchlist: the watchlist's name.
            value: the largest accepted euclidean distance, in (0, 2].

        Returns:
            The new version.
        """
        _check_name(watchlist, "watchlist")
        number = _check_threshold(value, f"threshold of {watchlist!r}")
        with self._lock.write():
            self._thresholds[watchlist] = number
            self._version += 1
            return self._version

    def set_margin(self, value: float) -> int:
        """Set the margin (a change: the version is bumped).

        Args:
            value: how much nearer than the next person a match must be, in [0, 2).

        Returns:
            The new version.
        """
        if not 0.0 <= value < 2.0:
            raise ValueError(f"margin must be in [0, 2), got {value}")
        with self._lock.write():
            self._margin = float(value)
            self._version += 1
            return self._version

    # ------------------------------------------------------------------------ search

    def search(
        self, embedding: npt.ArrayLike, k: int = 5, watchlists: Iterable[str] | None = None
    ) -> list[Match]:
        """The k nearest persons to a face, nearest first.

        A person is matched by their nearest template; a person on several watchlists can
        appear once per watchlist.

        Args:
            embedding: a 128-D face embedding.
            k: how many persons at most.
            watchlists: only templates on these watchlists; all when ``None``.

        Returns:
            Up to k matches with true euclidean distances; empty for an empty gallery.
        """
        query = check_embedding(embedding, "query embedding")
        return self._search(query[np.newaxis, :], _check_k(k), watchlists)[0]

    def search_batch(
        self, embeddings: npt.ArrayLike, k: int = 5, watchlists: Iterable[str] | None = None
    ) -> list[list[Match]]:
        """:meth:`search` for many faces at once (one matrix product for the batch).

        Args:
            embeddings: an (n, 128) array, e.g. every face of a video frame.
            k: how many persons at most per face.
            watchlists: only templates on these watchlists; all when ``None``.

        Returns:
            One list of matches per row of ``embeddings``.
        """
        return self._search(_check_batch(embeddings), _check_k(k), watchlists)

    def identify(self, embedding: npt.ArrayLike, k: int = 5) -> Identification:
        """Who is this face? The nearest candidate within its watchlist's threshold, if any.

        Args:
            embedding: a 128-D face embedding.
            k: how many candidates to consider and report.

        Returns:
            The decision and the candidates; ``person`` is ``UNKNOWN`` when nobody is close
            enough, and always for an empty gallery.
        """
        query = check_embedding(embedding, "query embedding")
        return self._identify(query[np.newaxis, :], _check_k(k))[0]

    def identify_batch(self, embeddings: npt.ArrayLike, k: int = 5) -> list[Identification]:
        """:meth:`identify` for many faces at once.

        Args:
            embeddings: an (n, 128) array.
            k: how many candidates per face.

        Returns:
            One identification per row of ``embeddings``.
        """
        return self._identify(_check_batch(embeddings), _check_k(k))

    def _identify(self, queries: npt.NDArray[np.float32], k: int) -> list[Identification]:
        # The margin needs the nearest rival person, so look at two persons at least.
        with self._lock.read():
            found = self._search_locked(queries, max(k, 2), None)
            limits = self._thresholds
            default = self._default_threshold
        answers = []
        for candidates in found:
            accepted = next(
                (m for m in candidates if m.distance <= limits.get(m.watchlist, default)),
                None,
            )
            if accepted is not None and self._margin > 0.0:
                rival = next((m for m in candidates if m.person != accepted.person), None)
                if rival is not None and rival.distance - accepted.distance < self._margin:
                    accepted = None  # two people almost as close: "not sure" beats a wrong name
            answers.append(Identification(match=accepted, candidates=tuple(candidates[:k])))
        return answers

    def _search(
        self, queries: npt.NDArray[np.float32], k: int, watchlists: Iterable[str] | None
    ) -> list[list[Match]]:
        with self._lock.read():
            return self._search_locked(queries, k, watchlists)

    def _search_locked(
        self, queries: npt.NDArray[np.float32], k: int, watchlists: Iterable[str] | None
    ) -> list[list[Match]]:
        size = self._size
        count = queries.shape[0]
        results: list[list[Match]] = [[] for _ in range(count)]
        if size == 0 or count == 0:
            return results
        allowed: npt.NDArray[np.bool_] | None = None
        if watchlists is not None:
            codes = [self._watchlist_code[w] for w in set(watchlists) if w in self._watchlist_code]
            if not codes:
                return results
            allowed = np.isin(self._row_watchlist[:size], codes)
        augmented = np.empty((count, _ROWS), dtype=np.float32)
        augmented[:, :EMBEDDING_SIZE] = queries
        augmented[:, _NORM_ROW] = -1.0
        ivf, parameters = self._ivf, self._ivf_parameters
        if ivf is not None and parameters is not None and size >= parameters.min_templates:
            return self._search_ivf(ivf, parameters.probes, queries, augmented, k, allowed)
        wanted = 4 * max(_FIRST_POOL, 4 * k)
        if count == 1 or size <= _BLOCK_COLUMNS or 2 * wanted > _SAMPLE_RUNS * _SAMPLE_RUN:
            # Every key of the chunk fits in memory: one product, then select per face.
            step = max(1, _BLOCK_COLUMNS * _BATCH_CHUNK // size)
            for start in range(0, count, step):
                keys = self._keys(augmented[start : start + step], 0, size, allowed)
                for i in range(keys.shape[0]):
                    found = self._nearest_groups(queries[start + i], None, keys[i], -np.inf, k)
                    results[start + i] = found or []
            return results
        # A batch on a large gallery: never hold (faces x templates) keys; stream blocks.
        for start in range(0, count, _BATCH_CHUNK):
            chunk = augmented[start : start + _BATCH_CHUNK]
            for i, (rows, keys, outside) in enumerate(self._candidates(chunk, allowed, wanted)):
                query = queries[start + i]
                found = self._nearest_groups(query, rows, keys, outside, k)
                if found is None:  # the candidates were not enough: rescan this face alone
                    row_keys = self._keys(chunk[i : i + 1], 0, size, allowed)[0]
                    found = self._nearest_groups(query, None, row_keys, -np.inf, k)
                results[start + i] = found or []
        return results

    def _search_ivf(
        self,
        ivf: InvertedFile,
        probes: int,
        queries: npt.NDArray[np.float32],
        augmented: npt.NDArray[np.float32],
        k: int,
        allowed: npt.NDArray[np.bool_] | None,
    ) -> list[list[Match]]:
        """Approximate search: candidates from each face's nearest cells, re-ranked exactly.

        A face whose cells hold fewer than k persons (a small watchlist, say) is searched
        exactly instead, so "up to k" means what it means in exact mode.
        """
        size = self._size
        results: list[list[Match]] = []
        for i, (rows, keys) in enumerate(ivf.candidates(augmented, probes)):
            if allowed is not None:
                np.copyto(keys, np.float32(-np.inf), where=~allowed[rows])
            found = self._nearest_groups(queries[i], rows, keys, -np.inf, k) or []
            if len(found) < k:
                row_keys = self._keys(augmented[i : i + 1], 0, size, allowed)[0]
                found = self._nearest_groups(queries[i], None, row_keys, -np.inf, k) or []
            results.append(found)
        return results

    def _keys(
        self,
        augmented: npt.NDArray[np.float32],
        start: int,
        stop: int,
        allowed: npt.NDArray[np.bool_] | None,
        out: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """``keys[i, j] = q_i . g_j - |g_j|^2 / 2`` for columns start..stop, in one BLAS call.

        Templates not on an allowed watchlist get ``-inf``.
        """
        columns = self._matrix[:, start:stop]
        if out is None:
            out = np.empty((augmented.shape[0], stop - start), dtype=np.float32)
        if augmented.shape[0] == 1:
            np.matmul(augmented[0], columns, out=out[0])  # one face: a gemv
        else:
            np.matmul(augmented, columns, out=out)
        if allowed is not None:
            np.copyto(out, np.float32(-np.inf), where=~allowed[start:stop])
        return out

    def _candidates(
        self,
        augmented: npt.NDArray[np.float32],
        allowed: npt.NDArray[np.bool_] | None,
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
        size = self._size
        faces = augmented.shape[0]
        starts = np.linspace(0, size - _SAMPLE_RUN, _SAMPLE_RUNS).astype(np.intp)
        sample = np.concatenate([self._matrix[:, s : s + _SAMPLE_RUN] for s in starts], axis=1)
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
            block = self._keys(
                augmented, start, stop, allowed, buffer[: faces * width].reshape(faces, width)
            )
            hits = np.flatnonzero(block >= thresholds[:, np.newaxis])
            face, column = np.divmod(hits, width)
            face_parts.append(face)
            row_parts.append(column + start)
            key_parts.append(block.reshape(-1)[hits])
        face = np.concatenate(face_parts)
        order = np.argsort(face, kind="stable")
        rows = np.concatenate(row_parts)[order]
        keys = np.concatenate(key_parts)[order]
        bounds = np.cumsum(np.bincount(face, minlength=faces))
        return [
            (
                rows[end - n : end],
                keys[end - n : end],
                -np.inf if complete[i] else float(thresholds[i]),
            )
            for i, (end, n) in enumerate(
                zip(bounds.tolist(), np.bincount(face, minlength=faces).tolist(), strict=True)
            )
        ]

    def _nearest_groups(
        self,
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
        slack = (
            2.0
            * _KEY_RELATIVE_ERROR
            * (math.sqrt(query_norm2 * 2.0 * self._max_half_norm) + self._max_half_norm)
        )
        pool = max(_FIRST_POOL, 4 * k)
        while True:
            chosen = _top_indices(keys, pool)
            pool_keys = keys[chosen]
            finite = np.isfinite(pool_keys)
            every_candidate = pool >= keys.shape[0] or not bool(finite.all())
            chosen, pool_keys = chosen[finite], pool_keys[finite]
            bound = outside
            if not every_candidate:
                bound = max(bound, float(pool_keys.min()))
            pool_rows = chosen if rows is None else rows[chosen]
            vectors = self._matrix[:EMBEDDING_SIZE, pool_rows].T.astype(np.float64)
            squared = np.einsum("ij,ij->i", vectors - query64, vectors - query64)
            order = np.argsort(squared, kind="stable")
            _, first = np.unique(self._row_group[pool_rows[order]], return_index=True)
            best = order[np.sort(first)[:k]]
            if bound == -np.inf or (
                best.shape[0] == k and float(squared[best[-1]]) <= query_norm2 - 2.0 * bound - slack
            ):
                return [self._match(int(pool_rows[j]), float(squared[j])) for j in best]
            if every_candidate:
                return None
            pool *= 4

    def _match(self, row: int, squared: float) -> Match:
        group = int(self._row_group[row])
        return Match(
            person=self._group_person[group],
            watchlist=self._group_watchlist[group],
            template=self._row_ids[row],
            distance=math.sqrt(max(squared, 0.0)),
        )

    # ------------------------------------------------------------------------- files

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the gallery to one ``.npz`` file, atomically (temp file, then rename).

        The file holds the embeddings as an (n, 128) float32 array, the qualities, and the
        rest (ids, persons, watchlists, thresholds, version) as UTF-8 JSON; no pickles.

        Args:
            path: the file to write; replaced if it exists.

        Raises:
            GalleryError: the file could not be written.
        """
        target = Path(path)
        with self._lock.read():
            # Copy under the lock, write without it: disk time never blocks enrolment.
            size = self._size
            embeddings = np.ascontiguousarray(self._matrix[:EMBEDDING_SIZE, :size].T)
            qualities = self._row_quality[:size].copy()
            groups = self._row_group[:size].tolist()
            metadata: dict[str, Any] = {
                "format": FILE_FORMAT,
                "format_version": FILE_FORMAT_VERSION,
                "version": self._version,
                "default_threshold": self._default_threshold,
                "thresholds": dict(self._thresholds),
                "margin": self._margin,
                "ids": list(self._row_ids),
                "persons": [self._group_person[g] for g in groups],
                "watchlists": [self._group_watchlist[g] for g in groups],
            }
        encoded = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
        temp_name: str | None = None
        try:
            with tempfile.NamedTemporaryFile(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
            ) as handle:
                temp_name = handle.name
                np.savez(handle, embeddings=embeddings, qualities=qualities, metadata=encoded)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
            temp_name = None
        except OSError as exc:
            raise GalleryError(f"could not write gallery file {target}: {exc}") from exc
        finally:
            if temp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
        logger.info(
            "gallery: saved %d templates (version %d) to %s", size, metadata["version"], target
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, ivf: IvfParameters | None = None
    ) -> GalleryIndex:
        """Read a gallery written by :meth:`save`.

        Args:
            path: the ``.npz`` file.
            ivf: search mode of the loaded index, as in the constructor (the file holds
                templates only; the inverted file is rebuilt from them).

        Returns:
            A new index with the saved templates, thresholds and version.

        Raises:
            GalleryError: the file is missing, unreadable, corrupt or not a gallery.
        """
        source = Path(path)
        try:
            with np.load(source, allow_pickle=False) as archive:
                missing = sorted(set(_FILE_MEMBERS) - set(archive.files))
                if missing:
                    raise ValueError(f"expected arrays {list(_FILE_MEMBERS)}, missing {missing}")
                embeddings = archive["embeddings"]
                qualities = archive["qualities"]
                metadata = json.loads(archive["metadata"].tobytes().decode("utf-8"))
            if not isinstance(metadata, dict) or metadata.get("format") != FILE_FORMAT:
                raise ValueError(f"expected format {FILE_FORMAT!r} in the metadata")
            if metadata.get("format_version") != FILE_FORMAT_VERSION:
                raise ValueError(
                    f"expected format_version {FILE_FORMAT_VERSION}, "
                    f"got {metadata.get('format_version')!r}"
                )
            index = cls(
                default_threshold=metadata["default_threshold"],
                thresholds=metadata["thresholds"],
                margin=metadata.get("margin", DEFAULT_MARGIN),
                capacity=max(_MIN_CAPACITY, len(metadata["ids"])),
                ivf=ivf,
            )
            index.add_arrays(
                metadata["ids"],
                metadata["persons"],
                metadata["watchlists"],
                embeddings,
                qualities,
            )
            version = metadata["version"]
            if isinstance(version, bool) or not isinstance(version, int) or version < 0:
                raise ValueError(f"expected a version >= 0, got {version!r}")
            index._version = version
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise GalleryError(f"could not load gallery file {source}: {exc}") from exc
        except GalleryError as exc:
            raise GalleryError(f"could not load gallery file {source}: {exc}") from exc
        logger.info(
            "gallery: loaded %d templates (version %d) from %s", len(index), index.version, source
        )
        return index
