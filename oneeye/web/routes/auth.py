"""Logging in and out: ``POST /auth/login``, ``POST /auth/logout``, ``GET /auth/me``.

A login answers JSON (scripts, the dashboard's fetch calls) or, for a form posted by the login
page, a 303 redirect: to ``next`` on success, back to ``/login?error=1`` on failure. It sets
the ``oneeye_session`` cookie (HttpOnly, SameSite=Lax, Secure when
``ONEEYE_SERVER__SECURE_COOKIES`` is on) and hands back the session's CSRF token, which every
later cookie-authenticated change must send in ``X-CSRF-Token`` (or a ``csrf_token`` form
field). Login itself needs no CSRF token: it does not use the session dependencies, so a stale
cookie left in the browser does not get in the way; instead its ``Origin`` (or ``Referer``)
must be this server, so another site cannot log a browser in to an account of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from oneeye.services.auth import (
    AuthError,
    Principal,
    ThrottledError,
    UserError,
    WrongPasswordError,
)
from oneeye.services.context import Services
from oneeye.web.deps import (
    ServicesDep,
    SignedIn,
    api_key_of,
    check_same_origin,
    client_address,
    csrf_ok,
    session_cookie_name,
    session_token_of,
)
from oneeye.web.limits import LOGIN_BODY, accepts
from oneeye.web.offload import check_passwords

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginRequest(BaseModel):
    """A username and password."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionPublic(BaseModel):
    """Who is logged in, and the CSRF token their changes must carry."""

    username: str
    role: str
    csrf_token: str | None
    expires_at: datetime | None = None
    must_change_password: bool = False
    """The password was a one-time one: change it (``POST /auth/password``) before anything
    else."""


class PasswordChange(BaseModel):
    """A user's own password change: the current password and the new one."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PrincipalPublic(BaseModel):
    """Who is asking: a user (through a session) or an API key."""

    kind: str
    username: str
    role: str
    csrf_token: str | None = None
    must_change_password: bool = False


_CREDENTIALS = {
    "username": {"type": "string", "minLength": 1, "maxLength": 64},
    "password": {"type": "string", "format": "password", "minLength": 1, "maxLength": 1024},
}
_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "title": "LoginRequest",
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": _CREDENTIALS,
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "title": "LoginForm",
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": _CREDENTIALS
                    | {"next": {"type": "string", "description": "the page to go to after"}},
                }
            },
        },
    }
}
"""The login's body for the docs: the route reads JSON or a form itself, so FastAPI cannot
infer it."""


def safe_next(value: object) -> str:
    """``value`` if it is a path on this server, else ``/`` (no open redirects)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    return value


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(FORM_TYPES)


def _set_session_cookie(response: Response, services: Services, token: str) -> None:
    # Over HTTPS (secure_cookies) the name is __Host-oneeye_session, which browsers accept
    # only with Secure, Path=/ and no Domain: the cookie is this exact host's.
    response.set_cookie(
        session_cookie_name(services),
        token,
        max_age=int(services.auth.session_lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=services.settings.server.secure_cookies,
    )


def _clear_session_cookie(response: Response, services: Services) -> None:
    response.delete_cookie(
        session_cookie_name(services),
        path="/",
        httponly=True,
        samesite="lax",
        secure=services.settings.server.secure_cookies,
    )


async def _login_fields(request: Request) -> tuple[LoginRequest, str | None]:
    """The credentials a JSON body or a login form carries, and the form's ``next``."""
    raw: Any
    next_page: str | None = None
    if _is_form(request):
        form = await request.form()
        raw = {k: v for k, v in form.items() if isinstance(v, str)}
        next_page = raw.pop("next", None)
    else:
        try:
            raw = await request.json()
        except ValueError:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "send a JSON body {username, password} or a login form",
            ) from None
    try:
        return LoginRequest.model_validate(raw), next_page
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post(
    "/login",
    response_model=SessionPublic,
    summary="Log in with a username and password",
    openapi_extra=_LOGIN_BODY,
    responses={
        303: {"description": "a login form was posted: redirect to next (or /login?error=1)"},
        401: {"description": "wrong username or password"},
        403: {"description": "the login form was posted from a page of another site"},
        429: {"description": "too many failed logins from this address; see Retry-After"},
    },
)
@accepts(LOGIN_BODY)
async def login(request: Request, response: Response, services: ServicesDep) -> Any:
    """Open a session: sets the ``oneeye_session`` cookie and returns the CSRF token.

    After 5 failed logins from one client address within 5 minutes, that address's logins
    answer 429 until its oldest failure is 5 minutes old; the right password from any other
    address still works (counted in this server process's memory; see
    ``ONEEYE_SERVER__LOGIN_*``). A login posted from a page of another site is refused (403).
    Passwords are checked in a few threads of their own (argon2 costs ~0.2 s of a core): when
    too many logins wait for them, 503 with ``Retry-After``.
    """
    check_same_origin(request)  # login CSRF: another site must not log a browser in
    form = _is_form(request)
    try:
        fields, next_page = await _login_fields(request)
    except (RequestValidationError, HTTPException):
        if not form:
            raise
        return RedirectResponse("/login?error=1", status.HTTP_303_SEE_OTHER)
    old_token = session_token_of(request)
    try:
        new = await check_passwords(
            request,
            partial(
                services.auth.login,
                fields.username,
                fields.password,
                client=client_address(request),
            ),
        )
    except ThrottledError as exc:
        # Logged by the throttle itself, once per paused address (a flood is thousands).
        if form:
            return RedirectResponse(
                f"/login?error=throttled&next={quote(safe_next(next_page))}",
                status.HTTP_303_SEE_OTHER,
            )
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            str(exc),
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except AuthError as exc:
        # Never the typed name: people type passwords into the username field.
        logger.info("failed login from client %s", client_address(request))
        if form:
            return RedirectResponse(
                f"/login?error=1&next={quote(safe_next(next_page))}", status.HTTP_303_SEE_OTHER
            )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    if old_token:
        await run_in_threadpool(services.auth.logout, old_token)
    logger.info("user %r logged in", new.principal.name)
    body = SessionPublic(
        username=new.principal.name,
        role=new.principal.role,
        csrf_token=new.csrf_token,
        expires_at=new.expires_at,
        must_change_password=new.principal.must_change_password,
    )
    if form:
        target = safe_next(next_page)
        if new.principal.must_change_password:
            target = f"/account/password?next={quote(target, safe='')}"
        redirect = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
        _set_session_cookie(redirect, services, new.token)
        return redirect
    _set_session_cookie(response, services, new.token)
    return body


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="End this browser's session",
    responses={303: {"description": "a form was posted: redirect to /login"}},
)
async def logout(request: Request, services: ServicesDep) -> Response:
    """End the session of the cookie and clear the cookie.

    A live session must send its CSRF token (so another site cannot log a user out); a cookie
    whose session already ended is simply cleared. Without a cookie: 401.
    """
    token = session_token_of(request)
    if token is None:
        if api_key_of(request) is not None:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "an API key has no session to log out of"
            )
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "you are not logged in")
    check_same_origin(request)
    principal: Principal | None
    try:
        principal = await run_in_threadpool(services.auth.session_principal, token)
    except AuthError:
        principal = None
    if principal is not None and not await csrf_ok(request, principal):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this form or request is missing its CSRF token; reload the page and try again",
        )
    await run_in_threadpool(services.auth.logout, token)
    response: Response
    if _is_form(request):
        response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    else:
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_session_cookie(response, services)
    return response


