"""Every payload that goes on the bus, as one typed, size-limited model per topic.

Producers build these models and publish them; consumers read a delivered message into one of
them with :class:`PayloadReader` and see nothing else. Anything that can publish on the broker
can put any bytes on a topic, so a model trusts nothing: every string, list and number has a
bound, an embedding is exactly 128 finite floats, and times must be near the receiver's clock
(a sighting at most ``max_sighting_age`` old, so an edge's disk queue may still deliver after
an outage; nothing later than ``max_future_skew`` ahead). A payload is also bounded in bytes
per topic, checked by the bus before any JSON is parsed (:func:`max_bytes`).

A payload that fails is dropped, counted per topic kind and reason (:data:`REJECTIONS`, for a
metrics endpoint), and logged once per source (its topic) per ``RELOG_EVERY``, never with its
content: a flood of bad messages does not flood the log, and no personal data reaches it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from oneeye.bus.base import (
    ALL_EDGE_CAMERA_STATUS,
    ALL_EDGE_SIGHTINGS,
    ALL_EDGE_STATUS,
    ALL_SIGHTINGS,
    ALL_STATUS,
    GALLERY_CHANGES,
    GALLERY_VERSION,
    SLUG_PATTERN,
    Message,
    topic_matches,
)

logger = logging.getLogger(__name__)

EMBEDDING_SIZE = 128
MAX_CAMERAS_PER_EDGE = 256
MAX_TEMPLATES_PER_CHANGE = 300
"""An ``add`` carries a person's new templates (one per watchlist): a handful. 300 of them is
~0.8 MB of JSON, under the bus's default 1 MB; a larger change is refused by the edge and, its
version missing, the edge fetches the whole gallery instead."""
MAX_ENTRIES_PER_REMOVE = 10_000
DEFAULT_MAX_FUTURE_SKEW = 120.0
"""Seconds a time may lie ahead of the receiver's clock (clocks of two hosts drift)."""
DEFAULT_MAX_SIGHTING_AGE = 7 * 24 * 3600.0
"""Seconds a sighting may be old when it arrives: an edge's disk queue delivers what it
saw during an outage when the broker is back. Equal to the broker session's default expiry
(``ONEEYE_MQTT__SESSION_EXPIRY``): a server away longer than that loses its queue anyway."""
LAST_TIMESTAMP = 4_102_444_800.0
"""2100-01-01 as ``time.time()``: a bound that keeps a timestamp convertible to a date."""
RELOG_EVERY = 3600.0
"""Seconds before a source whose messages keep failing is logged again (with the count)."""
MAX_SOURCES_LOGGED = 1_000
"""Sources remembered for the once-per-source log; a flood of new topics cannot grow it."""

# Field types ----------------------------------------------------------------------------------

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
"""A camera or edge id."""
WatchlistName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
"""A person or template id (the server's are 32 hex characters)."""
EntryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}@[a-z0-9_-]{1,64}$")]
"""A gallery entry: ``<template id>@<watchlist>``."""
PhotoKey = Annotated[
    str,
    StringConstraints(max_length=200, pattern=r"^[a-z0-9_-]+(/[a-z0-9_-]+)*\.[a-z0-9]{2,5}$"),
]
Text = Annotated[str, StringConstraints(max_length=500)]
"""A human sentence (an error); producers cut theirs to fit with :func:`clip`."""
Name = Annotated[str, StringConstraints(max_length=200)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**53)]
Timestamp = Annotated[float, Field(ge=0.0, le=LAST_TIMESTAMP, allow_inf_nan=False)]
"""A ``time.time()`` value."""


def _unit_components(values: list[float]) -> list[float]:
    # A unit vector's components lie in [-1, 1]; a little slack for float32 rounding.
    if any(abs(v) > 1.001 for v in values):
        raise ValueError("an embedding is a unit vector: every component lies in [-1, 1]")
    return values


Embedding = Annotated[
    list[FiniteFloat],
    Field(min_length=EMBEDDING_SIZE, max_length=EMBEDDING_SIZE),
    AfterValidator(_unit_components),
]
"""Exactly 128 finite floats (no NaN, no infinity), each in [-1, 1]."""


