"""The push job: walk the roster batch by batch with the same per-User rule as `apply_defaults`.

Each batch is read, decided by `rules.apply_rows`, and committed in one
transaction together with the checkpoint, fenced on the tenant's current job
(R10). A User edited between read and commit fails the compare-and-set and is
read and decided again (R12). A killed run resumes after the last committed
batch and ends where an uninterrupted run would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from attrs import frozen

from labelsync.changes import count_rows
from labelsync.exceptions import InvalidInput, JobSuperseded
from labelsync.model import PushCounts, SkipReason, User
from labelsync.ports import (
    BatchWrite,
    Clock,
    Conflict,
    JobStatus,
    PushJob,
    StaleCheckpoint,
    Store,
)
from labelsync.rules import apply_rows

__all__ = ["JobStatus", "Progress", "PushJob", "PushReport", "now", "run_job"]

Progress = Callable[[PushJob], object]
"""Called with the job as stored after each committed batch."""


@frozen
class PushReport:
    """What a finished push did: its job and the counts of changes and skips by reason (R7, R11)."""

    job: PushJob

    @property
    def counts(self) -> PushCounts:
        """Users changed, labels selected/deselected, skips per reason."""
        return self.job.counts

    @property
    def skipped_by_reason(self) -> dict[SkipReason, int]:
        """Skips per reason (B2)."""
        return dict(self.job.counts.skipped_by_reason())

    def __str__(self) -> str:
        job, c = self.job, self.job.counts
        took = ""
        if job.finished_at is not None:
            took = f" in {(job.finished_at - job.started_at).total_seconds():.1f}s"
        return (
            f"push {job.id} ({job.defaults.describe()}) {job.status.name.lower()}{took}: "
            f"{job.processed}/{job.total} Users, {c.users_changed} changed "
            f"(+{c.selected} selected, -{c.deselected} deselected), "
            f"skipped: {c.no_mailbox} no mailbox, {c.label_missing} label missing"
        )


def now(clock: Clock) -> dt.datetime:
    """`clock.now()`, refused unless timezone-aware: a naive time is ambiguous in an audit."""
    value: object = clock.now()
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidInput("clock.now()", value, "must be a timezone-aware datetime")
    return value


def check_batch_size(batch_size: object) -> int:
    """Refuse anything but a whole number >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput("batch_size", batch_size, "must be a whole number >= 1")
    return batch_size


def _commit(store: Store, job: PushJob, batch: list[tuple[int, User]]) -> PushJob | None:
    """Decide and commit one batch; None when another runner moved the checkpoint first."""
    users = [user for _, user in batch]
    while True:
        after, changes, skips = apply_rows(users, job.defaults)
        batch_write = BatchWrite(
            job_id=job.id,
            cursor_before=job.cursor,
            cursor_after=batch[-1][0],
            processed=len(batch),
            writes=tuple(
                (new, old.version) for old, new in zip(users, after, strict=True) if new is not old
            ),
            changes=tuple(changes),
            skips=tuple(skips),
            counts=count_rows(changes, skips),
        )
        try:
            result = store.commit_batch(batch_write)
        except JobSuperseded:
            # Another runner may have finished the job meanwhile: that is not
            # a supersede, and the caller's loop reports the DONE job.
            if store.get_job(job.id).status is JobStatus.DONE:
                return None
            raise
        if isinstance(result, PushJob):
            return result
        if isinstance(result, StaleCheckpoint):
            return None
        # Conflict: those Users were edited since we read them (R12). Read them
        # again and decide the batch anew; the edit is kept, INBOX/SENT re-pushed.
        assert isinstance(result, Conflict)
        fresh = {user.id: user for user in store.get_users(job.tenant_id, result.user_ids)}
        users = [fresh.get(user.id, user) for user in users]


def run_job(
    store: Store,
    clock: Clock,
    job_id: str,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> PushJob:
    """Run or resume the job until DONE and return it; a DONE job is returned as it is."""
    check_batch_size(batch_size)
    job = store.get_job(job_id)
    while True:
        if job.status is JobStatus.SUPERSEDED:
            raise JobSuperseded(job.id, job.superseded_by)
        if job.status is JobStatus.DONE:
            return job
        batch = store.roster_batch(job.id, job.cursor, batch_size)
        if not batch:
            return store.finish_job(job.id, now(clock))
        committed = _commit(store, job, batch)
        if committed is None:
            job = store.get_job(job_id)
            continue
        job = committed
        if progress is not None:
            progress(job)
