"""Routes for watchlists. OWNER: helper B (placeholder; replace)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/watchlists", tags=["watchlists"])
