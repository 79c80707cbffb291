"""The admin-policy commands of ``labelsync`` (R19): ``history``, every push with its report.

Registered on the group of `labelsync.cli._commands`, which imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from labelsync.cli._commands import _json_format, main
from labelsync.cli._output import job_json, make_console, num, revert_record_json, when, write_json
from labelsync.cli._shell import existing_db, service
from labelsync.policy import PushMode
from labelsync.service import HistoryEntry

__all__ = ["history", "history_json", "history_lines"]


def history_json(entry: HistoryEntry, db: Path) -> dict[str, Any]:
    """One push of ``history --format json``: the job as ``status`` prints it, and its revert."""
    doc = job_json(entry.job, db)
    doc["revert"] = None if entry.revert is None else revert_record_json(entry.revert)
    return doc


def history_lines(entry: HistoryEntry) -> list[str]:
    """Two lines per push (three when reverted): what, by whom and when; its report; its revert."""
    job, c = entry.job, entry.job.counts
    mode = "" if job.mode is PushMode.OVERRIDE else f"  {job.mode.name}"
    finished = f" to {when(job.finished_at)}" if job.finished_at else ", not finished"
    kept = f", {num(c.user_choice_kept)} user choices kept" if c.user_choice_kept else ""
    what = f"{job.id}  {job.status.name}  {job.defaults.describe()}{mode}  by {job.actor_id}"
    report = (
        f"  {num(job.processed)}/{num(job.total)} Users, {num(c.users_changed)} changed "
        f"(+{num(c.selected)} -{num(c.deselected)} labels), {num(c.no_mailbox)} no mailbox, "
        f"{num(c.label_missing)} labels missing{kept}"
    )
    lines = [f"{what}  {when(job.started_at)}{finished} UTC", report]
    revert = entry.revert
    if revert is not None:
        state = "reverted" if entry.reverted else "revert not finished"
        restored = "; defaults restored to the push before" if revert.restored_defaults else ""
        lines.append(
            f"  {state} by {revert.actor_id} at {when(revert.started_at)} UTC (revert "
            f"{revert.id}): {num(revert.users_restored)} Users restored, "
            f"{num(revert.users_left_alone)} left alone{restored}"
        )
    return lines


@main.command()
@existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant.")
@_json_format
def history(db: Path, tenant_id: str, output_format: str) -> None:
    """List every push of a tenant with its report, newest first, and its revert if any.

    Each push shows its defaults and mode, who started it and when, what it
    changed and skipped, and, once reverted, who reverted it, when and what the
    revert restored. ``labelsync revert JOB`` undoes one.
    """
    with service(db, read_only=True) as svc:  # a read never writes, nor migrates, the file
        entries = svc.history(tenant_id)
    if output_format == "json":
        write_json([history_json(entry, db) for entry in entries])
        return
    if not entries:
        make_console().print(f"no pushes for tenant {tenant_id!r} in {db}")
        return
    # Plain lines, never folded: a job id must stay whole for `labelsync revert`.
    for entry in entries:
        for line in history_lines(entry):
            click.echo(line)
