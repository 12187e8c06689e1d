"""Notification rows: the outbox's queue of messages to send, and what is swept or erased of it.

Functions take the caller's ``Session`` (the caller owns the transaction) and speak in ids,
counts and value types, never rows. The outbox decides when to send and what a failure means;
this module only knows how the rows look.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from oneeye.store.models import CaseMatch, Notification, Subscription
from oneeye.store.repos.oldest import delete_oldest


@dataclass(frozen=True, slots=True)
class LeasedNotification:
    """A pending row this worker holds the lease of: what to send, and to whom."""

    id: int
    case_id: str
    sighting_id: str
    channel: str
    address: str
    payload: Any
    """The stored JSON, unchecked (the outbox parses it)."""
    secret: str | None
    """Its subscription's signing secret (webhooks); ``None`` when it has none or is gone."""
    cancelled: bool
    """Its subscription was removed or paused since the row was queued."""
    had_error: bool
    """An earlier attempt failed (or was held back behind a failing provider)."""


@dataclass(frozen=True, slots=True)
class NotificationFailure:
    """A row whose last attempt failed (still retrying, or given up), for the dashboard."""

    id: int
    case_id: str
    sighting_id: str
    channel: str
    address: str
    status: str
    attempts: int
    last_error: str
    next_attempt_at: datetime | None
    created_at: datetime


