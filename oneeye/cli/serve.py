"""``oneeye serve``: the all-in-one server (web API and dashboard, camera workers)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from oneeye.cli.common import (
    PRIVATE_UMASK,
    SettingError,
    data_dir_option,
    interrupt,
    one_line,
    serve_settings,
)

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from oneeye.config import ServeSettings

logger = logging.getLogger(__name__)


def announce_first_admin(credential: str) -> None:
    """Print the first admin's one-time credential to stdout, once, so nobody misses it.

    Args:
        credential: ``"name:password"`` as ``AuthService.ensure_admin`` returns it.
    """
    name, password = credential.split(":", 1)
    rule = "=" * 72
    click.echo(
        f"{rule}\n"
        "OneEye created its first admin. Log in with this one-time password;\n"
        "it is shown only now and never again (reset it with `oneeye users reset-password`).\n"
        f"  username: {name}\n"
        f"  password: {password}\n"
        f"{rule}"
    )


def uvicorn_config(web: FastAPI, settings: ServeSettings) -> uvicorn.Config:
    """How uvicorn serves the web app: ``X-Forwarded-For`` is believed only from the proxies
    ``ONEEYE_SERVER__TRUSTED_PROXIES`` names (uvicorn would trust 127.0.0.1 by default, so a
    local process could choose the address the login throttle counts)."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    proxies = settings.server.trusted_proxies
    return uvicorn.Config(
        web,
        host=settings.server.host,
        port=settings.server.port,
        log_level=logging.getLevelName(min(logging.getLogger().level, logging.INFO)).lower(),
        proxy_headers=bool(proxies),
        forwarded_allow_ips=list(proxies) if proxies else [],
        # JSON lines: uvicorn's loggers keep no text handlers of their own and reach the root
        # logger's JSON handler (oneeye.logs).
        log_config=None if settings.log.format == "json" else LOGGING_CONFIG,
    )


@click.command()
@click.option("--host", help="Address to listen on (default: ONEEYE_SERVER__HOST or 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to listen on (default: ONEEYE_SERVER__PORT or 8080).",
)
@data_dir_option
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """Run the OneEye server: web API and dashboard, camera workers, all in one process.

    The first start creates an admin and prints its one-time password. Settings come from
    ONEEYE_ environment variables (ONEEYE_DATABASE_URL for PostgreSQL); Ctrl-C stops cleanly.
    """
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from oneeye.app import OneEyeApp
    from oneeye.errors import OneEyeError
    from oneeye.redact import install_query_redaction

    settings = serve_settings(data_dir, host=host, port=port)
    os.umask(PRIVATE_UMASK)
    try:
        app = OneEyeApp(settings, announce=announce_first_admin)
    except (OneEyeError, SQLAlchemyError) as exc:
        raise SettingError(f"cannot start: {one_line(exc)}") from exc
    config = uvicorn_config(app.web, settings)
    install_query_redaction()  # after uvicorn's Config, which sets up its loggers
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again; both end
    # up here as KeyboardInterrupt so the parts stop in order and the exit is clean.
    previous = signal.signal(signal.SIGTERM, interrupt)
    app.start()
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        app.stop()
        signal.signal(signal.SIGTERM, previous)
