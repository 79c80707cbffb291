"""The ``labelsync`` command: a demo, JSON snapshots in and out, preview, push, resume and revert.

The only module that imports click and rich (the ``cli`` extra). Every failure
labelsync reports on purpose ends as one line on stderr and an exit code that
says what kind of failure it was (`EXIT_CODES`); a push interrupted with Ctrl-C
leaves a resumable job and says how to resume it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import re
import shlex
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, TypeVar, cast

import click

from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    JobSuperseded,
    LabelSyncError,
    PermissionDenied,
)
from labelsync.model import (
    Defaults,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.ports import JobStatus, PushJob

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from labelsync.adapters.sqlite import SqliteStore
    from labelsync.changes import Changes, Summary
    from labelsync.service import LabelSync

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_PERMISSION_DENIED",
    "EXIT_SUPERSEDED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "main",
]

EXIT_FAILED: Final = 1
"""Any other failure labelsync reports on purpose (a `LabelSyncError`)."""
EXIT_USAGE: Final = 2
"""Bad usage or bad input: a wrong option, a missing file, malformed JSON, an unknown id."""
EXIT_PERMISSION_DENIED: Final = 3
"""The actor may not do this (R1): not an admin User of the tenant."""
EXIT_SUPERSEDED: Final = 4
"""The push job was superseded by a newer push of the same tenant and writes nothing more."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted with Ctrl-C (128 + SIGINT, as shells report it); a push stays resumable."""
EXIT_TERMINATED: Final = 143
"""Stopped by SIGTERM (128 + SIGTERM) during a push, e.g. by a service manager; resumable."""

EXIT_CODES: Final[Mapping[int, str]] = {
    0: "success",
    EXIT_FAILED: "failed (any other labelsync error)",
    EXIT_USAGE: "bad usage or input: an option, a missing file, malformed JSON, an unknown id",
    EXIT_PERMISSION_DENIED: "permission denied: the actor is not an admin User of the tenant",
    EXIT_SUPERSEDED: "the push job was superseded by a newer push and writes nothing more",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); an interrupted push can be resumed",
    EXIT_TERMINATED: "stopped by SIGTERM during a push, which can be resumed",
}

_F = TypeVar("_F", bound=Callable[..., Any])

_DEFAULT_BATCH = 500
_DEMO_USERS = 10_000


# -- errors -----------------------------------------------------------------------------------


class _Failure(click.ClickException):
    """A failure to report as one line with `exit_code`; raised by commands, shown by `main`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED, *, kind: str = "error") -> None:
        super().__init__(message)
        self.code = exit_code
        self.kind = kind


def _one_line(text: str) -> str:
    # A multi-problem message ("snapshot x has 2 problems:\n  a\n  b") becomes "...: a; b".
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    head, rest = lines[0], lines[1:]
    return f"{head} {'; '.join(rest)}" if rest else head


def _exit_code(error: LabelSyncError) -> int:
    if isinstance(error, InvalidInput):
        return EXIT_USAGE
    if isinstance(error, PermissionDenied):
        return EXIT_PERMISSION_DENIED
    if isinstance(error, JobSuperseded):
        return EXIT_SUPERSEDED
    return EXIT_FAILED


def _fail(prefix: str, message: str, code: int, kind: str = "error") -> NoReturn:
    click.echo(f"{prefix}: {kind}: {_one_line(message)}", err=True)
    sys.exit(code)


class _LabelSyncGroup(click.Group):
    """The top-level group; turns every expected failure into one stderr line and an exit code."""

    def main(  # type: ignore[override]  # always exits, like standalone mode
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        name = prog_name or "labelsync"
        try:
            result = super().main(args, name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else self._where(name, args)
            hint = f" (see '{where} --help')"
            _fail(where, error.format_message() + hint, EXIT_USAGE)
        except _Failure as error:
            _fail(name, error.format_message(), error.code, error.kind)
        except click.ClickException as error:
            _fail(name, error.format_message(), error.exit_code)
        except click.Abort:
            _fail(name, "stopped by Ctrl-C", EXIT_INTERRUPTED, "interrupted")
        except LabelSyncError as error:
            _fail(name, str(error), _exit_code(error))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
            _fail(name, _os_message(error), EXIT_USAGE)
        except BrokenPipeError:
            # The reader went away (`labelsync preview --format csv | head`): stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_FAILED)
        except OSError as error:
            _fail(name, _os_message(error), EXIT_FAILED)
        sys.exit(result if isinstance(result, int) else 0)

    def _where(self, name: str, args: list[str] | None) -> str:
        """``labelsync push`` for an error click's parser raised without a context."""
        words = sys.argv[1:] if args is None else args
        command = next((word for word in words if word in self.commands), None)
        return f"{name} {command}" if command else name


