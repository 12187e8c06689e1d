"""The gallery's change log as every central server reads it: the typed changes, the
:class:`GalleryReplica` that applies them to a server's gallery, and the thread that keeps it at
the database's newest version.

Every change to the live gallery (``services.gallery``) is logged in the database under the
next global version before any gallery applies it; each server applies the log in version
order, its own changes included, so every server (and every edge, through the bus) holds the
same gallery at the same version whichever server made a change. A logged change names
templates, persons, watchlists and thresholds, never an embedding: whoever applies an add reads
the embeddings from ``face_templates``, and skips a template deleted since (its removal is a
later change). Applying is idempotent (an add of an entry held, a removal of one not held, do
nothing), so replaying the log from any earlier point converges to the same gallery.

A server learns of another's change from the bus (any message on ``gallery/changes`` wakes
its :class:`GalleryFollower`) or, should that message be lost, from polling the database
every :data:`POLL_SECONDS`; it announces the version it holds every
:data:`ANNOUNCE_SECONDS`, so an edge that missed the last change of a burst resyncs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from oneeye.bus.base import GALLERY_CHANGES, Bus, Message
from oneeye.bus.messages import describe_errors
from oneeye.gallery import GalleryIndex
from oneeye.store.db import Database
from oneeye.store.repos import gallery_log, people, templates

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
"""How often a server looks for changes it was not told of on the bus."""
ANNOUNCE_SECONDS = 30.0
"""How often a server announces the version it holds (retained), for edges that missed one."""
PRUNE_SECONDS = 3600.0
"""How often the log is pruned."""
KEEP = timedelta(days=1)
"""How long a logged change is kept (the newest :data:`KEEP_NEWEST` always are)."""
KEEP_NEWEST = 1000
READ_BATCH = 500
"""Changes read from the log at a time."""

_Id = Annotated[str, Field(min_length=1, max_length=80)]
_Name = Annotated[str, Field(min_length=1, max_length=64)]
MAX_ENTRIES = 10_000
"""Entries one logged add or removal may name (a larger one is logged as a reload)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoggedEntry(_Strict):
    """One gallery entry an add names: the embedding is read from ``face_templates``."""

    id: _Id
    """``f"{template_id}@{watchlist}"`` (``services.gallery.gallery_id``)."""
    person: _Id
    watchlist: _Name
    quality: float = Field(ge=0.0, le=1.0)


class LoggedAdd(_Strict):
    op: Literal["add"] = "add"
    entries: list[LoggedEntry] = Field(min_length=1, max_length=MAX_ENTRIES)


class LoggedRemove(_Strict):
    op: Literal["remove"] = "remove"
    entries: list[_Id] = Field(min_length=1, max_length=MAX_ENTRIES)


class LoggedRemovePerson(_Strict):
    op: Literal["remove_person"] = "remove_person"
    person: _Id


class LoggedThreshold(_Strict):
    """A watchlist's threshold in force; with ``mode``, its threshold mode changed too."""

    op: Literal["threshold"] = "threshold"
    watchlist: _Name
    threshold: float = Field(gt=0.0, le=2.0)
    mode: Literal["fixed", "auto"] | None = None
    target_fpir: float | None = Field(default=None, gt=0.0, lt=1.0)


class LoggedReload(_Strict):
    """Rebuild the gallery from the database (a server started, or a change too large to
    name entry by entry)."""

    op: Literal["reload"] = "reload"


LoggedChange = Annotated[
    LoggedAdd | LoggedRemove | LoggedRemovePerson | LoggedThreshold | LoggedReload,
    Field(discriminator="op"),
]
_CHANGE: TypeAdapter[LoggedChange] = TypeAdapter(LoggedChange)


def gallery_id(template_id: str, watchlist: str) -> str:
    """The id of a template's entry for one watchlist in the ``GalleryIndex``."""
    return f"{template_id}@{watchlist}"


def template_of(entry_id: str) -> str:
    """The template id of a ``GalleryIndex`` entry (the inverse of ``gallery_id``)."""
    return entry_id.partition("@")[0]


