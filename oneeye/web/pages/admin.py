"""The admin section's own pages: ``/admin`` (which starts at the customers), the users and
API keys, the audit log, and the rejected matches by pair (``/admin/feedback``). The
customers and cameras pages live with their areas."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from oneeye.services.auth import KEY_ROLES, ROLES
from oneeye.web.deps import AdminPage, ServicesDep, audit_access
from oneeye.web.pages.render import iso_time, render
from oneeye.web.routes.users import ApiKeyPublic, AuditEntryPublic, AuditFilter, UserPublic

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
"""Audit entries per page of ``/admin/audit``."""
AUDIT_FILTERS = ("actor", "action", "target", "since", "until")
FEEDBACK_PAIRS = 200
"""Pairs of people listed on ``/admin/feedback``, most rejections first."""
"""The filters ``/admin/audit`` offers (and keeps in its paging links)."""


@router.get("/admin", response_class=HTMLResponse)
def admin_page(principal: AdminPage) -> Response:
    """The admin section starts at the customers."""
    return RedirectResponse("/admin/customers", status.HTTP_303_SEE_OTHER)


@router.get("/admin/users", response_class=HTMLResponse)
def admin_users_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """Users and API keys: add, change role, deactivate, reset a password (the one-time
    password is shown once); keys (``edge`` ones too) are shown once."""
    return render(
        request,
        "admin_users.html",
        principal,
        {
            "users": [UserPublic.model_validate(u) for u in services.auth.users()],
            "api_keys": [ApiKeyPublic.model_validate(k) for k in services.auth.api_keys()],
            "roles": ROLES,
            "key_roles": KEY_ROLES,
        },
    )


def audit_detail(detail: dict[str, Any], limit: int = 300) -> str:
    """An entry's detail as compact JSON, cut at ``limit`` characters for the table."""
    text = json.dumps(detail, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@router.get("/admin/audit", response_class=HTMLResponse)
def admin_audit_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """The audit log: who saw or changed what, when and from where, newest first, filtered
    by actor, action, target and time, a page at a time."""
    # A blank form field means "any": only the filled-in ones are parsed and applied.
    sent = {k: v.strip() for k, v in request.query_params.items() if k in AUDIT_FILTERS}
    values = {k: v for k, v in sent.items() if v}
    before = request.query_params.get("before", "")
    error = None
    entries: list[AuditEntryPublic] = []
    try:
        query = AuditFilter.model_validate(
            {**values, "limit": AUDIT_PAGE_SIZE, "before": before or None}
        )
        entries = query.entries(services.auth)
    except ValidationError as exc:
        error = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    older = None
    if len(entries) == AUDIT_PAGE_SIZE:
        older = "/admin/audit?" + urlencode({**values, "before": entries[-1].id})
    newest = "/admin/audit?" + urlencode(values) if before else None
    return render(
        request,
        "admin_audit.html",
        principal,
        {
            "entries": entries,
            "filters": sent,
            "error": error,
            "older_url": older,
            "newest_url": newest,
            "detail": audit_detail,
            "iso": iso_time,
        },
        status_code=status.HTTP_400_BAD_REQUEST if error else status.HTTP_200_OK,
    )


@router.get("/admin/feedback", response_class=HTMLResponse)
def admin_feedback_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """Matches rejected by tellers and coordinators, by pair of people (who the face was
    matched to, who it really was): a pair rejected again and again says the two are
    confused. Each view is audited."""
    pairs = services.feedback.rejected_pairs(limit=FEEDBACK_PAIRS)
    audit_access(
        services,
        principal,
        request,
        "sighting.rejections",
        "",
        {"via": "page", "pairs": len(pairs)},
    )
    return render(request, "admin_feedback.html", principal, {"pairs": pairs, "iso": iso_time})
