"""The unfinished sighting actions of a server: leased, finished, and taken over when left.

A new sighting's action is recorded as unfinished (``store.repos.sighting_actions``) in the
transaction that stores it, leased to this process for ``action_lease`` seconds, and the record
is deleted once the action ran. A server that dies in between leaves the record; a sweeper
thread in every server takes over those whose lease ran out (one conditional update, so one
server takes each) and runs the action then. :class:`SightingSweeper` holds this process's
share of that: its owner name, its leases, its sweeper thread. The
:class:`~oneeye.services.sightings.SightingService` owns one and hands it how to describe a
stored sighting and how to act on it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from oneeye.services.actions import StoredSighting
from oneeye.store.db import Database
from oneeye.store.repos import sighting_actions as unfinished
from oneeye.store.repos import sightings as rows

__all__ = [
    "ACTION_LEASE",
    "MAX_ACTION_AGE",
    "MAX_ACTION_ATTEMPTS",
    "SWEEP_BATCH",
    "SWEEP_EVERY",
    "SightingSweeper",
]

logger = logging.getLogger(__name__)

ACTION_LEASE = 60.0
"""Seconds a server has to run a new sighting's action before another server may take it
over (it died, or hangs)."""
SWEEP_EVERY = 5.0
"""Seconds between two looks for unfinished actions whose lease ran out."""
SWEEP_BATCH = 50
"""Unfinished actions taken over in one look at most."""
MAX_ACTION_ATTEMPTS = 5
"""A sighting whose action has been taken this many times (each taker died on it) is given up:
logged and forgotten, so one poisonous sighting cannot take every server down in turn."""
MAX_ACTION_AGE = 3600.0
"""Seconds after a sighting was seen past which its unfinished action is given up rather than
run (a customer's card an hour late helps no teller; the sighting itself stays stored)."""


class SightingSweeper:
    """This process's unfinished sighting actions, and the thread that takes over others'."""

    def __init__(
        self,
        db: Database,
        describe: Callable[[Session, str], StoredSighting],
        act: Callable[[StoredSighting], None],
        *,
        action_lease: float = ACTION_LEASE,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        """Create a sweeper whose thread is not running yet.

        Args:
            db: the database holding ``sightings`` and ``sighting_actions``.
            describe: the stored sighting of an id that exists, read in the given session.
            act: runs a sighting's action (the service's, one action at a time).
            action_lease: seconds a lease lasts.
            sweep_every: seconds between two sweeps of the thread; ``<= 0``: no thread.
        """
        self.db = db
        self.owner = f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"
        """This process among the servers, as the unfinished actions it holds name it."""
        self.action_lease = action_lease
        self.sweep_every = sweep_every
        self._describe = describe
        self._act = act
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start the sweeper thread (unless ``sweep_every <= 0`` or it runs already)."""
        if self._thread is None and self.sweep_every > 0:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._sweep_loop, name="sighting-actions", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the sweeper thread and wait for it (up to 30 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def lease_until(self) -> datetime:
        """When a lease taken now runs out.

        Returns:
            Now plus ``action_lease`` seconds, in UTC.
        """
        return datetime.now(UTC) + timedelta(seconds=self.action_lease)

    def finish(self, sighting_id: str) -> None:
        """Record that a sighting's action ran (a failure to is logged: the sweeper of some
        server runs it again after the lease, which the actions bear).

        Args:
            sighting_id: the sighting whose action ran.
        """
        try:
            with self.db.session() as session:
                unfinished.finish(session, sighting_id)
        except SQLAlchemyError:
            logger.exception("could not record that sighting %s was acted on", sighting_id)

    def sweep(self) -> int:
        """Take over the unfinished actions whose lease ran out (their server died or hangs)
        and run them; the sweeper thread calls this every ``sweep_every`` seconds.

        Returns:
            How many actions were run.
        """
        now = datetime.now(UTC)
        with self.db.session() as session:
            candidates = unfinished.expired(session, now, SWEEP_BATCH)
        done = 0
        for sighting_id, attempts in candidates:
            with self.db.session() as session:
                if not unfinished.take_over(
                    session, sighting_id, self.owner, now, self.lease_until()
                ):
                    continue  # another server took it first
            if attempts >= MAX_ACTION_ATTEMPTS:
                logger.error(
                    "sighting %s: its action was taken %d times and never finished; given up",
                    sighting_id,
                    attempts,
                )
                self.finish(sighting_id)
                continue
            with self.db.session() as session:
                found = rows.get(session, sighting_id)
                stored = None if found is None else self._describe(session, sighting_id)
            if stored is None:
                continue  # deleted meanwhile: the row went with it
            if (now - stored.seen_at).total_seconds() > MAX_ACTION_AGE:
                logger.warning(
                    "sighting %s: its action was left unfinished and is too old to run; given up",
                    sighting_id,
                )
                self.finish(sighting_id)
                continue
            logger.info(
                "sighting %s: its action was left unfinished (attempt %d); running it",
                sighting_id,
                attempts + 1,
            )
            self._act(stored)
            self.finish(sighting_id)
            done += 1
        return done

    def pending(self) -> int:
        """How many stored sightings' actions have not finished.

        Returns:
            The number of unfinished action records, whoever holds them.
        """
        with self.db.session() as session:
            return unfinished.pending(session)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_every):
            try:
                self.sweep()
            except SQLAlchemyError:
                logger.exception("could not look for unfinished sighting actions")
