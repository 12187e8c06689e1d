"""``LoginThrottle``: failed logins counted per client address, in memory, pausing the
address (never the account) that fails too often."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from oneeye.services.auth.errors import ThrottledError

logger = logging.getLogger(__name__)

LOGIN_ATTEMPTS = 5
"""Failed logins from one client address within ``LOGIN_WINDOW`` seconds before its logins
pause."""
LOGIN_WINDOW = 300.0
GLOBAL_LOGIN_ATTEMPTS = 100
"""Failed logins from all addresses together within ``LOGIN_WINDOW`` seconds before every
address that has failed lately pauses too."""
THROTTLE_LOG_SECONDS = 60.0
"""While an address stays paused, how often at most its refused logins are logged (as one
count): a flood of refusals must not become a flood of log lines."""


def client_key(address: str) -> str:
    """How the throttle names a client: its IPv4 address, or its IPv6 /64 network (one host
    holds a whole /64, so counting single IPv6 addresses would count nothing). A name that is
    not an address (a test client's) stays as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _PauseLog:
    """What has been logged about one paused address: when its pause was first logged, when
    its refusals were last counted in the log, and how many since."""

    started: float
    reported: float
    unreported: int = 0


class LoginThrottle:
    """Counts failed logins per client address, in memory, and slows the attacker, never the
    account: after ``attempts`` failures within ``window`` seconds from one address (an IPv6
    /64), that address's logins pause until its oldest failure is ``window`` seconds old, while
    the right password from any other address still works.

    Globally bounded too: once ``global_attempts`` failures from all addresses together fall
    within one window (many addresses guessing), every address that has failed lately pauses
    as well, so each gets one guess per window; an address with no recent failure (the real
    user's) is still let through. At most ``max_tracked`` addresses are remembered.

    Refusals are logged once per paused address per window, then as a count at most once every
    ``THROTTLE_LOG_SECONDS`` and when the pause ends; never with the username typed.

    In memory on purpose: one server process is the embedded shape, a restart forgets the
    counts, and several server processes each keep their own (an attacker gets ``attempts``
    tries per address per process per window, still far too few to guess a password).
    """

    def __init__(
        self,
        attempts: int = LOGIN_ATTEMPTS,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 10_000,
        global_attempts: int = GLOBAL_LOGIN_ATTEMPTS,
    ) -> None:
        """Pause an address after ``attempts`` failures within ``window`` seconds, and every
        failing address once ``global_attempts`` failures fall within a window; keep at most
        ``max_tracked`` addresses' failures in memory."""
        self.attempts = attempts
        self.window = window
        self.max_tracked = max_tracked
        self.global_attempts = global_attempts
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._everyone: deque[float] = deque(maxlen=global_attempts)
        self._paused: dict[str, _PauseLog] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def check(self, client: str) -> None:
        """``ThrottledError`` if the address ``client`` has failed too often lately, or has
        failed at all while everyone together has."""
        with self._lock:
            now = self._clock()
            key = client_key(client)
            failures = self._recent(key, now)
            if len(failures) >= self.attempts:
                self._log_refusal(key, now)
                raise ThrottledError(failures[0] + self.window - now)
            everyone = self._everyone
            flooded = len(everyone) == everyone.maxlen and everyone[0] > now - self.window
            if flooded and failures:
                self._log_refusal(key, now)
                # Free again once the flood or this address's own failures age out.
                raise ThrottledError(min(everyone[0], failures[-1]) + self.window - now)
            self._log_pause_end(key)

    def _log_refusal(self, key: str, now: float) -> None:
        """Log a refused login of ``key``: a line when its pause starts (or a window after the
        last such line), otherwise only counted, the count logged at most once a minute."""
        entry = self._paused.get(key)
        if entry is None or now - entry.started >= self.window:
            self._log_pause_end(key)
            logger.warning(
                "logins from client %s are paused after too many failures; further refusals "
                "are counted, logged at most every %d s",
                key,
                THROTTLE_LOG_SECONDS,
            )
            self._paused[key] = _PauseLog(now, now)
            if len(self._paused) > self.max_tracked:
                # A flood of addresses: forget the pause logged longest ago (bounded memory;
                # at worst that address gets one more line).
                del self._paused[next(iter(self._paused))]
            return
        entry.unreported += 1
        if now - entry.reported >= THROTTLE_LOG_SECONDS:
            logger.warning(
                "%d more logins from client %s refused in the last %d s (still paused)",
                entry.unreported,
                key,
                now - entry.reported,
            )
            entry.reported = now
            entry.unreported = 0

    def _log_pause_end(self, key: str) -> None:
        """Forget ``key``'s pause, logging the refusals not yet counted in the log."""
        entry = self._paused.pop(key, None)
        if entry is not None and entry.unreported:
            logger.warning(
                "%d more logins from client %s were refused before its pause ended",
                entry.unreported,
                key,
            )

    def failed(self, client: str) -> None:
        """Count one failed login from the address ``client``."""
        with self._lock:
            key = client_key(client)
            now = self._clock()
            failures = self._recent(key, now)
            failures.append(now)
            self._everyone.append(now)
            self._failures.pop(key, None)
            self._failures[key] = failures  # newest failure last: a flood drops the oldest
            if len(self._failures) > self.max_tracked:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Forget failures older than the window; if a flood of addresses is still too many,
        forget the addresses that failed longest ago (memory stays bounded)."""
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) > self.max_tracked:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        """Forget the address ``client``'s failures (it knew a password)."""
        with self._lock:
            key = client_key(client)
            self._failures.pop(key, None)
            self._log_pause_end(key)
