"""Routes for people. OWNER: helper B (placeholder; replace)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/people", tags=["people"])
