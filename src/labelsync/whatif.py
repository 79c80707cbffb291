"""What-if: several candidate `Defaults` pushed to one tenant, side by side (B1).

``compare(tenant, {"Inbox only": Defaults(inbox=True, sent=False), ...})``
previews each candidate with `apply_defaults` itself (the rule is never
re-implemented here) and returns a `Comparison`: one row of counts per
candidate, printable as text, rendered as HTML in Jupyter, exportable as
records or a pandas DataFrame, and drawn as a grouped bar chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from labelsync._display import block, escape, table
from labelsync._repr import html
from labelsync.audience import EVERYONE, Audience
from labelsync.changes import Changes
from labelsync.exceptions import InvalidInput, MissingExtra, NotFound
from labelsync.model import Defaults, Tenant
from labelsync.rules import apply_defaults

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["COMPARISON_COLUMNS", "Comparison", "ComparisonRow", "compare"]

COMPARISON_COLUMNS = (
    "candidate",
    "inbox",
    "sent",
    "users",
    "users_changed",
    "selected",
    "deselected",
    "no_mailbox",
    "label_missing",
)
"""The keys of `Comparison.to_records`, in order."""

# What the bar chart draws per candidate: (attribute, legend label). Skips are left
# out: both checkboxes are always pushed (R2), so every candidate skips the same
# Users and labels, and the chart says so once in its caption.
_BARS = (
    ("users_changed", "Users changed"),
    ("selected", "labels selected"),
    ("deselected", "labels deselected"),
)


@frozen
class ComparisonRow:
    """What pushing one candidate would do to the tenant, counted (R3, R4, R7)."""

    candidate: str
    """The name the candidate was given, e.g. ``"Inbox only"``."""
    defaults: Defaults
    users: int
    """The roster size, skipped Users included."""
    users_changed: int
    """Users whose INBOX/SENT selection the push would change, overriding their own (R4)."""
    selected: int
    """Labels the push would select."""
    deselected: int
    """Labels the push would deselect, even where the User selected them (R4)."""
    no_mailbox: int
    """Users skipped because they have no mailbox."""
    label_missing: int
    """Labels skipped because the mailbox lacks them."""
    changes: Changes = field(eq=False, repr=False)
    """The full preview, to see who exactly (``row.changes.to_dataframe()``)."""

    def to_record(self) -> dict[str, Any]:
        """This row as a plain dict with the keys of `COMPARISON_COLUMNS`."""
        return {
            "candidate": self.candidate,
            "inbox": self.defaults.inbox,
            "sent": self.defaults.sent,
            "users": self.users,
            "users_changed": self.users_changed,
            "selected": self.selected,
            "deselected": self.deselected,
            "no_mailbox": self.no_mailbox,
            "label_missing": self.label_missing,
        }


@frozen
class Comparison:
    """Candidate defaults compared on one tenant: one `ComparisonRow` each, in the given order."""

    tenant_id: str
    users: int
    rows: tuple[ComparisonRow, ...]
    audience: Audience = EVERYONE
    """Who every candidate was previewed on (R20); `users` counts its members."""

    def row(self, candidate: str) -> ComparisonRow:
        """The row of `candidate`; `NotFound` if no candidate has that name."""
        for row in self.rows:
            if row.candidate == candidate:
                return row
        raise NotFound("candidate", candidate, "is not one of the compared candidates")

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per candidate (keys: `COMPARISON_COLUMNS`), for pandas or JSON."""
        return [row.to_record() for row in self.rows]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per candidate as a pandas DataFrame, columns `COMPARISON_COLUMNS`.

        ``candidate`` is a string, ``inbox`` and ``sent`` bools, the counts
        int64. Needs the ``notebook`` extra.
        """
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtra("Comparison.to_dataframe", "notebook", "pandas") from None
        types = dict.fromkeys(COMPARISON_COLUMNS, "int64")
        types.update(candidate="string", inbox="bool", sent="bool")
        frame = pd.DataFrame.from_records(self.to_records(), columns=list(COMPARISON_COLUMNS))
        return frame.astype(types)

    def _repr_html_(self) -> str | None:
        return html(self)

    def __str__(self) -> str:
        header = (
            "candidate",
            "inbox",
            "sent",
            "changed",
            "selected",
            "deselected",
            "no mailbox",
            "label missing",
        )
        body = [
            (
                row.candidate,
                "on" if row.defaults.inbox else "off",
                "on" if row.defaults.sent else "off",
                str(row.users_changed),
                str(row.selected),
                str(row.deselected),
                str(row.no_mailbox),
                str(row.label_missing),
            )
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            first = cells[0].ljust(widths[0])
            flags = [cell.ljust(width) for cell, width in zip(cells[1:3], widths[1:3], strict=True)]
            counts = [cell.rjust(width) for cell, width in zip(cells[3:], widths[3:], strict=True)]
            return "  ".join([first, *flags, *counts]).rstrip()

        title = f"What-if for tenant {self.tenant_id} ({self.users} Users)"
        if self.audience.narrowed:
            title = f"{title[:-1]} of {self.audience.describe()})"
        return "\n".join([title, line(header), *(line(cells) for cells in body)])

    def plot(self, ax: Axes | None = None) -> Axes:
        """A grouped bar chart: per candidate, Users changed, labels selected and deselected.

        Draws on `ax` if given, else on a new pyplot figure; returns the axes.
        The skips, the same for every candidate, are given below the bars.
        Needs the ``notebook`` extra (matplotlib).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise MissingExtra("Comparison.plot", "notebook", "matplotlib") from None
        if ax is None:
            _, ax = plt.subplots(
                figsize=(max(6.0, 1.2 * len(self.rows) + 3), 4), layout="constrained"
            )
        width = 0.8 / len(_BARS)
        positions = range(len(self.rows))
        for index, (attribute, label) in enumerate(_BARS):
            offset = (index - (len(_BARS) - 1) / 2) * width
            values = [getattr(row, attribute) for row in self.rows]
            bars = ax.bar([p + offset for p in positions], values, width, label=label)
            ax.bar_label(bars, fontsize="x-small")
        ax.set_xticks(list(positions), [row.candidate for row in self.rows])
        ax.set_ylabel("count")
        ax.set_title(f"What-if: {self.tenant_id}, {self.users} Users")
        first = self.rows[0]
        ax.set_xlabel(
            f"skipped whatever the candidate: Users without a mailbox {first.no_mailbox}, "
            f"labels missing {first.label_missing}",
            fontsize="small",
        )
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return ax


