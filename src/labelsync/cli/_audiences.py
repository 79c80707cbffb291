"""The commands of version 2's audiences: ``push --group/--users``, ``coverage``, ``presets``.

`audience_options` and `target_of` give ``push`` and ``preview`` the same
audience (R20) from the same options; ``labelsync coverage`` shows who the
defaults reach (R22); ``labelsync presets ...`` keeps a tenant's presets (R21).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from labelsync.audience import Audience
from labelsync.cli._output import make_console, num, write_json
from labelsync.cli._shell import (
    batch_size_option,
    defaults_of,
    existing_db,
    label_options,
    run_job,
    service,
    suggesting_admins,
)
from labelsync.coverage import CoverageStatus
from labelsync.model import Defaults, SystemLabel, Tenant
from labelsync.policy import PushMode, drifted_push
from labelsync.presets import Preset, PresetBook

__all__ = [
    "audience_of",
    "audience_options",
    "coverage_command",
    "presets",
    "preview_target",
    "target_of",
    "whom",
]

_F = TypeVar("_F", bound=Callable[..., object])


def audience_options(command: _F) -> _F:
    """``--group NAME`` (repeatable), ``--users ID,ID`` and ``--drifted``: who a push (or its
    preview) goes to (R20, R18)."""
    command = click.option(
        "--drifted",
        is_flag=True,
        help="The tenant's saved defaults, to exactly the Users whose Inbox/Sent differ "
        "from them now (drift, R18); leave out --inbox/--sent.",
    )(command)
    command = click.option(
        "--users",
        "user_ids",
        metavar="ID,ID",
        help="Push only to these Users (comma-separated ids).",
    )(command)
    return click.option(
        "--group",
        "groups",
        multiple=True,
        metavar="NAME",
        help="Push only to the members of this group (repeatable: any of them).",
    )(command)


def audience_of(groups: tuple[str, ...], user_ids: str | None) -> Audience:
    """The audience the options name: everyone unless ``--group`` or ``--users`` narrows it."""
    if groups and user_ids is not None:
        raise click.UsageError("give --group or --users, not both")
    if groups:
        return Audience.groups(groups)
    if user_ids is not None:
        ids = [part.strip() for part in user_ids.split(",") if part.strip()]
        if not ids:
            raise click.UsageError("--users needs at least one User id (e.g. --users u1,u2)")
        return Audience.users(ids)
    return Audience.everyone()


def target_of(
    inbox: bool | None,
    sent: bool | None,
    groups: tuple[str, ...],
    user_ids: str | None,
    *,
    drifted: bool,
) -> tuple[Defaults | None, Audience]:
    """The checkboxes and audience that the options of ``push`` and ``preview`` name.

    With ``--drifted`` the defaults are None and the audience a placeholder: the
    tenant's saved defaults and the Users that drifted from them are known only
    once the tenant is read (`labelsync.policy.drifted_push`).
    """
    if drifted:
        if inbox is not None or sent is not None or groups or user_ids is not None:
            raise click.UsageError(
                "--drifted pushes the tenant's saved defaults to its drifted Users; "
                "leave out --inbox/--sent, --group and --users"
            )
        return None, Audience.everyone()
    return defaults_of(inbox, sent), audience_of(groups, user_ids)


def preview_target(
    tenant: Tenant, defaults: Defaults | None, audience: Audience
) -> tuple[Defaults, Audience]:
    """What ``preview`` shows for `target_of`'s answer on `tenant`: the defaults and audience
    ``push`` with the same options would start with, refused as ``push`` refuses them."""
    if defaults is None:
        return drifted_push(tenant)
    audience.check_users_known(tenant.id, tenant)
    return defaults, audience


def whom(audience: Audience, *, drifted: bool) -> str:
    """`` (group sales)`` after a push's or preview's defaults; nothing for everyone."""
    if drifted:
        return " (the Users that drifted from these defaults)"
    return f" ({audience.describe()})" if audience.narrowed else ""


def _format_option(command: _F) -> _F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text for people; json (one document on stdout) for programs.",
    )(command)


# -- coverage --------------------------------------------------------------------------------


@click.command(name="coverage")
@existing_db
@click.option("--tenant", "tenant_id", required=True, help="Id of the tenant.")
@_format_option
def coverage_command(db: Path, tenant_id: str, output_format: str) -> None:
    """Show, per User of the tenant, whether the defaults reach them, and why not (R22).

    Each User gets one status: covered, no mailbox, label missing, cannot see
    the Email tab (no EMAIL_SYNC), drifted, or stale selection ids; roles a
    mail server did not mark but labelsync guessed from a name are listed too.
    """
    with service(db) as svc:
        seen = svc.coverage(tenant_id)
        presets = svc.presets(tenant_id)
    if output_format == "json":
        write_json(
            {
                "tenant": seen.tenant_id,
                "defaults": None
                if seen.defaults is None
                else {"inbox": seen.defaults.inbox, "sent": seen.defaults.sent},
                "counts": {status.name: n for status, n in seen.counts().items()},
                "by_group": {
                    group: {status.name: n for status, n in counts.items()}
                    for group, counts in seen.by_group().items()
                },
                "users": seen.to_records(),
                "presets": [a.group for a in presets.assignments],
            }
        )
        return
    out = make_console()
    out.print(str(seen))
    groups = seen.by_group()
    if len(groups) > 1 or next(iter(groups), None) not in (None, "(no group)"):
        out.print("By group (covered / not covered):")
        for group, counts in groups.items():
            covered = counts[CoverageStatus.COVERED]
            out.print(f"  {group}: {num(covered)} / {num(sum(counts.values()) - covered)}")


# -- presets ---------------------------------------------------------------------------------


def _preset_doc(preset: Preset, book: PresetBook) -> dict[str, object]:
    return {
        "name": preset.name,
        "inbox": preset.defaults.inbox,
        "sent": preset.defaults.sent,
        "locks": [label.name for label in SystemLabel if label in preset.locks],
        "mode": preset.mode.name,
        "groups": list(book.groups_of(preset.name)),
    }


def _show(book: PresetBook, output_format: str) -> None:
    if output_format == "json":
        write_json(
            {
                "version": book.version,
                "presets": [_preset_doc(p, book) for p in book.presets],
                "assignments": [{"group": a.group, "preset": a.preset} for a in book.assignments],
            }
        )
        return
    out = make_console()
    if not book.presets:
        out.print("No presets yet: labelsync presets create ...")
        return
    for preset in book.presets:
        groups = ", ".join(book.groups_of(preset.name)) or "no group"
        out.print(f"{preset.name}: {preset.describe()}; groups: {groups}")
    if book.assignments:
        order = ", ".join(f"{a.group} -> {a.preset}" for a in book.assignments)
        out.print(f"Precedence (first matching group wins): {order}")


_actor = click.option("--actor", "actor_id", required=True, help="Id of the admin User.")
# The tenant is an option, as for every other command (push, preview, history, ...).
_tenant = click.option("--tenant", "tenant_id", required=True, help="Id of the tenant.")


@click.group()
def presets() -> None:
    """Keep a tenant's presets: named defaults, locks and a mode, one per group (R21)."""


