"""Execute docs/what-if.ipynb in place with this interpreter, so its stored outputs are current.

Run it after changing the notebook or what it shows (``python scripts/execute_notebook.py``);
tests/test_notebook.py fails while the stored outputs differ from a fresh run.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOTEBOOK = DOCS / "what-if.ipynb"
KERNEL = "labelsync-notebook"


def execute(path: Path = NOTEBOOK) -> Any:
    """The notebook at `path`, executed top to bottom with a kernel running this interpreter."""
    import os

    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as home:
        spec = Path(home) / "jupyter" / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3",
                    "language": "python",
                }
            ),
            encoding="utf-8",
        )
        os.environ["JUPYTER_PATH"] = str(Path(home) / "jupyter")
        os.environ["IPYTHONDIR"] = str(Path(home) / "ipython")
        os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        notebook = nbformat.read(path, as_version=4)
        kernelspec = notebook.metadata.get("kernelspec")
        NotebookClient(
            notebook,
            kernel_name=KERNEL,
            timeout=120,
            allow_errors=False,
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        if kernelspec is not None:  # keep the notebook's own kernel, not this throwaway one
            notebook.metadata["kernelspec"] = kernelspec
        return notebook


def main() -> None:
    import nbformat

    nbformat.write(execute(), NOTEBOOK)
    print(f"executed {NOTEBOOK}")


if __name__ == "__main__":
    main()
