"""The live gallery: rebuilt from the database at start, changed with every enrolment, and
announced on the bus. OWNER: helper B (stub contract; replace the bodies)."""

from __future__ import annotations

from oneeye.bus.base import Bus
from oneeye.gallery import GalleryIndex
from oneeye.store.db import Database


class GalleryService:
    """Keeps ``gallery`` equal to the templates in the database."""

    def __init__(self, db: Database, gallery: GalleryIndex, bus: Bus) -> None:
        self.db = db
        self.gallery = gallery
        self.bus = bus

    def load(self) -> int:
        """Rebuild the gallery from the database; returns the number of templates."""
        return 0
