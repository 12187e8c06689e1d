"""An inverted file over the gallery's templates: the opt-in approximate search.

K-means cells partition the templates; each cell keeps its templates as one contiguous
(129 x count) float32 block in the gallery's own layout (embedding, then half the squared
norm), so a face is compared with the templates of its ``nprobe`` nearest cells by a few
contiguous products, and :class:`~oneeye.gallery.index.GalleryIndex` re-ranks those candidates
exactly. Nothing here locks: the gallery calls every method with its lock held.

Why a copy of the templates instead of a permutation of the gallery's matrix: the gallery
removes a template by moving its last column into the hole, which would break a cell's
contiguity; cells with their own blocks keep add, remove and replace O(1) at the price of a
second copy of the embeddings.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from oneeye.config import GallerySettings
from oneeye.types import EMBEDDING_SIZE

logger = logging.getLogger(__name__)

_ROWS: Final = EMBEDDING_SIZE + 1
_TRAIN_PER_LIST: Final = 32
"""Training sample: this many templates per cell (k-means needs a few dozen per centroid)."""
_TRAIN_ITERATIONS: Final = 8
_ASSIGN_BLOCK: Final = 65_536
"""Templates assigned to cells per product while building (a 256 MB key block at 1024 cells)."""
_MIN_LISTS: Final = 16
_SLACK: Final = 8
"""A cell's block is built with room for 1/8 more templates; a full block grows by half."""

Rows = npt.NDArray[np.intp]
Columns = npt.NDArray[np.float32]


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
    """K-means (Lloyd) centroids of ``vectors``, started from distinct sample points.

    Args:
        vectors: an (m, 128) float32 sample, m >= ``lists``.
        lists: how many centroids.
        rng: the random source for the start and for re-seeding empty cells.

    Returns:
        A (lists, 128) float32 array.
    """
    count = vectors.shape[0]
    if count < lists:
        raise ValueError(f"expected at least {lists} vectors to train {lists} cells, got {count}")
    centroids = vectors[rng.choice(count, size=lists, replace=False)].copy()
    for _ in range(_TRAIN_ITERATIONS):
        cells = nearest_cells(vectors, centroids)
        order = np.argsort(cells, kind="stable")
        sizes = np.bincount(cells, minlength=lists)
        filled = np.flatnonzero(sizes)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))[filled]
        sums = np.add.reduceat(vectors[order], starts, axis=0)
        centroids[filled] = sums / sizes[filled, np.newaxis].astype(np.float32)
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            # An empty cell would never be probed; restart it on a random sample point.
            centroids[empty] = vectors[rng.choice(count, size=empty.size, replace=False)]
    return centroids


def nearest_cells(
    vectors: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32]
) -> npt.NDArray[np.intp]:
    """The nearest centroid of each vector (largest ``v.c - |c|^2 / 2``), in blocks."""
    half_norms = 0.5 * np.einsum("ij,ij->i", centroids, centroids)
    cells = np.empty(vectors.shape[0], dtype=np.intp)
    for start in range(0, vectors.shape[0], _ASSIGN_BLOCK):
        keys = vectors[start : start + _ASSIGN_BLOCK] @ centroids.T
        keys -= half_norms
        cells[start : start + keys.shape[0]] = np.argmax(keys, axis=1)
    return cells


