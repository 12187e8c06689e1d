"""The notifications outbox worker: sends due rows, retries failures with backoff, gives up
after ``max_attempts``.

Rows are written by the alert service in the same transaction as the match they report, so
nothing is lost. A worker *leases* a row before sending it (a conditional UPDATE that only one
worker can win, on SQLite and PostgreSQL alike), so two workers, or two servers sharing
PostgreSQL, never send the same row. The lease time doubles as a fencing token: the row is
marked sent only while the lease that sent it is still the row's lease.

Delivery is at-least-once with one narrow edge: if the process dies after the provider accepted
a message and before the row is marked sent, that one row is sent again once its lease ends
(``lease_seconds``). Each message carries the row's id (``Message-ID`` /
``X-OneEye-Notification``) so a receiver can drop that duplicate. Each row is marked the
moment its own send returns, so only rows in flight at the crash can be in that state: one per
sending thread (``concurrency``; ``concurrency=1`` makes it exactly one row). A clean ``stop``
lets in-flight sends finish and releases the leases of rows claimed but not started.

Failures: a row that fails waits ``backoff_initial * 2**(attempts-1)`` (jittered, capped at
``backoff_max``) and gives up after ``max_attempts`` (status ``failed``, ``notify.failed`` on the
dashboard); a permanent error (recipient refused, 4xx) gives up at once. When the provider
itself fails (unreachable, timeout, 5xx), its other rows are held back with a backoff of their
own, so an outage costs a few probes rather than a timeout per row; the first retry that goes
through again pulls every waiting row of that provider forward, so the backlog drains at once.

The senders come from the channel registry (``senders``); a row is sent by its channel's.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from oneeye.config import NotifySettings
from oneeye.metrics import NOTIFICATIONS
from oneeye.services.events import EventHub
from oneeye.services.notify.base import AlertPayload, DeliveryError, Outgoing, Sender, SenderContext
from oneeye.services.notify.links import LinkSigner
from oneeye.services.notify.senders import make_senders, mask_address
from oneeye.services.notify.senders import provider_of as channel_provider
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import notifications as rows
from oneeye.store.repos.notifications import NotificationFailure

__all__ = [
    "MAX_ERROR_CHARS",
    "STATUSES",
    "NotificationFailure",
    "NotifyService",
    "OutboxStats",
    "backoff_delay",
    "provider_label",
    "provider_of",
]

logger = logging.getLogger(__name__)

STATUSES = ("pending", "sent", "failed")
MAX_ERROR_CHARS = 2000


def _utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Claim:
    """A row this worker leased: what to send, the lease that holds it, and whether its
    subscription was removed or paused meanwhile (then it is not sent)."""

    outgoing: Outgoing
    lease: datetime
    cancelled: bool = False
    had_error: bool = False
    """Whether an earlier attempt failed (or was held back behind a failing provider)."""
    refused: str | None = None
    """Why the row cannot be sent at all (its stored payload does not parse)."""


@dataclass(frozen=True, slots=True)
class _Outage:
    """A provider that failed as a whole: held back until ``until`` (monotonic seconds)."""

    until: float
    error: str
    streak: int
    """Failures in a row."""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counts of outbox rows."""

    pending: int
    sent: int
    failed: int
    retrying: int
    """Pending rows that failed, or wait behind a failing provider."""

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return {
            "pending": self.pending,
            "sent": self.sent,
            "failed": self.failed,
            "retrying": self.retrying,
        }


