"""``auto``: CNN time where HOG misses. A face turned 60 degrees (a real photo turned on a
cylinder, the head's shape) is missed by HOG in the same test that shows ``auto`` finding it:
walking in, and turning away after HOG found it. The CNN here is dlib's own (slow), so the
frames are small and the budget generous."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest

from oneeye.gallery import GalleryIndex
from oneeye.types import FaceBox, RGBImage
from oneeye.video.assist import (
    CORES_SHARE,
    MIN_REAL_TIME_TILE_PX,
    REAL_TIME_ROUND_SECONDS,
    REAL_TIME_SHARE,
    REAL_TIME_TILE_PX,
    RUN_SHARE,
    TILE_PX,
    TILE_STEP_PX,
    CnnAssist,
    CnnBudget,
)
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import PipelineSettings, SightingEvent
from oneeye.vision.detectors import make_detector
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader

WIDTH, HEIGHT = 480, 320


def QUIET() -> float:  # noqa: N802 - a stand-in for the machine's cores, named as a constant
    """The machine's cores, idle but for the camera under test: the tests below measure the
    camera's own shares, whatever else this machine runs meanwhile."""
    return 0.1


FACE_PX = 90
TURN_DEGREES = 60.0
FPS = 2.0
"""The clips' clock: dlib's own CNN costs 0.3-0.5 s of CPU for one of these crops, so at a
core's budget (1000 ms per second of video) a slow clock lets it look every round."""
HEAD_RADIUS = 0.75
"""The head as a cylinder this many face sizes in radius (the face box is the front of it)."""


def turned(photo: RGBImage, box: FaceBox, face_px: int, degrees: float) -> RGBImage:
    """The part of ``photo`` around the face (one face size beyond it), scaled so the face is
    ``face_px`` wide, with the head turned ``degrees`` about the vertical axis: the head is a
    cylinder, each column goes where the turn takes it, the far side of the face hides behind
    the head and the near side's cheek and ear come round."""
    size = box.size
    top, bottom = max(0, box.top - size), min(photo.shape[0], box.bottom + size)
    left, right = max(0, box.left - size), min(photo.shape[1], box.right + size)
    factor = face_px / size
    crop = cv2.resize(
        photo[top:bottom, left:right],
        (round((right - left) * factor), round((bottom - top) * factor)),
        interpolation=cv2.INTER_AREA,
    )
    height, width = crop.shape[:2]
    centre = ((box.left + box.right) / 2 - left) * factor
    radius = HEAD_RADIUS * face_px
    columns = np.arange(width, dtype=np.float64)
    across = (columns - centre) / radius
    angle = np.arcsin(np.clip(across, -1.0, 1.0)) - np.radians(degrees)
    source = np.where(
        np.abs(across) <= 1.0,
        centre + radius * np.sin(np.clip(angle, -np.pi / 2, np.pi / 2)),
        columns,
    )
    map_x = np.tile(source.astype(np.float32), (height, 1))
    map_y = np.tile(np.arange(height, dtype=np.float32)[:, None], (1, width))
    return np.asarray(
        cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
        dtype=np.uint8,
    )


def on_canvas(part: RGBImage, x: int, y: int) -> RGBImage:
    """``part`` on a plain grey frame, its top-left corner at ``(x, y)``."""
    frame = np.full((HEIGHT, WIDTH, 3), 110, dtype=np.uint8)
    frame[y : y + part.shape[0], x : x + part.shape[1]] = part
    return frame


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def biden(engine: FaceEngine, load_photo: PhotoLoader) -> tuple[RGBImage, FaceBox]:
    photo = load_photo("biden.jpg")
    return photo, engine.enrolment_face(photo).box


@pytest.fixture(scope="module")
def walking_in(biden: tuple[RGBImage, FaceBox]) -> list[RGBImage]:
    """A head turned 60 degrees walks in from the left, 12 px a frame."""
    part = turned(*biden, FACE_PX, TURN_DEGREES)
    return [on_canvas(part, 20 + 12 * i, 30) for i in range(14)]


@pytest.fixture(scope="module")
def turning_away(biden: tuple[RGBImage, FaceBox]) -> list[RGBImage]:
    """A frontal face walks right, turns 60 degrees at frame 8 and walks on, turned."""
    photo, box = biden
    frontal, away = turned(photo, box, FACE_PX, 0.0), turned(photo, box, FACE_PX, TURN_DEGREES)
    return [on_canvas(frontal if i < 8 else away, 40 + 8 * i, 30) for i in range(18)]


