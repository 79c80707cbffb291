"""A `Store` in process memory: for tests, notebooks, and hosts that keep state elsewhere.

Each method takes a lock and checks everything before it changes anything, so
it is atomic like a transaction; nothing survives the process.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterator, Sequence

import attrs

from labelsync.changes import LabelChange, Skip
from labelsync.exceptions import (
    AlreadyExists,
    JobSuperseded,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.model import Defaults, PushRecord, Tenant, User
from labelsync.ports import BatchWrite, Conflict, JobStatus, PushJob, StaleCheckpoint, StoredChange

__all__ = ["InMemoryStore"]


@attrs.define
class _TenantRow:
    name: str
    defaults: Defaults | None
    onboard_new_users: bool
    current_job_id: str | None = None
    last_push: PushRecord | None = None
    users: dict[str, User] = attrs.Factory(dict)
    positions: list[int] = attrs.Factory(list)  # roster positions, increasing
    ids: list[str] = attrs.Factory(list)  # user id at the same index as its position


class InMemoryStore:
    """Tenants, Users and push jobs in dictionaries, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, _TenantRow] = {}
        self._jobs: dict[str, PushJob] = {}
        self._changes: dict[str, list[StoredChange]] = {}
        self._skips: dict[str, list[Skip]] = {}
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
        with self._lock:
            if tenant.id in self._tenants:
                raise AlreadyExists("tenant.id", tenant.id, "is already a stored tenant")
            row = _TenantRow(
                name=tenant.name,
                defaults=tenant.defaults,
                onboard_new_users=tenant.onboard_new_users,
                last_push=tenant.last_push,
            )
            for user in tenant.users:
                self._append(row, user)
            self._tenants[tenant.id] = row

    def tenant_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._tenants)

    def get_tenant(self, tenant_id: str, *, users: bool = True) -> Tenant:
        with self._lock:
            row = self._row(tenant_id)
            return Tenant(
                id=tenant_id,
                name=row.name,
                users=tuple(row.users[i] for i in row.ids) if users else (),
                defaults=row.defaults,
                last_push=row.last_push,
                onboard_new_users=row.onboard_new_users,
            )

    def save_settings(
        self, tenant_id: str, *, defaults: Defaults | None, onboard_new_users: bool
    ) -> None:
        with self._lock:
            row = self._row(tenant_id)
            row.defaults = defaults
            row.onboard_new_users = onboard_new_users

    def add_user(self, tenant_id: str, user: User) -> None:
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
        with self._lock:
            users = self._row(tenant_id).users
            conflicts = tuple(
                user.id
                for user, expected in writes
                if user.id not in users or users[user.id].version != expected
            )
            for user, _ in writes:
                if user.id not in conflicts:
                    users[user.id] = user
            return conflicts

    # -- push jobs ----------------------------------------------------------------

    def start_job(self, job: PushJob) -> PushJob:
        with self._lock:
            row = self._row(job.tenant_id)
            if job.id in self._jobs:
                raise AlreadyExists("job.id", job.id, "is already a stored push job")
            for other in self._jobs.values():
                if other.tenant_id == job.tenant_id and not other.finished:
                    self._jobs[other.id] = attrs.evolve(
                        other, status=JobStatus.SUPERSEDED, superseded_by=job.id
                    )
            stored = attrs.evolve(
                job,
                status=JobStatus.PENDING,
                total=len(row.ids),
                roster_end=row.positions[-1] if row.positions else 0,
            )
            self._jobs[job.id] = stored
            self._changes[job.id] = []
            self._skips[job.id] = []
            row.current_job_id = job.id
            row.defaults = job.defaults
            return stored

    def get_job(self, job_id: str) -> PushJob:
        with self._lock:
            try:
                return self._jobs[job_id]
            except (KeyError, TypeError):
                raise UnknownJob(job_id) from None

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        with self._lock:
            jobs = [j for j in self._jobs.values() if tenant_id is None or j.tenant_id == tenant_id]
            # Insertion order is start order; newest first.
            return jobs[::-1]

    def roster_batch(self, job_id: str, after: int, limit: int) -> list[tuple[int, User]]:
        with self._lock:
            job = self.get_job(job_id)
            row = self._row(job.tenant_id)
            start = bisect.bisect_right(row.positions, after)
            stop = bisect.bisect_right(row.positions, job.roster_end)
            stop = min(stop, start + limit)
            return [(row.positions[i], row.users[row.ids[i]]) for i in range(start, stop)]

    def _fenced(self, job_id: str) -> tuple[PushJob, _TenantRow]:
        job = self.get_job(job_id)
        row = self._row(job.tenant_id)
        if job.status is JobStatus.SUPERSEDED or row.current_job_id != job_id:
            raise JobSuperseded(job_id, job.superseded_by or row.current_job_id)
        return job, row

    def commit_batch(self, batch: BatchWrite) -> PushJob | Conflict | StaleCheckpoint:
        with self._lock:
            job, row = self._fenced(batch.job_id)
            if job.status is JobStatus.DONE:
                raise JobSuperseded(batch.job_id, None)
            if job.cursor != batch.cursor_before:
                return StaleCheckpoint(job)
            conflicts = tuple(
                user.id
                for user, expected in batch.writes
                if user.id not in row.users or row.users[user.id].version != expected
            )
            if conflicts:
                return Conflict(conflicts)
            for user, _ in batch.writes:
                row.users[user.id] = user
            versions = {user.id: user.version for user, _ in batch.writes}
            self._changes[job.id].extend(
                StoredChange(change=LabelChange(*c), version_after=versions[c[0]])
                for c in batch.changes
            )
            self._skips[job.id].extend(Skip(*s) for s in batch.skips)
            stored = attrs.evolve(
                job,
                status=JobStatus.RUNNING,
                cursor=batch.cursor_after,
                processed=job.processed + batch.processed,
                counts=job.counts + batch.counts,
            )
            self._jobs[job.id] = stored
            return stored

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        with self._lock:
            job, row = self._fenced(job_id)
            if job.status is JobStatus.DONE:
                return job
            stored = attrs.evolve(job, status=JobStatus.DONE, finished_at=finished_at)
            self._jobs[job_id] = stored
            row.last_push = stored.record()
            return stored

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        with self._lock:
            self.get_job(job_id)
            return iter(list(self._changes[job_id]))

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        with self._lock:
            self.get_job(job_id)
            return iter(list(self._skips[job_id]))
