"""Dependencies shared by every route: the services, who is asking, and what they may do.

A request is authenticated by an API key (``Authorization: Bearer oek_...`` or
``X-API-Key``) or by the session cookie. A cookie-authenticated request that changes something
(POST, PUT, PATCH, DELETE) must also carry the session's CSRF token, in the ``X-CSRF-Token``
header or a ``csrf_token`` form field; API keys need none (a browser never sends them by
itself). Either way the request must come from this server's own page (``Origin``).

A user whose password was a printed one-time one (``must_change_password``) gets 403 from
every route but ``/auth/me``, ``/auth/password`` and ``/auth/logout`` until they change it.
The OpenAPI schema declares the two API-key schemes (``bearerAuth``, ``apiKeyHeader``) and the
session cookie (``sessionCookie``).

The dashboard's pages have dependencies of their own (``ViewerPage``, ``ReporterPage``,
``AdminPage``): they need a browser session, and instead of a JSON error they raise
``PageRefusedError``, which ``oneeye.web.pages`` answers with the login page, the password page or
the 403 page.

Looking a session or key up is database work, so it runs in the thread pool, never on the event
loop.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from oneeye.services.auth import EDGE_ROLE, AuthError, Principal
from oneeye.services.context import Services

SESSION_COOKIE = "oneeye_session"
HOST_SESSION_COOKIE = "__Host-oneeye_session"
"""The cookie's name over HTTPS (``ONEEYE_SERVER__SECURE_COOKIES``): the browser then keeps it
to this exact host, Secure, Path=/."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_services(request: Request) -> Services:
    """The server's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def session_cookie_name(services: Services) -> str:
    """The session cookie's name: ``__Host-oneeye_session`` over HTTPS, else
    ``oneeye_session``."""
    return HOST_SESSION_COOKIE if services.settings.server.secure_cookies else SESSION_COOKIE


def session_token_of(connection: HTTPConnection) -> str | None:
    """The session token a request or WebSocket carries, under the cookie name in force."""
    services: Services = connection.app.state.services
    return connection.cookies.get(session_cookie_name(services)) or None


# Declared for the OpenAPI schema (``/docs`` shows an Authorize button); the values are read by
# ``api_key_of`` and ``session_token_of``, which also serve the WebSocket.
_BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="oek_...",
    description="An API key: `Authorization: Bearer oek_...`",
    auto_error=False,
)
_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="apiKeyHeader",
    description="An API key in the X-API-Key header",
    auto_error=False,
)
_COOKIE = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="sessionCookie",
    description="A browser's session (`__Host-oneeye_session` over HTTPS); changes also need "
    "the X-CSRF-Token header",
    auto_error=False,
)


def _declared_schemes(
    _bearer: Annotated[object, Security(_BEARER)],
    _key: Annotated[object, Security(_KEY_HEADER)],
    _cookie: Annotated[object, Security(_COOKIE)],
) -> None:
    """Nothing at run time: names the security schemes in the OpenAPI schema."""


def api_key_of(request: Request) -> str | None:
    """The API key a request carries, if any."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def csrf_ok(request: Request, principal: Principal) -> bool:
    """Whether a request carries ``principal``'s session CSRF token (header or form field)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if sent is None or principal.csrf_token is None:
        return False
    return hmac.compare_digest(sent.encode(), principal.csrf_token.encode())


def same_origin(request: Request) -> bool:
    """Whether a request comes from a page of this server, as far as the browser says.

    Browsers send ``Origin`` on every cross-site POST (``null`` from sandboxed or privacy-
    stripped contexts), and ``Referer`` on most; it must name this server: the ``Host`` the
    request was sent to, or the host of ``ONEEYE_PUBLIC_URL`` (behind a proxy that rewrites
    ``Host``). A request with neither header is a script or ``curl``, not a page riding on a
    cookie, and passes.
    """
    sent = request.headers.get("origin") or request.headers.get("referer")
    if sent is None:
        return True
    netloc = urlsplit(sent).netloc.lower()
    if not netloc:
        return False  # "null", or a bare path
    own = {request.headers.get("host", "").lower()}
    services = get_services(request)
    own.add(urlsplit(services.settings.public_url).netloc.lower())
    return netloc in own


def check_same_origin(request: Request) -> None:
    """403 for a request that a page of another site made (see ``same_origin``)."""
    if not same_origin(request):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this request came from a page of another site; open OneEye's own page instead",
        )


def principal_of(services: Services, key: str | None, token: str | None) -> Principal | None:
    """The principal of an API key (first) or a session token; ``None`` when there is
    neither; ``AuthError`` when the one given does not work. Database work: call it in a
    thread."""
    if key is not None:
        return services.auth.key_principal(key)
    if token is None:
        return None
    return services.auth.session_principal(token)


async def has_credentials(request: Request) -> bool:
    """Whether ``request`` carries an API key or session that works (nothing else is
    checked: the routes check roles). For the checks made before a body is read."""
    services = get_services(request)
    key, token = api_key_of(request), session_token_of(request)
    if key is None and token is None:
        return False
    try:
        return await run_in_threadpool(principal_of, services, key, token) is not None
    except AuthError:
        return False


async def optional_principal(
    request: Request,
    services: ServicesDep,
    _schemes: Annotated[None, Depends(_declared_schemes)],
) -> Principal | None:
    """Who is asking, or ``None`` when the request carries no credentials at all."""
    key, token = api_key_of(request), session_token_of(request)
    if key is None and token is None:
        return None
    try:
        principal = await run_in_threadpool(principal_of, services, key, token)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    if principal is None or key is not None:
        return principal  # an API key needs no CSRF token (a browser never sends one)
    if request.method not in SAFE_METHODS:
        # A cookie rides along on any site's request: the change must come from our own page.
        check_same_origin(request)
        if not await csrf_ok(request, principal):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "this form or request is missing its CSRF token; reload the page and try again",
            )
    return principal


async def signed_in(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """Who is asking, even a user who must change their password first; 401 when nobody is
    logged in."""
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in, or send an API key, to use this")
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]
"""For the few routes a user with a one-time password may use: who am I, change it, log out."""

MUST_CHANGE_PASSWORD = (
    "change your one-time password first (POST /api/v1/auth/password, or the page "
    "/account/password)"
)


async def current_principal(principal: SignedIn) -> Principal:
    """Who is asking; 401 when nobody is logged in, 403 for a user who must change their
    one-time password before doing anything else."""
    if principal.must_change_password:
        raise HTTPException(status.HTTP_403_FORBIDDEN, MUST_CHANGE_PASSWORD)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(role: str, *, also: tuple[str, ...] = ()) -> Callable[[Principal], Principal]:
    """A dependency that lets through ``role`` and the roles above it, and answers 403 to the
    rest. ``also`` names roles outside the ladder (``edge``) that this route lets in too."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.allows(role) and principal.role not in also:
            extra = "".join(f" or {r}" for r in also)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {role} role or above{extra}; you are {principal.role}",
            )
        return principal

    check.__name__ = f"require_{role}"
    return check


