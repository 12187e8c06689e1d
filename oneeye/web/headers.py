"""Security headers on every HTTP response: no framing, no type sniffing, no referrer to
other sites.

The dashboard's pages send their own stricter policy (``oneeye.web.pages.render.render``: only their
own scripts), which this keeps. Everywhere else only ``frame-ancestors`` is set, on purpose:
``/docs`` starts Swagger UI with an inline script and loads its assets, so a ``script-src`` or
``default-src`` rule here would break it (SECURITY.md, section 11, states this limit).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
)
"""Set on every response; a route that sets one of them itself keeps its own value."""


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every HTTP response, errors and redirects included.

    Plain ASGI rather than ``BaseHTTPMiddleware``: it touches only the response's start
    message, so streamed bodies (photos, snapshots) pass through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
