"""The directory commands: ``labelsync sync-directory`` and ``labelsync import --replace`` (R13).

Both reconcile a stored tenant with a roster the host gives (`LabelSync.sync_directory`):
new ids are added, stored Users take the roster's host-owned fields, and Users the
roster does not list are removed (always for ``import --replace``, with
``--remove-missing`` for ``sync-directory``). A roster is read and checked whole
before anything is written, so bad input writes nothing.

Roster files: JSON is a list of Users in the snapshot's User format (or
``{"users": [...]}``, or a whole snapshot); CSV has a header row and the columns
``id``, ``email``, ``permissions``, ``provider``, ``address``, ``labels``,
``synced`` (see docs/cli.md).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from labelsync.cli._exits import EXIT_FAILED, EXIT_USAGE
from labelsync.cli._output import num, write_json
from labelsync.cli._shell import Failure, batch_size_option, existing_db, json_format, service
from labelsync.directory import DirectoryReport, reconcile
from labelsync.exceptions import InvalidInput, UnknownTenant
from labelsync.model import Tenant, User

__all__ = ["CSV_COLUMNS", "read_roster", "replace_tenant", "sync_directory"]

CSV_COLUMNS = ("id", "email", "permissions", "provider", "address", "labels", "synced")
"""The columns of a CSV roster, in any order; ``id`` and ``email`` are required."""

_SHOWN = 10  # ids listed per outcome in the text report


def _bad(path: Path, problem: str) -> InvalidInput:
    return InvalidInput("roster", str(path), problem)


def _from_json(path: Path, text: str) -> list[User]:
    from labelsync.io import InvalidSnapshot, from_dict, users_from_list

    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad(path, f"line {error.lineno}, column {error.colno}: {error.msg}") from None
    try:
        if isinstance(document, dict) and "format" in document:
            return list(from_dict(document, source=str(path)).users)
        return users_from_list(document, source=str(path))
    except InvalidSnapshot as error:
        raise _bad(path, "; ".join(error.problems)) from None


def _words(value: str) -> list[str]:
    return value.split()


def _csv_user(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a User in the snapshot's User format (checked by the same converter)."""
    doc: dict[str, Any] = {
        "id": row.get("id") or "",
        "email": row.get("email") or "",
        "permissions": _words(row.get("permissions") or ""),
        "mailbox": None,
        "synced": _words(row.get("synced") or ""),
    }
    provider = (row.get("provider") or "").strip()
    if provider:
        labels = (row.get("labels") or "").strip()
        try:
            parsed = json.loads(labels) if labels else []
        except json.JSONDecodeError as error:
            raise ValueError(f"labels: not a JSON list of labels ({error.msg})") from None
        doc["mailbox"] = {
            "provider": provider,
            "address": row.get("address") or "",
            "labels": parsed,
        }
    elif (row.get("address") or "").strip() or (row.get("labels") or "").strip():
        raise ValueError("provider: is empty, so the row has no mailbox for its address or labels")
    return doc


def _from_csv(path: Path, text: str) -> list[User]:
    from labelsync.io import InvalidSnapshot, users_from_list

    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    unknown = [name for name in header if name not in CSV_COLUMNS]
    missing = [name for name in ("id", "email") if name not in header]
    if unknown or missing:
        what = f"unknown column {unknown[0]!r}" if unknown else f"no {missing[0]!r} column"
        raise _bad(path, f"line 1: {what} (columns: {', '.join(CSV_COLUMNS)})")
    users: list[User] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise _bad(path, f"line {line}: more fields than the header has columns")
        try:
            users += users_from_list([_csv_user(row)], source=str(path))
        except InvalidSnapshot as error:  # an InvalidInput, hence a ValueError: first
            problems = "; ".join(p.removeprefix("users[0].") for p in error.problems)
            raise _bad(path, f"line {line}: {problems}") from None
        except ValueError as error:
            raise _bad(path, f"line {line}: {error}") from None
    return users


def read_roster(path: Path, roster_format: str | None = None) -> list[User]:
    """The Users of a roster file, JSON or CSV (by `roster_format`, else by its suffix)."""
    chosen = roster_format or ("csv" if path.suffix.lower() == ".csv" else "json")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise _bad(path, f"is not UTF-8 text ({error.reason})") from None
    return _from_csv(path, text) if chosen == "csv" else _from_json(path, text)