def parse(change: dict[str, object]) -> LoggedChange:
    """A logged change read back (``pydantic.ValidationError`` when the row is damaged)."""
    return _CHANGE.validate_python(change)


class GalleryReplica:
    """A server's gallery as the database's change log makes it, at :attr:`version`.

    Args:
        db: the database the log and the templates are in.
        gallery: the live gallery (changed in place; searches go on meanwhile).
        lock: serialises changes with the owner's own (``GalleryService``'s lock).
        threshold_for: ``(watchlist, stored threshold or None)`` -> the threshold in force.
        automatic: the watchlists in automatic mode (a rebuild keeps their threshold).
        on_mode: told a watchlist's logged mode change ``(name, mode, target)``.
        on_templates: told after templates were added or removed.
    """

    def __init__(
        self,
        db: Database,
        gallery: GalleryIndex,
        lock: threading.RLock,
        *,
        threshold_for: Callable[[str, float | None], float],
        automatic: Callable[[], list[str]],
        on_mode: Callable[[str, str, float | None], None],
        on_templates: Callable[[], None],
    ) -> None:
        self._db = db
        self._gallery = gallery
        self._lock = lock
        self._threshold_for = threshold_for
        self._automatic = automatic
        self._on_mode = on_mode
        self._on_templates = on_templates
        self._version = 0
        self._given: dict[str, npt.NDArray[np.float32]] = {}
        """While this server applies its own add: the embeddings it was given."""

    @property
    def version(self) -> int:
        """The logged version this gallery is at (0 before the first rebuild)."""
        return self._version

    def rebuild(self, version: int, *, keep_auto: bool) -> tuple[int, int]:
        """Make the gallery equal to the database, at ``version`` (logged before the read,
        so everything up to it is in what is read); automatic watchlists keep the threshold in
        force when ``keep_auto``. Returns (entries, people)."""
        kept = {n: self._gallery.threshold(n) for n in self._automatic()} if keep_auto else {}
        with self._db.session() as session:
            thresholds = people.watchlist_thresholds(session)
            rows = templates.on_watchlists(session)
        ids = [
            gallery_id(tid, watchlist)
            for tid, watchlist in zip(rows.template_ids, rows.watchlists, strict=True)
        ]
        # As a difference, never emptied in between: this server's cameras go on searching
        # while another server's start makes every server rebuild.
        gallery = self._gallery
        held = {t.id for t in gallery.templates()}
        for entry in held - set(ids):
            gallery.remove(entry)
        for name, threshold in thresholds.items():
            value = kept.get(name, self._threshold_for(name, threshold))
            if name not in gallery.thresholds() or gallery.threshold(name) != value:
                gallery.set_threshold(name, value)
        new = [i for i, entry in enumerate(ids) if entry not in held]
        if new:
            gallery.add_arrays(
                [ids[i] for i in new],
                [rows.person_ids[i] for i in new],
                [rows.watchlists[i] for i in new],
                rows.embeddings[new],
                rows.qualities[new],
            )
        self._version = version
        return len(ids), len(set(rows.person_ids))

    def catch_up(self) -> int:
        """Apply what the log holds past the version held here; returns the version now held."""
        with self._lock:
            self._catch_up_locked()
            return self._version

    def _catch_up_locked(self) -> None:
        changed = False
        while True:
            with self._db.session() as session:
                logged = gallery_log.since(session, self._version, READ_BATCH)
                newest = gallery_log.state(session) if not logged else None
            if not logged:
                if newest is not None and newest.version > self._version:
                    # Pruned past this version: what was logged is gone, the tables are not.
                    self.rebuild(newest.version, keep_auto=True)
                    changed = True
                break
            if logged[0].version != self._version + 1:
                self.rebuild(logged[0].version - 1, keep_auto=True)
                changed = True
            for row in logged:
                try:
                    change = parse(row.change)
                except ValidationError as exc:
                    logger.error(
                        "gallery: logged change %d is damaged (%s); rebuilding from the tables",
                        row.version,
                        describe_errors(exc),
                    )
                    change = LoggedReload()
                changed = self._apply_logged(change, row.version) or changed
                self._version = row.version
        if changed:
            self._on_templates()

    def _apply_logged(self, change: LoggedChange, version: int) -> bool:
        """Apply one logged change (under the lock); whether templates changed."""
        gallery = self._gallery
        if isinstance(change, LoggedAdd):
            new = [e for e in change.entries if e.id not in gallery]
            if not new:
                return False
            ids = {template_of(e.id) for e in new}
            found = {t: self._given[t] for t in ids if t in self._given}
            if len(found) < len(ids):
                with self._db.session() as session:
                    stored = templates.vectors(session, sorted(ids - found.keys()))
                found.update({t: v.embedding for t, v in stored.items()})
            new = [e for e in new if template_of(e.id) in found]  # deleted since: skipped
            if not new:
                return False
            gallery.add_arrays(
                [e.id for e in new],
                [e.person for e in new],
                [e.watchlist for e in new],
                np.stack([found[template_of(e.id)] for e in new]),
                np.array([e.quality for e in new], dtype=np.float32),
            )
            return True
        if isinstance(change, LoggedRemove):
            held = [entry for entry in change.entries if entry in gallery]
            for entry in held:
                gallery.remove(entry)
            return bool(held)
        if isinstance(change, LoggedRemovePerson):
            if not gallery.templates(person=change.person):
                return False
            gallery.remove_person(change.person)
            return True
        if isinstance(change, LoggedThreshold):
            if change.mode is not None:
                self._on_mode(change.watchlist, change.mode, change.target_fpir)
            if gallery.threshold(change.watchlist) != change.threshold:
                gallery.set_threshold(change.watchlist, change.threshold)
            return False
        self.rebuild(version, keep_auto=True)
        return True

    def log(
        self,
        change: LoggedChange,
        given: Mapping[str, npt.NDArray[np.float32]] | None = None,
    ) -> int:
        """Log ``change`` under the next version and bring this gallery up to it; returns its
        version. ``given``: the embeddings of the templates an
        add names, by template id, as this server has them (other servers read them from the
        database)."""
        with self._lock:
            with self._db.session() as session:
                version = gallery_log.append(session, change.model_dump())
            self._given = dict(given or {})
            try:
                self._catch_up_locked()
            finally:
                self._given = {}
            return version


