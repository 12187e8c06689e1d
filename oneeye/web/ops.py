"""What operators and their tools ask a server: ``/healthz`` (the process answers),
``/readyz`` (database, bus, photo store and cameras are usable) and ``/metrics`` (Prometheus;
an admin, or an API key with the ``metrics`` role), and the middleware that times every
request by its route's template.

The health routes need no credentials (load balancers and orchestrators call them) and say
nothing but the checks' names and short sentences.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oneeye.metrics import REQUEST_SECONDS
from oneeye.services.auth import METRICS_ROLE, Principal
from oneeye.services.metrics import (
    Check,
    ServerCollector,
    check_bus,
    check_database,
    check_photo_store,
    check_workers,
    exposition,
)
from oneeye.web.deps import ServicesDep, require

router = APIRouter(tags=["operations"])

MetricsReader = Annotated[Principal, Depends(require("admin", also=(METRICS_ROLE,)))]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class CheckOut(BaseModel):
    """One readiness check."""

    name: str
    ok: bool
    detail: str


class Readiness(BaseModel):
    """Whether this server can take work, and each check."""

    ready: bool
    checks: list[CheckOut]


@router.get("/healthz", response_model=dict[str, str])
async def healthz() -> dict[str, str]:
    """The process answers (nothing else is checked: for liveness probes)."""
    return {"status": "ok"}


def readiness_checks(services: ServicesDep) -> list[Check]:
    """The server's readiness checks: database, bus, photo store, and a running worker for
    every enabled camera of this server."""
    checks = [
        check_database(services.db),
        check_bus(services.bus),
        check_photo_store(services.photos),
    ]
    cameras = services.cameras
    try:
        enabled = [c.id for c in cameras.configs() if c.enabled]
        # A file camera that ended before this start has no worker, rightly.
        watched = [c for c in enabled if cameras.status(c).state != "ended"]
    except Exception:
        return checks  # the database check says why
    checks.append(check_workers({c: cameras.worker(c) for c in watched}))
    return checks


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a check failed"}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    """200 when every check passes, else 503; the body lists each check."""
    checks = readiness_checks(services)
    ready = all(c.ok for c in checks)
    body = Readiness(
        ready=ready, checks=[CheckOut(name=c.name, ok=c.ok, detail=c.detail) for c in checks]
    )
    return JSONResponse(
        body.model_dump(),
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get("/metrics", response_class=Response)
def metrics(request: Request, reader: MetricsReader) -> Response:
    """The Prometheus exposition of this server (an admin, or a ``metrics`` API key)."""
    collector = request.app.state.metrics
    assert isinstance(collector, ServerCollector)
    return Response(exposition(collector), media_type=PROMETHEUS_TEXT)


def route_template(scope: Scope) -> str:
    """The request's path with each path parameter's value put back as ``{name}``:
    ``/api/v1/people/{person_id}`` for ``/api/v1/people/3f2a...``; ``unmatched`` when no route
    took the request (so a scan of random paths adds one label value, not one per path).

    Built from the path and the matched parameters rather than from the route object, whose
    ``path`` is its own router's (without the prefix it was included under)."""
    if scope.get("route") is None and scope.get("endpoint") is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    params = scope.get("path_params") or {}
    # The longest values first: a value that is part of another is not replaced inside it.
    for name, value in sorted(params.items(), key=lambda item: -len(str(item[1]))):
        text = str(value)
        at = path.rfind(text) if text else -1
        if at >= 0:
            path = f"{path[:at]}{{{name}}}{path[at + len(text) :]}"
    return path[:200]


class RequestTimer:
    """Times each HTTP request into ``oneeye_http_request_seconds``, labelled by the route's
    template (``/api/v1/people/{person_id}``, never the raw path, so no id becomes a label),
    the method and the status class (``2xx``)."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then record how long it took."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def sent(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            REQUEST_SECONDS.labels(
                route_template(scope), scope["method"], f"{code // 100}xx"
            ).observe(time.perf_counter() - started)
