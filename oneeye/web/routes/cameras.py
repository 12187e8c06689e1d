"""Routes for cameras. OWNER: helper C (placeholder; replace)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/cameras", tags=["cameras"])
