"""The commands of ``labelsync``: the click group, its error handling, and each command.

Output shapes live in `labelsync.cli._output`, the service wiring and signal
handling in `labelsync.cli._shell`, the demo in `labelsync.cli._demo`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from labelsync.cli._audiences import (
    audience_options,
    coverage_command,
    presets,
    preview_target,
    target_of,
    whom,
)
from labelsync.cli._demo import demo
from labelsync.cli._directory import replace_tenant, sync_directory
from labelsync.cli._exits import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    exit_codes_help,
)
from labelsync.cli._output import (
    job_activity,
    job_json,
    make_console,
    make_table,
    num,
    preview_csv,
    preview_json,
    print_finished,
    resume_hint,
    revert_json,
    revert_record_json,
    status_lines,
    status_table,
    status_width,
    summary_tables,
    tenant_json,
    users_line,
    when,
    write_json,
)
from labelsync.cli._shell import (
    Failure,
    batch_size_option,
    existing_db,
    exit_code_of,
    fail,
    json_format,
    label_options,
    load_snapshot,
    mode_option,
    os_message,
    run_job,
    service,
    suggesting_admins,
)
from labelsync.exceptions import AlreadyExists, JobSuperseded, LabelSyncError
from labelsync.jobs import Activity
from labelsync.policy import PushMode
from labelsync.ports import JobStatus, PushJob

__all__ = ["main"]


class _ReaderGone(Exception):
    """The process reading our stdout closed the pipe (``| head``)."""


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
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else self._where(name, args)
            hint = f" (see '{where} --help')"
            fail(where, error.format_message() + hint, EXIT_USAGE)
        except Failure as error:
            fail(name, error.format_message(), error.code, error.kind)
        except click.ClickException as error:
            fail(name, error.format_message(), error.exit_code)
        except click.Abort:
            fail(name, "stopped by Ctrl-C", EXIT_INTERRUPTED, "interrupted")
        except LabelSyncError as error:
            fail(name, str(error), exit_code_of(error))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
            fail(name, os_message(error), EXIT_USAGE)
        except (BrokenPipeError, _ReaderGone):
            # The reader went away (`labelsync preview --format csv | head`): it has what it
            # wanted, so stop quietly with success; later writes (and the exit's flush) go nowhere.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except OSError as error:
            fail(name, os_message(error), EXIT_FAILED)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        # click turns a broken pipe into exit 1 itself; take it first, as a quiet success.
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _ReaderGone from None

    def _where(self, name: str, args: list[str] | None) -> str:
        """``labelsync push`` for an error click's parser raised without a context."""
        words = sys.argv[1:] if args is None else args
        command = next((word for word in words if word in self.commands), None)
        return f"{name} {command}" if command else name


# -- commands ---------------------------------------------------------------------------------


_LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)
_CLI_HANDLER = "labelsync-cli"


@click.group(
    name="labelsync",
    cls=_LabelSyncGroup,
    invoke_without_command=True,
    epilog="\b\n" + exit_codes_help(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="labelsync", prog_name="labelsync")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log what labelsync does to stderr: -v jobs and reverts, -vv every batch.",
)
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """Push default synced mail labels (Inbox, Sent) to every User of a tenant.

    State lives in a SQLite file (--db). Start with: labelsync demo.
    """
    if verbose:
        _log_to_stderr(_LOG_LEVELS[min(verbose, len(_LOG_LEVELS) - 1)])
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _log_to_stderr(level: int) -> None:
    """Send the ``labelsync`` loggers' records at `level` and above to stderr, one line each."""
    logger = logging.getLogger("labelsync")
    for old in [h for h in logger.handlers if h.get_name() == _CLI_HANDLER]:
        logger.removeHandler(old)  # invoked twice in one process (tests): one handler, not two
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_CLI_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


main.add_command(demo)
main.add_command(sync_directory)
main.add_command(coverage_command)
main.add_command(presets)


