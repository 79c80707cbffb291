"""The ports the shell runs on: a tenant directory, push execution, push history, and a clock.

Each is a `typing.Protocol` and can be implemented by any class with these
methods; `Store` is their union, which every shipped store implements.
`labelsync.testing.conformance` checks an implementation against the contract
written here. `labelsync.adapters` has in-memory, SQLite and PostgreSQL stores
and two clocks. A push job's life (fence, supersede, checkpoint, finish) is
decided in `labelsync.jobs`; a store persists what that module decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from attrs import field, frozen

from labelsync import _validate as v
from labelsync._validate import MAX_BATCH_SIZE, is_id
from labelsync.changes import Skip
from labelsync.jobs import JobStatus, PushJob, RevertJob, StoredChange
from labelsync.model import Defaults, Locks, PushRecord, SystemLabel, Tenant, User
from labelsync.presets import PresetBook, PresetEvent

__all__ = [
    "MAX_BATCH_SIZE",
    "Clock",
    "JobLeases",
    "JobStatus",
    "PolicyStorage",
    "PresetStore",
    "PushExecution",
    "PushHistory",
    "PushJob",
    "StaleCheckpoint",
    "Store",
    "StoredChange",
    "TenantDirectory",
    "TenantSettings",
    "UserDirectory",
    "is_id",
]


@frozen
class TenantSettings:
    """A tenant without its Users: the admin's checkbox settings, onboarding switch, last push.

    What `TenantDirectory.settings` returns, so that reading a setting never
    loads a roster.
    """

    id: str = field(validator=v.an_id)
    name: str = field(validator=v.non_empty_str)
    defaults: Defaults | None = field(
        default=None, validator=v.optional_instance_of(Defaults, what="a Defaults")
    )
    onboard_new_users: bool = field(default=False, validator=v.strict_bool)
    last_push: PushRecord | None = field(
        default=None, validator=v.optional_instance_of(PushRecord, what="a PushRecord")
    )
    locks: Locks | None = field(
        default=None, validator=v.optional_instance_of(Locks, what="a Locks")
    )

    @property
    def locked(self) -> frozenset[SystemLabel]:
        """The locked system labels (R17); empty when nothing is locked."""
        return frozenset() if self.locks is None else self.locks.labels


@frozen
class StaleCheckpoint:
    """`run_batch` wrote nothing because the job's checkpoint moved on (another runner)."""

    job: PushJob


class Clock(Protocol):
    """Where labelsync gets the time; can be implemented by any object with `now()`."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC preferred); a naive value is refused."""
        ...


class TenantDirectory(Protocol):
    """Durable tenants and their Users; can be implemented by any class with these methods.

    Every method is atomic: it takes effect whole or not at all, and an error it
    raises leaves the stored state as it was. Ids are scoped by tenant: a method
    given a tenant id never reads or writes another tenant's rows. Errors are
    labelsync's: `UnknownTenant`, `UnknownUser`, `AlreadyExists`, `InvalidInput`.
    """

    def add_tenant(self, tenant: Tenant) -> None:
        """Store `tenant` with its Users (in roster order), settings and last push record.

        `AlreadyExists` if the id is taken. The record (from a snapshot, say)
        names a job this store never ran: it is kept as the audit record only.
        """
        ...

    def tenant_ids(self) -> list[str]:
        """The ids of all stored tenants, sorted."""
        ...

    def get_tenant(self, tenant_id: str) -> Tenant:
        """The stored tenant, with its Users in roster order."""
        ...

    def settings(self, tenant_id: str) -> TenantSettings:
        """The stored tenant without its Users: checkboxes, onboarding switch, last push."""
        ...

    def save_defaults(self, tenant_id: str, defaults: Defaults | None) -> None:
        """Store the admin's checkbox settings (R11), leaving every other setting as it is."""
        ...

    def save_onboarding(self, tenant_id: str, enabled: bool) -> None:
        """Store the onboarding switch (B4), leaving every other setting as it is."""
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
        moved on (or the tenant has no such User); the others are stored, in one
        transaction, at the roster positions they had. A User named twice in one
        call raises `InvalidInput` naming ``writes[i].id`` and stores nothing:
        which of the two should win is not the store's to guess. A stored
        User that is covered (R16) stays covered: marking a User covered does not
        move their version, so a write read before it must not undo it.
        """
        ...


class UserDirectory(Protocol):
    """Adding Users in bulk and removing them (R13, R14); any class with these methods.

    Atomic like `TenantDirectory`. Errors: `UnknownTenant`, `AlreadyExists`, `InvalidInput`.
    """

    def add_users(self, tenant_id: str, users: Sequence[User]) -> None:
        """Store new Users at the end of the roster, in the order given, all or none.

        `AlreadyExists` naming ``users[i].id`` if any id is taken; `InvalidInput`
        if one is named twice. A removed User's id may be added again: it gets
        a new roster position, after every earlier one (R6, R14).
        """
        ...

    def remove_users(self, tenant_id: str, user_ids: Sequence[str]) -> tuple[str, ...]:
        """Remove the Users with these ids, in one transaction; return the ids it removed.

        Ids the tenant has no User for are left out of the answer. A removed
        User that is in the roster of the tenant's unfinished push and not yet
        handled by it stays in that roster as removed: the batch that reaches
        its position skips it with `SkipReason.USER_REMOVED` and writes nothing
        for it (R14). The push's recorded changes and skips of the User stay.
        """
        ...

    def user_ids(self, tenant_id: str) -> Iterator[str]:
        """The ids of the tenant's Users in roster order, streamed; `UnknownTenant` at the call."""
        ...


