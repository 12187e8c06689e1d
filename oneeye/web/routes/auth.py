"""Routes for auth. OWNER: helper A (placeholder; replace)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/auth", tags=["auth"])
