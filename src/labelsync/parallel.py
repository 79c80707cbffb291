"""Many workers, one push (B6): each claims a range of the roster with a lease and commits it.

The single-runner push (`labelsync.push.run_job`) walks the roster with one
checkpoint. Here the roster of a job is cut once into ranges of roster
positions; every worker loops *claim a range -> decide it with the same
per-User rule (`rules.apply_rows`) -> commit it*, fenced on the tenant's
current job like a single-runner batch (R10) and with compare-and-set on each
User (R12). A worker that dies leaves its lease to expire and another worker
takes the range over; a worker whose lease was taken over commits nothing, so
every roster User is handled exactly once in effect.

A store opts in by implementing `ParallelStore`; `PostgresStore` does.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from attrs import frozen

from labelsync.changes import count_rows
from labelsync.exceptions import InvalidInput
from labelsync.model import User
from labelsync.ports import BatchWrite, Clock, Conflict, JobStatus, PushJob, Store
from labelsync.push import Progress, check_batch_size, now
from labelsync.rules import apply_rows

__all__ = ["Busy", "Claim", "LeaseLost", "ParallelStore", "decide", "run_worker"]

POLL_SECONDS = 0.5
"""How often a worker with nothing to claim looks again while other workers hold leases."""


@frozen
class Claim:
    """A range of a job's roster leased to one worker until `lease_until` (the database's clock).

    The range is the roster Users with position > `after` and <= `last`, `size`
    of them; `store.roster_batch(job.id, after, size)` reads exactly them.
    `token` proves at commit time that the lease is still this worker's;
    `attempt` is 1 for a first claim and more when the range was taken over.
    """

    job: PushJob
    worker_id: str
    range_no: int
    after: int
    last: int
    size: int
    token: str
    lease_until: dt.datetime
    attempt: int


@frozen
class Busy:
    """Nothing to claim now, but ranges are still leased to other workers.

    `retry_in` is the number of seconds until the earliest of those leases
    expires; if its worker died, the range can be claimed then.
    """

    retry_in: float


@frozen
class LeaseLost:
    """`commit_claimed` wrote nothing: the lease expired and another worker took the range over."""

    claim: Claim


@runtime_checkable
class ParallelStore(Store, Protocol):
    """A `Store` whose push jobs several workers can run at once; any class with these methods.

    Lease times come from the store's own clock (the database server's), so
    workers on machines whose clocks disagree still agree on who holds a range.
    """

    def claim_batch(
        self, job_id: str, worker_id: str, batch_size: int, lease_seconds: float
    ) -> Claim | Busy | None:
        """Lease the next range of the job's roster that is not done and not validly leased.

        The first claim of a job cuts the roster after the job's checkpoint into
        ranges of `batch_size` Users, once; later claims reuse those ranges.
        Returns None when every range is done (also for a DONE job), `Busy` when
        the ranges left are all leased to others. Raises `JobSuperseded` for a
        superseded job and `UnknownJob` for an unknown one. After a job has
        ranges, `commit_batch` refuses it: it belongs to the workers.
        """
        ...

    def commit_claimed(self, claim: Claim, batch: BatchWrite) -> PushJob | Conflict | LeaseLost:
        """Write the batch of a claimed range in one transaction, fenced like `commit_batch`.

        Raises `JobSuperseded` (writing nothing) if a newer push superseded the
        job. Returns `LeaseLost` (writing nothing) if the range was claimed by
        someone else since or is done (as every range of a DONE job is), and `Conflict`
        (writing nothing) if any User's stored version differs from the one
        paired with it. Otherwise stores the Users, changes and skips, marks the
        range done, adds `processed` and `counts` to the job, marks it RUNNING,
        and returns the job as stored. `batch.cursor_before/after` are ignored.
        """
        ...


def check_worker_id(worker_id: object) -> str:
    """Refuse anything but a non-empty string: it names the lease holder in the store."""
    if not isinstance(worker_id, str) or not worker_id.strip():
        raise InvalidInput("worker_id", worker_id, "must be a non-empty string")
    return worker_id


def check_lease_seconds(lease_seconds: object) -> float:
    """Refuse anything but a finite number of seconds > 0."""
    if (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, int | float)
        or not math.isfinite(lease_seconds)
        or lease_seconds <= 0
    ):
        raise InvalidInput("lease_seconds", lease_seconds, "must be a number of seconds > 0")
    return float(lease_seconds)


def parallel_store(store: Store, worker_id: object) -> ParallelStore:
    """`store` as a `ParallelStore`, or `InvalidInput` naming `worker_id` if it cannot claim."""
    if not isinstance(store, ParallelStore):
        raise InvalidInput(
            "worker_id",
            worker_id,
            f"needs a store that can claim batches (a ParallelStore, e.g. PostgresStore); "
            f"{type(store).__name__} cannot",
        )
    return store


def decide(claim: Claim, users: Sequence[User]) -> BatchWrite:
    """The batch a worker commits for a claimed range: the per-User rule over `users` (R3-R5, R7).

    `users` are the range's roster Users as read (or read again after a conflict).
    """
    after, changes, skips = apply_rows(users, claim.job.defaults)
    return BatchWrite(
        job_id=claim.job.id,
        cursor_before=claim.after,
        cursor_after=claim.last,
        processed=len(users),
        writes=tuple(
            (new, old.version) for old, new in zip(users, after, strict=True) if new is not old
        ),
        changes=tuple(changes),
        skips=tuple(skips),
        counts=count_rows(changes, skips),
    )


def _run_claim(store: ParallelStore, claim: Claim) -> PushJob | None:
    """Decide and commit one claimed range; None if the lease was lost meanwhile."""
    roster = store.roster_batch(claim.job.id, claim.after, claim.size)
    users = [user for _, user in roster]
    while True:
        result = store.commit_claimed(claim, decide(claim, users))
        if isinstance(result, PushJob):
            return result
        if isinstance(result, LeaseLost):
            return None
        # Conflict: those Users were edited since we read them (R12). Read them
        # again and decide the range anew; the edit is kept, INBOX/SENT re-pushed.
        fresh = {user.id: user for user in store.get_users(claim.job.tenant_id, result.user_ids)}
        users = [fresh.get(user.id, user) for user in users]


def run_worker(
    store: Store,
    clock: Clock,
    job_id: str,
    *,
    worker_id: str,
    batch_size: int = 500,
    lease_seconds: float = 60,
    progress: Progress | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> PushJob:
    """Work on the job with other workers until every range is done, then return the DONE job.

    Claims ranges of `batch_size` Users leased for `lease_seconds` (longer than
    a batch takes), decides each with the per-User rule and commits it;
    `progress(job)` is called after each commit. While the ranges left are all
    leased to other workers it waits (`sleep`), so a range whose worker died is
    taken over when its lease expires. A superseded job raises `JobSuperseded`.
    """
    check_batch_size(batch_size)
    check_worker_id(worker_id)
    lease = check_lease_seconds(lease_seconds)
    claiming = parallel_store(store, worker_id)
    while True:
        claimed = claiming.claim_batch(job_id, worker_id, batch_size, lease)
        if claimed is None:
            job = claiming.get_job(job_id)
            if job.status is JobStatus.DONE:
                return job
            return claiming.finish_job(job_id, now(clock))
        if isinstance(claimed, Busy):
            sleep(min(max(claimed.retry_in, 0.01), POLL_SECONDS))
            continue
        committed = _run_claim(claiming, claimed)
        if committed is not None and progress is not None:
            progress(committed)
