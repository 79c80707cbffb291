"""The directory part of the `Store` contract (R13, R14): adding Users in bulk, removing them,
listing their ids, and a push that meets a removed User.

`DirectoryContract` is a base of `labelsync.testing.conformance.StoreContract`,
so a host's store is checked by it too; it can also be subclassed on its own
with the same ``store`` fixture. It needs only pytest; its differential test
also uses hypothesis and is skipped without it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import attrs
import pytest

from labelsync import jobs
from labelsync.changes import Skip
from labelsync.exceptions import AlreadyExists, InvalidInput, UnknownTenant, UnknownUser
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Provider,
    PushCounts,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.policy import PushMode
from labelsync.ports import JobStatus, PushJob, Store, StoredChange

__all__ = ["DirectoryContract"]

_START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
_LABELS = (
    Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX),
    Label(id="SENT", name="Sent", system=SystemLabel.SENT),
    Label(id="Label_7", name="Project X"),
)
_BOTH = Defaults(inbox=True, sent=True)


def _member(user_id: str, *synced: str, version: int = 0) -> User:
    address = f"{user_id}@directory.test"
    return User(
        id=user_id,
        email=address,
        mailbox=Mailbox(provider=Provider.GMAIL, address=address, labels=_LABELS),
        synced=LabelSet(synced),
        version=version,
    )


def _team(tenant_id: str, *user_ids: str) -> Tenant:
    return Tenant(id=tenant_id, name=f"Tenant {tenant_id}", users=[_member(i) for i in user_ids])


def _job(job_id: str, tenant_id: str, defaults: Defaults = _BOTH) -> PushJob:
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id="admin",
        defaults=defaults,
        status=JobStatus.PENDING,
        started_at=_START,
    )


def _batch(store: Store, job: PushJob, limit: int) -> PushJob:
    result = store.run_batch(job.id, after=job.cursor, limit=limit)
    assert isinstance(result, PushJob), f"run_batch should have written, got {result!r}"
    return result


def _run(store: Store, job: PushJob, limit: int = 100) -> PushJob:
    while not job.roster_done:
        job = _batch(store, job, limit)
    return job


def _ids(store: Store, tenant_id: str) -> list[str]:
    return [user.id for user in store.get_tenant(tenant_id).users]


class DirectoryContract:
    """`TenantDirectory` Users changing under a push (R13, R14), as pytest tests.

    Subclass with a ``store`` fixture that yields a fresh, empty store.
    """

    # -- add_users ----------------------------------------------------------------------

    def test_add_users_appends_them_in_order_after_the_roster(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1", "u2"))

        store.add_users("t1", [_member("u4", "SENT", version=3), _member("u3")])

        assert ["u1", "u2", "u4", "u3"] == _ids(store, "t1")
        assert _member("u4", "SENT", version=3) == store.get_user("t1", "u4")

    def test_add_users_with_a_taken_id_raises_already_exists_and_adds_nobody(
        self, store: Store
    ) -> None:
        store.add_tenant(_team("t1", "u1", "u2"))

        with pytest.raises(AlreadyExists) as raised:
            store.add_users("t1", [_member("u3"), _member("u2")])

        assert "users[1].id" in str(raised.value)
        assert ["u1", "u2"] == _ids(store, "t1")

    def test_add_users_refuses_an_id_named_twice_and_adds_nobody(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1"))

        with pytest.raises(InvalidInput) as raised:
            store.add_users("t1", [_member("u2"), _member("u3"), _member("u2")])

        assert "users[2].id" in str(raised.value)
        assert ["u1"] == _ids(store, "t1")

    def test_add_users_of_an_unknown_tenant_raises_unknown_tenant(self, store: Store) -> None:
        with pytest.raises(UnknownTenant):
            store.add_users("nope", [_member("u1")])
        assert [] == store.tenant_ids()

    # -- remove_users and user_ids -----------------------------------------------------------

    def test_remove_users_removes_them_and_answers_which_it_removed(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1", "u2", "u3", "u4"))

        removed = store.remove_users("t1", ["u3", "nope", "u1"])

        assert ("u3", "u1") == removed
        assert ["u2", "u4"] == _ids(store, "t1")
        with pytest.raises(UnknownUser):
            store.get_user("t1", "u3")
        assert [] == store.get_users("t1", ["u1", "u3"])

    def test_remove_users_touches_only_its_own_tenant(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1", "u2"))
        store.add_tenant(_team("t2", "u1", "u2"))

        store.remove_users("t1", ["u1"])

        assert (["u2"], ["u1", "u2"]) == (_ids(store, "t1"), _ids(store, "t2"))

    def test_remove_users_refuses_one_string_and_removes_nobody(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1"))

        with pytest.raises(InvalidInput):
            store.remove_users("t1", "u1")  # a str is a Sequence[str]: the mistake checked

        assert ["u1"] == _ids(store, "t1")

    def test_remove_users_of_an_unknown_tenant_raises_unknown_tenant(self, store: Store) -> None:
        with pytest.raises(UnknownTenant):
            store.remove_users("nope", ["u1"])

    def test_a_removed_id_can_be_added_again_at_the_end_of_the_roster(self, store: Store) -> None:
        """R14: the id is free again; the new User is a new roster entry, after every other."""
        store.add_tenant(_team("t1", "u1", "u2", "u3"))
        store.remove_users("t1", ["u1"])

        store.add_user("t1", _member("u1", "Label_7"))

        assert ["u2", "u3", "u1"] == _ids(store, "t1")
        assert LabelSet(["Label_7"]) == store.get_user("t1", "u1").synced

    def test_user_ids_lists_the_roster_in_order(self, store: Store) -> None:
        store.add_tenant(_team("t1", *(f"u{n:04d}" for n in range(2500, 0, -1))))
        store.remove_users("t1", ["u0007"])
        store.add_users("t1", [_member("u0007")])

        ids = list(store.user_ids("t1"))

        assert [*(f"u{n:04d}" for n in range(2500, 0, -1) if n != 7), "u0007"] == ids

    def test_user_ids_of_an_unknown_tenant_raises_at_the_call(self, store: Store) -> None:
        with pytest.raises(UnknownTenant):
            store.user_ids("nope")

    # -- R14: a push meets a removed User ----------------------------------------------------

    def test_a_user_removed_while_a_push_runs_is_skipped_and_nothing_is_written_for_them(
        self, store: Store
    ) -> None:
        """R14: skipped with USER_REMOVED, counted, processed still reaches the roster size."""
        store.add_tenant(_team("t1", "u1", "u2", "u3", "u4"))
        job = _batch(store, store.start_job(_job("j1", "t1")), 1)

        store.remove_users("t1", ["u3"])
        job = _run(store, job, 2)

        assert (4, 4) == (job.total, job.processed)
        assert PushCounts(users_changed=3, selected=6, user_removed=1) == job.counts
        assert [Skip(user_id="u3", label=None, reason=SkipReason.USER_REMOVED)] == list(
            store.job_skips("j1")
        )
        assert "u3" not in {c.change.user_id for c in store.job_changes("j1")}
        assert ["u1", "u2", "u4"] == _ids(store, "t1")

    def test_a_removed_user_added_again_is_not_in_the_running_pushs_roster(
        self, store: Store
    ) -> None:
        """R6, R14: the old entry is skipped as removed; the new User is left as added."""
        store.add_tenant(_team("t1", "u1", "u2", "u3"))
        job = store.start_job(_job("j1", "t1"))
        store.remove_users("t1", ["u2"])
        store.add_user("t1", _member("u2"))

        job = _run(store, job, 10)
        store.finish_job(job.id, _START)

        assert (3, PushCounts(users_changed=2, selected=4, user_removed=1)) == (
            job.processed,
            job.counts,
        )
        assert _member("u2") == store.get_user("t1", "u2")
        assert ["u1", "u3", "u2"] == _ids(store, "t1")

    def test_a_user_added_after_the_rosters_last_users_were_removed_stays_outside_it(
        self, store: Store
    ) -> None:
        """R6, R14: roster positions only grow, even when the roster's end was removed."""
        store.add_tenant(_team("t1", "u1", "u2"))
        job = store.start_job(_job("j1", "t1"))
        store.remove_users("t1", ["u2"])
        store.add_users("t1", [_member("u2"), _member("u3")])

        job = _run(store, job, 1)

        assert (2, PushCounts(users_changed=1, selected=2, user_removed=1)) == (
            job.processed,
            job.counts,
        )
        assert [_member("u2"), _member("u3")] == store.get_users("t1", ["u2", "u3"])

    def test_a_user_removed_after_the_push_reached_them_keeps_their_history(
        self, store: Store
    ) -> None:
        """R14 is for Users the push has not reached; what it wrote for others stays its record."""
        store.add_tenant(_team("t1", "u1", "u2", "u3"))
        job = _batch(store, store.start_job(_job("j1", "t1")), 2)

        store.remove_users("t1", ["u1"])
        job = _run(store, job)

        assert PushCounts(users_changed=3, selected=6) == job.counts
        assert ["u1", "u1", "u2", "u2", "u3", "u3"] == [
            c.change.user_id for c in store.job_changes("j1")
        ]
        assert [] == list(store.job_skips("j1"))

    def test_a_user_removed_before_a_push_starts_is_not_in_its_roster(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1", "u2"))
        old = store.start_job(_job("j1", "t1"))
        store.remove_users("t1", ["u1"])  # skipped by j1 if it ever ran, but it is superseded

        job = _run(store, store.start_job(_job("j2", "t1")))

        assert JobStatus.SUPERSEDED is store.get_job(old.id).status
        assert (1, 1, PushCounts(users_changed=1, selected=2)) == (
            job.total,
            job.processed,
            job.counts,
        )
        assert [] == list(store.job_skips("j2"))

    def test_a_removal_after_a_push_finished_leaves_its_record_alone(self, store: Store) -> None:
        store.add_tenant(_team("t1", "u1", "u2"))
        done = store.finish_job(_run(store, store.start_job(_job("j1", "t1"))).id, _START)

        store.remove_users("t1", ["u1"])

        assert done == store.get_job("j1")
        assert [] == list(store.job_skips("j1"))
        assert 4 == len(list(store.job_changes("j1")))

    def test_batches_with_removals_equal_the_rule_on_random_tenants(self, store: Store) -> None:
        """Differential property (R14 with R3-R5, R7, R9, R15-R17): with Users removed, some
        added again, between batches, each batch of a push in any mode equals `jobs.decide`
        over its roster entries as they are when it runs: the stored User, or `jobs.Removed`
        for one removed since the start."""
        pytest.importorskip("hypothesis")
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        from labelsync.testing.strategies import defaults, tenants

        fresh = (f"directory-{n}" for n in itertools.count())

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.data(), tenants(max_users=8, max_stale=1), defaults(), st.integers(1, 4))
        def batches_equal_the_rule(
            data: st.DataObject, tenant: Tenant, pushed: Defaults, limit: int
        ) -> None:
            tenant = attrs.evolve(tenant, id=next(fresh), last_push=None)
            store.add_tenant(tenant)
            # R15-R17: any push mode, with the tenant's locks; flips stamped by the job.
            mode = data.draw(st.sampled_from(PushMode))
            new_job = _job(next(fresh), tenant.id, pushed)
            job = store.start_job(attrs.evolve(new_job, mode=mode, locked=tenant.locked))
            roster = [user.id for user in tenant.users]
            gone: set[str] = set()
            expected_changes: list[StoredChange] = []
            expected_skips: list[Skip] = []
            expected_counts = PushCounts()
            done = 0
            while not job.roster_done:
                alive = [i for i in roster[done:] if i not in gone]
                removing: list[str] = []
                if alive:
                    removing = data.draw(st.lists(st.sampled_from(alive), unique=True, max_size=2))
                store.remove_users(tenant.id, removing)
                gone.update(removing)
                again = data.draw(st.sampled_from(sorted(gone))) if gone else None
                # Back as a new User, outside this push's roster (R6), unless back already.
                if (
                    again is not None
                    and data.draw(st.booleans())
                    and not store.get_users(tenant.id, [again])
                ):
                    store.add_user(tenant.id, _member(again))
                window = roster[done : done + limit]
                stored = {u.id: u for u in store.get_users(tenant.id, window)}
                entries: Sequence[User | jobs.Removed] = [
                    jobs.Removed(i) if i in gone else stored[i] for i in window
                ]
                want = jobs.decide_job(entries, job)
                job = _batch(store, store.get_job(job.id), limit)
                done += len(window)
                expected_changes += want.changes
                expected_skips += want.skips
                expected_counts += want.counts
                after = {u.id: u for u in store.get_users(tenant.id, window)}
                for user, _ in want.writes:
                    assert user == after[user.id]
                assert (done, expected_counts) == (job.processed, job.counts)
            assert expected_changes == list(store.job_changes(job.id))
            assert expected_skips == list(store.job_skips(job.id))

        batches_equal_the_rule()