def compare(
    tenant: Tenant, candidates: Mapping[str, Defaults], *, audience: Audience | None = None
) -> Comparison:
    """Preview each of `candidates` (name -> `Defaults`) on `tenant`; nothing is changed.

    Each row counts what ``apply_defaults(tenant, defaults, audience=audience)``
    reports, so the numbers are the push's own; with an `audience` (R20) the
    candidates are compared on its members only.
    """
    if audience is not None and not isinstance(audience, Audience):
        raise InvalidInput("audience", audience, "is not an Audience")
    audience = audience or Audience.everyone()
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    if not isinstance(candidates, Mapping):
        raise InvalidInput("candidates", candidates, "is not a mapping of name to Defaults")
    if not candidates:
        raise InvalidInput("candidates", candidates, "is empty; name at least one Defaults")
    given: list[tuple[object, object]] = list(candidates.items())  # as passed, not as typed
    for name, defaults in given:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("candidates", name, "is not a candidate name (a non-empty string)")
        if not isinstance(defaults, Defaults):
            raise InvalidInput(f"candidates[{name!r}]", defaults, "is not a Defaults")
    rows = []
    for name, defaults in candidates.items():
        _, changes = apply_defaults(tenant, defaults, audience=audience)
        counts = changes.counts()
        rows.append(
            ComparisonRow(
                candidate=name,
                defaults=defaults,
                users=changes.users,
                users_changed=counts.users_changed,
                selected=counts.selected,
                deselected=counts.deselected,
                no_mailbox=counts.no_mailbox,
                label_missing=counts.label_missing,
                changes=changes,
            )
        )
    users = len(tenant.users) if not audience.narrowed else rows[0].users
    return Comparison(tenant_id=tenant.id, users=users, rows=tuple(rows), audience=audience)


@html.register(Comparison)
def _comparison_html(comparison: Comparison) -> str:
    """Candidate defaults side by side: one row each, with what pushing it would do."""
    head = (
        f"<b>What-if</b> for {escape(comparison.tenant_id)}: {comparison.users} Users, "
        f"{len(comparison.rows)} candidates"
    )
    if comparison.audience.narrowed:
        head += f", audience: {escape(comparison.audience.describe())}"
    rows = table(
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
    return block([f"<p>{head}</p>", rows, note])
