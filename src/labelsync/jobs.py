"""A push job's life, decided once: its states, its transitions, and what one batch writes.

Pure functions over values, no I/O and no clock. Every store (in-memory,
SQLite, PostgreSQL, a host's own) reads the job and the tenant's current job
inside its transaction, asks this module what the job becomes, and persists
the answer; no adapter decides fencing, superseding, checkpoints or finishing
on its own. The batch itself is decided by the same per-User rule as
`apply_defaults` (`decide`), or executed by a store as set-based SQL from the
`BatchPlan` derived here, which the conformance kit's differential test proves
equal to the rule.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence

import attrs
from attrs import field, frozen

from labelsync import _validate as v
from labelsync._provenance import LabelOrigin, Origin
from labelsync.audience import Audience
from labelsync.changes import ChangeRow, LabelChange, Skip, SkipRow, count_rows
from labelsync.exceptions import AlreadyReverted, InvalidInput, JobSuperseded
from labelsync.model import Defaults, PushCounts, PushRecord, SkipReason, SystemLabel, User
from labelsync.policy import PushMode
from labelsync.rules import PREVIEW_STAMP, apply_rows

__all__ = [
    "Activity",
    "BatchDecision",
    "BatchPlan",
    "JobStatus",
    "PushJob",
    "Removed",
    "RevertJob",
    "StoredChange",
    "activity",
    "after_batch",
    "after_range",
    "check_current",
    "check_live",
    "check_revert_finishable",
    "check_writable",
    "decide",
    "decide_job",
    "finished",
    "job_plan",
    "leased",
    "plan",
    "revert_started",
    "started",
    "superseded",
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
    after; `processed` counts the roster Users handled so far. `audience`
    narrows the roster to its members at the start (R20): `total` counts them,
    and a store remembers which positions they hold.
    """

    id: str = field(validator=v.an_id)
    tenant_id: str = field(validator=v.an_id)
    actor_id: str = field(validator=v.an_id)
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
    audience: Audience = field(
        default=Audience.everyone(), validator=v.instance_of(Audience, what="an Audience")
    )
    # The runner lease is how the job is run, not what it is: equality ignores it.
    runner_id: str | None = field(
        default=None, kw_only=True, eq=False, validator=attrs.validators.optional(v.an_id)
    )
    """The runner (process) that last leased the job to run it; None if none ever did."""
    lease_until: dt.datetime | None = field(
        default=None,
        kw_only=True,
        eq=False,
        validator=attrs.validators.optional(v.aware_datetime),
    )
    """Until when `runner_id` is known to be alive and running it; None once released."""
    mode: PushMode = field(default=PushMode.OVERRIDE, validator=v.member_of(PushMode))
    """How the push treats the Users' own choices (R16)."""
    locked: frozenset[SystemLabel] = field(
        default=frozenset(), validator=v.each_instance_of(SystemLabel, what="a SystemLabel")
    )
    """The tenant's locked labels when the push started: applied in every mode (R17)."""

    @property
    def stamp(self) -> LabelOrigin:
        """The origin this push gives each label it flips (R15): its id and start time."""
        return LabelOrigin(origin=Origin.PUSH, job_id=self.id, at=self.started_at)

    @property
    def finished(self) -> bool:
        """True once the job will write nothing more (DONE or SUPERSEDED)."""
        return self.status in (JobStatus.DONE, JobStatus.SUPERSEDED)

    @property
    def roster_done(self) -> bool:
        """True once the checkpoint has passed the last roster position: only finishing is left."""
        return self.cursor >= self.roster_end

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
            audience=self.audience,
        )


@frozen
class StoredChange:
    """A `LabelChange` a push job wrote, with the User's version right after the write (B5)."""

    change: LabelChange = field(validator=v.instance_of(LabelChange, what="a LabelChange"))
    version_after: int = field(validator=v.count)


