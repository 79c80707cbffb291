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
    "overridden",
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

    @property
    def overridden(self) -> int:
        """Users whose own INBOX/SENT choice the push flips: every User it changes.

        A push only ever changes INBOX and SENT (R5), and any change it makes
        replaces what the User had, so this equals `users_changed`.
        """
        return self.users_changed

    def to_record(self) -> dict[str, Any]:
        """This row as a plain dict with the keys of `COMPARISON_COLUMNS`."""
        return {
            "candidate": self.candidate,
            "inbox": self.defaults.inbox,
            "sent": self.defaults.sent,
            "users": self.users,
            "users_changed": self.users_changed,
            "overridden": self.overridden,
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
        """`to_records` as a pandas DataFrame, one row per candidate (the ``notebook`` extra)."""
        from labelsync._notebook import records_frame

        return records_frame(self.to_records(), COMPARISON_COLUMNS)

    def _repr_html_(self) -> str:
        from labelsync._notebook import comparison_html

        return comparison_html(self)

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


def compare(tenant: Tenant, candidates: Mapping[str, Defaults]) -> Comparison:
    """Preview each of `candidates` (name -> `Defaults`) on `tenant`; nothing is changed.

    Each row counts what ``apply_defaults(tenant, defaults)`` reports, so the
    numbers are the push's own.
    """
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
        _, changes = apply_defaults(tenant, defaults)
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
    return Comparison(tenant_id=tenant.id, users=len(tenant.users), rows=tuple(rows))
