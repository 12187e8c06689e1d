"""Request bodies: a size limit per route, enforced before the body is read.

``BodyLimitMiddleware`` sits in front of every route. A request whose ``Content-Length`` is over
its route's limit is answered 413 before a byte of the body is read; a body sent without a
length (chunked) is counted as it streams in, and the route's read of it fails with 413 at the
first byte over. Upload routes (``@accepts(UPLOAD_BODY)``) also need working credentials before
their body is read: an anonymous upload is answered 401 without being parsed or spooled to
disk. Both answers close the connection, so the server stops reading what the client still
sends.

A route names its kind with ``@accepts``; every other route takes a JSON (or form) body of at
most ``limits.json_bytes``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oneeye.config import LimitSettings
from oneeye.web.errors import error_body

logger = logging.getLogger(__name__)

BodyKind = Literal["json", "login", "upload"]
JSON_BODY: BodyKind = "json"
LOGIN_BODY: BodyKind = "login"
UPLOAD_BODY: BodyKind = "upload"

_ATTRIBUTE = "__oneeye_body__"

F = TypeVar("F", bound=Callable[..., Any])


def accepts(kind: BodyKind, max_bytes: int | None = None) -> Callable[[F], F]:
    """Mark a route's endpoint with the kind of body it takes (and, if given, a limit of its
    own instead of the kind's setting)."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _ATTRIBUTE, (kind, max_bytes))
        return endpoint

    return mark


@dataclass(frozen=True, slots=True)
class BodyRule:
    """The body one marked route takes."""

    methods: frozenset[str]
    path: re.Pattern[str]
    kind: BodyKind
    max_bytes: int | None


def body_rules(routers: Iterable[tuple[str, APIRouter]]) -> list[BodyRule]:
    """The rules of every route marked with ``@accepts`` in ``routers`` (each with the prefix
    it is mounted under)."""
    rules = []
    for prefix, router in routers:
        for route in router.routes:
            mark = getattr(getattr(route, "endpoint", None), _ATTRIBUTE, None)
            methods = getattr(route, "methods", None)
            if mark is None or not methods:
                continue
            regex, _, _ = compile_path(prefix + str(getattr(route, "path", "")))
            rules.append(BodyRule(frozenset(methods), regex, mark[0], mark[1]))
    return rules


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:g} KB"
    return f"{size / (1024 * 1024):g} MB"


def too_large(limit: int, kind: BodyKind) -> str:
    """The 413's sentence."""
    what = {"json": "request", "login": "login", "upload": "upload"}[kind]
    return (
        f"this {what} is larger than the {_megabytes(limit)} ({limit:,} bytes) this address "
        f"accepts; send a smaller one"
    )


class BodyTooLarge(HTTPException):
    """A body went over its limit while it was being read."""


class BodyLimitMiddleware:
    """Applies every route's body limit, and upload routes' authentication, before the body
    is read (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        rules: list[BodyRule],
        limits: LimitSettings,
        authenticated: Callable[[Request], Awaitable[bool]],
    ) -> None:
        """Guard ``app``.

        Args:
            app: the application.
            rules: the marked routes (``body_rules``); every other route takes JSON.
            limits: the byte limits of each kind.
            authenticated: whether a request's credentials work (the database lookup runs
                off the event loop).
        """
        self.app = app
        self.rules = rules
        self.limits = limits
        self.authenticated = authenticated
        self.refused = 0
        """Requests answered 413 or 401 by this middleware."""

    def rule(self, scope: Scope) -> tuple[BodyKind, int]:
        """The kind of body the route ``scope`` reaches takes, and its limit in bytes."""
        kind, own = JSON_BODY, None
        method, path = scope.get("method", ""), scope.get("path", "")
        for rule in self.rules:
            if method in rule.methods and rule.path.match(path):
                kind, own = rule.kind, rule.max_bytes
                break
        if own is not None:
            return kind, own
        if kind == LOGIN_BODY:
            return kind, self.limits.login_bytes
        if kind == UPLOAD_BODY:
            return kind, self.limits.upload_bytes
        return kind, self.limits.json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with its body counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        declared = request.headers.get("content-length")
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        if declared is None and not chunked:
            await self.app(scope, receive, send)  # no body
            return
        kind, limit = self.rule(scope)
        if kind == UPLOAD_BODY and not await self.authenticated(request):
            await self._refuse(
                scope,
                receive,
                send,
                401,
                "log in, or send an API key, before uploading (nothing was read)",
            )
            return
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, 413, too_large(limit, kind))
            return
        await self._counted(scope, receive, send, kind, limit)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, kind: BodyKind, limit: int
    ) -> None:
        """Run the app with a ``receive`` that fails at the first byte over ``limit``, and a
        ``send`` that then closes the connection."""
        read = 0
        over = False

        async def counting_receive() -> Message:
            nonlocal read, over
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    over = True
                    self.refused += 1
                    raise BodyTooLarge(status.HTTP_413_CONTENT_TOO_LARGE, too_large(limit, kind))
            return message

        async def closing_send(message: Message) -> None:
            if over and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        await self.app(scope, counting_receive, closing_send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, code: int, sentence: str
    ) -> None:
        """Answer ``code`` at once, unread, and close the connection after it."""
        self.refused += 1
        logger.info("refused %s %s unread: %d", scope.get("method"), scope.get("path"), code)
        headers = {"Connection": "close"}
        if code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        response = JSONResponse(error_body(code, sentence), status_code=code, headers=headers)
        await response(scope, receive, send)


_CLOSE = (b"connection", b"close")
