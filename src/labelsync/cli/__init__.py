"""The ``labelsync`` command: a demo, JSON snapshots in and out, preview, push, resume, revert.

`run` is the console script. It checks for the ``cli`` extra (click and rich)
before anything imports them, so a library-only install gets one line naming
the extra instead of a traceback. The click group itself is `main`, imported
on first use from `labelsync.cli._commands`; the exit codes come from one
table (`EXIT_CODES`), which the help lists.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from labelsync.cli._exits import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PERMISSION_DENIED,
    EXIT_STORAGE,
    EXIT_SUPERSEDED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    ExitCode,
)

if TYPE_CHECKING:
    from labelsync.cli._commands import main

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PERMISSION_DENIED",
    "EXIT_STORAGE",
    "EXIT_SUPERSEDED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "ExitCode",
    "main",
    "run",
]

_EXTRA = ("click", "rich")


def run() -> None:
    """The ``labelsync`` script: the command, or one line if the ``cli`` extra is missing."""
    for module in _EXTRA:
        try:
            __import__(module)
        except ImportError:
            sys.stderr.write(
                f"labelsync: error: the command needs {module!r}, which is not installed; "
                "install it with: pip install 'labelsync[cli]'\n"
            )
            sys.exit(EXIT_FAILED)
    from labelsync.cli._commands import main

    main()


def __getattr__(name: str) -> Any:
    # `main` imports click; a library-only install can still import the exit codes.
    if name == "main":
        from labelsync.cli._commands import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
