"""``oneeye watch --annotate`` writes a video browsers play (H.264 MP4, VP9 or VP8 WebM),
probed against what the installed OpenCV can write; its progress line on files."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from oneeye.cli.watch import WatchProgress, show_progress
from oneeye.video.annotate import (
    BROWSER_CODECS,
    VideoWriteError,
    check_browser_video,
    open_browser_video,
    writable_codec,
)

MAGIC = {".webm": (0, b"\x1a\x45\xdf\xa3"), ".mp4": (4, b"ftyp")}
"""Where each container's signature is: WebM's EBML header, MP4's ``ftyp`` box."""
DECODED_AS = {"VP9": {"VP90", "vp09"}, "VP8": {"VP80", "vp08"}, "H.264": {"avc1", "h264", "H264"}}


def fourcc_of(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))


def test_this_opencv_writes_at_least_one_browser_codec() -> None:
    found = {suffix: writable_codec(suffix) for suffix in BROWSER_CODECS}
    assert any(found.values()), f"no browser codec can be written: {found}"


@pytest.mark.parametrize("suffix", sorted(BROWSER_CODECS))
def test_annotated_videos_are_in_a_codec_browsers_play(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"annotated{suffix}"
    codec = writable_codec(suffix)
    if codec is None:
        with pytest.raises(VideoWriteError, match=f"cannot write .* to \\{suffix}"):
            check_browser_video(path)
        with pytest.raises(VideoWriteError, match="cannot write"):
            open_browser_video(path, 160, 120, 10.0)
        return
    assert check_browser_video(path) == codec
    writer, name = open_browser_video(path, 160, 120, 10.0)
    assert name == codec
    for i in range(12):
        writer.write(np.full((120, 160, 3), 20 * i % 255, dtype=np.uint8))
    writer.release()
    offset, magic = MAGIC[suffix]
    assert path.read_bytes()[offset : offset + len(magic)] == magic
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert fourcc_of(capture) in DECODED_AS[codec]
    capture.release()
    assert frames == 12


@pytest.mark.parametrize("name", ["out.avi", "out.mkv", "out"])
def test_other_containers_are_refused_before_any_work(tmp_path: Path, name: str) -> None:
    with pytest.raises(VideoWriteError, match=r"\.webm or \.mp4"):
        check_browser_video(tmp_path / name)


@pytest.mark.parametrize(
    ("asked", "live", "jsonl", "stdout_tty", "stderr_tty", "shown"),
    [
        (None, False, False, True, True, True),  # a file, on a terminal
        (None, False, True, True, True, False),  # JSON lines on that terminal: no
        (None, False, True, False, True, True),  # JSON lines to a file or pipe: yes
        (None, False, False, True, False, False),  # stderr is not a terminal
        (None, True, False, True, True, False),  # a live source has no end
        (True, False, True, True, True, True),  # asked for
        (True, True, False, True, True, False),  # ...but never for a live source
        (False, False, False, True, True, False),  # asked not to
    ],
)
def test_when_progress_is_shown(
    asked: bool | None, live: bool, jsonl: bool, stdout_tty: bool, stderr_tty: bool, shown: bool
) -> None:
    assert (
        show_progress(
            asked, live=live, jsonl=jsonl, stdout_terminal=stdout_tty, stderr_terminal=stderr_tty
        )
        is shown
    )


def test_the_progress_line_shows_frames_fps_and_sightings() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with WatchProgress(console, 40) as meter:
        for i in range(30):
            meter.frame()
            if i in (3, 17):
                meter.event("sighting")
            meter.event("left")
    text = out.getvalue()
    assert "30/40" in text
    assert "2 sightings" in text
    assert " fps " in text


def test_a_disabled_progress_line_writes_nothing() -> None:
    out = io.StringIO()
    with WatchProgress(Console(file=out, force_terminal=True), 40, enabled=False) as meter:
        meter.frame()
    assert out.getvalue() == ""