@frozen
class RevertJob:
    """The audit record of a revert of one push (R19): who, when, and what it restored.

    RUNNING while its Users are written, DONE after; a push has at most one.
    """

    id: str = field(validator=v.non_empty_str)
    tenant_id: str = field(validator=v.non_empty_str)
    push_job_id: str = field(validator=v.non_empty_str)
    actor_id: str = field(validator=v.non_empty_str)
    started_at: dt.datetime = field(validator=v.aware_datetime)
    status: JobStatus = field(default=JobStatus.RUNNING, validator=v.member_of(JobStatus))
    finished_at: dt.datetime | None = field(
        default=None, validator=attrs.validators.optional(v.aware_datetime)
    )
    users_restored: int = field(default=0, validator=v.count)
    labels_restored: int = field(default=0, validator=v.count)
    users_left_alone: int = field(default=0, validator=v.count)
    """Users the push had changed whose labels someone changed since: left as they are."""
    restored_defaults: bool = False
    """True when the revert of the latest push gave the tenant the defaults before it."""

    @property
    def stamp(self) -> LabelOrigin:
        """The origin this revert gives each label it restores (R15)."""
        return LabelOrigin(origin=Origin.REVERT, job_id=self.id, at=self.started_at)


def revert_started(revert: RevertJob, known: RevertJob | None) -> RevertJob:
    """What `start_revert` keeps for `revert`, given the revert `known` of the same push (R19).

    None known: `revert` is stored. An unfinished one: it is resumed (a revert
    interrupted midway goes on). A finished one: `AlreadyReverted`, nothing written.
    """
    if known is None:
        return revert
    if known.status is JobStatus.DONE:
        raise AlreadyReverted(revert.push_job_id, known.id)
    return known


def check_revert_finishable(
    revert: RevertJob, *, push_job_id: str | None, status: JobStatus | None
) -> None:
    """The fence of `finish_revert`: `revert` must be stored for its push (`push_job_id`, as
    stored; None if not stored) and not finished yet (`status`, as stored)."""
    if push_job_id != revert.push_job_id:
        raise InvalidInput("revert.id", revert.id, "is not a started revert")
    if status is JobStatus.DONE:
        raise AlreadyReverted(revert.push_job_id, revert.id)


class Activity(enum.Enum):
    """Whether anything runs a job now, from its status and its runner's lease (`activity`)."""

    RUNNING = "RUNNING"
    """Unfinished, and a runner holds a live lease on it: something is running it."""
    INTERRUPTED = "INTERRUPTED"
    """Unfinished, and its runner stopped (released its lease, or its lease lapsed): resume it."""
    WAITING = "WAITING"
    """PENDING and never leased by a runner: started, waiting for one."""
    FINISHED = "FINISHED"
    """DONE or SUPERSEDED: nothing more runs."""


def activity(job: PushJob, now: dt.datetime, *, runner_alive: bool | None = None) -> Activity:
    """Whether a runner is running `job` at `now`: a live lease says so, nothing else does.

    A runner renews its lease while it runs and releases it when it stops (an
    error, Ctrl-C, SIGTERM); a runner killed outright (SIGKILL, a power cut)
    cannot, and its job shows INTERRUPTED once the lease lapses, or at once
    when the caller knows the runner's process is gone (``runner_alive=False``).
    """
    if job.finished:
        return Activity.FINISHED
    if job.lease_until is not None and job.lease_until > now and runner_alive is not False:
        return Activity.RUNNING
    if job.runner_id is None and job.status is JobStatus.PENDING:
        return Activity.WAITING
    return Activity.INTERRUPTED


# -- transitions -------------------------------------------------------------------------


def leased(job: PushJob, *, runner_id: str, until: dt.datetime | None) -> PushJob:
    """The job with its lease renewed to `until` by `runner_id`, or released (``until=None``).

    A release by a runner that no longer holds the lease (another took it on)
    changes nothing, so one worker stopping never hides another that still runs.
    A finished job is left as it is: `activity` ignores its lease.
    """
    v.check_id("runner_id", runner_id)
    if until is not None:
        when: object = until
        if not isinstance(when, dt.datetime) or when.utcoffset() is None:
            raise InvalidInput("until", until, "must be a timezone-aware datetime or None")
    if job.finished:
        return job  # nothing runs it any more, whatever its last lease said
    if until is None:
        if job.runner_id != runner_id or job.lease_until is None:
            return job
        return attrs.evolve(job, lease_until=None)
    return attrs.evolve(job, runner_id=runner_id, lease_until=until)


def started(job: PushJob, *, total: int, roster_end: int) -> PushJob:
    """The job as `start_job` stores it: PENDING, its roster fixed at the Users stored now (R6)."""
    return attrs.evolve(
        job,
        status=JobStatus.PENDING,
        total=total,
        roster_end=roster_end,
        processed=0,
        cursor=0,
        counts=PushCounts(),
        finished_at=None,
        superseded_by=None,
    )


