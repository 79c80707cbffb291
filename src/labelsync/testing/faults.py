"""Store wrappers for crash tests: a transparent `StoreProxy` and a `FaultyStore` that fails once.

`FaultyStore` makes the Nth call of one `Store` method raise `InjectedFault`,
either before the call reaches the wrapped store (nothing written) or after it
returned (written, but the caller never learns it: the nastiest crash). A test
then builds a new `LabelSync` over the wrapped store and checks that resuming
ends exactly where an uninterrupted run would (R12)::

    faulty = FaultyStore(store, fail_on="run_batch", after_calls=2, when="after")
    with pytest.raises(InjectedFault):
        LabelSync(store=faulty, clock=clock).run_push(job.id, batch_size=10)
    LabelSync(store=store, clock=clock).run_push(job.id, batch_size=10)  # resumes
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, TypeVar

from labelsync.changes import Skip
from labelsync.exceptions import InvalidInput
from labelsync.jobs import RevertJob
from labelsync.model import Defaults, Locks, PushRecord, Tenant, User
from labelsync.ports import PushJob, StaleCheckpoint, Store, StoredChange, TenantSettings
from labelsync.presets import PresetBook, PresetEvent

__all__ = ["STORE_METHODS", "FaultyStore", "InjectedFault", "StoreProxy"]

T = TypeVar("T")

STORE_METHODS = (
    "add_tenant",
    "tenant_ids",
    "get_tenant",
    "settings",
    "save_defaults",
    "save_onboarding",
    "add_user",
    "get_user",
    "get_users",
    "save_users",
    "start_job",
    "get_job",
    "run_batch",
    "finish_job",
    "list_jobs",
    "job_changes",
    "job_skips",
    "save_locks",
    "start_revert",
    "finish_revert",
    "list_reverts",
)
"""The names of the methods of the `Store` port, in the order its three ports declare them."""


class InjectedFault(Exception):
    """Raised by `FaultyStore` in place of a crash; deliberately not a `LabelSyncError`.

    Code under test must not catch it as one of its own errors, just as it
    could not catch a power cut.
    """


class StoreProxy:
    """A `Store` that hands every call to `inner`; subclass it and override `intercept`.

    Each method calls `intercept(method, args, call)` where `call()` performs the
    call on `inner`; the default simply returns `call()`. Tests use it to record,
    delay or disturb calls without a mock.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def intercept(self, method: str, args: tuple[object, ...], call: Callable[[], T]) -> T:
        """Perform `call` (the call of `method` with `args` on `inner`) and return its result."""
        return call()

    # -- tenants and Users ------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        """Delegates to `inner`."""
        return self.intercept("add_tenant", (tenant,), lambda: self.inner.add_tenant(tenant))

    def tenant_ids(self) -> list[str]:
        """Delegates to `inner`."""
        return self.intercept("tenant_ids", (), self.inner.tenant_ids)

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Delegates to `inner`."""
        return self.intercept("get_tenant", (tenant_id,), lambda: self.inner.get_tenant(tenant_id))

    def settings(self, tenant_id: str) -> TenantSettings:
        """Delegates to `inner`."""
        return self.intercept("settings", (tenant_id,), lambda: self.inner.settings(tenant_id))

    def save_defaults(self, tenant_id: str, defaults: Defaults | None) -> None:
        """Delegates to `inner`."""
        return self.intercept(
            "save_defaults",
            (tenant_id, defaults),
            lambda: self.inner.save_defaults(tenant_id, defaults),
        )

    def save_onboarding(self, tenant_id: str, enabled: bool) -> None:
        """Delegates to `inner`."""
        return self.intercept(
            "save_onboarding",
            (tenant_id, enabled),
            lambda: self.inner.save_onboarding(tenant_id, enabled),
        )

    def add_user(self, tenant_id: str, user: User) -> None:
        """Delegates to `inner`."""
        return self.intercept(
            "add_user", (tenant_id, user), lambda: self.inner.add_user(tenant_id, user)
        )

    def get_user(self, tenant_id: str, user_id: str) -> User:
        """Delegates to `inner`."""
        return self.intercept(
            "get_user", (tenant_id, user_id), lambda: self.inner.get_user(tenant_id, user_id)
        )

    def get_users(self, tenant_id: str, user_ids: Sequence[str]) -> list[User]:
        """Delegates to `inner`."""
        return self.intercept(
            "get_users", (tenant_id, user_ids), lambda: self.inner.get_users(tenant_id, user_ids)
        )

    def save_users(self, tenant_id: str, writes: Sequence[tuple[User, int]]) -> tuple[str, ...]:
        """Delegates to `inner`."""
        return self.intercept(
            "save_users", (tenant_id, writes), lambda: self.inner.save_users(tenant_id, writes)
        )

    def add_users(self, tenant_id: str, users: Sequence[User]) -> None:
        """Delegates to `inner`."""
        return self.intercept(
            "add_users", (tenant_id, users), lambda: self.inner.add_users(tenant_id, users)
        )

    def remove_users(self, tenant_id: str, user_ids: Sequence[str]) -> tuple[str, ...]:
        """Delegates to `inner`."""
        return self.intercept(
            "remove_users",
            (tenant_id, user_ids),
            lambda: self.inner.remove_users(tenant_id, user_ids),
        )

    def user_ids(self, tenant_id: str) -> Iterator[str]:
        """Delegates to `inner`."""
        return self.intercept("user_ids", (tenant_id,), lambda: self.inner.user_ids(tenant_id))

    # -- push jobs ----------------------------------------------------------------

    def start_job(self, job: PushJob) -> PushJob:
        """Delegates to `inner`."""
        return self.intercept("start_job", (job,), lambda: self.inner.start_job(job))

    def get_job(self, job_id: str) -> PushJob:
        """Delegates to `inner`."""
        return self.intercept("get_job", (job_id,), lambda: self.inner.get_job(job_id))

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        """Delegates to `inner`."""
        return self.intercept("list_jobs", (tenant_id,), lambda: self.inner.list_jobs(tenant_id))

    def run_batch(self, job_id: str, *, after: int, limit: int) -> PushJob | StaleCheckpoint:
        """Delegates to `inner`."""
        return self.intercept(
            "run_batch",
            (job_id, after, limit),
            lambda: self.inner.run_batch(job_id, after=after, limit=limit),
        )

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        """Delegates to `inner`."""
        return self.intercept(
            "finish_job", (job_id, finished_at), lambda: self.inner.finish_job(job_id, finished_at)
        )

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        """Delegates to `inner`."""
        return self.intercept("job_changes", (job_id,), lambda: self.inner.job_changes(job_id))

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        """Delegates to `inner`."""
        return self.intercept("job_skips", (job_id,), lambda: self.inner.job_skips(job_id))

    def save_locks(self, tenant_id: str, locks: Locks | None) -> None:
        """Delegates to `inner`."""
        return self.intercept(
            "save_locks", (tenant_id, locks), lambda: self.inner.save_locks(tenant_id, locks)
        )

    def start_revert(self, revert: RevertJob) -> RevertJob:
        """Delegates to `inner`."""
        return self.intercept("start_revert", (revert,), lambda: self.inner.start_revert(revert))

    def finish_revert(
        self, revert: RevertJob, *, defaults: Defaults | None, last_push: PushRecord | None
    ) -> RevertJob:
        """Delegates to `inner`."""
        return self.intercept(
            "finish_revert",
            (revert, defaults, last_push),
            lambda: self.inner.finish_revert(revert, defaults=defaults, last_push=last_push),
        )

    def list_reverts(self, tenant_id: str | None = None) -> list[RevertJob]:
        """Delegates to `inner`."""
        return self.intercept(
            "list_reverts", (tenant_id,), lambda: self.inner.list_reverts(tenant_id)
        )

    # -- presets --------------------------------------------------------------------

    def get_presets(self, tenant_id: str) -> PresetBook:
        """Delegates to `inner`."""
        return self.intercept(
            "get_presets", (tenant_id,), lambda: self.inner.get_presets(tenant_id)
        )

    def save_presets(self, tenant_id: str, book: PresetBook, event: PresetEvent) -> bool:
        """Delegates to `inner`."""
        return self.intercept(
            "save_presets",
            (tenant_id, book, event),
            lambda: self.inner.save_presets(tenant_id, book, event),
        )

    def preset_events(self, tenant_id: str) -> list[PresetEvent]:
        """Delegates to `inner`."""
        return self.intercept(
            "preset_events", (tenant_id,), lambda: self.inner.preset_events(tenant_id)
        )


class FaultyStore(StoreProxy):
    """A `Store` whose `fail_on` method raises `InjectedFault` once, on call `after_calls + 1`.

    The first `after_calls` calls of `fail_on` pass through. The next one fails:
    with `when="before"` it raises without calling `inner` (the crash hit before
    the write), with `when="after"` it calls `inner` and then raises (the write
    landed, the caller never heard). Every later call passes through again;
    `fired` tells whether the fault happened.
    """

    def __init__(
        self,
        inner: Store,
        fail_on: str,
        after_calls: int = 0,
        when: Literal["before", "after"] = "before",
    ) -> None:
        if fail_on not in STORE_METHODS:
            raise InvalidInput("fail_on", fail_on, f"is not a Store method ({STORE_METHODS})")
        count: object = after_calls  # callers may pass anything; refuse it by name
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput("after_calls", after_calls, "must be a whole number >= 0")
        if when not in ("before", "after"):
            raise InvalidInput("when", when, "must be 'before' or 'after'")
        super().__init__(inner)
        self.fail_on = fail_on
        self.after_calls = after_calls
        self.when = when
        self.calls = 0
        """How many times `fail_on` was called so far, the failing call included."""
        self.fired = False

    def __repr__(self) -> str:
        return (
            f"FaultyStore({self.inner!r}, fail_on={self.fail_on!r}, "
            f"after_calls={self.after_calls}, when={self.when!r}, fired={self.fired})"
        )

    def intercept(self, method: str, args: tuple[object, ...], call: Callable[[], T]) -> T:
        """Pass the call through, except the one call of `fail_on` chosen to fail."""
        if method != self.fail_on:
            return call()
        self.calls += 1
        if self.fired or self.calls <= self.after_calls:
            return call()
        self.fired = True
        if self.when == "after":
            call()
        raise InjectedFault(
            f"injected fault {self.when} call {self.calls} of {method} "
            f"({'written' if self.when == 'after' else 'nothing written'})"
        )
