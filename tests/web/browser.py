"""Helpers for the real-browser tests: the app served by uvicorn on a free port, and Debian's
chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Playwright

from tests.conftest import free_port, service_unavailable

logger = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve(app: FastAPI, start_timeout: float = 15.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium at ``/usr/bin/chromium`` (skip the test if it is absent; fail in
    CI)."""
    if not CHROMIUM.exists():
        service_unavailable(f"Debian chromium at {CHROMIUM}", "it is not installed")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


def csp_violations(page: Page) -> list[str]:
    """A list that fills with the page's Content-Security-Policy complaints."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def add_camera(url: str, admin_key: str, camera: dict[str, Any]) -> None:
    """Add ``camera`` through the server's API with an admin API key (it must be accepted)."""
    added = httpx.post(
        f"{url}/api/v1/cameras",
        json=camera,
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=10,
    )
    assert added.status_code == 201, added.text
