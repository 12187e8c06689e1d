"""Camera workers inside ``serve``. OWNER: helper C (stub contract; replace the bodies)."""

from __future__ import annotations

from oneeye.bus.base import Bus
from oneeye.gallery import GalleryIndex
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.vision.engine import FaceEngine


class CameraManager:
    """Runs one worker thread per enabled camera in the database."""

    def __init__(
        self, db: Database, engine: FaceEngine, gallery: GalleryIndex, bus: Bus, photos: PhotoStore
    ) -> None:
        self.db = db

    def start(self) -> None:
        """Start a worker for every enabled camera."""

    def stop(self) -> None:
        """Stop every worker."""
