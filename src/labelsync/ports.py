"""The ports the shell runs on: a `Store` for tenants, Users and push jobs, and a `Clock`.

Both are `typing.Protocol`s and can be implemented by any class with these
methods; `labelsync.testing.conformance` checks an implementation against the
contract written here. `labelsync.adapters` has in-memory, SQLite and
PostgreSQL stores and two clocks.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator, Sequence
from typing import Protocol

import attrs
from attrs import field, frozen

from labelsync import _validate as v
from labelsync.changes import ChangeRow, LabelChange, Skip, SkipRow
from labelsync.exceptions import InvalidInput
from labelsync.model import Defaults, PushCounts, PushRecord, Tenant, User

__all__ = [
    "BatchWrite",
    "Clock",
    "Conflict",
    "JobStatus",
    "PushJob",
    "StaleCheckpoint",
    "Store",
    "StoredChange",
]


class JobStatus(enum.Enum):
    """Where a push job is in its life."""

    PENDING = "PENDING"
    """Started (roster fixed) but no batch written yet."""
    RUNNING = "RUNNING"
    """At least one batch written; resumable from its checkpoint."""
    DONE = "DONE"
    """Every roster User handled; the tenant's last push."""
    SUPERSEDED = "SUPERSEDED"
    """A newer push for the same tenant started first; this one writes nothing more."""


@frozen
class PushJob:
    """A push of `defaults` to the roster of a tenant, and how far it got.

    The roster is every User whose roster position is at most `roster_end`:
    the Users that existed when the push started (R6). `cursor` is the
    position of the last roster User handled, the checkpoint a resume starts
    after; `processed` counts the roster Users handled so far.
    """

    id: str = field(validator=v.non_empty_str)
    tenant_id: str = field(validator=v.non_empty_str)
    actor_id: str = field(validator=v.non_empty_str)
    defaults: Defaults = field(validator=v.instance_of(Defaults, what="a Defaults"))
    status: JobStatus = field(validator=v.member_of(JobStatus))
    started_at: dt.datetime = field(validator=v.aware_datetime)
    total: int = field(default=0, validator=v.count)
    processed: int = field(default=0, validator=v.count)
    cursor: int = field(default=0, validator=v.count)
    roster_end: int = field(default=0, validator=v.count)
    counts: PushCounts = field(factory=PushCounts)
    finished_at: dt.datetime | None = field(
        default=None, validator=attrs.validators.optional(v.aware_datetime)
    )
    superseded_by: str | None = None

    @property
    def finished(self) -> bool:
        """True once the job will write nothing more (DONE or SUPERSEDED)."""
        return self.status in (JobStatus.DONE, JobStatus.SUPERSEDED)

    def record(self) -> PushRecord:
        """The audit record (R11) of this job once DONE; stores build `Tenant.last_push` with it."""
        if self.status is not JobStatus.DONE or self.finished_at is None:
            raise InvalidInput("PushJob.status", self.status.name, "has no audit record until DONE")
        return PushRecord(
            job_id=self.id,
            actor_id=self.actor_id,
            defaults=self.defaults,
            started_at=self.started_at,
            finished_at=self.finished_at,
            roster_size=self.total,
            counts=self.counts,
        )


@frozen
class StoredChange:
    """A `LabelChange` a push job wrote, with the User's version right after the write (B5)."""

    change: LabelChange
    version_after: int


@frozen
class BatchWrite:
    """Everything one batch of a push job writes, committed in one transaction or not at all.

    `writes` pairs each changed User (as it should be stored) with the version
    it was read at; `cursor_before` is the job's checkpoint the batch was read
    after, `cursor_after` the new one.
    """

    job_id: str
    cursor_before: int
    cursor_after: int
    processed: int
    writes: tuple[tuple[User, int], ...]
    changes: tuple[ChangeRow, ...]
    skips: tuple[SkipRow, ...]
    counts: PushCounts


@frozen
class Conflict:
    """`commit_batch` wrote nothing because these Users changed since they were read (R12)."""

    user_ids: tuple[str, ...]


