"""Detection scale planning, shared by every detector."""

from __future__ import annotations

import pytest

from oneeye.vision.detectors.base import ScalePlan, plan_scale


@pytest.mark.parametrize(
    ("min_face_px", "window_px", "expected"),
    [
        (80, 80, ScalePlan(1.0, 0)),
        (160, 80, ScalePlan(0.5, 0)),
        (40, 80, ScalePlan(1.0, 1)),
        (39, 80, ScalePlan(1.0, 2)),
        (20, 80, ScalePlan(1.0, 2)),
        (5, 80, ScalePlan(1.0, 3)),
        (40, 40, ScalePlan(1.0, 0)),
    ],
)
def test_plan_scale(min_face_px: int, window_px: int, expected: ScalePlan) -> None:
    assert plan_scale(min_face_px, window_px) == expected


def test_plan_scale_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="min_face_px must be positive, got 0"):
        plan_scale(0, 80)
