"""Where one camera looks for faces on a frame, so that it need not scan every frame whole.

A whole scan of a 1080p frame for 40-pixel faces is dlib's HOG on a 3840x2160 image: about 0.7 s
of one core. Most frames do not need one. A face the camera already follows is looked for again
in a small crop around where its track predicts it, scaled so the face is about the detector's
window, in the few levels of its pyramid near that size: a few milliseconds
(:meth:`FaceFinder.near`). A face that has just come into view has moved, so the parts of the
frame that changed and that no track explains are scanned as soon as they change
(:class:`MotionMap`, :meth:`FaceFinder.within`). A whole scan every few frames
(:meth:`FaceFinder.scan`) finds whoever stood still or came in while the rest of the scene was
moving too. The whole scan can be cut into overlapping strips run in threads: dlib's HOG
releases the GIL. Frames are scanned in grey, which costs HOG a quarter less than three
channels.

A camera that must keep real time (a live one) scans behind its frames (:class:`ScanBehind`):
a scan costs 30-55 ms of CPU on a 720p frame at once, which on a core four cameras share is
120-200 ms of wall-clock time, and the frames that arrive meanwhile would be dropped. Its scans
run instead on a thread of their own at the lowest priority, on a copy of the frame, while the
camera's own thread goes on with the next frames; what a scan finds is looked for again, on the
frame the camera is at when it ends, around where it was found.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.types import Detection, FaceBox
from oneeye.vision.detectors import FaceDetector

GreyImage = npt.NDArray[np.uint8]
"""A frame as an (height, width) uint8 array of grey levels."""

NEAR_FACE_WINDOWS = 1.1
"""A tracked face is looked for with its crop scaled so the face is this many detector windows
wide (it was 1.25: the crop had 1.29 times the pixels). With ``NEAR_LEVELS`` a face is found
from 0.65 to 1.8 times its predicted size (a pasted LFW face; ``tests/video/test_scan.py``
checks 0.7 and 1.6); before, from under 0.55 to over 2.2. A face walking at a camera changes
size by a few percent between two looks. At 1.0 a dark room's noisy faces were found less
often (``tests/video/test_pipeline.py``, the lift test)."""

NEAR_LEVELS = 4
"""A tracked face is looked for in only this many levels of the detector's pyramid (each 5/6
of the one before), not down to faces as large as the whole crop: those levels were a third of
the look's cost (``FaceDetector.detect_region``'s ``levels``). A face that grew more is found
by the next scan."""

NEAR_MARGIN = 1.0
"""The crop around a tracked face reaches this many face sizes beyond its predicted box."""

STRIP_FACE_FRACTION = 0.2
"""Threaded strips overlap by this fraction of the frame height: a face that tall or smaller
lies whole in one strip; taller ones are found by one more, coarse, whole-frame part."""

MOTION_SCALE = 8
MOTION_LEVEL = 20
MOTION_CELLS = 4
"""Motion is measured on frames shrunk 8x: a cell moved when its grey level changed by more
than 20; the frame moved when at least 4 cells did (a face entering moves far more)."""

MOTION_MAX_AREA = 0.3
"""When the changed parts no track explains cover more than this fraction of the frame (a busy
street), they are not scanned one by one: the next whole scan looks everywhere anyway."""

SCAN_MAX_AREA = 0.6
"""A scan looks only where the frame changed since the previous scan, unless those parts,
grown by the pad, cover more than this fraction of it: then it scans the whole frame."""


def merge_overlapping(detections: Sequence[Detection], min_iou: float = 0.3) -> list[Detection]:
    """One detection per face: of boxes overlapping by ``min_iou`` or more, the most confident.

    Args:
        detections: faces from parts of a frame that may overlap.
        min_iou: boxes overlapping at least this much are the same face.

    Returns:
        The kept detections, most confident first.
    """
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: d.confidence, reverse=True):
        if all(detection.box.iou(other.box) < min_iou for other in kept):
            kept.append(detection)
    return kept


def _grown(box: FaceBox, by: int) -> FaceBox:
    return FaceBox(
        top=box.top - by, right=box.right + by, bottom=box.bottom + by, left=box.left - by
    )


class MotionMap:
    """Which parts of a camera's frames changed since they were last looked at.

    Call :meth:`update` with every frame. :meth:`take` hands out the parts changed since the
    previous :meth:`take` (for the detection rounds between whole scans);
    :meth:`take_since_scan` those changed since the previous whole scan (so a scan can skip
    what stayed the same: a face can only have come where something changed).
    """

    def __init__(self, pad_px: int) -> None:
        """Start with no frame seen.

        Args:
            pad_px: a changed part is handed out grown by this many pixels on every side, so
                a face at its edge lies whole inside it (use about the smallest face's size).
        """
        self._pad = max(0, pad_px)
        self._previous: GreyImage | None = None
        self._changed: npt.NDArray[np.bool_] | None = None
        self._since_scan: npt.NDArray[np.bool_] | None = None
        self._shape = (0, 0)

    def update(self, grey: GreyImage) -> bool:
        """Compare a frame with the previous one.

        Args:
            grey: the frame, grey.

        Returns:
            Whether it moved (see ``MOTION_CELLS``); the first frame always has.
        """
        height, width = grey.shape[:2]
        self._shape = (height, width)
        size = (max(1, width // MOTION_SCALE), max(1, height // MOTION_SCALE))
        small = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            changed = np.ones(small.shape, dtype=bool)
        else:
            changed = np.asarray(cv2.absdiff(small, previous) > MOTION_LEVEL)
        self._changed = _gathered(self._changed, changed)
        self._since_scan = _gathered(self._since_scan, changed)
        return previous is None or int(np.count_nonzero(changed)) >= MOTION_CELLS

    def take(self, explained: Sequence[FaceBox] = ()) -> list[FaceBox]:
        """The changed parts since the previous call, less those ``explained`` covers.

        Args:
            explained: boxes whose change is accounted for (tracked faces, grown by the caller
                as far as their motion reaches).

        Returns:
            Boxes in frame pixels (possibly past the frame's edges; clip before cropping),
            grown by ``pad_px``; empty when nothing changed, or when so much did (the grown
            parts cover over ``MOTION_MAX_AREA`` of the frame: a busy street, or a face large
            in a small frame) that scanning them on every round would cost more than the
            whole scans they stand in for.
        """
        changed, self._changed = self._changed, None
        boxes = self._regions(changed, explained)
        if boxes is None or self._covered(boxes) > MOTION_MAX_AREA:
            return []
        return boxes

    def take_since_scan(self) -> list[FaceBox] | None:
        """The parts changed since the previous call, for a scan that looks only there.

        Returns:
            Boxes as :meth:`take` gives them (empty when nothing changed), or ``None`` when
            the grown parts cover more than ``SCAN_MAX_AREA`` of the frame: scan it whole.
        """
        changed, self._since_scan = self._since_scan, None
        self._changed = None
        boxes = self._regions(changed, ())
        if boxes is None:
            return []
        return None if self._covered(boxes) > SCAN_MAX_AREA else boxes

    def _covered(self, boxes: Sequence[FaceBox]) -> float:
        """The fraction of the frame the boxes cover (they do not overlap)."""
        height, width = self._shape
        return sum(b.clipped(height, width).area for b in boxes) / float(height * width)

    def _regions(
        self, changed: npt.NDArray[np.bool_] | None, explained: Sequence[FaceBox]
    ) -> list[FaceBox] | None:
        """The changed parts grown by the pad; ``None`` when too little changed."""
        if changed is None:
            return None
        mask = changed.astype(np.uint8)
        for box in explained:
            top, left = max(0, box.top // MOTION_SCALE), max(0, box.left // MOTION_SCALE)
            bottom, right = box.bottom // MOTION_SCALE + 1, box.right // MOTION_SCALE + 1
            mask[top:bottom, left:right] = 0
        if int(np.count_nonzero(mask)) < MOTION_CELLS:
            return None
        count, _, stats, _ = cv2.connectedComponentsWithStats(
            cv2.dilate(mask, np.ones((3, 3), np.uint8)), connectivity=8
        )
        boxes = []
        for label in range(1, count):
            x, y, w, h, _ = (int(v) for v in stats[label])
            box = FaceBox(
                top=y * MOTION_SCALE,
                left=x * MOTION_SCALE,
                bottom=(y + h) * MOTION_SCALE - 1,
                right=(x + w) * MOTION_SCALE - 1,
            )
            boxes.append(_grown(box, self._pad))
        return _merge_boxes(boxes)


def _gathered(
    so_far: npt.NDArray[np.bool_] | None, changed: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    if so_far is None or so_far.shape != changed.shape:
        return changed.copy()
    return so_far | changed


def _merge_boxes(boxes: list[FaceBox]) -> list[FaceBox]:
    """Boxes that overlap become their union, until none overlap."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                if (
                    a.left <= b.right
                    and b.left <= a.right
                    and a.top <= b.bottom
                    and b.top <= a.bottom
                ):
                    merged[i] = FaceBox(
                        top=min(a.top, b.top),
                        right=max(a.right, b.right),
                        bottom=max(a.bottom, b.bottom),
                        left=min(a.left, b.left),
                    )
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


class FaceFinder:
    """Runs one camera's detectors on whole frames, on parts of them, and around known faces.

    Not thread-safe: one per camera loop. With ``threads`` > 1 it keeps that many detectors
    and a pool of that many threads, and each call spreads its parts over them.
    """

    def __init__(
        self, make_detector: Callable[[], FaceDetector], min_face_px: int, threads: int = 1
    ) -> None:
        """Make the detectors.

        Args:
            make_detector: makes one detector (each thread gets its own).
            min_face_px: the smallest face a whole scan or a motion scan must find.
            threads: detector threads, >= 1.

        Raises:
            ValueError: ``threads`` < 1 or ``min_face_px`` <= 0.
        """
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._detectors = [make_detector() for _ in range(threads)]
        self._window = self._detectors[0].window_px
        self.min_face_px = min_face_px
        if min_face_px <= 0:
            raise ValueError(f"min_face_px must be positive, got {min_face_px}")
        self.factor = self._window / float(min_face_px)
        """The resize factor of whole and motion scans: the smallest face worth finding
        becomes exactly one detector window. (dlib's own upsampling doubles, so 48-pixel
        faces would cost a 2x image where 1.67x finds them: 30% fewer pixels.)"""
        self._pool = ThreadPoolExecutor(threads, "oneeye-scan") if threads > 1 else None

    @property
    def threads(self) -> int:
        """How many detectors run at once."""
        return len(self._detectors)

    def close(self) -> None:
        """Stop the threads (the finder is not used again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def scan(self, grey: GreyImage) -> list[Detection]:
        """Every face of at least ``min_face_px`` in the whole frame.

        Args:
            grey: the frame, grey (RGB works too, at a higher cost).

        Returns:
            One detection per face, most confident first.
        """
        height, width = grey.shape[:2]
        whole = FaceBox(top=0, left=0, bottom=height - 1, right=width - 1)
        if self.threads == 1:
            return self._run(grey, [(whole, self.factor)])
        overlap = round(STRIP_FACE_FRACTION * height)
        # Not rounded to dlib's doublings like the strips' factor: rounded, it came out equal
        # to theirs on small frames (480 lines, 40 or 80 px faces), the coarse part was left
        # out, and a face taller than the overlap across a strip edge was found cut in two.
        coarse_factor = self._window / max(self.min_face_px, 0.8 * overlap)
        if coarse_factor >= self.factor:
            # The tall faces need the fine scale anyway: strips would only add work.
            return self._run(grey, [(whole, self.factor)])
        strip = height / self.threads
        parts = [
            (
                FaceBox(
                    top=max(0, round(i * strip) - overlap // 2),
                    bottom=min(height - 1, round((i + 1) * strip) + overlap // 2),
                    left=0,
                    right=width - 1,
                ),
                self.factor,
            )
            for i in range(self.threads)
        ]
        parts.append((whole, coarse_factor))
        return self._run(grey, parts)

    def within(self, grey: GreyImage, regions: Sequence[FaceBox]) -> list[Detection]:
        """Faces of at least ``min_face_px`` inside the given parts of the frame.

        Args:
            grey: the frame.
            regions: where to look (see :meth:`MotionMap.take`).

        Returns:
            One detection per face, most confident first.
        """
        return self._run(grey, [(region, self.factor) for region in regions])

    def near(
        self, grey: GreyImage, boxes: Sequence[FaceBox], reach: Sequence[float] | None = None
    ) -> list[Detection]:
        """Look for each known face again around where it should be.

        Args:
            grey: the frame.
            boxes: where each face is predicted to be on this frame.
            reach: per box, how many face sizes beyond it to look (``NEAR_MARGIN`` each when
                ``None``); more for a face whose motion is not known yet.

        Returns:
            One detection per face found (a face that has come close to a known one may be
            found too), most confident first.
        """
        margins = [NEAR_MARGIN] * len(boxes) if reach is None else list(reach)
        if len(margins) != len(boxes):
            raise ValueError(f"reach has {len(margins)} values for {len(boxes)} boxes")
        parts = []
        for box, margin in zip(boxes, margins, strict=True):
            size = max(1, box.size)
            parts.append(
                (
                    _grown(box, round(margin * size)),
                    NEAR_FACE_WINDOWS * self._window / size,
                )
            )
        return self._run(grey, parts, NEAR_LEVELS)

    def _run(
        self, grey: GreyImage, parts: list[tuple[FaceBox, float]], levels: int | None = None
    ) -> list[Detection]:
        height, width = grey.shape[:2]
        inside = [
            (region.clipped(height, width), factor)
            for region, factor in parts
            if region.bottom >= 0
            and region.right >= 0
            and region.top < height
            and region.left < width
        ]
        if not inside:
            return []
        if self._pool is None or len(inside) == 1:
            found = [
                d
                for region, factor in inside
                for d in self._detectors[0].detect_region(grey, region, factor, levels=levels)
            ]
            return merge_overlapping(found)
        groups = [inside[i :: self.threads] for i in range(self.threads)]
        futures = [
            self._pool.submit(_run_group, detector, grey, group, levels)
            for detector, group in zip(self._detectors, groups, strict=True)
            if group
        ]
        return merge_overlapping([d for future in futures for d in future.result()])


def _run_group(
    detector: FaceDetector,
    grey: GreyImage,
    group: list[tuple[FaceBox, float]],
    levels: int | None,
) -> list[Detection]:
    return [
        d
        for region, factor in group
        for d in detector.detect_region(grey, region, factor, levels=levels)
    ]


BEHIND_NICE = 19
"""The nice value of a camera's scan-behind thread: the lowest priority, so every camera's
frame-by-frame work (looking near tracked faces, encoding) is served before any scan."""


def _lowest_priority() -> None:
    """Make the calling thread the last to get a core (Linux: a thread's own nice value)."""
    if sys.platform.startswith("linux"):
        # Raising one's own nice value is always allowed; should a sandbox refuse it, the
        # scan runs at the camera's priority.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BEHIND_NICE)


class ScanBehind:
    """Runs one camera's scans on a thread of their own, so its frames never wait for one.

    At most one scan runs at a time; :meth:`start` refuses another while it does (the camera
    looks as between scans meanwhile). :meth:`take` hands back what the finished scan found,
    with the index of the frame it scanned, once. Not thread-safe: one per camera loop.
    """

    def __init__(self, make_detector: Callable[[], FaceDetector], min_face_px: int) -> None:
        """Make the scan's own detector and thread.

        Args:
            make_detector: makes one detector (the scan's own: detectors are not shared
                between threads).
            min_face_px: the smallest face a scan must find.
        """
        self._finder = FaceFinder(make_detector, min_face_px)
        self._pool = ThreadPoolExecutor(1, "oneeye-scan-behind", initializer=_lowest_priority)
        self._running: Future[list[Detection]] | None = None
        self._index = -1
        self.lag_frames = 0
        """Frames between each scan's start and the frame its findings were taken on, summed."""
        self.taken = 0
        """Scans whose findings were taken."""

    @property
    def busy(self) -> bool:
        """Whether a scan is running or its findings are waiting to be taken."""
        return self._running is not None

    def start(self, index: int, frame: GreyImage, regions: Sequence[FaceBox] | None) -> None:
        """Scan a frame behind the camera: whole (``regions`` ``None``) or only there.

        Args:
            index: the frame's index, handed back with the findings.
            frame: the frame (copied: the camera goes on with its own).
            regions: where to look (see :meth:`FaceFinder.within`), or ``None``: everywhere.

        Raises:
            RuntimeError: a scan is still busy.
        """
        if self._running is not None:
            raise RuntimeError("a scan is still running behind this camera")
        copy = frame.copy()
        if regions is None:
            self._running = self._pool.submit(self._finder.scan, copy)
        else:
            self._running = self._pool.submit(self._finder.within, copy, list(regions))
        self._index = index

    def take(self, index: int) -> tuple[int, list[Detection]] | None:
        """The findings of the scan that ended, if one did.

        Args:
            index: the frame the camera is at (for ``lag_frames``).

        Returns:
            The scanned frame's index and its faces, or ``None`` while none has ended.
        """
        if self._running is None or not self._running.done():
            return None
        running, self._running = self._running, None
        self.lag_frames += index - self._index
        self.taken += 1
        return self._index, running.result()

    def close(self) -> None:
        """Wait for the running scan, if any, and stop the thread."""
        self._pool.shutdown(wait=True)
        self._finder.close()
