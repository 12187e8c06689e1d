"""The gallery's storage: one float32 matrix with a column per template, and who each is.

Rows 0..127 of the matrix hold the embedding; row 128 holds half the template's squared norm,
so that a single BLAS product with the augmented query ``[q, -1]`` gives
``key = q.g - |g|^2 / 2`` (see :mod:`oneeye.gallery.kernels`). The matrix is preallocated and
grows by doubling; removal moves the last column into the hole (O(1)). Beside it, per row: the
template id, its group (one (person, watchlist) pair, the unit search answers with), its
watchlist code and its quality.

Nothing here locks: :class:`~oneeye.gallery.index.GalleryIndex` calls every method with its
lock held, and checks input before it gets here (the ``check_*`` helpers below).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from oneeye.errors import GalleryError
from oneeye.types import EMBEDDING_SIZE, Template

logger = logging.getLogger(__name__)

ROWS: Final = EMBEDDING_SIZE + 1
"""Matrix rows: the embedding, then half the squared norm."""
NORM_ROW: Final = EMBEDDING_SIZE
MIN_CAPACITY: Final = 1024
_TRANSPOSE_BLOCK: Final = 1024


def check_name(value: object, what: str) -> str:
    """``value`` if it is a non-empty string.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_names(values: Sequence[object], what: str) -> None:
    """Check a column of names at once.

    Raises:
        ValueError: one of them is not a non-empty string.
    """
    # map() keeps a million-row bulk load out of a Python-level loop; the loop is for the error.
    if set(map(type, values)) <= {str} and all(values):
        return
    for value in values:
        check_name(value, what)