def _os_message(error: OSError) -> str:
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or error}"


# -- output -----------------------------------------------------------------------------------


class _TrimmedLines:
    """A text stream that drops the spaces rich pads table lines with, for piped output."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_TRAILING_SPACES.sub("\n", text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False


_TRAILING_SPACES: Final = re.compile(r" +\n")


def _console(*, stderr: bool = False) -> Console:
    """A rich console: colours and live progress on a terminal, plain text when piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, markup=False, emoji=False, highlight=False)
    # rich's 80 columns would fold the status table of a pipe; tables keep their own width.
    width = None if os.environ.get("COLUMNS") else 200
    return Console(
        file=cast("IO[str]", _TrimmedLines(stream)),
        markup=False,
        emoji=False,
        highlight=False,
        width=width,
    )


def _table(*columns: str, title: str | None = None, numeric_from: int = 1) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title=title,
        title_justify="left",
        title_style="bold",
    )
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index >= numeric_from else "left")
    return table


def _n(value: int) -> str:
    return f"{value:,}"


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _shell(*words: str | os.PathLike[str]) -> str:
    return " ".join(shlex.quote(os.fspath(word)) for word in words)


def _resume_hint(job_id: str, db: Path) -> str:
    return _shell("labelsync", "resume", job_id, "--db", db)


def _counts_table(users: int, counts: PushCounts) -> Table:
    """Users changed, unchanged and skipped (adding up to the roster); labels flipped or skipped."""
    unchanged = users - counts.users_changed - counts.no_mailbox
    table = _table("", "")
    table.show_header = False
    table.add_row("Users changed", _n(counts.users_changed))
    table.add_row("Users unchanged", _n(unchanged))
    table.add_row("Users skipped (no mailbox)", _n(counts.no_mailbox))
    table.add_row("Users in the roster", _n(users), end_section=True)
    table.add_row("Labels selected", _n(counts.selected))
    table.add_row("Labels deselected", _n(counts.deselected))
    table.add_row("Labels skipped (label missing)", _n(counts.label_missing))
    return table


def _summary_tables(summary: Summary) -> tuple[Table, Table]:
    """Per label: selected, deselected, unchanged, skipped by reason; and skips by reason."""
    labels = _table(
        "Label",
        "Selected",
        "Deselected",
        "Unchanged",
        "No mailbox",
        "Label missing",
        title="Counts by label",
    )
    for row in summary.labels:
        labels.add_row(
            row.label.title,
            _n(row.selected),
            _n(row.deselected),
            _n(row.unchanged),
            _n(row.no_mailbox),
            _n(row.label_missing),
        )
    skips = _table("Reason", "Skips", title="Skips by reason")
    for reason, count in summary.counts.skipped_by_reason().items():
        skips.add_row(reason.name, _n(count))
    return labels, skips


def _users_line(users: int, counts: PushCounts) -> str:
    unchanged = users - counts.users_changed - counts.no_mailbox
    return (
        f"{_n(users)} Users: {_n(counts.users_changed)} changed, {_n(unchanged)} unchanged, "
        f"{_n(counts.no_mailbox)} skipped (no mailbox)"
    )


def _audit_table(record: PushRecord) -> Table:
    c = record.counts
    table = _table("", "", title="Audit record (tenant.last_push)", numeric_from=99)
    table.show_header = False
    table.add_row("job", record.job_id)
    table.add_row("actor", record.actor_id)
    table.add_row("defaults", record.defaults.describe())
    table.add_row("started", f"{_when(record.started_at)} UTC")
    table.add_row("finished", f"{_when(record.finished_at)} UTC")
    table.add_row("roster size", _n(record.roster_size))
    table.add_row(
        "changes",
        f"{_n(c.users_changed)} Users changed: +{_n(c.selected)} labels selected, "
        f"-{_n(c.deselected)} deselected",
    )
    table.add_row("skips", f"{_n(c.no_mailbox)} no mailbox, {_n(c.label_missing)} label missing")
    return table


