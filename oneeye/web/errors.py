"""One error shape everywhere: ``{"error": {"status": 404, "message": "...", "fields": [...]}}``.

``message`` is a sentence a person can act on; ``fields`` (validation errors only) says which
input was wrong and why.

A service error of one of the kinds in ``oneeye.errors`` answers with that kind's status and
the error's own message (``KIND_STATUS``), so routes need no ``try``/``except`` to translate
them; any other error is a 500 that is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from oneeye.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    OneEyeError,
    TooLarge,
    Unavailable,
    Unusable,
)

logger = logging.getLogger(__name__)

KIND_STATUS: tuple[tuple[type[OneEyeError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (Forbidden, 403),
    (Unavailable, 502),
    (Unusable, 422),
    (Invalid, 400),
)
"""The HTTP status of each error kind, the most specific first: an error of two kinds (a
service's ``...NotFoundError`` is also its service's ``Invalid`` base) takes the first."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status for an error of one of the kinds, or ``None`` for any other error."""
    for kind, code in KIND_STATUS:
        if isinstance(exc, kind):
            return code
    return None


def error_body(
    status: int,
    message: str,
    fields: list[dict[str, str]] | None = None,
    details: dict[str, Any] | None = None,
) -> Any:
    """The JSON body of an error response (``details``: an error's own extra fields, such as
    the same-face check's distances)."""
    body: dict[str, Any] = {"status": status, "message": message}
    if fields:
        body["fields"] = fields
    if details:
        body.update({k: v for k, v in details.items() if k not in body})
    return {"error": body}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(
        error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "message": str(error.get("msg", "invalid")),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(error_body(422, f"invalid request: {summary}", fields), status_code=422)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    code = status_of(exc)
    if code is None:
        raise exc  # not a kind: on to the server-error handler, which logs it (500)
    details = getattr(exc, "details", None)
    return JSONResponse(
        error_body(code, str(exc), details=details if isinstance(details, dict) else None),
        status_code=code,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        error_body(500, "something went wrong on the server; it has been logged"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, answer in the one shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OneEyeError, _service_error)
    app.add_exception_handler(Exception, _unexpected_error)