def play(
    engine: FaceEngine, frames: list[RGBImage], settings: PipelineSettings
) -> tuple[CameraPipeline, list[SightingEvent], list[list[tuple[int, FaceBox]]]]:
    pipeline = CameraPipeline("test", engine, GalleryIndex(), settings)
    events: list[SightingEvent] = []
    tracks: list[list[tuple[int, FaceBox]]] = []
    for index, frame in enumerate(frames):
        events += pipeline.process(index, index / FPS, frame)
        tracks.append([(t.id, t.box) for t in pipeline.tracks if t.last_frame == index])
    events += pipeline.finish(len(frames) - 1, (len(frames) - 1) / FPS)
    pipeline.close()
    return pipeline, events, tracks


def settings(detector: str, budget: float = 1000.0) -> PipelineSettings:
    # dlib's own CNN costs about 0.3 s for a 250x250 part: the budget is generous so the test
    # shows where the CNN looks, not how fast it is.
    return PipelineSettings(
        detector=detector,  # type: ignore[arg-type]  # checked on construction
        cnn_ms_per_s=budget,
        min_face_px=60,
        detect_every=2,
        cooldown=5.0,
    )


def test_hog_misses_the_turned_face_the_cnn_finds(
    engine: FaceEngine, walking_in: list[RGBImage]
) -> None:
    hog, cnn = make_detector("hog", engine.models), make_detector("cnn", engine.models)
    frame = walking_in[5]
    whole = FaceBox(top=0, left=0, bottom=HEIGHT - 1, right=WIDTH - 1)
    assert hog.detect(frame, 40) == []  # not even looking for faces half its size
    assert len(cnn.detect_region(frame, whole, 1.0)) == 1


def test_auto_sights_a_turned_face_walking_in_that_hog_never_finds(
    engine: FaceEngine, walking_in: list[RGBImage]
) -> None:
    _hog_pipeline, hog_events, hog_tracks = play(engine, walking_in, settings("hog"))
    assert not any(hog_tracks)
    assert hog_events == []

    auto, events, tracks = play(engine, walking_in, settings("auto"))
    assert auto.cnn_detections > 0
    seen = [frame for frame in tracks if frame]
    assert len(seen) >= 3  # of 7 detection rounds (every 2nd frame)
    assert len({track for frame in seen for track, _ in frame}) == 1  # one face, one track
    assert [e.event for e in events] == ["sighting", "left"]
    assert events[0].person is None  # nobody enrolled: an unknown face, but a face


def test_auto_keeps_a_face_that_turns_away_from_hog(
    engine: FaceEngine, turning_away: list[RGBImage]
) -> None:
    _, _, hog_tracks = play(engine, turning_away, settings("hog"))
    assert any(hog_tracks[:8])
    assert not any(hog_tracks[10:])  # HOG lost the turned face

    auto, _, tracks = play(engine, turning_away, settings("auto"))
    first = tracks[0][0][0]
    later = [ids for frame in tracks[10:] for ids, _ in frame]
    assert later
    assert set(later) == {first}
    assert auto.cnn_detections > 0


def test_with_no_budget_auto_is_hog(engine: FaceEngine, walking_in: list[RGBImage]) -> None:
    auto, events, tracks = play(engine, walking_in, settings("auto", budget=0.0))
    assert auto.cnn_detections == 0
    assert not any(tracks)
    assert events == []


class CountingDetector:
    """A detector that finds nothing, takes CPU time in proportion to the pixels it is given,
    and counts the parts (the budget's tests need to see where the CNN looks, not what it
    finds)."""

    name = "cnn"
    window_px = 40

    def __init__(self, seconds_per_pixel: float) -> None:
        self.parts: list[tuple[FaceBox, float]] = []
        self.seconds_per_pixel = seconds_per_pixel

    def detect(self, image: RGBImage, min_face_px: int) -> list[object]:
        raise AssertionError("the assist looks at parts only")

    def detect_at(self, image: RGBImage, plan: object) -> list[object]:
        raise AssertionError("the assist looks at parts only")

    def detect_region(self, image: RGBImage, region: FaceBox, factor: float) -> list[object]:
        self.parts.append((region, factor))
        pixels = region.clipped(*image.shape[:2]).area * factor**2
        end = time.thread_time() + pixels * self.seconds_per_pixel
        while time.thread_time() < end:
            pass
        return []


