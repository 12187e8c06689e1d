"""How busy the machine's cores are: the share of CPU time not idle, from ``/proc/stat``.

A camera in ``auto`` mode spends the CNN only from time to spare. Its own thread's idle moments
say little when eight cameras share two cores: each camera is idle most of the time while the
cores, together, are nearly full, and every CNN look then delays some camera's frames. This
is the machine's view, shared by every camera of the process: sampled at most every
``SAMPLE_SECONDS`` and smoothed over about ``SMOOTH_SECONDS``. Time spent at low priority
(``nice``: the scans behind the frames) counts as busy: that work must be done too.

On a system without ``/proc/stat`` the share is unknown (``None``) and only a camera's own
measures count. In a container whose ``/proc/stat`` shows the host's cores, it is the host's
share: still a fair sign of whether the cores are wanted.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

STAT = Path("/proc/stat")
SAMPLE_SECONDS = 0.2
"""The share is read again at most this often."""
SMOOTH_SECONDS = 1.0
"""Readings are smoothed over about this much wall-clock time."""


class CoreLoad:
    """The machine's busy share of its cores, smoothed. Thread-safe."""

    def __init__(self, stat: Path = STAT) -> None:
        self._stat = stat
        self._lock = threading.Lock()
        self._last: tuple[float, int, int] | None = None
        """(when, busy jiffies, total jiffies) at the previous reading."""
        self._share: float | None = None
        self._broken = False

    def busy_share(self) -> float | None:
        """The share (0-1) of the cores' time that was not idle lately, or ``None`` before two
        readings or where ``/proc/stat`` cannot be read."""
        now = time.monotonic()
        with self._lock:
            if self._broken:
                return None
            if self._last is not None and now - self._last[0] < SAMPLE_SECONDS:
                return self._share
            reading = self._read()
            if reading is None:
                self._broken = True
                return None
            busy, total = reading
            if self._last is not None and total > self._last[2]:
                share = (busy - self._last[1]) / (total - self._last[2])
                weight = min(1.0, (now - self._last[0]) / SMOOTH_SECONDS)
                previous = self._share
                self._share = share if previous is None else previous + weight * (share - previous)
            self._last = (now, busy, total)
            return self._share

    def _read(self) -> tuple[int, int] | None:
        """(busy, total) jiffies over all cores: ``cpu  user nice system idle iowait ...``."""
        try:
            first = self._stat.read_text().split("\n", 1)[0].split()
            values = [int(v) for v in first[1:]]
        except (OSError, ValueError):
            return None
        if len(values) < 4 or first[0] != "cpu":
            return None
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total = sum(values[:8])
        return total - idle, total


CORES = CoreLoad()
"""The process's one reader: every camera asks it."""
