"""The exit codes of the ``labelsync`` command: one table, read by the code and by its help.

No click or rich here, so the entry point can report a missing ``cli`` extra
with a documented code before importing either.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen

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
    "exit_codes_help",
]


@frozen
class ExitCode:
    """One exit code: its number, a short name for the help, and what it means."""

    code: int
    short: str
    meaning: str


EXIT_OK: Final = 0
"""Success."""
EXIT_FAILED: Final = 1
"""Any other failure labelsync reports on purpose (a `LabelSyncError`), or a missing extra."""
EXIT_USAGE: Final = 2
"""Bad usage or bad input: a wrong option, a missing file, malformed JSON, an unknown id."""
EXIT_PERMISSION_DENIED: Final = 3
"""The actor may not do this (R1): not an admin User of the tenant."""
EXIT_SUPERSEDED: Final = 4
"""The push job was superseded by a newer push of the same tenant and writes nothing more."""
EXIT_STORAGE: Final = 5
"""The database file failed: damaged, read-only, full (or a size limit), or locked too long."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted with Ctrl-C (128 + SIGINT, as shells report it); a push stays resumable."""
EXIT_TERMINATED: Final = 143
"""Stopped by SIGTERM (128 + SIGTERM) during a push, e.g. by a service manager; resumable."""

EXIT_CODES: Final[tuple[ExitCode, ...]] = (
    ExitCode(EXIT_OK, "ok", "success"),
    ExitCode(EXIT_FAILED, "failed", "any other labelsync error, or the cli extra is missing"),
    ExitCode(EXIT_USAGE, "bad usage or input", "an option, a file, bad JSON, an unknown id"),
    ExitCode(
        EXIT_PERMISSION_DENIED, "permission denied", "the actor is not an admin of the tenant"
    ),
    ExitCode(EXIT_SUPERSEDED, "job superseded", "a newer push started; this one writes nothing"),
    ExitCode(EXIT_STORAGE, "storage error", "the database is damaged, read-only, full or locked"),
    ExitCode(EXIT_INTERRUPTED, "interrupted", "Ctrl-C; an interrupted push can be resumed"),
    ExitCode(EXIT_TERMINATED, "terminated", "SIGTERM during a push, which can be resumed"),
)
"""Every exit code the command uses on purpose, in order; the help lists exactly these."""


def exit_codes_help() -> str:
    """The exit codes as the ``Exit codes:`` paragraph of the help, one per line."""
    lines = ["Exit codes:"]
    lines.extend(f"  {exit.code:>3}  {exit.short}: {exit.meaning}" for exit in EXIT_CODES)
    return "\n".join(lines)