@presets.command(name="list")
@existing_db
@_tenant
@_format_option
def list_presets(db: Path, tenant_id: str, output_format: str) -> None:
    """List the presets of the tenant and which groups have them, in precedence order."""
    with service(db) as svc:
        _show(svc.presets(tenant_id), output_format)


@presets.command()
@existing_db
@_tenant
@click.argument("name")
@_actor
@label_options
@click.option(
    "--lock",
    "locks",
    multiple=True,
    type=click.Choice([label.name for label in SystemLabel], case_sensitive=False),
    help="Lock this label for the preset's Users (repeatable).",
)
@click.option(
    "--mode",
    type=click.Choice([mode.name for mode in PushMode], case_sensitive=False),
    default=PushMode.OVERRIDE.name,
    show_default=True,
    help="How applying the preset treats Users' own choices.",
)
def create(
    db: Path,
    tenant_id: str,
    name: str,
    actor_id: str,
    inbox: bool | None,
    sent: bool | None,
    locks: tuple[str, ...],
    mode: str,
) -> None:
    """Create preset NAME of the tenant; admins only."""
    if inbox is None or sent is None:
        raise click.UsageError("say both --inbox/--no-inbox and --sent/--no-sent")
    preset = Preset(
        name=name,
        defaults=Defaults(inbox=inbox, sent=sent),
        locks=frozenset(SystemLabel[label.upper()] for label in locks),
        mode=PushMode[mode.upper()],
    )
    with service(db) as svc, suggesting_admins(svc, tenant_id, actor_id):
        svc.create_preset(tenant_id, actor_id=actor_id, preset=preset)
    click.echo(f"preset {name!r} created: {preset.describe()}")


