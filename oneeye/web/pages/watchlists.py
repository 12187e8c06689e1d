"""The admin's watchlist pages: ``/admin/watchlists`` (every watchlist, its mode and the
threshold in use) and ``/admin/watchlists/{name}`` (one watchlist; in automatic mode, the
curve of expected FPIR against threshold with the chosen point). Changes go through the JSON
API (``PATCH /api/v1/watchlists/{name}``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oneeye.gallery.calibration import Calibration
from oneeye.web.deps import AdminPage, ServicesDep
from oneeye.web.pages.render import render

router = APIRouter(include_in_schema=False)

WIDTH, HEIGHT, PAD = 640, 320, 48
"""The curve's drawing box (SVG user units) and its margin for the axes' labels."""
FPIR_FLOOR, FPIR_TOP = 1e-4, 1.0
"""The curve's log scale: expected FPIR from 0.01% to 100%."""


@dataclass(frozen=True, slots=True)
class CurveDrawing:
    """A calibration as SVG coordinates (drawn by the template; no script, no inline style)."""

    points: str
    """The polyline's ``x,y`` pairs."""
    chosen_x: float
    chosen_y: float
    target_y: float
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]


def _x(threshold: float, low: float, high: float) -> float:
    return PAD + (threshold - low) / (high - low) * (WIDTH - 2 * PAD)


def _y(fpir: float) -> float:
    share = (math.log10(max(fpir, FPIR_FLOOR)) - math.log10(FPIR_FLOOR)) / (
        math.log10(FPIR_TOP) - math.log10(FPIR_FLOOR)
    )
    return HEIGHT - PAD - share * (HEIGHT - 2 * PAD)


def curve_drawing(calibration: Calibration) -> CurveDrawing | None:
    """The curve of ``calibration`` in the page's coordinates; ``None`` without a curve.

    Args:
        calibration: a watchlist's calibration.

    Returns:
        The drawing, or ``None`` for a fallback (too few people: no curve).
    """
    if not calibration.thresholds:
        return None
    low, high = calibration.thresholds[0], calibration.thresholds[-1]
    points = " ".join(
        f"{_x(t, low, high):.1f},{_y(f):.1f}"
        for t, f in zip(calibration.thresholds, calibration.expected_fpir, strict=True)
    )
    chosen = calibration.expected_at_threshold or FPIR_FLOOR
    ticks = [round(low + 0.05 * i, 2) for i in range(int((high - low) / 0.05 + 1e-9) + 1)]
    return CurveDrawing(
        points=points,
        chosen_x=_x(calibration.threshold, low, high),
        chosen_y=_y(chosen),
        target_y=_y(calibration.target_fpir),
        x_ticks=[(_x(t, low, high), f"{t:.2f}") for t in ticks],
        y_ticks=[(_y(v), f"{v:.2%}".replace(".00%", "%")) for v in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)],
    )


@router.get("/admin/watchlists", response_class=HTMLResponse)
def watchlists_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """Every watchlist: action, people, threshold mode and the threshold the gallery uses."""
    return render(
        request,
        "admin_watchlists.html",
        principal,
        {"watchlists": services.gallery_service.watchlists()},
    )


@router.get("/admin/watchlists/{name}", response_class=HTMLResponse)
def watchlist_page(
    request: Request, name: str, services: ServicesDep, principal: AdminPage
) -> Response:
    """One watchlist; in automatic mode, how its threshold was found and the curve."""
    info = services.gallery_service.watchlist(name)
    drawing = curve_drawing(info.calibration) if info.calibration is not None else None
    return render(
        request,
        "admin_watchlist.html",
        principal,
        {
            "w": info,
            "c": info.calibration,
            "drawing": drawing,
            "box": {"width": WIDTH, "height": HEIGHT, "pad": PAD},
        },
    )
