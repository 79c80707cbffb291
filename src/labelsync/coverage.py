"""Coverage (R22): per User, whether the admin's defaults actually reach them, and if not, why.

``coverage(tenant)`` is pure, like `apply_defaults`: it reads the tenant and
gives each User exactly one `CoverageStatus`, the first that applies in this
order, from "the push cannot reach them" to "reached, as the admin wants":

1. ``NO_MAILBOX``: no connected mailbox; a push skips the User (R7).
2. ``LABEL_MISSING``: the mailbox lacks INBOX or SENT (`missing` says which).
3. ``NO_EMAIL_TAB``: the User lacks EMAIL_SYNC, so they cannot see their Email
   tab: the push applies to them, invisibly (R8).
4. ``DRIFTED``: their INBOX/SENT selection differs from the tenant's current
   defaults, or from their group's preset (R18, R21; `drifted` says which labels).
5. ``STALE_IDS``: their selection names ids the mailbox no longer has (R5 keeps them).
6. ``COVERED``: none of the above.

Each row also carries every detail found (missing labels, stale ids, drifted
labels) and the roles the mailbox only *guessed* from a folder name
(`Label.guessed`), so a guessed SENT stays visible even for a covered User.
A `Coverage` counts by status and by group, exports records or a DataFrame,
and renders in Jupyter.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from labelsync._repr import html
from labelsync.exceptions import InvalidInput, MissingExtra, UnknownUser
from labelsync.model import Defaults, Permission, SystemLabel, Tenant, User
from labelsync.presets import PresetBook

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COVERAGE_COLUMNS",
    "MAX_LISTED",
    "NO_GROUP",
    "Coverage",
    "CoverageStatus",
    "UserCoverage",
    "coverage",
]


class CoverageStatus(enum.Enum):
    """Whether the defaults reach a User, and if not, the first reason why (R22)."""

    COVERED = "COVERED"
    """Mailbox with INBOX and SENT, Email tab visible, selection as the defaults say."""
    NO_MAILBOX = "NO_MAILBOX"
    """No connected mailbox: a push skips the User (R7)."""
    LABEL_MISSING = "LABEL_MISSING"
    """The mailbox lacks INBOX or SENT: a push skips that label (R7)."""
    NO_EMAIL_TAB = "NO_EMAIL_TAB"
    """The User lacks EMAIL_SYNC and cannot see the Email tab: the push is invisible to them."""
    DRIFTED = "DRIFTED"
    """INBOX/SENT differ from the tenant's current defaults (R18)."""
    STALE_IDS = "STALE_IDS"
    """The selection names label ids the mailbox no longer has."""

    @property
    def phrase(self) -> str:
        """How the status reads in a report, e.g. ``cannot see the Email tab``."""
        return _PHRASES[self]


_PHRASES = {
    CoverageStatus.COVERED: "covered",
    CoverageStatus.NO_MAILBOX: "no mailbox",
    CoverageStatus.LABEL_MISSING: "label missing",
    CoverageStatus.NO_EMAIL_TAB: "cannot see the Email tab",
    CoverageStatus.DRIFTED: "drifted",
    CoverageStatus.STALE_IDS: "stale selection ids",
}

NO_GROUP = "(no group)"
"""The group under which `Coverage.by_group` counts Users that hold none."""

MAX_LISTED = 20
"""How many Users `str(coverage)` lists by name; the rest are counted (records have them all)."""

COVERAGE_COLUMNS = ("user_id", "status", "groups", "missing", "drifted", "stale_ids", "guessed")
"""The keys of `Coverage.to_records`, in order."""


def _roles(labels: tuple[SystemLabel, ...]) -> str:
    return ", ".join(label.title for label in labels)


