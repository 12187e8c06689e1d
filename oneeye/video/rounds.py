"""When and where one camera looks for faces: its detection rounds.

Detection runs every ``detect_every`` frames, and not on the whole frame (see
``oneeye.video.scan``): each tracked face is looked for around where its track predicts it,
and the parts of the frame that changed and no track explains are scanned for new faces. The
whole frame is scanned every ``scan_every`` frames, and at once when something moves while
nobody is tracked, so a face entering an empty scene is found on the frame it appears. A camera
that must keep real time runs its scans behind its frames instead, and looks for what they
found on the next detection round (``oneeye.video.scan.ScanBehind``).

A camera looks with dlib's HOG (``detector="hog"``, the default), with the MMOD CNN everywhere
(``"cnn"``), or with HOG plus CNN time where HOG misses (``"auto"``: faces HOG lost and motion
no track explains, within ``cnn_ms_per_s``; see ``oneeye.video.assist``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from oneeye.metrics import DETECTION_SECONDS
from oneeye.types import Detection, FaceBox, RGBImage
from oneeye.video.assist import CnnAssist
from oneeye.video.pipeline_io import PipelineSettings
from oneeye.video.scan import NEAR_MARGIN, FaceFinder, MotionMap, ScanBehind, merge_overlapping
from oneeye.video.track import Track
from oneeye.vision.detectors import FaceDetector

NEW_FACE_REACH = 2.5
"""A face found once is looked for this many face sizes around where it was (a face with a
known velocity: ``NEAR_MARGIN``). A cyclist crossing a 1080p street moves a face size in three
frames."""

STEADY_REACH = 0.5
"""A face found on its last round and on at least ``STEADY_HITS`` rounds in all moves as its
track predicts: it is looked for only this many face sizes around the prediction, a crop of 2x2
face sizes instead of ``NEAR_MARGIN``'s 3x3 (the look near tracked faces was the largest part
of a 720p camera's HOG time). A face missed on its last round is looked for as widely as
before."""

STEADY_HITS = 3
"""Rounds a face must have been found on (its last one included) before ``STEADY_REACH``:
by then its track's velocity is measured over two steps."""

BODY_FACES = 4
"""A tracked face explains motion down to this many face sizes below it (its body), and one
face size to every other side."""

LOST_MIN_IOU = 0.2
"""A tracked face counts as found by HOG when a detection overlaps its predicted box this much."""


def reach_of(track: Track) -> float:
    """How many face sizes around its predicted box a tracked face is looked for."""
    if track.hits == 1:
        return NEW_FACE_REACH
    if track.hits >= STEADY_HITS and track.missed == 0:
        return STEADY_REACH
    return NEAR_MARGIN


def with_body(box: FaceBox) -> FaceBox:
    """What a face explains of the motion around it: the head, and the body below."""
    return FaceBox(
        top=box.top - box.size,
        right=box.right + box.size,
        bottom=box.bottom + BODY_FACES * box.size,
        left=box.left - box.size,
    )


def expected_box(track: Track, elapsed: int) -> FaceBox:
    """Where a tracked face should be ``elapsed`` frames after its last box."""
    dx, dy = (round(v * elapsed) for v in track.velocity)
    box = track.box
    return FaceBox(
        top=box.top + dy, right=box.right + dx, bottom=box.bottom + dy, left=box.left + dx
    )


