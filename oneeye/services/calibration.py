"""Recalibrates automatic watchlist thresholds off the event loop and off the caller's thread.

Enrolments and erasures only say which watchlists changed (:meth:`CalibrationWorker.request`);
one background thread runs the job for them, coalescing a burst of changes into one run per
watchlist (a bulk import of 1,000 people recalibrates once or twice, not 1,000 times).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)


class CalibrationWorker:
    """One daemon thread that runs ``job(name)`` for each watchlist asked for, latest state
    first-come; started on the first request, stopped by :meth:`stop`."""

    def __init__(self, job: Callable[[str], None]) -> None:
        """Args:
        job: recalibrates one watchlist (it reads the gallery itself, so a run always
            sees the newest templates).
        """
        self._job = job
        self._pending: list[str] = []
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()

    def request(self, names: Iterable[str]) -> None:
        """Recalibrate ``names`` soon (each once, however often asked before it runs).

        Args:
            names: watchlist names.
        """
        with self._changed:
            if self._stopping:
                return
            for name in names:
                if name not in self._pending:
                    self._pending.append(name)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="watchlist-calibration", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending or running.

        Args:
            timeout: seconds at most.

        Returns:
            True when idle, False on timeout.
        """
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop what is pending, let a running job end, and end the thread.

        Args:
            timeout: seconds to wait for the thread.
        """
        with self._changed:
            self._stopping = True
            self._pending.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._stopping, 1.0)
                if self._stopping:
                    self._changed.notify_all()
                    return
                if not self._pending:
                    continue
                name = self._pending.pop(0)
                self._busy = True
            try:
                self._job(name)
            except Exception:  # one bad run must not end recalibration for every watchlist
                logger.exception("watchlist %s: recalibration failed", name)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
