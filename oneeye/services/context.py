"""Everything the server's routes and workers share, built once by ``oneeye.app``."""

from __future__ import annotations

from dataclasses import dataclass

from oneeye.bus.base import Bus
from oneeye.config import ServeSettings
from oneeye.gallery import GalleryIndex
from oneeye.services.alerts import AlertService
from oneeye.services.auth import AuthService
from oneeye.services.cameras import CameraManager
from oneeye.services.customers import CustomerDirectory
from oneeye.services.edge.registry import CameraRegistry
from oneeye.services.enrolment import EnrolmentService
from oneeye.services.events import EventHub
from oneeye.services.feedback import FeedbackService
from oneeye.services.gallery import GalleryService
from oneeye.services.library import FaceLibrary
from oneeye.services.notify.outbox import NotifyService
from oneeye.services.privacy import PrivacyService
from oneeye.services.retention import RetentionService
from oneeye.services.sighting_queries import SightingQueries
from oneeye.services.sightings import SightingService
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.vision.engine import FaceEngine


@dataclass(slots=True)
class Services:
    """The server's parts, in the order ``oneeye.app`` builds them."""

    settings: ServeSettings
    db: Database
    photos: PhotoStore
    engine: FaceEngine
    """The cameras' face engine."""
    gallery: GalleryIndex
    bus: Bus
    auth: AuthService
    events: EventHub
    directory: CustomerDirectory
    gallery_service: GalleryService
    enrolment: EnrolmentService
    sightings: SightingService
    sighting_queries: SightingQueries
    """The stored sightings, read (the sightings API, the history)."""
    notifier: NotifyService
    alerts: AlertService
    cameras: CameraManager
    privacy: PrivacyService
    retention: RetentionService
    registry: CameraRegistry
    """Which cameras are the servers' and which each edge's (the sender checks)."""
    library: FaceLibrary
    """Template thumbnails, and the unknown faces grouped by person."""
    feedback: FeedbackService
    """Verdicts on matches and enrolment from sightings."""