def client_address(request: Request) -> str:
    """The client's network address as the server saw it (``""`` if unknown)."""
    return request.client.host if request.client is not None else ""


def audit_access(
    services: Services,
    principal: Principal,
    request: Request,
    action: str,
    subject: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write the audit row for what ``principal`` is about to be shown: who, their role,
    what, which id, when and from which address.

    Call it in a sync route (a worker thread, off the event loop) before returning the
    answer: the row is committed before the response leaves, and if it cannot be written the
    request fails instead of showing the data unaudited.
    """
    services.auth.audit(
        principal.actor,
        action,
        subject,
        detail,
        role=principal.role,
        address=client_address(request),
    )


Viewer = Annotated[Principal, Depends(require("viewer"))]
Reporter = Annotated[Principal, Depends(require("reporter"))]
Teller = Annotated[Principal, Depends(require("teller"))]
Coordinator = Annotated[Principal, Depends(require("coordinator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
AdminOrEdge = Annotated[Principal, Depends(require("admin", also=(EDGE_ROLE,)))]
"""An admin, or an edge's API key (the routes camera hosts use: gallery export, snapshots)."""


# Pages ----------------------------------------------------------------------------------------


class PageRefusedError(Exception):
    """A page cannot be shown to this browser: nobody is logged in (``"login"``), the user must
    change a one-time password first (``"password"``), or the user's role is below ``needed``
    (``"role"``). ``oneeye.web.pages`` answers it with a redirect or the 403 page."""

    def __init__(
        self,
        reason: Literal["login", "password", "role"],
        principal: Principal | None,
        needed: str,
    ) -> None:
        super().__init__(f"this page needs the {needed} role or above ({reason})")
        self.reason = reason
        self.principal = principal
        self.needed = needed


def page_user(request: Request, services: ServicesDep) -> Principal | None:
    """The user of this browser session, or ``None`` (no cookie, or an ended session). Pages
    use the session only: an API key opens no page."""
    token = session_token_of(request)
    if not token:
        return None
    try:
        return services.auth.session_principal(token)
    except AuthError:
        return None


PageUser = Annotated[Principal | None, Depends(page_user)]
"""For the pages anyone may open (login, password): who is logged in, if anyone."""


def page_require(role: str) -> Callable[[Principal | None], Principal]:
    """A page dependency that lets through a logged-in user with ``role`` or above and raises
    ``PageRefusedError`` for everyone else."""

    def check(principal: PageUser) -> Principal:
        if principal is None:
            raise PageRefusedError("login", None, role)
        if principal.must_change_password:
            raise PageRefusedError("password", principal, role)
        if not principal.allows(role):
            raise PageRefusedError("role", principal, role)
        return principal

    check.__name__ = f"page_requires_{role}"
    return check


ViewerPage = Annotated[Principal, Depends(page_require("viewer"))]
ReporterPage = Annotated[Principal, Depends(page_require("reporter"))]
TellerPage = Annotated[Principal, Depends(page_require("teller"))]
AdminPage = Annotated[Principal, Depends(page_require("admin"))]