def test_the_budget_accrues_with_video_time_up_to_one_second() -> None:
    budget = CnnBudget(100.0)
    assert not budget.can_spend()  # empty at the start
    budget.accrue(0.0)
    budget.accrue(1.0)
    assert budget.can_spend()
    assert budget.balance == pytest.approx(0.1)
    budget.charge(0.25)
    assert not budget.can_spend()
    budget.accrue(2.4)  # +0.14 s: not all the debt is repaid
    assert not budget.can_spend()
    assert budget.balance == pytest.approx(-0.01)
    budget.accrue(3.0)
    assert budget.can_spend()
    assert budget.balance == pytest.approx(0.05)
    budget.accrue(100.0)
    assert budget.balance == pytest.approx(0.1)  # capped at one second's allowance
    with pytest.raises(ValueError, match="budget must be >= 0"):
        CnnBudget(-1.0)


def test_a_camera_keeping_real_time_spends_the_cnn_only_from_time_to_spare() -> None:
    """A live camera's frames come every 40 ms; the budget hears when each one's work started
    and ended (here on a clock the test keeps, with the video's time the same)."""
    budget = CnnBudget(100.0, real_time=True, cores=QUIET)
    t = 0.0

    def frame(work: float) -> None:
        nonlocal t
        t += 0.04
        budget.accrue(t)
        budget.worked(t, t + work)

    frame(0.01)
    assert budget.behind  # told of one frame only: nothing known of its pace yet
    frame(0.01)  # busy a quarter of the time
    assert budget.balance == 0.0
    assert budget.held_seconds == pytest.approx(0.04)  # the second frame's video time
    assert budget.busy_share == pytest.approx(0.25)
    for _ in range(50):  # two seconds of frames each taking 90% of their time: too busy
        frame(0.036)
    assert budget.busy_share is not None
    assert budget.busy_share > REAL_TIME_SHARE
    assert budget.behind
    assert not budget.can_spend()
    assert not budget.affords(1.0)
    held, balance = budget.held_seconds, budget.balance
    for _ in range(25):  # the same frames kept: the allowance is not kept for later
        frame(0.036)
    assert budget.held_seconds == pytest.approx(held + 1.0)
    assert budget.balance == balance  # nothing accrued while held
    for _ in range(25):  # a second at 40% of the frame time: the CNN is spent again
        frame(0.016)
    assert budget.busy_share is not None
    assert budget.busy_share < REAL_TIME_SHARE
    assert budget.can_spend()
    for _ in range(25):  # frames read back to back (a backlog): never a moment to spare
        start = t + 0.001
        t += 0.04
        budget.accrue(t)
        budget.worked(start, start + 0.04)
    assert budget.behind

    offline = CnnBudget(100.0)  # a file read as fast as it decodes: the clock is not kept
    offline.accrue(0.0)
    offline.worked(0.0, 1.0)
    offline.accrue(1.0)
    offline.worked(1.0, 30.0)
    assert not offline.behind
    assert offline.can_spend()


def test_a_camera_whose_cores_are_wanted_by_others_does_not_spend_the_cnn() -> None:
    """Idle between its frames, but its thread got a core for only half of its work's time
    (other cameras wanted the cores too): the machine has no time to spare."""
    budget = CnnBudget(100.0, real_time=True, cores=QUIET)
    t = 0.0
    for _ in range(50):
        t += 0.04
        budget.accrue(t)
        budget.worked(t, t + 0.012, running=(0.006, 0.012))  # busy 30%, running half of it
    assert budget.busy_share == pytest.approx(0.3)
    assert budget.run_share == pytest.approx(0.5)
    assert budget.behind
    assert not budget.can_spend()
    for _ in range(50):  # the others went quiet: the thread runs whenever it works
        t += 0.04
        budget.accrue(t)
        budget.worked(t, t + 0.012, running=(0.0118, 0.012))
    assert budget.run_share is not None
    assert budget.run_share > RUN_SHARE
    assert budget.can_spend()


