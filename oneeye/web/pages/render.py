"""What every page shares: the templates, ``render`` with the page's headers, the answers to
a refused page (login, password change, 403) and the time formats the templates use."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from oneeye.services.auth import Principal
from oneeye.web.deps import PageRefusedError

TEMPLATES = Path(__file__).parent.with_name("templates")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: https:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
"""Pages run only their own scripts (no inline code), so an injected name cannot run; profile
photos may come from the bank's own HTTPS server."""


@cache
def templates() -> Jinja2Templates:
    """The page templates (built on first use, not at import)."""
    return Jinja2Templates(directory=TEMPLATES)


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A page from its template, with the user and their CSRF token in the context."""
    values: dict[str, Any] = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else "",
        "is_admin": principal is not None and principal.allows("admin"),
        "can_report": principal is not None and principal.allows("reporter"),
        "can_see_history": principal is not None and principal.allows("teller"),
        "path": request.url.path,
    }
    values.update(context or {})
    response = templates().TemplateResponse(request, name, values, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _here(request: Request) -> str:
    """This page's path and query, quoted for a ``next`` parameter."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(here, safe="")


def to_password_change(request: Request) -> RedirectResponse:
    """A 303 to the password page (a one-time password must be changed first), coming back
    to this page after."""
    return RedirectResponse(f"/account/password?next={_here(request)}", status.HTTP_303_SEE_OTHER)


def to_login(request: Request) -> RedirectResponse:
    """A 303 to the login page that comes back to this page after logging in."""
    return RedirectResponse(f"/login?next={_here(request)}", status.HTTP_303_SEE_OTHER)


def forbidden(request: Request, principal: Principal, needed: str) -> HTMLResponse:
    """The 403 page: who you are, and which role the page needs."""
    return render(
        request,
        "403.html",
        principal,
        {"needed": needed},
        status_code=status.HTTP_403_FORBIDDEN,
    )


async def answer_refused(request: Request, exc: Exception) -> Response:
    """The answer to a page a page dependency refused (``oneeye.web.deps.PageRefusedError``): to
    the login page, to the password page, or the 403 page."""
    assert isinstance(exc, PageRefusedError)
    if exc.principal is None:
        return to_login(request)
    if exc.reason == "password":
        return to_password_change(request)
    return forbidden(request, exc.principal, exc.needed)


def as_utc(when: datetime) -> datetime:
    """``when`` as aware UTC (a naive time from the database is UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def iso_time(when: datetime | None) -> str:
    """``when`` as ISO-8601 UTC (``""`` for none): what ``<time datetime=...>`` carries."""
    return "" if when is None else as_utc(when).isoformat()


def format_money(balance: Any, currency: Any) -> str:
    """``"1520.4", "USD"`` -> ``"1,520.40 USD"`` (Decimal, never a float); ``"—"`` when the
    directory gave no balance."""
    if balance is None or balance == "":
        return "—"
    try:
        amount = Decimal(str(balance))
    except (InvalidOperation, ValueError):
        return f"{balance} {currency or ''}".strip()
    return f"{amount:,.2f} {currency or ''}".strip()
