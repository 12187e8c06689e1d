"""Who is told about a case's sightings, and how: subscriptions, and the outbox rows a
sighting gives them.

A subscription is a channel (one of ``senders.CHANNELS``) and an address that channel's
sender checked, for one case or (``case_id`` ``None``) for every case. A channel whose
messages are signed (webhooks) gets a secret, given or generated, shown once when it is made.
``enqueue`` writes one pending outbox row per subscription in the caller's transaction, so a
match and the notifications it gives commit together; the outbox worker (``outbox``) sends
them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from oneeye.config import NotifySettings
from oneeye.errors import NotFound
from oneeye.services.auth import AuthService
from oneeye.services.notify.base import AddressError, AlertPayload
from oneeye.services.notify.senders import (
    CHANNELS,
    check_address,
    check_configured,
    configured_channels,
    mask_address,
    sender_class,
)
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from oneeye.store.repos import notifications, subscriptions
from oneeye.store.repos.notifications import Tally
from oneeye.store.repos.subscriptions import SubscriptionInfo, Target

__all__ = [
    "CheckedSubscription",
    "SubscriptionInfo",
    "SubscriptionService",
    "Tally",
    "Target",
    "Told",
    "UnknownSubscriptionError",
    "audit_added",
    "enqueue",
    "outside_cooldown",
    "store",
    "targets",
]


class UnknownSubscriptionError(NotFound):
    """No subscription has this id."""


@dataclass(frozen=True, slots=True)
class CheckedSubscription:
    """A subscription's channel, address and secret, checked and cleaned (``check``)."""

    channel: str
    address: str
    secret: str | None


@dataclass(frozen=True, slots=True)
class Told:
    """Who was told what about one case: a subscription (the case's own, or one to every
    case), its address as a page may show it, and its notifications about the case."""

    subscription: SubscriptionInfo
    masked_address: str
    """``a***@example.org``, ``+44*******958``, a URL's host."""
    every_case: bool
    tally: Tally


def targets(session: Session, case_id: str) -> list[Target]:
    """The active subscriptions a match of ``case_id`` notifies: the case's and the
    all-cases ones, oldest first."""
    return subscriptions.targets(session, case_id)


def outside_cooldown(
    session: Session,
    case_id: str,
    camera_id: str,
    seen_at: datetime,
    to: Sequence[Target],
    cooldown: float,
) -> list[Target]:
    """The subscriptions in ``to`` that a match of ``case_id`` on ``camera_id`` seen at
    ``seen_at`` is to be sent to: those not told of another match of this case on this camera
    within ``cooldown`` seconds of it. The cooldown is each subscriber's own: it starts only
    for one who was told (a row pending or sent), so one who subscribes later gets the next
    sighting, and a match nobody was told of holds nobody back."""
    if cooldown <= 0 or not to:
        return list(to)
    told = notifications.cooling(session, case_id, camera_id, seen_at, timedelta(seconds=cooldown))
    return [target for target in to if target.id not in told]


def enqueue(session: Session, case_id: str, payload: AlertPayload, to: Sequence[Target]) -> int:
    """One pending outbox row per subscription in ``to``, in the caller's transaction
    (skipping one this sighting has already given: the same sighting can match two cases for
    an all-cases subscriber). Returns how many rows were written."""
    taken = notifications.subscriptions_notified(session, payload.sighting_id)
    now = datetime.now(UTC)
    stored = payload.to_json()
    added = 0
    for target in to:
        if target.id in taken:
            continue
        notifications.add_pending(
            session,
            case_id=case_id,
            sighting_id=payload.sighting_id,
            subscription_id=target.id,
            channel=target.channel,
            address=target.address,
            payload=stored,
            now=now,
        )
        added += 1
    return added


def store(
    session: Session, checked: CheckedSubscription, *, actor: str, case_id: str | None = None
) -> SubscriptionInfo:
    """Store a checked subscription in the caller's transaction (filing a case subscribes its
    reporter in the case's own); the returned info carries the secret this once. Not audited:
    the caller audits once it committed (``audit_added``)."""
    stored = subscriptions.add(
        session,
        case_id=case_id,
        channel=checked.channel,
        address=checked.address,
        secret=checked.secret,
        created_by=actor,
        now=datetime.now(UTC),
    )
    return replace(stored, secret=checked.secret)