class DetectionRounds:
    """One camera's detectors, and on which frames and where they look. Not thread-safe: one
    per camera loop (its scan behind the frames runs on a thread of its own)."""

    def __init__(
        self,
        camera: str,
        settings: PipelineSettings,
        make_detector: Callable[[str], FaceDetector],
    ) -> None:
        """Make the detectors.

        Args:
            camera: the camera's id (for the detection-time metric).
            settings: the camera's pipeline settings.
            make_detector: makes a detector by name (``"hog"``, ``"cnn"``).
        """
        self.camera = camera
        self.settings = settings
        scanner = "cnn" if settings.detector == "cnn" else "hog"
        self._scan_rgb = scanner == "cnn"
        """The CNN takes RGB; HOG is given grey frames (a quarter cheaper)."""
        self._finder = FaceFinder(
            lambda: make_detector(scanner), settings.min_face_px, settings.detect_threads
        )
        self._behind = (
            ScanBehind(lambda: make_detector(scanner), settings.min_face_px)
            if settings.real_time and settings.scan_behind and settings.detect_threads == 1
            else None
        )
        """A camera that must keep real time scans behind its frames (``oneeye.video.scan``)."""
        self._assist = (
            CnnAssist(
                make_detector("cnn"),
                settings.min_face_px,
                settings.cnn_ms_per_s,
                real_time=settings.real_time,
            )
            if settings.detector == "auto"
            else None
        )
        self._motion = MotionMap(pad_px=settings.min_face_px)
        self._last_scan: int | None = None
        self.detections = 0
        self.scans = 0
        self.whole_scans = 0
        self.cnn_detections = 0
        """``auto``: detections the CNN added (lost faces and motion HOG did not explain)."""

    def close(self) -> None:
        """Stop the detector threads, if any (not used again)."""
        self._finder.close()
        if self._behind is not None:
            self._behind.close()

    def counts(self) -> dict[str, int]:
        """Detection rounds and scans (whole ones too); with scans behind the frames, how many
        ended and the frames they lagged in all; with ``auto``, the CNN's detections, crops of
        lost faces, motion tiles and CPU milliseconds, and the video milliseconds the camera
        had no time to spare for it (``PipelineSettings.real_time``)."""
        counts = {
            "detection_rounds": self.detections,
            "scans": self.scans,
            "whole_scans": self.whole_scans,
        }
        if self._behind is not None:
            counts |= {
                "scans_behind": self._behind.taken,
                "scan_lag_frames": self._behind.lag_frames,
            }
        if self._assist is not None:
            counts |= {
                "cnn_detections": self.cnn_detections,
                "cnn_lost_crops": self._assist.lost_looked,
                "cnn_motion_tiles": self._assist.tiles_looked,
                "cnn_ms": round(1000 * self._assist.budget.spent),
                "cnn_held_ms": round(1000 * self._assist.budget.held_seconds),
            }
        return counts

    def observe(self, seen: npt.NDArray[np.uint8], t: float) -> bool:
        """Take a frame's motion (every frame, before :meth:`detect`).

        Args:
            seen: the frame, grey, as the detectors see it (brightened when dark).
            t: seconds into the source.

        Returns:
            Whether it moved (``MotionMap.update``).
        """
        moved = self._motion.update(seen)
        if self._assist is not None:
            pending = self._behind is not None and self._behind.busy
            self._assist.observe(seen, t, scan_pending=pending)
        return moved

    def worked(self, started: float, finished: float, cpu_seconds: float) -> None:
        """The camera worked on a frame from ``started`` to ``finished``
        (``time.perf_counter``), its thread running ``cpu_seconds`` of it: ``auto``'s measure
        of the time the camera has to spare (``CnnAssist.worked``)."""
        if self._assist is not None:
            # With several detector threads the work is spread over them: the calling thread's
            # CPU time says nothing of the cores then.
            cpu = cpu_seconds if self._finder.threads == 1 else None
            self._assist.worked(started, finished, cpu)

    def detect(
        self,
        index: int,
        image: RGBImage,
        grey: npt.NDArray[np.uint8],
        moved: bool,
        elapsed: int,
        tracks: Sequence[Track],
    ) -> list[Detection] | None:
        """This frame's faces, looked for where they may be.

        Args:
            index: the frame's index (as the pipeline counts them).
            image: the frame, RGB.
            grey: the frame, grey, as the detectors see it.
            moved: what :meth:`observe` said of it.
            elapsed: frames since the previous one the pipeline processed.
            tracks: the faces followed now.

        Returns:
            One detection per face found; ``None`` when it is not a detection frame.
        """
        frame = image if self._scan_rgb else grey
        behind = self._behind
        scan_due = (
            self._last_scan is None
            or index - self._last_scan >= self.settings.scan_every
            or (moved and not tracks)
        )
        if scan_due and behind is not None and behind.busy:
            scan_due = False  # the previous scan is still running: look as between scans
        detect_due = index % self.settings.detect_every == 0
        scanned: list[Detection] = []
        if behind is not None and (scan_due or detect_due or not tracks):
            taken = behind.take(index)
            scanned = taken[1] if taken is not None else []
        if not (scan_due or detect_due or scanned):
            return None
        expected = [expected_box(track, elapsed) for track in tracks]
        regions: list[FaceBox] = []
        if not scan_due:
            regions = self._motion.take([with_body(box) for box in expected])
            if (
                not tracks
                and not regions
                and not scanned
                and (self._assist is None or self._assist.held)
            ):
                return None  # nothing to look at: no detector runs
        # A face seen once has no velocity yet: look for it further from where it was; one
        # that keeps to its track, nearer.
        reach = [reach_of(track) for track in tracks]
        started = time.perf_counter()
        found = self._finder.near(frame, expected, reach)
        if scanned:
            # The scan behind found these on an earlier frame: the faces no track explains are
            # looked for on this one around where they were, as faces found once.
            new = [d.box for d in scanned if all(d.box.iou(box) < LOST_MIN_IOU for box in expected)]
            found += self._finder.near(frame, new, [NEW_FACE_REACH] * len(new))
        if scan_due:
            self._last_scan = index
            self.scans += 1
            changed = self._motion.take_since_scan()
            whole = changed is None or (self.scans - 1) % self.settings.whole_every == 0
            self.whole_scans += int(whole)
            if behind is not None:
                if whole or changed:
                    behind.start(index, frame, None if whole else changed)
            elif whole:
                found += self._finder.scan(frame)
            else:
                found += self._finder.within(frame, changed or [])
        else:
            found += self._finder.within(frame, regions)
        if self._assist is not None:
            found = merge_overlapping(found)
            # Faces HOG lost this round, those seen most recently first (likeliest still there).
            lost = [
                box
                for box, _ in sorted(
                    (
                        (box, track.missed)
                        for box, track in zip(expected, tracks, strict=True)
                        if all(box.iou(d.box) < LOST_MIN_IOU for d in found)
                    ),
                    key=lambda pair: pair[1],
                )
            ]
            explained = [with_body(box) for box in expected + [d.box for d in found]]
            assisted = self._assist.look(image, lost, explained).detections
            self.cnn_detections += len(assisted)
            found += assisted
        self.detections += 1
        DETECTION_SECONDS.labels(self.camera).observe(time.perf_counter() - started)
        return merge_overlapping(found)
