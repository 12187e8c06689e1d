"""One error shape everywhere: ``{"error": {"status": 404, "message": "...", "fields": [...]}}``.

``message`` is a sentence a person can act on; ``fields`` (validation errors only) says which
input was wrong and why.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


def error_body(status: int, message: str, fields: list[dict[str, str]] | None = None) -> Any:
    """The JSON body of an error response."""
    body: dict[str, Any] = {"status": status, "message": message}
    if fields:
        body["fields"] = fields
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
    app.add_exception_handler(Exception, _unexpected_error)
