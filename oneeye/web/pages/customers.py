"""``/admin/customers``: the built-in directory's accounts with the faces enrolled for each
(create accounts, upload profile photos, enrol face photos through the JSON API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oneeye.services.views import customer_rows
from oneeye.web.deps import AdminPage, ServicesDep, audit_access
from oneeye.web.pages.render import format_money, render

router = APIRouter(include_in_schema=False)


@router.get("/admin/customers", response_class=HTMLResponse)
def admin_customers_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """Customers: create accounts, upload profile photos, enrol face photos. Showing the
    accounts is written to the audit log."""
    rows = customer_rows(services.db)
    if rows:
        audit_access(
            services,
            principal,
            request,
            "account.view",
            "*",
            {"via": "admin/customers", "count": len(rows)},
        )
    return render(
        request,
        "admin_customers.html",
        principal,
        {"customers": rows, "money": format_money},
    )
