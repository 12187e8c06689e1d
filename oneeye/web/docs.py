"""``/docs``: Swagger UI for the API, served from the files the ``fastapi-offline`` package
ships (Swagger UI 5's ``swagger-ui-bundle.js`` and ``swagger-ui.css``, MIT/Apache-2.0).

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so they are blank on a network
without the internet and tell a third party who reads OneEye's docs; OneEye promises that
nothing leaves its machines. Here the page, its script, its stylesheet and its icon all come
from this server, and Swagger UI's online validator (which would send the schema's address to
validator.swagger.io) is off. ReDoc is not served (its page loads web fonts from Google).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = "/docs-assets"


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` (Swagger UI) and its assets under ``/docs-assets`` to ``app``, which must
    have been built with ``docs_url=None, redoc_url=None``."""
    assets = Path(str(files("fastapi_offline") / "static"))
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    title = f"{app.title} API"
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        """The API's interactive documentation, with no request leaving this server."""
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
