"""The store contract of version 2's audiences and presets (R20, R21).

`AudienceContract` (groups kept, narrowed rosters, members only) and
`PresetContract` (a tenant's presets stored with compare-and-set and an
audit trail) are bases of `labelsync.testing.conformance.StoreContract`,
so a host that runs the conformance suite runs these tests too; it can also be
subclassed on its own with the same ``store`` fixture.
"""

from __future__ import annotations

import datetime as dt
import itertools

import attrs
import pytest

from labelsync.audience import Audience
from labelsync.changes import Skip
from labelsync.exceptions import UnknownTenant
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.policy import PushMode
from labelsync.ports import JobStatus, PushJob, Store, StoredChange
from labelsync.presets import Preset, PresetAction, PresetBook, PresetEvent
from labelsync.rules import apply_defaults

__all__ = ["AudienceContract", "PresetContract"]

_START = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
_BOTH = Defaults(inbox=True, sent=True)
_LABELS = (
    Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX),
    Label(id="SENT", name="Sent", system=SystemLabel.SENT),
)


def _member(user_id: str, *groups: str, mailbox: bool = True) -> User:
    address = f"{user_id}@acme.test"
    return User(
        id=user_id,
        email=address,
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=Mailbox(provider=Provider.GMAIL, address=address, labels=_LABELS)
        if mailbox
        else None,
        groups=frozenset(groups),
    )


def _teams() -> Tenant:
    """Six Users: sales (u1, u4), support (u2, u5), both (u3), none (u6, without a mailbox)."""
    return Tenant(
        id="teams",
        name="Teams",
        users=(
            _member("u1", "sales"),
            _member("u2", "support"),
            _member("u3", "sales", "support"),
            _member("u4", "sales"),
            _member("u5", "support"),
            _member("u6", mailbox=False),
        ),
    )


def _job(job_id: str, tenant_id: str, audience: Audience, defaults: Defaults = _BOTH) -> PushJob:
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id="admin",
        defaults=defaults,
        status=JobStatus.PENDING,
        started_at=_START,
        audience=audience,
    )


def _run(store: Store, job: PushJob, limit: int = 2) -> PushJob:
    """Every batch of `job`, each of at most `limit` Users, then finish it."""
    while not job.roster_done:
        result = store.run_batch(job.id, after=job.cursor, limit=limit)
        assert isinstance(result, PushJob), f"run_batch should have written, got {result!r}"
        job = result
    return store.finish_job(job.id, _START + dt.timedelta(minutes=1))


def _touched(store: Store, job_id: str) -> list[str]:
    ids = [c.change.user_id for c in store.job_changes(job_id)]
    ids += [s.user_id for s in store.job_skips(job_id)]
    return sorted(set(ids))


