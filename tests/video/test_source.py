"""FrameReader on real files written here and a real MJPEG server on 127.0.0.1."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from oneeye.errors import SourceError
from oneeye.types import RGBImage
from oneeye.video.source import LATE_FRAMES, Frame, FrameReader, SourceStatus, mask_credentials

WIDTH, HEIGHT = 64, 48
FILE_FRAMES = 30
FILE_FPS = 30.0
BASE = 16  # a frame number is two base-16 digits, each a grey level 16 apart
STEP = 256 // BASE  # far enough apart to survive lossy compression


def encode_number(number: int) -> npt.NDArray[np.uint8]:
    """A BGR frame carrying ``number`` mod 256: high digit on the left, low on the right.

    Blue and red differ, so a frame that was not converted to RGB decodes wrongly.
    """
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    high, low = divmod(number % (BASE * BASE), BASE)
    for half, digit in ((slice(0, WIDTH // 2), high), (slice(WIDTH // 2, WIDTH), low)):
        frame[:, half, 0] = digit * STEP  # blue
        frame[:, half, 1] = 128
        frame[:, half, 2] = 255 - digit * STEP  # red
    return frame


def decode_number(image: RGBImage) -> int:
    """The number :func:`encode_number` put in a frame, read from an RGB image."""
    digits = []
    for x in (WIDTH // 4, 3 * WIDTH // 4):
        patch = image[HEIGHT // 2 - 4 : HEIGHT // 2 + 4, x - 4 : x + 4].astype(float)
        blue, red = patch[..., 2].mean(), patch[..., 0].mean()
        assert abs(blue + red - 255) < 12, f"not an RGB frame from encode_number: {blue}, {red}"
        digits.append(round(float(blue + 255 - red) / 2 / STEP))
    return digits[0] * BASE + digits[1]


@pytest.fixture(params=[("mp4", "mp4v"), ("avi", "MJPG")], ids=["mp4", "avi"])
def video_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    suffix, fourcc = request.param
    path = tmp_path / f"clip.{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), FILE_FPS, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for number in range(FILE_FRAMES):
        writer.write(encode_number(number))
    writer.release()
    return path


# Files -------------------------------------------------------------------------------------


def test_file_gives_every_frame_in_order(video_file: Path) -> None:
    before = time.time()
    with FrameReader(video_file) as reader:
        assert not reader.is_live
        assert reader.fps == pytest.approx(FILE_FPS)
        frames = list(reader)
        status = reader.status()
    assert [f.index for f in frames] == list(range(FILE_FRAMES))
    assert [decode_number(f.image) for f in frames] == list(range(FILE_FRAMES))
    assert [f.t for f in frames] == pytest.approx([i / FILE_FPS for i in range(FILE_FRAMES)])
    assert all(f.image.shape == (HEIGHT, WIDTH, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(before <= f.captured_at <= time.time() for f in frames)
    assert status.state == "ended"
    assert status.frames_read == FILE_FRAMES
    assert status.frames_dropped == 0


def test_file_read_returns_none_at_the_end(video_file: Path) -> None:
    reader = FrameReader(video_file)
    try:
        frames = [reader.read() for _ in range(FILE_FRAMES)]
        assert all(isinstance(f, Frame) for f in frames)
        assert reader.read() is None
        assert reader.read(0.1) is None
        assert reader.status().state == "ended"
    finally:
        reader.close()
    assert reader.status().state == "ended"


def test_paced_file_plays_at_its_native_fps(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 20.0, (WIDTH, HEIGHT))
    for number in range(10):
        writer.write(encode_number(number))
    writer.release()
    with FrameReader(path, pace=True) as reader:
        start = time.monotonic()
        first = reader.read()
        assert first is not None
        assert reader.read(timeout=0.0) is None  # the next frame is not due yet
        numbers = [first.index] + [f.index for f in reader]
        elapsed = time.monotonic() - start
    assert numbers == list(range(10))
    # Never faster than the file's 20 fps (how much slower depends on the machine's load: not
    # a test's business; bench/video_cameras.py measures keeping up).
    assert elapsed >= 9 / 20.0 - 0.02


def test_close_ends_iteration_of_a_file(video_file: Path) -> None:
    reader = FrameReader(video_file)
    assert reader.read() is not None
    reader.close()
    assert reader.read() is None
    assert list(reader) == []
    assert reader.status().state == "offline"


def _not_a_video(tmp_path: Path) -> str:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    return str(path)


def _empty(tmp_path: Path) -> str:
    path = tmp_path / "empty.avi"
    path.write_bytes(b"")
    return str(path)


@pytest.mark.parametrize(
    ("make_source", "expected_error"),
    [
        (lambda tmp: str(tmp / "missing.mp4"), r"missing\.mp4: file not found"),
        (str, r": is a directory, not a video file"),
        (_not_a_video, r"notes\.mp4: not a video file OpenCV can open"),
        (_empty, r"empty\.avi: not a video file OpenCV can open"),
        (lambda tmp: "ftp://cam.local/stream", r"ftp://cam\.local/stream: unsupported URL scheme"),
        (lambda tmp: "rtsp://", r"rtsp://: the URL has no host"),
        (lambda tmp: "", r"empty source"),
        (lambda tmp: -1, r"camera index must be 0 or more, got -1"),
    ],
    ids=["missing", "directory", "not-a-video", "empty", "scheme", "no-host", "blank", "index"],
)
def test_bad_source_is_a_clear_error(
    tmp_path: Path, make_source: Callable[[Path], str | int], expected_error: str
) -> None:
    threads_before = set(threading.enumerate())
    with pytest.raises(SourceError, match=expected_error):
        FrameReader(make_source(tmp_path))
    assert set(threading.enumerate()) <= threads_before


def test_errors_and_names_hide_credentials() -> None:
    with pytest.raises(SourceError) as info:
        FrameReader("ftp://bob:hunter2@cam.local/live")
    assert "hunter2" not in str(info.value)
    assert "bob" not in str(info.value)
    assert "ftp://***@cam.local/live" in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/h264", "rtsp://***@10.0.0.5:554/h264"),
        ("rtsp://admin@10.0.0.5/h264", "rtsp://***@10.0.0.5/h264"),
        (
            "http://cam/video?user=a&password=b&fps=5",
            "http://cam/video?user=***&password=***&fps=5",
        ),
        ("http://cam/mjpg?token=xyz", "http://cam/mjpg?token=***"),
        ("rtsp://10.0.0.5/h264", "rtsp://10.0.0.5/h264"),
        ("videos/door.mp4", "videos/door.mp4"),
    ],
)
def test_mask_credentials(url: str, expected: str) -> None:
    assert mask_credentials(url) == expected


def test_bool_is_not_a_camera_index() -> None:
    with pytest.raises(TypeError, match="got a bool"):
        FrameReader(True)


# Live sources ------------------------------------------------------------------------------


class MjpegServer:
    """A camera's MJPEG endpoint on 127.0.0.1: numbered frames at ``fps`` until stopped.

    ``stall`` makes it keep connections open without sending; :meth:`stop` closes them and
    the port; :meth:`start` listens again (on the same port after the first start).
    """

    def __init__(self, fps: float = 50.0) -> None:
        self.fps = fps
        self.port = 0
        self.sent = 0
        self.stall = threading.Event()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not owner._stopping.wait(1.0 / owner.fps):
                        if owner.stall.is_set():
                            continue
                        ok, jpeg = cv2.imencode(".jpg", encode_number(owner.sent))
                        assert ok
                        data = jpeg.tobytes()
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(data)}\r\n\r\n".encode()
                            + data
                            + b"\r\n"
                        )
                        owner.sent += 1
                except OSError:  # the reader went away
                    return

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


@pytest.fixture
def camera() -> Iterator[MjpegServer]:
    server = MjpegServer()
    server.start()
    yield server
    server.stop()


def wait_for(
    reader: FrameReader, check: Callable[[SourceStatus], bool], timeout: float = 5.0
) -> SourceStatus:
    """Poll the reader's status until ``check`` holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    status = reader.status()
    while not check(status):
        assert time.monotonic() < deadline, f"gave up waiting, status: {status}"
        time.sleep(0.02)
        status = reader.status()
    return status


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FrameReader(")]


def test_a_live_source_keeps_its_newest_frames_for_a_slow_consumer(camera: MjpegServer) -> None:
    # A consumer that falls a few frames behind catches up on the kept frames, in order; a
    # slower one loses the oldest, never more than LATE_FRAMES + 1 waiting.
    with FrameReader(camera.url, read_timeout=2.0) as reader:
        first = reader.read(timeout=5.0)
        assert first is not None
        time.sleep(1.0)  # 50 frames arrive meanwhile
        kept = [reader.read(timeout=0.0) for _ in range(LATE_FRAMES + 1)]
        status = reader.status()
    assert all(frame is not None for frame in kept)
    numbers = [decode_number(f.image) for f in kept if f is not None]
    assert numbers == list(range(numbers[0], numbers[0] + LATE_FRAMES + 1)), "consecutive"
    assert numbers[0] > decode_number(first.image) + 40, "the oldest were dropped"
    assert status.frames_dropped >= 40


def test_a_live_source_skips_frames_for_a_much_slower_consumer(camera: MjpegServer) -> None:
    with FrameReader(camera.url, read_timeout=2.0) as reader:
        assert reader.is_live
        frames: list[Frame] = []
        for _ in range(5):
            frame = reader.read(timeout=5.0)
            assert frame is not None
            frames.append(frame)
            time.sleep(0.15)  # a slow consumer: several frames arrive meanwhile
        status = reader.status()
    indexes = [f.index for f in frames]
    numbers = [decode_number(f.image) for f in frames]
    assert indexes == sorted(set(indexes))
    assert numbers == sorted(set(numbers))
    assert any(b - a > 1 for a, b in itertools.pairwise(indexes))
    assert all(b - a > 1 for a, b in itertools.pairwise(numbers[1:]))
    assert [f.t for f in frames] == sorted(f.t for f in frames)
    assert status.state == "online"
    assert status.frames_dropped > 0
    assert status.frames_read >= max(indexes) + 1
    assert status.frames_read >= len(frames) + status.frames_dropped
    assert status.fps > 10
    assert status.last_frame_at is not None
    assert status.reconnects == 0
    assert reader.status().state == "offline"
    assert reader_threads() == []


def test_live_read_never_repeats_a_frame_and_times_out(camera: MjpegServer) -> None:
    with FrameReader(camera.url, read_timeout=0.5) as reader:
        assert reader.read(timeout=5.0) is not None
        camera.stall.set()
        time.sleep(0.1)
        while reader.read(timeout=0.0) is not None:  # take whatever arrived before the stall
            pass
        start = time.monotonic()
        assert reader.read(timeout=0.2) is None
        # It waited (at least its timeout) and came back (not a hang: how soon after the
        # timeout depends on the machine's load).
        assert 0.15 <= time.monotonic() - start < 10.0


def test_live_source_reconnects_when_the_camera_comes_back(camera: MjpegServer) -> None:
    with FrameReader(
        camera.url, initial_backoff=0.1, max_backoff=0.4, read_timeout=1.0, fps_window=0.5
    ) as reader:
        wait_for(reader, lambda s: s.state == "online")
        camera.stop()
        lost = wait_for(reader, lambda s: s.state == "reconnecting")
        assert lost.last_error
        time.sleep(0.6)  # a few refused attempts, with backoff
        assert reader.status().state == "reconnecting"
        assert reader.status().fps == 0.0
        camera.start()  # same port
        restarted = time.time()
        back = wait_for(reader, lambda s: s.state == "online" and s.reconnects >= 1)
        frame = reader.read(timeout=5.0)
        assert frame is not None
        assert frame.captured_at >= restarted
        assert back.frames_read > lost.frames_read
    assert reader.status().state == "offline"
    assert reader_threads() == []


def test_stalled_stream_counts_as_lost(camera: MjpegServer) -> None:
    with FrameReader(camera.url, initial_backoff=0.1, max_backoff=0.2, read_timeout=0.5) as r:
        wait_for(r, lambda s: s.state == "online")
        camera.stall.set()
        status = wait_for(r, lambda s: s.state == "reconnecting")
        assert "no frame for 0.5 s" in (status.last_error or "")
        camera.stall.clear()
        wait_for(r, lambda s: s.state == "online" and s.reconnects >= 1)


def test_unreachable_source_keeps_retrying_and_closes_promptly() -> None:
    server = MjpegServer()
    server.start()
    url = server.url
    server.stop()  # nothing listens on this port now
    reader = FrameReader(url, initial_backoff=0.05, max_backoff=0.2)
    try:
        status = wait_for(reader, lambda s: s.state == "reconnecting")
        assert status.last_error is not None
        assert status.frames_read == 0
        assert reader.read(timeout=0.2) is None
    finally:
        start = time.monotonic()
        reader.close()
        assert time.monotonic() - start < 1.0
    assert reader.status().state == "offline"
    assert reader_threads() == []


def test_close_wakes_a_blocked_reader_and_stops_a_stalled_capture(camera: MjpegServer) -> None:
    # With the stream stalled, the capture thread sits in OpenCV's blocking read: close() can
    # only wait for the read timeout, so it is bounded by it.
    reader = FrameReader(camera.url, open_timeout=1.0, read_timeout=1.0)
    wait_for(reader, lambda s: s.state == "online")
    camera.stall.set()
    results: list[Frame | None] = []
    # It takes the frames kept before the stall, then blocks on the next one.
    consumer = threading.Thread(
        target=lambda: results.extend(reader.read(None) for _ in range(LATE_FRAMES + 2))
    )
    consumer.start()
    time.sleep(0.2)
    start = time.monotonic()
    reader.close()
    assert time.monotonic() - start < 2.0
    consumer.join(5)
    assert not consumer.is_alive()
    assert results[-1] is None
    assert reader_threads() == []


def test_missing_camera_index_is_retried_not_raised() -> None:
    with FrameReader("99", initial_backoff=0.05, max_backoff=0.1) as reader:
        assert reader.name == "camera 99"
        status = wait_for(reader, lambda s: s.state == "reconnecting")
        assert status.last_error is not None
        assert status.source == "camera 99"
    assert reader_threads() == []


def test_bad_timing_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="initial_backoff must be positive, got 0"):
        FrameReader("0", initial_backoff=0)
    with pytest.raises(ValueError, match="max_backoff must be >= initial_backoff"):
        FrameReader("0", initial_backoff=2, max_backoff=1)