@frozen
class UserCoverage:
    """One User's coverage: its status and every detail behind it."""

    user_id: str
    status: CoverageStatus
    groups: frozenset[str] = frozenset()
    missing: tuple[SystemLabel, ...] = ()
    """The system labels the mailbox lacks (LABEL_MISSING)."""
    drifted: tuple[SystemLabel, ...] = ()
    """The system labels whose selection differs from the tenant's defaults."""
    stale_ids: tuple[str, ...] = ()
    """Selected ids the mailbox does not have, sorted."""
    guessed: tuple[SystemLabel, ...] = ()
    """Roles the mailbox's labels only got by a name guess (`Label.guessed`)."""

    @property
    def detail(self) -> str:
        """The status and its details in words, e.g. ``label missing: Sent``."""
        parts = [self.status.phrase]
        if self.missing:
            parts[0] += f": {_roles(self.missing)}"
        if self.drifted and self.status is not CoverageStatus.DRIFTED:
            parts.append(f"drifted: {_roles(self.drifted)}")
        elif self.drifted:
            parts[0] += f": {_roles(self.drifted)}"
        if self.stale_ids:
            noun = "stale id" if len(self.stale_ids) == 1 else "stale ids"
            if self.status is CoverageStatus.STALE_IDS:
                parts[0] += f": {', '.join(self.stale_ids)}"
            else:
                parts.append(f"{noun}: {', '.join(self.stale_ids)}")
        if self.guessed:
            parts.append(f"{_roles(self.guessed)} recognised by its name only")
        return "; ".join(parts)

    def to_record(self) -> dict[str, Any]:
        """This row as a plain dict with the keys of `COVERAGE_COLUMNS` (lists as sorted lists)."""
        return {
            "user_id": self.user_id,
            "status": self.status.name,
            "groups": sorted(self.groups),
            "missing": [label.name for label in self.missing],
            "drifted": [label.name for label in self.drifted],
            "stale_ids": list(self.stale_ids),
            "guessed": [label.name for label in self.guessed],
        }


@frozen(repr=False)
class Coverage:
    """The coverage of a tenant (R22): one `UserCoverage` per User, in roster order."""

    tenant_id: str
    defaults: Defaults | None
    rows: tuple[UserCoverage, ...] = field(repr=False)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name}={n}" for s, n in self.counts().items() if n)
        return f"<Coverage of {self.tenant_id}: {len(self.rows)} Users; {counts or 'empty'}>"

    def __iter__(self) -> Iterator[UserCoverage]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, user_id: str) -> UserCoverage:
        """The row of `user_id`; `UnknownUser` if the tenant had no such User."""
        for row in self.rows:
            if row.user_id == user_id:
                return row
        raise UnknownUser(user_id, self.tenant_id)

    @property
    def uncovered(self) -> tuple[UserCoverage, ...]:
        """The rows of every User whose status is not COVERED, in roster order."""
        return tuple(row for row in self.rows if row.status is not CoverageStatus.COVERED)

    @property
    def guessed(self) -> tuple[UserCoverage, ...]:
        """The rows of every User with a role recognised only by its name."""
        return tuple(row for row in self.rows if row.guessed)

    def counts(self) -> Mapping[CoverageStatus, int]:
        """Users per status, every status listed (zeros included), in `CoverageStatus` order."""
        counted = dict.fromkeys(CoverageStatus, 0)
        for row in self.rows:
            counted[row.status] += 1
        return counted

    def by_group(self) -> Mapping[str, Mapping[CoverageStatus, int]]:
        """Users per status in each group, groups sorted; a User counts in each of its groups.

        Users without a group are counted under `NO_GROUP`.
        """
        found: dict[str, dict[CoverageStatus, int]] = {}
        for row in self.rows:
            for group in row.groups or (NO_GROUP,):
                found.setdefault(group, dict.fromkeys(CoverageStatus, 0))[row.status] += 1
        return {group: found[group] for group in sorted(found)}

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per User (keys: `COVERAGE_COLUMNS`), for pandas or JSON."""
        return [row.to_record() for row in self.rows]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per User as a pandas DataFrame, columns `COVERAGE_COLUMNS`.

        ``status`` is categorical over every `CoverageStatus` name; list columns
        hold Python lists. Needs the ``notebook`` extra.
        """
        try:
            import pandas as pd
        except ImportError:
            raise MissingExtra("Coverage.to_dataframe", "notebook", "pandas") from None
        frame = pd.DataFrame.from_records(self.to_records(), columns=list(COVERAGE_COLUMNS))
        frame["user_id"] = frame["user_id"].astype("string")
        frame["status"] = pd.Categorical(
            frame["status"], categories=[status.name for status in CoverageStatus]
        )
        return frame

    def _repr_html_(self) -> str | None:
        return html(self)

    def __str__(self) -> str:
        defaults = self.defaults.describe() if self.defaults else "never set"
        lines = [
            f"Coverage of tenant {self.tenant_id} ({len(self.rows)} Users; defaults: {defaults})"
        ]
        width = max(len(s.phrase) for s in CoverageStatus)
        for status, count in self.counts().items():
            lines.append(f"  {status.phrase.ljust(width)}  {count}")
        listed = [r for r in self.rows if r.status is not CoverageStatus.COVERED or r.guessed]
        if listed:
            lines.append("Not covered, or with a guessed role:")
            lines += [f"  {row.user_id}: {row.detail}" for row in listed[:MAX_LISTED]]
            if len(listed) > MAX_LISTED:
                lines.append(f"  … and {len(listed) - MAX_LISTED} more")
        return "\n".join(lines)


