"""The product never imports benchmark code: nothing under ``oneeye/`` names ``bench``."""

from __future__ import annotations

import ast
from pathlib import Path

import oneeye

PRODUCT = Path(oneeye.__file__).resolve().parent


def _bench_imports(source: Path) -> list[str]:
    """The ``bench`` modules a source file imports, as ``file:line module``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found.extend(
            f"{source.relative_to(PRODUCT.parent)}:{node.lineno} {name}"
            for name in names
            if name == "bench" or name.startswith("bench.")
        )
    return found


def test_the_product_imports_no_benchmark_code() -> None:
    sources = sorted(PRODUCT.rglob("*.py"))
    assert len(sources) > 50  # the walk found the package, not an empty folder
    offenders = [hit for source in sources for hit in _bench_imports(source)]
    assert offenders == []


def test_the_product_has_no_benchmark_package() -> None:
    assert not (PRODUCT / "bench").exists()
    assert not (PRODUCT / "video" / "synth.py").exists()