def check_batch(embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``embeddings`` as a contiguous (n, 128) float32 array of finite values.

    Raises:
        ValueError: wrong shape, or a NaN or infinite value.
    """
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != EMBEDDING_SIZE:
        raise ValueError(f"embeddings must have shape (n, {EMBEDDING_SIZE}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("embeddings contain NaN or infinite values")
    return array


def check_columns(
    ids: Sequence[object],
    persons: Sequence[object],
    watchlists: Sequence[object],
    embeddings: npt.ArrayLike,
    qualities: npt.ArrayLike | None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Check templates given as columns; the embeddings and qualities (1.0 when ``None``).

    Raises:
        ValueError: lengths or shapes disagree, a name is empty, an embedding not finite.
    """
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    if vectors.size == 0 and len(ids) == 0:
        vectors = vectors.reshape(0, EMBEDDING_SIZE)
    vectors = check_batch(vectors)
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
        check_names(column, f"template {name}")
    return vectors, quality


class TemplateStore:
    """Templates as matrix columns, with their ids, groups, watchlists and qualities.

    Attributes read by the search kernels: :attr:`matrix`, :attr:`size`, :attr:`row_group`,
    :attr:`row_watchlist`, :attr:`max_half_norm`.
    """

    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        """An empty store with room for ``capacity`` templates (it grows by doubling)."""
        capacity = max(int(capacity), 1)
        self.matrix = np.zeros((ROWS, capacity), dtype=np.float32)
        self.row_group = np.zeros(capacity, dtype=np.int32)
        self.row_watchlist = np.zeros(capacity, dtype=np.int32)
        self.row_quality = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.max_half_norm = 0.0
        """Largest |g|^2 / 2 ever stored since the store was made: bounds float32 rounding."""
        self.row_ids: list[str] = []
        self.id_row: dict[str, int] = {}
        # A group is one (person, watchlist) pair: the unit search answers with.
        self.groups: dict[str, dict[str, int]] = {}
        self.group_person: list[str] = []
        self.group_watchlist: list[str] = []
        self._group_size: list[int] = []
        self._free_groups: list[int] = []
        self.watchlist_code: dict[str, int] = {}
        self._watchlist_name: list[str] = []
        self._watchlist_size: list[int] = []

    # ----------------------------------------------------------------------- reading

    @property
    def nbytes(self) -> int:
        """Bytes held by the numpy arrays (allocated capacity, not just what is used)."""
        return int(
            self.matrix.nbytes
            + self.row_group.nbytes
            + self.row_watchlist.nbytes
            + self.row_quality.nbytes
        )

    def persons(self, watchlist: str | None = None) -> list[str]:
        """Persons with templates (on ``watchlist``, if given), sorted."""
        if watchlist is None:
            return sorted(self.groups)
        return sorted(p for p, lists in self.groups.items() if watchlist in lists)

    def watchlists(self) -> list[str]:
        """Watchlists that hold at least one template, sorted."""
        return sorted(
            name
            for name, size in zip(self._watchlist_name, self._watchlist_size, strict=True)
            if size
        )

    def row_of(self, template_id: str) -> int:
        """The row of an enrolled template.

        Raises:
            GalleryError: no template has this id.
        """
        row = self.id_row.get(template_id)
        if row is None:
            raise GalleryError(
                f"expected the id of an enrolled template, got unknown id {template_id!r}"
            )
        return row

    def rows_of(self, person: str, watchlist: str | None = None) -> npt.NDArray[np.intp]:
        """Rows of a person's templates (on one watchlist, or all), ascending."""
        lists = self.groups.get(person, {})
        if watchlist is None:
            codes = list(lists.values())
        else:
            codes = [lists[watchlist]] if watchlist in lists else []
        if not codes:
            return np.empty(0, dtype=np.intp)
        return np.flatnonzero(np.isin(self.row_group[: self.size], codes))

    def template_at(self, row: int) -> Template:
        """The template in ``row`` (a copy)."""
        group = int(self.row_group[row])
        return Template(
            id=self.row_ids[row],
            person=self.group_person[group],
            watchlist=self.group_watchlist[group],
            embedding=self.matrix[:EMBEDDING_SIZE, row].copy(),
            quality=float(self.row_quality[row]),
        )

    def watchlist_size(self, watchlist: str) -> int:
        """How many templates ``watchlist`` holds."""
        code = self.watchlist_code.get(watchlist)
        return 0 if code is None else self._watchlist_size[code]

    def rows_on(self, watchlist: str) -> npt.NDArray[np.intp]:
        """Rows of the templates on ``watchlist``, ascending."""
        code = self.watchlist_code.get(watchlist)
        if code is None:
            return np.empty(0, dtype=np.intp)
        return np.flatnonzero(self.row_watchlist[: self.size] == code)

    def allowed(self, watchlists: set[str]) -> npt.NDArray[np.bool_] | None:
        """Per row, whether its watchlist is one of ``watchlists``; ``None`` if none is known."""
        codes = [self.watchlist_code[w] for w in watchlists if w in self.watchlist_code]
        if not codes:
            return None
        return np.isin(self.row_watchlist[: self.size], codes)

    def columns(self) -> tuple[list[str], list[str], list[str], npt.NDArray[np.float32]]:
        """Copies of every template as columns: ids, persons, watchlists, (n, 128) embeddings."""
        groups = self.row_group[: self.size].tolist()
        return (
            list(self.row_ids),
            [self.group_person[g] for g in groups],
            [self.group_watchlist[g] for g in groups],
            np.ascontiguousarray(self.matrix[:EMBEDDING_SIZE, : self.size].T),
        )

    # ----------------------------------------------------------------------- changes

    def insert(
        self,
        ids: list[str],
        persons: list[str],
        watchlists: list[str],
        embeddings: npt.NDArray[np.float32],
        qualities: npt.NDArray[np.float32],
    ) -> None:
        """Append templates as columns; ids are new and everything is checked already."""
        start, count = self.size, len(ids)
        self._reserve(start + count)
        stop = start + count
        half_norms = 0.5 * np.einsum("ij,ij->i", embeddings, embeddings, dtype=np.float64)
        # Transposing in blocks that fit in cache is ~4x faster than one strided copy.
        for first in range(0, count, _TRANSPOSE_BLOCK):
            block = embeddings[first : first + _TRANSPOSE_BLOCK]
            self.matrix[:EMBEDDING_SIZE, start + first : start + first + block.shape[0]] = block.T
        self.matrix[NORM_ROW, start:stop] = half_norms
        self.max_half_norm = max(self.max_half_norm, float(half_norms.max(initial=0.0)))
        self.row_quality[start:stop] = qualities
        pairs = list(zip(persons, watchlists, strict=True))
        group_of = {pair: self._group_for(*pair, n) for pair, n in Counter(pairs).items()}
        self.row_group[start:stop] = list(map(group_of.__getitem__, pairs))
        list_of = {name: self._watchlist_for(name, n) for name, n in Counter(watchlists).items()}
        self.row_watchlist[start:stop] = list(map(list_of.__getitem__, watchlists))
        self.row_ids.extend(ids)
        self.id_row.update(zip(ids, range(start, stop), strict=True))
        self.size = stop

    def overwrite(self, row: int, template: Template) -> None:
        """Put ``template`` (same id, anything else may change) in place of ``row``'s."""
        self._release_row(row)
        self.row_group[row] = self._group_for(template.person, template.watchlist)
        self.row_watchlist[row] = self._watchlist_for(template.watchlist)
        vector = template.embedding
        half_norm = 0.5 * float(np.dot(vector.astype(np.float64), vector))
        self.matrix[:EMBEDDING_SIZE, row] = vector
        self.matrix[NORM_ROW, row] = half_norm
        self.max_half_norm = max(self.max_half_norm, half_norm)
        self.row_quality[row] = template.quality

    def delete(self, row: int) -> None:
        """Remove a row by moving the last one (row ``size - 1``) into its place."""
        self._release_row(row)
        last = self.size - 1
        removed_id = self.row_ids[row]
        if row != last:
            self.matrix[:, row] = self.matrix[:, last]
            self.row_group[row] = self.row_group[last]
            self.row_watchlist[row] = self.row_watchlist[last]
            self.row_quality[row] = self.row_quality[last]
            moved_id = self.row_ids[last]
            self.row_ids[row] = moved_id
            self.id_row[moved_id] = row
        self.row_ids.pop()
        del self.id_row[removed_id]
        self.size = last

    def _reserve(self, needed: int) -> None:
        capacity = self.matrix.shape[1]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        logger.debug("gallery: growing to room for %d templates", capacity)
        used = self.size
        matrix = np.zeros((ROWS, capacity), dtype=np.float32)
        matrix[:, :used] = self.matrix[:, :used]
        self.matrix = matrix
        for name in ("row_group", "row_watchlist", "row_quality"):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=old.dtype)
            new[:used] = old[:used]
            setattr(self, name, new)

    def _group_for(self, person: str, watchlist: str, templates: int = 1) -> int:
        """The code of a (person, watchlist) group, created if new, counting ``templates`` more."""
        lists = self.groups.setdefault(person, {})
        code = lists.get(watchlist)
        if code is None:
            if self._free_groups:
                code = self._free_groups.pop()
                self.group_person[code] = person
                self.group_watchlist[code] = watchlist
                self._group_size[code] = 0
            else:
                code = len(self.group_person)
                self.group_person.append(person)
                self.group_watchlist.append(watchlist)
                self._group_size.append(0)
            lists[watchlist] = code
        self._group_size[code] += templates
        return code

    def _watchlist_for(self, watchlist: str, templates: int = 1) -> int:
        """The code of a watchlist, created if new, counting ``templates`` more."""
        code = self.watchlist_code.get(watchlist)
        if code is None:
            code = len(self._watchlist_name)
            self.watchlist_code[watchlist] = code
            self._watchlist_name.append(watchlist)
            self._watchlist_size.append(0)
        self._watchlist_size[code] += templates
        return code

    def _release_row(self, row: int) -> None:
        """Drop the group/watchlist counts of a row about to be overwritten or removed."""
        group = int(self.row_group[row])
        self._watchlist_size[int(self.row_watchlist[row])] -= 1
        self._group_size[group] -= 1
        if self._group_size[group] == 0:
            person = self.group_person[group]
            lists = self.groups[person]
            del lists[self.group_watchlist[group]]
            if not lists:
                del self.groups[person]
            self._free_groups.append(group)