@router.get("/me", response_model=PrincipalPublic, summary="Who is logged in")
def me(principal: SignedIn) -> PrincipalPublic:
    """The logged-in user (or API key), their role, the session's CSRF token, and whether they
    must change a one-time password before anything else."""
    return PrincipalPublic(
        kind=principal.kind,
        username=principal.name,
        role=principal.role,
        csrf_token=principal.csrf_token,
        must_change_password=principal.must_change_password,
    )


def _form_error(exc: Exception) -> str:
    """The code the password page shows a sentence for (never text from the request)."""
    if isinstance(exc, ThrottledError):
        return "throttled"
    if isinstance(exc, WrongPasswordError):
        return "wrong"
    if isinstance(exc, UserError):
        return "weak"
    if isinstance(exc, HTTPException) and "differ" in str(exc.detail):
        return "mismatch"
    return "missing"


async def _password_fields(request: Request) -> tuple[PasswordChange, str | None]:
    """The fields of a JSON body or of the password page's form (which also sends ``next``
    and a ``confirm_password`` that must match)."""
    raw: Any
    next_page: str | None = None
    if _is_form(request):
        form = await request.form()
        raw = {k: v for k, v in form.items() if isinstance(v, str)}
        next_page = raw.pop("next", None)
        if raw.pop("confirm_password", None) != raw.get("new_password"):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the two new passwords differ")
    else:
        try:
            raw = await request.json()
        except ValueError:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "send a JSON body {current_password, new_password} or the password form",
            ) from None
    try:
        return PasswordChange.model_validate(raw), next_page
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Change your own password",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PasswordChange.model_json_schema()}},
        }
    },
    responses={
        303: {"description": "the password form was posted: redirect to next, or back"},
        400: {"description": "the new password is too weak or the same as the current one"},
        403: {"description": "the current password is wrong"},
        429: {"description": "too many wrong passwords from this address; see Retry-After"},
    },
)
async def change_password(request: Request, principal: SignedIn, services: ServicesDep) -> Response:
    """Change the logged-in user's password: the current one is required (a wrong one counts
    as a failed login of this address). The user's other sessions end; this one stays. The
    only change a user with a one-time password may make.
    """
    form = _is_form(request)
    next_page: str | None = None
    token = session_token_of(request)
    if principal.kind != "user" or token is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "an API key has no password to change")
    try:
        fields, next_page = await _password_fields(request)
        # argon2 twice (check, then hash): in the login gate's threads, never on the loop.
        await check_passwords(
            request,
            partial(
                services.auth.change_password,
                principal,
                fields.current_password,
                fields.new_password,
                token=token,
                client=client_address(request),
            ),
        )
    except (HTTPException, RequestValidationError, UserError, AuthError) as exc:
        if not form:
            if isinstance(exc, ThrottledError):
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    str(exc),
                    headers={"Retry-After": str(exc.retry_after)},
                ) from None
            raise  # a wrong password is 403, a weak new one 400 (oneeye.web.errors)
        back = f"/account/password?error={_form_error(exc)}&next={quote(safe_next(next_page))}"
        return RedirectResponse(back, status.HTTP_303_SEE_OTHER)
    logger.info("a user changed their password")
    if form:
        return RedirectResponse(safe_next(next_page), status.HTTP_303_SEE_OTHER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
