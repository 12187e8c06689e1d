"""FrameReader: frames from a webcam, a video file, an RTSP camera or an HTTP MJPEG stream.

The pipeline must never fall behind real time on a live camera, and must see every frame of a
file (tests and benchmarks compare against per-frame truth). So a live source is read by a
capture thread that keeps only the newest ``LATE_FRAMES + 1`` frames and reconnects on its own
when the camera drops, while a file is read in the caller's thread, every frame in order.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.errors import ImageError, SourceError
from oneeye.types import RGBImage
from oneeye.vision.images import image_from_bgr

logger = logging.getLogger(__name__)

SourceState = Literal["connecting", "online", "reconnecting", "offline", "ended"]
"""Where a source is: ``connecting`` (first attempt), ``online`` (frames arriving),
``reconnecting`` (lost or refused, retrying with backoff), ``offline`` (closed) or ``ended``
(a file read to its end)."""

URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
"""The URL schemes a source may use: RTSP cameras and HTTP(S) MJPEG streams."""

LATE_FRAMES = 2
"""How many frame times a camera's pipeline may fall behind before it loses a frame: a live
source keeps its newest ``LATE_FRAMES + 1`` frames (the oldest is dropped when another
arrives), and a paced file's frame is dropped when reached more than ``LATE_FRAMES`` frame
times after it was due (the worker). A short stall (a scan, a burst of new faces) is caught up
on instead of costing frames; at most ``LATE_FRAMES`` frame times of delay (80 ms at 25 fps)."""

FALLBACK_FPS = 25.0
"""Frame rate assumed for a file that does not declare one (some AVI and raw streams)."""

_SECRET_QUERY_KEY = re.compile(r"user|pass|pwd|token|key|secret|auth|sig", re.IGNORECASE)

BGRFrame = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame from a source.

    ``index`` counts the frames read from the source, from 0 (on a live source a consumer that
    is slower than the camera sees gaps). ``t`` is seconds into the source: ``index / fps`` for
    a file, monotonic seconds since the reader started for a live source. ``captured_at`` is
    the wall-clock time (``time.time()``) the frame was read.
    """

    index: int
    t: float
    image: RGBImage
    captured_at: float


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A snapshot of a source's health, as the camera status page and bus report it."""

    source: str
    """The source as given, with any credentials masked."""
    state: SourceState
    last_frame_at: float | None
    """Wall-clock time (``time.time()``) of the last frame read, or None before the first."""
    fps: float
    """Frames per second read from the source (delivered, for a file) over the last window."""
    frames_read: int
    frames_dropped: int
    """Live frames replaced by a newer one before the consumer took them."""
    reconnects: int
    """Times the connection was re-established after being lost or refused."""
    last_error: str | None


