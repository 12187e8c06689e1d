"""Where a camera in ``auto`` mode spends CNN time: only where HOG misses, within a budget.

dlib's HOG finds frontal faces fast; its MMOD CNN also finds turned, small and dim ones, at
many times the cost per pixel. A camera set to ``auto`` scans with HOG as before
(``oneeye.video.scan``) and, on each detection round, hands the CNN two kinds of small crops:

1. **Lost faces.** A tracked face that HOG did not find again this round (it turned away, or
   the light dropped) is looked for by the CNN around where its track predicts it, the crop
   scaled so the face is just above the size the CNN finds turned faces at (``LOST_FACE_PX``):
   a crop of about 3x3 face sizes, whatever the face's size in the frame.
2. **Unexplained motion.** Parts of the frame that changed and that no track explains (a
   person walking in with their face turned, whom HOG never found) are scanned by the CNN,
   cut into overlapping tiles, oldest change first, at the camera's smallest face but never
   upsampled (a 2x upsample costs the CNN 4x; small faces in motion are HOG's). A part stays
   pending until the CNN has looked at it, or until it is ``STALE_SECONDS`` old (whoever moved
   there has moved on, and has changed another part since). The first frame is not motion:
   the scene as the camera starts is HOG's whole scan's.

Sizes are faces as HOG boxes them. dlib's MMOD network boxes faces from 80 pixels at scale
1: its own answers on the street video without upsampling are all 80-115 pixels wide, and on
LFW upsampled once from 40 (``bench/results/cnn_reference_*.json``); the 40 pixels usually
quoted hold after one upsampling (``CnnDetector.window_px`` reads the 80 from the model
file). On the test photos turned on a cylinder (``tests/video/test_assist.py``) it found
frontal faces from about 70 pixels (HOG's box) and faces turned 45-60 degrees from about
80-100.

A camera that must keep real time cuts the motion into smaller tiles (``REAL_TIME_TILE_PX``) and
spends at most ``REAL_TIME_ROUND_SECONDS`` of CNN on one round: a longer look would stall the
frames behind it long enough to drop them.

Both kinds of crop draw from one :class:`CnnBudget` per camera: CNN milliseconds per second of
video, spent as a token bucket (empty at the start, at most one second's allowance kept),
measured as the CPU time of the calling thread, so a faster CNN buys more crops at the same
budget. A crop is looked at only when the bucket holds what it should cost (the CNN's cost
per pixel so far, times the crop's pixels), so no single crop stalls the camera for longer
than the bucket's allowance; one too dear now waits, and a crop dearer than the whole bucket
is never looked at. Until the cost is known, only the smallest crop of a round is looked at.
Lost faces are served first: they are cheap and each one is a person already in view.

The budget never costs a camera that must keep real time (a live source, a paced file) its
pace. The pipeline tells it when each frame's work started and ended; while that work, the
CNN's included, fills more than ``REAL_TIME_SHARE`` of the wall-clock time (smoothed over
``BUSY_SECONDS``; the rest is the camera waiting for its next frame), or while its thread got a
core for less than ``RUN_SHARE`` of that work's time (the cores are wanted by others too), or
while the machine's cores were busy more than ``CORES_SHARE`` of their time, the
bucket neither fills nor is spent: a camera whose cores are taken (eight 720p cameras on two
cores) runs on HOG alone instead of falling behind, and spends CNN time again as soon as it and
the machine have time to spare. Nor while the camera's own scan, which runs behind its frames
at the lowest priority (``oneeye.video.scan.ScanBehind``), has not ended: the camera's thread
then looks idle, but the cores' spare time is the scan's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.types import Detection, FaceBox, RGBImage
from oneeye.video.cores import CORES
from oneeye.vision.detectors import FaceDetector

LOST_REACH = 1.0
"""A lost face's crop reaches this many face sizes beyond its predicted box."""

CNN_FACE_PX = 80
"""The face (HOG's box) the MMOD network finds at scale 1: motion tiles are scaled so the
camera's smallest face is this wide (never upsampled)."""

