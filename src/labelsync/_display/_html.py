"""HTML for labelsync values in Jupyter: compact tables, registered by type (B1).

Everything a User or provider controls (ids, addresses, label names) is passed
through `html.escape`; long tables stop after `MAX_ROWS` rows with a line
saying how many more there are. Label names are the ones people read
("Inbox", "Sent"), as in the DataFrames.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterable, Sequence

from labelsync._repr import html as render
from labelsync.changes import Changes
from labelsync.model import SystemLabel, Tenant, User
from labelsync.policy import Drift, LabelOrigin, Origin

__all__ = ["MAX_ROWS", "block", "changes_html", "drift_html", "escape", "table", "tenant_html"]

MAX_ROWS = 20
"""Rows a table shows before it says "… and N more"; a notebook is for a glance, not a dump."""


@render.register(Changes)
def changes_html(changes: Changes) -> str:
    """What a push would do: the counts per label, then the changes and the skips (R7, R9)."""
    summary = changes.summary()
    counts = summary.counts
    head = (
        f"<b>{summary.users} Users</b>: {counts.users_changed} changed "
        f"(+{counts.selected} selected, &minus;{counts.deselected} deselected); "
        f"skipped: {counts.no_mailbox} no mailbox, {counts.label_missing} label missing"
    )
    per_label = table(
        ("label", "selected", "deselected", "unchanged", "no mailbox", "label missing"),
        [
            (s.label.title, s.selected, s.deselected, s.unchanged, s.no_mailbox, s.label_missing)
            for s in summary.labels
        ],
        len(summary.labels),
    )
    parts = [f"<p>{head}</p>", per_label]
    if changes.changed:
        parts.append(f"<p><b>Changes</b> ({len(changes.changed)})</p>")
        parts.append(
            table(
                ("user", "label", "label id", "change"),
                (
                    (
                        c.user_id,
                        c.label.title,
                        c.label_id,
                        "selected" if c.selected else "deselected",
                    )
                    for c in changes.changed
                ),
                len(changes.changed),
            )
        )
    else:
        parts.append("<p>No User's selection changes.</p>")
    if changes.skipped:
        parts.append(f"<p><b>Skipped</b> ({len(changes.skipped)})</p>")
        parts.append(
            table(
                ("user", "label", "reason"),
                (
                    (s.user_id, "(all)" if s.label is None else s.label.title, s.reason.name)
                    for s in changes.skipped
                ),
                len(changes.skipped),
            )
        )
    return block(parts)


@render.register(Tenant)
def tenant_html(tenant: Tenant) -> str:
    """A tenant at a glance: its settings and last push, then one row per User."""
    defaults = tenant.defaults.describe() if tenant.defaults else "never set"
    onboard = "on" if tenant.onboard_new_users else "off"
    head = [
        (
            f"<b>{escape(tenant.name)}</b> ({escape(tenant.id)}): {len(tenant.users)} Users; "
            f"defaults: {escape(defaults)}; onboard new Users: {onboard}"
        )
    ]
    if tenant.locks is not None and tenant.locks.labels:
        locked = ", ".join(label.title for label in SystemLabel if label in tenant.locks)
        head.append(
            f"locked: {escape(locked)} (by {escape(tenant.locks.actor_id)} at "
            f"{escape(tenant.locks.at.isoformat(timespec='seconds'))})"
        )
    push = tenant.last_push
    if push is not None:
        head.append(
            f"last push {escape(push.job_id)} by {escape(push.actor_id)} at "
            f"{escape(push.started_at.isoformat(timespec='seconds'))} "
            f"({escape(push.defaults.describe())}): {push.counts.users_changed} of "
            f"{push.roster_size} Users changed"
        )
    return block(
        [
            f"<p>{'<br>'.join(head)}</p>",
            table(
                (
                    "user",
                    "email",
                    "provider",
                    "Inbox",
                    "Sent",
                    "other labels synced",
                    "permissions",
                    "Inbox / Sent set by",
                ),
                map(_user_row, tenant.users),
                len(tenant.users),
                escaped=True,
            ),
            (
                "<p>Inbox/Sent: ✓ synced, · not synced, &ndash; the mailbox has no such label; "
                "set by: who made the last change of each (R15)</p>"
            ),
        ]
    )


def _user_row(user: User) -> tuple[str, ...]:
    permissions = ", ".join(sorted(p.name for p in user.permissions))
    if user.mailbox is None:
        return (
            escape(user.id),
            escape(user.email),
            "<i>no mailbox</i>",
            "",
            "",
            "",
            escape(permissions),
            _set_by(user),
        )
    marks = []
    for role in SystemLabel:
        label_id = user.mailbox.label_id(role)
        marks.append("&ndash;" if label_id is None else "✓" if label_id in user.synced else "·")
    others = [
        escape(label.name)
        for label in user.mailbox.labels
        if label.system is None and label.id in user.synced
    ]
    return (
        escape(user.id),
        escape(user.email),
        escape(user.mailbox.provider.name),
        *marks,
        ", ".join(others),
        escape(permissions),
        _set_by(user),
    )


def _who(origin: LabelOrigin) -> str:
    if origin.origin is Origin.UNKNOWN:
        return "?"
    name = origin.origin.name.lower()
    return f"{name} {origin.job_id}" if origin.job_id else name


def _set_by(user: User) -> str:
    return escape(f"{_who(user.provenance.inbox)} / {_who(user.provenance.sent)}")


@render.register(Drift)
def drift_html(drift: Drift) -> str:
    """Who differs from the tenant's defaults, one row per User or label, with why (R18)."""
    if drift.defaults is None:
        return block(["<p>No defaults saved or pushed yet: nothing to drift from.</p>"])
    counts = ", ".join(f"{n} {reason.name}" for reason, n in drift.by_reason().items() if n)
    head = (
        f"<p><b>{len(drift.user_ids)} Users differ</b> from the defaults "
        f"({escape(drift.defaults.describe())}){': ' + escape(counts) if counts else ''}</p>"
    )
    rows = (
        (
            row.user_id,
            "" if row.label is None else row.label.title,
            row.reason.name,
            "" if row.selected is None else ("✓" if row.selected else "·"),
            "" if row.origin is None else (row.origin.describe() or "unknown"),
        )
        for row in drift.rows
    )
    return block([head, table(("user", "label", "why", "now", "set by"), rows, len(drift))])


def escape(value: object) -> str:
    """`value` as text safe inside HTML."""
    return html.escape(str(value))


def block(parts: Iterable[str]) -> str:
    """`parts` in the one ``<div class="labelsync">`` every rendering is wrapped in."""
    return '<div class="labelsync">' + "".join(parts) + "</div>"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    total: int,
    *,
    escaped: bool = False,
) -> str:
    """An HTML table of the first `MAX_ROWS` of `total` rows; `escaped` says cells are HTML already.

    `rows` may be lazy: only the rows shown are built, however long the roster.
    """

    def cell(tag: str, value: object) -> str:
        text = str(value) if escaped else escape(value)
        return f"<{tag}>{text}</{tag}>"

    lines = ["<table>", "<tr>" + "".join(cell("th", name) for name in header) + "</tr>"]
    for row in itertools.islice(rows, MAX_ROWS):
        lines.append("<tr>" + "".join(cell("td", value) for value in row) + "</tr>")
    if total > MAX_ROWS:
        more = f"… and {total - MAX_ROWS} more"
        lines.append(f'<tr><td colspan="{len(header)}"><i>{more}</i></td></tr>')
    lines.append("</table>")
    return "".join(lines)
