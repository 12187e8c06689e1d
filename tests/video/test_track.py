"""FaceTracker, TrackVote and SightingDebouncer on synthetic boxes and votes; no images."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from oneeye.gallery import GalleryIndex
from oneeye.types import (
    EMBEDDING_SIZE,
    UNKNOWN,
    Detection,
    FaceBox,
    FaceQuality,
    Identification,
    Match,
    Template,
)
from oneeye.video.track import FaceTracker, SightingDebouncer, Track
from oneeye.video.vote import TrackVote

SIZE = 60


def box_at(x: int, y: int, size: int = SIZE) -> FaceBox:
    """A square box with its top-left corner at ``(x, y)``."""
    return FaceBox(top=y, right=x + size - 1, bottom=y + size - 1, left=x)


def detect(*boxes: FaceBox) -> list[Detection]:
    return [Detection(box=box, confidence=1.0, detector="hog") for box in boxes]


def track_at(tracks: list[Track], box: FaceBox) -> Track:
    """The one track whose box is exactly ``box``."""
    found = [track for track in tracks if track.box == box]
    assert len(found) == 1, f"expected one track at {box}, got {tracks}"
    return found[0]


# --- FaceTracker ---------------------------------------------------------------------------


@pytest.mark.parametrize("detect_every", [1, 2, 3])
@pytest.mark.parametrize("reverse_order", [False, True])
def test_two_faces_crossing_paths_keep_their_ids(detect_every: int, reverse_order: bool) -> None:
    tracker = FaceTracker()
    step = 15
    ids: tuple[int, int] | None = None
    crossed = False
    for frame in range(41):
        a = box_at(frame * step, 100)
        b = box_at(600 - frame * step, 120)
        crossed = crossed or a.iou(b) >= 0.5
        if frame % detect_every:
            tracks = tracker.update(frame, None)
        else:
            boxes = (b, a) if reverse_order else (a, b)
            tracks = tracker.update(frame, detect(*boxes))
        assert len(tracks) == 2
        if ids is None:
            ids = (track_at(tracks, a).id, track_at(tracks, b).id)
        # Between detections the prediction is exact: both faces move at constant speed.
        if frame >= 2 * detect_every or frame % detect_every == 0:
            assert (track_at(tracks, a).id, track_at(tracks, b).id) == ids, f"frame {frame}"
    assert crossed, "the two faces never overlapped: the test proves nothing"
    assert tracker.ended() == []


@pytest.mark.parametrize("max_missed", [1, 3, 5])
def test_a_face_leaving_ends_its_track_after_max_missed(max_missed: int) -> None:
    tracker = FaceTracker(max_missed=max_missed)
    face = box_at(100, 100)
    frame = 0
    for frame in range(5):
        tracker.update(frame, detect(face))
    (track,) = tracker.tracks
    rounds = 0
    while rounds < max_missed - 1:
        frame += 1
        tracker.update(frame, None)  # skipped detection: not a miss
        frame += 1
        tracker.update(frame, [])
        rounds += 1
        assert [t.id for t in tracker.tracks] == [track.id], f"ended early after {rounds} misses"
        assert tracker.tracks[0].missed == rounds
        assert tracker.ended() == []
    frame += 1
    assert tracker.update(frame, []) == []
    (ended,) = tracker.ended()
    assert ended.id == track.id
    assert ended.missed == max_missed
    assert ended.hits == 5
    assert (ended.first_frame, ended.last_frame) == (0, 4)
    assert tracker.ended() == [], "an ended track is handed out once"


def test_none_frames_do_not_age_tracks() -> None:
    tracker = FaceTracker(max_missed=1)
    tracker.update(0, detect(box_at(0, 0)))
    for frame in range(1, 50):
        assert len(tracker.update(frame, None)) == 1
    assert tracker.ended() == []


@pytest.mark.parametrize("enter_frame", [1, 10, 19])
def test_a_face_entering_mid_clip_gets_a_new_id(enter_frame: int) -> None:
    tracker = FaceTracker()
    first_id: int | None = None
    second_id: int | None = None
    for frame in range(20):
        a = box_at(100 + 2 * frame, 100)
        boxes = [a]
        if frame >= enter_frame:
            boxes.append(box_at(400 - 3 * frame, 200))
        tracks = tracker.update(frame, detect(*boxes))
        assert len(tracks) == len(boxes)
        a_id = track_at(tracks, a).id
        first_id = a_id if first_id is None else first_id
        assert a_id == first_id
        if frame >= enter_frame:
            b_track = track_at(tracks, boxes[1])
            second_id = b_track.id if second_id is None else second_id
            assert b_track.id == second_id
            assert b_track.first_frame == enter_frame
    assert first_id is not None
    assert second_id is not None
    assert second_id > first_id


@pytest.mark.parametrize("velocity", [(10, 5), (-7, 0), (0, 0), (3, -4)])
@pytest.mark.parametrize("detect_every", [2, 3, 4])
def test_boxes_are_carried_forward_with_velocity(
    velocity: tuple[int, int], detect_every: int
) -> None:
    tracker = FaceTracker()
    dx, dy = velocity
    start = box_at(200, 200)
    for frame in range(5 * detect_every):
        truth = box_at(200 + dx * frame, 200 + dy * frame)
        if frame % detect_every == 0:
            (track,) = tracker.update(frame, detect(truth))
        else:
            (track,) = tracker.update(frame, None)
            if frame < detect_every:
                # One detection only: no velocity yet, the box stays put.
                assert track.box == start
            else:
                assert track.box == truth, f"frame {frame}"
                assert track.last_frame == frame - frame % detect_every
        assert track.hits == frame // detect_every + 1
    assert track.velocity == pytest.approx(velocity)


def test_carried_boxes_round_from_the_last_detection_without_drift() -> None:
    tracker = FaceTracker()
    tracker.update(0, detect(box_at(0, 0)))
    tracker.update(3, detect(box_at(1, 0)))  # 1/3 pixel per frame
    for frame in range(4, 64):
        (track,) = tracker.update(frame, None)
        assert track.box.left == round((frame - 3) / 3) + 1


@pytest.mark.parametrize("step", [40, 50, 55])
def test_fast_motion_with_low_iou_associates_by_centroid(step: int) -> None:
    tracker = FaceTracker()
    assert box_at(0, 0).iou(box_at(step, 0)) < tracker.min_iou
    ids: set[int] = set()
    for frame in range(6):
        tracks = tracker.update(frame, detect(box_at(step * frame, 300)))
        ids.update(track.id for track in tracks)
    assert ids == {1}
    assert tracker.ended() == []


@pytest.mark.parametrize(
    ("tracker", "second"),
    [
        pytest.param(FaceTracker(), box_at(150, 0), id="too far"),
        pytest.param(FaceTracker(max_center_distance=0.0), box_at(50, 0), id="fallback off"),
        # Same centre, IoU 1/9: only the size ratio (3 > 2) keeps them apart.
        pytest.param(FaceTracker(), box_at(-60, -60, size=3 * SIZE), id="size differs"),
    ],
)
def test_centroid_fallback_is_gated(tracker: FaceTracker, second: FaceBox) -> None:
    first = box_at(0, 0)
    tracker.update(0, detect(first))
    tracks = tracker.update(1, detect(second))
    assert track_at(tracks, second).id == 2
    assert track_at(tracks, first).missed == 1


def test_iou_matches_come_before_centroid_matches() -> None:
    tracker = FaceTracker()
    tracker.update(0, detect(box_at(0, 0)))
    shifted = box_at(20, 0)  # IoU 0.5 with the track
    concentric = box_at(-29, -29, size=118)  # same centre, IoU 0.26, size ratio 1.97
    assert box_at(0, 0).iou(concentric) < tracker.min_iou
    tracks = tracker.update(1, detect(concentric, shifted))
    assert track_at(tracks, shifted).id == 1
    assert track_at(tracks, concentric).id == 2


def test_ids_are_never_reused() -> None:
    rng = random.Random(7)
    tracker = FaceTracker(max_missed=1)
    slots = [box_at(250 * column, 250 * row) for row in range(3) for column in range(4)]
    present = [False] * len(slots)
    appearances = 0
    seen_ids: list[int] = []
    ended_ids: set[int] = set()
    for frame in range(300):
        previously = list(present)
        present = [rng.random() < 0.5 for _ in slots]
        appearances += sum(
            now and not before for now, before in zip(present, previously, strict=True)
        )
        tracks = tracker.update(
            frame, detect(*(s for s, on in zip(slots, present, strict=True) if on))
        )
        live = {track.id for track in tracks}
        assert not live & ended_ids, f"frame {frame}: an ended id came back"
        for track in tracks:
            if track.id not in seen_ids:
                assert not seen_ids or track.id > seen_ids[-1]
                seen_ids.append(track.id)
        ended_ids.update(track.id for track in tracker.ended())
    assert len(seen_ids) == appearances
    assert len(set(seen_ids)) == len(seen_ids)


def test_end_all_hands_out_every_live_track_once() -> None:
    tracker = FaceTracker()
    tracker.update(0, detect(box_at(0, 0), box_at(300, 0)))
    tracker.end_all()
    assert tracker.tracks == []
    assert [track.id for track in tracker.ended()] == [1, 2]
    assert tracker.ended() == []
    (track,) = tracker.update(1, detect(box_at(0, 0)))
    assert track.id == 3


@pytest.mark.parametrize("second_frame", [5, 4])
def test_frames_must_move_forward(second_frame: int) -> None:
    tracker = FaceTracker()
    tracker.update(5, [])
    with pytest.raises(ValueError, match="greater than the previous frame 5, got"):
        tracker.update(second_frame, [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_iou": 0.0}, "min_iou must be in \\(0, 1\\], got 0.0"),
        ({"min_iou": 1.5}, "min_iou must be in \\(0, 1\\], got 1.5"),
        ({"max_missed": 0}, "max_missed must be an int >= 1, got 0"),
        ({"max_missed": 2.0}, "max_missed must be an int >= 1, got 2.0"),
        ({"max_center_distance": -1.0}, "max_center_distance must be .* >= 0, got -1.0"),
        ({"max_center_distance": float("nan")}, "max_center_distance must be .*, got nan"),
        ({"max_size_ratio": 0.5}, "max_size_ratio must be .* >= 1, got 0.5"),
        ({"velocity_smoothing": 0.0}, "velocity_smoothing must be in \\(0, 1\\], got 0.0"),
    ],
)
def test_tracker_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaceTracker(**kwargs)


# --- TrackVote -----------------------------------------------------------------------------


def identified(person: str | None, distance: float = 0.3) -> Identification:
    """An Identification accepting ``person`` (``None``: unknown, nearest at ``distance``)."""
    nearest = Match(
        person=person or "stranger", watchlist="customers", template="t", distance=distance
    )
    return Identification(match=nearest if person else None, candidates=(nearest,))


def quality(score: float) -> FaceQuality:
    return FaceQuality(size=100, sharpness=200.0, frontalness=0.9, score=score)


@pytest.mark.parametrize("min_votes", [1, 2, 3])
@pytest.mark.parametrize("as_identification", [False, True])
def test_vote_confirms_after_min_votes(min_votes: int, as_identification: bool) -> None:
    vote = TrackVote(min_votes=min_votes)
    for _ in range(min_votes - 1):
        vote.add(identified("alice") if as_identification else "alice", 1.0)
        assert vote.confirmed is None
        assert vote.decision is None
    vote.add(identified("alice") if as_identification else "alice", quality(1.0))
    assert vote.confirmed == "alice"
    assert vote.decision == "alice"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["alice", "bob", "alice", "bob"], None),
        (["alice"] * 3 + ["bob"] * 3, None),
        (["alice", UNKNOWN, "alice", UNKNOWN], None),
        (["alice"] * 3 + ["bob"] * 2, None),  # ahead, but not twice bob's votes
        (["alice"] * 4 + ["bob"] * 2, "alice"),
        (["alice"] * 4 + [UNKNOWN] * 2, "alice"),
        (["bob"] + ["alice"] * 3, "alice"),
    ],
)
def test_vote_needs_a_clear_majority(labels: list[str], expected: str | None) -> None:
    vote = TrackVote(min_votes=2, unknown_after=100)
    for label in labels:
        vote.add(label, 1.0)
    assert vote.confirmed == expected


def test_quality_weighting_lets_good_samples_outweigh_poor_ones() -> None:
    vote = TrackVote(min_votes=1.5, unknown_after=100)
    for _ in range(3):
        vote.add("bob", quality(0.2))
    vote.add("alice", quality(0.9))
    vote.add("alice", quality(0.9))
    # Counted by frames bob leads 3 to 2; weighted by quality alice leads 1.8 to 0.6.
    assert vote.votes == pytest.approx({"bob": 0.6, "alice": 1.8})
    assert vote.confirmed == "alice"


def test_poor_samples_alone_do_not_confirm() -> None:
    vote = TrackVote(min_votes=2, unknown_after=100)
    for _ in range(6):
        vote.add("bob", 0.3)
    assert vote.confirmed is None
    vote.add("bob", 0.2)
    assert vote.confirmed == "bob"


@pytest.mark.parametrize(
    "samples",
    [
        pytest.param([(None, 1.0)] * 4, id="all unknown"),
        pytest.param(
            [("alice", 1.0), ("bob", 1.0), ("carol", 1.0), ("dave", 1.0)], id="all differ"
        ),
        # alice reaches min_votes on the 4th sample but bob has 1.5: no clear majority.
        pytest.param([("alice", 1.0), ("bob", 1.0), ("bob", 0.5), ("alice", 1.0)], id="split"),
        pytest.param([("alice", 0.5), (None, 1.0), ("alice", 0.5), (None, 0.2)], id="too poor"),
    ],
)
def test_unknown_decision_after_n_samples(samples: list[tuple[str | None, float]]) -> None:
    vote = TrackVote(min_votes=2, unknown_after=4)
    for count, (person, score) in enumerate(samples, start=1):
        vote.add(identified(person, distance=0.4 + count / 100), score)
        assert vote.confirmed is None
        assert vote.decision == (UNKNOWN if count == 4 else None)
    assert vote.samples == 4


def test_unknown_decision_reports_the_nearest_candidate() -> None:
    vote = TrackVote(unknown_after=2)
    vote.add(identified(None, distance=0.45), quality(0.5))
    assert vote.best_distance is None
    assert vote.best_quality is None
    vote.add(identified(None, distance=0.41), quality(0.7))
    assert vote.decision == UNKNOWN
    assert vote.best_distance == pytest.approx(0.41)
    assert vote.best_quality == pytest.approx(0.7)


def test_best_distance_and_quality_come_from_the_confirmed_person() -> None:
    vote = TrackVote(min_votes=2)
    vote.add("bob", 1.0, distance=0.10)
    vote.add("alice", 0.6, distance=0.30)
    vote.add("alice", 0.9, distance=0.25)
    vote.add("alice", 1.0, distance=0.28)
    vote.add("alice", 0.5)
    assert vote.confirmed == "alice"
    assert vote.best_distance == pytest.approx(0.25)
    assert vote.best_quality == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TrackVote(min_votes=0), ValueError, "min_votes must be .* > 0, got 0"),
        (lambda: TrackVote(dominance=0.5), ValueError, "dominance must be .* >= 1, got 0.5"),
        (lambda: TrackVote(unknown_after=0), ValueError, "unknown_after must be .* >= 1, got 0"),
        (
            lambda: TrackVote().add("alice", 1.5),
            ValueError,
            "quality must be in \\[0, 1\\], got 1.5",
        ),
        (lambda: TrackVote().add("", 1.0), ValueError, "non-empty person id, got ''"),
        (
            lambda: TrackVote().add("alice", 1.0, distance=-0.1),
            ValueError,
            "distance must be .* >= 0, got -0.1",
        ),
        (
            lambda: TrackVote().add(identified("alice"), 1.0, distance=0.2),
            TypeError,
            "distance comes from the Identification",
        ),
        (lambda: SightingDebouncer(0.0), ValueError, "cooldown must be .* > 0, got 0.0"),
        (lambda: SightingDebouncer(float("inf")), ValueError, "cooldown must be .*, got inf"),
    ],
)
def test_vote_and_debouncer_reject_bad_arguments(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


# --- SightingDebouncer ---------------------------------------------------------------------


@pytest.mark.parametrize("cooldown", [1.0, 5.0, 30.0])
def test_one_sighting_per_visit(cooldown: float) -> None:
    debouncer = SightingDebouncer(cooldown)
    emitted = [debouncer.should_emit("door", "alice", tick / 10) for tick in range(600)]
    assert emitted.count(True) == 1
    assert emitted[0] is True


@pytest.mark.parametrize(("gap", "expected"), [(4.9, False), (5.0, True), (60.0, True)])
def test_a_second_sighting_only_after_the_cooldown(gap: float, expected: bool) -> None:
    debouncer = SightingDebouncer(5.0)
    assert debouncer.should_emit("door", "alice", 100.0)
    assert not debouncer.should_emit("door", "alice", 102.0)
    assert debouncer.should_emit("door", "alice", 102.0 + gap) is expected


@pytest.mark.parametrize("record", ["seen", "should_emit"])
def test_the_cooldown_counts_from_last_seen(record: str) -> None:
    debouncer = SightingDebouncer(5.0)
    assert debouncer.should_emit("door", "alice", 0.0)
    for second in range(1, 21):
        if record == "seen":
            debouncer.seen("door", "alice", float(second))
        else:
            assert not debouncer.should_emit("door", "alice", float(second))
    assert debouncer.last_seen("door", "alice") == 20.0
    # 22 s after the sighting but only 2 s after last seen: still the same visit.
    assert not debouncer.should_emit("door", "alice", 22.0)
    assert debouncer.should_emit("door", "alice", 27.0)


def test_cameras_and_people_are_debounced_separately() -> None:
    debouncer = SightingDebouncer(5.0)
    assert debouncer.should_emit("door", "alice", 0.0)
    assert debouncer.should_emit("vault", "alice", 1.0)
    assert debouncer.should_emit("door", "bob", 1.0)
    assert not debouncer.should_emit("door", "alice", 1.0)


def test_an_earlier_time_does_not_rewind_last_seen() -> None:
    debouncer = SightingDebouncer(5.0)
    debouncer.seen("door", "alice", 10.0)
    debouncer.seen("door", "alice", 3.0)
    assert debouncer.last_seen("door", "alice") == 10.0


def test_prune_forgets_only_finished_visits() -> None:
    debouncer = SightingDebouncer(5.0)
    debouncer.seen("door", "alice", 0.0)
    debouncer.seen("door", "bob", 8.0)
    assert debouncer.prune(10.0) == 1
    assert debouncer.last_seen("door", "alice") is None
    assert debouncer.last_seen("door", "bob") == 8.0
    assert not debouncer.should_emit("door", "bob", 10.0)


def test_an_ended_track_keeps_the_box_where_its_face_was_last_found() -> None:
    # A face moving right, then gone: the track's box drifts on by prediction while it
    # waits, but the ended track says where the face was last seen.
    tracker = FaceTracker(max_missed=2)
    for frame in range(5):
        tracker.update(frame, detect(box_at(100 + 10 * frame, 100)))
    tracker.update(5, [])
    (waiting,) = tracker.tracks
    assert waiting.box == box_at(150, 100)  # predicted one frame on
    tracker.update(6, [])
    (ended,) = tracker.ended()
    assert ended.box == box_at(140, 100)


def test_tracks_ended_together_keep_their_last_found_boxes() -> None:
    tracker = FaceTracker()
    for frame in range(3):
        tracker.update(frame, detect(box_at(100 + 10 * frame, 100)))
    tracker.update(3, None)
    tracker.end_all()
    (ended,) = tracker.ended()
    assert ended.box == box_at(120, 100)


def on_lists(*accepted: tuple[str, str, float]) -> Identification:
    """An Identification accepting each (person, watchlist, distance), nearest first."""
    matches = tuple(
        Match(person=p, watchlist=w, template=f"{p}-t", distance=d)
        for p, w, d in sorted(accepted, key=lambda a: a[2])
    )
    return Identification(
        match=matches[0] if matches else None, candidates=matches, matches=matches
    )


def test_a_face_on_two_watchlists_is_confirmed_on_both() -> None:
    # Issue 12, bug 1: a customer who is also a missing person is two persons; each
    # watchlist votes on its own, so neither is the other's rival.
    vote = TrackVote(min_votes=2)
    for distance in (0.31, 0.30):
        vote.add(on_lists(("cust", "customers", distance), ("case", "amber-alert", 0.33)), 1.0)
    assert vote.decisions == {"customers": "cust", "amber-alert": "case"}
    assert vote.decision == "cust"
    assert vote.confirmed_watchlist == "customers"
    assert vote.best_distance == pytest.approx(0.30)
    assert vote.best_distance_on("amber-alert", "case") == pytest.approx(0.33)


def test_the_primary_answer_does_not_flip_between_watchlists() -> None:
    vote = TrackVote(min_votes=2)
    for _ in range(4):
        vote.add(on_lists(("cust", "customers", 0.3), ("case", "amber-alert", 0.3)), 1.0)
    first = vote.confirmed
    # A frame for the other watchlist's person only: it now has more weight, both stay
    # confirmed, and the answer stays.
    other = "case" if first == "cust" else "cust"
    other_list = "amber-alert" if other == "case" else "customers"
    vote.add(on_lists((other, other_list, 0.3)), 1.0)
    assert vote.confirmed == first
    assert set(vote.decisions.values()) == {"cust", "case"}


def test_frames_that_see_nobody_on_a_watchlist_count_against_it() -> None:
    vote = TrackVote(min_votes=2, unknown_after=100)
    vote.add(on_lists(("cust", "customers", 0.3), ("case", "amber-alert", 0.3)), 1.0)
    vote.add(on_lists(("cust", "customers", 0.3), ("case", "amber-alert", 0.3)), 1.0)
    vote.add(on_lists(("cust", "customers", 0.3)), 1.0)
    vote.add(on_lists(("cust", "customers", 0.3)), 1.0)
    # amber-alert: "case" 2.0 against "nobody there" 2.0: not confirmed; customers is.
    assert vote.decisions == {"customers": "cust"}


# --- TrackVote: fusion of a track's embeddings ----------------------------------------------


def unit(vector: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


def around(centre: npt.NDArray[np.float32], distance: float, seed: int) -> npt.NDArray[np.float32]:
    """A unit vector at exactly ``distance`` (Euclidean) from unit ``centre``, in a random
    direction orthogonal to it."""
    noise = np.random.default_rng(seed).standard_normal(EMBEDDING_SIZE)
    noise -= noise.dot(centre) * centre
    noise /= np.linalg.norm(noise)
    angle = 2.0 * np.arcsin(distance / 2.0)
    return unit(np.cos(angle) * centre + np.sin(angle) * noise)


@pytest.fixture
def people() -> dict[str, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(7)
    return {name: unit(rng.standard_normal(EMBEDDING_SIZE)) for name in ("alice", "bob")}


@pytest.fixture
def gallery(people: dict[str, npt.NDArray[np.float32]]) -> GalleryIndex:
    """Alice and Bob, one template each, at the shipped threshold 0.32 and margin 0.05."""
    index = GalleryIndex(default_threshold=0.32, margin=0.05)
    index.add_many(
        Template(f"{name}-1", name, "customers", vector) for name, vector in people.items()
    )
    return index


def test_the_fused_embedding_is_the_quality_weighted_mean_once_enough_frames_are_in() -> None:
    rng = np.random.default_rng(1)
    frames = [unit(rng.standard_normal(EMBEDDING_SIZE)) for _ in range(3)]
    weights = [1.0, 0.5, 0.25]
    vote = TrackVote(fuse_after=3)
    for count, (frame, weight) in enumerate(zip(frames, weights, strict=True), start=1):
        assert vote.fused_embedding is None  # not before fuse_after frames
        vote.add(UNKNOWN, weight, embedding=2.0 * frame)  # length does not matter
        assert vote.fused_frames == count
    expected = unit(
        np.sum([w * f.astype(np.float64) for w, f in zip(weights, frames, strict=True)], 0)
    )
    fused = vote.fused_embedding
    assert fused is not None
    assert fused.dtype == np.float32
    np.testing.assert_allclose(fused, expected, atol=1e-6)
    # Without fusion, or for samples without an embedding, nothing is fused.
    plain = TrackVote()
    for frame in frames:
        plain.add(UNKNOWN, 1.0, embedding=frame)
    assert plain.fused_embedding is None
    bare = TrackVote(fuse_after=1)
    bare.add("alice", 1.0)
    assert bare.fused_embedding is None
    assert bare.fused_frames == 0


def test_fusion_names_a_face_whose_frames_each_fall_just_short(
    gallery: GalleryIndex, people: dict[str, npt.NDArray[np.float32]]
) -> None:
    # Each frame lies 0.34 from Alice's template (past the 0.32 threshold) in its own
    # direction; their mean lies much nearer, as frames of one face around its centre do.
    frames = [around(people["alice"], 0.34, seed) for seed in range(4)]
    decided: dict[int | None, str | None] = {}
    for fuse_after in (None, 3):
        vote = TrackVote(min_votes=1.0, unknown_after=4, fuse_after=fuse_after)
        for frame in frames:
            answer = gallery.identify(frame, k=2)
            assert answer.match is None  # no single frame names her
            vote.add(answer, 0.9, embedding=frame)
            fused = vote.fused_embedding
            if fused is not None:
                vote.set_fused(gallery.identify(fused, k=2))
        decided[fuse_after] = vote.decision
        if fuse_after is not None:
            assert vote.fused is not None
            assert vote.fused.match is not None
            assert vote.decisions == {"customers": "alice"}
            assert vote.confirmed_watchlist == "customers"
            # The fused answer's distance is the track's best, and under the threshold.
            assert vote.best_distance == pytest.approx(vote.fused.match.distance)
            assert vote.best_distance is not None
            assert vote.best_distance < 0.32
            assert vote.best_quality == pytest.approx(0.9)
    assert decided == {None: UNKNOWN, 3: "alice"}


def test_fusion_does_not_name_a_stranger(
    gallery: GalleryIndex, people: dict[str, npt.NDArray[np.float32]]
) -> None:
    # A stranger's frames scatter around the stranger's own centre: fused, still nobody.
    stranger = unit(np.random.default_rng(99).standard_normal(EMBEDDING_SIZE))
    vote = TrackVote(min_votes=1.0, unknown_after=4, fuse_after=2)
    for seed in range(6):
        frame = around(stranger, 0.3, seed)
        vote.add(gallery.identify(frame, k=2), 1.0, embedding=frame)
        fused = vote.fused_embedding
        if fused is not None:
            vote.set_fused(gallery.identify(fused, k=2))
    assert vote.fused is not None
    assert vote.fused.match is None
    assert vote.decision == UNKNOWN


def test_the_fused_answer_decides_per_watchlist_and_never_unnames() -> None:
    vote = TrackVote(min_votes=2, unknown_after=100, fuse_after=2)
    embedding = unit(np.ones(EMBEDDING_SIZE))
    # The frames confirm "cust" on customers and "case" on amber-alert.
    for _ in range(2):
        vote.add(
            on_lists(("cust", "customers", 0.30), ("case", "amber-alert", 0.30)),
            1.0,
            embedding=embedding,
        )
    assert vote.decisions == {"customers": "cust", "amber-alert": "case"}
    # The fused answer accepts someone else on customers and nobody on amber-alert: it
    # decides customers, and amber-alert keeps what its frames confirmed.
    vote.set_fused(on_lists(("other", "customers", 0.20)))
    assert vote.decisions == {"customers": "other", "amber-alert": "case"}
    assert vote.best_distance_on("customers", "other") == pytest.approx(0.20)
    # A fused answer that accepts nobody anywhere leaves the frames' decisions.
    vote.set_fused(on_lists())
    assert vote.decisions == {"customers": "cust", "amber-alert": "case"}


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TrackVote(fuse_after=0), ValueError, "fuse_after must be an int >= 1 or None"),
        (lambda: TrackVote(fuse_after=True), ValueError, "fuse_after must be an int >= 1"),
        (
            lambda: TrackVote(fuse_after=1).add(UNKNOWN, 1.0, embedding=np.ones(3)),
            ValueError,
            r"embedding must have shape \(128,\)",
        ),
        (
            lambda: TrackVote(fuse_after=1).add(
                UNKNOWN, 1.0, embedding=np.full(EMBEDDING_SIZE, np.nan)
            ),
            ValueError,
            "NaN or infinite",
        ),
        (
            lambda: TrackVote(fuse_after=2).set_fused(on_lists()),
            ValueError,
            "set_fused needs a fused embedding",
        ),
    ],
)
def test_fusion_rejects_bad_arguments(make: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()