def mask_credentials(url: str) -> str:
    """Hide the user name, password and secret-looking query values in a URL, for logs.

    Args:
        url: a URL such as ``rtsp://admin:secret@10.0.0.5/stream?token=abc``.

    Returns:
        The URL with the user info replaced by ``***`` and the values of query parameters
        named like a user, password, token or key replaced by ``***``
        (``rtsp://***@10.0.0.5/stream?token=***``). Anything that does not parse as a URL with
        a scheme comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = []
        for pair in query.split("&"):
            key, sep, _value = pair.partition("=")
            pairs.append(f"{key}=***" if sep and _SECRET_QUERY_KEY.search(key) else pair)
        query = "&".join(pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True, slots=True)
class _Spec:
    """A source, classified: what to pass to OpenCV and how to name it in logs."""

    kind: Literal["camera", "url", "file"]
    target: int | str
    name: str


def _classify(source: int | str | os.PathLike[str]) -> _Spec:
    """Decide whether ``source`` is a webcam index, a stream URL or a file path."""
    if isinstance(source, bool):
        raise TypeError("a source must be a camera index, a URL or a path, got a bool")
    if isinstance(source, int):
        if source < 0:
            raise SourceError(f"camera index must be 0 or more, got {source}")
        return _Spec("camera", source, f"camera {source}")
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        return _Spec("file", path, path)
    if not isinstance(source, str):
        raise TypeError(
            f"a source must be a camera index, a URL or a path, got {type(source).__name__}"
        )
    text = source.strip()
    if not text:
        raise SourceError("empty source: expected a camera index, a URL or a file path")
    if text.isdigit():
        return _Spec("camera", int(text), f"camera {int(text)}")
    if "://" in text:
        name = mask_credentials(text)
        scheme = text.partition("://")[0].lower()
        if scheme not in URL_SCHEMES:
            expected = ", ".join(f"{s}://" for s in URL_SCHEMES)
            raise SourceError(
                f"{name}: unsupported URL scheme {scheme!r}, expected one of {expected}"
            )
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        if not host:
            raise SourceError(f"{name}: the URL has no host")
        return _Spec("url", text, name)
    return _Spec("file", source, source)


class FrameReader:
    """Frames from one source: every frame of a file in order, or a live one's newest frames.

    A file is opened (and its first frame decoded) in the constructor, so a bad file fails
    there. A live source (webcam, RTSP, HTTP MJPEG) starts a capture thread in the
    constructor that never gives up: when the stream drops, or cannot be reached, it retries
    with exponential backoff and reports ``reconnecting`` in :meth:`status`. Call
    :meth:`close` (or use the reader as a context manager) to stop it.

    Read frames with ``for frame in reader`` (ends at the end of a file, or when the reader is
    closed) or with :meth:`read`. Use the reader from one consumer thread; :meth:`status` and
    :meth:`close` may be called from any thread.
    """

    def __init__(
        self,
        source: int | str | os.PathLike[str],
        *,
        pace: bool = False,
        start_frame: int = 0,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        fps_window: float = 2.0,
    ) -> None:
        """Open a source.

        Args:
            source: a webcam index (``0`` or ``"0"``), a file path, or an ``rtsp://``,
                ``rtsps://``, ``http://`` or ``https://`` URL.
            pace: for a file, hand out frames no faster than its native frame rate, as a
                camera would. Ignored for live sources.
            start_frame: for a file, the index of the first frame to hand out (resuming a
                file camera where it stopped); at or past the end, the file has ended at
                once. Ignored for live sources.
            initial_backoff: seconds to wait before the first reconnection attempt; doubled
                after every failed attempt.
            max_backoff: the longest wait between reconnection attempts, in seconds.
            open_timeout: seconds to wait for a URL to connect before the attempt fails.
            read_timeout: seconds without a frame from a URL before the stream counts as lost.
                :meth:`close` may wait this long for a stalled stream.
            fps_window: seconds over which :attr:`SourceStatus.fps` is measured.

        Raises:
            SourceError: for a URL with an unsupported scheme or no host, a negative camera
                index, or a file that is missing, unreadable, not a video or has no
                decodable frame. The message names the source (credentials masked).
            ValueError: if a timing argument is not positive or ``max_backoff`` is below
                ``initial_backoff`` (a caller bug).
        """
        for arg, value in (
            ("initial_backoff", initial_backoff),
            ("open_timeout", open_timeout),
            ("read_timeout", read_timeout),
            ("fps_window", fps_window),
        ):
            if not value > 0:
                raise ValueError(f"{arg} must be positive, got {value}")
        if max_backoff < initial_backoff:
            raise ValueError(
                f"max_backoff must be >= initial_backoff ({initial_backoff}), got {max_backoff}"
            )
        if start_frame < 0:
            raise ValueError(f"start_frame must not be negative, got {start_frame}")
        self._spec = _classify(source)
        self._pace = pace
        self._start_frame = start_frame
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._fps_window = fps_window

        self._stop = threading.Event()
        self._cond = threading.Condition()  # guards everything below, and wakes read()
        self._state: SourceState = "connecting"
        self._last_frame_at: float | None = None
        self._frame_times: deque[float] = deque()
        self._frames_read = 0
        self._frames_dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._newest: deque[tuple[int, float, BGRFrame, float]] = deque()
        self._started = time.monotonic()
        self._thread: threading.Thread | None = None

        # File state, used from the consumer's thread only (under _file_lock).
        self._file_lock = threading.Lock()
        self._capture: Any = None
        self._pending: BGRFrame | None = None
        self._next_index = 0
        self._fps = FALLBACK_FPS
        self._pace_start: float | None = None

        if self._spec.kind == "file":
            self._open_file()
        else:
            self._thread = threading.Thread(
                target=self._capture_loop, name=f"FrameReader({self.name})", daemon=True
            )
            self._thread.start()

    @property
    def name(self) -> str:
        """The source as given, with credentials masked: safe for logs and messages."""
        return self._spec.name

    @property
    def is_live(self) -> bool:
        """True for a webcam or stream URL, False for a file."""
        return self._spec.kind != "file"

    @property
    def fps(self) -> float | None:
        """A file's native frame rate, or None for a live source (see :meth:`status`)."""
        return None if self.is_live else self._fps

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame: a file's next frame in order, or the oldest a live source keeps.

        Args:
            timeout: the longest wait in seconds, or None to wait until a frame comes or the
                reader is closed. A file that is not paced never waits.

        Returns:
            The frame, or None on timeout, at the end of a file, or once the reader is closed.
            A live source never returns the same frame twice.
        """
        if self.is_live:
            return self._read_live(timeout)
        return self._read_file(timeout)

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the end of a file, or until the reader is closed."""
        while True:
            frame = self.read(None)
            if frame is None:
                return
            yield frame

    def status(self) -> SourceStatus:
        """The source's state and counters right now.

        Returns:
            A :class:`SourceStatus` snapshot.
        """
        with self._cond:
            now = time.monotonic()
            self._prune_frame_times(now)
            times = self._frame_times
            fps = 0.0
            if len(times) >= 2 and times[-1] > times[0]:
                fps = (len(times) - 1) / (times[-1] - times[0])
            return SourceStatus(
                source=self.name,
                state=self._state,
                last_frame_at=self._last_frame_at,
                fps=fps,
                frames_read=self._frames_read,
                frames_dropped=self._frames_dropped,
                reconnects=self._reconnects,
                last_error=self._last_error,
            )

    def close(self) -> None:
        """Stop the capture thread and release the source. Safe to call more than once.

        A live source's thread is joined: it stops within a frame time, or within
        ``read_timeout`` if the stream has stalled.
        """
        if self._stop.is_set():
            return
        # The capture thread checks the event under _cond before any state change, so once
        # "offline" is set here it stays.
        with self._cond:
            self._stop.set()
            if self._state != "ended":
                self._state = "offline"
            self._newest.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(self._open_timeout + self._read_timeout + 1.0)
            if self._thread.is_alive():
                logger.error("%s: capture thread did not stop within its timeouts", self.name)
        with self._file_lock:
            self._release_file()
        logger.info("%s: closed", self.name)

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Files ---------------------------------------------------------------------------------

    def _open_file(self) -> None:
        """Open the file and decode its first frame, or raise a SourceError naming it."""
        path = Path(str(self._spec.target))
        if not path.exists():
            raise SourceError(f"{self.name}: file not found")
        if path.is_dir():
            raise SourceError(f"{self.name}: is a directory, not a video file")
        if not os.access(path, os.R_OK):
            raise SourceError(f"{self.name}: permission denied")
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{self.name}: not a video file OpenCV can open")
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise SourceError(f"{self.name}: the file has no decodable video frame")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if not (np.isfinite(fps) and fps > 0):
            logger.warning(
                "%s: the file declares no frame rate, assuming %s fps", self.name, FALLBACK_FPS
            )
            fps = FALLBACK_FPS
        if self._start_frame > 0:
            capture.set(cv2.CAP_PROP_POS_FRAMES, float(self._start_frame))
            ok, first = capture.read()
            if not ok or first is None:  # resumed at or past its end: nothing more to play
                capture.release()
                self._fps = fps
                with self._cond:
                    self._state = "ended"
                logger.info("%s: resumed at frame %d, its end", self.name, self._start_frame)
                return
            self._next_index = self._start_frame
        self._capture, self._pending, self._fps = capture, np.asarray(first, np.uint8), fps
        with self._cond:
            self._state = "online"
        logger.info(
            "%s: opened video file at %.2f fps%s",
            self.name,
            fps,
            f", from frame {self._start_frame}" if self._start_frame else "",
        )

    def _read_file(self, timeout: float | None) -> Frame | None:
        with self._file_lock:
            while True:
                if self._stop.is_set() or self._pending is None:
                    return None
                if self._pace:
                    now = time.monotonic()
                    if self._pace_start is None:
                        # Frame n is due n frame times after frame 0, which a resumed file
                        # played before this reader existed.
                        self._pace_start = now - self._next_index / self._fps
                    wait = self._pace_start + self._next_index / self._fps - now
                    if wait > 0:
                        if timeout is not None and wait > timeout:
                            self._stop.wait(timeout)
                            return None
                        if self._stop.wait(wait):
                            return None
                bgr, index = self._pending, self._next_index
                image = self._to_rgb(bgr, index)
                captured_at = time.time()
                ok, following = self._capture.read()
                self._pending = following if ok and following is not None else None
                self._next_index += 1
                with self._cond:
                    self._count_frame(captured_at)
                    if self._pending is None:
                        self._state = "ended"
                if self._pending is None:
                    logger.info("%s: end of file after %d frames", self.name, self._next_index)
                    self._release_file()
                if image is not None:  # else a frame that would not convert: skip it
                    return Frame(index, index / self._fps, image, captured_at)

    def _release_file(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._pending = None

    # Live sources --------------------------------------------------------------------------

    def _read_live(self, timeout: float | None) -> Frame | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._newest:
                if self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            index, t, bgr, captured_at = self._newest.popleft()
        image = self._to_rgb(bgr, index)
        if image is None:
            return self._read_live(None if deadline is None else deadline - time.monotonic())
        return Frame(index, t, image, captured_at)

    def _capture_loop(self) -> None:
        """Connect, read until the stream fails, wait (backoff), reconnect; until closed."""
        delay = self._initial_backoff
        attempted = False
        while not self._stop.is_set():
            got_frames = False
            try:
                capture = self._open_live()
                if capture is not None:
                    if attempted:
                        with self._cond:
                            self._reconnects += 1
                    try:
                        got_frames = self._pump(capture)
                    finally:
                        capture.release()
            except Exception as exc:  # one bad attempt must not kill the camera's thread
                logger.exception("%s: capture failed", self.name)
                self._set_error(f"capture failed: {exc}")
            attempted = True
            if self._stop.is_set():
                break
            if got_frames:
                delay = self._initial_backoff
            with self._cond:
                if self._stop.is_set():
                    break
                self._state = "reconnecting"
            logger.warning(
                "%s: reconnecting in %.1f s (%s)", self.name, delay, self._last_error or "lost"
            )
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self._max_backoff)
        logger.debug("%s: capture thread stopped", self.name)

    def _open_live(self) -> Any:
        """Open the camera or URL; None (with last_error set) if it cannot be opened."""
        if self._spec.kind == "camera":
            capture = cv2.VideoCapture(self._spec.target)
        else:
            capture = cv2.VideoCapture(
                self._spec.target,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    int(self._open_timeout * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    int(self._read_timeout * 1000),
                ],
            )
        if not capture.isOpened():
            capture.release()
            self._set_error("cannot open the source (unreachable, refused or not a video)")
            return None
        logger.info("%s: connected", self.name)
        return capture

    def _pump(self, capture: Any) -> bool:
        """Read frames into the newest frames kept until the stream fails or the reader closes.

        Returns:
            True if at least one frame was read.
        """
        got_frames = False
        while not self._stop.is_set():
            ok, bgr = capture.read()
            if not ok or bgr is None:
                self._set_error(
                    f"the stream ended or sent no frame for {self._read_timeout:g} s"
                    if got_frames
                    else "connected but no frame could be read"
                )
                return got_frames
            captured_at = time.time()
            now = time.monotonic()
            with self._cond:
                if self._stop.is_set():  # closed while reading: leave the state "offline"
                    break
                if len(self._newest) > LATE_FRAMES:
                    self._newest.popleft()
                    self._frames_dropped += 1
                self._newest.append((self._frames_read, now - self._started, bgr, captured_at))
                self._count_frame(captured_at)
                if self._state != "online":
                    self._state = "online"
                    logger.info("%s: online", self.name)
                self._cond.notify_all()
            got_frames = True
        return got_frames

    # Shared --------------------------------------------------------------------------------

    def _count_frame(self, captured_at: float) -> None:
        """Count a frame read (call with ``_cond`` held)."""
        now = time.monotonic()
        self._frames_read += 1
        self._last_frame_at = captured_at
        self._frame_times.append(now)
        self._prune_frame_times(now)

    def _prune_frame_times(self, now: float) -> None:
        while self._frame_times and self._frame_times[0] < now - self._fps_window:
            self._frame_times.popleft()

    def _set_error(self, message: str) -> None:
        with self._cond:
            self._last_error = message

    def _to_rgb(self, bgr: BGRFrame, index: int) -> RGBImage | None:
        """Convert a frame to RGB, or log and return None for a frame that is not BGR."""
        try:
            return image_from_bgr(bgr)
        except ImageError as exc:
            logger.warning("%s: skipping frame %d: %s", self.name, index, exc)
            return None
