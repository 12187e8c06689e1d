"""The process's Prometheus metrics that code updates as it works: timings and counts.

What is read at scrape time (camera frames per second, gallery size, outbox depth, WebSocket
clients...) is not here: ``oneeye.services.metrics`` collects it from the running parts when
``/metrics`` is asked. Everything here lives in :data:`REGISTRY`, this package's own registry,
not the client library's global one, so that a library embedding OneEye exports nothing by
surprise.

Labels name cameras, watchlists, routes (their template: ``/api/v1/people/{person_id}``, never
a raw path), channels and reasons; never a person, a sighting, an address or a name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "BUS_LAG",
    "DETECTION_SECONDS",
    "ENCODING_SECONDS",
    "NOTIFICATIONS",
    "REGISTRY",
    "REQUEST_SECONDS",
    "RETRO_SEARCH_SECONDS",
    "SIGHTINGS",
]

REGISTRY = CollectorRegistry(auto_describe=True)
"""OneEye's own metrics (``/metrics`` exports this registry and the scrape-time collector)."""

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Buckets for work done per frame or per request (seconds)."""

DETECTION_SECONDS = Histogram(
    "oneeye_detection_seconds",
    "Time one detection round of a camera took (the face finders over one frame).",
    ["camera"],
    buckets=_FAST,
    registry=REGISTRY,
)
ENCODING_SECONDS = Histogram(
    "oneeye_encoding_seconds",
    "Time one encoding batch of a camera took (the faces of one frame that were due).",
    ["camera"],
    buckets=_FAST,
    registry=REGISTRY,
)
SIGHTINGS = Counter(
    "oneeye_sightings",
    "Sightings published by this process's cameras, by watchlist and decision "
    "(known: a person on the watchlist; unknown: nobody).",
    ["camera", "watchlist", "decision"],
    registry=REGISTRY,
)
BUS_LAG = Histogram(
    "oneeye_bus_lag_seconds",
    "From a sighting's frame to this server handling its bus message.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "oneeye_http_request_seconds",
    "Web request latency by route template, method and status class.",
    ["route", "method", "status"],
    buckets=_FAST,
    registry=REGISTRY,
)
RETRO_SEARCH_SECONDS = Histogram(
    "oneeye_retro_search_seconds",
    "How long a new case's search of past unknown faces took.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "oneeye_notification_attempts",
    "Notification delivery attempts by channel and outcome (sent, retry, given_up).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