# -- progress ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _progress(job: PushJob) -> Iterator[Callable[[PushJob], None]]:
    """A `progress` callback for `run_push`: a rich bar on a terminal, else a line per 10%.

    The plain lines go to stderr as soon as a batch is committed (the first one
    always), so a script or a test can tell that a push has written something.
    """
    console = _console(stderr=True)
    label = f"push {job.id[:8]}"
    if console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("Users"),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(label, total=job.total, completed=job.processed)

            def advance(current: PushJob) -> None:
                bar.update(task, completed=current.processed)

            yield advance
        return

    shown = {"tenth": -1}

    def line(current: PushJob) -> None:
        tenth = current.processed * 10 // max(current.total, 1)
        if tenth > shown["tenth"] or current.processed == current.total:
            shown["tenth"] = tenth
            console.print(f"{label}: {_n(current.processed)}/{_n(current.total)} Users processed")

    yield line


# -- wiring -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _service(db: Path) -> Iterator[LabelSync]:
    """A `LabelSync` over the SQLite file `db` and the system clock, closed on the way out."""
    from labelsync.adapters.clock import SystemClock
    from labelsync.service import LabelSync

    with _store(db) as store:
        yield LabelSync(store=store, clock=SystemClock())


@contextlib.contextmanager
def _store(db: Path) -> Iterator[SqliteStore]:
    from labelsync.adapters.sqlite import SqliteStore

    try:
        store = SqliteStore(db)
    except sqlite3.DatabaseError as error:
        raise InvalidInput(
            "--db", os.fspath(db), f"cannot be opened as a labelsync SQLite file ({error})"
        ) from None
    with store:
        yield store


def _load_snapshot(path: Path) -> Tenant:
    from labelsync.io import load

    return load(path)


