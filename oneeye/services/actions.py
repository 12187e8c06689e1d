"""Watchlist actions: what happens when a person on a watchlist is sighted, chosen by name.

A watchlist names its action (``customers``: the account card to the tellers; ``amber-alert``:
the case's subscribers are notified; ``none``). After the sightings service has stored a new
sighting it looks the watchlist's action up in :class:`WatchlistActions` and hands it the
sighting. Adding an action is one module with a :data:`WatchlistAction` plus one ``register``
call where the server is put together; the sightings service knows none of them by name.

Every new sighting is also announced to the dashboards as a plain ``sighting`` event. An action
gets that announcement as a callable and calls it once, when it suits it (the customer card
goes out first, then the plain event); :func:`announced_first` makes an action from a function
that only wants the sighting, announcing before it runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

PHOTOS_URL = "/api/v1/photos/"


def photo_url(key: str | None) -> str | None:
    """The URL the dashboard loads a stored photo from."""
    return None if key is None else f"{PHOTOS_URL}{key}"


@dataclass(frozen=True, slots=True)
class StoredSighting:
    """A sighting as stored, with what the actions need to know about it."""

    id: str
    camera_id: str
    camera_name: str
    person_id: str | None
    person_name: str | None
    account_id: str | None
    watchlist: str | None
    watchlist_action: str | None
    distance: float | None
    seen_at: datetime
    snapshot_key: str | None

    def event_data(self) -> dict[str, Any]:
        """The ``sighting`` dashboard event's data."""
        return {
            "sighting_id": self.id,
            "camera_id": self.camera_id,
            "camera_name": self.camera_name,
            "person_id": self.person_id,
            "person_name": self.person_name,
            "watchlist": self.watchlist,
            "distance": None if self.distance is None else round(self.distance, 4),
            "seen_at": self.seen_at.isoformat(),
            "snapshot_url": photo_url(self.snapshot_key),
        }


Announce = Callable[[], None]
"""Publishes the plain ``sighting`` dashboard event of the sighting being acted on (once:
calling it again does nothing)."""

WatchlistAction = Callable[[StoredSighting, Announce], None]
"""Acts on a new sighting of a person on a watchlist whose action it is registered under, on
the bus thread (anything slow goes to a thread of the action's own). It calls ``announce``
exactly once; if it raises before it did, the sightings service announces for it."""


def announced_first(act: Callable[[StoredSighting], None]) -> WatchlistAction:
    """An action that announces the sighting, then runs ``act`` on it."""

    def action(sighting: StoredSighting, announce: Announce) -> None:
        announce()
        act(sighting)

    return action


class WatchlistActions:
    """The registry: watchlist action name -> what it does. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: dict[str, WatchlistAction] = {}

    def register(self, name: str, action: WatchlistAction) -> None:
        """Run ``action`` for new sightings on every watchlist whose action is ``name``.

        Raises:
            ValueError: ``name`` has an action already (two would race to announce).
        """
        with self._lock:
            if name in self._actions:
                raise ValueError(f"the watchlist action {name!r} is registered already")
            self._actions[name] = action

    def get(self, name: str | None) -> WatchlistAction | None:
        """The action registered under ``name`` (``None``: none, or no name)."""
        if name is None:
            return None
        with self._lock:
            return self._actions.get(name)

    def names(self) -> list[str]:
        """The registered action names, sorted."""
        with self._lock:
            return sorted(self._actions)
