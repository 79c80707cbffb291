"""``labelsync demo``: a synthetic tenant built, stored and pushed, with the result explained.

Progress shows from the first second: building the Users, storing them, then
the push itself, so a 200,000-User demo is never silent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import click

from labelsync.changes import Changes
from labelsync.cli._output import (
    audit_table,
    make_console,
    num,
    phase,
    shell_words,
    summary_tables,
    took,
    users_line,
)
from labelsync.cli._shell import batch_size_option, run_job, service
from labelsync.exceptions import AlreadyExists, InvalidInput
from labelsync.model import Defaults, Permission, Provider, SystemLabel, Tenant, User

__all__ = ["demo"]

_DEMO_USERS = 10_000
_TENANT_ID = "demo"
_TENANT_NAME = "Demo Corp"
_TICK = 1_000  # Users built between two updates of the bar


@click.command()
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
@batch_size_option
def demo(users: int, db: Path | None, seed: int, batch_size: int) -> None:
    """Build a synthetic tenant, push Inbox + Sent, show the result.

    Builds a realistic tenant (mixed Gmail, Microsoft and IMAP mailboxes, some
    Users without one) in a SQLite file, pushes Inbox + Sent as its admin with
    a progress bar, and prints the summary, the audit record and three Users'
    Email tabs: a Gmail one, a localised Microsoft one and one without a mailbox.
    """
    from labelsync.synthetic import ADMIN_ID

    out = make_console()
    temporary = db is None
    if db is None:
        db = Path(tempfile.mkdtemp(prefix="labelsync-demo-")) / "demo.db"
    defaults = Defaults(inbox=True, sent=True)
    with service(db, create=True) as svc:
        if _TENANT_ID in svc.store.tenant_ids():
            raise _taken(db, _TENANT_ID)
        out.print(
            f"Database: {db}" + (" (a temporary file; --db PATH picks one)" if temporary else "")
        )
        out.file.flush()
        tenant = _build(users, seed)
        out.print(f"Tenant:   {tenant.id} ({tenant.name}), {_roster_mix(tenant.users)}")
        out.file.flush()
        with phase(f"storing {num(users)} Users in {db.name}"):
            try:
                svc.create_tenant(tenant)
            except AlreadyExists:
                raise _taken(db, tenant.id) from None
        job = svc.start_push(tenant.id, actor_id=ADMIN_ID, defaults=defaults)
        out.print(
            f"Push:     {defaults.describe()}, by {ADMIN_ID}, to {num(job.total)} Users "
            f"in batches of {batch_size}"
        )
        out.file.flush()
        job = run_job(svc, job, db, batch_size)
        changes = svc.changes(job.id)
        last_push = job.record()  # what the store keeps as tenant.last_push
        examples = _examples(tenant.users)
        tabs = [(title, svc.user(tenant.id, user_id)) for title, user_id in examples]

    summary = changes.summary()
    out.print(f"Pushed:   {num(job.processed)} Users{took(job)}")
    out.print()
    out.print(f"Summary:  {users_line(summary.users, summary.counts)}")
    out.print()
    for table in summary_tables(summary):
        out.print(table)
        out.print()
    out.print(audit_table(last_push))
    out.print()
    out.print("Email tabs", style="bold")
    per_user = _changes_by_user(changes)
    for title, user in tabs:
        out.print()
        out.print(_email_tab_text(title, user, per_user.get(user.id, ())))
    out.print()
    out.print("Next:")
    out.print(f"  {shell_words('labelsync', 'status', '--db', db)}")
    out.print(f"  {shell_words('labelsync', 'export', '--db', db, '--tenant', tenant.id)}")
    preview = shell_words("labelsync", "preview", "--db", db, "--tenant", tenant.id)
    out.print(f"  {preview} --inbox --no-sent")


def _build(users: int, seed: int) -> Tenant:
    """The synthetic tenant of `users` Users, with a progress bar while they are generated."""
    from labelsync.synthetic import synthetic_users

    built: list[User] = []
    with phase(f"building {num(users)} synthetic Users", total=users) as advance:
        for user in synthetic_users(users, seed=seed):
            built.append(user)
            if len(built) % _TICK == 0:
                advance(len(built))
        advance(len(built))
    return Tenant(id=_TENANT_ID, name=_TENANT_NAME, users=tuple(built))


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
        f"{num(count)} {provider.name.title() if provider is not Provider.IMAP else 'IMAP'}"
        for provider, count in by_provider.items()
        if provider is not None and count
    ]
    parts.append(f"{num(by_provider[None])} without a mailbox")
    return f"{num(total)} Users: " + ", ".join(parts)


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
        # The same remarks as the Email tab: the note, who set it (R15), a lock (R17).
        remarks = row.remarks()
        lines.append(f"  {mark} {row.label.name}{'  ' + remarks if remarks else ''}")
    if hidden:
        lines.append(f"  ... and {hidden} more labels, not synced")
    return "\n".join(lines)
