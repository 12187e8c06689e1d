"""The gallery's readers-writer lock: searches share it, every change takes it alone."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class ReadWriteLock:
    """Many readers or one writer. A waiting writer blocks new readers (no writer starvation).

    Writers pass through ``_turnstile`` and keep it while they wait for the readers inside to
    leave and while they write; readers only pass through it. So a writer waits for at most the
    readers already inside, and readers queue behind a waiting writer.
    """

    def __init__(self) -> None:
        self._turnstile = threading.Lock()
        self._room = threading.Condition(threading.Lock())
        self._readers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared for the ``with`` block."""
        with self._turnstile, self._room:
            self._readers += 1
        try:
            yield
        finally:
            with self._room:
                self._readers -= 1
                if self._readers == 0:
                    self._room.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock alone for the ``with`` block."""
        with self._turnstile:
            with self._room:
                while self._readers:
                    self._room.wait()
            yield