class GalleryFollower:
    """A thread that brings a server's gallery up to the database's newest version.

    Args:
        catch_up: applies what the log holds past the version held here; returns that version.
        announce: publishes the version held here (retained) for the edges.
        db: where the log is pruned.
        bus: any message on the changes topic wakes the thread at once.
    """

    def __init__(
        self,
        catch_up: Callable[[], int],
        announce: Callable[[], None],
        db: Database,
        bus: Bus,
        *,
        poll_seconds: float = POLL_SECONDS,
        announce_seconds: float = ANNOUNCE_SECONDS,
    ) -> None:
        self._catch_up = catch_up
        self._announce = announce
        self._db = db
        self._bus = bus
        self.poll_seconds = poll_seconds
        self.announce_seconds = announce_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen for changes on the bus and start the thread."""
        self._bus.subscribe(GALLERY_CHANGES, self._on_change)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gallery-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a change being applied is finished first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        """Look at the log now."""
        self._wake.set()

    def _on_change(self, _message: Message) -> None:
        # A hint only: what is applied comes from the database, never from the message.
        self._wake.set()

    def _run(self) -> None:
        clock = _Clock()
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._catch_up()
                if clock.due("announce", self.announce_seconds):
                    self._announce()
                if clock.due("prune", PRUNE_SECONDS):
                    self._prune()
            except Exception:  # the database is away: the next round tries again
                logger.warning(
                    "gallery: could not read the change log; trying again", exc_info=True
                )

    def _prune(self) -> None:
        with self._db.session() as session:
            gone = gallery_log.prune(session, datetime.now(UTC) - KEEP, KEEP_NEWEST)
        if gone:
            logger.info("gallery: pruned %d logged changes older than %s", gone, KEEP)


class _Clock:
    """Whether a periodic job is due (monotonic)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        last = self._last.get(name)
        if last is not None and now - last < every:
            return False
        self._last[name] = now
        return last is not None