class AudienceContract:
    """Groups and narrowed rosters (R20) as pytest tests; needs a ``store`` fixture."""

    def test_groups_round_trip_through_add_tenant_add_user_and_save_users(
        self, store: Store
    ) -> None:
        store.add_tenant(_teams())
        store.add_user("teams", _member("u7", "Vertrieb", "team 7"))
        u1 = store.get_user("teams", "u1")
        moved = attrs.evolve(u1.with_selection(LabelSet(["INBOX"])), groups=frozenset({"ops"}))
        assert () == store.save_users("teams", [(moved, u1.version)])

        assert frozenset({"ops"}) == store.get_user("teams", "u1").groups
        assert frozenset({"Vertrieb", "team 7"}) == store.get_user("teams", "u7").groups
        assert [*_teams().users[1:], store.get_user("teams", "u7")] == list(
            store.get_tenant("teams").users[1:]
        )

    def test_a_push_to_a_group_has_its_members_as_roster_and_touches_only_them(
        self, store: Store
    ) -> None:
        """R20, R6: `total` counts the members at the start; nobody else is read or written."""
        store.add_tenant(_teams())
        job = store.start_job(_job("j1", "teams", Audience.groups({"sales"})))
        assert (3, JobStatus.PENDING) == (job.total, job.status)
        assert Audience.groups({"sales"}) == store.get_job("j1").audience

        done = _run(store, job)

        assert (3, 3) == (done.processed, done.counts.users_changed)
        assert ["u1", "u3", "u4"] == _touched(store, "j1")
        tenant = store.get_tenant("teams")
        assert {"u1": 1, "u3": 1, "u4": 1} == {u.id: u.version for u in tenant.users if u.version}
        assert tenant.last_push is not None
        assert (Audience.groups({"sales"}), 3) == (
            tenant.last_push.audience,
            tenant.last_push.roster_size,
        )

    def test_a_push_to_listed_users_touches_only_them(self, store: Store) -> None:
        store.add_tenant(_teams())
        job = store.start_job(_job("j1", "teams", Audience.users(["u5", "u2", "u6"])))
        assert 3 == job.total

        done = _run(store, job, limit=1)

        assert ["u2", "u5", "u6"] == _touched(store, "j1")
        assert PushCounts(users_changed=2, selected=4, no_mailbox=1) == done.counts
        assert Audience.users(["u2", "u5", "u6"]) == store.list_jobs("teams")[0].audience

    def test_members_who_join_after_the_start_are_not_in_the_roster(self, store: Store) -> None:
        """R6 for audiences: a User added to the group after the start is not pushed to."""
        store.add_tenant(_teams())
        job = store.start_job(_job("j1", "teams", Audience.groups({"support"})))
        store.add_user("teams", _member("u7", "support"))
        u1 = store.get_user("teams", "u1")
        joined = attrs.evolve(u1, groups=frozenset({"support"}), version=u1.version + 1)
        assert () == store.save_users("teams", [(joined, u1.version)])

        done = _run(store, job)

        assert (3, 3) == (done.total, done.processed)
        assert ["u2", "u3", "u5"] == _touched(store, "j1")

    def test_a_member_removed_beside_an_outsider_is_skipped_and_the_outsider_left_alone(
        self, store: Store
    ) -> None:
        """R20 with R14: a batch's stretch of the roster holding as many stored Users as it
        has members is not thereby all members: here a member (u3) was removed and an
        outsider (u2) sits in the stretch."""
        tenant = Tenant(
            id="teams",
            name="Teams",
            users=(
                _member("u1", "sales"),
                _member("u2"),
                _member("u3", "sales"),
                _member("u4", "sales"),
            ),
        )
        store.add_tenant(tenant)
        job = store.start_job(_job("j1", "teams", Audience.groups({"sales"})))
        assert ("u3",) == store.remove_users("teams", ["u3"])

        done = _run(store, job, limit=3)

        assert (3, 2, 1) == (done.processed, done.counts.users_changed, done.counts.user_removed)
        assert ["u1", "u3", "u4"] == _touched(store, "j1")
        assert 0 == store.get_user("teams", "u2").version

    def test_a_narrowed_push_leaves_the_tenants_checkboxes_alone(self, store: Store) -> None:
        """The tenant's checkbox settings are the defaults for everyone (R11); a push to a
        group does not change them, a push to everyone does."""
        store.add_tenant(attrs.evolve(_teams(), defaults=Defaults(inbox=False, sent=False)))
        _run(store, store.start_job(_job("j1", "teams", Audience.groups({"sales"}))))
        assert Defaults(inbox=False, sent=False) == store.settings("teams").defaults

        _run(store, store.start_job(_job("j2", "teams", Audience.everyone())))
        assert _BOTH == store.settings("teams").defaults

    def test_a_group_nobody_holds_gives_an_empty_roster(self, store: Store) -> None:
        store.add_tenant(_teams())
        job = store.start_job(_job("j1", "teams", Audience.groups({"nobody"})))

        assert (0, True) == (job.total, job.roster_done)
        assert [] == _touched(store, "j1")
        assert 0 == _run(store, job).processed

    def test_a_push_to_everyone_is_unchanged_by_groups(self, store: Store) -> None:
        store.add_tenant(_teams())
        job = store.start_job(_job("j1", "teams", Audience.everyone()))

        done = _run(store, job, limit=4)

        assert (6, 6) == (done.total, done.processed)
        assert Audience.everyone() == done.audience

    def test_narrowed_batches_equal_apply_defaults_with_the_audience(self, store: Store) -> None:
        """Differential property (R20 with R3-R7, R9, R15-R17): a narrowed job's batches, in
        any push mode and with the tenant's locks, run by a fresh runner from the stored
        checkpoint, end where ``apply_defaults(..., mode=, audience=)`` ends, with the same
        Users (provenance included), changes, skips and counts, on random tenants (needs
        hypothesis)."""
        pytest.importorskip("hypothesis")
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        from labelsync.testing.strategies import audiences, defaults, tenants

        fresh_ids = (f"audience-{n}" for n in itertools.count())

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            st.data(),
            tenants(max_users=8, max_stale=1),
            defaults(),
            st.integers(1, 3),
            st.sampled_from(PushMode),
        )
        def narrowed_batches_equal_the_rule(
            data: st.DataObject, tenant: Tenant, pushed: Defaults, limit: int, mode: PushMode
        ) -> None:
            tenant = attrs.evolve(tenant, id=next(fresh_ids), last_push=None)
            audience = data.draw(audiences(tuple(u.id for u in tenant.users)))
            store.add_tenant(tenant)
            new_job = _job(next(fresh_ids), tenant.id, audience, pushed)
            job = store.start_job(attrs.evolve(new_job, mode=mode, locked=tenant.locked))
            want, changes = apply_defaults(
                tenant, pushed, mode=mode, stamp=job.stamp, audience=audience
            )
            assert changes.users == job.total
            while not job.roster_done:
                result = store.run_batch(job.id, after=job.cursor, limit=limit)
                assert isinstance(result, PushJob)
                job = store.get_job(job.id)
            version = {user.id: user.version for user in want.users}
            assert list(want.users) == list(store.get_tenant(tenant.id).users)
            assert [StoredChange(c, version[c.user_id]) for c in changes.changed] == list(
                store.job_changes(job.id)
            )
            expected_skips: list[Skip] = list(changes.skipped)
            assert expected_skips == list(store.job_skips(job.id))
            assert (changes.users, changes.counts()) == (job.processed, job.counts)

        narrowed_batches_equal_the_rule()


