"""Routes for customers. OWNER: helper B (placeholder; replace)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/customers", tags=["customers"])
