"""What a push leaves, in a form both labelsync and a floor can report and compare.

A floor counts only if it reaches the same state as labelsync: every User's
final selection and version, and the same counts of changes and skips. The
benchmarks compare these before any timing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from attrs import frozen

from labelsync import LabelSync, PushCounts, SystemLabel, User

UserState = tuple[str, tuple[str, ...], int] | tuple[str, tuple[str, ...], int, str]
"""One User after the push: id, selected label ids (sorted), version, and where both sides
keep it, its provenance (R15) as `provenance_text` writes it."""


def provenance_text(
    origins: Iterable[tuple[str | None, str | None]], covered: bool, job_id: str
) -> str:
    """A User's provenance, comparable across stores: per label its origin and whether the
    pushed job (`job_id`) set it, ``other`` job or ``-`` none; then whether it is covered."""
    parts = []
    for origin, origin_job in origins:
        by = "-" if origin_job is None else "job" if origin_job == job_id else "other"
        parts.append(f"{origin or 'UNKNOWN'}:{by}")
    return "|".join([*parts, "covered" if covered else "uncovered"])


@frozen
class State:
    """The Users after a push (a digest, and the rows when kept) and what the job counted."""

    digest: str
    processed: int
    counts: tuple[int, int, int, int, int]
    """users changed, selected, deselected, no mailbox, label missing."""
    users: tuple[UserState, ...] | None = None
    kept: int = 0
    """Labels a KEEP_USER_CHOICES push left as their User set them (R16)."""

    def to_json(self) -> dict[str, object]:
        """A JSON-able form, for a child process to report."""
        return {
            "digest": self.digest,
            "processed": self.processed,
            "counts": list(self.counts),
            "users": None if self.users is None else [list(user) for user in self.users],
            "kept": self.kept,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> State:
        """The state a child reported with `to_json`."""
        users = data["users"]
        counts = tuple(int(n) for n in data["counts"])  # type: ignore[attr-defined]
        return cls(
            digest=str(data["digest"]),
            processed=int(data["processed"]),  # type: ignore[call-overload]
            counts=(counts[0], counts[1], counts[2], counts[3], counts[4]),
            users=None if users is None else tuple(_user_state(u) for u in users),  # type: ignore[attr-defined]
            kept=int(data.get("kept", 0)),  # type: ignore[call-overload]
        )


def _user_state(row: list[object]) -> UserState:
    ids = tuple(str(i) for i in row[1])  # type: ignore[attr-defined]
    if len(row) > 3:
        return (str(row[0]), ids, int(row[2]), str(row[3]))  # type: ignore[call-overload]
    return (str(row[0]), ids, int(row[2]))  # type: ignore[call-overload]


def counts_tuple(counts: PushCounts) -> tuple[int, int, int, int, int]:
    """`PushCounts` as the tuple `State` keeps."""
    return (
        counts.users_changed,
        counts.selected,
        counts.deselected,
        counts.no_mailbox,
        counts.label_missing,
    )


def state_of(
    users: Iterable[tuple[str, Iterable[str], int] | tuple[str, Iterable[str], int, str]],
    processed: int,
    counts: tuple[int, int, int, int, int],
    *,
    keep: bool,
    kept: int = 0,
) -> State:
    """Digest `users` (in roster order); keep the rows too when `keep`."""
    digest = hashlib.sha256()
    kept_rows: list[UserState] = []
    for user in users:
        row: UserState = (user[0], tuple(sorted(user[1])), user[2])
        if len(user) > 3:
            row = (*row, user[3])
        digest.update(repr(row).encode())
        if keep:
            kept_rows.append(row)
    return State(
        digest=digest.hexdigest(),
        processed=processed,
        counts=counts,
        users=tuple(kept_rows) if keep else None,
        kept=kept,
    )


def labelsync_state(
    service: LabelSync, tenant_id: str, job_id: str, *, keep: bool, provenance: bool = False
) -> State:
    """The state labelsync left, read through its public API; with `provenance`, each
    User's provenance too (R15), for a floor that keeps it."""
    job = service.job(job_id)
    tenant = service.tenant(tenant_id)

    def text(user: User) -> str:
        p = user.provenance
        origins = [(o.origin.name, o.job_id) for o in (p.inbox, p.sent)]
        return provenance_text(origins, p.covered, job_id)

    rows = (
        (user.id, user.synced.ids, user.version, text(user))
        if provenance
        else (user.id, user.synced.ids, user.version)
        for user in tenant.users
    )
    return state_of(
        rows,
        job.processed,
        counts_tuple(job.counts),
        keep=keep,
        kept=job.counts.user_choice_kept,
    )


class FloorMismatch(AssertionError):
    """Raised when a floor and labelsync leave different states: one of them is wrong."""


def check_equal(ours: State, floor: State, where: str) -> None:
    """Raise `FloorMismatch` naming the first difference between `ours` and `floor`."""
    if (ours.processed, ours.counts, ours.kept) != (floor.processed, floor.counts, floor.kept):
        raise FloorMismatch(
            f"{where}: labelsync processed {ours.processed} with counts {ours.counts} "
            f"({ours.kept} kept), the floor {floor.processed} with {floor.counts} "
            f"({floor.kept} kept)"
        )
    if ours.digest == floor.digest:
        return
    if ours.users is not None and floor.users is not None:
        for position, (mine, theirs) in enumerate(zip(ours.users, floor.users, strict=False)):
            if mine != theirs:
                raise FloorMismatch(f"{where}: User at {position}: {mine!r} vs {theirs!r}")
    raise FloorMismatch(f"{where}: the Users differ (digests {ours.digest} vs {floor.digest})")
    raise FloorMismatch(f"{where}: the Users after the push differ")


@frozen
class NarrowUser:
    """A User as both floors store it: the hot push state, and the other selected ids."""

    has_mailbox: bool
    inbox_id: str | None
    sent_id: str | None
    inbox_on: bool
    sent_on: bool
    other_ids: list[str]

    @classmethod
    def of(cls, user: User) -> NarrowUser:
        box = user.mailbox
        inbox = box.label_id(SystemLabel.INBOX) if box else None
        sent = box.label_id(SystemLabel.SENT) if box else None
        ids = user.synced.ids
        return cls(
            has_mailbox=box is not None,
            inbox_id=inbox,
            sent_id=sent,
            inbox_on=inbox in ids,
            sent_on=sent in ids,
            other_ids=sorted(ids - {inbox, sent}),
        )
