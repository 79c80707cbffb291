"""The example notebook docs/what-if.ipynb runs top to bottom, so it cannot rot (B1)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

DOCS = Path(__file__).parent.parent / "docs"
NOTEBOOK = DOCS / "what-if.ipynb"
KERNEL = "labelsync-tests"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec running this interpreter, so the notebook sees the labelsync under test.

    A fresh venv needs no ``ipykernel install``, and a ``python3`` kernel a user
    installed elsewhere cannot be picked up instead.
    """
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "labelsync tests",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no profile of the user's
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # the paths jupyter_core moves to
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL


def read_notebook() -> Any:
    read: Callable[..., Any] = nbformat.read  # nbformat is untyped
    return read(NOTEBOOK, as_version=4)


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def comparable(notebook: Any) -> list[list[tuple[str, str]]]:
    """Per code cell, each output as (kind, text): streams, HTML and plain text in full.

    A PNG is compared by its presence only: its bytes change with matplotlib's version.
    """
    cells = []
    for cell in code_cells(notebook):
        outputs: list[tuple[str, str]] = []
        for output in cell.outputs:
            if output.output_type == "stream":
                outputs.append((output.name, output.text))
                continue
            data = output.get("data", {})
            for kind in sorted(data):
                outputs.append((kind, "<image>" if kind.startswith("image/") else data[kind]))
        cells.append(outputs)
    return cells


def test_the_notebook_is_stored_executed_in_order() -> None:
    notebook = read_notebook()
    cells = code_cells(notebook)

    assert list(range(1, len(cells) + 1)) == [cell.execution_count for cell in cells]
    assert [] == [cell.source for cell in cells if not cell.outputs and cell.source.strip()]


def test_the_notebook_is_valid_nbformat() -> None:
    nbformat.validate(read_notebook())


@pytest.mark.slow
def test_the_what_if_notebook_runs_and_matches_its_stored_outputs(kernel: str) -> None:
    """A fresh run shows what the site shows; else run scripts/execute_notebook.py and commit."""
    stored = comparable(read_notebook())
    notebook = read_notebook()
    client = NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": str(DOCS)}},  # it loads ../examples/acme.json
    )

    client.execute()  # raises CellExecutionError naming the cell if any cell raises

    outputs = [output for cell in code_cells(notebook) for output in cell.outputs]
    assert [] == [output for output in outputs if output.output_type == "error"]
    kinds = {kind for output in outputs for kind in output.get("data", {})}
    assert {"text/html", "image/png"} <= kinds
    html = "".join(output.get("data", {}).get("text/html", "") for output in outputs)
    assert "<b>What-if</b> for acme: 8 Users, 3 candidates" in html
    assert stored == comparable(notebook)
