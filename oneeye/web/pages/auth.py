"""The pages anyone may open: the login form and the password change (where a user with a
one-time password is sent by every other page)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from oneeye.web.deps import PageUser
from oneeye.web.pages.render import render, to_login
from oneeye.web.routes.auth import safe_next

router = APIRouter(include_in_schema=False)

LOGIN_ERRORS = {
    "1": "Wrong username or password.",
    "throttled": "Too many failed logins from this address; wait a few minutes and try again.",
}
"""What the login page says for the ``error`` the login route redirects back with."""

PASSWORD_ERRORS = {
    "wrong": "The current password is not right.",
    "weak": "The new password needs at least 10 characters and must differ from the current one.",
    "mismatch": "The two new passwords differ.",
    "throttled": "Too many wrong passwords from this address; wait a few minutes and try again.",
    "missing": "Fill in every field.",
}
"""What the password page says for the ``error`` the password route redirects back with."""


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, principal: PageUser, next: str = "/") -> Response:
    """The login form; a logged-in user goes straight on to ``next``."""
    target = safe_next(next)
    if principal is not None:
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    error = request.query_params.get("error")
    message = LOGIN_ERRORS.get(error, LOGIN_ERRORS["1"]) if error else None
    return render(request, "login.html", None, {"next": target, "error": message})


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, principal: PageUser, next: str = "/") -> Response:
    """Change your own password (current password required). A user whose password was a
    one-time one is sent here by every page until they have changed it."""
    if principal is None:
        return to_login(request)
    error = request.query_params.get("error")
    return render(
        request,
        "account_password.html",
        principal,
        {
            "next": safe_next(next),
            "error": PASSWORD_ERRORS.get(error, PASSWORD_ERRORS["missing"]) if error else None,
            "forced": principal.must_change_password,
        },
    )