@main.command(name="import")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--db",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to import into (created if missing).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Reconcile the stored tenant's Users with the snapshot's: shows the diff, then asks.",
)
@click.option("-y", "--yes", is_flag=True, help="With --replace: apply without asking.")
@json_format
def import_(snapshot: Path, db: Path, replace: bool, yes: bool, output_format: str) -> None:
    """Store the tenant of a JSON snapshot in a SQLite file.

    SNAPSHOT is a JSON snapshot (format 1, as "labelsync export" writes); its tenant id
    must be new to the file, unless --replace: then the stored tenant's Users are
    reconciled with the snapshot's (added, updated, removed; selections kept), after
    a diff and a question (--yes answers it). Its last push comes along as the
    tenant's audit record (onboarding uses its defaults); the push's own job
    stays in the database it ran in.
    """
    tenant = load_snapshot(snapshot)
    if replace:
        replace_tenant(tenant, db, yes=yes, output_format=output_format)
        return
    if yes:
        raise click.UsageError("--yes answers the question of --replace; add --replace")
    with service(db, create=True) as svc:
        try:
            svc.create_tenant(tenant)
        except AlreadyExists as error:
            raise Failure(
                f"{error}; add --replace to reconcile it with the snapshot", EXIT_USAGE
            ) from None
    if output_format == "json":
        write_json({"tenant": tenant.id, "applied": True, "added": [u.id for u in tenant.users]})
        return
    out = make_console()
    out.print(
        f"imported tenant {tenant.id!r} ({tenant.name}): {num(len(tenant.users))} Users into {db}"
    )
    if tenant.last_push is not None:
        out.print(f"(kept its last push {tenant.last_push.job_id!r} as the audit record)")


_json_format = json_format


@main.command()
@existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant to export.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
@_json_format
def export(db: Path, tenant_id: str, output: Path | None, output_format: str) -> None:
    """Write a stored tenant as a JSON snapshot.

    The snapshot (format 1) holds the Users, the checkbox settings and the last
    push; "labelsync import" reads it back. With --output and --format json,
    stdout gets what was written as JSON: tenant, Users, file.
    """
    from labelsync.io import dump, dumps

    with service(db, read_only=True) as svc:
        tenant = svc.tenant(tenant_id)
    if output is None:
        click.echo(dumps(tenant), nl=False)  # the snapshot is JSON already
    elif output_format == "json":
        dump(tenant, output)
        write_json({"tenant": tenant.id, "users": len(tenant.users), "output": str(output)})
    else:
        dump(tenant, output)
        click.echo(f"exported tenant {tenant.id!r}: {num(len(tenant.users))} Users to {output}")


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
@label_options
@mode_option
@audience_options
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
    mode: str,
    groups: tuple[str, ...],
    user_ids: str | None,
    drifted: bool,
    output_format: str,
) -> None:
    """Show what a push would change, writing nothing.

    Reads the tenant from a JSON SNAPSHOT file, or from --db PATH --tenant ID.
    Takes the options of "labelsync push" and shows what that push would do
    now: both checkbox options are required (none with --drifted); --mode
    previews a KEEP_USER_CHOICES or NEW_USERS_ONLY push; --group, --users or
    --drifted a push to those Users only.
    """
    from labelsync.rules import apply_defaults

    wanted, audience = target_of(inbox, sent, groups, user_ids, drifted=drifted)
    if snapshot is not None:
        if db is not None or tenant_id is not None:
            raise click.UsageError("give either SNAPSHOT or --db with --tenant, not both")
        tenant = load_snapshot(snapshot)
    elif db is None or tenant_id is None:
        raise click.UsageError("give a SNAPSHOT file, or both --db PATH and --tenant ID")
    else:
        # Read-only: a preview leaves the file byte for byte as it was.
        with service(db, read_only=True) as svc:
            tenant = svc.tenant(tenant_id)
    defaults, audience = preview_target(tenant, wanted, audience)
    push_mode = PushMode[mode.upper()]
    changes = apply_defaults(tenant, defaults, mode=push_mode, audience=audience)[1]
    if output_format == "json":
        preview_json(tenant, defaults, changes, sys.stdout, mode=push_mode, audience=audience)
    elif output_format == "csv":
        preview_csv(changes, sys.stdout)
    else:
        summary = changes.summary()
        out = make_console()
        out.print(
            f"Preview of tenant {tenant.id!r} ({tenant.name}), {defaults.describe()}"
            f"{'' if push_mode is PushMode.OVERRIDE else f' ({push_mode.name})'}"
            f"{whom(audience, drifted=drifted)}; nothing was written.",
            markup=False,  # group names are the host's strings, not rich markup
        )
        out.print(f"Would change: {users_line(summary.users, summary.counts)}")
        out.print()
        labels, skips = summary_tables(summary)
        out.print(labels)
        out.print()
        out.print(skips)
        out.print()
        out.print("Every change and skip: --format csv or --format json.")


