"""The push job: walk the roster batch by batch with the same per-User rule as `apply_defaults`.

Each batch runs in one store transaction together with the checkpoint, fenced
on the tenant's current job (R10), over the Users as stored at that moment, so
a User's own edit made between batches is kept (R12). A killed run resumes
after the last committed batch and ends where an uninterrupted run would. What
the job becomes at each step is decided in `labelsync.jobs`.

Logs to ``logging.getLogger("labelsync.push")``: a job's start, resume, finish
and supersede at INFO, each batch at DEBUG, a batch another runner committed
first at WARNING, always with the job and tenant ids.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from attrs import frozen

from labelsync import _validate as v
from labelsync.exceptions import InvalidInput, JobSuperseded
from labelsync.jobs import JobStatus, PushJob
from labelsync.model import PushCounts, SkipReason
from labelsync.policy import PushMode
from labelsync.ports import Clock, StaleCheckpoint, Store

__all__ = [
    "JobStatus",
    "Progress",
    "PushJob",
    "PushReport",
    "finish",
    "now",
    "run_job",
    "start_job",
    "superseded",
]

log = logging.getLogger(__name__)

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
        audience = f" to {job.audience.describe()}" if job.audience.narrowed else ""
        return (
            f"push {job.id} ({job.defaults.describe()}){audience} "
            f"{job.status.name.lower()}{took}: "
            f"{job.processed}/{job.total} Users, {c.users_changed} changed "
            f"(+{c.selected} selected, -{c.deselected} deselected), "
            f"skipped: {c.no_mailbox} no mailbox, {c.label_missing} label missing"
            + (f", {c.user_choice_kept} user choices kept" if c.user_choice_kept else "")
            + (f", {c.user_removed} removed while it ran" if c.user_removed else "")
            + ("" if job.mode is PushMode.OVERRIDE else f" [{job.mode.name}]")
        )


def now(clock: Clock) -> dt.datetime:
    """`clock.now()`, refused unless timezone-aware: a naive time is ambiguous in an audit."""
    value: object = clock.now()
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidInput("clock.now()", value, "must be a timezone-aware datetime")
    return value


def check_batch_size(batch_size: object) -> int:
    """Refuse anything but a whole number in 1..100,000 (`_validate.MAX_BATCH_SIZE`)."""
    return v.check_batch_size(batch_size)


def start_job(store: Store, job: PushJob) -> PushJob:
    """Persist `job` with its roster fixed (R6), superseding the tenant's unfinished push (R10)."""
    stored = store.start_job(job)
    log.info(
        "push job %s of tenant %s started: %s, roster of %d Users%s",
        stored.id,
        stored.tenant_id,
        stored.defaults.describe(),
        stored.total,
        f" ({stored.audience.describe()})" if stored.audience.narrowed else "",
    )
    return stored


def superseded(job: PushJob) -> JobSuperseded:
    """The error for running a superseded job, logged at INFO."""
    log.info(
        "push job %s of tenant %s superseded by %s; it writes nothing more",
        job.id,
        job.tenant_id,
        job.superseded_by,
    )
    return JobSuperseded(job.id, job.superseded_by)


def finish(store: Store, clock: Clock, job: PushJob) -> PushJob:
    """Mark the fully processed `job` DONE, logged at INFO."""
    done = store.finish_job(job.id, now(clock))
    log.info(
        "push job %s of tenant %s finished: %d/%d Users, %d changed, %d skips",
        done.id,
        done.tenant_id,
        done.processed,
        done.total,
        done.counts.users_changed,
        done.counts.skipped,
    )
    return done


def _batch(store: Store, job: PushJob, batch_size: int) -> PushJob | None:
    """Run one batch; None when another runner moved the checkpoint or finished the job first."""
    try:
        result = store.run_batch(job.id, after=job.cursor, limit=batch_size)
    except JobSuperseded:
        # Another runner may have finished the job meanwhile: that is not a
        # supersede, and the caller's loop reports the DONE job.
        if store.get_job(job.id).status is JobStatus.DONE:
            return None
        raise
    if isinstance(result, StaleCheckpoint):
        log.warning(
            "push job %s of tenant %s: another runner committed the batch after %d first; "
            "going on from its checkpoint %d",
            job.id,
            job.tenant_id,
            job.cursor,
            result.job.cursor,
        )
        return None
    log.debug(
        "push job %s of tenant %s: batch committed up to position %d, %d/%d Users",
        result.id,
        result.tenant_id,
        result.cursor,
        result.processed,
        result.total,
    )
    return result


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
    if job.status is JobStatus.RUNNING:
        log.info(
            "push job %s of tenant %s resumed after position %d, %d/%d Users done",
            job.id,
            job.tenant_id,
            job.cursor,
            job.processed,
            job.total,
        )
    while True:
        if job.status is JobStatus.SUPERSEDED:
            raise superseded(job)
        if job.status is JobStatus.DONE:
            return job
        if job.roster_done:
            return finish(store, clock, job)
        try:
            committed = _batch(store, job, batch_size)
        except JobSuperseded:
            raise superseded(store.get_job(job_id)) from None
        if committed is None:
            job = store.get_job(job_id)
            continue
        if committed.cursor == job.cursor and committed.processed == job.processed:
            # No roster User was left after the checkpoint: nothing more to write.
            return finish(store, clock, committed)
        job = committed
        if progress is not None:
            progress(job)
