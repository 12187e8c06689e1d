"""Helpers for the gallery tests that search while other threads change the index."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from oneeye.gallery import GalleryIndex


def assert_consistent_matches(
    index: GalleryIndex,
    queries: npt.NDArray[np.float32],
    owner: dict[str, str],
    owner_lock: threading.Lock,
) -> None:
    """A batch search and a single search of ``queries``: each answer sorted by distance, one
    match a person, and every template matched to the person who owns it."""
    for matches in [*index.search_batch(queries, k=5), index.search(queries[0], k=3)]:
        distances = [m.distance for m in matches]
        assert distances == sorted(distances)
        assert len({m.person for m in matches}) == len(matches)
        with owner_lock:
            assert all(owner[m.template] == m.person for m in matches)


def guarded(
    target: Callable[[int], None],
    worker: int,
    errors: list[BaseException],
    stop: threading.Event,
) -> Callable[[], None]:
    """``target(worker)`` for a thread: an exception is kept in ``errors`` and stops the
    others."""

    def run() -> None:
        try:
            target(worker)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    return run
