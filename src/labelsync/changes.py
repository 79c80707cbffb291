"""What a push does, as typed records: label changes, skips, and their summary (R7, R9, B2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from labelsync import _validate as v
from labelsync.exceptions import MissingExtra
from labelsync.model import PushCounts, SkipReason, SystemLabel

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Changes", "LabelChange", "LabelSummary", "Skip", "SkipReason", "Summary"]

# The compact forms the rule emits: building a frozen attrs record costs about
# 1 µs, a tuple about 40 ns, and a notebook often only wants the counts. So the
# rule appends these rows and `Changes` turns them into records on first access.
ChangeRow = tuple[str, SystemLabel, str, bool]
SkipRow = tuple[str, SystemLabel | None, SkipReason]


_LABELS = tuple(label.title for label in SystemLabel)
"""The categories of a frame's ``label`` column: the names people read, as in the HTML."""


def count_rows(change_rows: Iterable[ChangeRow], skip_rows: Iterable[SkipRow]) -> PushCounts:
    """The `PushCounts` of a run of rows from the rule (one roster or one batch)."""
    users: set[str] = set()
    selected = deselected = 0
    for user_id, _, _, is_selected in change_rows:
        users.add(user_id)
        if is_selected:
            selected += 1
        else:
            deselected += 1
    reasons = Counter(row[2] for row in skip_rows)
    return PushCounts(
        users_changed=len(users),
        selected=selected,
        deselected=deselected,
        no_mailbox=reasons[SkipReason.NO_MAILBOX],
        label_missing=reasons[SkipReason.LABEL_MISSING],
        user_choice_kept=reasons[SkipReason.USER_CHOICE_KEPT],
        user_removed=reasons[SkipReason.USER_REMOVED],
    )


@frozen
class LabelChange:
    """One system label of one User that a push selected (`selected=True`) or deselected."""

    user_id: str = field(validator=v.an_id)
    label: SystemLabel = field(validator=v.member_of(SystemLabel))
    label_id: str = field(validator=v.an_id)
    selected: bool = field(validator=v.strict_bool)

    def _row(self) -> ChangeRow:
        return (self.user_id, self.label, self.label_id, self.selected)


@frozen
class Skip:
    """A User (label=None) or one label of a User that a push could not cover, and why (R7)."""

    user_id: str = field(validator=v.an_id)
    label: SystemLabel | None = field(validator=v.member_of(SystemLabel, optional=True))
    reason: SkipReason = field(validator=v.member_of(SkipReason))

    def _row(self) -> SkipRow:
        return (self.user_id, self.label, self.reason)


@frozen
class LabelSummary:
    """For one system label: how many roster Users had it selected, deselected, left, or skipped."""

    label: SystemLabel
    selected: int
    deselected: int
    unchanged: int
    no_mailbox: int
    label_missing: int
    user_choice_kept: int = 0
    """Users whose own choice of this label a KEEP_USER_CHOICES push left (R16)."""


@frozen
class Summary:
    """The counts of a push over its roster, per label and in all."""

    users: int
    counts: PushCounts
    labels: tuple[LabelSummary, ...]

    def __str__(self) -> str:
        head = f"{'label':<6} {'selected':>9} {'deselected':>11} {'unchanged':>10} "
        head += f"{'no mailbox':>11} {'label missing':>14}"
        lines = [
            f"{self.users} Users, {self.counts.users_changed} changed, {self.counts.skipped} skips",
            head,
        ]
        for s in self.labels:
            lines.append(
                f"{s.label.title:<6} {s.selected:>9} {s.deselected:>11} {s.unchanged:>10} "
                f"{s.no_mailbox:>11} {s.label_missing:>14}"
            )
        return "\n".join(lines)


