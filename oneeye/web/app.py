"""``create_app``: the FastAPI application over the server's services."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from oneeye import __version__
from oneeye.services.context import Services
from oneeye.web import ops, ws
from oneeye.web.deps import has_credentials
from oneeye.web.docs import install_docs
from oneeye.web.errors import install_error_handlers
from oneeye.web.headers import SecurityHeadersMiddleware
from oneeye.web.limits import BodyLimitMiddleware, body_rules
from oneeye.web.offload import Gates
from oneeye.web.pages import install_pages
from oneeye.web.routes import (
    arrivals,
    auth,
    cameras,
    cases,
    customers,
    edges,
    gallery,
    identify,
    links,
    people,
    photos,
    sightings,
    unknowns,
    users,
    watchlists,
)

STATIC = Path(__file__).with_name("static")
API = "/api/v1"


def create_app(services: Services) -> FastAPI:
    """The web application: JSON API under ``/api/v1`` (docs at ``/docs``), the WebSocket at
    ``/ws``, the dashboard pages, and ``/healthz``, ``/readyz`` and ``/metrics`` (whose
    collector the caller sets as ``app.state.metrics``)."""
    app = FastAPI(
        title="OneEye",
        version=__version__,
        description="Self-hosted, real-time face identification for camera video.\n\n"
        "Send an API key as `Authorization: Bearer oek_...` or `X-API-Key: oek_...` (on the "
        "WebSocket `/ws`, also as the subprotocol `oneeye.key.<key>` offered with `oneeye`); "
        "never in the URL. A browser session uses its cookie, and its changes also send the "
        "session's CSRF token in `X-CSRF-Token`.",
        docs_url=None,  # served by oneeye.web.docs from the package, never from a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.state.gates = Gates(services.settings.limits)
    install_error_handlers(app)
    install_docs(app)
    modules = (
        auth,
        users,
        people,
        watchlists,
        customers,
        gallery,
        edges,
        identify,
        photos,
        cameras,
        sightings,
        cases,
        links,
        unknowns,
        arrivals,
    )
    for module in modules:
        app.include_router(module.router, prefix=API)
    # Body limits and upload authentication come before anything reads a body.
    app.add_middleware(
        BodyLimitMiddleware,
        rules=body_rules((API, module.router) for module in modules),
        limits=services.settings.limits,
        authenticated=has_credentials,
    )
    app.include_router(ws.router)
    app.include_router(ops.router)
    install_pages(app)
    STATIC.mkdir(exist_ok=True)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Added last, so outermost: the body-limit middleware's own refusals get the headers too.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ops.RequestTimer)  # outermost: every request is timed, refusals too
    return app
