"""``oneeye compat face_recognition`` and ``oneeye compat face_detection``: face_recognition's
two tools with its options and its output lines, run as the ``oneeye`` command runs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from oneeye.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def known_people(face_photos: Path, tmp_path: Path) -> Path:
    """A folder of known people, one photo each, named after them."""
    folder = tmp_path / "known"
    folder.mkdir()
    shutil.copy(face_photos / "obama.jpg", folder / "obama.jpg")
    shutil.copy(face_photos / "biden.jpg", folder / "biden.jpg")
    (folder / "notes.txt").write_text("not a picture: skipped by name")
    return folder


def test_face_recognition_names_people_and_unknowns(
    known_people: Path, face_photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    shutil.copy(face_photos / "obama2.jpg", unknown / "a.jpg")
    shutil.copy(face_photos / "obama_partial_face.jpg", unknown / "b.jpg")
    Path(unknown / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    code = main(["compat", "face_recognition", str(known_people), str(unknown)])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == f"{unknown / 'a.jpg'},obama"
    assert len(captured.out.splitlines()) == 2
    assert captured.out.splitlines()[1].startswith(f"{unknown / 'b.jpg'},")
    assert f"WARNING: cannot read {unknown / 'c.png'}" in captured.err
    assert code == 1


def test_face_recognition_shows_distances_and_no_persons_found(
    known_people: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "sky.png"
    Image.new("RGB", (200, 200), (120, 170, 240)).save(empty)
    code = main(
        ["compat", "face_recognition", str(known_people), str(empty), "--show-distance", "true"]
    )
    assert capsys.readouterr().out == f"{empty},no_persons_found,None\n"
    assert code == 0
    code = main(
        [
            "compat",
            "face_recognition",
            str(known_people),
            str(known_people / "obama.jpg"),
            "--show-distance",
            "true",
        ]
    )
    name, who, distance = capsys.readouterr().out.strip().split(",")
    # The same photo, not shrunk (it is under 1600 pixels): the same encoding.
    assert (name, who, float(distance)) == (str(known_people / "obama.jpg"), "obama", 0.0)
    assert code == 0


def test_face_detection_prints_boxes_in_parallel_too(
    face_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compat", "face_detection", str(face_photos / "obama.jpg")]) == 0
    assert capsys.readouterr().out == f"{face_photos / 'obama.jpg'},136,624,394,366\n"
    assert main(["compat", "face_detection", str(face_photos), "--cpus", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == sorted(lines)
    assert f"{face_photos / 'obama.jpg'},136,624,394,366" in lines
    assert {Path(line.split(",")[0]).name for line in lines} >= {"obama.jpg", "biden.jpg"}


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["compat", "face_detection", "x.jpg", "--model", "mmod"], "'mmod' is not one of"),
        (["compat", "face_detection", "x.jpg", "--cpus", "0"], "must be -1 or at least 1"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert error in capsys.readouterr().err