@frozen(repr=False)
class Changes:
    """The exact difference a push makes to a roster (R9), and who it could not cover (R7).

    `changed` lists one `LabelChange` per label whose selection flipped, in roster
    order; a User whose selection did not change appears nowhere in it.
    """

    _change_rows: tuple[ChangeRow, ...] = field(alias="change_rows")
    _skip_rows: tuple[SkipRow, ...] = field(alias="skip_rows")
    users: int = field(validator=v.count)
    """The roster size: every User the push looked at, skipped ones included."""

    @classmethod
    def of(cls, changed: Iterable[LabelChange], skipped: Iterable[Skip], *, users: int) -> Changes:
        """Build from records, e.g. a stored push's changes read back."""
        return cls(
            change_rows=tuple(c._row() for c in changed),
            skip_rows=tuple(s._row() for s in skipped),
            users=users,
        )

    @cached_property
    def changed(self) -> tuple[LabelChange, ...]:
        """Every label a push flipped, one record each."""
        return tuple(LabelChange(*row) for row in self._change_rows)

    @cached_property
    def skipped(self) -> tuple[Skip, ...]:
        """Every User or label the push skipped, with the reason (R7)."""
        return tuple(Skip(*row) for row in self._skip_rows)

    @cached_property
    def changed_user_ids(self) -> tuple[str, ...]:
        """The ids of the Users whose selection changed, in roster order."""
        return tuple(dict.fromkeys(row[0] for row in self._change_rows))

    def counts(self) -> PushCounts:
        """The totals that a push job's audit record keeps (R11)."""
        return count_rows(self._change_rows, self._skip_rows)

    def summary(self) -> Summary:
        """Counts per label: selected, deselected, unchanged, skipped by reason."""
        flips = Counter((row[1], row[3]) for row in self._change_rows)
        missing = Counter(row[1] for row in self._skip_rows if row[2] is SkipReason.LABEL_MISSING)
        kept = Counter(row[1] for row in self._skip_rows if row[2] is SkipReason.USER_CHOICE_KEPT)
        no_mailbox = sum(1 for row in self._skip_rows if row[2] is SkipReason.NO_MAILBOX)
        # A User removed while the push ran (R14) neither changed nor stayed unchanged.
        removed = sum(1 for row in self._skip_rows if row[2] is SkipReason.USER_REMOVED)
        labels = []
        for label in SystemLabel:
            selected, deselected = flips[(label, True)], flips[(label, False)]
            labels.append(
                LabelSummary(
                    label=label,
                    selected=selected,
                    deselected=deselected,
                    unchanged=self.users
                    - selected
                    - deselected
                    - no_mailbox
                    - removed
                    - missing[label]
                    - kept[label],
                    no_mailbox=no_mailbox,
                    label_missing=missing[label],
                    user_choice_kept=kept[label],
                )
            )
        return Summary(users=self.users, counts=self.counts(), labels=tuple(labels))

    def __len__(self) -> int:
        return len(self._change_rows)

    def __bool__(self) -> bool:
        return bool(self._change_rows)

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"<Changes: {self.users} Users, {c.users_changed} changed "
            f"(+{c.selected} selected, -{c.deselected} deselected), "
            f"skipped {c.no_mailbox} no mailbox, {c.label_missing} label missing"
            + (f", {c.user_choice_kept} user choices kept>" if c.user_choice_kept else ">")
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per change and per skip (``kind`` tells which), for pandas or JSON."""
        records: list[dict[str, Any]] = [
            {
                "kind": "change",
                "user_id": user_id,
                "label": label.name,
                "label_id": label_id,
                "selected": selected,
                "reason": None,
            }
            for user_id, label, label_id, selected in self._change_rows
        ]
        records.extend(
            {
                "kind": "skip",
                "user_id": user_id,
                "label": None if label is None else label.name,
                "label_id": None,
                "selected": None,
                "reason": reason.name,
            }
            for user_id, label, reason in self._skip_rows
        )
        return records

    def changed_frame(self) -> pd.DataFrame:
        """One row per label flipped, as a typed pandas DataFrame (the ``notebook`` extra).

        Columns: ``user_id`` and ``label_id`` (string), ``label`` (categorical,
        "Inbox" or "Sent", as the HTML table names them), ``selected`` (bool).
        """
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtra("Changes.changed_frame", "notebook", "pandas") from None
        changed = self.changed  # the typed records, whatever form the rule's rows take
        return pd.DataFrame(
            {
                "user_id": pd.array([c.user_id for c in changed], dtype="string"),
                "label": pd.Categorical([c.label.title for c in changed], categories=_LABELS),
                "label_id": pd.array([c.label_id for c in changed], dtype="string"),
                "selected": pd.array([c.selected for c in changed], dtype="bool"),
            }
        )

    def skipped_frame(self) -> pd.DataFrame:
        """One row per skip (R7), as a typed pandas DataFrame (the ``notebook`` extra).

        Columns: ``user_id`` (string), ``label`` (categorical "Inbox"/"Sent";
        missing where the whole User was skipped), ``reason`` (categorical, the
        `SkipReason` name, e.g. ``NO_MAILBOX``).
        """
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtra("Changes.skipped_frame", "notebook", "pandas") from None
        skipped = self.skipped
        return pd.DataFrame(
            {
                "user_id": pd.array([s.user_id for s in skipped], dtype="string"),
                "label": pd.Categorical(
                    [None if s.label is None else s.label.title for s in skipped],
                    categories=_LABELS,
                ),
                "reason": pd.Categorical(
                    [s.reason.name for s in skipped], categories=[r.name for r in SkipReason]
                ),
            }
        )

    def _repr_html_(self) -> str | None:
        from labelsync._repr import html  # rendered by the display layer, registered by type

        return html(self)

    def skipped_by_reason(self) -> Mapping[SkipReason, int]:
        """How many skips each reason caused (B2)."""
        return self.counts().skipped_by_reason()
