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

UserState = tuple[str, tuple[str, ...], int]
"""One User after the push: id, selected label ids (sorted), version."""


@frozen
class State:
    """The Users after a push (a digest, and the rows when kept) and what the job counted."""

    digest: str
    processed: int
    counts: tuple[int, int, int, int, int]
    """users changed, selected, deselected, no mailbox, label missing."""
    users: tuple[UserState, ...] | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-able form, for a child process to report."""
        return {
            "digest": self.digest,
            "processed": self.processed,
            "counts": list(self.counts),
            "users": None if self.users is None else [list(user) for user in self.users],
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
            users=None
            if users is None
            else tuple(
                (str(u[0]), tuple(str(i) for i in u[1]), int(u[2]))
                for u in users  # type: ignore[attr-defined]
            ),
        )


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
    users: Iterable[tuple[str, Iterable[str], int]],
    processed: int,
    counts: tuple[int, int, int, int, int],
    *,
    keep: bool,
) -> State:
    """Digest `users` (in roster order); keep the rows too when `keep`."""
    digest = hashlib.sha256()
    kept: list[UserState] = []
    for user_id, ids, version in users:
        row: UserState = (user_id, tuple(sorted(ids)), version)
        digest.update(repr(row).encode())
        if keep:
            kept.append(row)
    return State(
        digest=digest.hexdigest(),
        processed=processed,
        counts=counts,
        users=tuple(kept) if keep else None,
    )


def labelsync_state(service: LabelSync, tenant_id: str, job_id: str, *, keep: bool) -> State:
    """The state labelsync left, read through its public API."""
    job = service.job(job_id)
    tenant = service.tenant(tenant_id)
    return state_of(
        ((user.id, user.synced.ids, user.version) for user in tenant.users),
        job.processed,
        counts_tuple(job.counts),
        keep=keep,
    )


class FloorMismatch(AssertionError):
    """Raised when a floor and labelsync leave different states: one of them is wrong."""


def check_equal(ours: State, floor: State, where: str) -> None:
    """Raise `FloorMismatch` naming the first difference between `ours` and `floor`."""
    if (ours.processed, ours.counts) != (floor.processed, floor.counts):
        raise FloorMismatch(
            f"{where}: labelsync processed {ours.processed} with counts {ours.counts}, "
            f"the floor {floor.processed} with {floor.counts}"
        )
    if ours.digest == floor.digest:
        return
    if ours.users is not None and floor.users is not None:
        for position, (mine, theirs) in enumerate(zip(ours.users, floor.users, strict=False)):
            if mine != theirs:
                raise FloorMismatch(f"{where}: User at {position}: {mine!r} vs {theirs!r}")
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