def superseded(job: PushJob, *, by: str) -> PushJob:
    """An unfinished job once push `by` of the same tenant started (R10); finished jobs stay."""
    if job.finished:
        return job
    return attrs.evolve(job, status=JobStatus.SUPERSEDED, superseded_by=by)


def check_live(job: PushJob) -> None:
    """Raise `JobSuperseded` for a superseded job: nothing may be claimed or written for it."""
    if job.status is JobStatus.SUPERSEDED:
        raise JobSuperseded(job.id, job.superseded_by)


def check_current(job: PushJob, current_job_id: str | None) -> None:
    """The fence: raise `JobSuperseded` unless `job` is its tenant's current, unsuperseded job."""
    if job.status is JobStatus.SUPERSEDED or current_job_id != job.id:
        raise JobSuperseded(job.id, job.superseded_by or current_job_id)


def check_writable(job: PushJob, current_job_id: str | None) -> None:
    """The fence for a batch: as `check_current`, and a DONE job takes no more batches."""
    check_current(job, current_job_id)
    if job.status is JobStatus.DONE:
        raise JobSuperseded(job.id, None)


def after_batch(job: PushJob, *, last_position: int, processed: int, counts: PushCounts) -> PushJob:
    """The job after one committed batch: RUNNING, checkpoint at `last_position`, counts added."""
    if last_position < job.cursor:
        raise InvalidInput(
            "last_position", last_position, f"is behind the job's checkpoint {job.cursor}"
        )
    return attrs.evolve(
        job,
        status=JobStatus.RUNNING,
        cursor=last_position,
        processed=job.processed + processed,
        counts=job.counts + counts,
    )


def after_range(job: PushJob, *, processed: int, counts: PushCounts) -> PushJob:
    """The job after a worker committed a claimed range (B6): RUNNING, counts added.

    The single checkpoint means nothing to parallel workers (each range is marked
    done on its own), so it stays where it is.
    """
    return after_batch(job, last_position=job.cursor, processed=processed, counts=counts)


def finished(job: PushJob, finished_at: dt.datetime) -> PushJob:
    """The job marked DONE at `finished_at`; a DONE job stays as it is (finishing is idempotent).

    `finished_at` must be timezone-aware: it becomes the audit record's time (R11).
    """
    when: object = finished_at
    if not isinstance(when, dt.datetime) or when.utcoffset() is None:
        raise InvalidInput("finished_at", finished_at, "must be a timezone-aware datetime")
    if job.status is JobStatus.DONE:
        return job
    return attrs.evolve(job, status=JobStatus.DONE, finished_at=finished_at)


# -- batches ---------------------------------------------------------------------------------


@frozen
class BatchPlan:
    """What a batch does to each roster User, derived from the job's defaults (R3, R4, R5, R7).

    For each system label, in `labels` order, `checked[i]` is its checkbox: a
    User whose mailbox has the label gets its selection flag set to that value
    (a change where it differs); a mailbox without it is skipped for that label
    with LABEL_MISSING; a User without a mailbox is skipped once with NO_MAILBOX;
    a roster User removed since the job started is skipped once with USER_REMOVED.
    Nothing else of the User changes, and a User with any change moves one
    version on. A store may run this as set-based SQL; the conformance kit
    proves it equal to `apply_defaults`.
    """

    labels: tuple[SystemLabel, ...]
    checked: tuple[bool, ...]
    keep: tuple[bool, ...] = (False, False)
    """Per label: leave it where its origin is the User (KEEP_USER_CHOICES, not locked)."""
    new_only: tuple[bool, ...] = (False, False)
    """Per label: leave it for Users already covered (NEW_USERS_ONLY, not locked)."""
    stamp: LabelOrigin = PREVIEW_STAMP
    """The origin a flipped label gets; every User with a mailbox becomes covered."""

    def targets(self) -> tuple[tuple[SystemLabel, bool], ...]:
        """Each system label with the selection it ends up with, INBOX first."""
        return tuple(zip(self.labels, self.checked, strict=True))

    def counts(
        self,
        *,
        users_changed: int,
        flips: Sequence[int],
        no_mailbox: int,
        missing: Sequence[int],
        kept: Sequence[int] = (0, 0),
        removed: int = 0,
    ) -> PushCounts:
        """The `PushCounts` of a batch run set-based, from what a store counted per label.

        `flips[i]` and `missing[i]` count the Users whose label `labels[i]` the
        batch changed, and whose mailbox lacks it; a flip is a selection where
        the label is checked and a deselection where it is not; `removed` counts
        the roster entries whose User was removed since the job started (R14).
        """
        selected = sum(n for n, on in zip(flips, self.checked, strict=True) if on)
        return PushCounts(
            users_changed=users_changed,
            selected=selected,
            deselected=sum(flips) - selected,
            no_mailbox=no_mailbox,
            label_missing=sum(missing),
            user_choice_kept=sum(kept),
            user_removed=removed,
        )


