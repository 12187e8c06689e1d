"""Services speak to the database through ``oneeye.store.repos`` only: this lists which
``oneeye.services`` modules still import ``oneeye.store.models`` and fails when one is added
beyond the allowed list (or when an allowed one no longer needs to be on it)."""

from __future__ import annotations

import ast
from pathlib import Path

import oneeye.services

MODELS = "oneeye.store.models"

ALLOWED: dict[str, str] = {}
"""Modules (relative to the repository root) that may still import the ORM, each with why."""


def _is_models(name: str) -> bool:
    return name == MODELS or name.startswith(MODELS + ".")


def _imports_models(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        if any(_is_models(name) for name in names):
            return True
    return False


def _services_importing_models() -> set[str]:
    package = Path(oneeye.services.__file__).parent
    root = package.parent.parent
    return {
        path.relative_to(root).as_posix()
        for path in sorted(package.rglob("*.py"))
        if _imports_models(path)
    }


def test_services_reach_the_orm_only_through_repositories() -> None:
    found = _services_importing_models()
    added = found - set(ALLOWED)
    assert not added, (
        f"these services import {MODELS}; give them a repository in oneeye/store/repos "
        f"(or add them to ALLOWED with a reason): {sorted(added)}"
    )


def test_the_allowed_list_holds_only_modules_that_still_need_it() -> None:
    found = _services_importing_models()
    stale = set(ALLOWED) - found
    assert not stale, f"these no longer import {MODELS}: remove them from ALLOWED: {sorted(stale)}"


def test_the_check_sees_every_form_of_the_import(tmp_path: Path) -> None:
    forms = {
        "from oneeye.store.models import Person\n": True,
        "import oneeye.store.models\n": True,
        "from oneeye.store import models\n": True,
        "def f() -> None:\n    from oneeye.store.models import Person\n": True,
        "from oneeye.store.repos import people\n": False,
        "from oneeye.store import db\n": False,
    }
    for source, expected in forms.items():
        path = tmp_path / "module.py"
        path.write_text(source, encoding="utf-8")
        assert _imports_models(path) is expected, source