class _Terminated(Exception):
    """SIGTERM arrived while a push ran."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Let SIGTERM stop a push the way Ctrl-C does, so it too says how to resume."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(svc: LabelSync, job: PushJob, db: Path, batch_size: int) -> PushJob:
    """Run (or resume) `job` with a progress display; Ctrl-C or SIGTERM leave it resumable."""
    # The batch in flight when a signal arrives is rolled back; committed ones are checkpointed.
    hint = f"resume with: {_resume_hint(job.id, db)}"
    try:
        with _sigterm_interrupts(), _progress(job) as progress:
            report = svc.run_push(job.id, batch_size=batch_size, progress=progress)
    except KeyboardInterrupt:
        raise _Failure(
            f"push stopped by Ctrl-C; {hint}", EXIT_INTERRUPTED, kind="interrupted"
        ) from None
    except _Terminated:
        raise _Failure(
            f"push stopped by SIGTERM; {hint}", EXIT_TERMINATED, kind="terminated"
        ) from None
    return report.job


def _defaults(inbox: bool | None, sent: bool | None) -> Defaults:
    """Both checkboxes, given explicitly: an unchecked label is deselected for every User (R4)."""
    if inbox is None or sent is None:
        name = "inbox" if inbox is None else "sent"
        raise click.UsageError(
            f"Missing option '--{name}/--no-{name}': say whether {name.title()} is checked; "
            f"--no-{name} deselects it for every User."
        )
    return Defaults(inbox=inbox, sent=sent)


_existing_db = click.option(
    "--db",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The labelsync SQLite file.",
)
_batch_size = click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=_DEFAULT_BATCH,
    show_default=True,
    help="Users per committed batch (a checkpoint after each).",
)


def _label_options(command: _F) -> _F:
    command = click.option(
        "--sent/--no-sent", default=None, help="Sent checked or unchecked (required)."
    )(command)
    return click.option(
        "--inbox/--no-inbox", default=None, help="Inbox checked or unchecked (required)."
    )(command)


# -- commands ---------------------------------------------------------------------------------


@click.group(
    name="labelsync", cls=_LabelSyncGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="labelsync", prog_name="labelsync")
def main() -> None:
    """Push default synced mail labels (Inbox, Sent) to every User of a tenant.

    State lives in a SQLite file (--db). Start with: labelsync demo. Exit codes:
    0 ok, 1 failed, 2 bad usage or input, 3 permission denied, 4 job superseded,
    130 interrupted (a push can then be resumed).
    """


@main.command()
@click.option(
    "--users",
    type=click.IntRange(min=1),
    default=_DEMO_USERS,
    show_default=True,
    help="Users in the synthetic tenant.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to build it in (default: a new temporary file).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the tenant.")
@_batch_size
def demo(users: int, db: Path | None, seed: int, batch_size: int) -> None:
    """Build a synthetic tenant, push Inbox + Sent, show the result.

    Builds a realistic tenant (mixed Gmail, Microsoft and IMAP mailboxes, some
    Users without one) in a SQLite file, pushes Inbox + Sent as its admin with
    a progress bar, and prints the summary, the audit record and three Users'
    Email tabs: a Gmail one, a localised Microsoft one and one without a mailbox.
    """
    from labelsync.synthetic import ADMIN_ID, synthetic_tenant

    out = _console()
    temporary = db is None
    if db is None:
        db = Path(tempfile.mkdtemp(prefix="labelsync-demo-")) / "demo.db"
    defaults = Defaults(inbox=True, sent=True)
    with _service(db) as svc:
        tenant = synthetic_tenant(users, seed=seed)
        if tenant.id in svc.store.tenant_ids():
            raise _taken(db, tenant.id)
        out.print(
            f"Database: {db}" + (" (a temporary file; --db PATH picks one)" if temporary else "")
        )
        out.print(f"Tenant:   {tenant.id} ({tenant.name}), {_roster_mix(tenant.users)}")
        try:
            svc.create_tenant(tenant)
        except AlreadyExists:
            raise _taken(db, tenant.id) from None
        job = svc.start_push(tenant.id, actor_id=ADMIN_ID, defaults=defaults)
        out.print(
            f"Push:     {defaults.describe()}, by {ADMIN_ID}, to {_n(job.total)} Users "
            f"in batches of {batch_size}"
        )
        out.file.flush()
        job = _run(svc, job, db, batch_size)
        changes = svc.changes(job.id)
        last_push = svc.store.settings(tenant.id).last_push
        examples = _examples(tenant.users)
        tabs = [(title, svc.user(tenant.id, user_id)) for title, user_id in examples]

    summary = changes.summary()
    out.print(f"Pushed:   {_n(job.processed)} Users{_took(job)}")
    out.print()
    out.print(f"Summary:  {_users_line(summary.users, summary.counts)}")
    out.print()
    for table in _summary_tables(summary):
        out.print(table)
        out.print()
    if last_push is not None:
        out.print(_audit_table(last_push))
        out.print()
    out.print("Email tabs", style="bold")
    per_user = _changes_by_user(changes)
    for title, user in tabs:
        out.print()
        out.print(_email_tab_text(title, user, per_user.get(user.id, ())))
    out.print()
    out.print("Next:")
    out.print(f"  {_shell('labelsync', 'status', '--db', db)}")
    out.print(f"  {_shell('labelsync', 'export', '--db', db, '--tenant', tenant.id)}")
    out.print(
        f"  {_shell('labelsync', 'preview', '--db', db, '--tenant', tenant.id)} --inbox --no-sent"
    )


def _taken(db: Path, tenant_id: str) -> InvalidInput:
    return InvalidInput(
        "--db", os.fspath(db), f"already holds tenant {tenant_id!r}; pass a new --db path"
    )


def _roster_mix(users: Iterable[User]) -> str:
    by_provider = dict.fromkeys((*Provider, None), 0)
    total = 0
    for user in users:
        total += 1
        by_provider[user.mailbox.provider if user.mailbox else None] += 1
    parts = [
        f"{_n(count)} {provider.name.title() if provider is not Provider.IMAP else 'IMAP'}"
        for provider, count in by_provider.items()
        if provider is not None and count
    ]
    parts.append(f"{_n(by_provider[None])} without a mailbox")
    return f"{_n(total)} Users: " + ", ".join(parts)


def _examples(users: Iterable[User]) -> list[tuple[str, str]]:
    """Ids of three Users worth showing: Gmail, localised Microsoft, no mailbox (with EMAIL_SYNC).

    Among the candidates, the one with the fewest labels wins, so the tabs stay short.
    """
    best: dict[str, tuple[int, str]] = {}

    def offer(kind: str, size: int, user_id: str) -> None:
        if kind not in best or size < best[kind][0]:
            best[kind] = (size, user_id)

    for user in users:
        if not user.can(Permission.EMAIL_SYNC) or user.can(Permission.ADMIN_ACCESS):
            continue
        mailbox = user.mailbox
        if mailbox is None:
            # Prefer one that still carries a stale selection: the push leaves it alone.
            offer("none", 0 if len(user.synced) else 1, user.id)
            continue
        custom = any(label.system is None and label.id in user.synced for label in mailbox.labels)
        size = len(mailbox.labels) + (0 if custom else 100)
        inbox = mailbox.label(SystemLabel.INBOX)
        if mailbox.provider is Provider.GMAIL:
            offer("gmail", size, user.id)
        elif mailbox.provider is Provider.MICROSOFT and inbox is not None and inbox.name != "Inbox":
            offer("microsoft", size, user.id)
    titles = {
        "gmail": "Gmail",
        "microsoft": "Microsoft, localised folder names",
        "none": "no mailbox connected",
    }
    return [(titles[kind], best[kind][1]) for kind in titles if kind in best]


def _changes_by_user(changes: Changes) -> dict[str, list[str]]:
    per_user: dict[str, list[str]] = {}
    for change in changes.changed:
        verb = "selected" if change.selected else "deselected"
        per_user.setdefault(change.user_id, []).append(f"{change.label.title} {verb}")
    for skip in changes.skipped:
        what = skip.label.title if skip.label else "User"
        per_user.setdefault(skip.user_id, []).append(f"{what} skipped ({skip.reason.name})")
    return per_user


def _email_tab_text(title: str, user: User, pushed: Iterable[str]) -> str:
    from labelsync.rules import email_tab

    done = ", ".join(pushed) or "nothing (already as pushed)"
    head = f"{user.id} ({title}); this push: {done}"
    tab = email_tab(user)
    if tab.address is None:
        stale = f"; its stale selection {sorted(user.synced.ids)} is kept" if user.synced else ""
        return f"{head}\n  Email tab: no mailbox connected{stale}"
    lines = [head, f"  Email tab of {tab.address}:"]
    hidden = 0
    for row in tab.rows:
        if row.label.system is None and not row.selected:
            hidden += 1
            continue
        mark = "[x]" if row.selected else "[ ]"
        note = f"  ({row.note})" if row.note else ""
        lines.append(f"  {mark} {row.label.name}{note}")
    if hidden:
        lines.append(f"  ... and {hidden} more labels, not synced")
    return "\n".join(lines)


@main.command(name="import")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--db",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to import into (created if missing).",
)
def import_(snapshot: Path, db: Path) -> None:
    """Store the tenant of a JSON snapshot in a SQLite file.

    SNAPSHOT is a JSON snapshot (format 1, as "labelsync export" writes); its tenant id
    must be new to the file. Its last push comes along as the tenant's audit
    record (onboarding uses its defaults); the push's own job stays in the
    database it ran in.
    """
    tenant = _load_snapshot(snapshot)
    with _service(db) as svc:
        svc.create_tenant(tenant)
    out = _console()
    out.print(
        f"imported tenant {tenant.id!r} ({tenant.name}): {_n(len(tenant.users))} Users into {db}"
    )
    if tenant.last_push is not None:
        out.print(f"(kept its last push {tenant.last_push.job_id!r} as the audit record)")


@main.command()
@_existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant to export.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
def export(db: Path, tenant_id: str, output: Path | None) -> None:
    """Write a stored tenant as a JSON snapshot.

    The snapshot (format 1) holds the Users, the checkbox settings and the last
    push; "labelsync import" reads it back.
    """
    from labelsync.io import dump, dumps

    with _service(db) as svc:
        tenant = svc.tenant(tenant_id)
    if output is None:
        click.echo(dumps(tenant), nl=False)
    else:
        dump(tenant, output)
        click.echo(f"exported tenant {tenant.id!r}: {_n(len(tenant.users))} Users to {output}")


@main.command()
@click.argument(
    "snapshot", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The labelsync SQLite file (with --tenant), instead of a SNAPSHOT.",
)
@click.option("--tenant", "tenant_id", help="Id of the stored tenant to preview.")
@_label_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people; json or csv (one row per change and skip) for programs.",
)
def preview(
    snapshot: Path | None,
    db: Path | None,
    tenant_id: str | None,
    inbox: bool | None,
    sent: bool | None,
    output_format: str,
) -> None:
    """Show what a push would change, writing nothing.

    Reads the tenant from a JSON SNAPSHOT file, or from --db PATH --tenant ID.
    Both checkbox options are required, as for "labelsync push".
    """
    from labelsync.rules import apply_defaults

    defaults = _defaults(inbox, sent)
    if snapshot is not None:
        if db is not None or tenant_id is not None:
            raise click.UsageError("give either SNAPSHOT or --db with --tenant, not both")
        tenant = _load_snapshot(snapshot)
    elif db is None or tenant_id is None:
        raise click.UsageError("give a SNAPSHOT file, or both --db PATH and --tenant ID")
    else:
        with _service(db) as svc:
            tenant = svc.tenant(tenant_id)
    changes = apply_defaults(tenant, defaults)[1]
    if output_format == "json":
        _preview_json(tenant, defaults, changes, sys.stdout)
    elif output_format == "csv":
        _preview_csv(changes, sys.stdout)
    else:
        summary = changes.summary()
        out = _console()
        out.print(
            f"Preview of tenant {tenant.id!r} ({tenant.name}), {defaults.describe()}; "
            "nothing was written."
        )
        out.print(f"Would change: {_users_line(summary.users, summary.counts)}")
        out.print()
        labels, skips = _summary_tables(summary)
        out.print(labels)
        out.print()
        out.print(skips)
        out.print()
        out.print("Every change and skip: --format csv or --format json.")


def _preview_json(tenant: Tenant, defaults: Defaults, changes: Changes, stream: IO[str]) -> None:
    summary = changes.summary()
    c = summary.counts
    document = {
        "tenant": tenant.id,
        "defaults": {"inbox": defaults.inbox, "sent": defaults.sent},
        "users": summary.users,
        "counts": {
            "users_changed": c.users_changed,
            "users_unchanged": summary.users - c.users_changed - c.no_mailbox,
            "selected": c.selected,
            "deselected": c.deselected,
            "no_mailbox": c.no_mailbox,
            "label_missing": c.label_missing,
        },
        "labels": [
            {
                "label": row.label.name,
                "selected": row.selected,
                "deselected": row.deselected,
                "unchanged": row.unchanged,
                "no_mailbox": row.no_mailbox,
                "label_missing": row.label_missing,
            }
            for row in summary.labels
        ],
        "changes": [
            {
                "user_id": change.user_id,
                "label": change.label.name,
                "label_id": change.label_id,
                "selected": change.selected,
            }
            for change in changes.changed
        ],
        "skips": [
            {
                "user_id": skip.user_id,
                "label": None if skip.label is None else skip.label.name,
                "reason": skip.reason.name,
            }
            for skip in changes.skipped
        ],
    }
    json.dump(document, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


_CSV_COLUMNS: Final = ("kind", "user_id", "label", "label_id", "selected", "reason")


def _preview_csv(changes: Changes, stream: IO[str]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for record in changes.to_records():
        writer.writerow(_csv_cell(record[column]) for column in _CSV_COLUMNS)


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@main.command()
@_existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant to push to.")
@click.option("--actor", "actor_id", required=True, help="Id of the admin User who pushes.")
@_label_options
@_batch_size
def push(
    db: Path,
    tenant_id: str,
    actor_id: str,
    inbox: bool | None,
    sent: bool | None,
    batch_size: int,
) -> None:
    """Push Inbox/Sent to every User of a tenant now.

    The "Apply to all users" button. Both checkbox options are required, as
    an unchecked label is deselected for every User, overriding their own
    choice. Only an admin User of the tenant may push. Ctrl-C stops it with
    every committed batch kept and prints how to resume it.
    """
    defaults = _defaults(inbox, sent)
    err = _console(stderr=True)
    with _service(db) as svc:
        job = svc.start_push(tenant_id, actor_id=actor_id, defaults=defaults)
        err.print(
            f"push {job.id} started: {defaults.describe()}, to {_n(job.total)} Users "
            f"of {tenant_id!r}; Ctrl-C leaves it resumable"
        )
        job = _run(svc, job, db, batch_size)
    _print_finished(job)


@main.command()
@click.argument("job_id", metavar="JOB")
@_existing_db
@_batch_size
def resume(job_id: str, db: Path, batch_size: int) -> None:
    """Continue an interrupted push JOB until it is done.

    It starts after the last committed batch and ends in the same state as an
    uninterrupted push. A job superseded by a newer push of the same tenant
    writes nothing and exits with code 4.
    """
    with _service(db) as svc:
        job = svc.job(job_id)
        if job.status is JobStatus.DONE:
            _console(stderr=True).print(f"push {job.id} was already done; nothing to resume")
        elif job.status is not JobStatus.SUPERSEDED:
            _console(stderr=True).print(
                f"push {job.id} resumed at {_n(job.processed)}/{_n(job.total)} Users"
            )
            job = _run(svc, job, db, batch_size)
        else:
            raise JobSuperseded(job.id, job.superseded_by)
    _print_finished(job)


def _took(job: PushJob) -> str:
    """`` in 4.2s`` from start to finish by the job's clock, or nothing while it is unfinished."""
    if job.finished_at is None:
        return ""
    return f" in {(job.finished_at - job.started_at).total_seconds():.1f}s"