LOST_FACE_PX = 100
"""A lost face's crop is scaled so the face is this wide: a turned face needs more pixels
than a frontal one."""

TILE_PX = 480
TILE_OVERLAP_PX = 160
"""Unexplained motion is scanned in tiles of 480x480 pixels at the CNN's scale, overlapping
by 160: a face up to 160 pixels wide at that scale lies whole in one tile."""

REAL_TIME_TILE_PX = 320
"""A camera keeping real time cuts the motion into tiles of 320x320 pixels instead (with the
same overlap): each costs the CNN under half as much, so no single look stalls the camera for
long, for about 1.8x the CPU per pixel of motion covered."""

MIN_REAL_TIME_TILE_PX = TILE_OVERLAP_PX + 80
"""... but never smaller than this: tiles 80 pixels apart at least."""
TILE_STEP_PX = 16
"""A shrunk tile's side is a multiple of this (as ``CnnDetector.region_step_px`` grows every
crop to one): the CNN backend prepares its work once per crop shape, so few shapes are cheaper."""

REAL_TIME_ROUND_SECONDS = 0.020
"""A camera keeping real time spends at most this much CNN CPU time on one detection round
(by the cost per pixel so far). A look that would go past it waits for a later round, or
gives way to a smaller crop now, so no frame waits long enough behind the CNN to make the
camera drop the frames after it: a late frame is dropped after two frame times (80 ms at
25 frames/s), and cameras sharing a core stretch a look's CPU time two- to fourfold. With the
bfloat16 CNN a 320-pixel tile costs about 18 ms (28 ms around a face). Six paced 720p cameras
of ``bench/video_cameras.py`` dropped up to 1.2% of their frames at 35 ms (32 ms of CNN per
second of video) and 0.4-0.6% at 20 ms (12 ms of CNN per second)."""

STALE_SECONDS = 2.0
"""A changed part the CNN has not reached within this long is dropped."""

MOTION_SCALE = 8
MOTION_LEVEL = 20
"""As in ``oneeye.video.scan``: motion measured on frames shrunk 8x, a change of 20 levels."""

BURST_SECONDS = 1.0
"""The budget keeps at most this many seconds' allowance unspent."""

REAL_TIME_SHARE = 0.8
"""The CNN is spent only while the camera's work on its frames (the CNN's included) fills at
most this share of the wall-clock time: a fifth is kept idle, so a camera keeping real time on
HOG is not pushed behind by the CNN."""

RUN_SHARE = 0.8
"""... and only while the camera's thread ran on a core for at least this share of its work's
wall-clock time. Below it, other work was waiting for the cores too (other cameras): the
camera's own idle moments are not the machine's, and the CNN would take its time from them."""

BUSY_SECONDS = 1.0
"""The camera's busy and running shares are smoothed over about this much wall-clock time."""

CORES_SHARE = 0.75
"""... and only while the machine's cores, all cameras and other work together, were busy for
at most this share of their time (``oneeye.video.cores``; smoothed over about a second). Each
of eight cameras on two cores is idle most of the time while the cores are 80% full; a CNN
look then makes some camera drop frames. A quarter is kept for the bursts (a scan, faces
arriving) that a full machine cannot absorb."""