@frozen
class StaleCheckpoint:
    """`commit_batch` wrote nothing because the job's checkpoint moved on (another runner)."""

    job: PushJob


class Clock(Protocol):
    """Where labelsync gets the time; can be implemented by any object with `now()`."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC preferred); a naive value is refused."""
        ...


class Store(Protocol):
    """Durable tenants, Users and push jobs; can be implemented by any class with these methods.

    Every method is atomic: it takes effect whole or not at all, and an error it
    raises leaves the stored state as it was. Ids are scoped by tenant: a method
    given a tenant id never reads or writes another tenant's rows. Errors are
    labelsync's: `UnknownTenant`, `UnknownUser`, `UnknownJob`, `AlreadyExists`,
    `JobSuperseded`.
    """

    # -- tenants and Users ------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        """Store `tenant` with its Users (in roster order), settings and last push record.

        `AlreadyExists` if the id is taken. The record (from a snapshot, say)
        names a job this store never ran: it is kept as the audit record only.
        """
        ...

    def tenant_ids(self) -> list[str]:
        """The ids of all stored tenants, sorted."""
        ...

    def get_tenant(self, tenant_id: str, *, users: bool = True) -> Tenant:
        """The stored tenant, with its Users in roster order (none if `users` is False)."""
        ...

    def save_settings(
        self, tenant_id: str, *, defaults: Defaults | None, onboard_new_users: bool
    ) -> None:
        """Store the admin's checkbox settings and the onboarding switch (R11, B4)."""
        ...

    def add_user(self, tenant_id: str, user: User) -> None:
        """Store a new User at the end of the roster; `AlreadyExists` if the id is taken."""
        ...

    def get_user(self, tenant_id: str, user_id: str) -> User:
        """One stored User; `UnknownUser` if the tenant has none with that id."""
        ...

    def get_users(self, tenant_id: str, user_ids: Sequence[str]) -> list[User]:
        """The stored Users with these ids, in the order given; unknown ids are left out."""
        ...

    def save_users(self, tenant_id: str, writes: Sequence[tuple[User, int]]) -> tuple[str, ...]:
        """Compare-and-set: store each User whose stored version still equals the paired one.

        Returns the ids of the Users it did not store because their version had
        moved on; the others are stored, in one transaction.
        """
        ...

    # -- push jobs ----------------------------------------------------------------

    def start_job(self, job: PushJob) -> PushJob:
        """Persist a new PENDING job and fix its roster, all at once.

        In one transaction: every unfinished job of the tenant becomes
        SUPERSEDED (with `superseded_by`), the new job becomes the tenant's
        current job, the tenant's checkbox settings become `job.defaults`, and
        the job's `total` and `roster_end` are set from the Users stored now.
        Returns the job as stored.
        """
        ...

    def get_job(self, job_id: str) -> PushJob:
        """One job; `UnknownJob` if there is none."""
        ...

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        """Jobs (of one tenant, or all), newest first."""
        ...

    def roster_batch(self, job_id: str, after: int, limit: int) -> list[tuple[int, User]]:
        """Up to `limit` roster Users of the job with position > `after`, by position."""
        ...

    def commit_batch(self, batch: BatchWrite) -> PushJob | Conflict | StaleCheckpoint:
        """Write one batch of a push in one transaction, fenced on the tenant's current job.

        Raises `JobSuperseded` (writing nothing) unless the job is the tenant's
        current, unfinished job. Returns `StaleCheckpoint` (writing nothing) if
        the job's cursor is not `batch.cursor_before`, and `Conflict` (writing
        nothing) if any User's stored version differs from the one paired with it.
        Otherwise stores the Users (version as given; a push changes only
        `synced` and `version`, so a store may write just those), the changes and skips,
        moves the cursor, adds `processed` and `counts`, marks the job RUNNING,
        and returns the job as stored.
        """
        ...

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        """Mark a fully processed job DONE and make it the tenant's last push (R11).

        Fenced like `commit_batch`; finishing a DONE job again returns it unchanged.
        """
        ...

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        """The changes a job wrote, in roster order."""
        ...

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        """The skips a job reported, in roster order (B2)."""
        ...