def _print_finished(job: PushJob) -> None:
    out = _console()
    out.print(
        f"push {job.id} to {job.tenant_id!r} {job.status.name.lower()}{_took(job)}: "
        f"{job.defaults.describe()}, {_n(job.processed)}/{_n(job.total)} Users"
    )
    out.print()
    out.print(_counts_table(job.total, job.counts))


@main.command()
@_existing_db
@click.option("--tenant", "tenant_id", help="Only this tenant's jobs.")
def status(db: Path, tenant_id: str | None) -> None:
    """List push jobs, newest first.

    Shows each job's status, Users processed of the roster, counts, and start
    and finish times, and the command that resumes an unfinished one.
    """
    with _service(db) as svc:
        jobs = svc.jobs(tenant_id)
    out = _console()
    if not jobs:
        where = f" for tenant {tenant_id!r}" if tenant_id else ""
        out.print(f"no push jobs{where} in {db}")
        return
    table = _table(
        "Job",
        "Tenant",
        "Status",
        "Processed",
        "Changed",
        "+Sel",
        "-Desel",
        "Skips",
        "Started (UTC)",
        "Finished (UTC)",
        numeric_from=3,
    )
    table.columns[0].min_width = max(len(job.id) for job in jobs)  # never cut: resume needs it
    for column in table.columns[-2:]:
        column.justify = "left"
    for job in jobs:
        c = job.counts
        table.add_row(
            job.id,
            job.tenant_id,
            job.status.name,
            f"{_n(job.processed)}/{_n(job.total)}",
            _n(c.users_changed),
            _n(c.selected),
            _n(c.deselected),
            _n(c.skipped),
            _when(job.started_at),
            _when(job.finished_at),
        )
    out.print(table)
    for job in jobs:
        if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
            out.print(f"{job.status.name.lower()}: {_resume_hint(job.id, db)}")


@main.command()
@click.argument("job_id", metavar="JOB")
@_existing_db
@click.option("--actor", "actor_id", required=True, help="Id of the admin User who reverts.")
@_batch_size
def revert(job_id: str, db: Path, actor_id: str, batch_size: int) -> None:
    """Undo a finished push JOB.

    Restores each User it changed who has not changed since; Users edited,
    pushed or onboarded after it are left as they are and counted. Admins only.
    """
    with _service(db) as svc:
        report = svc.revert_push(job_id, actor_id=actor_id, batch_size=batch_size)
    _console().print(str(report))


if __name__ == "__main__":
    main()