def _event(book: PresetBook, action: PresetAction, name: str) -> PresetEvent:
    return PresetEvent(
        action=action, actor_id="admin", at=_START, preset=name, version=book.version
    )


class PresetContract:
    """A tenant's presets (R21) as pytest tests; needs a ``store`` fixture."""

    def test_a_tenant_starts_with_an_empty_preset_book(self, store: Store) -> None:
        store.add_tenant(_teams())

        assert PresetBook() == store.get_presets("teams")
        assert [] == store.preset_events("teams")

    def test_presets_round_trip_with_their_trail_in_order(self, store: Store) -> None:
        store.add_tenant(_teams())
        sales = Preset(
            name="Sales ✉",
            defaults=_BOTH,
            locks=frozenset({SystemLabel.SENT}),
            mode=PushMode.KEEP_USER_CHOICES,
        )
        first = PresetBook().creating(sales)
        assigned = first.assigning("sales", "Sales ✉").assigning("Vertrieb", "Sales ✉", position=0)
        second = attrs.evolve(assigned, version=first.version + 1)  # both in one saved edit

        assert store.save_presets("teams", first, _event(first, PresetAction.CREATED, "Sales ✉"))
        assert store.save_presets("teams", second, _event(second, PresetAction.ASSIGNED, "Sales ✉"))

        assert second == store.get_presets("teams")
        assert [(PresetAction.CREATED, 1), (PresetAction.ASSIGNED, 2)] == [
            (e.action, e.version) for e in store.preset_events("teams")
        ]
        assert _event(second, PresetAction.ASSIGNED, "Sales ✉") == store.preset_events("teams")[1]

    def test_a_book_saved_over_a_newer_one_is_refused_and_stores_nothing(
        self, store: Store
    ) -> None:
        """Compare-and-set: of two admins' edits of the same version, one is stored."""
        store.add_tenant(_teams())
        base = PresetBook().creating(Preset(name="a", defaults=_BOTH))
        assert store.save_presets("teams", base, _event(base, PresetAction.CREATED, "a"))
        mine = base.creating(Preset(name="b", defaults=_BOTH))
        theirs = base.creating(Preset(name="c", defaults=_BOTH))
        assert store.save_presets("teams", theirs, _event(theirs, PresetAction.CREATED, "c"))

        assert not store.save_presets("teams", mine, _event(mine, PresetAction.CREATED, "b"))
        assert theirs == store.get_presets("teams")
        assert ["a", "c"] == [e.preset for e in store.preset_events("teams")]

    def test_presets_are_kept_per_tenant(self, store: Store) -> None:
        store.add_tenant(_teams())
        store.add_tenant(attrs.evolve(_teams(), id="other"))
        book = PresetBook().creating(Preset(name="a", defaults=_BOTH))
        assert store.save_presets("teams", book, _event(book, PresetAction.CREATED, "a"))

        assert PresetBook() == store.get_presets("other")
        assert [] == store.preset_events("other")

    def test_presets_of_an_unknown_tenant_raise_unknown_tenant(self, store: Store) -> None:
        book = PresetBook().creating(Preset(name="a", defaults=_BOTH))
        with pytest.raises(UnknownTenant):
            store.get_presets("nope")
        with pytest.raises(UnknownTenant):
            store.save_presets("nope", book, _event(book, PresetAction.CREATED, "a"))
        with pytest.raises(UnknownTenant):
            store.preset_events("nope")
