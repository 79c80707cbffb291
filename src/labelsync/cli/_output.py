"""What the command prints: rich tables for people, JSON and CSV for programs, progress.

Text goes to stdout and progress to stderr, so ``labelsync push ... > out.txt``
keeps the result and a terminal still sees the bar. ``--format json`` documents
are built here, one shape per kind of thing (a job, a revert, a tenant).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, cast

from labelsync.audience import EVERYONE, Audience
from labelsync.jobs import Activity, activity
from labelsync.model import Defaults, PushCounts, PushRecord, Tenant
from labelsync.policy import PushMode
from labelsync.ports import JobStatus, PushJob

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from labelsync.changes import Changes, Summary
    from labelsync.jobs import RevertJob
    from labelsync.service import RevertReport


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


def make_console(*, stderr: bool = False) -> Console:
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


def make_table(*columns: str, title: str | None = None, numeric_from: int = 1) -> Table:
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


def num(value: int) -> str:
    return f"{value:,}"


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def shell_words(*words: str | os.PathLike[str]) -> str:
    return " ".join(shlex.quote(os.fspath(word)) for word in words)


def resume_hint(job_id: str, db: Path) -> str:
    return shell_words("labelsync", "resume", job_id, "--db", db)


def counts_table(users: int, counts: PushCounts) -> Table:
    """Users changed, unchanged and skipped (adding up to the roster); labels flipped or skipped."""
    unchanged = users - counts.users_changed - counts.no_mailbox
    table = make_table("", "")
    table.show_header = False
    table.add_row("Users changed", num(counts.users_changed))
    table.add_row("Users unchanged", num(unchanged))
    table.add_row("Users skipped (no mailbox)", num(counts.no_mailbox))
    table.add_row("Users in the roster", num(users), end_section=True)
    table.add_row("Labels selected", num(counts.selected))
    table.add_row("Labels deselected", num(counts.deselected))
    table.add_row("Labels skipped (label missing)", num(counts.label_missing))
    return table


def summary_tables(summary: Summary) -> tuple[Table, Table]:
    """Per label: selected, deselected, unchanged, skipped by reason; and skips by reason."""
    labels = make_table(
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
            num(row.selected),
            num(row.deselected),
            num(row.unchanged),
            num(row.no_mailbox),
            num(row.label_missing),
        )
    skips = make_table("Reason", "Skips", title="Skips by reason")
    for reason, count in summary.counts.skipped_by_reason().items():
        skips.add_row(reason.name, num(count))
    return labels, skips


def users_line(users: int, counts: PushCounts) -> str:
    unchanged = users - counts.users_changed - counts.no_mailbox
    return (
        f"{num(users)} Users: {num(counts.users_changed)} changed, {num(unchanged)} unchanged, "
        f"{num(counts.no_mailbox)} skipped (no mailbox)"
    )


def audit_table(record: PushRecord) -> Table:
    c = record.counts
    table = make_table("", "", title="Audit record (tenant.last_push)", numeric_from=99)
    table.show_header = False
    table.add_row("job", record.job_id)
    table.add_row("actor", record.actor_id)
    table.add_row("defaults", record.defaults.describe())
    table.add_row("started", f"{when(record.started_at)} UTC")
    table.add_row("finished", f"{when(record.finished_at)} UTC")
    table.add_row("roster size", num(record.roster_size))
    table.add_row(
        "changes",
        f"{num(c.users_changed)} Users changed: +{num(c.selected)} labels selected, "
        f"-{num(c.deselected)} deselected",
    )
    table.add_row("skips", f"{num(c.no_mailbox)} no mailbox, {num(c.label_missing)} label missing")
    return table


# -- progress ---------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_display(job: PushJob) -> Iterator[Callable[[PushJob], None]]:
    """A `progress` callback for `run_push`: a rich bar on a terminal, else a line per 10%.

    The plain lines go to stderr as soon as a batch is committed (the first one
    always), so a script or a test can tell that a push has written something.
    """
    console = make_console(stderr=True)
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
            console.print(f"{label}: {num(current.processed)}/{num(current.total)} Users processed")

    yield line


def took(job: PushJob) -> str:
    """`` in 4.2s`` from start to finish by the job's clock, or nothing while it is unfinished."""
    if job.finished_at is None:
        return ""
    return f" in {(job.finished_at - job.started_at).total_seconds():.1f}s"


