"""The gallery's change log as every central server reads it: the typed changes, and the
thread that keeps a server's gallery at the database's newest version.

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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from oneeye.bus.base import GALLERY_CHANGES, Bus, Message
from oneeye.store.db import Database
from oneeye.store.repos import gallery_log

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


def parse(change: dict[str, object]) -> LoggedChange:
    """A logged change read back (``pydantic.ValidationError`` when the row is damaged)."""
    return _CHANGE.validate_python(change)


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
