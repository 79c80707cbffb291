"""Many workers, one push (B6): each claims a range of the roster with a lease and commits it.

The single-runner push (`labelsync.push.run_job`) walks the roster with one
checkpoint. Here the roster of a job is cut once into ranges of roster
positions; every worker loops *claim a range -> run it with the same per-User
rule as the store's `run_batch`*, in one transaction fenced on the tenant's
current job like a single-runner batch (R10), over the Users as stored then
(R12). A worker that dies leaves its lease to expire and another worker takes
the range over; a worker whose lease was taken over commits nothing, so
every roster User is handled exactly once in effect.

A store opts in by implementing `ParallelStore`; `PostgresStore` does.

Logs to ``logging.getLogger("labelsync.parallel")``: each committed range at
DEBUG, a lost lease at WARNING, with the job, tenant and worker ids.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from attrs import frozen

from labelsync import _validate as v
from labelsync.exceptions import InvalidInput, JobSuperseded
from labelsync.jobs import JobStatus, PushJob
from labelsync.ports import Clock, Store
from labelsync.push import Progress, check_batch_size, finish, superseded

__all__ = ["Busy", "Claim", "LeaseLost", "ParallelStore", "run_worker"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How often a worker with nothing to claim looks again while other workers hold leases."""


@frozen
class Claim:
    """A range of a job's roster leased to one worker until `lease_until` (the database's clock).

    The range is the roster Users with position > `after` and <= `last`, `size`
    of them; `store.run_claimed(claim)` runs exactly them.
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
    """`run_claimed` wrote nothing: the lease expired and another worker took the range over."""

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
        ranges, `run_batch` refuses it: it belongs to the workers.
        """
        ...

    def run_claimed(self, claim: Claim) -> PushJob | LeaseLost:
        """Run the claimed range as `run_batch` runs a batch, in one transaction.

        Fenced by `jobs.check_current` (else `JobSuperseded`, writing nothing).
        Returns `LeaseLost` (writing nothing) if the range was claimed by someone
        else since or is done (as every range of a DONE job is). Otherwise
        applies the job's plan to the range's roster Users as stored now, stores
        them, the changes and skips, marks the range done, and stores the job
        as `jobs.after_range` makes it; returns the job as stored.
        """
        ...


def check_worker_id(worker_id: object) -> str:
    """Refuse anything but a non-empty string: it names the lease holder in the store."""
    return v.check_id("worker_id", worker_id)


def check_lease_seconds(lease_seconds: object) -> float:
    """Refuse anything but a finite number of seconds > 0."""
    return v.check_lease(lease_seconds)


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


def _run_claim(store: ParallelStore, claim: Claim) -> PushJob | None:
    """Run one claimed range; None if the lease was lost meanwhile."""
    result = store.run_claimed(claim)
    if isinstance(result, LeaseLost):
        log.warning(
            "push job %s of tenant %s: worker %s lost its lease on range %d "
            "(positions %d-%d) to another worker; it wrote nothing",
            claim.job.id,
            claim.job.tenant_id,
            claim.worker_id,
            claim.range_no,
            claim.after + 1,
            claim.last,
        )
        return None
    log.debug(
        "push job %s of tenant %s: worker %s committed range %d, %d/%d Users",
        result.id,
        result.tenant_id,
        claim.worker_id,
        claim.range_no,
        result.processed,
        result.total,
    )
    return result


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
        try:
            claimed = claiming.claim_batch(job_id, worker_id, batch_size, lease)
        except JobSuperseded:
            raise superseded(claiming.get_job(job_id)) from None
        if claimed is None:
            job = claiming.get_job(job_id)
            if job.status is JobStatus.DONE:
                return job
            return finish(claiming, clock, job)
        if isinstance(claimed, Busy):
            sleep(min(max(claimed.retry_in, 0.01), POLL_SECONDS))
            continue
        try:
            committed = _run_claim(claiming, claimed)
        except JobSuperseded:
            raise superseded(claiming.get_job(job_id)) from None
        if committed is not None and progress is not None:
            progress(committed)