def plan(
    defaults: Defaults,
    *,
    mode: PushMode = PushMode.OVERRIDE,
    locked: frozenset[SystemLabel] = frozenset(),
    stamp: LabelOrigin = PREVIEW_STAMP,
) -> BatchPlan:
    """The `BatchPlan` of a push of `defaults` in `mode`, with `locked` labels as OVERRIDE."""
    if not isinstance(defaults, Defaults):
        raise InvalidInput("defaults", defaults, "is not a Defaults")
    items = defaults.items()
    labels = tuple(label for label, _ in items)
    return BatchPlan(
        labels=labels,
        checked=tuple(on for _, on in items),
        keep=tuple(mode is PushMode.KEEP_USER_CHOICES and lb not in locked for lb in labels),
        new_only=tuple(mode is PushMode.NEW_USERS_ONLY and lb not in locked for lb in labels),
        stamp=stamp,
    )


def job_plan(job: PushJob) -> BatchPlan:
    """The `BatchPlan` of `job`: its defaults, mode, locks and stamp."""
    return plan(job.defaults, mode=job.mode, locked=job.locked, stamp=job.stamp)


@frozen
class BatchDecision:
    """What one batch writes: the changed Users (each with the version it was read at), the
    change records with each User's version after the write, the skips, and their counts."""

    writes: tuple[tuple[User, int], ...]
    changes: tuple[StoredChange, ...]
    skips: tuple[Skip, ...]
    counts: PushCounts


@frozen
class Removed:
    """A roster entry whose User was removed after the push started (R14).

    A batch skips it with `SkipReason.USER_REMOVED` and writes nothing for it;
    it still counts as a roster User handled, so `processed` reaches `total`.
    """

    user_id: str = field(validator=v.non_empty_str)


def decide(
    entries: Sequence[User | Removed],
    defaults: Defaults,
    *,
    mode: PushMode = PushMode.OVERRIDE,
    stamp: LabelOrigin = PREVIEW_STAMP,
    locked: frozenset[SystemLabel] = frozenset(),
) -> BatchDecision:
    """Turn the per-User rule's output for a batch (`rules.apply_rows`) into what is written.

    `entries` are the batch's roster entries in roster order: each User as
    read, or `Removed` for one removed since the job started (R14).
    """
    users: list[User] = []
    change_rows: list[ChangeRow] = []
    skip_rows: list[SkipRow] = []
    after: list[User] = []
    run: list[User] = []

    def flush() -> None:
        # The rule runs over each stretch of live Users, so rows stay in roster order.
        if run:
            new, changed, skipped = apply_rows(run, defaults, mode=mode, stamp=stamp, locked=locked)
            users.extend(run)
            after.extend(new)
            change_rows.extend(changed)
            skip_rows.extend(skipped)
            run.clear()

    for entry in entries:
        if isinstance(entry, Removed):
            flush()
            skip_rows.append((entry.user_id, None, SkipReason.USER_REMOVED))
        else:
            run.append(entry)
    flush()
    version_after = {new.id: new.version for old, new in zip(users, after, strict=True)}
    return BatchDecision(
        writes=tuple(
            (new, old.version) for old, new in zip(users, after, strict=True) if new is not old
        ),
        changes=tuple(
            StoredChange(
                change=LabelChange(user_id=u, label=label, label_id=i, selected=on),
                version_after=version_after[u],
            )
            for u, label, i, on in change_rows
        ),
        skips=tuple(Skip(user_id=u, label=label, reason=r) for u, label, r in skip_rows),
        counts=count_rows(change_rows, skip_rows),
    )


def decide_job(entries: Sequence[User | Removed], job: PushJob) -> BatchDecision:
    """`decide` for a batch of `job`: its defaults, mode, stamp and locks."""
    return decide(entries, job.defaults, mode=job.mode, stamp=job.stamp, locked=job.locked)
