"""Routes for sightings. OWNER: helper C (placeholder; replace)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/sightings", tags=["sightings"])
