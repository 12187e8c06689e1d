"""face_recognition 1.3.0's own test suite, from its source distribution on PyPI (fetched once
and cached, as the test photos are), with its import lines pointed at ``oneeye.compat``."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.conftest import FACE_RECOGNITION_SDIST, FACE_RECOGNITION_SHA256, cache_dir

SUITE = "tests/test_face_recognition.py"
"""The suite's path inside the source distribution (after its top folder)."""

IMPORTS = {
    "from face_recognition import api\n": "from oneeye.compat import api\n",
    "from face_recognition import face_recognition_cli\n": (
        "from oneeye.compat import face_recognition_cli\n"
    ),
    "from face_recognition import face_detection_cli\n": (
        "from oneeye.compat import face_detection_cli\n"
    ),
}
"""The only lines changed: face_recognition's three imports, each once."""


def rewritten(source: str) -> str:
    """The suite with its three import lines pointed at ``oneeye.compat``, nothing else changed.

    Raises:
        AssertionError: an import line is missing, or another line names face_recognition's
            package (the rewrite would not be the whole change).
    """
    for old, new in IMPORTS.items():
        assert source.count(old) == 1, f"expected the line {old!r} once in the suite"
        source = source.replace(old, new)
    leftover = [line for line in source.splitlines() if "import" in line and "face_recogn" in line]
    assert leftover == ["from oneeye.compat import face_recognition_cli"], (
        f"other imports of face_recognition remain: {leftover}"
    )
    return source


def _download_sdist(folder: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--no-binary", ":all:", "face_recognition==1.3.0", "--dest", str(folder),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sdist = folder / FACE_RECOGNITION_SDIST
    if done.returncode != 0 or not sdist.exists():
        raise RuntimeError(
            "could not download the face_recognition 1.3.0 sdist from PyPI for its test suite "
            f"(pip said: {done.stderr.strip()[-500:]})"
        )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != FACE_RECOGNITION_SHA256:
        raise RuntimeError(f"{sdist.name} has sha256 {digest}, expected {FACE_RECOGNITION_SHA256}")
    return sdist


def _fetch_suite(target: Path) -> None:
    """Unpack the suite and its photos into ``target`` (``test_face_recognition.py`` beside
    ``test_images/``, where the suite looks for them), the suite rewritten."""
    with tempfile.TemporaryDirectory() as tmp:
        sdist = _download_sdist(Path(tmp))
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                inside = member.name.partition("/")[2]
                if member.isfile() and (inside == SUITE or "/test_images/" in member.name):
                    member.name = inside.removeprefix("tests/")
                    archive.extract(member, staging, filter="data")
        original = staging / "test_face_recognition.py"
        (staging / "original_test_face_recognition.py").write_text(original.read_text())
        original.write_text(rewritten(original.read_text()))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


@pytest.fixture(scope="session")
def face_recognition_suite() -> Path:
    """face_recognition 1.3.0's ``tests/test_face_recognition.py``, its imports rewritten, in a
    cached folder beside its ``test_images/``."""
    target = cache_dir() / "face_recognition-1.3.0-suite"
    if not (target / "test_face_recognition.py").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _fetch_suite(target)
    return target / "test_face_recognition.py"
