"""`LabelSync`: the use cases of default synced labels, over a `Store` and a `Clock`.

The application service is the imperative shell: it checks who may do what,
reads from the store, asks the pure rules what to do, and writes the result
back with compare-and-set. Wire one at start-up and share it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from itertools import groupby, islice

from attrs import frozen

from labelsync import push as _push
from labelsync.audience import Audience
from labelsync.changes import Changes
from labelsync.coverage import Coverage, coverage
from labelsync.exceptions import InvalidInput, PermissionDenied, UnknownUser
from labelsync.jobs import JobStatus, PushJob, StoredChange
from labelsync.model import Defaults, EmailTab, LabelSet, Permission, Tenant, User
from labelsync.parallel import run_worker
from labelsync.policy import PushMode
from labelsync.ports import Clock, Store, TenantSettings
from labelsync.presets import Preset, PresetAction, PresetBook, PresetEvent
from labelsync.push import Progress, PushReport
from labelsync.rules import apply_defaults, apply_rows, email_tab

__all__ = ["LabelSync", "RevertReport"]

_log = logging.getLogger(__name__)


def _new_id() -> str:
    return uuid.uuid4().hex


def _audience(audience: object) -> Audience:
    if audience is None:
        return Audience.everyone()
    if not isinstance(audience, Audience):
        raise InvalidInput("audience", audience, "is not an Audience")
    return audience


@frozen
class RevertReport:
    """What `revert_push` did (B5): Users restored, and Users left alone as they changed since."""

    job_id: str
    reverted: tuple[str, ...]
    changed_since: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"revert of push {self.job_id}: {len(self.reverted)} Users restored, "
            f"{len(self.changed_since)} left alone (changed since the push)"
        )


class LabelSync:
    """Default synced labels for every User of a tenant, run over `store` with time from `clock`.

    `new_id` makes push job ids (random UUIDs unless given, e.g. for tests).
    """

    def __init__(self, *, store: Store, clock: Clock, new_id: Callable[[], str] = _new_id) -> None:
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

    def add_user(self, tenant_id: str, user: User) -> User:
        """Add a User; with onboarding on they get defaults (B4, R6), else none.

        Onboarding gives the preset of the User's first group that has one
        (R21), else the last push's defaults.
        """
        if not isinstance(user, User):
            raise InvalidInput("user", user, "is not a User")
        settings = self.store.settings(tenant_id)
        if settings.onboard_new_users:
            onboarding = self._onboarding_defaults(tenant_id, user, settings)
            if onboarding is not None:
                user = apply_rows((user,), onboarding)[0][0]
        self.store.add_user(tenant_id, user)
        return user

    def _onboarding_defaults(
        self, tenant_id: str, user: User, settings: TenantSettings
    ) -> Defaults | None:
        """What onboarding gives `user` (R21, B4): the preset of its first group that has one,
        else the last push's defaults, or the tenant's checkboxes if that push went to some
        Users only; None when there is nothing to give."""
        preset = self.store.get_presets(tenant_id).for_user(user) if user.groups else None
        if preset is not None:
            return preset.defaults
        last_push = settings.last_push
        if last_push is None:
            return None
        return settings.defaults if last_push.audience.narrowed else last_push.defaults

    def set_selection(self, tenant_id: str, user_id: str, synced: LabelSet) -> User:
        """A User edits their own Email tab: `synced` becomes their selection (R12 keeps it).

        Newly selected ids must be labels of their mailbox; ids already selected
        stay allowed even if stale. Returns the User as stored.
        """
        if not isinstance(synced, LabelSet):
            raise InvalidInput("synced", synced, "is not a LabelSet")
        user = self.store.get_user(tenant_id, user_id)
        self._check_preset_locks(tenant_id, user, synced)
        known = {label.id for label in user.mailbox.labels} if user.mailbox else set()
        unknown = sorted(synced.ids - user.synced.ids - known)
        if unknown:
            raise InvalidInput(
                "synced", unknown[0], f"is not a label of the mailbox of User {user_id!r}"
            )
        while synced != user.synced:
            wanted = user.with_selection(synced)
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
                raise PermissionDenied(
                    f"synced: {label.title} is locked by preset {preset.name!r} of User "
                    f"{user.id!r}'s group; only an admin's push changes it"
                )

    def _admin(self, tenant_id: str, actor_id: str) -> User:
        self.store.settings(tenant_id)  # UnknownTenant before anything else
        try:
            actor = self.store.get_user(tenant_id, actor_id)
        except UnknownUser:
            raise PermissionDenied(
                f"actor_id: {actor_id!r} is not a User of tenant {tenant_id!r}"
            ) from None
        if not actor.can(Permission.ADMIN_ACCESS):
            raise PermissionDenied(
                f"actor_id: {actor_id!r} lacks {Permission.ADMIN_ACCESS.name} "
                f"in tenant {tenant_id!r}"
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

    def onboard(self, tenant_id: str, user_id: str) -> Changes:
        """Give one User the defaults of the last finished push (B4) and return what changed."""
        last_push = self.store.settings(tenant_id).last_push
        if last_push is None:
            raise InvalidInput(
                "tenant.last_push", None, f"means tenant {tenant_id!r} has no finished push yet"
            )
        while True:
            user = self.store.get_user(tenant_id, user_id)
            after, changes, skips = apply_rows((user,), last_push.defaults)
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

        A push of the preset's defaults whose audience is the members of the
        groups assigned the preset (`PresetBook.audience`); the job's record
        names that audience, and the preset's trail records the push. A preset
        whose mode is not OVERRIDE is refused (`InvalidInput`): this release's
        push applies OVERRIDE only.
        """
        self._admin(tenant_id, actor_id)
        book = self.store.get_presets(tenant_id)
        preset = book.preset(name)
        audience = book.audience(name)
        if preset.mode is not PushMode.OVERRIDE:
            # The push of this release applies OVERRIDE only; another mode is not faked.
            raise InvalidInput(
                "preset.mode",
                preset.mode.name,
                f"of preset {name!r} needs push modes (R16), which this labelsync's push "
                "does not apply yet; use OVERRIDE",
            )
        job = self.start_push(
            tenant_id, actor_id=actor_id, defaults=preset.defaults, audience=audience
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
        return email_tab(self.store.get_user(tenant_id, user_id))

    # -- pushes -------------------------------------------------------------------

    def preview(
        self, tenant_id: str, defaults: Defaults, *, audience: Audience | None = None
    ) -> Changes:
        """What pushing `defaults` (to `audience`, R20) now would change, writing nothing (B1)."""
        audience = _audience(audience)
        return apply_defaults(self.store.get_tenant(tenant_id), defaults, audience=audience)[1]

    def start_push(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        defaults: Defaults,
        audience: Audience | None = None,
    ) -> PushJob:
        """ "Apply to all users": fix the roster now (R6) and persist a job; admins only (R1).

        With an `audience` (R20) the roster is its members now: `total` counts
        them and the job (and its audit record) names the audience. Listed User
        ids must be Users of the tenant. An unfinished earlier push of the
        tenant is superseded (R10).
        """
        if not isinstance(defaults, Defaults):
            raise InvalidInput("defaults", defaults, "is not a Defaults")
        audience = _audience(audience)
        self._admin(tenant_id, actor_id)
        if audience.user_ids:
            wanted = sorted(audience.user_ids)
            known = {user.id for user in self.store.get_users(tenant_id, wanted)}
            unknown = [user_id for user_id in wanted if user_id not in known]
            if unknown:
                raise InvalidInput(
                    "audience.user_ids", unknown[0], f"is not a User of tenant {tenant_id!r}"
                )
        job = PushJob(
            id=self._new_id(),
            tenant_id=tenant_id,
            actor_id=actor_id,
            defaults=defaults,
            status=JobStatus.PENDING,
            started_at=_push.now(self.clock),
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
        if worker_id is None:
            job = _push.run_job(
                self.store, self.clock, job_id, batch_size=batch_size, progress=progress
            )
        else:
            job = run_worker(
                self.store,
                self.clock,
                job_id,
                worker_id=worker_id,
                batch_size=batch_size,
                lease_seconds=lease_seconds,
                progress=progress,
            )
        return PushReport(job)

    def push(
        self,
        tenant_id: str,
        *,
        actor_id: str,
        defaults: Defaults,
        batch_size: int = 500,
        progress: Progress | None = None,
        audience: Audience | None = None,
    ) -> PushReport:
        """`start_push` then `run_push`."""
        _push.check_batch_size(batch_size)
        job = self.start_push(tenant_id, actor_id=actor_id, defaults=defaults, audience=audience)
        return self.run_push(job.id, batch_size=batch_size, progress=progress)

    def job(self, job_id: str) -> PushJob:
        """A push job: status, processed/total, counts."""
        return self.store.get_job(job_id)

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

    def revert_push(self, job_id: str, *, actor_id: str, batch_size: int = 500) -> RevertReport:
        """Undo a finished push for each User it changed who has not changed since (B5); admins.

        Only the tenant's latest push can be reverted. A User edited or onboarded after
        it is left as they are and listed in `changed_since`.
        """
        _push.check_batch_size(batch_size)
        job = self.store.get_job(job_id)
        self._admin(job.tenant_id, actor_id)
        _log.info("revert of push %s (tenant %s) started by %s", job_id, job.tenant_id, actor_id)
        if job.status is not JobStatus.DONE:
            raise InvalidInput(
                "job_id",
                job_id,
                f"is {job.status.name}; only a finished (DONE) push can be reverted",
            )
        latest = self.store.list_jobs(job.tenant_id)[0]
        if latest.id != job_id:
            # A later push owns INBOX/SENT now; undoing an earlier one under it
            # would restore Users the later push left alone (same defaults).
            raise InvalidInput(
                "job_id",
                job_id,
                f"is not the latest push of tenant {job.tenant_id!r} ({latest.id!r} is); "
                "only the latest push can be reverted",
            )
        reverted: list[str] = []
        changed_since: list[str] = []
        per_user = groupby(self.store.job_changes(job_id), key=lambda s: s.change.user_id)
        # Each group must be read before groupby moves on, hence the inner list().
        while chunk := [(user_id, list(group)) for user_id, group in islice(per_user, batch_size)]:
            reverted_now, stale = self._revert_chunk(job.tenant_id, chunk)
            reverted += reverted_now
            changed_since += stale
        _log.info(
            "revert of push %s (tenant %s) by %s: %d Users restored, %d left alone",
            job_id,
            job.tenant_id,
            actor_id,
            len(reverted),
            len(changed_since),
        )
        return RevertReport(
            job_id=job_id, reverted=tuple(reverted), changed_since=tuple(changed_since)
        )

    def _revert_chunk(
        self, tenant_id: str, chunk: list[tuple[str, list[StoredChange]]]
    ) -> tuple[list[str], list[str]]:
        current = {
            u.id: u for u in self.store.get_users(tenant_id, [user_id for user_id, _ in chunk])
        }
        writes: list[tuple[User, int]] = []
        stale: list[str] = []
        for user_id, stored in chunk:
            user = current.get(user_id)
            if user is None or user.version != stored[-1].version_after:
                stale.append(user_id)
                continue
            ids = set(user.synced.ids)
            for s in stored:
                # Undo the flip: what the push selected is deselected, and back.
                (ids.discard if s.change.selected else ids.add)(s.change.label_id)
            writes.append((user.with_selection(LabelSet(ids)), user.version))
        conflicts = set(self.store.save_users(tenant_id, writes))
        stale += [user.id for user, _ in writes if user.id in conflicts]
        return [user.id for user, _ in writes if user.id not in conflicts], stale
