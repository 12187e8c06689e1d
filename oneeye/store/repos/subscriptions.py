"""Notification subscriptions: the rows of ``subscriptions`` as values.

Functions take the caller's ``Session`` and return ``SubscriptionInfo`` or ``Target`` values,
never rows. What a valid channel, address or secret is belongs to the notify service; this
module only knows how the rows look. A subscription's secret is written here and never read
back into a value (only the outbox's leasing reads it, in ``notifications``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from oneeye.store.models import Subscription


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as the API shows it (the webhook secret only when it is created)."""

    id: int
    case_id: str | None
    channel: str
    address: str
    active: bool
    created_by: str
    created_at: datetime
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """An active subscription a sighting is to be sent to."""

    id: int
    channel: str
    address: str


def _info(row: Subscription) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=row.id,
        case_id=row.case_id,
        channel=row.channel,
        address=row.address,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def targets(session: Session, case_id: str) -> list[Target]:
    """The active subscriptions a match of ``case_id`` notifies: the case's and the
    all-cases ones, oldest first."""
    rows = session.execute(
        select(Subscription.id, Subscription.channel, Subscription.address)
        .where(
            Subscription.active.is_(True),
            or_(Subscription.case_id == case_id, Subscription.case_id.is_(None)),
        )
        .order_by(Subscription.id)
    )
    return [Target(sid, channel, address) for sid, channel, address in rows]


def add(
    session: Session,
    *,
    case_id: str | None,
    channel: str,
    address: str,
    secret: str | None,
    created_by: str,
    now: datetime,
) -> SubscriptionInfo:
    """Store an active subscription (flushed, so it has its id); returned without its
    secret."""
    row = Subscription(
        case_id=case_id,
        channel=channel,
        address=address,
        secret=secret,
        active=True,
        created_by=created_by,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _info(row)


def get(session: Session, subscription_id: int) -> SubscriptionInfo | None:
    """One subscription, or ``None``."""
    row = session.get(Subscription, subscription_id)
    return None if row is None else _info(row)


def of_case(session: Session, case_id: str | None) -> list[SubscriptionInfo]:
    """A case's subscriptions, or (``None``) the all-cases ones, oldest first."""
    query = select(Subscription).order_by(Subscription.id)
    if case_id is not None:
        query = query.where(Subscription.case_id == case_id)
    else:
        query = query.where(Subscription.case_id.is_(None))
    return [_info(row) for row in session.scalars(query)]


def delete(session: Session, subscription_id: int) -> SubscriptionInfo | None:
    """Delete a subscription; returns it as it was, or ``None`` when there is none."""
    row = session.get(Subscription, subscription_id)
    if row is None:
        return None
    info = _info(row)
    session.delete(row)
    return info