@main.command()
@existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant to push to.")
@click.option("--actor", "actor_id", required=True, help="Id of the admin User who pushes.")
@label_options
@mode_option
@audience_options
@batch_size_option
@_json_format
def push(
    db: Path,
    tenant_id: str,
    actor_id: str,
    inbox: bool | None,
    sent: bool | None,
    mode: str,
    groups: tuple[str, ...],
    user_ids: str | None,
    drifted: bool,
    batch_size: int,
    output_format: str,
) -> None:
    """Push Inbox/Sent to every User of a tenant now.

    The "Apply to all users" button. Both checkbox options are required, as
    an unchecked label is deselected for every User, overriding their own
    choice. --group or --users push to some Users only. Only an admin User
    of the tenant may push. Ctrl-C stops it with every committed batch kept
    and prints how to resume it. --mode KEEP_USER_CHOICES leaves labels Users
    set themselves; NEW_USERS_ONLY reaches only Users no push or onboarding
    covered yet. Locked labels are applied in every mode. --drifted pushes
    the saved defaults to exactly the Users that drifted from them. "labelsync
    preview" with the same options shows what it would do.
    """
    wanted, audience = target_of(inbox, sent, groups, user_ids, drifted=drifted)
    err = make_console(stderr=True)
    with service(db) as svc:
        with suggesting_admins(svc, tenant_id, actor_id):
            if wanted is None:
                job = svc.start_push_drifted(
                    tenant_id, actor_id=actor_id, mode=PushMode[mode.upper()]
                )
            else:
                job = svc.start_push(
                    tenant_id,
                    actor_id=actor_id,
                    defaults=wanted,
                    mode=PushMode[mode.upper()],
                    audience=audience,
                )
        how = "" if job.mode is PushMode.OVERRIDE else f" ({job.mode.name})"
        err.print(
            f"push {job.id} started: {job.defaults.describe()}{how}, to {num(job.total)} Users "
            f"of {tenant_id!r}{whom(audience, drifted=drifted)}; Ctrl-C leaves it resumable"
        )
        job = run_job(svc, job, db, batch_size)
    _finished(job, db, output_format)


@main.command()
@click.argument("job_id", metavar="JOB")
@existing_db
@batch_size_option
@_json_format
def resume(job_id: str, db: Path, batch_size: int, output_format: str) -> None:
    """Continue an interrupted push JOB until it is done.

    It starts after the last committed batch and ends in the same state as an
    uninterrupted push. A job superseded by a newer push of the same tenant
    writes nothing and exits with code 4.
    """
    with service(db) as svc:
        job = svc.job(job_id)
        if job.status is JobStatus.DONE:
            make_console(stderr=True).print(f"push {job.id} was already done; nothing to resume")
        elif job.status is not JobStatus.SUPERSEDED:
            make_console(stderr=True).print(
                f"push {job.id} resumed at {num(job.processed)}/{num(job.total)} Users"
            )
            job = run_job(svc, job, db, batch_size)
        else:
            raise JobSuperseded(job.id, job.superseded_by)
    _finished(job, db, output_format)


def _finished(job: PushJob, db: Path, output_format: str) -> None:
    if output_format == "json":
        write_json(job_json(job, db))
    else:
        print_finished(job)


@main.command()
@existing_db
@click.option("--tenant", "tenant_id", help="Only this tenant's jobs.")
@click.option(
    "--wide",
    is_flag=True,
    help="One row per job with every count in a column, however narrow the terminal.",
)
@_json_format
def status(db: Path, tenant_id: str | None, wide: bool, output_format: str) -> None:
    """List push jobs, newest first, and the reverts of finished ones.

    Shows each job's status, Users processed of the roster, counts, and start
    and finish times, and the command that resumes an unfinished one. A table
    too wide for the terminal becomes three lines per job; --wide keeps the table.
    """
    with service(db, read_only=True) as svc:
        jobs = svc.jobs(tenant_id)
        reverts = {r.push_job_id: r for r in svc.store.list_reverts(tenant_id)}
        now = svc.clock.now()
    if output_format == "json":
        write_json(
            [
                {
                    **job_json(job, db, now),
                    "revert": revert_record_json(reverts[job.id]) if job.id in reverts else None,
                }
                for job in jobs
            ]
        )
        return
    out = make_console()
    if not jobs:
        where = f" for tenant {tenant_id!r}" if tenant_id else ""
        out.print(f"no push jobs{where} in {db}")
        return
    if wide or status_width(jobs, now) <= out.width:
        if wide:
            out.width = max(out.width, status_width(jobs, now))
        out.print(status_table(jobs, now))
    else:
        for line in status_lines(jobs, now):
            out.print(line)
    for job in jobs:
        state = job_activity(job, now)
        if state is Activity.RUNNING:
            out.print(
                f"running: {job.id} is being run by {job.runner_id} "
                f"(lease until {when(job.lease_until)} UTC); if that runner is gone, "
                f"{resume_hint(job.id, db)}"
            )
        elif state is Activity.INTERRUPTED:
            out.print(f"interrupted (no runner): {resume_hint(job.id, db)}")
        elif state is Activity.WAITING:
            out.print(f"pending (never run): {resume_hint(job.id, db)}")
    for revert in reverts.values():
        done = "reverted" if revert.status is JobStatus.DONE else "revert not finished"
        out.print(
            f"{done}: {revert.push_job_id} by {revert.actor_id} at {when(revert.started_at)} "
            f"UTC ({num(revert.users_restored)} Users restored, "
            f"{num(revert.users_left_alone)} left alone)",
            highlight=False,
            markup=False,
        )