def backoff_delay(attempts: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``initial * 2**(attempts-1)``, capped
    at ``maximum``, then jittered to 75-125 % so rows that failed together (an outage) do not
    all come back in the same instant."""
    base = min(maximum, initial * 2.0 ** max(0, attempts - 1))
    return base * rng.uniform(0.75, 1.25)


def provider_of(outgoing: Outgoing) -> str:
    """What a failure is shared by: email and SMS go through one server each; each webhook
    URL is its own."""
    return channel_provider(outgoing.channel, outgoing.address)


def provider_label(provider: str) -> str:
    """``provider`` as logs and the case page may show it: a webhook by its host only (its
    path and query often carry a token)."""
    channel, _, address = provider.partition(" ")
    return f"{channel} {mask_address(channel, address)}" if address else provider


def _who(outgoing: Outgoing) -> str:
    """``"sms to +44*******958"``: a row's channel and masked address, for logs."""
    return f"{outgoing.channel} to {mask_address(outgoing.channel, outgoing.address)}"


class NotifyService:
    """Sends the outbox: a background thread, woken by ``wake`` and polling as a fallback."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        settings: NotifySettings,
        public_url: str,
        secret_key: bytes,
        *,
        events: EventHub | None = None,
        senders: Mapping[str, Sender] | None = None,
        outbound: OutboundGuard | None = None,
        poll_interval: float = 5.0,
        batch_size: int = 50,
        concurrency: int = 4,
        lease_seconds: float | None = None,
        seed: int | None = None,
    ) -> None:
        """Build the worker and its senders (nothing runs until ``start``).

        Args:
            db: the database holding the ``notifications`` outbox.
            photos: where snapshots are (attached to emails).
            settings: channels, retries, backoff, link lifetime.
            public_url: the server's address (signed snapshot links point there).
            secret_key: signs snapshot links (``links.load_secret_key``).
            events: when given, a row that gives up publishes ``notify.failed`` (viewers).
            senders: channel -> sender, replacing the default for that channel (e.g. an
                ``EmailSender`` with a TLS context that trusts a private CA).
            outbound: checks every SMS-gateway and webhook address and connection; default:
                no internal host allowed (``ONEEYE_OUTBOUND__ALLOW_INTERNAL`` names some).
            poll_interval: seconds between looks at the outbox when nobody calls ``wake``.
            batch_size: rows leased per look.
            concurrency: rows sent at once.
            lease_seconds: how long a leased row is kept from other workers; default: longer
                than any sender may take (twice the largest timeout, at least 60 s).
            seed: seeds the backoff jitter (tests).
        """
        self.db = db
        self.settings = settings
        self.events = events
        self.links = LinkSigner(secret_key, public_url)
        guard = outbound if outbound is not None else OutboundGuard()
        context = SenderContext(settings, photos, self.links, guard)
        self.senders: dict[str, Sender] = make_senders(context, senders)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.concurrency = max(1, concurrency)
        longest = max(settings.smtp.timeout, settings.sms.timeout, settings.webhook_timeout)
        self.lease_seconds = lease_seconds if lease_seconds is not None else max(60.0, 2 * longest)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._down: dict[str, _Outage] = {}
        """Providers whose last attempt failed as a whole, and until when they are held."""
        self._down_lock = threading.Lock()

    # Lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background sender; rows already due (e.g. left by a stopped server) go
        out at once."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name="notify-outbox", daemon=True)
        self._thread.start()
        logger.info("notifications outbox worker started")

    def stop(self, timeout: float | None = None) -> None:
        """Stop: rows being sent finish (bounded by the senders' timeouts), rows leased but
        not started are released for the next worker. Safe to call twice."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        for sender in self.senders.values():
            sender.close()
        logger.info("notifications outbox worker stopped")

    def wake(self) -> None:
        """Send due rows now instead of at the next poll (call after committing new rows)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.deliver_due()
            except Exception:
                logger.exception("the notifications outbox pass failed; trying again shortly")
                self._stop.wait(1.0)

    def _next_wait(self) -> float:
        """Seconds until the earliest pending row is due (at most ``poll_interval``)."""
        try:
            with self.db.session() as session:
                due = rows.next_due(session, _utcnow())
        except Exception:
            logger.exception("cannot read the outbox's next due time")
            return self.poll_interval
        if due is None:
            return self.poll_interval
        wait = (due - _utcnow()).total_seconds()
        return min(self.poll_interval, max(0.0, wait) + 0.005)

    # Sending --------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="notify-send")
            return self._pool

    def deliver_due(self) -> int:
        """Send every row due now (one pass; rows that fail in it wait for their next try).

        Returns:
            How many rows were delivered.
        """
        tried: set[int] = set()
        delivered = 0
        while not self._stop.is_set():
            claimed = self._claim(tried)
            if not claimed:
                break
            tried.update(claim.outgoing.id for claim in claimed)
            if len(claimed) == 1 or self.concurrency == 1:
                results = [self._deliver(claim) for claim in claimed]
            else:
                pool = self._executor()
                futures = [pool.submit(self._deliver, claim) for claim in claimed]
                results = [future.result() for future in futures]
            delivered += sum(results)
            if len(claimed) < self.batch_size:
                break
        return delivered

    def _claim(self, exclude: set[int]) -> list[_Claim]:
        """Lease up to ``batch_size`` due rows; returns each with the lease that holds it."""
        now = _utcnow()
        lease = now + timedelta(seconds=self.lease_seconds)
        claimed: list[_Claim] = []
        with self.db.session() as session:
            leased = rows.lease_due(session, now, lease, limit=self.batch_size, exclude=exclude)
        for row in leased:
            refused = None
            try:
                payload = AlertPayload.from_json(row.payload or {})
            except ValidationError as exc:
                payload = AlertPayload(case_id=row.case_id, sighting_id=row.sighting_id)
                refused = f"its stored payload is not an alert ({exc.error_count()} errors)"
            outgoing = Outgoing(
                id=row.id,
                case_id=row.case_id,
                sighting_id=row.sighting_id,
                channel=row.channel,
                address=row.address,
                payload=payload,
                secret=row.secret,
            )
            claimed.append(_Claim(outgoing, lease, row.cancelled, row.had_error, refused))
        return claimed

    def _deliver(self, claim: _Claim) -> bool:
        """Send one leased row and record the outcome; ``True`` when delivered."""
        outgoing, lease = claim.outgoing, claim.lease
        if self._stop.is_set():
            self._release(outgoing.id, lease)
            return False
        if claim.cancelled:
            self._give_up(outgoing, lease, "the subscription was removed or paused before delivery")
            return False
        if claim.refused is not None:
            self._give_up(outgoing, lease, claim.refused)
            return False
        provider = provider_of(outgoing)
        with self._down_lock:
            outage = self._down.get(provider)
            wait = outage.until - time.monotonic() if outage is not None else 0.0
            why = outage.error if outage is not None else ""
        if wait > 0:
            self._defer(outgoing, lease, wait, f"{provider_label(provider)} is failing: {why}")
            return False
        sender = self.senders.get(outgoing.channel)
        try:
            if sender is None:
                raise DeliveryError(
                    f"no sender for channel {outgoing.channel!r}; "
                    f"this server has {', '.join(sorted(self.senders))}",
                    permanent=True,
                )
            sender.send(outgoing)
        except DeliveryError as exc:
            self._failed(outgoing, lease, str(exc), permanent=exc.permanent)
            if exc.provider_down:
                self._provider_failed(provider, str(exc))
            return False
        except Exception as exc:
            logger.exception(
                "notification %d (%s): the sender failed unexpectedly", outgoing.id, _who(outgoing)
            )
            # The type only: an unexpected error's text may hold anything (see the log).
            error = f"unexpected {type(exc).__name__} in the {outgoing.channel} sender"
            self._failed(outgoing, lease, error, permanent=False)
            return False
        with self.db.session() as session:
            if not rows.mark_sent(session, outgoing.id, lease, _utcnow()):
                logger.warning(
                    "notification %d was sent after its lease ended; another worker may "
                    "send it again (raise lease_seconds above the senders' timeouts)",
                    outgoing.id,
                )
        NOTIFICATIONS.labels(outgoing.channel, "sent").inc()
        logger.info("notification %d sent (%s)", outgoing.id, _who(outgoing))
        with self._down_lock:
            self._down.pop(provider, None)
        if claim.had_error:
            self._provider_back(outgoing)
        return True

    def _provider_failed(self, provider: str, error: str) -> None:
        """Hold ``provider``'s rows back with a backoff of its own: each failure in a row
        doubles the hold (jittered, capped at ``backoff_max``), so during an outage only a
        few rows probe it, instead of every row spending a timeout."""
        with self._down_lock, self._rng_lock:
            outage = self._down.get(provider)
            streak = outage.streak + 1 if outage is not None else 1
            hold = backoff_delay(
                streak, self.settings.backoff_initial, self.settings.backoff_max, self._rng
            )
            self._down[provider] = _Outage(time.monotonic() + hold, error[:300], streak)
        if streak == 1:
            logger.warning(
                "%s is failing; holding its notifications back: %s",
                provider_label(provider),
                error,
            )

    def _provider_back(self, outgoing: Outgoing) -> None:
        """A row that had failed went through: the provider is back, so the other rows that
        wait for it are retried now rather than at the end of their backoff. Email and SMS go
        through one server each; a webhook's provider is its URL."""
        address = outgoing.address if provider_of(outgoing) != outgoing.channel else None
        with self.db.session() as session:
            moved = rows.retry_now(session, outgoing.channel, address, _utcnow())
        if moved:
            logger.info(
                "%s is accepting again; retrying %d waiting notifications now",
                outgoing.channel, moved,
            )  # fmt: skip
            self._wake.set()

    def _release(self, row_id: int, lease: datetime) -> None:
        with self.db.session() as session:
            rows.release(session, row_id, lease)

    def _defer(self, outgoing: Outgoing, lease: datetime, delay: float, why: str) -> None:
        """Hold a row back, untried, while its provider is failing (no attempt is counted)."""
        with self.db.session() as session:
            rows.defer(
                session,
                outgoing.id,
                lease,
                _utcnow() + timedelta(seconds=delay),
                f"not tried yet: {why}"[:MAX_ERROR_CHARS],
            )

    def _failed(
        self, outgoing: Outgoing, lease: datetime, error: str, *, permanent: bool
    ) -> float | None:
        """Record a failed attempt: retry later with backoff, or give up.

        Returns:
            The backoff delay in seconds, or ``None`` when the row gave up.
        """
        with self.db.session() as session:
            before = rows.attempts_under_lease(session, outgoing.id, lease)
            if before is None:
                logger.warning("notification %d: lost its lease while failing", outgoing.id)
                return None
            attempts = before + 1
            stored_error = error[:MAX_ERROR_CHARS]
            if permanent or attempts >= self.settings.max_attempts:
                rows.record_failure(session, outgoing.id, stored_error, retry_at=None)
            else:
                with self._rng_lock:
                    delay = backoff_delay(
                        attempts,
                        self.settings.backoff_initial,
                        self.settings.backoff_max,
                        self._rng,
                    )
                retry_at = _utcnow() + timedelta(seconds=delay)
                rows.record_failure(session, outgoing.id, stored_error, retry_at=retry_at)
                NOTIFICATIONS.labels(outgoing.channel, "retry").inc()
                logger.warning(
                    "notification %d (%s) failed, attempt %d of %d, next in %.1f s: %s",
                    outgoing.id, _who(outgoing), attempts,
                    self.settings.max_attempts, delay, error,
                )  # fmt: skip
                return delay
        why = "a permanent error" if permanent else f"{attempts} attempts"
        NOTIFICATIONS.labels(outgoing.channel, "given_up").inc()
        logger.error(
            "notification %d (%s) gave up after %s: %s", outgoing.id, _who(outgoing), why, error
        )
        self._announce_failure(outgoing, error, attempts)
        return None

    def _give_up(self, outgoing: Outgoing, lease: datetime, error: str) -> None:
        with self.db.session() as session:
            rows.give_up(session, outgoing.id, lease, error)
        NOTIFICATIONS.labels(outgoing.channel, "given_up").inc()
        logger.info(
            "notification %d given up, not sent (%s): %s", outgoing.id, _who(outgoing), error
        )

    def _announce_failure(self, outgoing: Outgoing, error: str, attempts: int) -> None:
        if self.events is None:
            return
        try:
            self.events.publish(
                "notify.failed",
                {
                    "notification_id": outgoing.id,
                    "case_id": outgoing.case_id,
                    "case_name": outgoing.payload.case_name,
                    "sighting_id": outgoing.sighting_id,
                    "channel": outgoing.channel,
                    "attempts": attempts,
                    "error": error[:500],
                },
                audience="viewer",
            )
        except Exception:
            logger.exception("notification %d: cannot publish notify.failed", outgoing.id)

    # Reading --------------------------------------------------------------------------------

    def failures(self, limit: int = 50, case_id: str | None = None) -> list[NotificationFailure]:
        """The newest rows with an error (retrying or given up), newest first; only one
        case's when ``case_id`` is given."""
        with self.db.session() as session:
            return rows.failures(session, limit, case_id)

    def stats(self) -> OutboxStats:
        """How many rows are pending, sent, failed, and pending after a failure."""
        with self.db.session() as session:
            counts, retrying = rows.status_counts(session)
        return OutboxStats(
            pending=counts.get("pending", 0),
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0),
            retrying=retrying,
        )

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest pending row was written (0 when nothing is pending): how
        far behind delivery is, for the metrics."""
        with self.db.session() as session:
            oldest = rows.oldest_pending(session)
        return 0.0 if oldest is None else max(0.0, (_utcnow() - oldest).total_seconds())