class InvertedFile:
    """Templates grouped into k-means cells; candidates for a face are its nearest cells'.

    Templates are known by their gallery row; the gallery reports every change of a row
    (:meth:`add`, :meth:`remove`, :meth:`move`).
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
        self._centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        lists = self._centroids.shape[0]
        # The gallery's trick: [q, -1] @ [c; |c|^2/2] ranks cells by distance in one product.
        self._centroid_columns = np.empty((_ROWS, lists), dtype=np.float32)
        self._centroid_columns[:EMBEDDING_SIZE] = self._centroids.T
        self._centroid_columns[EMBEDDING_SIZE] = 0.5 * np.einsum(
            "ij,ij->i", self._centroids, self._centroids
        )
        self.trained_size = int(trained_size)
        self._blocks: list[Columns] = [np.empty((_ROWS, 0), dtype=np.float32)] * lists
        self._block_rows: list[Rows] = [np.empty(0, dtype=np.intp)] * lists
        self._counts = np.zeros(lists, dtype=np.intp)
        self._row_cell = np.full(0, -1, dtype=np.intp)
        self._row_slot = np.zeros(0, dtype=np.intp)
        self._size = 0

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
        inverted.add(np.arange(size, dtype=np.intp), matrix[:, :size])
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
        """Bytes held by the cells' blocks, row maps and centroids."""
        blocks = sum(
            b.nbytes + r.nbytes for b, r in zip(self._blocks, self._block_rows, strict=True)
        )
        return int(
            blocks
            + self._centroids.nbytes
            + self._centroid_columns.nbytes
            + self._row_cell.nbytes
            + self._row_slot.nbytes
        )

    def __len__(self) -> int:
        """Number of templates filed."""
        return self._size

    def cell_sizes(self) -> npt.NDArray[np.intp]:
        """Templates per cell (a copy)."""
        return self._counts.copy()

    def add(self, rows: Rows, columns: Columns) -> None:
        """File templates: each goes to its nearest cell.

        Args:
            rows: the gallery rows of the templates, not filed yet.
            columns: their (129, m) columns (embedding, half squared norm).
        """
        count = rows.shape[0]
        if count == 0:
            return
        self._reserve_rows(int(rows.max()) + 1)
        cells = nearest_cells(columns[:EMBEDDING_SIZE].T, self._centroids)
        order = np.argsort(cells, kind="stable")
        sorted_cells = cells[order]
        bounds = np.flatnonzero(np.diff(sorted_cells)) + 1
        for part in np.split(order, bounds):
            cell = int(cells[part[0]])
            self._append(cell, rows[part], columns[:, part])
        self._size += count

    def _append(self, cell: int, rows: Rows, columns: Columns) -> None:
        used = int(self._counts[cell])
        stop = used + rows.shape[0]
        block = self._blocks[cell]
        if stop > block.shape[1]:
            capacity = max(stop + stop // _SLACK + 4, block.shape[1] + block.shape[1] // 2)
            grown = np.empty((_ROWS, capacity), dtype=np.float32)
            grown[:, :used] = block[:, :used]
            block_rows = np.empty(capacity, dtype=np.intp)
            block_rows[:used] = self._block_rows[cell][:used]
            self._blocks[cell] = block = grown
            self._block_rows[cell] = block_rows
        block[:, used:stop] = columns
        self._block_rows[cell][used:stop] = rows
        self._counts[cell] = stop
        self._row_cell[rows] = cell
        self._row_slot[rows] = np.arange(used, stop)

    def _reserve_rows(self, needed: int) -> None:
        have = self._row_cell.shape[0]
        if needed <= have:
            return
        capacity = max(needed, 2 * have, 1024)
        row_cell = np.full(capacity, -1, dtype=np.intp)
        row_cell[:have] = self._row_cell
        row_slot = np.zeros(capacity, dtype=np.intp)
        row_slot[:have] = self._row_slot
        self._row_cell, self._row_slot = row_cell, row_slot

    def remove(self, row: int) -> None:
        """Forget a filed row: the last template of its cell takes its slot.

        Raises:
            KeyError: the row is not filed.
        """
        cell = int(self._row_cell[row]) if row < self._row_cell.shape[0] else -1
        if cell < 0:
            raise KeyError(f"gallery row {row} is not in the inverted file")
        slot = int(self._row_slot[row])
        last = int(self._counts[cell]) - 1
        block, block_rows = self._blocks[cell], self._block_rows[cell]
        if slot != last:
            block[:, slot] = block[:, last]
            moved = int(block_rows[last])
            block_rows[slot] = moved
            self._row_slot[moved] = slot
        self._counts[cell] = last
        self._row_cell[row] = -1
        self._size -= 1

    def move(self, old: int, new: int) -> None:
        """The gallery moved the template at row ``old`` to row ``new`` (a free row)."""
        cell = int(self._row_cell[old])
        if cell < 0:
            raise KeyError(f"gallery row {old} is not in the inverted file")
        slot = int(self._row_slot[old])
        self._reserve_rows(new + 1)
        self._block_rows[cell][slot] = new
        self._row_cell[new] = cell
        self._row_slot[new] = slot
        self._row_cell[old] = -1

    def probe(self, augmented: Columns, probes: int) -> npt.NDArray[np.intp]:
        """The ``probes`` nearest cells of each face (any order), as a (faces, probes) array."""
        lists = self.lists
        probes = min(probes, lists)
        coarse = augmented @ self._centroid_columns
        if probes == lists:
            return np.broadcast_to(np.arange(lists), (augmented.shape[0], lists))
        return np.argpartition(coarse, lists - probes, axis=1)[:, lists - probes :]

    def candidates(self, augmented: Columns, probes: int) -> list[tuple[Rows, Columns]]:
        """Per face, the templates of its nearest cells and their keys.

        Args:
            augmented: (faces, 129) queries ``[q, -1]``.
            probes: cells to search per face.

        Returns:
            Per face, (gallery rows, keys ``q.g - |g|^2 / 2``) of every template in its
            ``probes`` nearest cells. A cell probed by several faces is read once, in one
            product for all of them.
        """
        faces = augmented.shape[0]
        probed = self.probe(augmented, probes)
        cells = probed.reshape(-1)
        owner = np.repeat(np.arange(faces), probed.shape[1])
        order = np.argsort(cells, kind="stable")
        cells, owner = cells[order], owner[order]
        bounds = np.flatnonzero(np.diff(cells)) + 1
        row_parts: list[list[Rows]] = [[] for _ in range(faces)]
        key_parts: list[list[Columns]] = [[] for _ in range(faces)]
        for start, stop in zip(
            np.concatenate(([0], bounds)).tolist(),
            np.concatenate((bounds, [cells.shape[0]])).tolist(),
            strict=True,
        ):
            cell = int(cells[start])
            used = int(self._counts[cell])
            if used == 0:
                continue
            block = self._blocks[cell][:, :used]
            rows = self._block_rows[cell][:used]
            who = owner[start:stop].tolist()
            if len(who) == 1:
                keys = (augmented[who[0]] @ block)[np.newaxis]
            else:
                keys = augmented[who] @ block
            for i, face in enumerate(who):
                row_parts[face].append(rows)
                key_parts[face].append(keys[i])
        empty_rows = np.empty(0, dtype=np.intp)
        empty_keys = np.empty(0, dtype=np.float32)
        return [
            (
                np.concatenate(r) if r else empty_rows,
                np.concatenate(k) if k else empty_keys,
            )
            for r, k in zip(row_parts, key_parts, strict=True)
        ]
