"""The face library's pages: ``/admin/customers`` (the built-in directory's accounts, searched
by name or account id, a page at a time, with the faces enrolled for each),
``/admin/customers/{account_id}`` (one customer: edit, delete, their faces as thumbnails with
quality, delete a face) and ``/admin/unknowns`` (the unknown faces of the last 24 hours grouped
by person, to name or report). Accounts and faces are changed through the JSON API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from oneeye.services.views import customer_page, customer_with_people
from oneeye.web.deps import AdminPage, ServicesDep, audit_access
from oneeye.web.pages.render import format_money, iso_time, render

router = APIRouter(include_in_schema=False)

CUSTOMERS_PAGE_SIZE = 25
"""Accounts per page of ``/admin/customers``."""
MAX_CUSTOMERS_PAGE = 10_000
"""The last page number asked for (``page`` above it is a 422)."""


def _page_url(q: str, page: int) -> str:
    query = {k: v for k, v in (("q", q), ("page", str(page))) if v and v != "1"}
    return "/admin/customers" + ("?" + urlencode(query) if query else "")


@router.get("/admin/customers", response_class=HTMLResponse)
def admin_customers_page(
    request: Request,
    services: ServicesDep,
    principal: AdminPage,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=MAX_CUSTOMERS_PAGE)] = 1,
) -> Response:
    """Customers in name order, ``CUSTOMERS_PAGE_SIZE`` a page, only those whose name or
    account id contains ``q`` when given: create accounts, upload profile photos, enrol face
    photos. The accounts shown are written to the audit log (ids, not the search text)."""
    q = q.strip()
    found = customer_page(
        services.db, q=q or None, limit=CUSTOMERS_PAGE_SIZE, offset=(page - 1) * CUSTOMERS_PAGE_SIZE
    )
    if found.rows:
        audit_access(
            services,
            principal,
            request,
            "account.view",
            "*",
            {
                "via": "admin/customers",
                "count": len(found.rows),
                "accounts": [row.account.account_id for row in found.rows],
            },
        )
    last = max(1, -(-found.total // CUSTOMERS_PAGE_SIZE))
    first_shown = (page - 1) * CUSTOMERS_PAGE_SIZE + 1
    return render(
        request,
        "admin_customers.html",
        principal,
        {
            "customers": found.rows,
            "money": format_money,
            "q": q,
            "page": page,
            "last_page": last,
            "total": found.total,
            "first_shown": first_shown,
            "last_shown": first_shown + len(found.rows) - 1,
            "prev_url": _page_url(q, page - 1) if page > 1 else None,
            "next_url": _page_url(q, page + 1) if page < last else None,
        },
    )


@router.get("/admin/customers/{account_id}", response_class=HTMLResponse)
def admin_customer_page(
    request: Request,
    services: ServicesDep,
    principal: AdminPage,
    account_id: Annotated[str, Path(max_length=64)],
) -> Response:
    """One customer: edit the account, delete the customer (an erasure), their faces as
    thumbnails with quality, delete a face, enrol another. Audited (``account.view``)."""
    row = customer_with_people(services.db, account_id)
    if row is None:
        return render(
            request,
            "message.html",
            principal,
            {"title": "No such customer", "message": f"There is no customer {account_id}."},
            status_code=status.HTTP_404_NOT_FOUND,
        )
    audit_access(
        services, principal, request, "account.view", account_id, {"via": "admin/customer"}
    )
    return render(
        request,
        "admin_customer.html",
        principal,
        {"row": row, "money": format_money, "iso": iso_time},
    )


@router.get("/admin/unknowns", response_class=HTMLResponse)
def admin_unknowns_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """The unknown faces of the last 24 hours grouped by person, largest group first: name
    one (enrol its best face into a customer) or report it. Audited (``unknown.list``)."""
    found = services.library.unknown_groups()
    audit_access(
        services,
        principal,
        request,
        "unknown.list",
        "",
        {"groups": [g.best_sighting_id for g in found.groups], "faces": found.faces},
    )
    return render(
        request,
        "admin_unknowns.html",
        principal,
        {"found": found, "iso": iso_time},
    )
