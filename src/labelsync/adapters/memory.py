"""A `Store` in process memory: for tests, notebooks, and hosts that keep state elsewhere.

Each method takes a lock and checks everything before it changes anything, so
it is atomic like a transaction; nothing survives the process. A push batch is
decided by `labelsync.jobs.decide`, the per-User rule itself, and the job's
transitions by `labelsync.jobs`; this module only keeps the results.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterator, Sequence

import attrs

from labelsync import jobs
from labelsync.adapters._records import (
    check_added_users,
    check_distinct,
    check_limit,
    check_new_users,
    check_user_ids,
)
from labelsync.changes import Skip
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.jobs import PushJob, RevertJob, StoredChange
from labelsync.model import Defaults, Locks, PushRecord, Tenant, User
from labelsync.ports import StaleCheckpoint, TenantSettings
from labelsync.presets import PresetBook, PresetEvent

__all__ = ["InMemoryStore"]


@attrs.define
class _TenantRow:
    name: str
    defaults: Defaults | None
    onboard_new_users: bool
    current_job_id: str | None = None
    last_push: PushRecord | None = None
    locks: Locks | None = None
    users: dict[str, User] = attrs.Factory(dict)
    positions: list[int] = attrs.Factory(list)  # roster positions, increasing
    ids: list[str] = attrs.Factory(list)  # user id at the same index as its position
    # Roster Users of the current unfinished job removed before it reached them (R14):
    # (position, user id), increasing; cleared when a job starts or finishes.
    removed: list[tuple[int, str]] = attrs.Factory(list)
    presets: PresetBook = attrs.Factory(PresetBook)
    preset_events: list[PresetEvent] = attrs.Factory(list)


class InMemoryStore:
    """Tenants, Users and push jobs in dictionaries, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, _TenantRow] = {}
        self._jobs: dict[str, PushJob] = {}
        self._changes: dict[str, list[StoredChange]] = {}
        self._skips: dict[str, list[Skip]] = {}
        self._reverts: dict[str, RevertJob] = {}  # by push job id, in start order
        # A narrowed audience's roster (R20): its members' positions at the start, increasing.
        self._members: dict[str, list[int]] = {}
        self._next_position = 1

    def __repr__(self) -> str:
        return f"<InMemoryStore: {len(self._tenants)} tenants, {len(self._jobs)} jobs>"

    # -- tenants and Users ------------------------------------------------------

    def _row(self, tenant_id: str) -> _TenantRow:
        try:
            return self._tenants[tenant_id]
        except (KeyError, TypeError):
            raise UnknownTenant(tenant_id) from None

    def _append(self, row: _TenantRow, user: User) -> None:
        row.users[user.id] = user
        row.positions.append(self._next_position)
        row.ids.append(user.id)
        self._next_position += 1

    def add_tenant(self, tenant: Tenant) -> None:
        check_new_users(tenant.users)
        with self._lock:
            if tenant.id in self._tenants:
                raise AlreadyExists("tenant.id", tenant.id, "is already a stored tenant")
            row = _TenantRow(
                name=tenant.name,
                defaults=tenant.defaults,
                onboard_new_users=tenant.onboard_new_users,
                last_push=tenant.last_push,
                locks=tenant.locks,
            )
            for user in tenant.users:
                self._append(row, user)
            self._tenants[tenant.id] = row

    def tenant_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._tenants)

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._lock:
            row = self._row(tenant_id)
            return Tenant(
                id=tenant_id,
                name=row.name,
                users=tuple(row.users[i] for i in row.ids),
                defaults=row.defaults,
                last_push=row.last_push,
                onboard_new_users=row.onboard_new_users,
                locks=row.locks,
            )

    def settings(self, tenant_id: str) -> TenantSettings:
        with self._lock:
            row = self._row(tenant_id)
            return TenantSettings(
                id=tenant_id,
                name=row.name,
                defaults=row.defaults,
                onboard_new_users=row.onboard_new_users,
                last_push=row.last_push,
                locks=row.locks,
            )

    def save_defaults(self, tenant_id: str, defaults: Defaults | None) -> None:
        if defaults is not None and not isinstance(defaults, Defaults):
            raise InvalidInput("defaults", defaults, "is not a Defaults")
        with self._lock:
            self._row(tenant_id).defaults = defaults

    def save_onboarding(self, tenant_id: str, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled", enabled, "must be True or False")
        with self._lock:
            self._row(tenant_id).onboard_new_users = enabled

    def add_user(self, tenant_id: str, user: User) -> None:
        check_new_users((user,))
        with self._lock:
            row = self._row(tenant_id)
            if user.id in row.users:
                raise AlreadyExists(
                    "user.id", user.id, f"is already a User of tenant {tenant_id!r}"
                )
            self._append(row, user)

    def get_user(self, tenant_id: str, user_id: str) -> User:
        with self._lock:
            try:
                return self._row(tenant_id).users[user_id]
            except (KeyError, TypeError):
                raise UnknownUser(user_id, tenant_id) from None

    def get_users(self, tenant_id: str, user_ids: Sequence[str]) -> list[User]:
        with self._lock:
            users = self._row(tenant_id).users
            return [users[i] for i in user_ids if i in users]

    def save_users(self, tenant_id: str, writes: Sequence[tuple[User, int]]) -> tuple[str, ...]:
        check_distinct("writes", writes)
        with self._lock:
            users = self._row(tenant_id).users
            conflicts = tuple(
                user.id
                for user, expected in writes
                if user.id not in users or users[user.id].version != expected
            )
            for user, _ in writes:
                if user.id not in conflicts:
                    if users[user.id].provenance.covered:
                        user = user._covered()  # covered never goes back (see the port)
                    users[user.id] = user
            return conflicts

    def add_users(self, tenant_id: str, users: Sequence[User]) -> None:
        users = list(users)
        check_added_users("users", users)
        with self._lock:
            row = self._row(tenant_id)
            for index, user in enumerate(users):
                if user.id in row.users:
                    raise AlreadyExists(
                        f"users[{index}].id", user.id, f"is already a User of tenant {tenant_id!r}"
                    )
            for user in users:
                self._append(row, user)

    def remove_users(self, tenant_id: str, user_ids: Sequence[str]) -> tuple[str, ...]:
        with self._lock:
            row = self._row(tenant_id)
            job = None if row.current_job_id is None else self._jobs[row.current_job_id]
            gone = [i for i in check_user_ids("user_ids", user_ids) if i in row.users]
            for user_id in gone:
                index = row.ids.index(user_id)
                position = row.positions[index]
                del row.ids[index], row.positions[index], row.users[user_id]
                if job is not None and not job.finished and job.cursor < position <= job.roster_end:
                    bisect.insort(row.removed, (position, user_id))
            return tuple(gone)

    def user_ids(self, tenant_id: str) -> Iterator[str]:
        with self._lock:
            return iter(list(self._row(tenant_id).ids))

    # -- push jobs ----------------------------------------------------------------

    def start_job(self, job: PushJob) -> PushJob:
        with self._lock:
            row = self._row(job.tenant_id)
            if job.id in self._jobs:
                raise AlreadyExists("job.id", job.id, "is already a stored push job")
            for other in self._jobs.values():
                if other.tenant_id == job.tenant_id and not other.finished:
                    self._jobs[other.id] = jobs.superseded(other, by=job.id)
                    self._members.pop(other.id, None)  # kept only while its push can run
            if job.audience.narrowed:
                members = [
                    position
                    for position, user_id in zip(row.positions, row.ids, strict=True)
                    if job.audience.includes(row.users[user_id])
                ]
                self._members[job.id] = members
                stored = jobs.started(
                    job, total=len(members), roster_end=members[-1] if members else 0
                )
            else:
                stored = jobs.started(
                    job, total=len(row.ids), roster_end=row.positions[-1] if row.positions else 0
                )
            self._jobs[job.id] = stored
            self._changes[job.id] = []
            self._skips[job.id] = []
            row.current_job_id = job.id
            if not job.audience.narrowed:
                # A push to some Users only is not the tenant's checkbox setting (R20).
                row.defaults = job.defaults
            row.removed.clear()  # every earlier job is finished or superseded now
            return stored

    def get_job(self, job_id: str) -> PushJob:
        with self._lock:
            try:
                return self._jobs[job_id]
            except (KeyError, TypeError):
                raise UnknownJob(job_id) from None

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        with self._lock:
            found = [
                j for j in self._jobs.values() if tenant_id is None or j.tenant_id == tenant_id
            ]
            # Insertion order is start order; newest first.
            return found[::-1]

    def _roster(
        self, job: PushJob, after: int, limit: int
    ) -> tuple[list[int], list[User | jobs.Removed]]:
        """Positions and entries of up to `limit` roster Users of `job` after position `after`.

        An entry is the User as stored, or `jobs.Removed` for one removed since the job started.
        """
        row = self._row(job.tenant_id)
        if job.audience.narrowed:
            members = self._members.get(job.id, [])  # none once the push cannot run
            # Each member as stored, or removed since the job started (R14).
            gone = dict(row.removed)
            picked: list[int] = []
            users: list[User | jobs.Removed] = []
            for position in members[bisect.bisect_right(members, after) :]:
                at = bisect.bisect_left(row.positions, position)
                if at < len(row.positions) and row.positions[at] == position:
                    users.append(row.users[row.ids[at]])
                elif position in gone:
                    users.append(jobs.Removed(gone[position]))
                else:
                    continue
                picked.append(position)
                if len(picked) == limit:
                    break
            return picked, users
        start = bisect.bisect_right(row.positions, after)
        stop = bisect.bisect_right(row.positions, job.roster_end)
        stop = min(stop, start + max(limit, 0))
        entries: list[tuple[int, User | jobs.Removed]] = [
            (row.positions[i], row.users[row.ids[i]]) for i in range(start, stop)
        ]
        if row.removed:
            first = bisect.bisect_right(row.removed, (after, "\U0010ffff"))
            entries += [
                (position, jobs.Removed(user_id))
                for position, user_id in row.removed[first : first + limit]
                if position <= job.roster_end
            ]
            entries = sorted(entries, key=lambda entry: entry[0])[:limit]
        return [p for p, _ in entries], [e for _, e in entries]

    def run_batch(self, job_id: str, *, after: int, limit: int) -> PushJob | StaleCheckpoint:
        check_limit(limit)
        with self._lock:
            job = self.get_job(job_id)
            jobs.check_writable(job, self._row(job.tenant_id).current_job_id)
            if job.cursor != after:
                return StaleCheckpoint(job)
            positions, users = self._roster(job, after, limit)
            if not users:
                return job
            decision = jobs.decide_job(users, job)
            stored = jobs.after_batch(
                job, last_position=positions[-1], processed=len(users), counts=decision.counts
            )
            # Nothing below can fail: the batch is written whole.
            row_users = self._row(job.tenant_id).users
            for user, _ in decision.writes:
                row_users[user.id] = user
            self._changes[job.id].extend(decision.changes)
            self._skips[job.id].extend(decision.skips)
            self._jobs[job.id] = stored
            return stored

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        with self._lock:
            job = self.get_job(job_id)
            row = self._row(job.tenant_id)
            jobs.check_current(job, row.current_job_id)
            stored = jobs.finished(job, finished_at)
            if stored is not job:
                self._jobs[job_id] = stored
                row.last_push = stored.record()
                row.removed.clear()
                self._members.pop(job_id, None)
            return stored

    def lease_job(self, job_id: str, *, runner_id: str, until: dt.datetime | None) -> PushJob:
        with self._lock:
            job = self.get_job(job_id)
            stored = jobs.leased(job, runner_id=runner_id, until=until)
            self._jobs[job_id] = stored
            return stored

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        with self._lock:
            self.get_job(job_id)
            return iter(list(self._changes[job_id]))

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        with self._lock:
            self.get_job(job_id)
            return iter(list(self._skips[job_id]))

    # -- policy: locks and reverts (R17, R19) ------------------------------------

    def save_locks(self, tenant_id: str, locks: Locks | None) -> None:
        if locks is not None and not isinstance(locks, Locks):
            raise InvalidInput("locks", locks, "is not a Locks")
        with self._lock:
            self._row(tenant_id).locks = locks

    def start_revert(self, revert: RevertJob) -> RevertJob:
        with self._lock:
            job = self.get_job(revert.push_job_id)
            if job.tenant_id != revert.tenant_id:
                raise UnknownJob(revert.push_job_id)
            started = jobs.revert_started(revert, self._reverts.get(revert.push_job_id))
            self._reverts[revert.push_job_id] = started
            return started

    def finish_revert(
        self, revert: RevertJob, *, defaults: Defaults | None, last_push: PushRecord | None
    ) -> RevertJob:
        with self._lock:
            row = self._row(revert.tenant_id)
            known = self._reverts.get(revert.push_job_id)
            mine = known is not None and known.id == revert.id
            jobs.check_revert_finishable(
                revert,
                push_job_id=revert.push_job_id if mine else None,
                status=known.status if known is not None and mine else None,
            )
            self._reverts[revert.push_job_id] = revert
            if revert.restored_defaults:
                row.defaults = defaults
                row.last_push = last_push
            return revert

    def list_reverts(self, tenant_id: str | None = None) -> list[RevertJob]:
        with self._lock:
            found = [
                r for r in self._reverts.values() if tenant_id is None or r.tenant_id == tenant_id
            ]
            return found[::-1]

    # -- presets (R21) ------------------------------------------------------------------

    def get_presets(self, tenant_id: str) -> PresetBook:
        with self._lock:
            return self._row(tenant_id).presets

    def save_presets(self, tenant_id: str, book: PresetBook, event: PresetEvent) -> bool:
        if not isinstance(book, PresetBook):
            raise InvalidInput("book", book, "is not a PresetBook")
        if not isinstance(event, PresetEvent):
            raise InvalidInput("event", event, "is not a PresetEvent")
        with self._lock:
            row = self._row(tenant_id)
            if row.presets.version != book.version - 1:
                return False
            row.presets = book
            row.preset_events.append(event)
            return True

    def preset_events(self, tenant_id: str) -> list[PresetEvent]:
        with self._lock:
            return list(self._row(tenant_id).preset_events)