def clip(text: str | None, limit: int = 500) -> str | None:
    """``text`` cut to ``limit`` characters (for error sentences a model bounds)."""
    return None if text is None else text[:limit]


# Limits and the time checks -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayloadLimits:
    """How far from the receiver's clock a payload's times may be.

    Args:
        max_future_skew: seconds a time may be ahead of now.
        max_sighting_age: seconds a sighting's ``seen_at`` may be behind now.
        clock: the receiver's clock (``time.time``; tests move it).
    """

    max_future_skew: float = DEFAULT_MAX_FUTURE_SKEW
    max_sighting_age: float = DEFAULT_MAX_SIGHTING_AGE
    clock: Callable[[], float] = time.time

    def now(self) -> datetime:
        """The receiver's time, aware, UTC."""
        return datetime.fromtimestamp(self.clock(), UTC)


def _check_time(value: datetime | None, info: ValidationInfo, max_age: float | None) -> None:
    """Refuse a time ahead of the receiver's clock (and, with ``max_age``, too old). Without
    limits in the validation context (a producer checking its own model) times pass."""
    limits = info.context.get("limits") if isinstance(info.context, dict) else None
    if value is None or not isinstance(limits, PayloadLimits):
        return
    now = limits.now()
    if value > now + timedelta(seconds=limits.max_future_skew):
        raise ValueError(
            f"time is more than {limits.max_future_skew:.0f} s ahead of the receiver's clock"
        )
    if max_age is not None and value < now - timedelta(seconds=max_age):
        raise ValueError(f"time is more than {max_age:.0f} s before the receiver's clock")


def _check_timestamp(value: float | None, info: ValidationInfo) -> None:
    if value is not None:
        _check_time(datetime.fromtimestamp(value, UTC), info, None)


# The models -----------------------------------------------------------------------------------


class BusPayload(BaseModel):
    """What every payload shares: ``v``, the schema version, and no unknown fields (a newer
    producer that adds one bumps ``v``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    MAX_BYTES: ClassVar[int] = 16_384
    """The most bytes this payload takes on the wire; the bus refuses more before parsing."""

    v: Literal[1] = 1
    """The schema version (``base.SCHEMA_VERSION``)."""


class SightingPayload(BusPayload):
    """``oneeye/v1/cameras/{camera}/sightings``: a camera saw a face (one per track per
    person), updated it, or saw it leave."""

    MAX_BYTES: ClassVar[int] = 16_384  # 128 floats are ~3 KB of JSON

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    event: Literal["sighting", "sighting_update", "left"]
    camera: Slug
    track: Count
    person: Identifier | None = None
    watchlist: WatchlistName | None = None
    distance: Annotated[float, Field(ge=0.0, le=4.0, allow_inf_nan=False)] | None = None
    quality: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    frame: Count = 0
    t: Annotated[float, Field(ge=0.0, le=1e9, allow_inf_nan=False)] = 0.0
    """Seconds into the source (a file's position; a live source's uptime)."""
    box: tuple[
        Annotated[int, Field(ge=-100_000, le=100_000)],
        Annotated[int, Field(ge=-100_000, le=100_000)],
        Annotated[int, Field(ge=-100_000, le=100_000)],
        Annotated[int, Field(ge=-100_000, le=100_000)],
    ]
    """``(top, right, bottom, left)`` in the frame's pixels."""
    seen_at: AwareDatetime
    snapshot_key: PhotoKey | None = None
    embedding: Embedding | None = None
    """An unknown face's embedding (for searching the past), else ``None``."""

    @field_validator("seen_at")
    @classmethod
    def _near_now(cls, value: datetime, info: ValidationInfo) -> datetime:
        limits = info.context.get("limits") if isinstance(info.context, dict) else None
        age = limits.max_sighting_age if isinstance(limits, PayloadLimits) else None
        _check_time(value, info, age)
        return value.astimezone(UTC)


CameraState = Literal["online", "reconnecting", "offline", "ended", "disabled"]


