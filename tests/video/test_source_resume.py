"""``FrameReader(start_frame=n)``: a file camera resumes at frame n, paced from there (not
after waiting n frame times), and a start at or past the end is an ended file."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from oneeye.video.source import FrameReader

FRAMES, FPS = 30, 2.0


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "count.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (64, 48))
    for i in range(FRAMES):
        writer.write(np.full((48, 64, 3), i * 8, dtype=np.uint8))
    writer.release()
    return path


def test_a_file_resumes_at_its_start_frame(clip: Path) -> None:
    with FrameReader(str(clip), start_frame=20) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(20, FRAMES))
    assert frames[0].t == pytest.approx(20 / FPS)
    # The pixels are frame 20's (grey level 160), not frame 0's.
    assert abs(int(frames[0].image.mean()) - 160) <= 4


def test_a_paced_resume_does_not_wait_for_the_frames_before_it(clip: Path) -> None:
    started = time.monotonic()
    with FrameReader(str(clip), pace=True, start_frame=25) as reader:
        first = reader.read(timeout=5.0)
    assert first is not None
    assert first.index == 25
    assert time.monotonic() - started < 5.0  # waiting for 25 frames at 2 fps: 12.5 s


@pytest.mark.parametrize("start", [FRAMES, FRAMES + 100])
def test_a_resume_at_or_past_the_end_is_an_ended_file(clip: Path, start: int) -> None:
    with FrameReader(str(clip), start_frame=start) as reader:
        assert reader.read(timeout=0.5) is None
        assert reader.status().state == "ended"


def test_a_negative_start_frame_is_a_caller_bug(clip: Path) -> None:
    with pytest.raises(ValueError, match="start_frame"):
        FrameReader(str(clip), start_frame=-1)
