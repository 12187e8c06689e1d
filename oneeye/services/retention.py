"""Retention: every kind of stored data is deleted when its period (``RetentionSettings``)
has passed, by one background thread that sweeps every ``sweep_seconds``.

What each sweep deletes, oldest first and ``batch_size`` rows per transaction (so the camera
workers and the web server are never kept waiting on the database for long):

- sightings of unknown faces after ``unknown_sightings_hours``, of enrolled people after
  ``known_sightings_days``, each with its snapshot in the photo store. A sighting that an Amber
  Alert case still holds as a match stays until that case is purged (``alerts``'
  ``retention_days`` after it closes), then goes at the next sweep;
- stored dashboard events (the ``/ws?since=`` replay) after ``events_hours``;
- sent and failed notification rows after ``notifications_days``;
- audit rows after ``audit_days``;
- and, first, what the Amber Alert service's own retention allows it to delete (closed cases,
  unknown faces' embeddings), so that all of it runs on this one schedule.

A snapshot is deleted from the photo store before its row: a sweep that fails half way leaves a
row whose snapshot is gone (the next sweep deletes the row), never a photo nobody can find.
Only keys under ``snapshots/`` are deleted as snapshots, whatever a row names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from oneeye.config import RetentionSettings
from oneeye.services.auth import AuthService
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import audit, events, notifications, sightings

logger = logging.getLogger(__name__)

SNAPSHOT_PREFIX = "snapshots/"
"""Sighting snapshots live under this prefix; a row naming any other key never deletes it."""


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one sweep deleted."""

    unknown_sightings: int = 0
    known_sightings: int = 0
    snapshots: int = 0
    events: int = 0
    notifications: int = 0
    audit: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name (for the audit row and the log)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(v for k, v in self.as_dict().items() if k != "snapshots")


def snapshot_keys(keys: list[str | None]) -> list[str]:
    """The keys among ``keys`` that are sighting snapshots (see ``SNAPSHOT_PREFIX``)."""
    return [k for k in keys if k is not None and k.startswith(SNAPSHOT_PREFIX)]


class RetentionService:
    """Deletes stored data past its retention period, on a thread of its own."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        auth: AuthService,
        settings: RetentionSettings,
        *,
        before: Callable[[datetime], object] | None = None,
    ) -> None:
        """Set up the service (nothing runs until ``start``).

        Args:
            db: the database.
            photos: where snapshots are deleted from.
            auth: writes the sweep's audit row (counts only).
            settings: the periods, the sweep interval and the batch size.
            before: run first in every sweep with its ``now`` (the Amber Alert service's
                ``purge``: closed cases and unknown faces' embeddings).
        """
        self.db = db
        self.photos = photos
        self.auth = auth
        self.settings = settings
        self.before = before
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sweeping = threading.Lock()

    # lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start sweeping every ``sweep_seconds``, the first time one interval from now (a
        server that has just started has the camera workers and the gallery to load)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sweeping (a sweep under way ends after its current batch)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30.0)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sweep_seconds):
            try:
                self.sweep()
            except Exception:  # one failed sweep is logged; the next one tries again
                logger.exception("retention: a sweep failed")

    # the sweep --------------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> RetentionReport:
        """Delete everything older than its retention period; returns the counts.

        Args:
            now: the time the periods count back from (the clock when ``None``).
        """
        now = now or datetime.now(UTC)
        s = self.settings
        with self._sweeping:  # a sweep from the thread and one from a caller never overlap
            if self.before is not None:
                self.before(now)
            # A sighting a case not yet purged holds stays: the case's retention decides.
            unknown, snaps_unknown = self._sightings(
                known=False, before=now - timedelta(hours=s.unknown_sightings_hours)
            )
            known, snaps_known = self._sightings(
                known=True, before=now - timedelta(days=s.known_sightings_days)
            )
            events_cutoff = now - timedelta(hours=s.events_hours)
            notifications_cutoff = now - timedelta(days=s.notifications_days)
            audit_cutoff = now - timedelta(days=s.audit_days)
            deleted_events = self._batches(
                lambda session, limit: events.delete_older(session, events_cutoff, limit)
            )
            deleted_notifications = self._batches(
                lambda session, limit: notifications.delete_finished(
                    session, notifications_cutoff, limit
                )
            )
            deleted_audit = self._batches(
                lambda session, limit: audit.delete_older(session, audit_cutoff, limit)
            )
        report = RetentionReport(
            unknown_sightings=unknown,
            known_sightings=known,
            snapshots=snaps_unknown + snaps_known,
            events=deleted_events,
            notifications=deleted_notifications,
            audit=deleted_audit,
        )
        if report.total:
            counts = report.as_dict()
            logger.info(
                "retention: deleted %s", ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            )
            self.auth.audit("system", "retention.sweep", "", counts)
        return report

    def _stopping(self) -> bool:
        return self._stop.is_set() and threading.current_thread() is self._thread

    def _sightings(self, *, known: bool, before: datetime) -> tuple[int, int]:
        """Delete the expired sightings of enrolled people (``known``) or unknown faces
        last seen before ``before``, batch by batch, each batch's snapshots first; returns
        (rows, snapshots) deleted."""
        rows = snapshots = 0
        batch = self.settings.batch_size
        while not self._stopping():
            with self.db.session() as session:
                found = sightings.expired(session, known=known, before=before, limit=batch)
            if not found:
                break
            snapshots += self.photos.delete_many(snapshot_keys([key for _, key in found]))
            ids = [ident for ident, _ in found]
            with self.db.session() as session:
                sightings.delete_expired(session, ids, known=known, before=before)
            rows += len(ids)
            if len(found) < batch:
                break
        return rows, snapshots

    def _batches(self, delete_some: Callable[[Session, int], int]) -> int:
        """Run ``delete_some(session, batch_size)`` one transaction at a time until it
        deletes fewer than a batch (or the service stops); returns how many it deleted."""
        deleted = 0
        batch = self.settings.batch_size
        while not self._stopping():
            with self.db.session() as session:
                count = delete_some(session, batch)
            deleted += count
            if count < batch:
                break
        return deleted
