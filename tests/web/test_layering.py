"""The web layer calls services only: no module of ``oneeye.web`` imports the ORM models
(``oneeye.store.models``) or SQLAlchemy, so no page or route runs SQL or holds a row."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import oneeye.web

WEB = Path(oneeye.web.__file__).parent
FORBIDDEN = ("oneeye.store.models", "sqlalchemy")


def imported_modules(source: str) -> list[str]:
    """Every module a Python source imports (``from a import b`` counts ``a`` and ``a.b``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_forbidden(module: str) -> bool:
    """Whether importing ``module`` reaches into the database layer's internals."""
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import sqlalchemy", True),
        ("from sqlalchemy.orm import Session", True),
        ("from oneeye.store.models import Person", True),
        ("from oneeye.store import models", True),
        ("import oneeye.store.models as m", True),
        ("from oneeye.store.photos import check_key", False),
        ("from oneeye.services.views import customer_rows", False),
    ],
)
def test_the_check_sees_every_way_to_import(source: str, expected: bool) -> None:
    assert any(is_forbidden(m) for m in imported_modules(source)) is expected


def test_web_imports_no_orm_model_and_no_sqlalchemy() -> None:
    modules = sorted(WEB.rglob("*.py"))
    assert len(modules) > 20, modules  # the package was found
    offenders = {
        str(path.relative_to(WEB.parent.parent)): bad
        for path in modules
        if (bad := [m for m in imported_modules(path.read_text()) if is_forbidden(m)])
    }
    assert offenders == {}, f"the web layer must call services, not the database: {offenders}"
