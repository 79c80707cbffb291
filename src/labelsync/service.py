"""`LabelSync`: the use cases of default synced labels, over a `Store` and a `Clock`.

The application service is the imperative shell: it checks who may do what,
reads from the store, asks the pure rules what to do, and writes the result
back with compare-and-set. Wire one at start-up and share it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from itertools import groupby, islice

import attrs
from attrs import frozen

from labelsync import _validate as v
from labelsync import directory
from labelsync import push as _push
from labelsync._provenance import LabelOrigin, Origin
from labelsync.audience import Audience
from labelsync.changes import Changes
from labelsync.coverage import Coverage, coverage
from labelsync.directory import DirectoryReport
from labelsync.exceptions import (
    InvalidInput,
    LabelLocked,
    LabelSyncError,
    PermissionDenied,
    UnknownUser,
)
from labelsync.jobs import Activity, JobStatus, PushJob, RevertJob, StoredChange, activity
from labelsync.model import (
    Defaults,
    EmailTab,
    LabelSet,
    Locks,
    Permission,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.parallel import run_worker
from labelsync.policy import (
    Drift,
    PushMode,
    changed_labels,
    check_locks,
    drift,
    drifted_push,
)
from labelsync.ports import Clock, JobLeases, Store, TenantSettings
from labelsync.presets import Preset, PresetAction, PresetBook, PresetEvent
from labelsync.push import Progress, PushReport
from labelsync.rules import (
    PREVIEW_STAMP,
    apply_defaults,
    apply_rows,
    check_uncovered,
    email_tab,
    onboarding_stamp,
)

__all__ = ["HistoryEntry", "LabelSync", "RevertReport"]

_log = logging.getLogger(__name__)


def _new_id() -> str:
    return uuid.uuid4().hex


def _audience(audience: object) -> Audience:
    if audience is None:
        return Audience.everyone()
    if not isinstance(audience, Audience):
        raise InvalidInput("audience", audience, "is not an Audience")
    return audience


# What `LabelSync` calls on its store: checked when the service is made, not at first use.
_STORE_METHODS = (
    "add_tenant", "tenant_ids", "get_tenant", "settings", "save_defaults", "save_onboarding",
    "add_user", "get_user", "get_users", "save_users", "start_job", "get_job", "run_batch",
    "finish_job", "list_jobs", "job_changes", "job_skips", "get_presets", "save_presets",
    "preset_events",
)  # fmt: skip


def _runner_id() -> str:
    """This process as a push runner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def runner_alive(runner_id: str | None) -> bool | None:
    """Whether the runner `runner_id` names still runs: False if it was a process of this host
    that is gone (killed outright, say), else None (unknown: only its lease can tell)."""
    if runner_id is None:
        return None
    host, _, rest = runner_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:64] or not pid_text.isdigit():
        return None  # a worker id a host chose, or another machine's runner
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return None
    return None


class _Runner:
    """A push runner's lease on its job: taken at the start, renewed as batches commit
    (at most every third of the lease), released when the run stops for any reason.

    `status` reads it to tell a job something runs from one nothing runs (`jobs.activity`).
    """

    def __init__(self, store: Store, clock: Clock, job_id: str, runner_id: str, lease: float):
        self._store, self._clock, self._job_id = store, clock, job_id
        self._runner_id, self._lease = runner_id, dt.timedelta(seconds=lease)
        self._renewed: dt.datetime | None = None

    def renew(self) -> None:
        try:
            now = _push.now(self._clock)
        except InvalidInput:
            return  # no trustworthy time, no lease; the push itself reports the clock at its finish
        try:
            until = now + self._lease
        except OverflowError:
            until = dt.datetime.max.replace(tzinfo=dt.UTC)
        if isinstance(self._store, JobLeases):
            self._store.lease_job(self._job_id, runner_id=self._runner_id, until=until)
        self._renewed = now

    def after(self, progress: Progress | None) -> Progress:
        def renewing(job: PushJob) -> None:
            if self._renewed is None or self._clock.now() - self._renewed >= self._lease / 3:
                self.renew()
            if progress is not None:
                progress(job)

        return renewing

    def release(self) -> None:
        # Best effort: a run stopped by a broken store must still report why it stopped.
        if isinstance(self._store, JobLeases) and self._renewed is not None:
            with contextlib.suppress(LabelSyncError):
                self._store.lease_job(self._job_id, runner_id=self._runner_id, until=None)


@frozen
class RevertReport:
    """What `revert_push` did (B5, R19): Users restored, Users left alone as changed since.

    `revert` is the revert's own audit record (who, when, counts); `restored_defaults`
    says whether the tenant's defaults and last push went back to the push before.
    """

    job_id: str
    reverted: tuple[str, ...]
    changed_since: tuple[str, ...]
    revert: RevertJob | None = None

    @property
    def restored_defaults(self) -> bool:
        """True when reverting the latest push gave the tenant the defaults before it."""
        return self.revert is not None and self.revert.restored_defaults

    def __str__(self) -> str:
        restored = "; defaults restored to the push before it" if self.restored_defaults else ""
        return (
            f"revert of push {self.job_id}: {len(self.reverted)} Users restored, "
            f"{len(self.changed_since)} left alone (changed since the push){restored}"
        )