class CnnBudget:
    """CNN milliseconds per second of video, as a token bucket over the video's own clock."""

    def __init__(
        self,
        ms_per_second: float,
        burst_seconds: float = BURST_SECONDS,
        real_time: bool = False,
        cores: Callable[[], float | None] = CORES.busy_share,
    ) -> None:
        """Start with an empty bucket: CNN time accrues with the video, so a camera that
        starts (or a file that plays again) costs no more than one that runs on.

        Args:
            ms_per_second: CPU milliseconds the CNN may spend per second of video (>= 0).
            burst_seconds: at most this many seconds' allowance is kept unspent.
            real_time: the camera must keep real time: the bucket fills and is spent only
                while :meth:`worked` shows time to spare (``REAL_TIME_SHARE``, ``RUN_SHARE``)
                and the machine's cores do too (``CORES_SHARE``), and not before it has been
                told of two frames.
            cores: the machine's busy share of its cores (``None``: unknown).

        Raises:
            ValueError: a negative budget or a non-positive burst.
        """
        if ms_per_second < 0 or burst_seconds <= 0:
            raise ValueError(
                f"budget must be >= 0 ms/s with a positive burst, got {ms_per_second} ms/s "
                f"and {burst_seconds} s"
            )
        self.rate = ms_per_second / 1000.0
        self.real_time = real_time
        self._cores = cores
        self.cap = self.rate * burst_seconds
        self.balance = 0.0
        self.spent = 0.0
        self.seconds_per_pixel: float | None = None
        """The CNN's cost so far (smoothed); ``None`` before its first crop."""
        self.busy_share: float | None = None
        """The share of the wall-clock time the camera was at work (smoothed over
        ``BUSY_SECONDS``); ``None`` until :meth:`worked` has been told of two frames."""
        self.run_share: float | None = None
        """The share of the camera's work's wall-clock time its thread ran on a core (smoothed
        over ``BUSY_SECONDS``); ``None`` while not told."""
        self.held_seconds = 0.0
        """Video seconds during which the camera was too busy for the CNN."""
        self.scan_pending = False
        """The camera's scan running behind its frames (``oneeye.video.scan.ScanBehind``) has
        not ended: the cores have no time to spare for the CNN until it has."""
        self._last_t: float | None = None
        self._work_end: float | None = None

    @property
    def behind(self) -> bool:
        """Whether a camera keeping real time has no time to spare for the CNN (or does not
        know yet; see ``REAL_TIME_SHARE``). Never, for a camera that need not keep it."""
        if not self.real_time:
            return False
        if self.scan_pending:
            return True
        if self.run_share is not None and self.run_share < RUN_SHARE:
            return True
        if self.busy_share is None or self.busy_share > REAL_TIME_SHARE:
            return True
        cores = self._cores()
        return cores is not None and cores > CORES_SHARE

    def worked(
        self, started: float, finished: float, running: tuple[float, float] | None = None
    ) -> None:
        """Record one frame's work: when it started and finished (``time.perf_counter``), and
        how long the camera's thread ran on a core during it.

        The busy share is the part of the wall-clock time since the previous frame's work
        finished that this frame's work took: a live camera waiting for its next frame is
        idle, one that has frames waiting (or drops them) is not. The running share is the
        part of the work's own wall-clock time the thread ran: below 1, the cores were busy
        with other work too.

        Args:
            started: when the camera started on the frame.
            finished: when it was done with it, the CNN's work included.
            running: the CPU seconds of the thread that did the work, and the wall-clock
                seconds they were measured over (the CNN's own, whose library runs its own
                threads, left out); ``None`` when the work was spread over threads, as with
                several detector threads: then only the busy share counts.
        """
        if self._work_end is not None and finished > self._work_end:
            elapsed = finished - self._work_end
            weight = min(1.0, elapsed / BUSY_SECONDS)
            work = max(0.0, finished - started)
            self.busy_share = _smoothed(self.busy_share, min(1.0, work / elapsed), weight)
            if running is not None and running[1] > 0.0:
                ran = min(1.0, max(0.0, running[0]) / running[1])
                self.run_share = _smoothed(self.run_share, ran, weight)
        self._work_end = finished

    def accrue(self, t: float) -> None:
        """Add the allowance of the video time since the previous call.

        Args:
            t: seconds into the source (a source that starts again resets the clock).
        """
        if self._last_t is not None and t > self._last_t:
            if self.behind:
                self.held_seconds += t - self._last_t
            else:
                self.balance = min(self.cap, self.balance + self.rate * (t - self._last_t))
        self._last_t = t

    def can_spend(self) -> bool:
        """Whether any allowance is left and the camera has time to spare for it (one more
        crop may overdraw the allowance; the debt is repaid from the next one)."""
        return self.balance > 0.0 and not self.behind

    def affords(self, pixels: float) -> bool:
        """Whether the balance holds what a crop of ``pixels`` (at the CNN's scale) should
        cost; before the first crop, whether any allowance is left."""
        if not self.can_spend():
            return False
        return self.seconds_per_pixel is None or pixels * self.seconds_per_pixel <= self.balance

    def charge(self, seconds: float, pixels: float = 0.0) -> None:
        """Take CPU seconds spent on the CNN from the balance, and learn its cost per pixel
        from a crop of ``pixels`` (none learnt when 0)."""
        self.balance -= seconds
        self.spent += seconds
        if pixels > 0:
            cost = seconds / pixels
            previous = self.seconds_per_pixel
            self.seconds_per_pixel = cost if previous is None else 0.7 * previous + 0.3 * cost