def test_a_camera_on_a_full_machine_does_not_spend_the_cnn() -> None:
    """Idle between its frames and running whenever it works, but the machine's cores, all
    cameras together, are busy more than ``CORES_SHARE`` of the time: no CNN, and the
    allowance is not kept; spent again once the cores have time to spare."""
    cores: list[float | None] = [0.9]
    budget = CnnBudget(100.0, real_time=True, cores=lambda: cores[0])
    t = 0.0
    for _ in range(50):
        t += 0.04
        budget.accrue(t)
        budget.worked(t, t + 0.01, running=(0.01, 0.01))
    assert budget.busy_share is not None
    assert budget.busy_share < REAL_TIME_SHARE
    assert budget.behind
    assert not budget.can_spend()
    assert budget.balance == 0.0
    cores[0] = CORES_SHARE - 0.05
    t += 0.04
    budget.accrue(t)
    assert not budget.behind
    t += 0.04
    budget.accrue(t)
    assert budget.can_spend()
    cores[0] = None  # unknown (no /proc/stat): the camera's own measures count
    assert not budget.behind

    offline = CnnBudget(100.0, cores=lambda: 1.0)  # a file read as fast as it decodes
    assert not offline.behind


def test_a_camera_whose_scan_behind_has_not_ended_does_not_spend_the_cnn() -> None:
    """Idle between its frames and running whenever it works, but its own scan, running
    behind its frames at the lowest priority, has not ended: the cores' spare time is the
    scan's, so the CNN is held (and the allowance not kept) until it ends."""
    detector = CountingDetector(seconds_per_pixel=0.0)
    assist = CnnAssist(detector, min_face_px=40, ms_per_second=100.0, real_time=True, cores=QUIET)  # type: ignore[arg-type]
    still = np.full((HEIGHT, WIDTH), 100, dtype=np.uint8)
    t = 0.0
    for _ in range(50):
        t += 0.04
        assist.observe(still, t)
        assist.worked(t, t + 0.01, 0.01)
    assert not assist.held
    assert assist.budget.can_spend()
    held, balance = assist.budget.held_seconds, assist.budget.balance
    for _ in range(10):
        t += 0.04
        assist.observe(still, t, scan_pending=True)
        assist.worked(t, t + 0.01, 0.01)
        assert assist.held
        assert not assist.budget.can_spend()
    assert assist.budget.held_seconds == pytest.approx(held + 0.4)
    assert assist.budget.balance == balance
    assist.observe(still, t + 0.04, scan_pending=False)
    assert not assist.held
    assert assist.budget.can_spend()

    offline = CnnBudget(100.0)  # a file read as fast as it decodes spends whatever runs
    offline.scan_pending = True
    assert not offline.behind


def test_a_camera_with_no_time_to_spare_keeps_no_motion_for_the_cnn() -> None:
    detector = CountingDetector(seconds_per_pixel=0.0)
    assist = CnnAssist(detector, min_face_px=40, ms_per_second=100.0, real_time=True, cores=QUIET)  # type: ignore[arg-type]
    still = np.full((HEIGHT, WIDTH), 100, dtype=np.uint8)
    moved = still.copy()
    moved[200:260, 300:360] = 200
    t = 0.0
    for frame in [still, moved] * 10:  # busy 90% of the time: held
        t += 0.04
        assist.observe(frame, t)
        assist.worked(t, t + 0.036, 0.036)
    assert assist.held
    assert assist._pending_tiles([]) == []
    for _ in range(50):  # time to spare again
        t += 0.04
        assist.observe(still, t)
        assist.worked(t, t + 0.01, 0.01)
    assert not assist.held
    assert assist._pending_tiles([]) == []  # the first frame with time to spare is no motion
    assist.observe(moved, t + 0.04)
    assert assist._pending_tiles([])


def test_a_real_time_camera_too_busy_for_the_cnn_runs_on_hog_alone(
    engine: FaceEngine, walking_in: list[RGBImage]
) -> None:
    """The same clip as above, its frames handed over back to back: a camera that must keep
    real time and is never idle between frames has no time to spare, so ``auto`` never spends
    its CNN budget and finds no more than HOG. The same clip read as a file that need not keep
    real time spends it."""

    def run(real_time: bool) -> tuple[CameraPipeline, int]:
        pipeline = CameraPipeline(
            "test",
            engine,
            GalleryIndex(),
            replace(settings("auto"), real_time=real_time),
        )
        seen = 0
        for index, frame in enumerate(walking_in):
            pipeline.process(index, index / FPS, frame)
            seen += sum(1 for t in pipeline.tracks if t.last_frame == index)
        pipeline.close()
        return pipeline, seen

    busy, seen = run(real_time=True)
    counts = busy.counts()
    assert (counts["cnn_ms"], counts["cnn_detections"], seen) == (0, 0, 0)
    # Every frame after the first was held (the first only starts the measure).
    assert counts["cnn_held_ms"] == round(1000 * (len(walking_in) - 1) / FPS)
    offline, seen = run(real_time=False)
    assert offline.counts()["cnn_held_ms"] == 0
    assert offline.cnn_detections > 0
    assert seen > 0


