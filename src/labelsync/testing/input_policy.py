"""The input policy as store contract tests: every store treats every id and number alike.

`InputPolicyContract` is inherited by `labelsync.testing.conformance.StoreContract`,
so a host store that runs the conformance kit runs these too. The policy itself
lives in ``labelsync._validate`` (documented in docs/reference/limits.md): ids are
valid Unicode without NUL of at most `MAX_ID_LENGTH` characters, whole numbers fit
a signed 64-bit column, a User's version is created at most `MAX_VERSION` so it can
grow, and a batch holds at most `MAX_BATCH_SIZE` Users. A value outside the policy
cannot be built, so a store only ever meets it as a lookup id: one that can name
nothing stored, which every store answers as unknown, changing nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from labelsync._validate import MAX_BATCH_SIZE, MAX_ID_LENGTH, MAX_INT64, MAX_VERSION
from labelsync.exceptions import InvalidInput, UnknownJob, UnknownTenant, UnknownUser
from labelsync.jobs import JobStatus, PushJob
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.ports import JobLeases, Store
from labelsync.rules import apply_defaults

__all__ = ["BAD_IDS", "InputPolicyContract"]

_T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)

BAD_IDS: tuple[object, ...] = (
    "",
    "   ",
    "a\x00b",
    "a\udc80",
    "\ud800",
    "x" * (MAX_ID_LENGTH + 1),
    "x" * 3000,
    None,
    17,
    b"t1",
)
"""Lookup ids outside the input policy (F1 lone surrogates, F2 NUL, F3 too long, not text)."""


def _long(prefix: str) -> str:
    """An id of exactly `MAX_ID_LENGTH` characters, mostly outside ASCII."""
    return (prefix + "é✉𝄞ü" * MAX_ID_LENGTH)[:MAX_ID_LENGTH]


def _mailbox(address: str, inbox: str = "INBOX", sent: str = "SENT") -> Mailbox:
    return Mailbox(
        provider=Provider.GMAIL,
        address=address,
        labels=(
            Label(id=inbox, name="Inbox", system=SystemLabel.INBOX),
            Label(id=sent, name="Sent", system=SystemLabel.SENT),
        ),
    )


def _user(user_id: str, *, version: int = 0) -> User:
    return User(
        id=user_id,
        email=f"{user_id[:40]}@acme.test",
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=_mailbox(f"{user_id[:40]}@acme.test"),
        synced=LabelSet(["SENT"]),
        version=version,
    )


def _job(job_id: str, tenant_id: str, defaults: Defaults) -> PushJob:
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id="admin",
        defaults=defaults,
        status=JobStatus.PENDING,
        started_at=_T0,
    )


def _state(store: Store) -> object:
    tenants = [store.get_tenant(tenant_id) for tenant_id in store.tenant_ids()]
    jobs = store.list_jobs()
    trail = [(list(store.job_changes(j.id)), list(store.job_skips(j.id))) for j in jobs]
    return tenants, jobs, trail


Lookup = Callable[[Store, object], object]

_LOOKUPS: dict[str, tuple[Lookup, type[Exception]]] = {
    "get_tenant": (lambda s, bad: s.get_tenant(bad), UnknownTenant),  # type: ignore[arg-type]
    "settings": (lambda s, bad: s.settings(bad), UnknownTenant),  # type: ignore[arg-type]
    "save_defaults": (
        lambda s, bad: s.save_defaults(bad, Defaults(inbox=True, sent=True)),  # type: ignore[arg-type]
        UnknownTenant,
    ),
    "save_onboarding": (lambda s, bad: s.save_onboarding(bad, True), UnknownTenant),  # type: ignore[arg-type]
    "add_user": (lambda s, bad: s.add_user(bad, _user("u9")), UnknownTenant),  # type: ignore[arg-type]
    "get_user of a tenant": (lambda s, bad: s.get_user(bad, "u1"), UnknownTenant),  # type: ignore[arg-type]
    "get_user": (lambda s, bad: s.get_user("t1", bad), UnknownUser),  # type: ignore[arg-type]
    "get_job": (lambda s, bad: s.get_job(bad), UnknownJob),  # type: ignore[arg-type]
    "run_batch": (lambda s, bad: s.run_batch(bad, after=0, limit=10), UnknownJob),  # type: ignore[arg-type]
    "finish_job": (lambda s, bad: s.finish_job(bad, _T0), UnknownJob),  # type: ignore[arg-type]
    "job_changes": (lambda s, bad: s.job_changes(bad), UnknownJob),  # type: ignore[arg-type]
    "job_skips": (lambda s, bad: s.job_skips(bad), UnknownJob),  # type: ignore[arg-type]
}


class InputPolicyContract:
    """The input policy as every store must keep it; `StoreContract` inherits these tests."""

    @pytest.mark.parametrize("call", sorted(_LOOKUPS))
    def test_an_id_outside_the_input_policy_names_nothing_and_changes_nothing(
        self, store: Store, call: str
    ) -> None:
        """F1-F3, R12: a NUL, a lone surrogate or an over-long id is unknown on every store."""
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_user("u1"),)))
        store.start_job(_job("j1", "t1", Defaults(inbox=True, sent=False)))
        before = _state(store)
        lookup, unknown = _LOOKUPS[call]
        for bad in BAD_IDS:
            with pytest.raises(unknown):
                lookup(store, bad)
        assert before == _state(store)

    def test_get_users_and_list_jobs_leave_out_ids_outside_the_input_policy(
        self, store: Store
    ) -> None:
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_user("u1"),)))
        mixed: list[object] = [*BAD_IDS, "u1"]

        assert ["u1"] == [u.id for u in store.get_users("t1", mixed)]  # type: ignore[arg-type]
        for bad in BAD_IDS:
            assert [] == store.list_jobs(bad)  # type: ignore[arg-type]

    def test_ids_of_the_longest_length_in_any_script_round_trip_and_push(
        self, store: Store
    ) -> None:
        """F3, R9: an id of `MAX_ID_LENGTH` characters is kept exactly and pushed by role."""
        tenant_id, user_id = _long("t"), _long("u")
        inbox, sent = _long("i"), _long("s")
        user = User(
            id=user_id,
            email="ü@acme.test",
            mailbox=_mailbox("ü@acme.test", inbox, sent),
            synced=LabelSet([sent, _long("c")]),
        )
        tenant = Tenant(id=tenant_id, name="✉ " * 500, users=(user,))
        store.add_tenant(tenant)
        defaults = Defaults(inbox=True, sent=False)
        job = store.start_job(_job(_long("j"), tenant_id, defaults))
        result = store.run_batch(job.id, after=0, limit=10)

        assert isinstance(result, PushJob)
        assert apply_defaults(tenant, defaults)[0].users == store.get_tenant(tenant_id).users
        assert [tenant_id] == store.tenant_ids()

    def test_a_user_created_at_the_largest_version_can_still_be_pushed_and_edited(
        self, store: Store
    ) -> None:
        """F4: a version up to 2**62 is stored, and every push and edit after it still lands."""
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_user("u1", version=MAX_VERSION),)))
        job = store.start_job(_job("j1", "t1", Defaults(inbox=True, sent=False)))
        store.run_batch(job.id, after=0, limit=10)
        pushed = store.get_user("t1", "u1")
        edited = pushed.with_selection(LabelSet(["SENT"]))

        assert MAX_VERSION + 1 == pushed.version
        assert () == store.save_users("t1", [(edited, pushed.version)])
        assert (MAX_VERSION + 2, LabelSet(["SENT"])) == (
            store.get_user("t1", "u1").version,
            store.get_user("t1", "u1").synced,
        )

    def test_counts_of_the_largest_64_bit_size_round_trip_in_the_audit_record(
        self, store: Store
    ) -> None:
        """F4: every whole number a value accepts fits the store's 64-bit columns."""
        record = PushRecord(
            job_id="j0",
            actor_id="admin",
            defaults=Defaults(inbox=True, sent=True),
            started_at=_T0,
            finished_at=_T0,
            roster_size=MAX_INT64,
            counts=PushCounts(users_changed=MAX_INT64, selected=MAX_INT64),
        )
        store.add_tenant(Tenant(id="t1", name="Acme", last_push=record))

        assert record == store.settings("t1").last_push

    @pytest.mark.parametrize("limit", [0, MAX_BATCH_SIZE + 1, 2**63, -1, True, 1.5])
    def test_run_batch_refuses_a_limit_outside_the_policy_and_writes_nothing(
        self, store: Store, limit: object
    ) -> None:
        """F5: a batch size is a whole number in 1..100,000, checked before anything is written."""
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_user("u1"),)))
        job = store.start_job(_job("j1", "t1", Defaults(inbox=True, sent=False)))
        before = _state(store)

        with pytest.raises(InvalidInput, match="limit"):
            store.run_batch(job.id, after=0, limit=limit)  # type: ignore[arg-type]
        assert before == _state(store)

    def test_a_runner_lease_is_kept_renewed_and_released_only_by_its_holder(
        self, store: Store
    ) -> None:
        """A store with `JobLeases` keeps who runs a job until when (interrupted vs running)."""
        if not isinstance(store, JobLeases):
            pytest.skip("the store keeps no runner leases (JobLeases is optional)")
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_user("u1"),)))
        job = store.start_job(_job("j1", "t1", Defaults(inbox=True, sent=False)))
        until = _T0 + dt.timedelta(minutes=1)

        leased = store.lease_job(job.id, runner_id="host:1:a", until=until)
        by_other = store.lease_job(job.id, runner_id="host:2:b", until=None)
        stored = store.get_job(job.id)
        released = store.lease_job(job.id, runner_id="host:1:a", until=None)

        assert ("host:1:a", until) == (leased.runner_id, leased.lease_until)
        assert ("host:1:a", until) == (by_other.runner_id, by_other.lease_until)
        assert ("host:1:a", until) == (stored.runner_id, stored.lease_until)
        assert ("host:1:a", None) == (released.runner_id, released.lease_until)
        assert job == store.get_job(job.id)  # nothing else of the job changed
        with pytest.raises(UnknownJob):
            store.lease_job("nope", runner_id="host:1:a", until=until)
