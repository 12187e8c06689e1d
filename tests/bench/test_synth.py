"""The labelled video generator: the clip reads back, and its truth is where the faces are."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.lib.synth import Actor, GroundTruth, Movement, standard_scenario, write_clip
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def actors(engine: FaceEngine, load_photo: PhotoLoader) -> list[Actor]:
    cast = []
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        image = load_photo(photo)
        cast.append(Actor(person, image, engine.enrolment_face(image).box))
    return cast


def test_standard_scenario_clip_reads_back_with_its_truth(
    actors: list[Actor], engine: FaceEngine, tmp_path: Path
) -> None:
    movements, frames = standard_scenario(actors, 320, 240, fps=10)
    clip = tmp_path / "clip.mp4"
    truth = write_clip(clip, actors, movements, width=320, height=240, frames=frames, fps=10)
    assert GroundTruth.load(clip.with_suffix(".json")) == truth
    capture = cv2.VideoCapture(str(clip))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(np.ascontiguousarray(frame[:, :, ::-1], dtype=np.uint8))
    capture.release()
    assert len(decoded) == frames == len(truth.faces)
    # Every scripted appearance is a visit; the crossing makes two at once.
    assert [v["person"] for v in truth.visits] == ["obama", "obama", "biden", "biden", "obama"]
    assert max(len(f) for f in truth.faces) == 2
    # Turning away ends biden's fourth visit before his movement ends.
    assert int(truth.visits[3]["last_frame"]) < movements[3].last_frame
    # The detector finds faces where the truth puts them.
    checked = hits = 0
    for index in range(0, frames, 3):
        expected = [f for f in truth.faces[index] if f.covered == 0]
        found = engine.detect(decoded[index], min_face_px=40)
        for face in expected:
            checked += 1
            box = type(found[0].box)(*face.box) if found else None
            if box is not None and max(d.box.iou(box) for d in found) > 0.4:
                hits += 1
        if not truth.faces[index]:
            assert len(found) <= 1  # a backdrop may fool HOG once, never with several faces
    assert checked > 20
    assert hits / checked > 0.8


@pytest.mark.parametrize(
    ("kwargs", "expected_error"),
    [
        ({"first_frame": 5, "last_frame": 2}, "last_frame >= first_frame"),
        ({"face_px": 4}, "face_px must be >= 8"),
        ({"turn_away": 1.0}, r"turn_away must be in \[0, 1\)"),
        ({"covered": -0.1}, r"covered must be in \[0, 1\)"),
    ],
)
def test_bad_movements(kwargs: dict[str, float], expected_error: str) -> None:
    base: dict[str, object] = {
        "actor": 0,
        "first_frame": 0,
        "last_frame": 10,
        "start": (0.0, 0.0),
        "end": (10.0, 10.0),
        "face_px": 40,
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=expected_error):
        Movement(**base)  # type: ignore[arg-type]
