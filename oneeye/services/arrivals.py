"""The ``customers`` watchlist action: a customer's arrival card, pushed to the tellers.

For a sighting of a person on a ``customers`` watchlist who holds an account, the account is
looked up in the customer directory and a ``customer.arrived`` event with the account card goes
to tellers and admins only (viewers and reporters get the plain ``sighting`` event, never a
redacted card). The card goes first and the plain sighting after it, from the same thread: the
two would otherwise contend for the database's write lock and the event loop, and the card is
what the tellers wait for. The lookup runs on a small pool of threads, so a slow directory (the
bank's API, up to its timeout) delays that card only, not the bus. A directory that fails is
logged and the card still goes out, without the account details and with ``account_error``
saying why. A person without an account is announced at once, with no card.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from oneeye.services.actions import Announce, StoredSighting, photo_url
from oneeye.services.customers import CustomerCard, CustomerDirectory
from oneeye.services.events import EventHub

logger = logging.getLogger(__name__)

ACTION = "customers"
"""The watchlist action name this action is registered under."""
ARRIVAL_WORKERS = 4
"""Threads that look accounts up and publish cards, so a slow directory holds up no camera."""


def account_of(card: CustomerCard | None, account_id: str, name: str | None) -> dict[str, Any]:
    """The ``account`` object of a ``customer.arrived`` event (details ``None`` when the
    directory gave no card)."""
    if card is None:
        return {
            "account_id": account_id,
            "name": name,
            "account_type": None,
            "address": None,
            "balance": None,
            "currency": None,
            "profile_photo_url": None,
        }
    return {
        "account_id": card.account_id,
        "name": card.name,
        "account_type": card.account_type,
        "address": card.address,
        "balance": card.balance,
        "currency": card.currency,
        "profile_photo_url": card.profile_photo_url or photo_url(card.profile_photo_key),
    }


class CustomerArrivals:
    """The ``customers`` action (a :data:`~oneeye.services.actions.WatchlistAction`).

    Args:
        events: where the cards go (audience ``teller``).
        directory: where accounts are looked up.
        workers: lookup threads.
    """

    def __init__(
        self, events: EventHub, directory: CustomerDirectory, workers: int = ARRIVAL_WORKERS
    ) -> None:
        self.events = events
        self.directory = directory
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()

    def start(self) -> None:
        """Start the lookup threads (before that, cards are looked up on the caller's)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="arrivals")

    def stop(self) -> None:
        """Wait for the cards being looked up, then stop the threads."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every card being looked up has been published; ``False`` on timeout."""
        with self._lock:
            pending = list(self._pending)
        _, left = wait(pending, timeout=timeout)
        return not left

    def __call__(self, sighting: StoredSighting, announce: Announce) -> None:
        """Push the arrival card of ``sighting``'s customer, then announce the sighting."""
        if not sighting.account_id:
            announce()
            return
        pool = self._pool
        if pool is None:  # not started: do it here
            self._announce(sighting, announce)
            return
        future = pool.submit(self._announce, sighting, announce)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _announce(self, sighting: StoredSighting, announce: Announce) -> None:
        try:
            self.events.publish("customer.arrived", self._arrival(sighting), "teller")
        except Exception:
            logger.exception(
                "camera %s: could not announce the arrival of sighting %s",
                sighting.camera_id,
                sighting.id,
            )
        announce()

    def _arrival(self, sighting: StoredSighting) -> dict[str, Any]:
        account_id = sighting.account_id or ""
        card: CustomerCard | None = None
        error: str | None = None
        try:
            card = self.directory.lookup(account_id)
            if card is None:
                error = f"no account {account_id} in the customer directory"
        except Exception as exc:  # a directory that fails must not stop the arrival
            logger.exception(
                "camera %s: customer directory failed for account %s (person %s)",
                sighting.camera_id,
                account_id,
                sighting.person_id,
            )
            error = f"the customer directory could not answer: {exc}"
        if error is not None:
            logger.warning("camera %s: %s", sighting.camera_id, error)
        return {
            **sighting.event_data(),
            "account": account_of(card, account_id, sighting.person_name),
            "account_error": error,
        }
