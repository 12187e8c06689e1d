"""``AlertService``: the Amber Alert feature as the web layer and the server see it, made of
its rooms (``cases``, ``matches``, ``retention``) and the notifier's subscriptions.

It builds the parts from one set of arguments, registers the live-match action with the
sightings service, and hands each call to the part that owns it. Subscriptions belong to the
notifier (``oneeye.services.notify.subscriptions``); here they are tied to cases (a case's
subscription needs the case active) and their errors told as the cases API tells errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from oneeye.config import AlertSettings, NotifySettings
from oneeye.services.actions import announced_first
from oneeye.services.alerts.access import CaseScope
from oneeye.services.alerts.cases import CaseService, PhotoCheck
from oneeye.services.alerts.errors import AlertError, SubscriptionNotFoundError
from oneeye.services.alerts.matches import WATCHLIST, MatchService, Notifier
from oneeye.services.alerts.retention import SWEEP_EVERY, CaseRetention, PurgeReport
from oneeye.services.alerts.words import likeness
from oneeye.services.auth import Principal
from oneeye.services.enrolment import EnrolmentService
from oneeye.services.events import EventHub
from oneeye.services.gallery import GalleryService
from oneeye.services.notify.base import AddressError
from oneeye.services.notify.subscriptions import (
    CheckedSubscription,
    SubscriptionInfo,
    SubscriptionService,
    Told,
    UnknownSubscriptionError,
)
from oneeye.services.outbound import OutboundGuard
from oneeye.services.sightings import SightingService, StoredSighting
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos.cases import CaseInfo, MatchInfo
from oneeye.vision.engine import Deadline


class AlertService:
    """Cases, their matches and subscriptions, the live-match action and the sweeps."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        enrolment: EnrolmentService,
        gallery: GalleryService,
        events: EventHub,
        sightings: SightingService,
        notifier: Notifier,
        settings: AlertSettings,
        *,
        cooldown: float,
        public_url: str,
        sweep_every: float = SWEEP_EVERY,
        outbound: OutboundGuard | None = None,
        notify: NotifySettings | None = None,
    ) -> None:
        """Build the parts and register the live-match action with ``sightings``.

        Args:
            db: the database.
            photos: where case photos are kept (and snapshots deleted from).
            enrolment: checks photos, adds the case's person; its ``auth`` audits.
            gallery: the live gallery the camera workers search.
            events: dashboard events.
            sightings: the sightings consumer; every new sighting is checked against cases.
            notifier: woken after outbox rows are written (anything with ``wake()``).
            settings: expiry, retention and retro-search settings.
            cooldown: seconds; one notified match per (case, camera) within it.
            public_url: the server's address, for the case links in notifications.
            sweep_every: seconds between expiry checks of the background loop.
            outbound: refuses webhook URLs that reach internal addresses when subscribed
                (default: no internal host allowed).
            notify: the notifier's settings: a subscription to a channel they leave unable
                to send (email without an SMTP server, SMS without a gateway) is refused;
                ``None``: not checked (a notifier not built from settings, as in tests).
        """
        auth = enrolment.auth
        self.enrolment = enrolment
        self.settings = settings
        self.matcher = MatchService(
            db,
            gallery,
            events,
            notifier,
            cooldown=cooldown,
            public_url=public_url,
            retro_hours=settings.retro_hours,
        )
        self.lifecycle = CaseService(
            db, photos, enrolment, gallery, events, auth, self.matcher, settings
        )
        self.retention = CaseRetention(
            db, photos, gallery, auth, self.lifecycle, settings, sweep_every=sweep_every
        )
        self.subscribers = SubscriptionService(
            db, auth, outbound if outbound is not None else OutboundGuard(), notify
        )
        sightings.register_action(WATCHLIST, announced_first(self.matcher.on_sighting))

    # lifecycle of the service ---------------------------------------------------------------

    def start(self) -> None:
        """Start the loop that expires cases."""
        self.retention.start()

    def stop(self) -> None:
        """Stop the loop (within one sweep)."""
        self.retention.stop()

    # cases ----------------------------------------------------------------------------------

    def check_photo(
        self, data: bytes, filename: str = "", *, deadline: Deadline | None = None
    ) -> PhotoCheck:
        """See ``CaseService.check_photo``."""
        return self.lifecycle.check_photo(data, filename, deadline=deadline)

    def create_case(
        self,
        name: str,
        description: str,
        contact: str,
        photos: Sequence[tuple[bytes, str]],
        *,
        actor: str,
        filed_by: str | None = None,
        approved: bool = False,
        expires_at: datetime | None = None,
        deadline: Deadline | None = None,
        role: str = "",
        address: str = "",
        notify_to: Sequence[tuple[str, str]] = (),
    ) -> CaseInfo:
        """See ``CaseService.create_case``; ``notify_to``: ``(channel, address)`` pairs (the
        reporter's email, phone) subscribed to the case as it is filed, in its transaction.

        Raises:
            AlertError: besides ``CaseService.create_case``'s: a channel not set up on this
                server, or an address that does not fit it (checked before any photo, and
                nothing is stored).
        """
        subscribe = [self._checked(channel, to) for channel, to in notify_to]
        return self.lifecycle.create_case(
            name,
            description,
            contact,
            photos,
            actor=actor,
            filed_by=filed_by,
            approved=approved,
            expires_at=expires_at,
            deadline=deadline,
            role=role,
            address=address,
            subscribe=subscribe,
        )

    def case(self, case_id: str) -> CaseInfo:
        """See ``CaseService.case``."""
        return self.lifecycle.case(case_id)

    def cases(
        self,
        status: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        filed_by: Principal | None = None,
    ) -> list[CaseInfo]:
        """See ``CaseService.cases``."""
        return self.lifecycle.cases(status, limit=limit, offset=offset, filed_by=filed_by)

    def filed_by(self, case_id: str, principal: Principal) -> bool:
        """See ``CaseService.filed_by``."""
        return self.lifecycle.filed_by(case_id, principal)

    def scope_of(self, principal: Principal) -> CaseScope | None:
        """See ``CaseService.scope_of``."""
        return self.lifecycle.scope_of(principal)

    def photo_visible(self, principal: Principal, key: str) -> bool:
        """See ``CaseService.photo_visible``."""
        return self.lifecycle.photo_visible(principal, key)

    def approve(self, case_id: str, *, actor: str, role: str = "", address: str = "") -> CaseInfo:
        """See ``CaseService.approve``."""
        return self.lifecycle.approve(case_id, actor=actor, role=role, address=address)

    def resolve(self, case_id: str, *, actor: str) -> CaseInfo:
        """See ``CaseService.resolve``."""
        return self.lifecycle.resolve(case_id, actor=actor)

    def expire_due(self, now: datetime | None = None) -> list[str]:
        """See ``CaseService.expire_due``."""
        return self.lifecycle.expire_due(now)

    # matches --------------------------------------------------------------------------------

    def matches(self, case_id: str) -> list[MatchInfo]:
        """See ``MatchService.matches``."""
        return self.matcher.matches(case_id)

    def likeness(self, distance: float) -> str:
        """A match's face distance in plain words (``words.likeness``, against the case
        watchlist's threshold)."""
        return likeness(distance, self.matcher.threshold())

    def on_sighting(self, sighting: StoredSighting) -> None:
        """See ``MatchService.on_sighting``."""
        self.matcher.on_sighting(sighting)

    def retro_search(self, case_id: str, now: datetime | None = None) -> list[MatchInfo]:
        """See ``MatchService.retro_search``."""
        return self.matcher.retro_search(case_id, now)

    # retention ------------------------------------------------------------------------------

    def purge(self, now: datetime | None = None) -> PurgeReport:
        """See ``CaseRetention.purge``."""
        return self.retention.purge(now)

    # subscriptions --------------------------------------------------------------------------

    def add_subscription(
        self,
        channel: str,
        address: str,
        *,
        actor: str,
        case_id: str | None = None,
        secret: str | None = None,
    ) -> SubscriptionInfo:
        """Subscribe an address to one case's sightings (``case_id``, which must be active)
        or every case's. A signed channel (webhook) gets ``secret`` as its signing key, or a
        generated one; the returned info carries it this once.

        Raises:
            AlertError: the channel, address or secret does not fit.
            CaseNotFoundError, CaseClosedError: the case is unknown or no longer active.
        """
        checked = self._checked(channel, address, secret)
        if case_id is not None:
            self.lifecycle.require_active(case_id)
        return self.subscribers.add(checked, actor=actor, case_id=case_id)

    def _checked(
        self, channel: str, address: str, secret: str | None = None
    ) -> CheckedSubscription:
        """``SubscriptionService.check``, its errors told as the cases API tells errors."""
        try:
            return self.subscribers.check(channel, address, secret)
        except AddressError as exc:
            raise AlertError(str(exc)) from None

    def channels(self) -> tuple[str, ...]:
        """The channels a subscription may use on this server (those set up to send)."""
        return self.subscribers.channels()

    def subscription(self, subscription_id: int) -> SubscriptionInfo:
        """One subscription (without its secret); ``SubscriptionNotFoundError`` if none."""
        try:
            return self.subscribers.get(subscription_id)
        except UnknownSubscriptionError as exc:
            raise SubscriptionNotFoundError(str(exc)) from None

    def subscriptions(self, case_id: str | None = None) -> list[SubscriptionInfo]:
        """A case's subscriptions (``case_id``), or the all-cases ones (``None``)."""
        if case_id is not None:
            self.lifecycle.require(case_id)
        return self.subscribers.of_case(case_id)

    def told(self, case_id: str) -> list[Told]:
        """Who is told of a case's sightings (its subscriptions and the all-cases ones) and
        what each was told so far: sent, waiting, retrying, given up."""
        self.lifecycle.require(case_id)
        return self.subscribers.told(case_id)

    def delete_subscription(self, subscription_id: int, *, actor: str) -> None:
        """Remove a subscription (its sent and pending notifications stay, unlinked)."""
        try:
            self.subscribers.delete(subscription_id, actor=actor)
        except UnknownSubscriptionError as exc:
            raise SubscriptionNotFoundError(str(exc)) from None