def audit_added(auth: AuthService, info: SubscriptionInfo, *, actor: str) -> None:
    """Write the audit row of a new subscription (once its transaction committed)."""
    auth.audit(
        actor,
        "subscription.create",
        str(info.id),
        {"case": info.case_id, "channel": info.channel},  # no address: the log keeps ids only
    )


class SubscriptionService:
    """Makes, lists and removes subscriptions (each change audited, by id only)."""

    def __init__(
        self,
        db: Database,
        auth: AuthService,
        outbound: OutboundGuard,
        notify: NotifySettings | None = None,
    ) -> None:
        """Store in ``db``, audit through ``auth``; ``outbound`` refuses URLs that reach
        internal addresses when they are subscribed; ``notify``: the notifier's settings, a
        channel they leave unable to send is refused (``None``: not checked, for a service
        whose notifier is not built from settings)."""
        self.db = db
        self.auth = auth
        self.outbound = outbound
        self.notify = notify

    def channels(self) -> tuple[str, ...]:
        """The channels a subscription may use on this server (those set up to send)."""
        if self.notify is None:
            return CHANNELS
        return configured_channels(self.notify)

    def check(self, channel: str, address: str, secret: str | None = None) -> CheckedSubscription:
        """``channel`` and ``address`` checked by the channel's sender (a URL's name is
        resolved: call it in a worker thread), with the signing secret the channel needs:
        ``secret`` if given, else a generated one.

        Raises:
            AddressError: an unknown channel or one not set up to send, an address that does
                not fit it or may not be used, a secret that is not 16-128 characters.
        """
        if self.notify is not None:
            check_configured(channel, self.notify)
        address = check_address(channel, address)
        sender = sender_class(channel)
        sender.check_reachable(address, self.outbound)
        if not sender.signed:
            return CheckedSubscription(channel, address, None)
        secret = secret.strip() if secret else secrets.token_urlsafe(32)
        if not 16 <= len(secret) <= 128:
            raise AddressError(f"a {channel} secret is 16-128 characters")
        return CheckedSubscription(channel, address, secret)

    def add(
        self, checked: CheckedSubscription, *, actor: str, case_id: str | None = None
    ) -> SubscriptionInfo:
        """Subscribe ``checked`` to one case's sightings (``case_id``) or every case's; the
        returned info carries the secret this once."""
        with self.db.session() as session:
            info = store(session, checked, actor=actor, case_id=case_id)
        audit_added(self.auth, info, actor=actor)
        return info

    def get(self, subscription_id: int) -> SubscriptionInfo:
        """One subscription (without its secret); ``UnknownSubscriptionError`` if none."""
        with self.db.session() as session:
            info = subscriptions.get(session, subscription_id)
        if info is None:
            raise UnknownSubscriptionError(f"no subscription with id {subscription_id}")
        return info

    def of_case(self, case_id: str | None) -> list[SubscriptionInfo]:
        """A case's subscriptions, or (``None``) the all-cases ones, oldest first."""
        with self.db.session() as session:
            return subscriptions.of_case(session, case_id)

    def told(self, case_id: str) -> list[Told]:
        """Every subscription a match of ``case_id`` is sent to (the case's, then the
        all-cases ones, oldest first) with what each was told of this case so far."""
        with self.db.session() as session:
            mine = subscriptions.of_case(session, case_id)
            every = subscriptions.of_case(session, None)
            counted = notifications.tallies(session, case_id)
        return [
            Told(
                subscription=info,
                masked_address=mask_address(info.channel, info.address),
                every_case=info.case_id is None,
                tally=counted.get(info.id, Tally()),
            )
            for info in (*mine, *every)
        ]

    def delete(self, subscription_id: int, *, actor: str) -> None:
        """Remove a subscription (its sent and pending notifications stay, unlinked)."""
        with self.db.session() as session:
            gone = subscriptions.delete(session, subscription_id)
        if gone is None:
            raise UnknownSubscriptionError(f"no subscription with id {subscription_id}")
        detail = {"case": gone.case_id, "channel": gone.channel}
        self.auth.audit(actor, "subscription.delete", str(subscription_id), detail)
