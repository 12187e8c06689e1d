"""The layers of DESIGN.md hold: imports flow downward only, and the edge names no concrete bus.

Layers, bottom up: ``types``, ``errors``, ``config``, ``redact``, ``metrics``, ``logs`` <-
``vision``, ``bus``, ``store`` <- ``gallery``, ``video``, ``compat`` <- ``services`` <- ``web``
<- ``app``, ``edge_app``, ``cli``.
A module may import its own layer's rooms only where listed in ``SIDEWAYS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import oneeye

PACKAGE = Path(oneeye.__file__).parent

LAYER = {
    "types": 0,
    "errors": 0,
    "config": 0,
    "redact": 0,
    "metrics": 0,
    "logs": 0,
    "vision": 1,
    "bus": 1,
    "store": 1,
    "gallery": 2,
    "video": 2,
    "compat": 2,
    "services": 3,
    "web": 4,
    "app": 5,
    "edge_app": 5,
    "cli": 5,
}
SIDEWAYS = {("video", "gallery"), ("cli", "app"), ("cli", "edge_app")}
"""Same-layer imports that are part of the design: the camera pipeline searches the gallery;
the command line starts the two composition roots."""

EDGE = ("edge_app.py", "services/edge")
CONCRETE_BUSES = ("oneeye.bus.mqtt", "oneeye.bus.memory")


def sources() -> list[Path]:
    """Every product module but the database migrations (they are Alembic's, run by it)."""
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def oneeye_imports(path: Path) -> list[str]:
    """The ``oneeye...`` modules ``path`` imports, at the top or inside functions."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("oneeye."))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.startswith("oneeye.")
        ):
            found.append(node.module)
    return found


def room(path: Path) -> str:
    """The top-level room of a module: ``vision`` for ``oneeye/vision/images.py``."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_room_has_a_layer() -> None:
    rooms = {room(p) for p in sources()} - {"__init__"}
    assert rooms <= set(LAYER), f"rooms without a layer in this test: {rooms - set(LAYER)}"


def violations(here: str, imports: list[str]) -> list[str]:
    """The imports of a module in room ``here`` that break the layering."""
    wrong = []
    for module in imports:
        there = module.split(".")[1]
        if there not in LAYER or there == here:
            continue
        if LAYER[there] > LAYER[here]:
            wrong.append(f"{module} (up: layer {LAYER[there]} from {LAYER[here]})")
        elif LAYER[there] == LAYER[here] and (here, there) not in SIDEWAYS:
            wrong.append(f"{module} (sideways, not in SIDEWAYS)")
    return wrong


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_downward(path: Path) -> None:
    here = room(path)
    if here == "__init__":
        return
    wrong = violations(here, oneeye_imports(path))
    assert not wrong, f"{path.relative_to(PACKAGE)} imports {', '.join(wrong)}"


def test_the_edge_names_no_concrete_bus() -> None:
    edge = [p for p in sources() if str(p.relative_to(PACKAGE)).startswith(EDGE)]
    assert edge, "the edge's modules moved: update EDGE"
    named = {
        f"{p.relative_to(PACKAGE)} -> {m}"
        for p in edge
        for m in oneeye_imports(p)
        if m.startswith(CONCRETE_BUSES)
    }
    assert not named, f"the edge must make its bus with oneeye.bus.make_bus: {sorted(named)}"


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a store module importing a service (even inside a function),
    or the gallery importing the camera pipeline, is reported; the pipeline searching the
    gallery is not."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f() -> None:\n    from oneeye.services.alerts import AlertService\n")
    assert violations("store", oneeye_imports(bad)) == [
        "oneeye.services.alerts (up: layer 3 from 1)"
    ]
    assert violations("gallery", ["oneeye.video.pipeline"]) == [
        "oneeye.video.pipeline (sideways, not in SIDEWAYS)"
    ]
    assert violations("video", ["oneeye.gallery.index", "oneeye.types"]) == []
