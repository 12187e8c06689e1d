"""The ``oneeye`` command. The only place in OneEye that exits the process.

One module per command group (``enrol``, ``identify``, ``watch``, ``serve``, ``edge``,
``users``, ``compat``); each imports what is heavy (numpy, dlib, onnxruntime, SQLAlchemy,
FastAPI) inside the command that needs it, so ``oneeye --help`` answers at once.

Exit codes: 0 success, 1 the work ran but something failed (a photo refused, a file
unreadable), 2 bad arguments (one line on stderr).
"""

from __future__ import annotations

import logging

import click

from oneeye import __version__
from oneeye.cli.compat import compat
from oneeye.cli.edge import edge
from oneeye.cli.enrol import enroll
from oneeye.cli.identify import identify
from oneeye.cli.serve import serve
from oneeye.cli.users import users
from oneeye.cli.watch import watch
from oneeye.errors import OneEyeError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oneeye")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """OneEye: self-hosted, real-time face identification."""
    from oneeye.config import Settings
    from oneeye.logs import configure_logging

    level = logging.WARNING - 10 * min(verbose, 2)
    settings = Settings()
    configure_logging(level, settings.log.format)
    # httpx logs every request's full URL at INFO: webhook tokens, account ids in the bank
    # API's paths. OneEye's own lines name the host only.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    ctx.obj = settings


for command in (enroll, identify, watch, serve, edge, users, compat):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad arguments give one line on stderr and exit code 2.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    try:
        result = cli.main(args=argv, prog_name="oneeye", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"oneeye: error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("oneeye: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"oneeye: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except OneEyeError as exc:
        click.echo(f"oneeye: error: {exc}", err=True)
        return 1
    except Exception as exc:
        from pydantic import ValidationError  # imported here: pydantic is slow to import

        if not isinstance(exc, ValidationError):
            raise
        problems = "; ".join(
            f"ONEEYE_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        click.echo(f"oneeye: error: bad setting: {problems}", err=True)
        return 2
    return result if isinstance(result, int) else 0
