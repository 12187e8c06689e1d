"""The bus payload models: every field bounded, times near the receiver's clock, drops counted
and logged once per source without their content."""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from oneeye.bus.base import (
    ALL_SIGHTINGS,
    EDGE_CAMERA_STATUS,
    EDGE_SIGHTINGS,
    GALLERY_CHANGES,
    SIGHTINGS,
    Message,
)
from oneeye.bus.messages import (
    AddChange,
    CameraStatusPayload,
    EdgeStatusPayload,
    GalleryChangePayload,
    GalleryTemplate,
    GalleryVersionPayload,
    PayloadLimits,
    PayloadReader,
    Rejections,
    RemovePersonChange,
    SightingPayload,
    max_bytes,
    new_signing_key,
    sign,
    signing_key_from_bytes,
    verify,
    verify_key_bytes,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = PayloadLimits(max_future_skew=120, max_sighting_age=7 * 86400, clock=NOW.timestamp)
UNIT = [1.0 / math.sqrt(128)] * 128
EPOCH = "e" * 32


def sighting(**changes: Any) -> dict[str, Any]:
    """A valid sighting as it arrives, with ``changes``."""
    return {
        "v": 1,
        "id": "a" * 32,
        "event": "sighting",
        "camera": "door",
        "track": 3,
        "person": "b" * 32,
        "watchlist": "customers",
        "distance": 0.21,
        "quality": 0.8,
        "frame": 12,
        "t": 0.4,
        "box": [10, 60, 60, 10],
        "seen_at": NOW.isoformat(),
        "snapshot_key": "snapshots/ab/abcdef.jpg",
        "embedding": None,
        **changes,
    }


def validate(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    return model.model_validate(data, context={"limits": LIMITS})


def test_a_valid_sighting_is_read_with_its_time_in_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2))).isoformat()  # 14:00+02:00
    read = validate(SightingPayload, sighting(seen_at=local, embedding=UNIT))
    assert isinstance(read, SightingPayload)
    assert read.seen_at.tzinfo == UTC
    assert read.box == (10, 60, 60, 10)
    assert read.embedding == pytest.approx(UNIT)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"id": "not-hex"}, "id"),
        ({"event": "waved"}, "event"),
        ({"camera": "Front Door"}, "camera"),
        ({"camera": "c" * 65}, "camera"),
        ({"track": -1}, "track"),
        ({"person": "p" * 65}, "person"),
        ({"watchlist": "w" * 900_000}, "watchlist"),
        ({"watchlist": "Customers"}, "watchlist"),
        ({"distance": math.nan}, "distance"),
        ({"distance": -0.1}, "distance"),
        ({"quality": math.inf}, "quality"),
        ({"t": -1}, "t"),
        ({"box": [1, 2, 3]}, "box"),
        ({"box": [1, 2, 3, 10**9]}, "box.3"),
        ({"seen_at": "yesterday"}, "seen_at"),
        ({"seen_at": "2026-06-01T12:00:00"}, "timezone_aware"),
        ({"seen_at": "9999-12-31T23:59:59+00:00"}, "ahead of the receiver's clock"),
        ({"seen_at": (NOW + timedelta(minutes=5)).isoformat()}, "ahead of the receiver's clock"),
        ({"seen_at": (NOW - timedelta(days=8)).isoformat()}, "before the receiver's clock"),
        ({"snapshot_key": "../../etc/passwd"}, "snapshot_key"),
        ({"snapshot_key": "snapshots/" + "a" * 300 + ".jpg"}, "snapshot_key"),
        ({"embedding": [0.1] * 127}, "embedding"),
        ({"embedding": [0.1] * 129}, "embedding"),
        ({"embedding": [math.nan, *UNIT[1:]]}, "embedding.0"),
        ({"embedding": [math.inf, *UNIT[1:]]}, "embedding.0"),
        ({"embedding": [5.0, *UNIT[1:]]}, "unit vector"),
        ({"extra": "field"}, "extra_forbidden"),
        ({"v": 2}, "v"),
    ],
)
def test_a_sighting_out_of_bounds_is_refused(change: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(SightingPayload, sighting(**change))
    assert error in str(caught.value)


def test_times_near_now_pass_at_both_ends_of_the_window() -> None:
    validate(SightingPayload, sighting(seen_at=(NOW + timedelta(seconds=119)).isoformat()))
    validate(SightingPayload, sighting(seen_at=(NOW - timedelta(days=6.9)).isoformat()))


def test_without_limits_a_producer_checks_shape_not_time() -> None:
    """An edge re-reads its own queued sighting however old it is; the receiver judges."""
    old = sighting(seen_at="2020-01-01T00:00:00+00:00")
    assert SightingPayload.model_validate(old).seen_at.year == 2020


@pytest.mark.parametrize(
    ("model", "data", "error"),
    [
        (CameraStatusPayload, {"camera": "door", "name": "x", "state": "melting"}, "state"),
        (CameraStatusPayload, {"camera": "door", "name": "x" * 201, "state": "online"}, "name"),
        (
            CameraStatusPayload,
            {"camera": "door", "name": "x", "state": "online", "error": "e" * 501},
            "error",
        ),
        (
            CameraStatusPayload,
            {"camera": "door", "name": "x", "state": "online", "fps": math.nan},
            "fps",
        ),
        (
            CameraStatusPayload,
            {
                "camera": "door",
                "name": "x",
                "state": "online",
                "last_frame_at": "9999-01-01T00:00:00Z",
            },
            "ahead of the receiver's clock",
        ),
        (EdgeStatusPayload, {"edge": "e1", "cameras": "door", "state": "online"}, "cameras"),
        (EdgeStatusPayload, {"edge": "e1", "cameras": ["x"] * 257, "state": "online"}, "cameras"),
        (EdgeStatusPayload, {"edge": "E 1", "cameras": [], "state": "online"}, "edge"),
        (
            EdgeStatusPayload,
            {"edge": "e1", "cameras": [], "state": "online", "gallery_applied_at": 4e9},
            "ahead of the receiver's clock",
        ),
        (GalleryVersionPayload, {"version": -1, "epoch": EPOCH}, "version"),
        (GalleryVersionPayload, {"version": 2**60, "epoch": EPOCH}, "version"),
        (
            GalleryChangePayload,
            {"v": 1, "version": 3, "epoch": EPOCH, "op": "rename"},
            "union_tag_invalid",
        ),
        (
            GalleryChangePayload,
            {"v": 1, "version": 3, "epoch": EPOCH, "op": "add", "templates": []},
            "too_short",
        ),
        (
            GalleryChangePayload,
            {
                "v": 1,
                "version": 3,
                "op": "add",
                "templates": [
                    {"id": "t@customers", "person": "p", "watchlist": "customers", "embedding": []}
                ],
            },
            "embedding",
        ),
        (
            GalleryChangePayload,
            {
                "v": 1,
                "version": 3,
                "epoch": EPOCH,
                "op": "threshold",
                "watchlist": "customers",
                "threshold": 0,
            },
            "threshold",
        ),
        (
            GalleryChangePayload,
            {"v": 1, "version": 3, "epoch": EPOCH, "op": "remove", "templates": ["no-watchlist"]},
            "templates.0",
        ),
    ],
)
def test_other_payloads_out_of_bounds_are_refused(
    model: type[BaseModel], data: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate(model, data)
    assert error in str(caught.value)


def test_a_gallery_change_is_told_apart_by_its_op() -> None:
    template = GalleryTemplate(
        id="t1@customers", person="p1", watchlist="customers", embedding=UNIT
    )
    add = AddChange(version=4, epoch=EPOCH, templates=[template])
    read = GalleryChangePayload.model_validate_json(add.model_dump_json())
    assert read.root == add
    gone = RemovePersonChange(version=5, epoch=EPOCH, person="p1")
    assert GalleryChangePayload.model_validate_json(gone.model_dump_json()).root == gone


def test_byte_limits_per_topic_are_below_the_bus_limit() -> None:
    assert max_bytes(SIGHTINGS.format(camera="door"), 1_000_000) == 16_384
    assert max_bytes(EDGE_SIGHTINGS.format(edge="e1", camera="door"), 1_000_000) == 16_384
    assert max_bytes(EDGE_CAMERA_STATUS.format(edge="e1", camera="door"), 1_000_000) == 4_096
    assert max_bytes(GALLERY_CHANGES, 500_000) == 500_000
    assert max_bytes("somewhere/else", 1_000_000) == 1_000_000
    # The largest sighting the model allows fits its limit with room to spare.
    biggest = SightingPayload.model_validate(
        sighting(
            person="p" * 64,
            watchlist="w" * 64,
            snapshot_key="s" * 195 + ".jpg",
            embedding=[-0.0883883476483184] * 128,
            track=2**53,
            frame=2**53,
        )
    )
    assert len(biggest.model_dump_json()) < 16_384 / 2


def message(payload: dict[str, Any], camera: str = "door") -> Message:
    return Message(SIGHTINGS.format(camera=camera), payload)


def test_a_flood_is_counted_per_reason_and_logged_once_per_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rejections = Rejections()
    reader = PayloadReader(LIMITS, rejections)
    secret = "Barack Obama, 1600 Pennsylvania Ave"
    for _ in range(500):
        assert reader.read(SightingPayload, message(sighting(watchlist=secret))) is None
    for _ in range(20):
        future = sighting(seen_at="9999-12-31T23:59:59+00:00")
        assert reader.read(SightingPayload, message(future, "lobby")) is None
    stale = sighting(seen_at="2000-01-01T00:00:00+00:00")
    assert reader.read(SightingPayload, message(stale, "lobby")) is None
    assert rejections.counts() == {
        (ALL_SIGHTINGS, "invalid"): 500,
        (ALL_SIGHTINGS, "future"): 20,
        (ALL_SIGHTINGS, "stale"): 1,
    }
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one per source (door, lobby)
    assert (
        "oneeye/v1/cameras/door/sightings: invalid: watchlist: string_pattern_mismatch"
        in (lines[0])
    )
    assert secret not in caplog.text
    assert reader.read(SightingPayload, message(sighting())) is not None


def test_a_source_is_logged_again_after_a_while_with_the_count() -> None:
    rejections = Rejections(relog_every=0.0)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("oneeye.bus.messages")
    logger.addHandler(handler)
    try:
        rejections.record("t/1", "invalid", "x: missing")
        rejections.record("t/1", "invalid", "x: missing")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert rejections.total() == 2


KEY = signing_key_from_bytes(bytes(range(32)))
PUBLIC = KEY.public_key()


def test_a_signed_change_verifies_after_the_wire_and_nothing_else_does() -> None:
    template = GalleryTemplate(id="t@customers", person="p1", watchlist="customers", embedding=UNIT)
    change = sign(KEY, AddChange(version=9, epoch=EPOCH, templates=[template]))
    assert change.sig is not None
    assert len(change.sig) == 128
    # Through the wire (other spacing and key order would do as well): still valid.
    wire = json.loads(change.model_dump_json())
    shuffled = json.dumps(dict(reversed(list(wire.items()))), indent=2)
    read = GalleryChangePayload.model_validate_json(shuffled).root
    assert verify(PUBLIC, read)
    assert not verify(None, read), "no key, nothing verifies"
    assert not verify(new_signing_key().public_key(), read), "another key"
    assert not verify(PUBLIC, read.model_copy(update={"sig": None})), "unsigned"
    # Any field changed under the signature: the version, the epoch, a person, one float.
    assert not verify(PUBLIC, read.model_copy(update={"version": 10}))
    assert not verify(PUBLIC, read.model_copy(update={"epoch": "f" * 32}))
    evil = template.model_copy(update={"person": "p2"})
    assert not verify(PUBLIC, read.model_copy(update={"templates": [evil]}))
    nudged = template.model_copy(update={"embedding": [UNIT[0] + 1e-9, *UNIT[1:]]})
    assert not verify(PUBLIC, read.model_copy(update={"templates": [nudged]}))
    # A version message and a change are signed apart: one's signature is not the other's.
    current = sign(KEY, GalleryVersionPayload(version=9, epoch=EPOCH))
    assert verify(PUBLIC, current)
    assert not verify(PUBLIC, current.model_copy(update={"sig": change.sig}))


def test_the_public_key_cannot_sign() -> None:
    """What an edge holds is the public key: used as a private key (its bytes as a seed) it
    makes a signature the public key refuses."""
    change = AddChange(
        version=9,
        epoch=EPOCH,
        templates=[
            GalleryTemplate(id="t@customers", person="p1", watchlist="customers", embedding=UNIT)
        ],
    )
    forged = sign(signing_key_from_bytes(verify_key_bytes(KEY)), change)
    assert not verify(PUBLIC, forged)


def test_signing_an_enrolments_change_takes_microseconds() -> None:
    templates = [
        GalleryTemplate(id=f"t{i}@customers", person="p1", watchlist="customers", embedding=UNIT)
        for i in range(2)
    ]
    change = AddChange(version=9, epoch=EPOCH, templates=templates)
    started = time.perf_counter()
    for _ in range(100):
        signed = sign(KEY, change)
    signing = (time.perf_counter() - started) / 100
    started = time.perf_counter()
    for _ in range(100):
        assert verify(PUBLIC, signed)
    verifying = (time.perf_counter() - started) / 100
    print(
        f"Ed25519, two-template add: sign {signing * 1e6:.0f} us, verify {verifying * 1e6:.0f} us"
    )
    # ~0.1 ms each measured; 5 ms is far inside the one second an enrolment has.
    assert signing + verifying < 0.005, f"{(signing + verifying) * 1e6:.0f} us"
