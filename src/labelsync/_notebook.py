"""How labelsync values look in Jupyter: compact HTML tables, and pandas DataFrames (B1).

Everything a User or provider controls (ids, addresses, label names) is passed
through `html.escape`; long tables stop after `MAX_ROWS` rows with a line
saying how many more there are. pandas is imported only when a DataFrame is
asked for, and its absence raises `MissingExtra` naming the ``notebook`` extra.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from labelsync.exceptions import MissingExtra
from labelsync.model import SystemLabel

if TYPE_CHECKING:
    import pandas as pd

    from labelsync.changes import Changes
    from labelsync.model import Tenant, User
    from labelsync.whatif import Comparison

__all__ = [
    "CHANGE_COLUMNS",
    "MAX_ROWS",
    "changes_html",
    "comparison_html",
    "records_frame",
    "tenant_html",
]

MAX_ROWS = 20
"""Rows a table shows before it says "… and N more"; a notebook is for a glance, not a dump."""

CHANGE_COLUMNS = ("kind", "user_id", "label", "label_id", "selected", "reason")
"""The columns of `Changes.to_records`, kept even when there is no record."""


def records_frame(
    records: Iterable[Mapping[str, Any]], columns: Sequence[str] = CHANGE_COLUMNS
) -> pd.DataFrame:
    """`records` as a pandas DataFrame with `columns` in that order (the ``notebook`` extra)."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingExtra("DataFrame export", "notebook", "pandas") from None
    return pd.DataFrame.from_records(list(records), columns=list(columns))


def changes_html(changes: Changes) -> str:
    """What a push would do: the counts per label, then the changes and the skips (R7, R9)."""
    summary = changes.summary()
    counts = summary.counts
    head = (
        f"<b>{summary.users} Users</b>: {counts.users_changed} changed "
        f"(+{counts.selected} selected, &minus;{counts.deselected} deselected); "
        f"skipped: {counts.no_mailbox} no mailbox, {counts.label_missing} label missing"
    )
    per_label = _table(
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
            _table(
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
            _table(
                ("user", "label", "reason"),
                (
                    (s.user_id, "(all)" if s.label is None else s.label.title, s.reason.name)
                    for s in changes.skipped
                ),
                len(changes.skipped),
            )
        )
    return _block(parts)


def tenant_html(tenant: Tenant) -> str:
    """A tenant at a glance: its settings and last push, then one row per User."""
    defaults = tenant.defaults.describe() if tenant.defaults else "never set"
    onboard = "on" if tenant.onboard_new_users else "off"
    head = [
        (
            f"<b>{_e(tenant.name)}</b> ({_e(tenant.id)}): {len(tenant.users)} Users; "
            f"defaults: {_e(defaults)}; onboard new Users: {onboard}"
        )
    ]
    push = tenant.last_push
    if push is not None:
        head.append(
            f"last push {_e(push.job_id)} by {_e(push.actor_id)} at "
            f"{_e(push.started_at.isoformat(timespec='seconds'))} "
            f"({_e(push.defaults.describe())}): {push.counts.users_changed} of "
            f"{push.roster_size} Users changed"
        )
    return _block(
        [
            f"<p>{'<br>'.join(head)}</p>",
            _table(
                (
                    "user",
                    "email",
                    "provider",
                    "Inbox",
                    "Sent",
                    "other labels synced",
                    "permissions",
                ),
                map(_user_row, tenant.users),
                len(tenant.users),
                escaped=True,
            ),
            "<p>Inbox/Sent: ✓ synced, · not synced, &ndash; the mailbox has no such label</p>",
        ]
    )


def _user_row(user: User) -> tuple[str, ...]:
    permissions = ", ".join(sorted(p.name for p in user.permissions))
    if user.mailbox is None:
        return (_e(user.id), _e(user.email), "<i>no mailbox</i>", "", "", "", _e(permissions))
    marks = []
    for role in SystemLabel:
        label_id = user.mailbox.label_id(role)
        marks.append("&ndash;" if label_id is None else "✓" if label_id in user.synced else "·")
    others = [
        _e(label.name)
        for label in user.mailbox.labels
        if label.system is None and label.id in user.synced
    ]
    return (
        _e(user.id),
        _e(user.email),
        _e(user.mailbox.provider.name),
        *marks,
        ", ".join(others),
        _e(permissions),
    )


def comparison_html(comparison: Comparison) -> str:
    """Candidate defaults side by side: one row each, with what pushing it would do."""
    head = (
        f"<b>What-if</b> for {_e(comparison.tenant_id)}: {comparison.users} Users, "
        f"{len(comparison.rows)} candidates"
    )
    table = _table(
        (
            "candidate",
            "Inbox",
            "Sent",
            "Users changed",
            "selected",
            "deselected",
            "no mailbox",
            "label missing",
        ),
        [
            (
                row.candidate,
                "on" if row.defaults.inbox else "off",
                "on" if row.defaults.sent else "off",
                row.users_changed,
                row.selected,
                row.deselected,
                row.no_mailbox,
                row.label_missing,
            )
            for row in comparison.rows
        ],
        len(comparison.rows),
    )
    note = "<p>Users changed: Users whose own Inbox/Sent choice the push overrides.</p>"
    return _block([f"<p>{head}</p>", table, note])


def _e(value: object) -> str:
    return html.escape(str(value))


def _block(parts: Iterable[str]) -> str:
    return '<div class="labelsync">' + "".join(parts) + "</div>"


def _table(
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
        text = str(value) if escaped else _e(value)
        return f"<{tag}>{text}</{tag}>"

    lines = ["<table>", "<tr>" + "".join(cell("th", name) for name in header) + "</tr>"]
    for row in itertools.islice(rows, MAX_ROWS):
        lines.append("<tr>" + "".join(cell("td", value) for value in row) + "</tr>")
    if total > MAX_ROWS:
        more = f"… and {total - MAX_ROWS} more"
        lines.append(f'<tr><td colspan="{len(header)}"><i>{more}</i></td></tr>')
    lines.append("</table>")
    return "".join(lines)