@main.command()
@click.argument("job_id", metavar="JOB")
@existing_db
@click.option("--actor", "actor_id", required=True, help="Id of the admin User who reverts.")
@batch_size_option
@_json_format
def revert(job_id: str, db: Path, actor_id: str, batch_size: int, output_format: str) -> None:
    """Undo a finished push JOB, once.

    Restores each label it set that nobody changed since; labels a User, a
    later push, a reset or onboarding changed are left as they are, their Users
    counted. Any finished push may be reverted; reverting the latest one gives
    the tenant the defaults of the push before it. The revert is recorded
    (``labelsync history``); a second revert of JOB exits with code 6. Admins only.
    """
    with service(db) as svc, suggesting_admins(svc, svc.job(job_id).tenant_id, actor_id):
        report = svc.revert_push(job_id, actor_id=actor_id, batch_size=batch_size)
    if output_format == "json":
        write_json(revert_json(report))
    else:
        make_console().print(str(report))


@main.command()
@existing_db
@_json_format
def tenants(db: Path, output_format: str) -> None:
    """List the tenants in the file, with their Users and last push.

    One row per tenant: id, name, number of Users, the checkbox settings, and
    when and by whom the last push finished.
    """
    with service(db, read_only=True) as svc:
        stored = [svc.tenant(tenant_id) for tenant_id in svc.store.tenant_ids()]
    if output_format == "json":
        write_json([tenant_json(tenant) for tenant in stored])
        return
    out = make_console()
    if not stored:
        out.print(f"no tenants in {db}")
        return
    rows = make_table("Tenant", "Name", "Users", "Defaults", "Last push", numeric_from=2)
    rows.columns[3].justify = rows.columns[4].justify = "left"
    for tenant in stored:
        push = tenant.last_push
        rows.add_row(
            tenant.id,
            tenant.name,
            num(len(tenant.users)),
            tenant.defaults.describe() if tenant.defaults else "never set",
            "never" if push is None else f"{when(push.finished_at)} UTC by {push.actor_id}",
        )
    out.print(rows)


@main.command()
@existing_db
def migrate(db: Path) -> None:
    """Bring a labelsync database to this version's schema, changing nothing else.

    Commands that write migrate a file themselves; the read-only ones
    (preview, status, export, tenants) cannot, and ask for this after an upgrade.
    """
    from labelsync.adapters.sqlite import SCHEMA_VERSION

    with service(db):
        pass
    click.echo(f"{db} is at schema version {SCHEMA_VERSION}")


@main.command()
@click.option(
    "--postgres",
    "dialect",
    flag_value="postgres",
    required=True,
    help="The PostgreSQL schema (the only one for now).",
)
@click.option(
    "--schema",
    "schema_name",
    default="labelsync",
    show_default=True,
    help="The PostgreSQL schema (namespace) to create the tables in.",
)
def schema(dialect: str, schema_name: str) -> None:
    """Print the SQL of labelsync's PostgreSQL tables, for a DBA.

    A database administrator reviews and runs it ahead of time; the store then
    finds its tables current and creates nothing.
    """
    from labelsync.adapters.postgres import schema_sql

    click.echo(schema_sql(schema_name), nl=False)


# The admin-policy commands (history) register themselves on `main`.
from labelsync.cli import _policy  # noqa: E402, F401