def test_lost_faces_come_first_and_the_budget_bounds_the_crops() -> None:
    detector = CountingDetector(seconds_per_pixel=0.2e-6)
    assist = CnnAssist(detector, min_face_px=40, ms_per_second=50.0)  # type: ignore[arg-type]
    still = np.full((HEIGHT, WIDTH), 100, dtype=np.uint8)
    assist.observe(still, 0.0)
    moved = still.copy()
    moved[200:260, 300:360] = 200
    assist.observe(moved, 1.0)  # the bucket fills: 50 ms
    lost = [FaceBox(top=40, left=40, bottom=99, right=99)]
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)

    # Nothing known yet of the CNN's cost: it learns it on the smallest crop alone (the
    # motion tile, 140x140 pixels, against the lost face's 160x160 crop enlarged 5/3).
    first = assist.look(image, lost, explained=[])
    assert (first.lost_looked, first.tiles_looked) == (0, 1)
    tile = detector.parts[0][0]
    assert (tile.top, tile.left) <= (200, 300)
    assert (tile.bottom, tile.right) >= (259, 359)

    # Known: the lost face first (about 14 ms), then the new motion (4 ms); the motion looked
    # at before is no longer pending.
    moved_again = moved.copy()
    moved_again[40:100, 400:460] = 200
    assist.observe(moved_again, 1.1)
    second = assist.look(image, lost, explained=[])
    assert (second.lost_looked, second.tiles_looked) == (1, 1)
    region, factor = detector.parts[1]
    assert region == FaceBox(top=-20, left=-20, bottom=159, right=159)
    assert factor == pytest.approx(100 / 60)
    assert detector.parts[2][0].right >= 459

    # About 32 ms left in the 50 ms bucket: two more lost-face crops, not three.
    third = assist.look(image, lost * 3, explained=[])
    assert (third.lost_looked, third.tiles_looked) == (2, 0)
    assert assist.budget.balance > 0  # the third was not overdrawn for


def test_a_camera_keeping_real_time_spends_a_rounds_share_at_most_in_smaller_tiles() -> None:
    """With time to spare and a full bucket, a live camera still spends no more than
    ``REAL_TIME_ROUND_SECONDS`` of CNN on one round (a longer look would make it drop the frames
    behind it), and cuts motion into ``REAL_TIME_TILE_PX`` tiles."""
    detector = CountingDetector(seconds_per_pixel=0.2e-6)
    assist = CnnAssist(detector, min_face_px=80, ms_per_second=100.0, real_time=True, cores=QUIET)  # type: ignore[arg-type]
    still = np.full((HEIGHT, WIDTH), 100, dtype=np.uint8)
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    t = 0.0
    for _ in range(50):  # two seconds, busy an eighth of the time: the bucket fills
        t += 0.04
        assist.observe(still, t)
        assist.worked(t, t + 0.005, 0.005)
    assert not assist.held
    lost = [FaceBox(top=100, left=100, bottom=159, right=159)]  # a 300x300 crop: 18 ms
    assist.look(image, lost, explained=[])  # learns the cost
    t += 0.04
    assist.observe(still, t)
    balance = assist.budget.balance
    spent = assist.budget.spent
    round_ = assist.look(image, lost * 3, explained=[])
    assert balance > 3 * 0.018  # the bucket would afford all three
    assert round_.lost_looked == 1
    assert assist.budget.spent - spent <= REAL_TIME_ROUND_SECONDS + 0.005

    moved = still.copy()
    moved[40:300, 10:470] = 200  # a wide change, nobody tracked there
    for frame in (moved, still):
        t += 0.04
        assist.observe(frame, t)
        assist.worked(t, t + 0.005, 0.005)
    before = len(detector.parts)
    tiles = assist.look(image, [], explained=[]).tiles_looked
    assert tiles >= 1
    for region, factor in detector.parts[before:]:
        assert factor == 1.0
        assert region.width <= REAL_TIME_TILE_PX
        assert region.height <= REAL_TIME_TILE_PX
    assert len(assist._pending_tiles([])) > 0  # the rest waits for later rounds
    # A slower CNN (no bfloat16): tiles shrink so that one still fits a round, down to a floor.
    assist.budget.seconds_per_pixel = 0.2e-6
    fits = int(math.sqrt(REAL_TIME_ROUND_SECONDS / 0.2e-6))  # 316
    assert assist.tile_px == fits - fits % TILE_STEP_PX < REAL_TIME_TILE_PX
    assist.budget.seconds_per_pixel = REAL_TIME_ROUND_SECONDS / 260**2
    assert assist.tile_px == 256, "a multiple of 16 that fits a round"
    assist.budget.seconds_per_pixel = 1e-5
    assert assist.tile_px == MIN_REAL_TIME_TILE_PX
    assist.budget.seconds_per_pixel = 1e-9
    assert assist.tile_px == REAL_TIME_TILE_PX
    offline = CnnAssist(detector, min_face_px=80, ms_per_second=100.0)  # type: ignore[arg-type]
    whole = FaceBox(top=0, left=0, bottom=HEIGHT - 1, right=WIDTH - 1)
    assert max(b.width for b in offline._tiles(whole)) == TILE_PX


