"""The core (model, rules, changes, jobs, exceptions) imports nothing above it.

The layers, bottom up: the core values and rules; the ports, the push job and
the service; the adapters, io, what-if, the display layer and the command.
Renderers reach the core's values through `labelsync._repr.html`, registered
by type, so no core module names display code, not even inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "labelsync"

CORE = (
    "model", "rules", "changes", "jobs", "exceptions", "audience", "coverage", "presets", "policy",
    "_provenance",
    "directory",
)  # fmt: skip
"""The core modules; `jobs` joins once the push job's decisions move into the core."""

BELOW_OR_BESIDE = {f"labelsync.{name}" for name in (*CORE, "_validate", "_repr")}
"""What a core module may import from labelsync: the core itself and its two helpers."""

IO_MODULES = {"sqlite3", "psycopg", "psycopg_pool", "socket", "subprocess", "click", "rich"}


def labelsync_imports(source: str) -> set[str]:
    """Every module of labelsync that `source` imports, at any depth (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "labelsync":
                # `from labelsync import _validate as v` imports the submodule.
                found.update(f"labelsync.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def violations(source: str) -> list[str]:
    """The imports of `source` that a core module may not make, sorted."""
    bad = set()
    for module in labelsync_imports(source):
        top = module.split(".")[0]
        above = top == "labelsync" and ".".join(module.split(".")[:2]) not in BELOW_OR_BESIDE
        if above or top in IO_MODULES:
            bad.add(module)
    return sorted(bad)


def core_modules() -> list[Path]:
    return [SRC / f"{name}.py" for name in CORE if (SRC / f"{name}.py").exists()]


@pytest.mark.parametrize("path", core_modules(), ids=lambda path: path.stem)
def test_a_core_module_imports_nothing_above_the_core(path: Path) -> None:
    assert [] == violations(path.read_text(encoding="utf-8"))


def test_the_core_helpers_import_only_the_core_too() -> None:
    for name in ("_validate", "_repr"):
        assert [] == violations((SRC / f"{name}.py").read_text(encoding="utf-8")), name


def test_the_walk_sees_an_import_hidden_in_a_function() -> None:
    source = (
        "from labelsync import _validate as v\n"
        "from labelsync.model import User\n"
        "def _repr_html_(self):\n"
        "    from labelsync._display import tenant_html\n"
        "    import labelsync.whatif\n"
        "    import sqlite3\n"
    )

    assert ["labelsync._display", "labelsync.whatif", "sqlite3"] == violations(source)


def test_the_display_layer_is_what_registers_the_core_renderers() -> None:
    from labelsync import _display, _repr
    from labelsync.changes import Changes
    from labelsync.model import Tenant

    assert _display.changes_html is _repr.html.dispatch(Changes)
    assert _display.tenant_html is _repr.html.dispatch(Tenant)


def test_whatif_registers_its_own_renderer() -> None:
    from labelsync import _repr, whatif

    assert whatif._comparison_html is _repr.html.dispatch(whatif.Comparison)