class PushExecution(Protocol):
    """Runs push jobs batch by batch; can be implemented by any class with these methods.

    Atomic like `TenantDirectory`. What a job becomes at each step is decided
    by `labelsync.jobs` (`started`, `superseded`, `check_writable`,
    `after_batch`, `finished`); a store persists it. Errors: `UnknownTenant`,
    `UnknownJob`, `AlreadyExists`, `JobSuperseded`, `InvalidInput`.
    """

    def start_job(self, job: PushJob) -> PushJob:
        """Persist a new PENDING job and fix its roster, all at once.

        In one transaction: every unfinished job of the tenant becomes
        SUPERSEDED (`jobs.superseded`), the new job becomes the tenant's
        current job, the tenant's checkbox settings become `job.defaults`, and
        the job's `total` and `roster_end` are set from the Users stored now
        (`jobs.started`). Returns the job as stored.

        A job whose `audience` is narrowed (R20) has as roster the audience's
        members stored now, selected in the store: `total` counts them, and
        `run_batch` reads and writes no other User, also if one joins the
        audience later (R6). Its defaults are not the tenant's checkbox
        settings, which stay as they are.
        """
        ...

    def get_job(self, job_id: str) -> PushJob:
        """One job; `UnknownJob` if there is none."""
        ...

    def run_batch(self, job_id: str, *, after: int, limit: int) -> PushJob | StaleCheckpoint:
        """Push the job's defaults to its next `limit` roster Users after position `after`.

        One transaction, fenced by `jobs.check_writable` (else `JobSuperseded`,
        writing nothing). Returns `StaleCheckpoint` (writing nothing) if the
        job's checkpoint is not `after`. Otherwise reads the roster Users with
        position > `after` (and <= `roster_end`) as stored now, applies
        `jobs.plan(job.defaults)` to each exactly as `apply_defaults` would
        (the same Users, changes, skips and versions; a roster User removed
        since the job started is one entry, skipped as `jobs.decide` skips a
        `jobs.Removed`), stores the changed
        Users' selection and version (nothing else of a User changes), the
        changes (`job_changes`) and skips (`job_skips`) in roster order, and
        the job as `jobs.after_batch` makes it, checkpoint at the last of those
        Users; with none left it writes nothing. Returns the job as stored.
        """
        ...

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        """Mark the job DONE (`jobs.finished`) and make it the tenant's last push (R11).

        Fenced by `jobs.check_current`; finishing a DONE job again returns it unchanged.
        """
        ...


@runtime_checkable
class JobLeases(Protocol):
    """Optional: a runner's lease on a job, so status tells a running job from an interrupted one.

    Every shipped store implements it. A host store without it still runs
    pushes; its unfinished jobs then show no runner (`labelsync.jobs.activity`).
    """

    def lease_job(self, job_id: str, *, runner_id: str, until: dt.datetime | None) -> PushJob:
        """Store the job's runner lease as `jobs.leased` makes it: renewed to `until`, or released.

        One transaction, not fenced (a superseded or done job's lease is kept
        as `jobs.leased` says); changes nothing else of the job. Returns the
        job as stored; `UnknownJob` if there is none.
        """
        ...


class PushHistory(Protocol):
    """What push jobs did, for audits, reports and revert; any class with these methods."""

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        """Jobs (of one tenant, or all), newest first."""
        ...

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        """The changes a job wrote, in roster order; `UnknownJob` at the call."""
        ...

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        """The skips a job reported, in roster order (B2); `UnknownJob` at the call."""
        ...


class PolicyStorage(Protocol):
    """Locks and reverts of admin policy (R17, R19); any class with these methods.

    Atomic like `TenantDirectory`. Errors: `UnknownTenant`, `UnknownJob`,
    `AlreadyReverted`, `InvalidInput`.
    """

    def save_locks(self, tenant_id: str, locks: Locks | None) -> None:
        """Store the tenant's locks (R17), leaving every other setting as it is."""
        ...

    def start_revert(self, revert: RevertJob) -> RevertJob:
        """Persist a RUNNING revert of `revert.push_job_id`, or return the unfinished one.

        A push with a DONE revert raises `AlreadyReverted` and writes nothing; a
        push with a RUNNING revert (its runner stopped) returns that one to resume.
        """
        ...

    def finish_revert(
        self, revert: RevertJob, *, defaults: Defaults | None, last_push: PushRecord | None
    ) -> RevertJob:
        """Store `revert` (DONE, with its counts); if `revert.restored_defaults`, the tenant's
        checkbox settings and last push become `defaults` and `last_push`, in one transaction."""
        ...

    def list_reverts(self, tenant_id: str | None = None) -> list[RevertJob]:
        """Reverts (of one tenant, or all), newest first."""
        ...


class PresetStore(Protocol):
    """A tenant's presets and their audit trail (R21); any class with these methods.

    Atomic like `TenantDirectory`; `UnknownTenant` for a tenant it does not hold.
    """

    def get_presets(self, tenant_id: str) -> PresetBook:
        """The tenant's stored `PresetBook`; an empty book at version 0 if none was saved."""
        ...

    def save_presets(self, tenant_id: str, book: PresetBook, event: PresetEvent) -> bool:
        """Compare-and-set: store `book` and append `event` to the trail, all at once, if the
        stored book's version is ``book.version - 1``; else store nothing and return False."""
        ...

    def preset_events(self, tenant_id: str) -> list[PresetEvent]:
        """Every stored `PresetEvent` of the tenant, oldest first."""
        ...


class Store(
    TenantDirectory,
    UserDirectory,
    PushExecution,
    PushHistory,
    PolicyStorage,
    PresetStore,
    Protocol,
):
    """Everything `LabelSync` needs from storage: the ports above, in one object."""
