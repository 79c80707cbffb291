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


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = read_notebook()

    assert [([], None)] * len(code_cells(notebook)) == [
        (cell.outputs, cell.execution_count) for cell in code_cells(notebook)
    ]


def test_the_notebook_is_valid_nbformat() -> None:
    nbformat.validate(read_notebook())


@pytest.mark.slow
def test_the_what_if_notebook_runs_without_an_error(kernel: str) -> None:
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
