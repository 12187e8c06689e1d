"""The opt-in approximate search: faiss's IVF-Flat over the gallery's templates.

K-means cells partition the templates; a face is compared with the templates of its
``probes`` nearest cells only, and :func:`oneeye.gallery.kernels.rerank` re-ranks the best of
them exactly from the gallery's own matrix. The cells and the scan are faiss-cpu's
``IndexIVFFlat`` (full float32 vectors per cell, so distances are exact, only coverage is
approximate); it replaced a home-made inverted file after ``bench/gallery_ivf_headtohead.py``
and ``bench/gallery_scale.py --faiss`` measured both with the same cells, probes, batches and
accuracy check (BENCHMARKS.md, "Gallery scale"). Templates are filed under their gallery row;
the gallery reports every change of a row (:meth:`InvertedFile.add`,
:meth:`~InvertedFile.remove`, :meth:`~InvertedFile.move`).

faiss is imported on first use, so an exact-only gallery (the default) never loads it.
Nothing here locks: the gallery calls every method with its lock held (faiss searches may run
side by side; changes never overlap them).
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from oneeye.config import GallerySettings
from oneeye.types import EMBEDDING_SIZE

logger = logging.getLogger(__name__)

_TRAIN_PER_LIST: Final = 32
"""Training sample: this many templates per cell (k-means needs a few dozen per centroid)."""
_TRAIN_ITERATIONS: Final = 8
_FILE_BLOCK: Final = 65_536
"""Templates handed to faiss per call while filing (a 32 MB transposed copy at a time)."""
_MIN_LISTS: Final = 16
POOL: Final = 256
"""Nearest templates faiss returns per face (at least): the candidates re-ranked exactly."""

Rows = npt.NDArray[np.intp]
Columns = npt.NDArray[np.float32]


@functools.cache
def _faiss() -> Any:
    """The faiss module (untyped), imported once, on first use.

    faiss runs its loops on OpenMP threads, which by default spin for a while after each
    parallel region; on the shared 2-core box that spinning took the cores from everything
    else (building 200k cells: 2.5 s spinning, 1.0 s passive). So, unless the operator chose
    otherwise, idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, read when OpenMP
    starts, i.e. at this import).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return importlib.import_module("faiss")


@dataclass(frozen=True)
class IvfParameters:
    """How the approximate index is shaped and searched.

    Attributes:
        lists: number of cells; 0 picks ``round(sqrt(n))`` (at least 16) at each training.
        probes: cells searched per face.
        min_templates: below this gallery size, search stays exact.
        seed: seeds the training sample and the k-means start, so builds are reproducible.
    """

    lists: int = 0
    probes: int = 32
    min_templates: int = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("lists", "probes", "min_templates", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        if self.lists < 0:
            raise ValueError(f"lists must be >= 0 (0: automatic), got {self.lists}")
        if self.probes < 1:
            raise ValueError(f"probes must be >= 1, got {self.probes}")
        if self.lists and self.probes > self.lists:
            raise ValueError(f"probes must be at most lists ({self.lists}), got {self.probes}")
        if self.min_templates < 1:
            raise ValueError(f"min_templates must be >= 1, got {self.min_templates}")

    @classmethod
    def from_settings(cls, settings: GallerySettings) -> IvfParameters | None:
        """The parameters a gallery's settings ask for.

        Args:
            settings: the gallery settings.

        Returns:
            The parameters, or ``None`` when ``settings.index`` is ``exact``.
        """
        if settings.index == "exact":
            return None
        return cls(
            lists=settings.ivf_lists,
            probes=settings.ivf_probes,
            min_templates=settings.ivf_min_templates,
        )

    def action(self, templates: int, current: InvertedFile | None) -> str:
        """What a gallery of ``templates`` does with its inverted file ``current``.

        Trained at ``min_templates``, retrained when the gallery has doubled or shrunk to a
        quarter since (cells sized for another gallery probe too much or too little), dropped
        below half of ``min_templates`` (search is exact there anyway).

        Returns:
            ``"keep"``, ``"drop"`` or ``"build"`` (a new one, trained on the gallery now).
        """
        if templates < self.min_templates:
            if current is not None and 2 * templates < self.min_templates:
                return "drop"
            return "keep"
        if (
            current is None
            or templates >= 2 * current.trained_size
            or 4 * templates <= current.trained_size
        ):
            return "build"
        return "keep"

    def lists_for(self, templates: int) -> int:
        """Cells to train for a gallery of ``templates``: the setting, or about its root."""
        if self.lists:
            return min(self.lists, max(1, templates))
        return max(1, min(templates, max(_MIN_LISTS, round(math.sqrt(templates)))))


def train_centroids(
    vectors: npt.NDArray[np.float32], lists: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """K-means centroids of ``vectors`` (faiss's k-means, 8 iterations, seeded from ``rng``).

    Args:
        vectors: an (m, 128) float32 sample, m >= ``lists``.
        lists: how many centroids.
        rng: the random source the k-means seed is drawn from.

    Returns:
        A (lists, 128) float32 array.
    """
    count = vectors.shape[0]
    if count < lists:
        raise ValueError(f"expected at least {lists} vectors to train {lists} cells, got {count}")
    kmeans = _faiss().Kmeans(
        vectors.shape[1],
        lists,
        niter=_TRAIN_ITERATIONS,
        seed=int(rng.integers(2**31 - 1)),
        min_points_per_centroid=1,
        max_points_per_centroid=max(256, math.ceil(count / lists)),
    )
    kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    centroids: npt.NDArray[np.float32] = kmeans.centroids.reshape(lists, -1).copy()
    return centroids


def nearest_cells(
    vectors: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32]
) -> npt.NDArray[np.intp]:
    """The nearest centroid of each vector, as faiss files it."""
    quantizer = _faiss().IndexFlatL2(centroids.shape[1])
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    labels = quantizer.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)[1]
    cells: npt.NDArray[np.intp] = labels[:, 0].astype(np.intp)
    return cells


