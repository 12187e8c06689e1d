"""What cases leave behind, and when it goes: expiry of cases due, and the purge of closed
cases' data.

A background loop expires cases whose time has passed (every ``sweep_every`` seconds). After
``retention_days`` a closed case's photos, templates, person and the snapshots of its sightings
are deleted (the case row stays as the record); embeddings of unknown faces are deleted after
``unknown_retention_hours``. ``purge`` runs in every sweep of the retention service
(``oneeye.services.retention``), so that all deletion runs on one schedule.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oneeye.config import AlertSettings
from oneeye.services.alerts.cases import CaseService, delete_photos
from oneeye.services.auth import AuthService
from oneeye.services.gallery import GalleryService
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import cases as repo

logger = logging.getLogger(__name__)

SWEEP_EVERY = 2.0
"""Seconds between two expiry checks."""


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one retention sweep deleted."""

    cases: int
    photos: int
    snapshots: int
    embeddings: int


class CaseRetention:
    """Expires cases on a background loop and purges closed cases' data when asked."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        gallery: GalleryService,
        auth: AuthService,
        cases: CaseService,
        settings: AlertSettings,
        *,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        """Purge from ``db``, ``photos`` and the live ``gallery``, audited through ``auth``;
        expire through ``cases`` every ``sweep_every`` seconds; periods from ``settings``."""
        self.db = db
        self.photos = photos
        self.gallery = gallery
        self.auth = auth
        self.cases = cases
        self.settings = settings
        self.sweep_every = sweep_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop that expires cases (``purge`` runs on the retention service's
        schedule, ``oneeye.services.retention``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (within one sweep)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.cases.expire_due()
            except Exception:  # one failed sweep is logged; the next one tries again
                logger.exception("alerts: a sweep failed")
            self._stop.wait(self.sweep_every)

    def purge(self, now: datetime | None = None) -> PurgeReport:
        """Delete what retention no longer allows: closed cases' photos, templates, person
        and snapshots after ``retention_days``; unknown faces' embeddings after
        ``unknown_retention_hours``."""
        now = now or datetime.now(UTC)
        closed_before = now - timedelta(days=self.settings.retention_days)
        with self.db.session() as session:
            due = repo.due_to_purge(session, closed_before)
        photos = snapshots = 0
        for case_id in due:
            deleted_photos, deleted_snapshots = self._purge_case(case_id, now)
            photos += deleted_photos
            snapshots += deleted_snapshots
        forget_before = now - timedelta(hours=self.settings.unknown_retention_hours)
        with self.db.session() as session:
            embeddings = repo.forget_embeddings(session, forget_before)
        report = PurgeReport(len(due), photos, snapshots, embeddings)
        if due or embeddings:
            logger.info(
                "retention: %d closed cases purged (%d photos, %d snapshots), %d unknown "
                "faces' embeddings deleted",
                *(report.cases, report.photos, report.snapshots, report.embeddings),
            )
        return report

    def _purge_case(self, case_id: str, now: datetime) -> tuple[int, int]:
        with self.db.session() as session:
            purged = repo.purge(session, case_id, now)
        if purged is None:
            return 0, 0
        if purged.person_id is not None:
            self.gallery.remove_person(purged.person_id)
        photos = delete_photos(self.photos, purged.photo_keys)
        snapshots = delete_photos(self.photos, purged.snapshot_keys)
        self.auth.audit(
            "system",
            "case.purge",
            case_id,
            {"photos": len(purged.photo_keys), "snapshots": len(purged.snapshot_keys)},
        )
        logger.info("case %s purged: %d photos, %d snapshots deleted", case_id, photos, snapshots)
        return photos, snapshots
