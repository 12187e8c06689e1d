"""Fixtures for the benchmark tests: a tiny LFW-shaped folder made of the test photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps


@pytest.fixture(scope="session")
def tiny_lfw(face_photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``images/``-style folder, one sub-folder per person, in LFW's naming: two people with
    two photos (enrolled in the video benchmarks) and the two single-photo people
    ``bench/video_cameras.py`` walks through its clip. The names are LFW's; the faces are
    face_recognition's test photos (a smoke run checks the script works, not who is who)."""
    root = tmp_path_factory.mktemp("lfw") / "images"
    photos: dict[str, list[str | None]] = {
        "Barack_Obama": ["obama.jpg", "obama2.jpg"],
        "Joe_Biden": ["biden.jpg", None],  # None: the first photo mirrored
        "Colin_Powell": ["obama3.jpg"],
        "Tony_Blair": ["biden.jpg"],
    }
    for person, names in photos.items():
        (root / person).mkdir(parents=True)
        for number, name in enumerate(names, start=1):
            target = root / person / f"{person}_{number:04d}.jpg"
            if name is None:
                ImageOps.mirror(Image.open(face_photos / str(names[0]))).save(target)
            else:
                shutil.copy(face_photos / name, target)
    return root
