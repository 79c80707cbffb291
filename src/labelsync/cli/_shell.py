"""Wiring for the commands: the service over a SQLite file, a push run with signals, errors.

Every failure labelsync reports on purpose ends as one line on stderr and an
exit code from the table in `labelsync.cli._exits`; an unknown tenant, User or
job id comes with the closest known ids ("did you mean ...?").
"""

from __future__ import annotations

import contextlib
import difflib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from labelsync.cli._exits import (
    EXIT_ALREADY_REVERTED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PERMISSION_DENIED,
    EXIT_STORAGE,
    EXIT_SUPERSEDED,
    EXIT_TERMINATED,
    EXIT_USAGE,
)
from labelsync.cli._output import progress_display, resume_hint
from labelsync.exceptions import (
    AlreadyReverted,
    InvalidInput,
    JobSuperseded,
    LabelSyncError,
    PermissionDenied,
    StorageError,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.model import Defaults, Permission, Tenant
from labelsync.policy import PushMode
from labelsync.ports import PushJob

if TYPE_CHECKING:
    from labelsync.adapters.sqlite import SqliteStore
    from labelsync.service import LabelSync

_F = TypeVar("_F", bound=Callable[..., Any])

DEFAULT_BATCH = 500


class Failure(click.ClickException):
    """A failure to report as one line with `exit_code`; raised by commands, shown by `main`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED, *, kind: str = "error") -> None:
        super().__init__(message)
        self.code = exit_code
        self.kind = kind


def one_line(text: str) -> str:
    # A multi-problem message ("snapshot x has 2 problems:\n  a\n  b") becomes "...: a; b".
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    head, rest = lines[0], lines[1:]
    return f"{head} {'; '.join(rest)}" if rest else head


def exit_code_of(error: LabelSyncError) -> int:
    if isinstance(error, StorageError):
        return EXIT_STORAGE
    if isinstance(error, AlreadyReverted):
        return EXIT_ALREADY_REVERTED
    if isinstance(error, InvalidInput):
        return EXIT_USAGE
    if isinstance(error, PermissionDenied):
        return EXIT_PERMISSION_DENIED
    if isinstance(error, JobSuperseded):
        return EXIT_SUPERSEDED
    return EXIT_FAILED


def fail(prefix: str, message: str, code: int, kind: str = "error") -> NoReturn:
    click.echo(f"{prefix}: {kind}: {one_line(message)}", err=True)
    sys.exit(code)


def os_message(error: OSError) -> str:
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or error}"


# -- wiring -----------------------------------------------------------------------------------


@contextlib.contextmanager
def service(db: Path, *, read_only: bool = False, create: bool = False) -> Iterator[LabelSync]:
    """A `LabelSync` over the SQLite file `db` and the system clock, closed on the way out.

    `read_only` opens the file so that nothing can be written to it; only with
    `create` may a new or empty file become a labelsync database.
    """
    from labelsync.adapters.clock import SystemClock
    from labelsync.service import LabelSync

    with sqlite_store(db, read_only=read_only, create=create) as store:
        try:
            yield LabelSync(store=store, clock=SystemClock())
        except (UnknownTenant, UnknownUser, UnknownJob) as error:
            # Suggest while the store is open: it knows which ids exist.
            raise Failure(f"{error}{did_you_mean(error, store)}", EXIT_USAGE) from None


def did_you_mean(error: UnknownTenant | UnknownUser | UnknownJob, store: SqliteStore) -> str:
    """``; did you mean 'acme'?`` naming the known ids closest to the unknown one, or nothing."""
    given = str(error.value)
    known: Sequence[str]
    if isinstance(error, UnknownTenant):
        known = store.tenant_ids()
    elif isinstance(error, UnknownJob):
        known = [job.id for job in store.list_jobs()]
    elif error.tenant_id in store.tenant_ids():
        known = [user.id for user in store.get_tenant(str(error.tenant_id)).users]
    else:
        known = ()
    return did_you_mean_text(given, known)


def did_you_mean_text(given: str, known: Sequence[str]) -> str:
    """The suggestion for `given` among `known`: ids it starts, else the closest spellings."""
    # A job id is 32 hex digits; an operator often pastes only its first few.
    matches = [candidate for candidate in known if given and candidate.startswith(given)]
    if not matches:
        matches = difflib.get_close_matches(given, known, n=3, cutoff=0.6)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(repr(match) for match in matches[:3]) + "?"


@contextlib.contextmanager
def sqlite_store(db: Path, *, read_only: bool, create: bool) -> Iterator[SqliteStore]:
    from labelsync.adapters.sqlite import SqliteStore

    try:
        store = SqliteStore(db, read_only=read_only, create=create, busy_timeout=busy_timeout())
    except InvalidInput as error:
        if error.field != "path":
            raise
        raise InvalidInput("--db", os.fspath(db), error.problem) from None
    with store:
        yield store


BUSY_TIMEOUT_VARIABLE = "LABELSYNC_BUSY_TIMEOUT"


def busy_timeout() -> float:
    """Seconds a command waits for another process's write lock: 30, or LABELSYNC_BUSY_TIMEOUT."""
    text = os.environ.get(BUSY_TIMEOUT_VARIABLE)
    if text is None:
        return 30.0
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(BUSY_TIMEOUT_VARIABLE, text, "must be a number of seconds") from None


def load_snapshot(path: Path) -> Tenant:
    from labelsync.io import load

    return load(path)


class Terminated(Exception):
    """SIGTERM arrived while a push ran."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Let SIGTERM stop a push the way Ctrl-C does, so it too says how to resume."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_job(svc: LabelSync, job: PushJob, db: Path, batch_size: int) -> PushJob:
    """Run (or resume) `job` with a progress display; Ctrl-C or SIGTERM leave it resumable."""
    # The batch in flight when a signal arrives is rolled back; committed ones are checkpointed.
    hint = f"resume with: {resume_hint(job.id, db)}"
    try:
        with sigterm_interrupts(), progress_display(job) as progress:
            report = svc.run_push(job.id, batch_size=batch_size, progress=progress)
    except KeyboardInterrupt:
        raise Failure(
            f"push stopped by Ctrl-C; {hint}", EXIT_INTERRUPTED, kind="interrupted"
        ) from None
    except Terminated:
        raise Failure(
            f"push stopped by SIGTERM; {hint}", EXIT_TERMINATED, kind="terminated"
        ) from None
    return report.job


def defaults_of(inbox: bool | None, sent: bool | None) -> Defaults:
    """Both checkboxes, given explicitly: an unchecked label is deselected for every User (R4)."""
    if inbox is None or sent is None:
        name = "inbox" if inbox is None else "sent"
        raise click.UsageError(
            f"Missing option '--{name}/--no-{name}': say whether {name.title()} is checked; "
            f"--no-{name} deselects it for every User."
        )
    return Defaults(inbox=inbox, sent=sent)


mode_option = click.option(
    "--mode",
    type=click.Choice([mode.name for mode in PushMode], case_sensitive=False),
    default=PushMode.OVERRIDE.name,
    show_default=True,
    help="OVERRIDE every User's choice; KEEP_USER_CHOICES leaves labels a User set "
    "themself; NEW_USERS_ONLY only Users no push or onboarding covered (R16).",
)


existing_db = click.option(
    "--db",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The labelsync SQLite file.",
)
json_format = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json (one document on stdout) for programs.",
)
batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Users per committed batch (a checkpoint after each).",
)


def label_options(command: _F) -> _F:
    command = click.option(
        "--sent/--no-sent", default=None, help="Sent checked or unchecked (required)."
    )(command)
    return click.option(
        "--inbox/--no-inbox", default=None, help="Inbox checked or unchecked (required)."
    )(command)


@contextlib.contextmanager
def suggesting_admins(svc: LabelSync, tenant_id: str, actor_id: str) -> Iterator[None]:
    """Add "did you mean ...?" naming the tenant's admins to a refused `actor_id`."""
    try:
        yield
    except PermissionDenied as error:
        try:
            svc.user(tenant_id, actor_id)
        except UnknownUser:
            admins = [
                user.id for user in svc.tenant(tenant_id).users if user.can(Permission.ADMIN_ACCESS)
            ]
            hint = did_you_mean_text(actor_id, admins)
            raise Failure(f"{error}{hint}", EXIT_PERMISSION_DENIED) from None
        raise
