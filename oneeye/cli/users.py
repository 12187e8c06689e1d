"""``oneeye users``: who can log in, and API keys; needs only the database."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from oneeye.cli.common import (
    LazyChoice,
    SettingError,
    data_dir_option,
    one_line,
    serve_settings,
    stderr,
)

if TYPE_CHECKING:
    from oneeye.services.auth import AuthService


def _roles() -> Sequence[str]:
    from oneeye.services.auth import ROLES

    return ROLES


def _key_roles() -> Sequence[str]:
    from oneeye.services.auth import KEY_ROLES

    return KEY_ROLES


@click.group()
@data_dir_option
@click.pass_context
def users(ctx: click.Context, data_dir: Path | None) -> None:
    """Manage who can log in, and API keys; needs only the database (the server may run)."""
    from sqlalchemy.exc import SQLAlchemyError

    from oneeye.services.auth import AuthService
    from oneeye.store.db import Database, DatabaseError

    settings = serve_settings(data_dir)
    try:
        db = Database(settings.resolved_database_url())
        db.migrate()
    except (DatabaseError, SQLAlchemyError) as exc:
        raise SettingError(f"cannot open the database: {one_line(exc)}") from exc
    ctx.call_on_close(db.close)
    ctx.obj = AuthService.from_settings(db, settings.server)


def _auth(ctx: click.Context) -> AuthService:
    from oneeye.services.auth import AuthService

    auth = ctx.obj
    assert isinstance(auth, AuthService)
    return auth


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.BadParameter("no password on standard input", param_hint="--password-stdin")
        return line
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    assert isinstance(password, str)
    return password


def _user_change(action: Callable[[], object]) -> None:
    from oneeye.services.auth import UserError

    try:
        action()
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
role_option = click.option(
    "--role", type=LazyChoice(_roles), required=True, help="What they may see and do."
)


@users.command("add")
@click.argument("name")
@role_option
@password_stdin_option
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a user NAME with a role; asks for the password (at least 10 characters)."""
    password = _new_password(password_stdin)
    _user_change(lambda: _auth(ctx).create_user(name, password, role, actor="system:cli"))
    click.echo(f"added {role} {name}")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List the users: name, role, whether they may log in, when they were added."""
    for user in _auth(ctx).users():
        state = "active" if user.active else "inactive"
        click.echo(f"{user.username}\t{user.role}\t{state}\t{user.created_at:%Y-%m-%d %H:%M}")


@users.command("reset-password")
@click.argument("name")
@password_stdin_option
@click.pass_context
def users_reset_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Give user NAME a new password (asked for) and end their sessions."""
    auth = _auth(ctx)
    _user_change(lambda: auth.user_named(name))
    password = _new_password(password_stdin)
    _user_change(lambda: auth.set_password(name, password, actor="system:cli"))
    click.echo(f"new password set for {name}; their sessions have ended")


@users.command("api-key")
@click.argument("name")
@click.option(
    "--role",
    type=LazyChoice(_key_roles),
    required=True,
    help="What it may see and do; edge: a camera host's key (gallery, its cameras, snapshots).",
)
@click.option(
    "--edge",
    "edge_id",
    default=None,
    help="With --role edge (required there): the edge's id, also its broker user name.",
)
@click.pass_context
def users_api_key(ctx: click.Context, name: str, role: str, edge_id: str | None) -> None:
    """Create an API key called NAME with a role and print it, once.

    Machines send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    """
    created: list[str] = []
    _user_change(
        lambda: created.append(
            _auth(ctx).create_api_key(name, role, edge_id=edge_id, actor="system:cli")[1]
        )
    )
    click.echo(created[0])
    stderr().print(
        f"API key {name!r} ({role}) created; it is shown only this once.", highlight=False
    )