@dataclass(frozen=True, slots=True)
class AssistRound:
    """What the CNN did on one detection round."""

    detections: list[Detection]
    lost_looked: int
    tiles_looked: int


class CnnAssist:
    """Spends one camera's CNN budget on lost faces and unexplained motion.

    Not thread-safe: one per camera loop. Call :meth:`observe` with every frame, and
    :meth:`look` on detection rounds after HOG has looked.
    """

    def __init__(
        self,
        detector: FaceDetector,
        min_face_px: int,
        ms_per_second: float,
        real_time: bool = False,
        cores: Callable[[], float | None] = CORES.busy_share,
    ) -> None:
        """Set up the budget and the pending motion.

        Args:
            detector: the CNN detector (the caller's own).
            min_face_px: the smallest face worth finding; sets the motion tiles' scale.
            ms_per_second: the CNN budget, CPU milliseconds per second of video.
            real_time: the camera must keep real time: the budget is spent only while it has
                time to spare (:meth:`worked`; see ``REAL_TIME_SHARE``).
            cores: the machine's busy share of its cores (see ``CnnBudget``).

        Raises:
            ValueError: ``min_face_px`` is not positive, or the budget is negative.
        """
        if min_face_px <= 0:
            raise ValueError(f"min_face_px must be positive, got {min_face_px}")
        self.detector = detector
        self.budget = CnnBudget(ms_per_second, real_time=real_time, cores=cores)
        self.factor = min(1.0, CNN_FACE_PX / float(min_face_px))
        self._pad = min_face_px
        self._previous: npt.NDArray[np.uint8] | None = None
        self._since: npt.NDArray[np.float64] | None = None
        """Per motion cell: when it changed first since the CNN last looked (NaN: it did not)."""
        self._shape = (0, 0)
        self.lost_looked = 0
        self.tiles_looked = 0
        self._cnn_cpu = self._cnn_wall = 0.0
        """The CNN's thread CPU and wall-clock seconds on the current frame."""

    def observe(self, grey: npt.NDArray[np.uint8], t: float, scan_pending: bool = False) -> None:
        """Take one frame's motion into the pending parts, and its time into the budget.

        Args:
            grey: the frame, grey.
            t: seconds into the source.
            scan_pending: the camera's scan behind its frames has not ended (a camera keeping
                real time then has no time to spare; see ``CnnBudget.scan_pending``).
        """
        self.budget.scan_pending = scan_pending
        self.budget.accrue(t)
        height, width = grey.shape[:2]
        self._shape = (height, width)
        if self.budget.behind:
            # No time to spare: no motion kept for later either (it costs a resize a frame),
            # and the first frame with time to spare starts afresh, as a first frame does.
            self._previous = self._since = None
            return
        size = (max(1, width // MOTION_SCALE), max(1, height // MOTION_SCALE))
        small = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        previous, self._previous = self._previous, small
        if self._since is None or self._since.shape != small.shape:
            self._since = np.full(small.shape, np.nan)
        if previous is None or previous.shape != small.shape:
            return  # a first frame is no motion
        changed = np.asarray(cv2.absdiff(small, previous) > MOTION_LEVEL)
        self._since[changed & np.isnan(self._since)] = t
        self._since[self._since < t - STALE_SECONDS] = np.nan

    @property
    def held(self) -> bool:
        """Whether the camera has no time to spare for the CNN now (:attr:`CnnBudget.behind`)."""
        return self.budget.behind

    def worked(self, started: float, finished: float, cpu_seconds: float | None = None) -> None:
        """The camera worked on a frame from ``started`` to ``finished``
        (``time.perf_counter``), its thread running for ``cpu_seconds`` of it (see
        :meth:`CnnBudget.worked`)."""
        running = None
        if cpu_seconds is not None:
            running = (cpu_seconds - self._cnn_cpu, finished - started - self._cnn_wall)
        self._cnn_cpu = self._cnn_wall = 0.0
        self.budget.worked(started, finished, running)

    def look(
        self,
        image: RGBImage,
        lost: Sequence[FaceBox],
        explained: Sequence[FaceBox],
    ) -> AssistRound:
        """Spend the budget: first on the lost faces, then on the oldest unexplained motion.

        Args:
            image: the frame, RGB.
            lost: predicted boxes of tracked faces HOG did not find this round, most
                worth looking for first.
            explained: boxes (faces and the bodies below them) whose motion is accounted for.

        Returns:
            What the CNN found (in frame pixels) and how many crops it looked at.
        """
        height, width = image.shape[:2]
        if not self.budget.can_spend():
            return AssistRound([], 0, 0)
        # (pixels at the CNN's scale, region, factor, a motion tile?) in the order to look.
        crops: list[tuple[float, FaceBox, float, bool]] = []
        for box in lost:
            size = max(1, box.size)
            region = _grown(box, round(LOST_REACH * size))
            factor = LOST_FACE_PX / size
            crops.append((region.clipped(height, width).area * factor**2, region, factor, False))
        for tile in self._pending_tiles(explained):
            crops.append((tile.area * self.factor**2, tile, self.factor, True))
        if self.budget.seconds_per_pixel is None and crops:
            # Nothing known of the CNN's cost yet: learn it on the smallest crop alone, so the
            # one look the budget cannot plan costs as little as it can.
            crops = [min(crops, key=lambda crop: crop[0])]
        found: list[Detection] = []
        lost_looked = tiles_looked = 0
        # A camera keeping real time spends a round's share at most (``REAL_TIME_ROUND_SECONDS``).
        round_left = REAL_TIME_ROUND_SECONDS if self.budget.real_time else float("inf")
        for pixels, region, factor, is_tile in crops:
            if not self.budget.can_spend():
                break
            if not self.budget.affords(pixels):
                continue  # a smaller one may fit
            cost = self.budget.seconds_per_pixel
            if cost is not None and pixels * cost > round_left:
                continue  # a later round (or a smaller crop now)
            spent = self.budget.spent
            found += self._run(image, region, factor)
            round_left -= self.budget.spent - spent
            if is_tile:
                self._looked_at(region)
                tiles_looked += 1
            else:
                lost_looked += 1
        self.lost_looked += lost_looked
        self.tiles_looked += tiles_looked
        return AssistRound(found, lost_looked, tiles_looked)

    def _run(self, image: RGBImage, region: FaceBox, factor: float) -> list[Detection]:
        height, width = image.shape[:2]
        if region.bottom < 0 or region.right < 0 or region.top >= height or region.left >= width:
            return []
        start, wall = time.thread_time(), time.perf_counter()
        try:
            return self.detector.detect_region(image, region, factor)
        finally:
            pixels = region.clipped(height, width).area * factor * factor
            spent = time.thread_time() - start
            self._cnn_cpu += spent
            self._cnn_wall += time.perf_counter() - wall
            self.budget.charge(spent, pixels)

    def _pending_tiles(self, explained: Sequence[FaceBox]) -> list[FaceBox]:
        """Tiles over the pending parts no box explains, the oldest change first."""
        since = self._since
        if since is None:
            return []
        for box in explained:
            top, left = max(0, box.top // MOTION_SCALE), max(0, box.left // MOTION_SCALE)
            bottom, right = box.bottom // MOTION_SCALE + 1, box.right // MOTION_SCALE + 1
            since[top:bottom, left:right] = np.nan
        mask = (~np.isnan(since)).astype(np.uint8)
        if not mask.any():
            return []
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        parts: list[tuple[float, FaceBox]] = []
        for label in range(1, count):
            x, y, w, h, _ = (int(v) for v in stats[label])
            oldest = float(np.nanmin(np.where(labels == label, since, np.nan)))
            box = FaceBox(
                top=y * MOTION_SCALE - self._pad,
                left=x * MOTION_SCALE - self._pad,
                bottom=(y + h) * MOTION_SCALE - 1 + self._pad,
                right=(x + w) * MOTION_SCALE - 1 + self._pad,
            ).clipped(*self._shape)
            parts += [(oldest, tile) for tile in self._tiles(box)]
        parts.sort(key=lambda part: part[0])
        return [tile for _, tile in parts]

    @property
    def tile_px(self) -> int:
        """The motion tiles' side at the CNN's scale: ``TILE_PX``; for a camera keeping real
        time ``REAL_TIME_TILE_PX``, or smaller where the CNN's cost so far would make a tile
        cost more than a round's share (a CPU without bfloat16), down to
        ``MIN_REAL_TIME_TILE_PX``."""
        if not self.budget.real_time:
            return TILE_PX
        cost = self.budget.seconds_per_pixel
        if cost is None or cost <= 0.0:
            return REAL_TIME_TILE_PX
        fits = int(math.sqrt(REAL_TIME_ROUND_SECONDS / cost))
        fits -= fits % TILE_STEP_PX
        return max(MIN_REAL_TIME_TILE_PX, min(REAL_TIME_TILE_PX, fits))

    def _tiles(self, box: FaceBox) -> list[FaceBox]:
        """``box`` cut into overlapping tiles of ``TILE_PX`` at the CNN's scale
        (``REAL_TIME_TILE_PX`` for a camera keeping real time)."""
        tile_px = self.tile_px
        side = round(tile_px / self.factor)
        step = round((tile_px - TILE_OVERLAP_PX) / self.factor)
        tiles = []
        for top in _starts(box.top, box.bottom, side, step):
            for left in _starts(box.left, box.right, side, step):
                tiles.append(
                    FaceBox(
                        top=top,
                        left=left,
                        bottom=min(box.bottom, top + side - 1),
                        right=min(box.right, left + side - 1),
                    )
                )
        return tiles

    def _looked_at(self, tile: FaceBox) -> None:
        """The CNN looked at ``tile``: the motion inside it is no longer pending."""
        if self._since is None:
            return
        # Only cells wholly inside the tile: a cell on its edge may hold a face cut in two.
        top, left = -(-tile.top // MOTION_SCALE), -(-tile.left // MOTION_SCALE)
        bottom, right = (tile.bottom + 1) // MOTION_SCALE, (tile.right + 1) // MOTION_SCALE
        self._since[top:bottom, left:right] = np.nan


def _smoothed(previous: float | None, value: float, weight: float) -> float:
    """An exponential average: ``value`` where there is none yet."""
    return value if previous is None else previous + weight * (value - previous)


def _starts(first: int, last: int, side: int, step: int) -> list[int]:
    """Tile starts covering ``first..last`` with tiles of ``side`` every ``step``."""
    if last - first + 1 <= side:
        return [first]
    starts = list(range(first, last - side + 1, step))
    if starts[-1] + side - 1 < last:
        starts.append(last - side + 1)
    return starts


def _grown(box: FaceBox, by: int) -> FaceBox:
    return FaceBox(
        top=box.top - by, right=box.right + by, bottom=box.bottom + by, left=box.left - by
    )