@frozen
class HistoryEntry:
    """One push of a tenant's history (R19): the job with its report, and its revert if any."""

    job: PushJob
    revert: RevertJob | None = None

    @property
    def report(self) -> PushReport:
        """The push's report: counts of changes and skips by reason."""
        return PushReport(self.job)

    @property
    def reverted(self) -> bool:
        """True once a revert of this push finished."""
        return self.revert is not None and self.revert.status is JobStatus.DONE

    def __str__(self) -> str:
        line = str(self.report)
        if self.revert is not None:
            r = self.revert
            state = "reverted" if r.status is JobStatus.DONE else "revert unfinished"
            line += (
                f"; {state} by {r.actor_id} at {r.started_at.isoformat()} "
                f"(revert {r.id}: {r.users_restored} Users restored, "
                f"{r.users_left_alone} left alone)"
            )
        return line


class LabelSync:
    """Default synced labels for every User of a tenant, run over `store` with time from `clock`.

    `new_id` makes push job ids (random UUIDs unless given, e.g. for tests).
    """

    def __init__(self, *, store: Store, clock: Clock, new_id: Callable[[], str] = _new_id) -> None:
        missing = [name for name in _STORE_METHODS if not callable(getattr(store, name, None))]
        if missing:
            raise InvalidInput(
                "store", store, f"is not a labelsync Store (it lacks {', '.join(missing)})"
            )
        if not callable(getattr(clock, "now", None)):
            raise InvalidInput("clock", clock, "is not a Clock (it has no now())")
        if not callable(new_id):
            raise InvalidInput("new_id", new_id, "is not callable")
        self.store = store
        self.clock = clock
        self._new_id = new_id

    def __repr__(self) -> str:
        return f"LabelSync(store={self.store!r}, clock={self.clock!r})"

    # -- tenants and Users ------------------------------------------------------

    def create_tenant(self, tenant: Tenant) -> None:
        """Store a new tenant with its Users; `AlreadyExists` if the id is taken."""
        if not isinstance(tenant, Tenant):
            raise InvalidInput("tenant", tenant, "is not a Tenant")
        self.store.add_tenant(tenant)

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant as stored: Users, checkbox settings, onboarding switch, last push."""
        return self.store.get_tenant(tenant_id)

    def user(self, tenant_id: str, user_id: str) -> User:
        """One User as stored."""
        return self.store.get_user(tenant_id, user_id)

    def add_user(self, tenant_id: str, user: User, *, actor_id: str | None = None) -> User:
        """Add a User; with onboarding on they get defaults (B4, R6), else none.

        Onboarding gives the preset of the User's first group that has one
        (R21), else the last push's defaults.

        Who may: the host itself (``actor_id=None``, a trusted directory call),
        or an admin of the tenant acting through the host (`actor_id`); anyone
        else gets `PermissionDenied`. So a User holding ADMIN_ACCESS is only
        ever added by the host or by another admin.
        """
        if not isinstance(user, User):
            raise InvalidInput("user", user, "is not a User")
        if actor_id is not None:
            self._admin(tenant_id, actor_id, doing=f"add User {user.id!r}")
        settings = self.store.settings(tenant_id)
        if settings.onboard_new_users:
            user = self._onboard(tenant_id, user, settings, at=_push.now(self.clock))
        self.store.add_user(tenant_id, user)
        return user

    def _onboard(
        self, tenant_id: str, user: User, settings: TenantSettings, *, at: dt.datetime | None
    ) -> User:
        """`user` onboarded (B4, R21), its flipped labels stamped ONBOARDING (R15) `at`."""
        onboarding = self._onboarding_defaults(tenant_id, user, settings)
        if onboarding is None:
            return user
        defaults, from_push = onboarding
        return apply_rows((user,), defaults, stamp=onboarding_stamp(from_push, at))[0][0]

    def _onboarding_defaults(
        self, tenant_id: str, user: User, settings: TenantSettings
    ) -> tuple[Defaults, str | None] | None:
        """What onboarding gives `user` (R21, B4) and the push it comes from (R15's stamp):
        the preset of its first group that has one (no push), else the last push's defaults,
        or the tenant's checkboxes if that push went to some Users only; None when there is
        nothing to give."""
        preset = self.store.get_presets(tenant_id).for_user(user) if user.groups else None
        if preset is not None:
            return preset.defaults, None
        defaults = directory.onboarding(True, settings.last_push, settings.defaults)
        if defaults is None or settings.last_push is None:
            return None
        return defaults, settings.last_push.job_id

    # -- the directory (R13, R14) --------------------------------------------------

    def _directory_actor(self, tenant_id: str, actor_id: str | None) -> None:
        # A directory call is the host's own, trusted call; made on a person's
        # behalf (actor_id given), that person must be an admin of the tenant.
        if actor_id is None:
            self.store.settings(tenant_id)  # UnknownTenant before anything else
        else:
            self._admin(tenant_id, actor_id)

    def update_user(self, tenant_id: str, user: User, *, actor_id: str | None = None) -> User:
        """Take the host-owned fields of a stored User from `user` (R13); return it as stored.

        Email, permissions, the mailbox and its labels (connect, disconnect,
        refresh) come from `user`; its `synced` and `version` are ignored: the
        selection stays labelsync's (`labelsync.directory.kept_selection`) and
        the version moves on, so a writer that read the old User notices (R12).
        Nothing is written when no host-owned field differs. With onboarding
        on, a change of `groups` that gives the User another first-matching
        preset also applies that preset's defaults (or, leaving every preset,
        the defaults a new User gets) in the same compare-and-set write, one
        version on (R21, `labelsync.directory.regrouped`). The host's call;
        with `actor_id`, that actor must be an admin of the tenant.
        """
        if not isinstance(user, User):
            raise InvalidInput("user", user, "is not a User")
        self._directory_actor(tenant_id, actor_id)
        presets, onboard_with, stamp = self._regrouping(tenant_id)
        while True:
            current = self.store.get_user(tenant_id, user.id)
            new = directory.regrouped(
                current,
                directory.updated(current, user),
                presets=presets,
                onboard_with=onboard_with,
                stamp=stamp,
            )
            if new is current or not self.store.save_users(tenant_id, [(new, current.version)]):
                if new is not current:
                    _log.info("User %s of tenant %s updated from the directory", user.id, tenant_id)
                return new
            # A push or the User's own edit landed in between: apply the host's
            # fields again on top of what they wrote, which stays theirs.

    def _regrouping(self, tenant_id: str) -> tuple[PresetBook | None, Defaults | None, LabelOrigin]:
        """The tenant's presets when it onboards (else None), what a new User without a
        preset gets, and the origin onboarding stamps (R15): what a directory change
        applies to a User it adds or moves between presets (B4, R21)."""
        settings = self.store.settings(tenant_id)
        if not settings.onboard_new_users:
            return None, None, PREVIEW_STAMP
        onboard_with = directory.onboarding(True, settings.last_push, settings.defaults)
        last_push = settings.last_push
        stamp = onboarding_stamp(
            None if last_push is None else last_push.job_id, _push.now(self.clock)
        )
        return self.store.get_presets(tenant_id), onboard_with, stamp

    def remove_user(self, tenant_id: str, user_id: str, *, actor_id: str | None = None) -> None:
        """Remove a User (R13); `UnknownUser` if there is none.

        A push running now skips them with `SkipReason.USER_REMOVED` (R14). The
        id may be added again later, as a new User outside that push's roster.
        The host's call; with `actor_id`, that actor must be an admin of the tenant.
        """
        v.check_id("user_id", user_id)
        self._directory_actor(tenant_id, actor_id)
        if not self.store.remove_users(tenant_id, [user_id]):
            raise UnknownUser(user_id, tenant_id)
        _log.info("User %s of tenant %s removed from the directory", user_id, tenant_id)

    def sync_directory(
        self,
        tenant_id: str,
        users: Iterable[User],
        remove_missing: bool = False,
        *,
        actor_id: str | None = None,
        batch_size: int = 1000,
        progress: Callable[[DirectoryReport], object] | None = None,
    ) -> DirectoryReport:
        """Bring the stored tenant in step with the host's whole roster `users` (R13).

        Runs `labelsync.directory.reconcile` batch by batch over the stored
        Users: new ids are added (onboarded exactly as `add_user` does, B4),
        stored ones take the host-owned fields (`update_user`), equal ones are
        unchanged; with `remove_missing`, stored Users absent from `users` are
        removed (R14). The roster is checked whole first (every item a User, no
        id twice), so bad input writes nothing. Each batch commits on its own
        and the reconcile goes by id, so calling again with the same roster
        after an interruption converges to the state an uninterrupted call
        leaves. `progress(report)` gets the report so far after each batch.
        """
        _push.check_batch_size(batch_size)
        directory.check_flag("remove_missing", remove_missing)
        roster = directory.check_roster(users)
        self._directory_actor(tenant_id, actor_id)
        # Lists, not a report per batch: adding reports would copy every id so far each time.
        outcomes: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])

        def report() -> DirectoryReport:
            added, updated, removed, unchanged = outcomes
            return DirectoryReport(
                added=added, updated=updated, removed=removed, unchanged=unchanged
            )

        for start in range(0, len(roster), batch_size):
            done = self._sync_batch(tenant_id, roster[start : start + batch_size])
            for ids, more in zip(
                outcomes, (done.added, done.updated, (), done.unchanged), strict=True
            ):
                ids.extend(more)
            if progress is not None:
                progress(report())
        if remove_missing:
            listed = {user.id for user in roster}
            missing = [i for i in self.store.user_ids(tenant_id) if i not in listed]
            for start in range(0, len(missing), batch_size):
                outcomes[2].extend(
                    self.store.remove_users(tenant_id, missing[start : start + batch_size])
                )
                if progress is not None:
                    progress(report())
        final = report()
        _log.info("directory sync of tenant %s: %s", tenant_id, final)
        return final

    def _sync_batch(self, tenant_id: str, users: list[User]) -> DirectoryReport:
        """Reconcile one batch of the host's roster; Users written meanwhile are read again."""
        presets, onboard_with, stamp = self._regrouping(tenant_id)
        stored = {u.id: u for u in self.store.get_users(tenant_id, [u.id for u in users])}
        batch = directory.plan_batch(
            stored, users, onboard_with=onboard_with, onboard_stamp=stamp, presets=presets
        )
        if batch.adds:
            self.store.add_users(tenant_id, batch.adds)
        report = DirectoryReport(added=batch.added, unchanged=batch.unchanged)
        writes = batch.writes
        while writes:
            conflicts = set(self.store.save_users(tenant_id, writes))
            report += DirectoryReport(updated=[u.id for u, _ in writes if u.id not in conflicts])
            if not conflicts:
                break
            # A push or a User's edit wrote these in between: reconcile them again.
            again = [u for u in users if u.id in conflicts]
            current = {u.id: u for u in self.store.get_users(tenant_id, [u.id for u in again])}
            retry = directory.plan_batch(
                current, again, onboard_with=onboard_with, onboard_stamp=stamp, presets=presets
            )
            if retry.adds:  # removed meanwhile: the host lists them, so they come back
                self.store.add_users(tenant_id, retry.adds)
            report += DirectoryReport(added=retry.added, unchanged=retry.unchanged)
            writes = retry.writes
        return report

    def set_selection(
        self, tenant_id: str, user_id: str, synced: LabelSet, *, actor_id: str | None = None
    ) -> User:
        """A User edits their own Email tab: `synced` becomes their selection (R12 keeps it).

        Newly selected ids must be labels of their mailbox; ids already selected
        stay allowed even if stale. Returns the User as stored.

        Who may: the User themself (`actor_id` left out, or equal to `user_id`),
        or an admin of the tenant for anyone; anyone else gets `PermissionDenied`.
        """
        if not isinstance(synced, LabelSet):
            raise InvalidInput("synced", synced, "is not a LabelSet")
        if actor_id is not None and actor_id != user_id:
            self._admin(tenant_id, actor_id, doing=f"change the selection of User {user_id!r}")
        locked = self.store.settings(tenant_id).locked
        user = self.store.get_user(tenant_id, user_id)
        if actor_id is None or actor_id == user_id:
            # Locks bind the User's own edits (R17, R21); an admin may still change them.
            self._check_preset_locks(tenant_id, user, synced)
        known = {label.id for label in user.mailbox.labels} if user.mailbox else set()
        unknown = sorted(synced.ids - user.synced.ids - known)
        if unknown:
            raise InvalidInput(
                "synced", unknown[0], f"is not a label of the mailbox of User {user_id!r}"
            )
        mine = LabelOrigin(origin=Origin.USER, at=_push.now(self.clock))
        while synced != user.synced:
            # A locked label may not change by the User (R17); the others stay free.
            if actor_id is None or actor_id == user_id:
                check_locks(user, synced, locked)
            provenance = user.provenance
            for label in changed_labels(user, synced):
                provenance = provenance.setting(label, mine)  # R15: the User set it
            wanted = user._with_state(synced, provenance, bump=True)
            if not self.store.save_users(tenant_id, [(wanted, user.version)]):
                return wanted
            # A push wrote this User in between; the User's own edit still wins.
            user = self.store.get_user(tenant_id, user_id)
        return user

    def _check_preset_locks(self, tenant_id: str, user: User, synced: LabelSet) -> None:
        """Refuse a User's own change of a label their group's preset locks (R21, R17)."""
        if not user.groups or user.mailbox is None:
            return
        preset = self.store.get_presets(tenant_id).for_user(user)
        if preset is None:
            return
        for label in sorted(preset.locks, key=lambda label: label.value):
            label_id = user.mailbox.label_id(label)
            if label_id is not None and (label_id in synced) is not (label_id in user.synced):
                raise LabelLocked(user.id, label.name, by=f"preset {preset.name!r}")

    def _admin(self, tenant_id: str, actor_id: str, *, doing: str | None = None) -> User:
        self.store.settings(tenant_id)  # UnknownTenant before anything else
        try:
            actor = self.store.get_user(tenant_id, actor_id)
        except UnknownUser:
            raise PermissionDenied(
                f"actor_id: {actor_id!r} is not a User of tenant {tenant_id!r}"
            ) from None
        if not actor.can(Permission.ADMIN_ACCESS):
            to = f" to {doing}" if doing else ""
            raise PermissionDenied(
                f"actor_id: {actor_id!r} lacks {Permission.ADMIN_ACCESS.name} "
                f"in tenant {tenant_id!r}{to}"
            )
        return actor

    def save_defaults(self, tenant_id: str, *, actor_id: str, defaults: Defaults) -> None:
        """Save the checkbox settings without pushing them (R11); admins only (R1)."""
        if not isinstance(defaults, Defaults):
            raise InvalidInput("defaults", defaults, "is not a Defaults")
        self._admin(tenant_id, actor_id)
        # One field, written on its own: a concurrent set_onboarding or push start
        # is never undone by writing back a value read before it (R11).
        self.store.save_defaults(tenant_id, defaults)
        _log.info(
            "defaults saved for tenant %s by %s: %s", tenant_id, actor_id, defaults.describe()
        )

    def set_onboarding(self, tenant_id: str, *, actor_id: str, enabled: bool) -> None:
        """Turn on (or off) giving every new User the last push's defaults (B4); admins only."""
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled", enabled, "must be True or False")
        self._admin(tenant_id, actor_id)
        self.store.save_onboarding(tenant_id, enabled)
        _log.info(
            "onboarding of new Users turned %s for tenant %s by %s",
            "on" if enabled else "off",
            tenant_id,
            actor_id,
        )

    def onboard(
        self,
        tenant_id: str,
        user_id: str,
        *,
        actor_id: str | None = None,
        force: bool = False,
    ) -> Changes:
        """Give one User the defaults of the last finished push (B4) and return what changed.

        Who may: the host itself (``actor_id=None``), the User themself, or an
        admin of the tenant; anyone else gets `PermissionDenied`. Only a User no
        push or onboarding has covered yet is onboarded (`InvalidInput`
        otherwise): onboarding again would undo their own changes. With
        ``force=True`` an admin (`actor_id`) onboards a covered User anyway.
        """
        if not isinstance(force, bool):
            raise InvalidInput("force", force, "must be True or False")
        if force:
            if actor_id is None:
                raise PermissionDenied(
                    "actor_id: None; onboard(force=True) needs an admin's actor_id"
                )
            self._admin(tenant_id, actor_id, doing=f"onboard User {user_id!r} again (force)")
        elif actor_id is not None and actor_id != user_id:
            self._admin(tenant_id, actor_id, doing=f"onboard User {user_id!r}")
        last_push = self.store.settings(tenant_id).last_push
        if last_push is None:
            raise InvalidInput(
                "tenant.last_push", None, f"means tenant {tenant_id!r} has no finished push yet"
            )
        stamp = onboarding_stamp(last_push.job_id, _push.now(self.clock))
        while True:
            user = self.store.get_user(tenant_id, user_id)
            check_uncovered(user, force=force)
            after, changes, skips = apply_rows((user,), last_push.defaults, stamp=stamp)
            if after[0] is user or not self.store.save_users(tenant_id, [(after[0], user.version)]):
                onboarded = Changes(change_rows=tuple(changes), skip_rows=tuple(skips), users=1)
                _log.info(
                    "User %s of tenant %s onboarded with the defaults of push %s: %r",
                    user_id,
                    tenant_id,
                    last_push.job_id,
                    onboarded,
                )
                return onboarded

    def coverage(self, tenant_id: str) -> Coverage:
        """Per User, whether the defaults reach them, and why not (R22); a User whose group
        has a preset is measured against the preset's defaults (R21)."""
        return coverage(self.store.get_tenant(tenant_id), self.store.get_presets(tenant_id))

    # -- presets (R21) --------------------------------------------------------------------

    def presets(self, tenant_id: str) -> PresetBook:
        """The tenant's presets and their group assignments, in precedence order."""
        return self.store.get_presets(tenant_id)

    def preset_history(self, tenant_id: str) -> list[PresetEvent]:
        """Every change of the tenant's presets: who, when, what; oldest first."""
        return self.store.preset_events(tenant_id)

    def _edit_presets(
        self,
        tenant_id: str,
        actor_id: str,
        action: PresetAction,
        name: str,
        edit: Callable[[PresetBook], PresetBook],
        detail: str = "",
    ) -> PresetBook:
        """Apply `edit` to the stored book and store it with its audit event; admins only.

        Compare-and-set on the book's version: an edit that lost a race to
        another admin's is decided again on the book as it is now.
        """
        self._admin(tenant_id, actor_id)
        while True:
            book = edit(self.store.get_presets(tenant_id))
            event = PresetEvent(
                action=action,
                actor_id=actor_id,
                at=_push.now(self.clock),
                preset=name,
                detail=detail,
                version=book.version,
            )
            if self.store.save_presets(tenant_id, book, event):
                _log.info("presets of tenant %s: %s", tenant_id, event)
                return book

    def create_preset(self, tenant_id: str, *, actor_id: str, preset: Preset) -> PresetBook:
        """Add a named preset (defaults, locks, mode); admins only; `AlreadyExists` if taken."""
        if not isinstance(preset, Preset):
            raise InvalidInput("preset", preset, "is not a Preset")
        return self._edit_presets(
            tenant_id,
            actor_id,
            PresetAction.CREATED,
            preset.name,
            lambda book: book.creating(preset),
            preset.describe(),
        )

    def update_preset(self, tenant_id: str, *, actor_id: str, preset: Preset) -> PresetBook:
        """Replace the preset of the same name (new defaults, locks or mode); admins only."""
        if not isinstance(preset, Preset):
            raise InvalidInput("preset", preset, "is not a Preset")
        return self._edit_presets(
            tenant_id,
            actor_id,
            PresetAction.UPDATED,
            preset.name,
            lambda book: book.replacing(preset),
            preset.describe(),
        )

    def rename_preset(
        self, tenant_id: str, *, actor_id: str, name: str, new_name: str
    ) -> PresetBook:
        """Rename a preset; its group assignments follow it. Admins only."""
        return self._edit_presets(
            tenant_id,
            actor_id,
            PresetAction.RENAMED,
            name,
            lambda book: book.renaming(name, new_name),
            f"to {new_name!r}",
        )

    def delete_preset(self, tenant_id: str, *, actor_id: str, name: str) -> PresetBook:
        """Delete a preset and its group assignments. Admins only."""
        return self._edit_presets(
            tenant_id, actor_id, PresetAction.DELETED, name, lambda book: book.deleting(name)
        )

    def assign_preset(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        group: str,
        name: str | None,
        position: int | None = None,
    ) -> PresetBook:
        """Give `group` preset `name` at `position` of the precedence order (None: last).

        `name` None takes the group's preset away. One preset per group: an
        assigned group is moved. Admins only.
        """
        if name is None:
            book = self.store.get_presets(tenant_id)
            current = next((a.preset for a in book.assignments if a.group == group), group)
            return self._edit_presets(
                tenant_id,
                actor_id,
                PresetAction.UNASSIGNED,
                current,
                lambda book: book.unassigning(group),
                f"from group {group!r}",
            )
        where = "last" if position is None else f"at precedence {position}"
        return self._edit_presets(
            tenant_id,
            actor_id,
            PresetAction.ASSIGNED,
            name,
            lambda book: book.assigning(group, name, position=position),
            f"to group {group!r}, {where}",
        )

    def start_preset(self, tenant_id: str, *, actor_id: str, name: str) -> PushJob:
        """Start the push of preset `name` to its groups (R21); admins only.

        A push of the preset's defaults in the preset's mode (R16) whose
        audience is the members of the groups assigned the preset
        (`PresetBook.audience`). The preset's locked labels are applied in
        every mode, as the tenant's are (R17). The job's record names that
        audience, and the preset's trail records the push.
        """
        self._admin(tenant_id, actor_id)
        book = self.store.get_presets(tenant_id)
        preset = book.preset(name)
        audience = book.audience(name)
        job = self._start_push(
            tenant_id,
            actor_id=actor_id,
            defaults=preset.defaults,
            mode=preset.mode,
            audience=audience,
            also_locked=preset.locks,
        )
        self._edit_presets(
            tenant_id,
            actor_id,
            PresetAction.APPLIED,
            name,
            lambda book: book.recorded(name),
            f"push {job.id} to {audience.describe()}",
        )
        return job

    def apply_preset(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        name: str,
        batch_size: int = 500,
        progress: Progress | None = None,
    ) -> PushReport:
        """ "Apply this preset to its groups now", in one call: `start_preset` then `run_push`."""
        _push.check_batch_size(batch_size)
        job = self.start_preset(tenant_id, actor_id=actor_id, name=name)
        return self.run_push(job.id, batch_size=batch_size, progress=progress)

    def email_tab(self, tenant_id: str, user_id: str) -> EmailTab:
        """What the User sees on their Email tab (R8); `PermissionDenied` without EMAIL_SYNC."""
        locked = self.store.settings(tenant_id).locked
        return email_tab(self.store.get_user(tenant_id, user_id), locked=locked)

    # -- pushes -------------------------------------------------------------------

    def preview(
        self,
        tenant_id: str,
        defaults: Defaults,
        *,
        mode: PushMode = PushMode.OVERRIDE,
        audience: Audience | None = None,
    ) -> Changes:
        """What pushing `defaults` in `mode` (to `audience`, R20) now would change, writing
        nothing (B1). Listed User ids must be Users of the tenant, as for `start_push`."""
        _check_mode(mode)
        audience = _audience(audience)
        tenant = self.store.get_tenant(tenant_id)
        audience.check_users_known(tenant_id, tenant)
        return apply_defaults(tenant, defaults, mode=mode, audience=audience)[1]

    def start_push(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        defaults: Defaults,
        mode: PushMode = PushMode.OVERRIDE,
        audience: Audience | None = None,
    ) -> PushJob:
        """ "Apply to all users": fix the roster now (R6) and persist a job; admins only (R1).

        `mode` (R16) says how the push treats the Users' own choices; the
        tenant's locked labels are applied in every mode (R17). With an
        `audience` (R20) the roster is its members now: `total` counts them and
        the job (and its audit record) names the audience. Listed User ids must
        be Users of the tenant. An unfinished earlier push of the tenant is
        superseded (R10).
        """
        if not isinstance(defaults, Defaults):
            raise InvalidInput("defaults", defaults, "is not a Defaults")
        _check_mode(mode)
        audience = _audience(audience)
        return self._start_push(
            tenant_id, actor_id=actor_id, defaults=defaults, mode=mode, audience=audience
        )

    def _start_push(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        defaults: Defaults,
        mode: PushMode,
        audience: Audience,
        also_locked: frozenset[SystemLabel] = frozenset(),
    ) -> PushJob:
        """`start_push` with its arguments checked; `also_locked` joins the tenant's locks."""
        self._admin(tenant_id, actor_id)
        if audience.user_ids:
            found = self.store.get_users(tenant_id, sorted(audience.user_ids))
            audience.check_users_known(tenant_id, {user.id for user in found})
        job = PushJob(
            id=self._new_id(),
            tenant_id=tenant_id,
            actor_id=actor_id,
            defaults=defaults,
            status=JobStatus.PENDING,
            started_at=_push.now(self.clock),
            mode=mode,
            locked=self.store.settings(tenant_id).locked | also_locked,
            audience=audience,
        )
        return _push.start_job(self.store, job)

    def run_push(
        self,
        job_id: str,
        *,
        batch_size: int = 500,
        progress: Progress | None = None,
        worker_id: str | None = None,
        lease_seconds: float = 60,
    ) -> PushReport:
        """Run the job, or resume it after its last checkpoint, until DONE; report what it did.

        `progress(job)` is called after each committed batch. A superseded job
        raises `JobSuperseded`; a DONE job is reported again, changing nothing.
        With a `worker_id`, this process is one of several workers sharing the
        job (B6): it claims leased ranges of the roster, so the store must
        implement `labelsync.parallel.ParallelStore`.
        """
        _push.check_batch_size(batch_size)
        lease = v.check_lease(lease_seconds)
        if worker_id is not None:
            v.check_id("worker_id", worker_id)
        runner = _Runner(self.store, self.clock, job_id, worker_id or _runner_id(), lease)
        runner.renew()
        try:
            if worker_id is None:
                job = _push.run_job(
                    self.store,
                    self.clock,
                    job_id,
                    batch_size=batch_size,
                    progress=runner.after(progress),
                )
            else:
                job = run_worker(
                    self.store,
                    self.clock,
                    job_id,
                    worker_id=worker_id,
                    batch_size=batch_size,
                    lease_seconds=lease_seconds,
                    progress=runner.after(progress),
                )
        finally:
            runner.release()
        return PushReport(job)

    def push(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        defaults: Defaults,
        batch_size: int = 500,
        progress: Progress | None = None,
        mode: PushMode = PushMode.OVERRIDE,
        audience: Audience | None = None,
    ) -> PushReport:
        """`start_push` then `run_push`."""
        _push.check_batch_size(batch_size)
        job = self.start_push(
            tenant_id, actor_id=actor_id, defaults=defaults, mode=mode, audience=audience
        )
        return self.run_push(job.id, batch_size=batch_size, progress=progress)

    def job(self, job_id: str) -> PushJob:
        """A push job: status, processed/total, counts."""
        return self.store.get_job(job_id)

    def activity(self, job: PushJob) -> Activity:
        """Whether anything runs `job` now (a live runner lease), by this service's clock.

        RUNNING, INTERRUPTED (unfinished, its runner gone: resume it), WAITING
        (never run) or FINISHED; see `labelsync.jobs.activity`.
        """
        if not isinstance(job, PushJob):
            raise InvalidInput("job", job, "is not a PushJob")
        return activity(job, _push.now(self.clock), runner_alive=runner_alive(job.runner_id))

    def jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        """Push jobs (of one tenant, or all), newest first."""
        if tenant_id is not None:
            self.store.settings(tenant_id)
        return self.store.list_jobs(tenant_id)

    def changes(self, job_id: str) -> Changes:
        """Everything a push job changed and skipped so far, as `Changes` (R7, R9)."""
        job = self.store.get_job(job_id)
        return Changes.of(
            (stored.change for stored in self.store.job_changes(job_id)),
            self.store.job_skips(job_id),
            users=job.processed,
        )

    def history(self, tenant_id: str) -> list[HistoryEntry]:
        """Every push of the tenant, newest first, each with its report and revert (R19)."""
        self.store.settings(tenant_id)
        reverts = {r.push_job_id: r for r in self.store.list_reverts(tenant_id)}
        return [
            HistoryEntry(job=j, revert=reverts.get(j.id)) for j in self.store.list_jobs(tenant_id)
        ]

    def revert_push(self, job_id: str, *, actor_id: str, batch_size: int = 500) -> RevertReport:
        """Undo a finished push for the labels whose origin is still that push (R19); admins.

        Any DONE push may be reverted, once: the revert is an audited job of its
        own (`history`), a second revert raises `AlreadyReverted`. A label someone
        changed since (the User, a later push, a reset) is left as it is, and its
        User listed in `changed_since`. Reverting the tenant's latest push gives
        the tenant the defaults, last push and so onboarding of the push before it.
        """
        _push.check_batch_size(batch_size)
        job = self.store.get_job(job_id)
        self._admin(job.tenant_id, actor_id)
        if job.status is not JobStatus.DONE:
            raise InvalidInput(
                "job_id",
                job_id,
                f"is {job.status.name}; only a finished (DONE) push can be reverted",
            )
        revert = self.store.start_revert(
            RevertJob(
                id=self._new_id(),
                tenant_id=job.tenant_id,
                push_job_id=job_id,
                actor_id=actor_id,
                started_at=_push.now(self.clock),
            )
        )
        _log.info(
            "revert of push %s (tenant %s) started by %s",
            job_id,
            job.tenant_id,
            actor_id,
        )
        reverted: list[str] = []
        changed_since: list[str] = []
        labels = 0
        per_user = groupby(self.store.job_changes(job_id), key=lambda s: s.change.user_id)
        # Each group must be read before groupby moves on, hence the inner list().
        while chunk := [(user_id, list(group)) for user_id, group in islice(per_user, batch_size)]:
            done, stale, flipped = self._revert_chunk(job, revert, chunk)
            reverted += done
            changed_since += stale
            labels += flipped
        defaults, last_push, restored = self._before(job)
        finished = self.store.finish_revert(
            attrs.evolve(
                revert,
                status=JobStatus.DONE,
                finished_at=_push.now(self.clock),
                users_restored=len(reverted),
                labels_restored=labels,
                users_left_alone=len(changed_since),
                restored_defaults=restored,
            ),
            defaults=defaults,
            last_push=last_push,
        )
        _log.info(
            "revert of push %s (tenant %s) by %s: %d Users restored, %d left alone",
            job_id,
            job.tenant_id,
            actor_id,
            len(reverted),
            len(changed_since),
        )
        return RevertReport(
            job_id=job_id,
            reverted=tuple(reverted),
            changed_since=tuple(changed_since),
            revert=finished,
        )

    def _before(self, job: PushJob) -> tuple[Defaults | None, PushRecord | None, bool]:
        """The defaults and last push the tenant goes back to if `job` is its latest push."""
        last = self.store.settings(job.tenant_id).last_push
        if last is None or last.job_id != job.id:
            return None, None, False
        reverted = {r.push_job_id for r in self.store.list_reverts(job.tenant_id)}
        reverted.add(job.id)
        for earlier in self.store.list_jobs(job.tenant_id):
            done = earlier.status is JobStatus.DONE and earlier.id not in reverted
            if done and earlier.started_at <= job.started_at:
                return earlier.defaults, earlier.record(), True
        return None, None, True

    def _revert_chunk(
        self, job: PushJob, revert: RevertJob, chunk: list[tuple[str, list[StoredChange]]]
    ) -> tuple[list[str], list[str], int]:
        """Restore, for this chunk's Users, each label whose origin is still `job`.

        Returns the Users with a label restored, the Users with a label left alone
        (changed since, by anyone), and how many labels were restored.
        """
        tenant_id = job.tenant_id
        pending = dict(chunk)
        restored: list[str] = []
        left: set[str] = set()
        flipped = 0
        stamp = revert.stamp
        while pending:
            writes: list[tuple[User, int]] = []
            counts: dict[str, int] = {}
            found = self.store.get_users(tenant_id, list(pending))
            left.update(set(pending) - {user.id for user in found})  # removed since
            for user in found:
                ids = set(user.synced.ids)
                provenance = user.provenance
                undone = 0
                for s in pending[user.id]:
                    label = s.change.label
                    origin = provenance.of(label)
                    mailbox_id = None if user.mailbox is None else user.mailbox.label_id(label)
                    if (
                        origin.origin is not Origin.PUSH
                        or origin.job_id != job.id
                        or mailbox_id != s.change.label_id
                    ):
                        left.add(user.id)  # someone changed this label since the push
                        continue
                    # Undo the flip: what the push selected is deselected, and back.
                    (ids.discard if s.change.selected else ids.add)(s.change.label_id)
                    provenance = provenance.setting(label, stamp)
                    undone += 1
                if undone:
                    new = user._with_state(LabelSet(ids), provenance, bump=True)
                    writes.append((new, user.version))
                    counts[user.id] = undone
            conflicts = set(self.store.save_users(tenant_id, writes))
            for user, _ in writes:
                if user.id not in conflicts:
                    restored.append(user.id)
                    flipped += counts[user.id]
            # A User written between our read and our write: read again and decide again.
            for user_id in conflicts:
                left.discard(user_id)
            pending = {u: pending[u] for u in conflicts}
        order = [user_id for user_id, _ in chunk]
        return restored, [u for u in order if u in left], flipped

    # -- policy: locks, reset, drift (R17, R18) --------------------------------------------

    def set_locks(
        self, tenant_id: str, *, actor_id: str, locked: frozenset[SystemLabel]
    ) -> Locks | None:
        """Lock INBOX and/or SENT for the tenant's Users (R17); admins only, audited.

        An empty set unlocks all. Locking changes no selection by itself; a push
        (any mode) applies locked labels, and a User's own change of one raises
        `LabelLocked`. Returns the stored locks (who, when), None when unlocked.
        """
        given: object = locked  # callers may pass anything; refuse it by name
        if not isinstance(given, frozenset | set):
            raise InvalidInput("locked", locked, "must be a set of SystemLabels (INBOX, SENT)")
        for label in given:
            if not isinstance(label, SystemLabel):
                raise InvalidInput("locked", label, "is not a SystemLabel (INBOX or SENT)")
        self._admin(tenant_id, actor_id)
        locks = Locks(labels=frozenset(given), actor_id=actor_id, at=_push.now(self.clock))
        self.store.save_locks(tenant_id, locks)
        _log.info(
            "locks of tenant %s set by %s: %s",
            tenant_id,
            actor_id,
            ", ".join(sorted(label.name for label in locked)) or "none",
        )
        return locks

    def reset_to_defaults(
        self, tenant_id: str, user_id: str, *, actor_id: str | None = None
    ) -> User:
        """A User resets their INBOX/SENT to the tenant's defaults (R18); origin RESET.

        Made by the User themself (`actor_id` defaults to `user_id`; another actor
        must be an admin). Both labels of their mailbox get origin RESET, so a
        later KEEP_USER_CHOICES push no longer keeps them. Returns the User as stored.
        """
        if actor_id is not None and actor_id != user_id:
            self._admin(tenant_id, actor_id)
        defaults = self.store.settings(tenant_id).defaults
        if defaults is None:
            raise InvalidInput(
                "tenant.defaults", None, f"means tenant {tenant_id!r} has no defaults to reset to"
            )
        stamp = LabelOrigin(origin=Origin.RESET, at=_push.now(self.clock))
        while True:
            user = self.store.get_user(tenant_id, user_id)
            if user.mailbox is None:
                raise InvalidInput(
                    "user_id", user_id, "has no connected mailbox: there is nothing to reset"
                )
            ids = set(user.synced.ids)
            provenance = user.provenance
            for label, on in defaults.items():
                label_id = user.mailbox.label_id(label)
                if label_id is None:
                    continue
                (ids.add if on else ids.discard)(label_id)
                provenance = provenance.setting(label, stamp)
            wanted = user._with_state(LabelSet(ids), provenance, bump=True)
            if not self.store.save_users(tenant_id, [(wanted, user.version)]):
                _log.info("User %s of tenant %s reset to the defaults", user_id, tenant_id)
                return wanted

    def drift(self, tenant_id: str) -> Drift:
        """Who differs from the tenant's current defaults, and why (R18)."""
        return drift(self.store.get_tenant(tenant_id))

    def start_push_drifted(
        self, tenant_id: str, *, actor_id: str, mode: PushMode = PushMode.OVERRIDE
    ) -> PushJob:
        """Start a push of the tenant's defaults to exactly the Users `drift` shows now
        (R18 with R20); admins only.

        The audience is ``Audience.users(drift(tenant).user_ids)``, resolved when the
        push starts, so a User who drifts later is not part of it. The defaults are
        the tenant's current ones, the ones drift is measured against. A tenant
        without defaults, or without drifted Users, is refused (`InvalidInput`) and
        nothing is started.
        """
        _check_mode(mode)
        self._admin(tenant_id, actor_id)
        defaults, audience = drifted_push(self.store.get_tenant(tenant_id))
        return self.start_push(
            tenant_id, actor_id=actor_id, defaults=defaults, mode=mode, audience=audience
        )

    def push_drifted(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        mode: PushMode = PushMode.OVERRIDE,
        batch_size: int = 500,
        progress: Progress | None = None,
    ) -> PushReport:
        """Push to exactly the drifted Users, in one call: `start_push_drifted` then `run_push`."""
        _push.check_batch_size(batch_size)
        job = self.start_push_drifted(tenant_id, actor_id=actor_id, mode=mode)
        return self.run_push(job.id, batch_size=batch_size, progress=progress)


def _check_mode(mode: object) -> None:
    if not isinstance(mode, PushMode):
        raise InvalidInput("mode", mode, f"is not one of {', '.join(m.name for m in PushMode)}")