def print_finished(job: PushJob) -> None:
    out = make_console()
    out.print(
        f"push {job.id} to {job.tenant_id!r} {job.status.name.lower()}{took(job)}: "
        f"{job.defaults.describe()}, {num(job.processed)}/{num(job.total)} Users"
    )
    out.print()
    out.print(counts_table(job.total, job.counts))


def preview_json(
    tenant: Tenant,
    defaults: Defaults,
    changes: Changes,
    stream: IO[str],
    *,
    mode: PushMode = PushMode.OVERRIDE,
    audience: Audience = EVERYONE,
) -> None:
    """``preview --format json``: the keys of ``push --format json`` that a preview knows
    (``users`` the roster, ``counts``, ``mode``, ``audience``), and every change and skip."""
    summary = changes.summary()
    document = {
        "tenant": tenant.id,
        "defaults": defaults_json(defaults),
        "mode": mode.name,
        "audience": audience.to_doc(),
        "users": summary.users,
        "counts": {
            **counts_json(summary.users, summary.counts),
            "user_choice_kept": summary.counts.user_choice_kept,
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
    write_json(document, stream)


_CSV_COLUMNS: Final = ("kind", "user_id", "label", "label_id", "selected", "reason")


def preview_csv(changes: Changes, stream: IO[str]) -> None:
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


# -- JSON -------------------------------------------------------------------------------------


def write_json(document: object, stream: IO[str] | None = None) -> None:
    """`document` as indented JSON and a newline on `stream` (standard output by default)."""
    out = sys.stdout if stream is None else stream
    json.dump(document, out, indent=2, ensure_ascii=False)
    out.write("\n")


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def defaults_json(defaults: Defaults) -> dict[str, bool]:
    return {"inbox": defaults.inbox, "sent": defaults.sent}


def counts_json(users: int, counts: PushCounts) -> dict[str, int]:
    """A push's counts over `users` roster Users; the keys of ``preview --format json``."""
    return {
        "users_changed": counts.users_changed,
        "users_unchanged": users - counts.users_changed - counts.no_mailbox,
        "selected": counts.selected,
        "deselected": counts.deselected,
        "no_mailbox": counts.no_mailbox,
        "label_missing": counts.label_missing,
    }


def job_activity(job: PushJob, now: dt.datetime) -> Activity:
    """`jobs.activity` of `job`, knowing whether a runner process of this host is gone."""
    from labelsync.service import runner_alive

    return activity(job, now, runner_alive=runner_alive(job.runner_id))


def shown_status(job: PushJob, now: dt.datetime) -> str:
    """The status ``status`` shows: the job's, with an unfinished job's activity told truthfully.

    RUNNING only while a runner holds a live lease on it; INTERRUPTED once its
    runner stopped or was killed; PENDING while it waits for its first runner.
    """
    state = job_activity(job, now)
    if state is Activity.FINISHED:
        return job.status.name
    if state is Activity.WAITING:
        return JobStatus.PENDING.name
    return state.name


def job_json(job: PushJob, db: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """A push job as ``status``, ``push`` and ``resume`` print it with ``--format json``.

    ``resume`` is the command that continues an unfinished job, else null;
    ``activity`` says whether a runner runs it now (`labelsync.jobs.Activity`).
    ``audience`` is null for a push to everyone, else ``{"groups": [...]}`` or
    ``{"users": [...]}`` (R20).
    """
    unfinished = job.status in (JobStatus.PENDING, JobStatus.RUNNING)
    now = dt.datetime.now(dt.UTC) if now is None else now
    return {
        "job": job.id,
        "tenant": job.tenant_id,
        "actor": job.actor_id,
        "status": job.status.name,
        "mode": job.mode.name,
        "defaults": defaults_json(job.defaults),
        "users": job.total,
        "processed": job.processed,
        "counts": {
            **counts_json(job.total, job.counts),
            "user_choice_kept": job.counts.user_choice_kept,
        },
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "superseded_by": job.superseded_by,
        "resume": resume_hint(job.id, db) if unfinished else None,
        "audience": job.audience.to_doc(),
        "activity": job_activity(job, now).name,
        "runner": job.runner_id,
        "lease_until": _iso(job.lease_until),
    }


def revert_json(report: RevertReport) -> dict[str, Any]:
    """A revert as ``revert --format json`` prints it: who was restored, who was left alone."""
    return {
        "job": report.job_id,
        "reverted": list(report.reverted),
        "changed_since": list(report.changed_since),
        "revert": None if report.revert is None else revert_record_json(report.revert),
        "restored_defaults": report.restored_defaults,
    }


def revert_record_json(revert: RevertJob) -> dict[str, Any]:
    """A revert's audit record (R19): who, when, and what it restored."""
    return {
        "revert": revert.id,
        "job": revert.push_job_id,
        "actor": revert.actor_id,
        "status": revert.status.name,
        "started_at": _iso(revert.started_at),
        "finished_at": _iso(revert.finished_at),
        "users_restored": revert.users_restored,
        "labels_restored": revert.labels_restored,
        "users_left_alone": revert.users_left_alone,
        "restored_defaults": revert.restored_defaults,
    }


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    """A tenant's row of ``tenants --format json``: its size, settings and last push."""
    push = tenant.last_push
    return {
        "tenant": tenant.id,
        "name": tenant.name,
        "users": len(tenant.users),
        "defaults": None if tenant.defaults is None else defaults_json(tenant.defaults),
        "onboard_new_users": tenant.onboard_new_users,
        "last_push": None
        if push is None
        else {
            "job": push.job_id,
            "actor": push.actor_id,
            "finished_at": _iso(push.finished_at),
            "roster_size": push.roster_size,
        },
    }


# -- status -----------------------------------------------------------------------------------

_STATUS_COLUMNS: Final = (
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
)


def _status_cells(job: PushJob, now: dt.datetime) -> tuple[str, ...]:
    c = job.counts
    return (
        job.id,
        job.tenant_id,
        shown_status(job, now),
        f"{num(job.processed)}/{num(job.total)}",
        num(c.users_changed),
        num(c.selected),
        num(c.deselected),
        num(c.skipped),
        when(job.started_at),
        when(job.finished_at),
    )


def status_width(jobs: Sequence[PushJob], now: dt.datetime) -> int:
    """The columns the wide status table needs: every cell whole, two spaces between."""
    rows = [_STATUS_COLUMNS, *(_status_cells(job, now) for job in jobs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_STATUS_COLUMNS))]
    return sum(widths) + 3 * (len(widths) - 1)


def status_table(jobs: Sequence[PushJob], now: dt.datetime) -> Table:
    """One row per job, every count in its own column (``status --wide``)."""
    out = make_table(*_STATUS_COLUMNS, numeric_from=3)
    for column in out.columns:
        column.no_wrap = True  # a cut job id or count is worse than a wide line
    for column in out.columns[-2:]:
        column.justify = "left"
    for job in jobs:
        out.add_row(*_status_cells(job, now))
    return out


def status_lines(jobs: Sequence[PushJob], now: dt.datetime) -> list[str]:
    """Three lines per job that fit 80 columns: id, tenant and status; counts; times.

    The job id is never cut, since ``resume`` and ``revert`` need it whole.
    """
    lines: list[str] = []
    for job in jobs:
        c = job.counts
        finished = f" to {when(job.finished_at)}" if job.finished_at else ", not finished"
        lines.append(f"{job.id}  {job.tenant_id}  {shown_status(job, now)}")
        lines.append(
            f"  {num(job.processed)}/{num(job.total)} Users, {num(c.users_changed)} changed "
            f"(+{num(c.selected)} -{num(c.deselected)} labels), {num(c.skipped)} skips"
        )
        lines.append(f"  {when(job.started_at)}{finished} UTC")
    return lines


@contextlib.contextmanager
def phase(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Progress of one step that is not a push (building or storing a tenant), on stderr.

    On a terminal a live line with a spinner and the time spent (and a bar if
    `total` is known), from the step's first moment; piped, one line as it starts.
    Yields a callback taking how many of `total` are done.
    """
    err = make_console(stderr=True)
    if not err.is_terminal:
        err.print(f"{description} ...")
        err.file.flush()
        yield lambda done: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int) -> None:
            bar.update(task, completed=done)

        yield advance