@presets.command()
@existing_db
@_tenant
@click.argument("name")
@click.argument("new_name")
@_actor
def rename(db: Path, tenant_id: str, name: str, new_name: str, actor_id: str) -> None:
    """Rename preset NAME of the tenant to NEW_NAME; its groups keep it. Admins only."""
    with service(db) as svc, suggesting_admins(svc, tenant_id, actor_id):
        svc.rename_preset(tenant_id, actor_id=actor_id, name=name, new_name=new_name)
    click.echo(f"preset {name!r} renamed to {new_name!r}")


@presets.command()
@existing_db
@_tenant
@click.argument("name")
@_actor
def delete(db: Path, tenant_id: str, name: str, actor_id: str) -> None:
    """Delete preset NAME of the tenant and its group assignments; admins only."""
    with service(db) as svc, suggesting_admins(svc, tenant_id, actor_id):
        svc.delete_preset(tenant_id, actor_id=actor_id, name=name)
    click.echo(f"preset {name!r} deleted")


@presets.command()
@existing_db
@_tenant
@click.argument("group")
@click.argument("name", required=False)
@_actor
@click.option(
    "--position",
    type=click.IntRange(min=0),
    help="Place in the precedence order (0: first); last if not given.",
)
@click.option("--none", "unassign", is_flag=True, help="Take GROUP's preset away.")
def assign(
    db: Path,
    tenant_id: str,
    group: str,
    name: str | None,
    actor_id: str,
    position: int | None,
    unassign: bool,
) -> None:
    """Give GROUP of the tenant preset NAME (or, with --none, no preset); admins only."""
    if (name is None) is not unassign:
        raise click.UsageError("give a preset NAME, or --none to take the group's preset away")
    with service(db) as svc, suggesting_admins(svc, tenant_id, actor_id):
        book = svc.assign_preset(
            tenant_id, actor_id=actor_id, group=group, name=name, position=position
        )
    if name is None:
        click.echo(f"group {group!r} has no preset now")
    else:
        rank = [a.group for a in book.assignments].index(group)
        click.echo(f"group {group!r} has preset {name!r} (precedence {rank})")


@presets.command()
@existing_db
@_tenant
@click.argument("name")
@_actor
@batch_size_option
def apply(db: Path, tenant_id: str, name: str, actor_id: str, batch_size: int) -> None:
    """Push preset NAME to the members of its groups now; admins only."""
    err = make_console(stderr=True)
    with service(db) as svc:
        book = svc.presets(tenant_id)
        preset = book.preset(name)
        audience = book.audience(name)
        with suggesting_admins(svc, tenant_id, actor_id):
            job = svc.start_preset(tenant_id, actor_id=actor_id, name=name)
        err.print(
            f"push {job.id} of preset {name!r} started: {preset.describe()}, to "
            f"{num(job.total)} Users of {audience.describe()}; Ctrl-C leaves it resumable"
        )
        job = run_job(svc, job, db, batch_size)
    sys.stdout.write(f"push {job.id} {job.status.name.lower()}: {num(job.processed)} Users\n")
