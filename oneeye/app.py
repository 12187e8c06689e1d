"""Builds everything ``oneeye serve`` runs, in a fixed order, and stops it in reverse.

Order: settings -> database (migrated) -> photo store -> face engines (the cameras', and the
uploads' own) -> gallery (rebuilt from the database) -> bus -> auth (first admin) -> dashboard
events -> customer directory -> enrolment -> camera registry (whose camera is whose) ->
sightings consumer (and its sweeper of unfinished actions) -> notifier (the outbox sender) ->
Amber Alert cases -> camera workers -> erasure and export -> retention sweeps -> web
application. ``stop`` runs the list backwards, except that the bus stops taking messages in,
and then the sightings consumer stops, before the services the consumer's actions use: a
message is either handled in full or left with the broker.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from fastapi import FastAPI

from oneeye.bus import BusOptions
from oneeye.bus import make_bus as bus_from_url
from oneeye.bus.base import Bus
from oneeye.bus.messages import PayloadLimits, PayloadReader
from oneeye.config import ServeSettings
from oneeye.gallery import GalleryIndex
from oneeye.services.alerts import AlertService
from oneeye.services.auth import AuthService
from oneeye.services.cameras import CameraManager
from oneeye.services.context import Services
from oneeye.services.customers import make_directory
from oneeye.services.edge.monitor import EdgeMonitor
from oneeye.services.edge.registry import CameraRegistry
from oneeye.services.enrolment import EnrolmentService
from oneeye.services.events import EventHub
from oneeye.services.feedback import FeedbackService
from oneeye.services.gallery import GalleryService
from oneeye.services.library import FaceLibrary
from oneeye.services.metrics import ServerCollector
from oneeye.services.notify.links import load_secret_key
from oneeye.services.notify.outbox import NotifyService
from oneeye.services.outbound import OutboundGuard
from oneeye.services.privacy import PrivacyService
from oneeye.services.retention import RetentionService
from oneeye.services.sighting_queries import SightingQueries
from oneeye.services.sightings import SightingService
from oneeye.store.db import Database
from oneeye.store.photo_stores import make_photo_store
from oneeye.vision.engine import FaceEngine
from oneeye.web.app import create_app

logger = logging.getLogger(__name__)


def make_bus(settings: ServeSettings, role: str = "serve") -> Bus:
    """The bus ``settings.bus`` names (``oneeye.bus.make_bus``: in-process, or an MQTT
    broker), as this server (``role``) connects to it."""
    return bus_from_url(
        settings.bus,
        BusOptions(
            mqtt=settings.mqtt,
            identity_file=settings.data_dir / f"mqtt-client-id-{role}",
            identity_stem=f"oneeye-{role}-{socket.gethostname()}",
            share_group=settings.mqtt.share_group if role == "serve" else None,
        ),
    )


class OneEyeApp:
    """The all-in-one server's parts; ``start`` and ``stop`` them in order."""

    def __init__(
        self,
        settings: ServeSettings,
        *,
        engine: FaceEngine | None = None,
        photo_engine: FaceEngine | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        """Build every part (nothing runs yet).

        Args:
            settings: the server's settings.
            engine: the cameras' face engine (tests pass one to save loading the models
                again).
            photo_engine: the face engine for uploaded photos (enrolment, face search, case
                photos), kept apart so that an upload never holds the lock the cameras encode
                under. ``None``: a second engine of its own, or, when only ``engine`` is given
                (tests), that one shared.
            announce: called once with ``"name:password"`` when the first admin is created;
                the CLI prints it.
        """
        self.settings = settings
        db = Database(settings.resolved_database_url())
        db.migrate()
        photos = make_photo_store(settings)
        if photo_engine is None:
            photo_engine = engine if engine is not None else FaceEngine(settings.engine)
        engine = engine if engine is not None else FaceEngine(settings.engine)
        gallery = GalleryIndex.from_settings(settings.gallery)
        bus = make_bus(settings)
        auth = AuthService.from_settings(db, settings.server)
        first_admin = auth.ensure_admin()
        if first_admin is not None:
            logger.warning("created the first admin; its one-time password is printed once")
            if announce is not None:
                announce(first_admin)
        events = EventHub(db, settings.server.event_history, settings.limits.ws_queue)
        outbound = OutboundGuard.from_settings(settings.outbound)
        directory = make_directory(settings.customers, db, outbound)
        gallery_service = GalleryService(db, gallery, bus)
        enrolment = EnrolmentService(
            db,
            photos,
            photo_engine,
            gallery_service,
            auth,
            settings.server.max_upload_bytes,
            settings.limits.photo_max_side,
        )
        reader = PayloadReader(
            PayloadLimits(
                max_future_skew=settings.payloads.max_future_skew,
                max_sighting_age=settings.payloads.max_sighting_age,
            )
        )
        registry = CameraRegistry(db)
        sightings = SightingService(db, photos, bus, events, directory, auth, reader, registry)
        notifier = NotifyService(
            db,
            photos,
            settings.notify,
            settings.public_url,
            load_secret_key(settings),
            events=events,
            outbound=outbound,
        )
        alerts = AlertService(
            db,
            photos,
            enrolment,
            gallery_service,
            events,
            sightings,
            notifier,
            settings.alerts,
            cooldown=settings.notify.cooldown,
            public_url=settings.public_url,
            outbound=outbound,
            notify=settings.notify,
        )
        cameras = CameraManager(db, engine, gallery, bus, photos, settings.video, registry)
        privacy = PrivacyService(db, photos, gallery_service, directory, auth)
        library = FaceLibrary(
            db,
            photos,
            gallery,
            enrolment,
            directory,
            settings.alerts.unknown_retention_hours,
        )
        retention = RetentionService(db, photos, auth, settings.retention, before=alerts.purge)
        feedback = FeedbackService(db, photos, events, enrolment, auth)
        self.services = Services(
            settings=settings,
            db=db,
            photos=photos,
            engine=engine,
            gallery=gallery,
            bus=bus,
            auth=auth,
            events=events,
            directory=directory,
            gallery_service=gallery_service,
            enrolment=enrolment,
            sightings=sightings,
            sighting_queries=SightingQueries(db),
            notifier=notifier,
            alerts=alerts,
            cameras=cameras,
            privacy=privacy,
            retention=retention,
            registry=registry,
            library=library,
            feedback=feedback,
        )
        self.edge_monitor = EdgeMonitor(bus, reader, registry)
        """Turns an edge's last will (it died) into offline statuses for its cameras."""
        self.web: FastAPI = create_app(self.services)
        self.web.state.metrics = ServerCollector(self.services, self.edge_monitor.edges)
        self._started = False

    def start(self) -> None:
        """Load the gallery, start the bus, the sightings consumer and the camera workers."""
        s = self.services
        count = s.gallery_service.load()
        logger.info("gallery loaded: %d templates", count)
        s.gallery_service.start_following()
        # The consumers subscribe before the bus connects: a resumed broker session delivers
        # what it queued while this server was away at once, and a message for a
        # subscription with no handler yet would be acknowledged and lost.
        self.edge_monitor.start()
        s.sightings.start()
        s.bus.start()
        s.notifier.start()
        s.alerts.start()
        s.cameras.start()
        s.retention.start()
        self._started = True

    def stop(self) -> None:
        """Stop in reverse order; safe to call twice."""
        if not self._started:
            return
        s = self.services
        s.retention.stop()
        s.cameras.stop()
        # What the cameras published is handled before its consumers stop: nothing is lost.
        if not s.bus.drain(timeout=10.0):
            logger.warning("stopping with bus messages not yet handled (waited 10 s)")
        # Then no more is taken in while the consumers are still there to act on it: a
        # sighting arriving from now on stays with the broker (unacknowledged) for the next
        # start or another server, never acknowledged and dropped by a stopped consumer.
        if not s.bus.close_intake(timeout=10.0):
            logger.warning("stopping with a bus message still being handled (waited 10 s)")
        # The sightings consumer (and its sweeper of unfinished actions) before the services
        # its actions use.
        s.sightings.stop()
        s.alerts.stop()
        s.notifier.stop()
        s.gallery_service.close()
        s.bus.stop()
        s.db.close()
        self._started = False
