"""Admin policy beyond "override everyone" (R15-R19): provenance, push modes, locks, drift.

Pure values and functions. Who set each label (`Origin`, `LabelOrigin`,
`Provenance`) is kept on every `User`; how a push treats the User's own
choices is its `PushMode`; `drift` says who differs from the tenant's defaults
and why. The per-User push rule that uses them lives in `labelsync.rules`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from labelsync import _validate as v
from labelsync._provenance import LabelOrigin, Origin, Provenance
from labelsync.audience import Audience
from labelsync.exceptions import InvalidInput, LabelLocked, MissingExtra

if TYPE_CHECKING:
    import pandas as pd

    from labelsync.model import Defaults, LabelSet, SystemLabel, Tenant, User

__all__ = [
    "Drift",
    "DriftReason",
    "DriftRow",
    "LabelLocked",
    "LabelOrigin",
    "Origin",
    "Provenance",
    "PushMode",
    "changed_labels",
    "check_locks",
    "drift",
    "drifted_push",
    "user_drift",
]


class PushMode(enum.Enum):
    """How a push treats INBOX/SENT selections (R16); OVERRIDE is version 1's behaviour."""

    OVERRIDE = "OVERRIDE"
    """Every covered User gets the defaults, whoever set the label last (R3, R4)."""
    KEEP_USER_CHOICES = "KEEP_USER_CHOICES"
    """A label whose origin is the User is left as they set it (skip `USER_CHOICE_KEPT`)."""
    NEW_USERS_ONLY = "NEW_USERS_ONLY"
    """Only Users that no earlier push or onboarding ever covered get the defaults."""


def changed_labels(user: User, synced: LabelSet) -> tuple[SystemLabel, ...]:
    """The system labels of `user`'s mailbox whose selection differs in `synced`, INBOX first."""
    from labelsync.model import SystemLabel

    if user.mailbox is None:
        return ()
    changed = []
    for label in SystemLabel:
        label_id = user.mailbox.label_id(label)
        if label_id is not None and (label_id in user.synced) != (label_id in synced):
            changed.append(label)
    return tuple(changed)


def check_locks(user: User, synced: LabelSet, locked: frozenset[SystemLabel]) -> None:
    """Raise `LabelLocked` if `synced` changes a label the admin locked (R17)."""
    for label in changed_labels(user, synced):
        if label in locked:
            raise LabelLocked(user.id, label.name)


class DriftReason(enum.Enum):
    """Why a User's INBOX/SENT differ from the tenant's defaults (R18)."""

    USER_CHANGE = "USER_CHANGE"
    """The User changed it themself after it was set for them."""
    NEVER_COVERED = "NEVER_COVERED"
    """No push or onboarding ever reached this User (added later, R6)."""
    EARLIER_SETTING = "EARLIER_SETTING"
    """An earlier push, onboarding, reset or revert set it, before the current defaults."""
    NO_MAILBOX = "NO_MAILBOX"
    """The User has no connected mailbox: no push can reach them (R7)."""
    LABEL_MISSING = "LABEL_MISSING"
    """The mailbox lacks this label, so no push can set it (R7)."""


@frozen
class DriftRow:
    """One User (label=None: the whole User) or label that differs from the defaults, and why."""

    user_id: str = field(validator=v.non_empty_str)
    label: SystemLabel | None
    reason: DriftReason = field(validator=v.member_of(DriftReason))
    selected: bool | None = None
    """Whether the label is selected now; None for a missing label or mailbox."""
    origin: LabelOrigin | None = None
    """Who set the label last (R15); None for a missing label or mailbox."""