def _label_ids(user: User) -> set[str]:
    return set() if user.mailbox is None else {label.id for label in user.mailbox.labels}


def user_coverage(user: User, defaults: Defaults | None) -> UserCoverage:
    """The coverage of one User under the tenant's current `defaults` (None: never set)."""
    if not isinstance(user, User):
        raise InvalidInput("user", user, "is not a User")
    mailbox = user.mailbox
    stale = tuple(sorted(user.synced.ids - _label_ids(user)))
    if mailbox is None:
        return UserCoverage(
            user_id=user.id,
            status=CoverageStatus.NO_MAILBOX,
            groups=user.groups,
            stale_ids=stale,
        )
    missing: list[SystemLabel] = []
    drifted: list[SystemLabel] = []
    guessed: list[SystemLabel] = []
    for role in SystemLabel:
        label = mailbox.label(role)
        if label is None:
            missing.append(role)
            continue
        if label.guessed:
            guessed.append(role)
        if defaults is not None and (label.id in user.synced) is not defaults.checked(role):
            drifted.append(role)
    if missing:
        status = CoverageStatus.LABEL_MISSING
    elif not user.can(Permission.EMAIL_SYNC):
        status = CoverageStatus.NO_EMAIL_TAB
    elif drifted:
        status = CoverageStatus.DRIFTED
    elif stale:
        status = CoverageStatus.STALE_IDS
    else:
        status = CoverageStatus.COVERED
    return UserCoverage(
        user_id=user.id,
        status=status,
        groups=user.groups,
        missing=tuple(missing),
        drifted=tuple(drifted),
        stale_ids=stale,
        guessed=tuple(guessed),
    )


def coverage(tenant: Tenant, presets: PresetBook | None = None) -> Coverage:
    """Per User of `tenant`, whether its current defaults reach them (R22); pure, writes nothing.

    With the tenant's `presets` (R21), a User whose groups have a preset is
    measured against that preset's defaults, every other User against the
    tenant's.
    """
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    if presets is not None and not isinstance(presets, PresetBook):
        raise InvalidInput("presets", presets, "is not a PresetBook")

    def wanted(user: User) -> Defaults | None:
        preset = presets.for_user(user) if presets is not None and user.groups else None
        return tenant.defaults if preset is None else preset.defaults

    return Coverage(
        tenant_id=tenant.id,
        defaults=tenant.defaults,
        rows=tuple(user_coverage(user, wanted(user)) for user in tenant.users),
    )