def _text_report(report: DirectoryReport, tenant_id: str) -> str:
    lines = [f"tenant {tenant_id!r}: {report}"]
    for kind in ("added", "updated", "removed"):
        ids: tuple[str, ...] = getattr(report, kind)
        if ids:
            shown = ", ".join(ids[:_SHOWN])
            more = f" and {num(len(ids) - _SHOWN)} more" if len(ids) > _SHOWN else ""
            lines.append(f"  {kind}: {shown}{more}")
    return "\n".join(lines)


def _print(report: DirectoryReport, tenant_id: str, output_format: str, *, applied: bool) -> None:
    if output_format == "json":
        write_json({"tenant": tenant_id, "applied": applied, **report.to_dict()})
    else:
        click.echo(_text_report(report, tenant_id))


@click.command(name="sync-directory")
@click.argument("roster", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant to bring in step.")
@click.option(
    "--remove-missing",
    is_flag=True,
    help="Also remove the stored Users the roster does not list.",
)
@click.option(
    "--roster-format",
    type=click.Choice(["json", "csv"]),
    help="How ROSTER is written (default: csv for a .csv file, else json).",
)
@click.option("--actor", "actor_id", help="Admin User the sync is made on behalf of (checked).")
@batch_size_option
@json_format
def sync_directory(
    roster: Path,
    db: Path,
    tenant_id: str,
    remove_missing: bool,
    roster_format: str | None,
    actor_id: str | None,
    batch_size: int,
    output_format: str,
) -> None:
    """Bring a stored tenant in step with the host's roster (R13): add, update, remove.

    ROSTER is a JSON or CSV file of the tenant's Users (formats in docs/cli.md).
    New ids are added (onboarded if the tenant onboards new Users); stored Users
    take the roster's email, permissions and mailbox, and keep their selection,
    except ids of labels their refreshed mailbox lost. The whole roster is checked
    before anything is written. Running it again after an interruption finishes it.
    """
    users = read_roster(roster, roster_format)
    with service(db) as svc:
        report = svc.sync_directory(
            tenant_id,
            users,
            remove_missing=remove_missing,
            actor_id=actor_id,
            batch_size=batch_size,
        )
    _print(report, tenant_id, output_format, applied=True)


def replace_tenant(snapshot: Tenant, db: Path, *, yes: bool, output_format: str) -> None:
    """``import --replace``: reconcile the stored tenant's Users with the snapshot's, after a diff.

    The snapshot's Users become the roster (missing ones removed); the stored
    tenant's name, checkbox settings, onboarding switch and push history stay.
    Without the stored tenant, the snapshot is imported as it is.
    """
    with service(db, create=True) as svc:
        try:
            stored = svc.tenant(snapshot.id)
        except UnknownTenant:
            svc.create_tenant(snapshot)
            report = DirectoryReport(added=[u.id for u in snapshot.users])
            _print(report, snapshot.id, output_format, applied=True)
            return
        preview = reconcile(stored, snapshot.users, remove_missing=True)[1]
        if not preview.changed:
            _print(preview, snapshot.id, output_format, applied=False)
            if output_format == "text":
                click.echo("nothing to change")
            return
        if output_format == "text":
            click.echo(_text_report(preview, snapshot.id))
        if not yes:
            if output_format == "json":
                raise Failure("--format json needs --yes: there is no one to ask", EXIT_USAGE)
            try:
                confirmed = click.confirm("Apply these changes?", default=False, err=True)
            except click.Abort:
                raise Failure(
                    "no answer (stdin closed): nothing written; pass --yes to apply", EXIT_USAGE
                ) from None
            if not confirmed:
                raise Failure("not applied: nothing written", EXIT_FAILED)
        report = svc.sync_directory(snapshot.id, snapshot.users, remove_missing=True)
    if output_format == "json":
        _print(report, snapshot.id, output_format, applied=True)
    else:
        click.echo(f"applied: {report}")
        if (stored.name, stored.defaults) != (snapshot.name, snapshot.defaults):
            click.echo("(the stored name and checkbox settings were kept; only Users changed)")