class CameraStatusPayload(BusPayload):
    """``oneeye/v1/cameras/{camera}/status`` (retained): a camera's health. A retained status
    may be old (a camera offline for a month); it may not lie in the future."""

    MAX_BYTES: ClassVar[int] = 4_096

    camera: Slug
    name: Name
    state: CameraState
    fps: Annotated[float, Field(ge=0.0, le=1_000.0, allow_inf_nan=False)] = 0.0
    last_frame_at: AwareDatetime | None = None
    error: Text | None = None
    frames: Count = 0
    dropped: Count = 0
    sightings: Count = 0
    removed: bool = False
    """The camera was deleted: consumers forget it."""
    edge: Slug | None = None
    """Set when a server marks a dead edge's camera offline."""
    at: AwareDatetime | None = None

    @field_validator("last_frame_at", "at")
    @classmethod
    def _not_ahead(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        _check_time(value, info, None)
        return value


class EdgeStatusPayload(BusPayload):
    """``oneeye/v1/edges/{edge}/status`` (retained): an edge's birth message, periodic status
    and last will."""

    MAX_BYTES: ClassVar[int] = 32_768  # 256 camera ids

    edge: Slug
    cameras: Annotated[list[Slug], Field(max_length=MAX_CAMERAS_PER_EDGE)]
    state: Literal["online", "offline"]
    error: Text | None = None
    gallery_version: Count | None = None
    gallery_applied_at: (
        Annotated[float, Field(ge=0.0, le=LAST_TIMESTAMP, allow_inf_nan=False)] | None
    ) = None
    """``time.time()`` when ``gallery_version`` came into force here."""
    gallery_entries: Count | None = None
    resyncs: Count | None = None
    queued_sightings: Count | None = None
    queued_snapshots: Count | None = None
    sent_sightings: Count | None = None
    at: AwareDatetime | None = None

    @field_validator("at")
    @classmethod
    def _not_ahead(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        _check_time(value, info, None)
        return value

    @field_validator("gallery_applied_at")
    @classmethod
    def _timestamp_not_ahead(cls, value: float | None, info: ValidationInfo) -> float | None:
        _check_timestamp(value, info)
        return value


class GalleryTemplate(BaseModel):
    """One entry an ``add`` puts in the gallery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EntryId
    person: Identifier
    watchlist: WatchlistName
    quality: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 1.0
    embedding: Embedding


Version = Annotated[int, Field(ge=0, le=2**53)]


Epoch = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""Names one build of a server's gallery (made anew whenever it is rebuilt): versions count
within an epoch, so a signed change recorded before a restart cannot be replayed after it."""
Signature = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
"""Ed25519 (64 bytes), hex."""


class _Signed(BusPayload):
    """A payload the server signs (see :func:`sign`): ``sig`` over everything else."""

    epoch: Epoch
    sig: Signature | None = None
    """``None`` only before signing; an edge drops a payload without a valid one."""


class _Change(_Signed):
    """What every gallery change carries: the gallery's version once it is applied."""

    MAX_BYTES: ClassVar[int] = 1_000_000

    version: Version


class AddChange(_Change):
    """Entries added (a person enrolled, or put on a watchlist)."""

    op: Literal["add"] = "add"
    templates: Annotated[
        list[GalleryTemplate], Field(min_length=1, max_length=MAX_TEMPLATES_PER_CHANGE)
    ]


class RemoveChange(_Change):
    """Entries removed (a template deleted)."""

    op: Literal["remove"] = "remove"
    templates: Annotated[list[EntryId], Field(min_length=1, max_length=MAX_ENTRIES_PER_REMOVE)]


class RemovePersonChange(_Change):
    """Every entry of one person removed."""

    op: Literal["remove_person"] = "remove_person"
    person: Identifier


class ThresholdChange(_Change):
    """A watchlist's match threshold changed."""

    op: Literal["threshold"] = "threshold"
    watchlist: WatchlistName
    threshold: Annotated[float, Field(gt=0.0, le=2.0, allow_inf_nan=False)]


class ReloadChange(_Change):
    """The server rebuilt its gallery (e.g. after a restart): versions start again."""

    op: Literal["reload"] = "reload"
    templates: Count
    """How many entries the rebuilt gallery holds."""


AnyChange = Annotated[
    AddChange | RemoveChange | RemovePersonChange | ThresholdChange | ReloadChange,
    Field(discriminator="op"),
]


class GalleryChangePayload(RootModel[AnyChange]):
    """``oneeye/v1/gallery/changes``: one change, told apart by ``op``; ``root`` is it."""

    MAX_BYTES: ClassVar[int] = 1_000_000


class GalleryVersionPayload(_Signed):
    """``oneeye/v1/gallery/version`` (retained, signed): the server's current gallery version."""

    MAX_BYTES: ClassVar[int] = 1_024

    version: Version


# Signing -------------------------------------------------------------------------------------
# Ed25519, not a shared secret: the servers keep the private key and edges get only the public
# one, so nothing an edge holds (or leaks) can sign a change another edge would accept.

VERIFY_KEY_BYTES = 32
"""An Ed25519 public key, raw."""

S = TypeVar("S", bound=_Signed)


def new_signing_key() -> Ed25519PrivateKey:
    """A fresh private key for signing gallery changes."""
    return Ed25519PrivateKey.generate()


def signing_key_from_bytes(raw: bytes) -> Ed25519PrivateKey:
    """The private key stored as its 32 raw bytes (``ValueError`` if it is not one)."""
    return Ed25519PrivateKey.from_private_bytes(raw)


def verify_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of ``key``'s public half: what edges are given."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    """A public key from its 32 raw bytes (``ValueError`` if they are not one)."""
    if len(raw) != VERIFY_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {VERIFY_KEY_BYTES} bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _signed_bytes(payload: _Signed) -> bytes:
    """The canonical encoding a signature covers: the payload's kind, then every field but
    ``sig`` (the version and epoch too) as the model writes them, in the model's field order.
    Both ends compute it from the model, not from the wire, so the wire's spacing and key order
    do not matter; a float read back from the wire is the same float, written the same way."""
    body = payload.model_dump_json(exclude={"sig"})
    return f"oneeye-gallery:{type(payload).__name__}\n".encode() + body.encode()


def sign(key: Ed25519PrivateKey, payload: S) -> S:
    """``payload`` with ``sig`` set: Ed25519 under the server's private ``key`` over its
    canonical encoding."""
    signature = key.sign(_signed_bytes(payload)).hex()
    return payload.model_copy(update={"sig": signature})


def verify(key: Ed25519PublicKey | None, payload: _Signed) -> bool:
    """Whether ``payload`` carries a valid signature by the holder of the private half of
    ``key`` (``False`` without a key or a signature)."""
    if key is None or payload.sig is None:
        return False
    try:
        key.verify(bytes.fromhex(payload.sig), _signed_bytes(payload))
    except (InvalidSignature, ValueError):
        return False
    return True


# Reading a message ----------------------------------------------------------------------------

_TOPIC_KINDS: tuple[tuple[str, type[BaseModel]], ...] = (
    (ALL_SIGHTINGS, SightingPayload),
    (ALL_STATUS, CameraStatusPayload),
    (ALL_EDGE_SIGHTINGS, SightingPayload),
    (ALL_EDGE_CAMERA_STATUS, CameraStatusPayload),
    (ALL_EDGE_STATUS, EdgeStatusPayload),
    (GALLERY_CHANGES, GalleryChangePayload),
    (GALLERY_VERSION, GalleryVersionPayload),
)
"""Each OneEye topic pattern and the one model its payloads are."""


def topic_kind(topic: str) -> str:
    """The topic pattern ``topic`` belongs to (counters are kept per pattern, so a flood of
    made-up camera ids cannot grow them), or ``"other"``."""
    for pattern, _ in _TOPIC_KINDS:
        if topic_matches(pattern, topic):
            return pattern
    return "other"


def max_bytes(topic: str, default: int) -> int:
    """The most bytes a payload on ``topic`` may take (``default`` for a topic of no model):
    the bus checks this before it parses any JSON."""
    for pattern, model in _TOPIC_KINDS:
        if topic_matches(pattern, topic):
            limit: int = getattr(model, "MAX_BYTES", default)
            return min(limit, default)
    return default


class Rejections:
    """Counts dropped payloads per ``(topic kind, reason)`` and logs each source (topic) once
    per ``relog_every`` seconds, with how many it sent since, never with the content."""

    def __init__(self, relog_every: float = RELOG_EVERY) -> None:
        self.relog_every = relog_every
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._logged: dict[str, tuple[float, int]] = {}
        """Source -> (when it was last logged, drops since)."""
        self._flood_logged = False

    def record(self, topic: str, reason: str, detail: str) -> None:
        """Count one dropped payload and log it if its source was not logged lately.

        Args:
            topic: where it came (its source: the camera's or edge's topic).
            reason: a short code (``too_large``, ``not_json``, ``invalid``, ``unsigned``...).
            detail: what was wrong, naming fields, never their values.
        """
        now = time.monotonic()
        with self._lock:
            self._counts[(topic_kind(topic), reason)] += 1
            last = self._logged.get(topic)
            if last is not None and now - last[0] < self.relog_every:
                self._logged[topic] = (last[0], last[1] + 1)
                return
            if last is None and len(self._logged) >= MAX_SOURCES_LOGGED:
                # Many sources at once (made-up camera ids): forget the quiet ones, and if
                # that frees nothing, log this flood once rather than each new source.
                self._logged = {
                    t: seen for t, seen in self._logged.items() if now - seen[0] < self.relog_every
                }
                if len(self._logged) >= MAX_SOURCES_LOGGED:
                    if not self._flood_logged:
                        self._flood_logged = True
                        logger.warning(
                            "bus: dropping messages from more than %d sources; further sources "
                            "are counted, not logged",
                            MAX_SOURCES_LOGGED,
                        )
                    return
                self._flood_logged = False
            self._logged[topic] = (now, 0)
        since = f" ({last[1]} more dropped from it since it was last logged)" if last else ""
        logger.warning("bus: dropped a message on %s: %s: %s%s", topic, reason, detail, since)

    def counts(self) -> dict[tuple[str, str], int]:
        """Dropped payloads so far, by ``(topic kind, reason)``."""
        with self._lock:
            return dict(self._counts)

    def total(self, reason: str | None = None) -> int:
        """How many were dropped (for one reason, or all)."""
        with self._lock:
            return sum(n for (_, r), n in self._counts.items() if reason in (None, r))


REJECTIONS = Rejections()
"""This process's count of dropped bus payloads (what a metrics endpoint reads)."""

M = TypeVar("M", bound=BaseModel)


def describe_errors(exc: ValidationError, limit: int = 3) -> str:
    """A validation error as field names and error kinds, without the values (which may be a
    person's id, a name or an embedding)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        parts.append(f"{where}: {error['type']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class PayloadReader:
    """Reads delivered messages into their models, with the receiver's limits.

    Args:
        limits: how far from now times may be.
        rejections: where drops are counted and logged (the process's by default).
    """

    def __init__(
        self, limits: PayloadLimits | None = None, rejections: Rejections | None = None
    ) -> None:
        self.limits = limits or PayloadLimits()
        self.rejections = rejections or REJECTIONS

    def read(self, model: type[M], message: Message) -> M | None:
        """``message``'s payload as ``model``, or ``None`` (dropped, counted, logged)."""
        try:
            return model.model_validate(message.payload, context={"limits": self.limits})
        except ValidationError as exc:
            self.reject(message.topic, _reason(exc), describe_errors(exc))
            return None

    def reject(self, topic: str, reason: str, detail: str) -> None:
        """Drop a message for a reason found after it was read (signature, topic)."""
        self.rejections.record(topic, reason, detail)


def _reason(exc: ValidationError) -> str:
    """``stale`` or ``future`` for a time too far from now, else ``invalid``."""
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error.get("msg", ""))
        if "ahead of the receiver's clock" in message:
            return "future"
        if "before the receiver's clock" in message:
            return "stale"
    return "invalid"