@frozen
class Drift:
    """The Users whose INBOX/SENT selection differs from the tenant's current defaults (R18)."""

    defaults: Defaults | None
    rows: tuple[DriftRow, ...]

    @property
    def user_ids(self) -> tuple[str, ...]:
        """The drifted Users' ids, in roster order, each once: the audience of a re-push."""
        return tuple(dict.fromkeys(row.user_id for row in self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[DriftRow]:
        return iter(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def by_reason(self) -> dict[DriftReason, int]:
        """How many rows each reason has."""
        counts = dict.fromkeys(DriftReason, 0)
        for row in self.rows:
            counts[row.reason] += 1
        return counts

    def __str__(self) -> str:
        if self.defaults is None:
            return "no defaults saved or pushed yet: nothing to drift from"
        head = f"{len(self.user_ids)} Users differ from the defaults ({self.defaults.describe()})"
        lines = [head]
        for row in self.rows:
            label = "-" if row.label is None else row.label.title
            said = "" if row.origin is None else (row.origin.describe() or "")
            lines.append(f"  {row.user_id:<12} {label:<6} {row.reason.name:<16} {said}".rstrip())
        return "\n".join(lines)

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per row, for pandas or JSON."""
        return [
            {
                "user_id": row.user_id,
                "label": None if row.label is None else row.label.name,
                "reason": row.reason.name,
                "selected": row.selected,
                "origin": None if row.origin is None else row.origin.origin.name,
                "origin_job_id": None if row.origin is None else row.origin.job_id,
                "origin_at": None
                if row.origin is None or row.origin.at is None
                else row.origin.at.isoformat(),
            }
            for row in self.rows
        ]

    def to_frame(self) -> pd.DataFrame:
        """The rows as a typed pandas DataFrame (the ``notebook`` extra)."""
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtra("Drift.to_frame", "notebook", "pandas") from None
        records = self.to_records()
        return pd.DataFrame(
            {
                "user_id": pd.array([r["user_id"] for r in records], dtype="string"),
                "label": pd.Categorical(
                    [r["label"] for r in records], categories=["INBOX", "SENT"]
                ),
                "reason": pd.Categorical(
                    [r["reason"] for r in records], categories=[x.name for x in DriftReason]
                ),
                "selected": pd.array([r["selected"] for r in records], dtype="boolean"),
                "origin": pd.Categorical(
                    [r["origin"] for r in records], categories=[o.name for o in Origin]
                ),
            }
        )

    def _repr_html_(self) -> str | None:
        from labelsync._repr import html  # rendered by the display layer, registered by type

        return html(self)


def _why(user: User, origin: LabelOrigin) -> DriftReason:
    if origin.origin is Origin.USER:
        return DriftReason.USER_CHANGE
    if not user.provenance.covered:
        return DriftReason.NEVER_COVERED
    return DriftReason.EARLIER_SETTING


def drift(tenant: Tenant) -> Drift:
    """Who differs from `tenant.defaults`, label by label, and why (R18); pure.

    A User without a mailbox is one NO_MAILBOX row; a mailbox lacking a label
    is a LABEL_MISSING row for it; a label whose selection differs says why:
    the User's own change, never covered, or an earlier setting. A tenant
    without defaults has no drift.
    """
    from labelsync.model import Tenant

    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    defaults = tenant.defaults
    if defaults is None:
        return Drift(defaults=None, rows=())
    rows: list[DriftRow] = []
    for user in tenant.users:
        rows += _user_rows(user, defaults)
    return Drift(defaults=defaults, rows=tuple(rows))


def drifted_push(tenant: Tenant) -> tuple[Defaults, Audience]:
    """The defaults and audience of a push to exactly the Users `drift` shows (R18 with R20).

    The tenant's current defaults, the ones drift is measured against, to
    ``Audience.users(drift(tenant).user_ids)``. A tenant without defaults, or
    without drifted Users, has nothing to push: `InvalidInput`. The push
    (`LabelSync.start_push_drifted`) and its preview both ask this.
    """
    found = drift(tenant)
    if found.defaults is None:
        raise InvalidInput(
            "tenant.defaults",
            None,
            f"means tenant {tenant.id!r} has no defaults yet, so no User can drift from them",
        )
    if not found:
        raise InvalidInput(
            "drift",
            0,
            f"Users of tenant {tenant.id!r} differ from its defaults; nothing to push",
        )
    return found.defaults, Audience.users(found.user_ids)


def user_drift(user: User, defaults: Defaults) -> tuple[DriftRow, ...]:
    """How one User differs from `defaults`, and why (R18): the rows `drift` gives them.

    The one definition of drift: `drift` applies it to every User with the
    tenant's defaults, `labelsync.coverage` with each User's preset's (R21).
    Rows with a `selected` value are selection differences; the others say
    that no push can reach the User (NO_MAILBOX) or the label (LABEL_MISSING).
    """
    from labelsync.model import Defaults, User

    if not isinstance(user, User):
        raise InvalidInput("user", user, "is not a User")
    if not isinstance(defaults, Defaults):
        raise InvalidInput("defaults", defaults, "is not a Defaults")
    return _user_rows(user, defaults)


def _user_rows(user: User, defaults: Defaults) -> tuple[DriftRow, ...]:
    from labelsync.model import SystemLabel

    if user.mailbox is None:
        return (DriftRow(user_id=user.id, label=None, reason=DriftReason.NO_MAILBOX),)
    rows: list[DriftRow] = []
    for label in SystemLabel:
        label_id = user.mailbox.label_id(label)
        if label_id is None:
            rows.append(DriftRow(user_id=user.id, label=label, reason=DriftReason.LABEL_MISSING))
            continue
        selected = label_id in user.synced
        if selected is not defaults.checked(label):
            origin = user.provenance.of(label)
            rows.append(
                DriftRow(
                    user_id=user.id,
                    label=label,
                    reason=_why(user, origin),
                    selected=selected,
                    origin=origin,
                )
            )
    return tuple(rows)