def _rowcount(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


# queueing --------------------------------------------------------------------------------------


def subscriptions_notified(session: Session, sighting_id: str) -> set[int | None]:
    """The subscriptions a sighting has given a notification row already, by id."""
    return set(
        session.scalars(
            select(Notification.subscription_id).where(Notification.sighting_id == sighting_id)
        )
    )


def cooling(
    session: Session, case_id: str, camera_id: str, seen_at: datetime, window: timedelta
) -> set[int]:
    """The subscriptions told (or about to be told: pending) of a match of this case on this
    camera that lies within ``window`` of ``seen_at`` (either side), by id. A row that gave up
    (``failed``) told nobody, so it does not count."""
    # From the few matches near in time to their rows (the unique (sighting, subscription)
    # key finds those), not from every row of the case.
    near = select(CaseMatch.sighting_id).where(
        CaseMatch.case_id == case_id,
        CaseMatch.camera_id == camera_id,
        CaseMatch.seen_at > seen_at - window,
        CaseMatch.seen_at < seen_at + window,
    )
    # The case is compared here, not in SQL: given the case, SQLite would walk the case's
    # index (every row of the case) instead of the few sightings' unique key.
    rows = session.execute(
        select(Notification.subscription_id, Notification.case_id).where(
            Notification.sighting_id.in_(near),
            Notification.subscription_id.is_not(None),
            Notification.status != "failed",
        )
    )
    return {sid for sid, case in rows if sid is not None and case == case_id}


def add_pending(
    session: Session,
    *,
    case_id: str,
    sighting_id: str,
    subscription_id: int,
    channel: str,
    address: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue one pending row, due at ``now``, in the caller's transaction."""
    session.add(
        Notification(
            case_id=case_id,
            sighting_id=sighting_id,
            subscription_id=subscription_id,
            channel=channel,
            address=address,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


# erasure and retention -------------------------------------------------------------------------


def delete_about(session: Session, case_ids: Collection[str], sighting_ids: Collection[str]) -> int:
    """Delete the notifications about the cases among ``case_ids`` or the sightings among
    ``sighting_ids``, whatever their status; returns how many."""
    return _rowcount(
        session.execute(
            delete(Notification)
            .where(
                or_(
                    Notification.case_id.in_(case_ids),
                    Notification.sighting_id.in_(sighting_ids),
                )
            )
            .execution_options(synchronize_session=False)
        )
    )


def delete_finished(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest sent or failed notifications made before
    ``cutoff`` (select the ids, then delete by id: the same on SQLite and PostgreSQL);
    returns how many."""
    return delete_oldest(
        session,
        Notification.id,
        Notification.status.in_(("sent", "failed")),
        Notification.created_at < cutoff,
        limit=limit,
    )


# the outbox ------------------------------------------------------------------------------------


def _free(now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds a lease on (none taken, or it ran out)."""
    return or_(Notification.lease_until.is_(None), Notification.lease_until < now)


def next_due(session: Session, now: datetime) -> datetime | None:
    """When the earliest pending row nobody holds is due; ``None``: no such row."""
    return session.scalar(
        select(func.min(Notification.next_attempt_at)).where(
            Notification.status == "pending", _free(now)
        )
    )


def lease_due(
    session: Session,
    now: datetime,
    lease: datetime,
    *,
    limit: int,
    exclude: Collection[int] = (),
) -> list[LeasedNotification]:
    """Lease up to ``limit`` pending rows due at ``now`` that nobody holds (leaving out the
    ids in ``exclude``) until ``lease``, one conditional update each so that two workers
    never win the same row; returns the rows won, earliest due first."""
    free = _free(now)
    query = (
        select(Notification.id)
        .where(Notification.status == "pending", Notification.next_attempt_at <= now, free)
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit + len(exclude))
    )
    candidates = [i for i in session.scalars(query) if i not in exclude]
    won: list[int] = []
    for row_id in candidates[:limit]:
        result = session.execute(
            update(Notification)
            .where(Notification.id == row_id, Notification.status == "pending", free)
            .values(lease_until=lease)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) == 1:
            won.append(row_id)
    if not won:
        return []
    rows = session.execute(
        select(Notification, Subscription.secret, Subscription.active)
        .outerjoin(Subscription, Subscription.id == Notification.subscription_id)
        .where(Notification.id.in_(won))
        .order_by(Notification.next_attempt_at, Notification.id)
    ).all()
    return [
        LeasedNotification(
            id=row.id,
            case_id=row.case_id,
            sighting_id=row.sighting_id,
            channel=row.channel,
            address=row.address,
            payload=row.payload,
            secret=secret,
            cancelled=row.subscription_id is None or active is False,
            had_error=row.last_error is not None,
        )
        for row, secret, active in rows
    ]


def _held(row_id: int, lease: datetime) -> list[ColumnElement[bool]]:
    return [Notification.id == row_id, Notification.lease_until == lease]


def mark_sent(session: Session, row_id: int, lease: datetime, now: datetime) -> bool:
    """Record a delivery of a row still held under ``lease``; ``False``: the lease had
    ended (another worker may have taken the row)."""
    result = session.execute(
        update(Notification)
        .where(*_held(row_id, lease))
        .values(
            status="sent",
            sent_at=now,
            lease_until=None,
            attempts=Notification.attempts + 1,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def retry_now(session: Session, channel: str, address: str | None, now: datetime) -> int:
    """Make the pending rows of ``channel`` (and ``address``, when given) that wait after a
    failure due at ``now``; returns how many."""
    same = [Notification.channel == channel]
    if address is not None:
        same.append(Notification.address == address)
    result = session.execute(
        update(Notification)
        .where(
            Notification.status == "pending",
            Notification.last_error.is_not(None),
            Notification.next_attempt_at > now,
            *same,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def release(session: Session, row_id: int, lease: datetime) -> None:
    """Give a row's lease back untried (it is due again at once)."""
    session.execute(
        update(Notification)
        .where(*_held(row_id, lease))
        .values(lease_until=None)
        .execution_options(synchronize_session=False)
    )


def defer(session: Session, row_id: int, lease: datetime, until: datetime, error: str) -> None:
    """Give a row's lease back untried, due at ``until``, with ``error`` as its last error
    (no attempt is counted)."""
    session.execute(
        update(Notification)
        .where(*_held(row_id, lease))
        .values(lease_until=None, next_attempt_at=until, last_error=error)
        .execution_options(synchronize_session=False)
    )


def attempts_under_lease(session: Session, row_id: int, lease: datetime) -> int | None:
    """How many attempts a row held under ``lease`` has had; ``None``: it is gone or its
    lease ended."""
    row = session.get(Notification, row_id)
    if row is None or row.lease_until != lease:
        return None
    return row.attempts


def record_failure(session: Session, row_id: int, error: str, *, retry_at: datetime | None) -> None:
    """Count a failed attempt of a row and give its lease back: due again at ``retry_at``,
    or failed for good when that is ``None``."""
    row = session.get(Notification, row_id)
    if row is None:
        return
    row.attempts += 1
    row.last_error = error
    row.lease_until = None
    if retry_at is None:
        row.status = "failed"
    else:
        row.next_attempt_at = retry_at


def give_up(session: Session, row_id: int, lease: datetime, error: str) -> None:
    """Mark a row held under ``lease`` failed without an attempt (it cannot be sent)."""
    session.execute(
        update(Notification)
        .where(*_held(row_id, lease))
        .values(status="failed", last_error=error, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def failures(session: Session, limit: int, case_id: str | None = None) -> list[NotificationFailure]:
    """The newest rows with an error (retrying or given up), newest first; only one case's
    when ``case_id`` is given."""
    query = select(Notification).where(Notification.last_error.is_not(None))
    if case_id is not None:
        query = query.where(Notification.case_id == case_id)
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit))
    return [
        NotificationFailure(
            id=row.id,
            case_id=row.case_id,
            sighting_id=row.sighting_id,
            channel=row.channel,
            address=row.address,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error or "",
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            created_at=row.created_at,
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class Tally:
    """What one subscription was told of one case: its rows by status."""

    sent: int = 0
    pending: int = 0
    """Queued and not tried yet."""
    retrying: int = 0
    """Pending after a failed try (or held back behind a failing provider)."""
    failed: int = 0
    """Given up."""
    last_sent_at: datetime | None = None
    last_error: str | None = None
    """The newest row's error, if it has one."""


def tallies(session: Session, case_id: str) -> dict[int, Tally]:
    """Each subscription's notifications about ``case_id``, by subscription id (rows of a
    removed subscription are not counted)."""
    grouped = session.execute(
        select(
            Notification.subscription_id,
            Notification.status,
            Notification.last_error.is_not(None),
            func.count(),
            func.max(Notification.sent_at),
        )
        .where(Notification.case_id == case_id, Notification.subscription_id.is_not(None))
        .group_by(
            Notification.subscription_id, Notification.status, Notification.last_error.is_not(None)
        )
    )
    counts: dict[int, dict[str, Any]] = {}
    for sid, status, erred, n, sent_at in grouped:
        if sid is None:
            continue
        tally = counts.setdefault(sid, {"sent": 0, "pending": 0, "retrying": 0, "failed": 0})
        key = "retrying" if status == "pending" and erred else status
        if key in tally:
            tally[key] += int(n)
        if sent_at is not None and (
            tally.get("last_sent_at") is None or sent_at > tally["last_sent_at"]
        ):
            tally["last_sent_at"] = sent_at
    newest = session.execute(
        select(Notification.subscription_id, Notification.last_error).where(
            Notification.id.in_(
                select(func.max(Notification.id))
                .where(Notification.case_id == case_id, Notification.subscription_id.is_not(None))
                .group_by(Notification.subscription_id)
            )
        )
    )
    for sid, error in newest:
        if sid in counts:
            counts[sid]["last_error"] = error
    return {sid: Tally(**values) for sid, values in counts.items()}


def status_counts(session: Session) -> tuple[dict[str, int], int]:
    """How many rows have each status, and how many pending rows carry an error."""
    grouped = select(Notification.status, func.count()).group_by(Notification.status)
    counts: dict[str, int] = {status: int(n) for status, n in session.execute(grouped)}
    retrying = session.scalar(
        select(func.count()).where(
            Notification.status == "pending", Notification.last_error.is_not(None)
        )
    )
    return counts, int(retrying or 0)


def oldest_pending(session: Session) -> datetime | None:
    """When the oldest row still pending was written; ``None``: nothing is pending."""
    return session.scalar(
        select(func.min(Notification.created_at)).where(Notification.status == "pending")
    )
