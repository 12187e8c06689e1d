"""A case's activity lines: filed, approved, resolved, and its retro-search done (how many
faces, matches, how long); the person appears by id, never by the case's name."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.vision.engine import FaceEngine
from tests.services.test_alerts import REPORTER, Rig, photo


@pytest.fixture
def rig(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Rig]:
    made = Rig(f"sqlite:///{tmp_path / 'oneeye.db'}", tmp_path, face_engine)
    try:
        yield made
    finally:
        made.close()


def test_a_case_s_life_is_in_the_log_by_id(
    rig: Rig, face_photos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oneeye.services.alerts")
    case = rig.alerts.create_case(
        "Barack Obama",
        "Last seen in a grey suit",
        "+15551234567",
        [photo(face_photos, "obama2.jpg")],
        actor=REPORTER,
    )
    rig.alerts.approve(case.id, actor="user:coordinator")
    rig.alerts.resolve(case.id, actor="user:officer")
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith(f"case {case.id} filed by {REPORTER}") for line in lines), lines
    assert any(line.startswith(f"case {case.id} approved by user:coordinator") for line in lines)
    assert any(line.startswith(f"case {case.id} resolved by user:officer") for line in lines)
    assert any(
        line.startswith(f"case {case.id}: retro-search done: ") and " matches, " in line
        for line in lines
    ), lines
    text = "\n".join(lines)
    assert "Obama" not in text
    assert "+15551234567" not in text
    assert "grey suit" not in text
