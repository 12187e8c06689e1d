"""Work the event loop never does itself: password hashing and uploaded photos.

Each kind of heavy work has a ``WorkGate``: a few threads of its own (not the shared pool the
sync routes run in) and a bounded line of requests waiting for them. A flood of logins then
costs at most ``login_threads`` cores, and the event loop, the dashboards and the cameras keep
the rest; a request that finds the line full is answered 503 at once rather than queued without
end. Photo work also has a deadline, and is given up when its client leaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import HTTPException, Request, status

from oneeye.config import LimitSettings
from oneeye.errors import TimeLimitError
from oneeye.vision.engine import Deadline

logger = logging.getLogger(__name__)

T = TypeVar("T")

DISCONNECT_POLL = 0.2
"""Seconds between two looks at whether a photo request's client is still there."""


class WorkGate:
    """At most ``threads`` calls of one kind of work at a time, in threads of their own, and at
    most ``waiting`` more waiting for a turn; beyond that, 503.

    Use from the event loop only (the counts are not locked: one loop touches them).
    """

    def __init__(self, what: str, threads: int, waiting: int) -> None:
        """A gate for ``what`` (named in the 503's sentence: "other logins")."""
        if threads < 1 or waiting < 0:
            raise ValueError(f"threads must be >= 1 and waiting >= 0, got {threads}, {waiting}")
        self.what = what
        self.threads = threads
        self.waiting = waiting
        self._limiter = anyio.CapacityLimiter(threads)
        self._in_flight = 0
        self.refused = 0
        """Requests answered 503 because the line was full."""

    @property
    def in_flight(self) -> int:
        """Calls running or waiting now."""
        return self._in_flight

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in one of the gate's threads and return what it returns.

        Raises:
            HTTPException: 503 when ``threads + waiting`` calls are in flight already.
        """
        if self._in_flight >= self.threads + self.waiting:
            self.refused += 1
            if self.refused in (1, 10) or self.refused % 1000 == 0:
                logger.warning("busy with %s: %d requests refused so far", self.what, self.refused)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the server is busy with other {self.what}; try again in a few seconds",
                headers={"Retry-After": "2"},
            )
        self._in_flight += 1
        try:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)
        finally:
            self._in_flight -= 1


class Gates:
    """The server's gates and the limits they apply (``app.state.gates``)."""

    def __init__(self, limits: LimitSettings) -> None:
        """Gates sized by ``limits``."""
        self.limits = limits
        self.login = WorkGate("logins", limits.login_threads, limits.login_waiting)
        self.photos = WorkGate("photos", limits.photo_threads, limits.photo_waiting)


def gates_of(request: Request) -> Gates:
    """The application's gates."""
    gates: Gates = request.app.state.gates
    return gates


async def check_passwords(request: Request, work: Callable[[], T]) -> T:
    """Run ``work`` (which hashes or verifies a password) in the login gate's threads."""
    return await gates_of(request).login.run(work)


async def _cancel_when_gone(request: Request, deadline: Deadline) -> None:
    """Cancel ``deadline`` once the client has disconnected (the body is read by now)."""
    while not await request.is_disconnected():
        await asyncio.sleep(DISCONNECT_POLL)
    deadline.cancel()
    logger.info("photo request to %s given up: the client left", request.url.path)


async def work_on_photo(request: Request, work: Callable[[Deadline], T]) -> T:
    """Run ``work`` in the photo gate's threads with a deadline of ``photo_seconds``, which is
    cancelled when the client leaves; ``work`` checks it between its steps.

    Raises:
        HTTPException: 503 when the line is full, or when the work ran out of time.
    """
    gates = gates_of(request)
    deadline = Deadline(gates.limits.photo_seconds)
    watcher = asyncio.create_task(_cancel_when_gone(request, deadline))
    try:
        return await gates.photos.run(partial(work, deadline))
    except TimeLimitError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    finally:
        watcher.cancel()