class InvertedFile:
    """Templates grouped into k-means cells (a faiss ``IndexIVFFlat``); candidates for a face
    are the nearest templates of its nearest cells.

    Templates are known by their gallery row (the faiss id); the gallery reports every change
    of a row (:meth:`add`, :meth:`remove`, :meth:`move`).
    """

    def __init__(self, centroids: npt.NDArray[np.float32], trained_size: int) -> None:
        """An empty inverted file with fixed cells.

        Args:
            centroids: the (lists, 128) cell centroids.
            trained_size: the gallery size they were trained for (decides retraining).
        """
        if centroids.ndim != 2 or centroids.shape[1] != EMBEDDING_SIZE or not len(centroids):
            raise ValueError(
                f"centroids must have shape (lists >= 1, {EMBEDDING_SIZE}), got {centroids.shape}"
            )
        faiss = _faiss()
        self._centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        lists = self._centroids.shape[0]
        self._quantizer = faiss.IndexFlatL2(EMBEDDING_SIZE)
        self._quantizer.add(self._centroids)  # a full quantizer: the index is trained
        self._index = faiss.IndexIVFFlat(self._quantizer, EMBEDDING_SIZE, lists, faiss.METRIC_L2)
        # Row -> (cell, slot) in a hash table, so one row is removed without a scan.
        self._index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self.trained_size = int(trained_size)
        self._filed = np.zeros(0, dtype=np.bool_)
        self._peak = 0

    @classmethod
    def build(cls, matrix: Columns, size: int, parameters: IvfParameters) -> InvertedFile:
        """Train cells on a sample of the gallery's columns, then file every column.

        Args:
            matrix: the gallery's (129, capacity) matrix; columns 0..size are templates.
            size: how many columns are templates.
            parameters: the number of cells (or automatic) and the seed.

        Returns:
            An inverted file holding rows 0..size.
        """
        started = time.perf_counter()
        rng = np.random.default_rng(parameters.seed)
        lists = parameters.lists_for(size)
        sample_size = min(size, lists * _TRAIN_PER_LIST)
        picked = np.sort(rng.choice(size, size=sample_size, replace=False))
        sample = np.ascontiguousarray(matrix[:EMBEDDING_SIZE, picked].T)
        centroids = train_centroids(sample, lists, rng)
        trained = time.perf_counter()
        inverted = cls(centroids, size)
        for start in range(0, size, _FILE_BLOCK):
            stop = min(size, start + _FILE_BLOCK)
            inverted.add(np.arange(start, stop, dtype=np.intp), matrix[:, start:stop])
        logger.info(
            "gallery: ivf built over %d templates in %d cells (train %.2f s, file %.2f s)",
            size,
            lists,
            trained - started,
            time.perf_counter() - trained,
        )
        return inverted

    @property
    def lists(self) -> int:
        """Number of cells."""
        return int(self._centroids.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the cells (at least: faiss keeps a cell's room when templates leave
        it, so this counts the most templates ever filed), centroids and row map."""
        per_template = int(self._index.code_size) + 8  # the vector and its id
        return int(self._peak * per_template + 2 * self._centroids.nbytes + self._filed.nbytes)

    def __len__(self) -> int:
        """Number of templates filed."""
        return int(self._index.ntotal)

    def cell_sizes(self) -> npt.NDArray[np.intp]:
        """Templates per cell."""
        lists = self._index.invlists
        return np.array([lists.list_size(cell) for cell in range(self.lists)], dtype=np.intp)

    def add(self, rows: Rows, columns: Columns) -> None:
        """File templates: each goes to its nearest cell.

        Args:
            rows: the gallery rows of the templates, not filed yet.
            columns: their (129, m) columns (embedding, half squared norm).
        """
        if rows.shape[0] == 0:
            return
        self._reserve_rows(int(rows.max()) + 1)
        vectors = np.ascontiguousarray(columns[:EMBEDDING_SIZE].T, dtype=np.float32)
        self._index.add_with_ids(vectors, rows.astype(np.int64))
        self._filed[rows] = True
        self._peak = max(self._peak, len(self))

    def _reserve_rows(self, needed: int) -> None:
        have = self._filed.shape[0]
        if needed <= have:
            return
        filed = np.zeros(max(needed, 2 * have, 1024), dtype=np.bool_)
        filed[:have] = self._filed
        self._filed = filed

    def _check_filed(self, row: int) -> None:
        if not (0 <= row < self._filed.shape[0] and self._filed[row]):
            raise KeyError(f"gallery row {row} is not in the inverted file")

    def remove(self, row: int) -> None:
        """Forget a filed row.

        Raises:
            KeyError: the row is not filed.
        """
        self._check_filed(row)
        ids = np.array([row], dtype=np.int64)
        self._index.remove_ids(_faiss().IDSelectorArray(ids))
        self._filed[row] = False

    def move(self, old: int, new: int) -> None:
        """The gallery moved the template at row ``old`` to row ``new`` (a free row).

        Raises:
            KeyError: ``old`` is not filed.
        """
        self._check_filed(old)
        vector = self._index.reconstruct(old)
        self.remove(old)
        self._reserve_rows(new + 1)
        self._index.add_with_ids(vector[np.newaxis], np.array([new], dtype=np.int64))
        self._filed[new] = True

    def candidates(
        self,
        augmented: Columns,
        probes: int,
        *,
        pool: int = POOL,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> list[tuple[Rows, Columns]]:
        """Per face, the nearest templates of its nearest cells, and their keys.

        Args:
            augmented: (faces, 129) queries ``[q, -1]``.
            probes: cells to search per face.
            pool: templates per face at most.
            allowed: per gallery row, whether it may be a candidate; ``None``: all.

        Returns:
            Per face, (gallery rows, keys ``q.g - |g|^2 / 2``) of the ``pool`` nearest
            (allowed) templates in its ``probes`` nearest cells.
        """
        faiss = _faiss()
        queries = np.ascontiguousarray(augmented[:, :EMBEDDING_SIZE])
        bits: npt.NDArray[np.uint8] | None = None
        selector = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")  # must outlive the search
            selector = faiss.IDSelectorBitmap(allowed.shape[0], faiss.swig_ptr(bits))
        parameters = faiss.SearchParametersIVF(nprobe=min(probes, self.lists), sel=selector)
        squared, labels = self._index.search(queries, pool, params=parameters)
        del bits
        norms = np.einsum("ij,ij->i", queries, queries)
        found = []
        for i in range(queries.shape[0]):
            hit = labels[i] >= 0
            keys = (0.5 * (norms[i] - squared[i][hit])).astype(np.float32)
            found.append((labels[i][hit].astype(np.intp), keys))
        return found
