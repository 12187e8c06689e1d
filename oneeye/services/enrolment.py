"""People, their photos and templates. OWNER: helper B (stub contract; replace the bodies)."""

from __future__ import annotations

from oneeye.services.auth import AuthService
from oneeye.services.gallery import GalleryService
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.vision.engine import FaceEngine


class EnrolmentService:
    """Enrols photos: exactly one usable face, stored photo, template, live gallery."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        engine: FaceEngine,
        gallery: GalleryService,
        auth: AuthService,
        max_upload_bytes: int,
    ) -> None:
        self.db = db
