"""The watchlist action registry: one action per name, found by the watchlist's action."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from oneeye.services.actions import StoredSighting, WatchlistActions, announced_first


def sighting(action: str | None) -> StoredSighting:
    return StoredSighting(
        id="a" * 32,
        camera_id="door",
        camera_name="Front door",
        person_id="p1",
        person_name="Ada",
        account_id=None,
        watchlist="vip",
        watchlist_action=action,
        distance=0.25,
        seen_at=datetime(2026, 1, 1, tzinfo=UTC),
        snapshot_key=None,
    )


def test_actions_are_found_by_name_and_registered_once() -> None:
    actions = WatchlistActions()
    calls: list[str] = []

    def vip(s: StoredSighting, announce: Callable[[], None]) -> None:
        calls.append(s.id)
        announce()

    actions.register("vip", vip)
    assert actions.get("vip") is vip
    assert actions.get("none") is None
    assert actions.get(None) is None
    with pytest.raises(ValueError, match="'vip' is registered already"):
        actions.register("vip", vip)
    assert actions.names() == ["vip"]


def test_announced_first_announces_before_acting() -> None:
    order: list[str] = []
    action = announced_first(lambda s: order.append(f"act {s.watchlist_action}"))
    action(sighting("vip"), lambda: order.append("announce"))
    assert order == ["announce", "act vip"]
