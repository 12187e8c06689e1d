"""Sightings from the bus: stored first, then acted on. OWNER: helper C (stub contract)."""

from __future__ import annotations

from oneeye.bus.base import Bus
from oneeye.services.auth import AuthService
from oneeye.services.customers import CustomerDirectory
from oneeye.services.events import EventHub
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore


class SightingService:
    """Consumes camera sightings and statuses from the bus."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        bus: Bus,
        events: EventHub,
        directory: CustomerDirectory,
        auth: AuthService,
    ) -> None:
        self.db = db

    def start(self) -> None:
        """Subscribe to every camera's sightings and status."""

    def stop(self) -> None:
        """Stop consuming."""
