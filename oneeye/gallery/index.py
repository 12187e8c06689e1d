"""The gallery: a thread-safe, versioned, in-memory index of enrolled face templates.

It answers "which enrolled persons are nearest to this face?" exactly (brute force over every
template, no approximation) and "is it one of them?" with a threshold per watchlist. This
module is the facade: the lock, the version and the public methods. The rooms behind it:

- :mod:`oneeye.gallery.storage`: the (129, n) float32 matrix, a column per template, and who
  each template is;
- :mod:`oneeye.gallery.kernels`: exact search over that matrix, and exact re-ranking;
- :mod:`oneeye.gallery.policy`: thresholds per watchlist and the margin (who is a match);
- :mod:`oneeye.gallery.files`: the ``.npz`` file;
- :mod:`oneeye.gallery.ivf`: the opt-in approximate index.

Approximate mode (opt-in, ``ivf=IvfParameters(...)`` or ``GallerySettings.index = "ivf"``): from
``min_templates`` templates on, an inverted file (faiss's IVF-Flat, :mod:`oneeye.gallery.ivf`)
picks each face's nearest templates in its nearest k-means cells, and they go through the same
exact re-ranking, person grouping, thresholds and margin as a full search. It can only miss
templates, never invent nearer ones: a face that exact search calls unknown is unknown here
too. The cells are trained under the write lock when the gallery reaches ``min_templates``
and again whenever it has doubled (or shrunk to a quarter) since; in between, new templates
go to their nearest cell.

At about 715 lines this module is over the ~600-line guide on purpose: it is the whole public
API, two thirds of it the methods' docstrings; the work is in the modules listed above.

Concurrency: one readers-writer lock. Searches share it; every change takes it alone. A writer
that is waiting stops new searches from entering, so a stream of searches cannot starve an
enrolment: a writer waits at most for the searches already running.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from oneeye.config import DEFAULT_MARGIN, DEFAULT_THRESHOLD, GallerySettings
from oneeye.errors import GalleryError
from oneeye.gallery import files, kernels
from oneeye.gallery.files import FILE_FORMAT, FILE_FORMAT_VERSION, GalleryFile
from oneeye.gallery.ivf import POOL, InvertedFile, IvfParameters
from oneeye.gallery.kernels import check_k
from oneeye.gallery.lock import ReadWriteLock
from oneeye.gallery.policy import MatchPolicy
from oneeye.gallery.storage import MIN_CAPACITY, TemplateStore, check_batch, check_columns
from oneeye.types import EMBEDDING_SIZE, Identification, Match, Template, check_embedding

__all__ = ["FILE_FORMAT", "FILE_FORMAT_VERSION", "GalleryIndex"]

logger = logging.getLogger(__name__)


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
        capacity: int = MIN_CAPACITY,
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
        self._lock = ReadWriteLock()
        self._policy = MatchPolicy.checked(default_threshold, thresholds, margin)
        self._version = 0
        self._store = TemplateStore(capacity)
        self._ivf: InvertedFile | None = None
        self._watchlist_columns: dict[
            str, tuple[int, npt.NDArray[np.intp], npt.NDArray[np.float32]]
        ] = {}
        """Per small watchlist searched on its own: the version, its rows and their columns."""

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

    # ----------------------------------------------------------------- introspection

    @property
    def version(self) -> int:
        """Bumped by one on every change; saved and loaded with the gallery."""
        return self._version

    @property
    def margin(self) -> float:
        """How much nearer than the next person a match must be; nearer rivals mean "not sure".
        0 turns the rule off (the nearest candidate within its threshold wins)."""
        return self._policy.margin

    @property
    def default_threshold(self) -> float:
        """The threshold of watchlists without one of their own."""
        return self._policy.default_threshold

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's numpy arrays (allocated capacity, not just what is used),
        the approximate index's and the small watchlists' kept columns included."""
        with self._lock.read():
            kept = sum(c[2].nbytes for c in self._watchlist_columns.values())
            return self._store.nbytes + kept + (self._ivf.nbytes if self._ivf is not None else 0)

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
            and self._store.size >= parameters.min_templates
        )

    def __len__(self) -> int:
        """Number of templates."""
        return self._store.size

    def __contains__(self, template_id: object) -> bool:
        """True when a template with this id is enrolled."""
        with self._lock.read():
            return template_id in self._store.id_row

    def persons(self, watchlist: str | None = None) -> list[str]:
        """Enrolled persons, sorted.

        Args:
            watchlist: only persons with templates on this watchlist.

        Returns:
            Person ids, each once.
        """
        with self._lock.read():
            return self._store.persons(watchlist)

    def watchlists(self) -> list[str]:
        """Watchlists that hold at least one template, sorted."""
        with self._lock.read():
            return self._store.watchlists()

    def watchlist_templates(self, watchlist: str) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Copies of one watchlist's templates, for calibrating its threshold.

        Args:
            watchlist: a watchlist name (it need not hold templates).

        Returns:
            Each template's person, and the (n, 128) embeddings in the same order.
        """
        with self._lock.read():
            store = self._store
            rows = store.rows_on(watchlist)
            groups = store.row_group[rows].tolist()
            persons = [store.group_person[g] for g in groups]
            return persons, np.ascontiguousarray(store.matrix[:EMBEDDING_SIZE, rows].T)

    def thresholds(self) -> dict[str, float]:
        """The per-watchlist thresholds set explicitly (not the default)."""
        return dict(self._policy.thresholds)

    def threshold(self, watchlist: str) -> float:
        """The largest distance accepted as a match on ``watchlist``.

        Args:
            watchlist: a watchlist name (it need not hold templates).

        Returns:
            Its own threshold, or the default.
        """
        return self._policy.threshold(watchlist)

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
            return self._store.template_at(self._store.row_of(template_id))

    def templates(self, person: str | None = None) -> list[Template]:
        """Enrolled templates (copies), in storage order.

        Args:
            person: only this person's templates.

        Returns:
            The templates; empty when the person has none.
        """
        with self._lock.read():
            store = self._store
            rows: Iterable[int] = (
                range(store.size) if person is None else store.rows_of(person).tolist()
            )
            return [store.template_at(row) for row in rows]

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
        vectors, quality = check_columns(ids, persons, watchlists, embeddings, qualities)
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
            store = self._store
            taken = [i for i in ids if i in store.id_row]
            if taken:
                raise GalleryError(
                    f"expected new template ids, got {len(taken)} already enrolled: {taken[:5]}"
                )
            start = store.size
            store.insert(ids, persons, watchlists, embeddings, qualities)
            if self._ivf is not None:
                rows = np.arange(start, store.size, dtype=np.intp)
                self._ivf.add(rows, store.matrix[:, start : store.size])
            self._maintain_ivf()
            self._version += 1
            logger.debug("gallery: added %d templates (version %d)", len(ids), self._version)
            return self._version

    def _maintain_ivf(self) -> None:
        """Build, rebuild or drop the inverted file as :meth:`IvfParameters.action` says (the
        caller holds the lock)."""
        parameters = self._ivf_parameters
        if parameters is None:
            return
        action = parameters.action(self._store.size, self._ivf)
        if action != "keep":
            self._ivf = None  # free the old cells before building the new ones
        if action == "build":
            self._ivf = InvertedFile.build(self._store.matrix, self._store.size, parameters)

    def _delete_row(self, row: int) -> None:
        """Remove a row (the last one moves into its place); the caller holds the lock."""
        last = self._store.size - 1
        if self._ivf is not None:
            self._ivf.remove(row)
            if row != last:
                self._ivf.move(last, row)
        self._store.delete(row)

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
            self._delete_row(self._store.row_of(template_id))
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
            rows = self._store.rows_of(person, watchlist)
            if not rows.shape[0]:
                where = "" if watchlist is None else f" on watchlist {watchlist!r}"
                raise GalleryError(
                    f"expected an enrolled person, got {person!r} with no templates{where}"
                )
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
            store = self._store
            row = store.id_row.get(template.id)
            if row is None:
                raise GalleryError(
                    f"expected the id of an enrolled template to replace, got unknown id "
                    f"{template.id!r}"
                )
            store.overwrite(row, template)
            if self._ivf is not None:
                self._ivf.remove(row)
                self._ivf.add(np.array([row], dtype=np.intp), store.matrix[:, row : row + 1])
            self._version += 1
            return self._version

    def clear(self) -> int:
        """Remove every template (thresholds stay).

        Returns:
            The new version.
        """
        with self._lock.write():
            self._store = TemplateStore(MIN_CAPACITY)
            self._ivf = None
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
        with self._lock.write():
            self._policy = self._policy.with_threshold(watchlist, value)
            self._version += 1
            return self._version

    def set_margin(self, value: float) -> int:
        """Set the margin (a change: the version is bumped).

        Args:
            value: how much nearer than the next person a match must be, in [0, 2).

        Returns:
            The new version.
        """
        with self._lock.write():
            self._policy = self._policy.with_margin(value)
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
        with self._lock.read():
            return self._search_locked(query[np.newaxis, :], check_k(k), watchlists)[0]

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
        queries, checked_k = check_batch(embeddings), check_k(k)
        with self._lock.read():
            return self._search_locked(queries, checked_k, watchlists)

    def identify(self, embedding: npt.ArrayLike, k: int = 5) -> Identification:
        """Who is this face? Per watchlist, its nearest person when within the watchlist's
        threshold and clear of its other persons by the margin (see ``MatchPolicy.decide``).

        Args:
            embedding: a 128-D face embedding.
            k: how many candidates to consider and report.

        Returns:
            The decision and the candidates; ``person`` is ``UNKNOWN`` when nobody is close
            enough, and always for an empty gallery.
        """
        query = check_embedding(embedding, "query embedding")
        return self._identify(query[np.newaxis, :], check_k(k))[0]

    def identify_batch(self, embeddings: npt.ArrayLike, k: int = 5) -> list[Identification]:
        """:meth:`identify` for many faces at once.

        Args:
            embeddings: an (n, 128) array.
            k: how many candidates per face.

        Returns:
            One identification per row of ``embeddings``.
        """
        return self._identify(check_batch(embeddings), check_k(k))

    def _identify(self, queries: npt.NDArray[np.float32], k: int) -> list[Identification]:
        # Each watchlist decides on its own persons: it needs its nearest person and, for the
        # margin, its nearest other one. One search for the k (>= 2) nearest groups over every
        # watchlist answers that for most faces; a watchlist it may have missed (its nearest
        # person could still be within its threshold, or its rival within the margin) is
        # searched on its own, for the faces that need it.
        wanted = max(k, 2)
        with self._lock.read():
            found = self._search_locked(queries, wanted, None)
            policy = self._policy
            names = self._store.watchlists() if len(found) else []
            if len(names) > 1:
                # Judged on the first search's answers only: its bound (nothing missing is
                # nearer than its last candidate) does not hold for a merged list.
                needs = {
                    name: [
                        i
                        for i, candidates in enumerate(found)
                        if policy.needs_own_search(candidates, name, wanted)
                    ]
                    for name in names
                }
                for name, needy in needs.items():
                    if needy:
                        own = self._search_watchlist_locked(queries[needy], name)
                        for i, extra in zip(needy, own, strict=True):
                            found[i] = _merged(found[i], extra)
        return [policy.decide(candidates, k) for candidates in found]

    def _search_watchlist_locked(
        self, queries: npt.NDArray[np.float32], watchlist: str
    ) -> list[list[Match]]:
        """The two nearest groups on one watchlist (its nearest person and their rival)."""
        store = self._store
        if 4 * store.watchlist_size(watchlist) > store.size:
            return self._search_locked(queries, 2, [watchlist])  # most of the gallery anyway
        cached = self._watchlist_columns.get(watchlist)
        if cached is None or cached[0] != self._version:
            rows = store.rows_on(watchlist)
            cached = (self._version, rows, np.ascontiguousarray(store.matrix[:, rows]))
            # Under the read lock the version cannot move; two readers may both build it.
            # Older versions' copies go (the dict is replaced whole, never changed in place).
            kept = {w: c for w, c in self._watchlist_columns.items() if c[0] == self._version}
            self._watchlist_columns = {**kept, watchlist: cached}
        _, rows, columns = cached
        return kernels.search_rows(store, queries, kernels.augment(queries), rows, columns, 2)

    def _search_locked(
        self, queries: npt.NDArray[np.float32], k: int, watchlists: Iterable[str] | None
    ) -> list[list[Match]]:
        store = self._store
        count = queries.shape[0]
        if store.size == 0 or count == 0:
            return [[] for _ in range(count)]
        allowed: kernels.Allowed = None
        if watchlists is not None:
            allowed = store.allowed(set(watchlists))
            if allowed is None:
                return [[] for _ in range(count)]
        augmented = kernels.augment(queries)
        ivf, parameters = self._ivf, self._ivf_parameters
        if ivf is not None and parameters is not None and store.size >= parameters.min_templates:
            pool = max(POOL, 32 * k)
            found = ivf.candidates(augmented, parameters.probes, pool=pool, allowed=allowed)
            return kernels.rerank(store, queries, augmented, found, k, allowed)
        return kernels.search(store, queries, augmented, k, allowed)

    # ------------------------------------------------------------------------- files

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the gallery to one ``.npz`` file, atomically (temp file, then rename).

        The file holds the embeddings as an (n, 128) float32 array, the qualities, and the
        rest (ids, persons, watchlists, thresholds, version) as UTF-8 JSON; no pickles
        (:mod:`oneeye.gallery.files`).

        Args:
            path: the file to write; replaced if it exists.

        Raises:
            GalleryError: the file could not be written.
        """
        target = Path(path)
        with self._lock.read():
            # Copy under the lock, write without it: disk time never blocks enrolment.
            store, policy = self._store, self._policy
            ids, persons, watchlists, embeddings = store.columns()
            saved = GalleryFile(
                version=self._version,
                default_threshold=policy.default_threshold,
                thresholds=dict(policy.thresholds),
                margin=policy.margin,
                ids=ids,
                persons=persons,
                watchlists=watchlists,
                embeddings=embeddings,
                qualities=store.row_quality[: store.size].copy(),
            )
        try:
            files.write(target, saved)
        except OSError as exc:
            raise GalleryError(f"could not write gallery file {target}: {exc}") from exc
        logger.info(
            "gallery: saved %d templates (version %d) to %s", len(ids), saved.version, target
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
            saved = files.read(source)
            index = cls(
                default_threshold=saved.default_threshold,
                thresholds=saved.thresholds,
                margin=saved.margin,
                capacity=max(MIN_CAPACITY, len(saved.ids)),
                ivf=ivf,
            )
            index.add_arrays(
                saved.ids, saved.persons, saved.watchlists, saved.embeddings, saved.qualities
            )
            index._version = saved.version
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise GalleryError(f"could not load gallery file {source}: {exc}") from exc
        except GalleryError as exc:
            raise GalleryError(f"could not load gallery file {source}: {exc}") from exc
        logger.info(
            "gallery: loaded %d templates (version %d) from %s", len(index), index.version, source
        )
        return index


def _merged(found: list[Match], extra: list[Match]) -> list[Match]:
    """``found`` and the groups of ``extra`` it lacks, nearest first."""
    have = {(m.person, m.watchlist) for m in found}
    more = [m for m in extra if (m.person, m.watchlist) not in have]
    return sorted(found + more, key=lambda m: m.distance) if more else found
