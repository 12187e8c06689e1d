"""Fixtures for the benchmark tests: a tiny LFW-shaped folder made of the test photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

MIRRORED = "~"
"""A photo name starting with this is the photo mirrored (another file, the same face)."""

PEOPLE = {
    # The names are LFW's, the faces face_recognition's test photos: a smoke run checks that a
    # script works, not who is who. LFW's open-set protocol splits people into halves by
    # their name's CRC32; each half gets two people with two photos and two with one.
    "Barack_Obama": ["obama.jpg", "obama2.jpg"],  # even half
    "Gerhard_Schroeder": ["obama3.jpg", "~obama3.jpg"],
    "Colin_Powell": ["obama3.jpg"],  # bench/video_cameras.py walks these two
    "Hugo_Chavez": ["~biden.jpg"],
    "Joe_Biden": ["biden.jpg", "~biden.jpg"],  # odd half
    "George_W_Bush": ["~obama.jpg", "~obama2.jpg"],
    "Tony_Blair": ["biden.jpg"],
    "Donald_Rumsfeld": ["obama2.jpg"],
}
SAME = [("Barack_Obama", 1, 2), ("Joe_Biden", 1, 2)]
DIFFERENT = [("Barack_Obama", 1, "Joe_Biden", 1), ("George_W_Bush", 1, "Gerhard_Schroeder", 2)]


@pytest.fixture(scope="session")
def tiny_lfw(face_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An LFW-shaped folder: ``images/<Person>/<Person>_0001.jpg`` and a ``pairs.txt`` of 10
    folds with one same-person and one different-person pair each."""
    root = tmp_path_factory.mktemp("lfw")
    for person, names in PEOPLE.items():
        (root / "images" / person).mkdir(parents=True)
        for number, name in enumerate(names, start=1):
            target = root / "images" / person / f"{person}_{number:04d}.jpg"
            if name.startswith(MIRRORED):
                photo = Image.open(face_photos / name.removeprefix(MIRRORED))
                ImageOps.mirror(photo.convert("RGB")).save(target)
            else:
                shutil.copy(face_photos / name, target)
    lines = ["10 1"]
    for fold in range(10):
        lines.append("{} {} {}".format(*SAME[fold % 2]))
        lines.append("{} {} {} {}".format(*DIFFERENT[fold % 2]))
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root