def test_a_crop_dearer_than_the_balance_waits() -> None:
    budget = CnnBudget(100.0)
    budget.accrue(0.0)
    budget.accrue(1.0)
    assert budget.affords(10**9)  # nothing known of the CNN's cost yet
    budget.charge(0.02, pixels=100_000)  # 0.2 us a pixel
    assert budget.balance == pytest.approx(0.08)
    assert budget.affords(400_000)  # 80 ms
    assert not budget.affords(500_000)  # 100 ms: more than the bucket holds now
    budget.accrue(1.2)
    assert budget.affords(500_000)
    assert not budget.affords(600_000)  # 120 ms: more than the bucket ever holds


def test_motion_a_track_explains_is_not_given_to_the_cnn() -> None:
    detector = CountingDetector(seconds_per_pixel=0.0)
    assist = CnnAssist(detector, min_face_px=40, ms_per_second=100.0)  # type: ignore[arg-type]
    still = np.full((HEIGHT, WIDTH), 100, dtype=np.uint8)
    assist.observe(still, 0.0)
    moved = still.copy()
    moved[200:260, 300:360] = 200
    assist.observe(moved, 0.1)
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    explained = [FaceBox(top=150, left=250, bottom=300, right=420)]
    assert assist.look(image, [], explained).tiles_looked == 0
    assert detector.parts == []


def test_unexplained_motion_the_cnn_never_reached_goes_stale() -> None:
    detector = CountingDetector(seconds_per_pixel=0.0)
    assist = CnnAssist(detector, min_face_px=40, ms_per_second=0.0)  # type: ignore[arg-type]
    still = np.full((HEIGHT, WIDTH), 100, dtype=np.uint8)
    assist.observe(still, 0.0)
    moved = still.copy()
    moved[200:260, 300:360] = 200
    assist.observe(moved, 0.1)
    assert assist._pending_tiles([])
    assist.observe(moved, 2.5)
    assert assist._pending_tiles([]) == []


def test_settings_refuse_an_unknown_detector_and_a_negative_budget() -> None:
    with pytest.raises(ValueError, match="detector must be one of hog, cnn, auto"):
        PipelineSettings(detector="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cnn_ms_per_s"):
        PipelineSettings(cnn_ms_per_s=-1.0)


def test_a_frame_goes_through_the_preprocessing_step_first(
    engine: FaceEngine, turning_away: list[RGBImage]
) -> None:
    shapes: list[tuple[int, ...]] = []

    def blank(image: RGBImage) -> RGBImage:
        shapes.append(image.shape)
        return np.zeros_like(image)

    frames = turning_away[:4]
    _, _, tracks = play(engine, frames, settings("hog"))
    assert any(tracks)  # the frontal face, as it comes
    pipeline = CameraPipeline("test", engine, GalleryIndex(), settings("hog"), preprocess=blank)
    found = [pipeline.process(i, i / FPS, frame) for i, frame in enumerate(frames)]
    pipeline.close()
    assert shapes == [(HEIGHT, WIDTH, 3)] * len(frames)
    assert pipeline.tracks == []
    assert not any(found)
