"""The admin-policy part of the `Store` contract (R15-R19), inherited by `StoreContract`.

Provenance and covered Users kept exactly, covered never undone by a stale
write, locks, and reverts recorded once. Not used on its own: subclass
`labelsync.testing.conformance.StoreContract`, which runs these tests too.
"""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from labelsync._provenance import LabelOrigin, Origin, Provenance
from labelsync.exceptions import AlreadyReverted, UnknownJob, UnknownTenant
from labelsync.jobs import JobStatus, PushJob, RevertJob
from labelsync.model import (
    Defaults,
    LabelSet,
    Locks,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.policy import PushMode
from labelsync.ports import Store
from labelsync.providers import gmail_label

__all__ = ["PolicyContract"]

_T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
_BOTH = Defaults(inbox=True, sent=True)
_UNKNOWN = Provenance()


def _person(user_id: str, provenance: Provenance = _UNKNOWN) -> User:
    labels = (gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent"))
    return User(
        id=user_id,
        email=f"{user_id}@acme.test",
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=Mailbox(provider=Provider.GMAIL, address=f"{user_id}@acme.test", labels=labels),
        synced=LabelSet(["INBOX"]),
        provenance=provenance,
    )


_EVERY_PROVENANCE = (
    Provenance(),
    Provenance(covered=True),
    Provenance(
        inbox=LabelOrigin(origin=Origin.PUSH, job_id="j-1", at=_T0),
        sent=LabelOrigin(origin=Origin.USER, at=_T0 + dt.timedelta(hours=2)),
        covered=True,
    ),
    Provenance(
        inbox=LabelOrigin(origin=Origin.ONBOARDING, job_id="j-2", at=_T0),
        sent=LabelOrigin(origin=Origin.REVERT, job_id="r-1", at=_T0),
    ),
    Provenance(inbox=LabelOrigin(origin=Origin.RESET, at=_T0), sent=LabelOrigin()),
)


def _job(job_id: str, tenant_id: str) -> PushJob:
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id="admin",
        defaults=_BOTH,
        status=JobStatus.PENDING,
        started_at=_T0,
        mode=PushMode.KEEP_USER_CHOICES,
        locked=frozenset({SystemLabel.SENT}),
    )


def _revert(revert_id: str, job_id: str, tenant_id: str = "t1") -> RevertJob:
    return RevertJob(
        id=revert_id, tenant_id=tenant_id, push_job_id=job_id, actor_id="admin", started_at=_T0
    )


def _finish(store: Store, job: PushJob) -> PushJob:
    while not job.roster_done:
        result = store.run_batch(job.id, after=job.cursor, limit=100)
        assert isinstance(result, PushJob)
        job = result
    return store.finish_job(job.id, _T0 + dt.timedelta(minutes=5))


class PolicyContract:
    """Store tests of admin policy (R15-R19); `StoreContract` inherits them."""

    def test_every_provenance_round_trips(self, store: Store) -> None:
        """R15: each origin, job id, time and the covered mark come back exactly."""
        users = tuple(_person(f"u{n}", p) for n, p in enumerate(_EVERY_PROVENANCE))
        store.add_tenant(Tenant(id="t1", name="Acme", users=users))
        assert users == store.get_tenant("t1").users
        changed = attrs.evolve(users[0].with_selection(LabelSet()), provenance=_EVERY_PROVENANCE[2])
        assert () == store.save_users("t1", [(changed, users[0].version)])
        assert changed == store.get_user("t1", "u0")

    def test_a_write_read_before_a_user_was_covered_does_not_uncover_them(
        self, store: Store
    ) -> None:
        """R16: marking a User covered moves no version, so the store keeps it covered."""
        user = _person("u1")
        store.add_tenant(Tenant(id="t1", name="Acme", users=(user,)))
        covered = attrs.evolve(user, provenance=Provenance(covered=True))
        assert () == store.save_users("t1", [(covered, user.version)])
        stale = user.with_selection(LabelSet())  # read before, written after
        assert () == store.save_users("t1", [(stale, user.version)])
        stored = store.get_user("t1", "u1")
        assert (frozenset(), True) == (stored.synced.ids, stored.provenance.covered)

    def test_a_job_keeps_its_mode_locks_and_kept_count(self, store: Store) -> None:
        """R16, R17: the job as stored and run names its mode and the labels locked at start."""
        mine = Provenance(sent=LabelOrigin(origin=Origin.USER, at=_T0))
        user = attrs.evolve(_person("u1", mine), synced=LabelSet(["SENT"]))
        store.add_tenant(Tenant(id="t1", name="Acme", users=(user, _person("u2", mine))))
        job = store.start_job(attrs.evolve(_job("j1", "t1"), locked=frozenset()))
        assert (PushMode.KEEP_USER_CHOICES, frozenset()) == (job.mode, job.locked)
        done = _finish(store, job)
        # u2's own Sent (off) is kept; u1's Sent was already on.
        assert 1 == done.counts.user_choice_kept
        assert done == store.get_job("j1")
        locked = store.start_job(_job("j2", "t1"))
        assert frozenset({SystemLabel.SENT}) == store.get_job(locked.id).locked

    def test_locks_are_kept_with_who_and_when_and_can_be_cleared(self, store: Store) -> None:
        """R17: the locks and their audit; clearing leaves every other setting alone."""
        store.add_tenant(Tenant(id="t1", name="Acme", defaults=_BOTH))
        locks = Locks(labels=frozenset({SystemLabel.INBOX}), actor_id="admin", at=_T0)
        store.save_locks("t1", locks)
        assert locks == store.settings("t1").locks == store.get_tenant("t1").locks
        assert _BOTH == store.settings("t1").defaults
        store.save_locks("t1", None)
        assert None is store.settings("t1").locks
        with pytest.raises(UnknownTenant):
            store.save_locks("nope", locks)

    def test_a_push_is_reverted_once(self, store: Store) -> None:
        """R19: a DONE revert makes a second one raise AlreadyReverted, writing nothing."""
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_person("u1"),)))
        job = _finish(store, store.start_job(_job("j1", "t1")))
        started = store.start_revert(_revert("r1", job.id))
        assert [started] == store.list_reverts("t1")
        again = store.start_revert(_revert("r2", job.id))  # an unfinished revert resumes
        assert "r1" == again.id
        done = attrs.evolve(
            started, status=JobStatus.DONE, finished_at=_T0, users_restored=1, labels_restored=2
        )
        assert done == store.finish_revert(done, defaults=None, last_push=None)
        with pytest.raises(AlreadyReverted):
            store.start_revert(_revert("r3", job.id))
        with pytest.raises(AlreadyReverted):
            store.finish_revert(done, defaults=None, last_push=None)
        assert [done] == store.list_reverts("t1") == store.list_reverts()
        assert [] == store.list_reverts("t2")

    def test_a_revert_of_the_latest_push_restores_defaults_and_last_push_at_once(
        self, store: Store
    ) -> None:
        """R19: with `restored_defaults`, the tenant's settings change with the revert's record."""
        store.add_tenant(Tenant(id="t1", name="Acme", users=(_person("u1"),)))
        job = _finish(store, store.start_job(_job("j1", "t1")))
        earlier = PushRecord(
            job_id="j0",
            actor_id="admin",
            defaults=Defaults(inbox=True, sent=False),
            started_at=_T0,
            finished_at=_T0,
            roster_size=1,
            counts=PushCounts(),
        )
        started = store.start_revert(_revert("r1", job.id))
        done = attrs.evolve(started, status=JobStatus.DONE, finished_at=_T0, restored_defaults=True)
        store.finish_revert(done, defaults=earlier.defaults, last_push=earlier)
        settings = store.settings("t1")
        assert (earlier.defaults, earlier) == (settings.defaults, settings.last_push)

    def test_a_revert_of_an_unknown_push_raises_unknown_job(self, store: Store) -> None:
        store.add_tenant(Tenant(id="t1", name="Acme"))
        with pytest.raises(UnknownJob):
            store.start_revert(_revert("r1", "nope"))
        assert [] == store.list_reverts()
