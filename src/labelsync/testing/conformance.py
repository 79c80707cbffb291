"""A conformance suite for the `labelsync.ports.Store` contract, to run against any Store.

labelsync runs it against its own stores; a host application runs it against
its adapter. Subclass `StoreContract` in a test module, under a name pytest
collects (``Test...``), and give it a ``store`` fixture that yields a fresh,
empty store and releases it afterwards::

    from collections.abc import Iterator

    import pytest

    from labelsync.testing.conformance import StoreContract
    from myapp.store import PostgresStore


    class TestPostgresStore(StoreContract):
        @pytest.fixture
        def store(self) -> Iterator[PostgresStore]:
            with PostgresStore.connect(DSN, schema="test_fresh") as store:
                yield store

Every test method is inherited, so the class body needs nothing else. Only
pytest is required; the property tests also use hypothesis and are skipped
without it. One of them is the differential test of a store's batches: on
random tenants (stale ids, missing labels, no mailbox), with Users edited
between batches and the job resumed by a fresh runner, every batch a store runs
must equal `apply_defaults` over the batch's Users as they were when it ran.
Each test cites the clause of `Store`'s docstrings (or the rule) it checks;
where the docstrings leave a choice open, the test's docstring says which
reading labelsync's own stores follow.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence

import attrs
import pytest

from labelsync.changes import LabelChange, Skip
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    JobSuperseded,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.policy import PushMode
from labelsync.ports import (
    JobStatus,
    PushJob,
    StaleCheckpoint,
    Store,
    StoredChange,
    TenantSettings,
)
from labelsync.rules import apply_defaults
from labelsync.testing.audiences import AudienceContract, PresetContract
from labelsync.testing.directory_conformance import DirectoryContract
from labelsync.testing.input_policy import InputPolicyContract
from labelsync.testing.policy_conformance import PolicyContract

__all__ = ["DirectoryContract", "StoreContract", "commit_all", "run_next"]

# -- values the tests build on ----------------------------------------------------

_START = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
_CEST = dt.timezone(dt.timedelta(hours=2))

INBOX = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
SENT = Label(id="SENT", name="Sent", system=SystemLabel.SENT)
PROJECT = Label(id="Label_7", name="Project X", system=None)

BOTH = Defaults(inbox=True, sent=True)
NEITHER = Defaults(inbox=False, sent=False)


def _at(minutes: int) -> dt.datetime:
    return _START + dt.timedelta(minutes=minutes)


def _gmail(address: str) -> Mailbox:
    return Mailbox(provider=Provider.GMAIL, address=address, labels=(INBOX, SENT, PROJECT))


def _user(
    user_id: str,
    *,
    email: str | None = None,
    mailbox: bool = True,
    synced: Sequence[str] = (),
    version: int = 0,
) -> User:
    """A Gmail User (or one with no mailbox) whose email defaults to ``<id>@acme.test``."""
    address = email or f"{user_id}@acme.test"
    return User(
        id=user_id,
        email=address,
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=_gmail(address) if mailbox else None,
        synced=LabelSet(synced),
        version=version,
    )


def _stamped(user: User, job: PushJob, *labels: SystemLabel) -> User:
    """`user` as a push of `job` leaves it (R15): `labels` set by the job, and covered."""
    provenance = attrs.evolve(user.provenance, covered=True)
    for label in labels:
        provenance = provenance.setting(label, job.stamp)
    return attrs.evolve(user, provenance=provenance)


def _tenant(tenant_id: str, *user_ids: str, domain: str = "acme.test") -> Tenant:
    return Tenant(
        id=tenant_id,
        name=f"Tenant {tenant_id}",
        users=tuple(_user(u, email=f"{u}@{domain}") for u in user_ids),
    )


def _every_kind_of_user() -> tuple[User, ...]:
    """Users covering every value a store must keep exactly, label flags included."""
    outlook = Mailbox(
        provider=Provider.MICROSOFT,
        address="jürgen@beispiel.de",
        labels=(
            Label(id="AAMk-inbox", name="Posteingang", system=SystemLabel.INBOX),
            Label(id="AAMk-sent", name="Gesendete Elemente", system=SystemLabel.SENT),
            Label(id="AAMk-7", name='Projekt "Ä" / 2024 ✉', system=None),
            Label(id="AAMk-8", name="Conversation History", hidden=True),
        ),
    )
    imap_guessed_sent = Mailbox(
        provider=Provider.IMAP,
        address="f@imap.test",
        labels=(
            Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX),
            Label(id="Gesendet", name="Gesendet", system=SystemLabel.SENT, guessed=True),
        ),
    )
    imap_without_sent = Mailbox(
        provider=Provider.IMAP, address="c@imap.test", labels=(Label(id="INBOX", name="INBOX"),)
    )
    imap_inbox = Mailbox(
        provider=Provider.IMAP,
        address="d@imap.test",
        labels=(Label(id="INBOX", name="INBOX", system=SystemLabel.INBOX),),
    )
    return (
        User(
            id="admin",
            email="admin@acme.test",
            permissions=frozenset({Permission.ADMIN_ACCESS, Permission.EMAIL_SYNC}),
            mailbox=_gmail("admin@acme.test"),
            synced=LabelSet(["INBOX", "Label_7", "Label_deleted_at_gmail"]),
            version=7,
        ),
        User(
            id="no-mailbox",
            email="nobox@acme.test",
            permissions=frozenset(),
            mailbox=None,
            synced=LabelSet(["INBOX", "from-a-disconnected-mailbox"]),
            version=2,
        ),
        User(id="jürgen", email="jürgen@beispiel.de", mailbox=outlook, synced=LabelSet()),
        User(id="imap-no-sent", email="c@imap.test", mailbox=imap_without_sent),
        User(
            id="imap",
            email="d@imap.test",
            mailbox=imap_inbox,
            synced=LabelSet(["INBOX"]),
            version=10_000,
        ),
        User(
            id="empty-mailbox",
            email="e@other.test",
            mailbox=Mailbox(provider=Provider.OTHER, address="e@other.test", labels=()),
        ),
        User(id="imap-guessed-sent", email="f@imap.test", mailbox=imap_guessed_sent),
    )


def _new_job(
    job_id: str, tenant_id: str, *, defaults: Defaults = BOTH, minutes: int = 0
) -> PushJob:
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id="admin",
        defaults=defaults,
        status=JobStatus.PENDING,
        started_at=_at(minutes),
    )


def run_next(store: Store, job: PushJob, *, limit: int = 100) -> PushJob:
    """Run the next batch of `job` from its checkpoint; it must write. Returns the job after it."""
    result = store.run_batch(job.id, after=job.cursor, limit=limit)
    assert isinstance(result, PushJob), f"run_batch should have written, got {result!r}"
    return result


def commit_all(store: Store, job: PushJob, *, limit: int = 100) -> PushJob:
    """Run every remaining batch of `job` (each must write); returns the job after the last."""
    while not job.roster_done:
        job = run_next(store, job, limit=limit)
    return job


Snapshot = tuple[list[Tenant], list[PushJob], list[tuple[list[StoredChange], list[Skip]]]]


def _snapshot(store: Store) -> Snapshot:
    """Everything a store lets a caller see, to compare before and after a call."""
    tenants = [store.get_tenant(tenant_id) for tenant_id in store.tenant_ids()]
    jobs = store.list_jobs()
    trail = [(list(store.job_changes(job.id)), list(store.job_skips(job.id))) for job in jobs]
    return tenants, jobs, trail


def _seed(store: Store) -> PushJob:
    """Two tenants with the same user ids, a finished push and a pending one on t1."""
    store.add_tenant(_tenant("t1", "u1", "u2", "u3"))
    store.add_tenant(_tenant("t2", "u1", "u2", domain="globex.test"))
    done = commit_all(store, store.start_job(_new_job("j1", "t1", minutes=0)))
    store.finish_job(done.id, _at(1))
    return store.start_job(_new_job("j2", "t1", defaults=NEITHER, minutes=2))


Call = Callable[[Store], object]

_UNKNOWN_TENANT_CALLS: dict[str, Call] = {
    "get_tenant": lambda s: s.get_tenant("nope"),
    "settings": lambda s: s.settings("nope"),
    "save_defaults": lambda s: s.save_defaults("nope", BOTH),
    "save_onboarding": lambda s: s.save_onboarding("nope", True),
    "add_user": lambda s: s.add_user("nope", _user("u9")),
    "get_user": lambda s: s.get_user("nope", "u1"),
    "get_users": lambda s: s.get_users("nope", ["u1"]),
    "save_users": lambda s: s.save_users("nope", [(_user("u1", version=1), 0)]),
    "start_job": lambda s: s.start_job(_new_job("j9", "nope")),
}

_UNKNOWN_JOB_CALLS: dict[str, Call] = {
    "get_job": lambda s: s.get_job("nope"),
    "run_batch": lambda s: s.run_batch("nope", after=0, limit=10),
    "finish_job": lambda s: s.finish_job("nope", _at(9)),
    "job_changes": lambda s: s.job_changes("nope"),
    "job_skips": lambda s: s.job_skips("nope"),
}


class StoreContract(
    InputPolicyContract, PolicyContract, AudienceContract, PresetContract, DirectoryContract
):
    """The `Store` contract as pytest tests; subclass it and define a ``store`` fixture.

    Version 2's contracts are inherited from their own classes
    (`labelsync.testing.audiences`: `AudienceContract` for groups and narrowed
    rosters, `PresetContract` for presets and their trail; `DirectoryContract` for
    adding and removing Users, R13, R14).

    The fixture must yield a fresh, empty store (no tenants, no jobs) for each
    test and close it afterwards. See the module docstring for an example.
    """

    # -- tenants: add_tenant, tenant_ids, get_tenant -------------------------------

    def test_a_new_store_has_no_tenants_and_no_jobs(self, store: Store) -> None:
        assert [] == store.tenant_ids()
        assert [] == store.list_jobs()

    def test_a_tenant_comes_back_with_its_users_in_roster_order(self, store: Store) -> None:
        tenant = _tenant("t1", "zoe", "adam", "mia")

        store.add_tenant(tenant)

        assert tenant == store.get_tenant("t1")
        assert ["zoe", "adam", "mia"] == [u.id for u in store.get_tenant("t1").users]

    def test_every_kind_of_user_value_round_trips(self, store: Store) -> None:
        """No mailbox, custom and localised labels, stale ids, versions, any permissions."""
        users = _every_kind_of_user()
        store.add_tenant(Tenant(id="t1", name="Société Générale", users=users))

        assert users == store.get_tenant("t1").users
        assert list(users) == [store.get_user("t1", u.id) for u in users]

    def test_every_kind_of_user_value_round_trips_through_add_and_save(self, store: Store) -> None:
        users = _every_kind_of_user()
        store.add_tenant(Tenant(id="t1", name="Acme"))
        for user in users:
            store.add_user("t1", attrs.evolve(user, synced=LabelSet(), version=0))

        assert () == store.save_users("t1", [(user, 0) for user in users])
        assert users == store.get_tenant("t1").users

    def test_tenant_settings_round_trip(self, store: Store) -> None:
        tenant = Tenant(id="t1", name="Acme", defaults=Defaults(inbox=True, sent=False))
        tenant = attrs.evolve(tenant, onboard_new_users=True)

        store.add_tenant(tenant)

        assert tenant == store.get_tenant("t1")

    def test_settings_are_the_tenant_without_its_users(self, store: Store) -> None:
        _seed(store)
        tenant = store.get_tenant("t1")

        assert TenantSettings(
            id="t1",
            name=tenant.name,
            defaults=tenant.defaults,
            onboard_new_users=tenant.onboard_new_users,
            last_push=tenant.last_push,
        ) == store.settings("t1")

    def test_tenant_ids_are_sorted(self, store: Store) -> None:
        for tenant_id in ("globex", "acme", "Zeta", "initech"):
            store.add_tenant(_tenant(tenant_id))

        assert ["Zeta", "acme", "globex", "initech"] == store.tenant_ids()

    def test_adding_a_taken_tenant_id_raises_already_exists_and_keeps_the_stored_one(
        self, store: Store
    ) -> None:
        _seed(store)
        before = _snapshot(store)

        with pytest.raises(AlreadyExists) as raised:
            store.add_tenant(Tenant(id="t1", name="Impostor", users=(_user("u9"),)))

        assert "t1" == raised.value.value
        assert before == _snapshot(store)

    def test_generated_tenants_round_trip(self, store: Store) -> None:
        """Property: any tenant the shared strategies draw comes back equal (needs hypothesis)."""
        pytest.importorskip("hypothesis")
        from hypothesis import HealthCheck, given, settings

        from labelsync.testing.strategies import tenants

        fresh_ids = (f"generated-{n}" for n in itertools.count())

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(tenants(max_users=5))
        def round_trip(tenant: Tenant) -> None:
            tenant = attrs.evolve(tenant, id=next(fresh_ids))
            store.add_tenant(tenant)
            assert tenant == store.get_tenant(tenant.id)

        round_trip()

    def test_add_tenant_keeps_its_last_push_record(self, store: Store) -> None:
        """R11: a tenant brought in with a push on record (a snapshot) keeps that audit record."""
        record = PushRecord(
            job_id="imported-1",
            actor_id="admin",
            defaults=Defaults(inbox=True, sent=False),
            started_at=dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC),
            finished_at=dt.datetime(2026, 3, 1, 9, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            roster_size=7,
            counts=PushCounts(users_changed=3, selected=3, no_mailbox=1),
        )
        store.add_tenant(attrs.evolve(_tenant("t1", "u1"), last_push=record))

        assert record == store.settings("t1").last_push
        assert [] == store.list_jobs("t1")

    # -- settings ----------------------------------------------------------------

    def test_save_defaults_stores_the_checkboxes_and_leaves_onboarding_alone(
        self, store: Store
    ) -> None:
        store.add_tenant(attrs.evolve(_tenant("t1", "u1"), onboard_new_users=True))

        store.save_defaults("t1", Defaults(inbox=False, sent=True))

        tenant = store.get_tenant("t1")
        assert (Defaults(inbox=False, sent=True), True) == (
            tenant.defaults,
            tenant.onboard_new_users,
        )

    def test_save_onboarding_stores_the_switch_and_leaves_the_checkboxes_alone(
        self, store: Store
    ) -> None:
        """R11: each setting is its own field, so writing one never writes back a stale other."""
        store.add_tenant(_tenant("t1", "u1"))
        store.start_job(_new_job("j1", "t1", defaults=Defaults(inbox=True, sent=False)))

        store.save_onboarding("t1", True)

        settings = store.settings("t1")
        assert (Defaults(inbox=True, sent=False), True) == (
            settings.defaults,
            settings.onboard_new_users,
        )
        store.save_onboarding("t1", False)
        assert False is store.settings("t1").onboard_new_users

    def test_save_defaults_can_clear_the_checkboxes(self, store: Store) -> None:
        store.add_tenant(attrs.evolve(_tenant("t1", "u1"), defaults=BOTH, onboard_new_users=True))

        store.save_defaults("t1", None)

        tenant = store.get_tenant("t1")
        assert (None, True) == (tenant.defaults, tenant.onboard_new_users)

    @pytest.mark.parametrize("bad", ["yes", 1, None])
    def test_save_onboarding_refuses_anything_but_a_bool_and_changes_nothing(
        self, store: Store, bad: object
    ) -> None:
        _seed(store)
        before = _snapshot(store)

        with pytest.raises(InvalidInput) as raised:
            store.save_onboarding("t1", bad)  # type: ignore[arg-type]

        assert "enabled" == raised.value.field
        assert before == _snapshot(store)

    # -- Users: add_user, get_user, get_users -------------------------------------------

    def test_add_user_appends_to_the_end_of_the_roster(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u2", "u1"))

        store.add_user("t1", _user("u0", version=4))

        assert ["u2", "u1", "u0"] == [u.id for u in store.get_tenant("t1").users]
        assert _user("u0", version=4) == store.get_user("t1", "u0")

    def test_adding_a_taken_user_id_raises_already_exists_and_keeps_the_stored_user(
        self, store: Store
    ) -> None:
        _seed(store)
        before = _snapshot(store)

        with pytest.raises(AlreadyExists) as raised:
            store.add_user("t1", _user("u2", email="impostor@evil.test"))

        assert "u2" == raised.value.value
        assert before == _snapshot(store)

    def test_get_user_of_an_unknown_id_raises_unknown_user(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))

        with pytest.raises(UnknownUser) as raised:
            store.get_user("t1", "ghost")

        assert "ghost" == raised.value.value

    def test_get_users_keeps_the_order_given_and_leaves_out_unknown_ids(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2", "u3"))

        users = store.get_users("t1", ["u3", "ghost", "u1"])

        assert [_user("u3"), _user("u1")] == users
        assert [] == store.get_users("t1", [])

    # -- save_users: compare-and-set ------------------------------------------------------

    def test_save_users_stores_every_user_whose_version_still_matches(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2"))
        u1 = _user("u1").with_selection(LabelSet(["Label_7"]))
        u2 = _user("u2").with_selection(LabelSet(["INBOX"]))

        assert () == store.save_users("t1", [(u1, 0), (u2, 0)])

        assert (u1, u2) == store.get_tenant("t1").users

    def test_save_users_reports_users_whose_version_moved_on_and_stores_the_rest(
        self, store: Store
    ) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2", "u3"))
        edited = _user("u2").with_selection(LabelSet(["Label_7"]))
        store.save_users("t1", [(edited, 0)])
        u1, u2, u3 = (_user(u).with_selection(LabelSet(["SENT"])) for u in ("u1", "u2", "u3"))

        assert ("u2",) == store.save_users("t1", [(u1, 0), (u2, 0), (u3, 0)])

        assert (u1, edited, u3) == store.get_tenant("t1").users

    def test_save_users_reports_an_unknown_user_as_not_stored_and_adds_nobody(
        self, store: Store
    ) -> None:
        """Reading chosen: an id the tenant lacks is returned like a moved-on one."""
        store.add_tenant(_tenant("t1", "u1"))
        u1 = _user("u1").with_selection(LabelSet(["INBOX"]))

        assert ("ghost",) == store.save_users("t1", [(_user("ghost", version=1), 0), (u1, 0)])

        assert (u1,) == store.get_tenant("t1").users

    def test_save_users_keeps_roster_positions(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2", "u3"))
        job = store.start_job(_new_job("j1", "t1"))

        store.save_users("t1", [(_user("u1").with_selection(LabelSet(["INBOX"])), 0)])

        assert ["u1", "u2", "u3"] == [u.id for u in store.get_tenant("t1").users]
        # The push still walks the roster in its order: u1 (SENT only, INBOX is on), then u2.
        run_next(store, job, limit=2)
        assert ["u1", "u2", "u2"] == [s.change.user_id for s in store.job_changes("j1")]

    def test_save_users_refuses_a_user_written_twice_in_one_call_and_stores_nothing(
        self, store: Store
    ) -> None:
        """Duplicate writes: which of the two should win is not the store's to guess."""
        _seed(store)
        before = _snapshot(store)
        first = _user("u2").with_selection(LabelSet(["Label_7"]))
        second = _user("u2").with_selection(LabelSet(["SENT"]))
        version = store.get_user("t1", "u2").version

        with pytest.raises(InvalidInput) as raised:
            store.save_users(
                "t1", [(first, version), (_user("u3", version=9), 1), (second, version)]
            )

        assert ("writes[2].id", "u2") == (raised.value.field, raised.value.value)
        assert before == _snapshot(store)

    def test_save_users_of_nothing_changes_nothing(self, store: Store) -> None:
        _seed(store)
        before = _snapshot(store)

        assert () == store.save_users("t1", [])

        assert before == _snapshot(store)

    # -- unknown ids ------------------------------------------------------------------

    @pytest.mark.parametrize(
        "call", list(_UNKNOWN_TENANT_CALLS.values()), ids=list(_UNKNOWN_TENANT_CALLS)
    )
    def test_a_call_naming_an_unknown_tenant_raises_unknown_tenant_and_changes_nothing(
        self, store: Store, call: Call
    ) -> None:
        _seed(store)
        before = _snapshot(store)

        with pytest.raises(UnknownTenant) as raised:
            call(store)

        assert "nope" == raised.value.value
        assert before == _snapshot(store)

    @pytest.mark.parametrize(
        "call", list(_UNKNOWN_JOB_CALLS.values()), ids=list(_UNKNOWN_JOB_CALLS)
    )
    def test_a_call_naming_an_unknown_job_raises_unknown_job_and_changes_nothing(
        self, store: Store, call: Call
    ) -> None:
        """`job_changes`/`job_skips` raise at the call, not at the first item."""
        _seed(store)
        before = _snapshot(store)

        with pytest.raises(UnknownJob) as raised:
            call(store)

        assert "nope" == raised.value.value
        assert before == _snapshot(store)

    def test_list_jobs_of_an_unknown_tenant_is_empty(self, store: Store) -> None:
        _seed(store)

        assert [] == store.list_jobs("nope")

    # -- start_job -------------------------------------------------------------------

    def test_start_job_stores_a_pending_job_with_its_roster_fixed(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2", "u3"))
        store.add_user("t1", _user("u4", mailbox=False))

        job = store.start_job(_new_job("j1", "t1", defaults=Defaults(inbox=True, sent=False)))

        assert (JobStatus.PENDING, 4, 0, 0, PushCounts()) == (
            job.status,
            job.total,
            job.processed,
            job.cursor,
            job.counts,
        )
        assert job.roster_end > 0
        assert job == store.get_job("j1")
        assert Defaults(inbox=True, sent=False) == store.get_tenant("t1").defaults

    def test_start_job_keeps_what_the_job_says(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        started = dt.datetime(2024, 5, 1, 11, 0, 0, 123456, tzinfo=_CEST)
        job = attrs.evolve(_new_job("j1", "t1"), actor_id="admin-7", started_at=started)

        stored = store.start_job(job)

        assert (job.id, "t1", "admin-7", BOTH, started) == (
            stored.id,
            stored.tenant_id,
            stored.actor_id,
            stored.defaults,
            stored.started_at,
        )
        assert stored == store.get_job("j1")
        assert (None, None) == (stored.finished_at, stored.superseded_by)

    def test_start_job_on_a_tenant_without_users_has_an_empty_roster(self, store: Store) -> None:
        store.add_tenant(_tenant("t1"))

        job = store.start_job(_new_job("j1", "t1"))

        assert (0, 0, True) == (job.total, job.processed, job.roster_done)
        assert job == store.run_batch("j1", after=0, limit=10)  # nothing to run, nothing written

    def test_start_job_supersedes_every_unfinished_job_of_the_tenant(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2"))
        store.start_job(_new_job("pending", "t1", minutes=0))
        running = store.start_job(_new_job("running", "t1", minutes=1))
        running = run_next(store, running, limit=1)

        store.start_job(_new_job("newest", "t1", minutes=2))

        assert (JobStatus.SUPERSEDED, "running") == (
            store.get_job("pending").status,
            store.get_job("pending").superseded_by,
        )
        assert attrs.evolve(running, status=JobStatus.SUPERSEDED, superseded_by="newest") == (
            store.get_job("running")
        )
        assert JobStatus.PENDING == store.get_job("newest").status

    def test_start_job_leaves_finished_jobs_and_the_last_push_alone(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        done = store.finish_job(commit_all(store, store.start_job(_new_job("j1", "t1"))).id, _at(1))
        last_push = store.get_tenant("t1").last_push

        store.start_job(_new_job("j2", "t1", defaults=NEITHER, minutes=2))

        assert done == store.get_job("j1")
        assert last_push == store.get_tenant("t1").last_push
        assert NEITHER == store.get_tenant("t1").defaults

    def test_starting_a_job_with_a_taken_id_raises_already_exists_and_changes_nothing(
        self, store: Store
    ) -> None:
        """Job ids are unique across tenants: `get_job` takes no tenant."""
        _seed(store)
        before = _snapshot(store)

        for tenant_id in ("t1", "t2"):
            with pytest.raises(AlreadyExists) as raised:
                store.start_job(_new_job("j2", tenant_id, minutes=9))
            assert "j2" == raised.value.value

        assert before == _snapshot(store)

    # -- get_job, list_jobs -----------------------------------------------------------

    def test_list_jobs_is_newest_first_for_all_or_one_tenant(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        store.add_tenant(_tenant("t2", "u1"))
        for minutes, (job_id, tenant_id) in enumerate(
            [("a", "t1"), ("b", "t2"), ("c", "t1"), ("d", "t2"), ("e", "t1")]
        ):
            store.start_job(_new_job(job_id, tenant_id, minutes=minutes))

        assert ["e", "d", "c", "b", "a"] == [job.id for job in store.list_jobs()]
        assert ["e", "c", "a"] == [job.id for job in store.list_jobs("t1")]
        assert ["d", "b"] == [job.id for job in store.list_jobs("t2")]
        assert [store.get_job(job.id) for job in store.list_jobs()] == store.list_jobs()

    # -- run_batch --------------------------------------------------------------------

    def test_run_batch_walks_the_roster_by_increasing_position(self, store: Store) -> None:
        ids = [f"u{n}" for n in range(7)]
        store.add_tenant(_tenant("t1", *ids[:4]))
        for user_id in ids[4:]:
            store.add_user("t1", _user(user_id))
        job = store.start_job(_new_job("j1", "t1", defaults=Defaults(inbox=True, sent=False)))

        walked = []
        while not job.roster_done:
            job = run_next(store, job, limit=3)
            walked.append((job.processed, job.cursor))

        assert [3, 6, 7] == [processed for processed, _ in walked]
        cursors = [cursor for _, cursor in walked]
        assert sorted(set(cursors)) == cursors
        assert job.roster_end == cursors[-1]
        assert ids == [s.change.user_id for s in store.job_changes("j1")]
        assert job == store.run_batch("j1", after=job.cursor, limit=3)  # nothing left

    def test_users_added_after_the_job_started_are_not_in_its_roster(self, store: Store) -> None:
        """R6: the roster is the Users stored when the push started."""
        store.add_tenant(_tenant("t1", "u1", "u2"))
        job = store.start_job(_new_job("j1", "t1"))

        store.add_user("t1", _user("late"))
        job = commit_all(store, job)

        assert (2, 2) == (job.total, job.processed)
        assert _user("late") == store.get_user("t1", "late")
        assert ["u1", "u2"] == sorted({s.change.user_id for s in store.job_changes("j1")})
        later = commit_all(store, store.start_job(_new_job("j2", "t1", minutes=1)))
        assert (3, ["late", "late"]) == (
            later.total,
            [s.change.user_id for s in store.job_changes("j2")],
        )

    def test_run_batch_stores_users_changes_skips_and_moves_the_job(self, store: Store) -> None:
        imap = Mailbox(provider=Provider.IMAP, address="c@imap.test", labels=(INBOX,))
        users = (
            _user("u1", synced=["Label_7"]),
            _user("u2", mailbox=False, synced=["stale"]),
            User(id="u3", email="c@imap.test", mailbox=imap, synced=LabelSet(["INBOX"])),
        )
        store.add_tenant(Tenant(id="t1", name="Acme", users=users))
        job = store.start_job(_new_job("j1", "t1", defaults=BOTH))

        stored = run_next(store, job)

        pushed = _stamped(
            users[0].with_selection(LabelSet(["INBOX", "SENT", "Label_7"])),
            job,
            SystemLabel.INBOX,
            SystemLabel.SENT,
        )
        covered = _stamped(users[2], job)  # reached, already as checked: origin unchanged
        assert (pushed, users[1], covered) == store.get_tenant("t1").users
        assert 1 == pushed.version
        expected_job = attrs.evolve(
            job,
            status=JobStatus.RUNNING,
            cursor=job.roster_end,
            processed=3,
            counts=PushCounts(users_changed=1, selected=2, no_mailbox=1, label_missing=1),
        )
        assert expected_job == stored
        assert expected_job == store.get_job("j1")
        assert [
            StoredChange(
                change=LabelChange("u1", SystemLabel.INBOX, "INBOX", True), version_after=1
            ),
            StoredChange(change=LabelChange("u1", SystemLabel.SENT, "SENT", True), version_after=1),
        ] == list(store.job_changes("j1"))
        assert [
            Skip("u2", None, SkipReason.NO_MAILBOX),
            Skip("u3", SystemLabel.SENT, SkipReason.LABEL_MISSING),
        ] == list(store.job_skips("j1"))

    def test_successive_batches_add_up_and_keep_roster_order(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2", "u3", "u4"))
        store.add_user("t1", _user("u5", mailbox=False))
        store.save_users("t1", [(_user("u3", synced=["INBOX", "SENT"], version=1), 0)])
        job = store.start_job(_new_job("j1", "t1", defaults=Defaults(inbox=True, sent=False)))

        cursors = []
        while not job.roster_done:
            job = run_next(store, job, limit=2)
            cursors.append(job.cursor)

        assert 3 == len(cursors)
        assert (5, PushCounts(users_changed=4, selected=3, deselected=1, no_mailbox=1)) == (
            job.processed,
            job.counts,
        )
        assert [
            ("u1", SystemLabel.INBOX, True, 1),
            ("u2", SystemLabel.INBOX, True, 1),
            ("u3", SystemLabel.SENT, False, 2),
            ("u4", SystemLabel.INBOX, True, 1),
        ] == [
            (s.change.user_id, s.change.label, s.change.selected, s.version_after)
            for s in store.job_changes("j1")
        ]
        assert [Skip("u5", None, SkipReason.NO_MAILBOX)] == list(store.job_skips("j1"))

    def test_run_batch_pushes_a_user_as_edited_after_the_job_started(self, store: Store) -> None:
        """R12: a User's own edit between batches is kept; the push owns only INBOX/SENT."""
        store.add_tenant(_tenant("t1", "u1", "u2"))
        job = run_next(store, store.start_job(_new_job("j1", "t1", defaults=NEITHER)), limit=1)
        edited = _user("u2", synced=["Label_7", "INBOX"], version=3)
        store.save_users("t1", [(edited, 0)])

        run_next(store, job)

        assert _stamped(
            _user("u2", synced=["Label_7"], version=4), job, SystemLabel.INBOX
        ) == store.get_user("t1", "u2")
        assert [StoredChange(LabelChange("u2", SystemLabel.INBOX, "INBOX", False), 4)] == list(
            store.job_changes("j1")
        )

    def test_run_batch_of_a_superseded_job_raises_job_superseded_and_writes_nothing(
        self, store: Store
    ) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2"))
        old = store.start_job(_new_job("old", "t1"))
        store.start_job(_new_job("new", "t1", minutes=1))
        before = _snapshot(store)

        with pytest.raises(JobSuperseded) as raised:
            store.run_batch(old.id, after=old.cursor, limit=10)

        assert ("old", "new") == (raised.value.job_id, raised.value.by)
        assert before == _snapshot(store)

    def test_run_batch_of_a_done_job_raises_job_superseded_and_writes_nothing(
        self, store: Store
    ) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        job = store.start_job(_new_job("j1", "t1"))
        store.finish_job("j1", _at(1))
        before = _snapshot(store)

        with pytest.raises(JobSuperseded):
            store.run_batch(job.id, after=job.cursor, limit=10)

        assert before == _snapshot(store)

    def test_run_batch_after_the_checkpoint_moved_returns_stale_checkpoint(
        self, store: Store
    ) -> None:
        """Two runners of one job: the one that read an old checkpoint writes nothing."""
        store.add_tenant(_tenant("t1", "u1", "u2"))
        job = store.start_job(_new_job("j1", "t1"))
        moved = run_next(store, job, limit=1)
        before = _snapshot(store)

        result = store.run_batch(job.id, after=job.cursor, limit=1)

        assert StaleCheckpoint(job=moved) == result
        assert before == _snapshot(store)

    @pytest.mark.parametrize("bad", [0, -3, True, 2.5])
    def test_run_batch_refuses_a_limit_below_one_and_writes_nothing(
        self, store: Store, bad: object
    ) -> None:
        _seed(store)
        before = _snapshot(store)

        with pytest.raises(InvalidInput) as raised:
            store.run_batch("j2", after=0, limit=bad)  # type: ignore[arg-type]

        assert "limit" == raised.value.field
        assert before == _snapshot(store)

    def test_batches_equal_apply_defaults_on_random_tenants(self, store: Store) -> None:
        """Differential property: each batch a store runs equals `apply_defaults` (R3-R5, R7,
        R9, R12) over the batch's Users as they are when it runs: on random tenants with
        stale ids, missing labels and no mailbox, Users edited between batches, and the job
        resumed by a fresh runner from its stored checkpoint; in every push mode, with
        provenance, covered Users and locked labels (R15-R17) (needs hypothesis)."""
        pytest.importorskip("hypothesis")
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        from labelsync.testing.strategies import defaults, label_sets, tenants

        fresh_ids = (f"differential-{n}" for n in itertools.count())

        @st.composite
        def edits(draw: st.DrawFn, tenant: Tenant) -> list[list[tuple[int, LabelSet]]]:
            """For each gap between batches, Users (by index) and their new selection."""
            if not tenant.users:
                return []
            index = st.integers(0, len(tenant.users) - 1)
            gaps: list[list[tuple[int, LabelSet]]] = []
            for _ in range(draw(st.integers(0, 4))):
                picked = draw(st.lists(index, max_size=3, unique=True))
                gaps.append(
                    [(i, draw(label_sets(tenant.users[i].mailbox, max_stale=1))) for i in picked]
                )
            return gaps

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.data(), tenants(max_users=7, max_stale=2), defaults(), st.integers(1, 4))
        def batches_equal_the_rule(
            data: st.DataObject, tenant: Tenant, pushed: Defaults, limit: int
        ) -> None:
            tenant = attrs.evolve(tenant, id=next(fresh_ids), last_push=None)
            gaps = data.draw(edits(tenant))
            store.add_tenant(tenant)
            # R16, R17: any mode, with the tenant's locked labels applied as OVERRIDE.
            mode = data.draw(st.sampled_from(PushMode))
            new_job = _new_job(next(fresh_ids), tenant.id, defaults=pushed)
            job = store.start_job(attrs.evolve(new_job, mode=mode, locked=tenant.locked))
            expected_changes: list[StoredChange] = []
            expected_skips: list[Skip] = []
            expected_counts = PushCounts()
            roster = [user.id for user in tenant.users]
            done = 0
            while not job.roster_done:
                if gaps:
                    # A User edits their own selection between two batches.
                    for index, synced in gaps.pop():
                        user = store.get_user(tenant.id, roster[index])
                        assert () == store.save_users(
                            tenant.id, [(user.with_selection(synced), user.version)]
                        )
                now = store.get_users(tenant.id, roster[done : done + limit])
                want, changes = apply_defaults(
                    Tenant(id=tenant.id, name=tenant.name, users=now, locks=tenant.locks),
                    pushed,
                    mode=mode,
                    stamp=job.stamp,
                )
                # Resume: a fresh runner knows only the stored job and its checkpoint.
                job = run_next(store, store.get_job(job.id), limit=limit)
                done += len(now)
                assert list(want.users) == store.get_users(tenant.id, [u.id for u in now])
                version = {user.id: user.version for user in want.users}
                expected_changes += [StoredChange(c, version[c.user_id]) for c in changes.changed]
                expected_skips += changes.skipped
                expected_counts += changes.counts()
                assert (done, expected_counts) == (job.processed, job.counts)
            assert len(roster) == done
            assert expected_changes == list(store.job_changes(job.id))
            assert expected_skips == list(store.job_skips(job.id))

        batches_equal_the_rule()

    # -- finish_job --------------------------------------------------------------------

    def test_a_tenant_has_no_last_push_before_a_job_finishes(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        commit_all(store, store.start_job(_new_job("j1", "t1")))

        assert None is store.get_tenant("t1").last_push

    def test_finish_job_marks_it_done_and_makes_it_the_last_push(self, store: Store) -> None:
        """R11: who, when started and finished, the defaults, the roster size, the counts."""
        store.add_tenant(_tenant("t1", "u1", "u2"))
        store.add_user("t1", _user("u3", mailbox=False))
        started = dt.datetime(2024, 5, 1, 11, 0, tzinfo=_CEST)
        job = store.start_job(attrs.evolve(_new_job("j1", "t1"), started_at=started))
        job = commit_all(store, job, limit=2)
        finished = dt.datetime(2024, 5, 1, 9, 5, 30, tzinfo=dt.UTC)

        done = store.finish_job("j1", finished)

        assert attrs.evolve(job, status=JobStatus.DONE, finished_at=finished) == done
        assert done == store.get_job("j1")
        assert (
            PushRecord(
                job_id="j1",
                actor_id="admin",
                defaults=BOTH,
                started_at=started,
                finished_at=finished,
                roster_size=3,
                counts=PushCounts(users_changed=2, selected=4, no_mailbox=1),
            )
            == store.get_tenant("t1").last_push
        )
        assert BOTH == store.get_tenant("t1").defaults

    def test_finish_job_of_an_empty_roster_records_an_empty_push(self, store: Store) -> None:
        store.add_tenant(_tenant("t1"))
        store.start_job(_new_job("j1", "t1"))

        store.finish_job("j1", _at(1))

        record = store.get_tenant("t1").last_push
        assert record is not None
        assert ("j1", 0, PushCounts()) == (record.job_id, record.roster_size, record.counts)

    def test_finishing_a_done_job_again_returns_it_unchanged(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        commit_all(store, store.start_job(_new_job("j1", "t1")))
        done = store.finish_job("j1", _at(1))
        before = _snapshot(store)

        again = store.finish_job("j1", _at(5))

        assert done == again
        assert before == _snapshot(store)

    def test_finish_job_of_a_superseded_job_raises_and_keeps_the_last_push(
        self, store: Store
    ) -> None:
        _seed(store)  # j1 finished, j2 pending
        job = commit_all(store, store.get_job("j2"))
        store.start_job(_new_job("j3", "t1", minutes=5))
        before = _snapshot(store)

        with pytest.raises(JobSuperseded) as raised:
            store.finish_job(job.id, _at(6))

        assert ("j2", "j3") == (raised.value.job_id, raised.value.by)
        assert before == _snapshot(store)
        last_push = store.get_tenant("t1").last_push
        assert last_push is not None
        assert "j1" == last_push.job_id

    def test_finish_job_refuses_a_naive_time_and_changes_nothing(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        commit_all(store, store.start_job(_new_job("j1", "t1")))
        before = _snapshot(store)

        with pytest.raises(InvalidInput):
            store.finish_job("j1", dt.datetime(2024, 5, 1, 9, 0))  # naive on purpose

        assert before == _snapshot(store)

    # -- job_changes, job_skips ----------------------------------------------------------

    def test_a_job_without_batches_has_no_changes_or_skips(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        store.start_job(_new_job("j1", "t1"))

        assert ([], []) == (list(store.job_changes("j1")), list(store.job_skips("j1")))

    def test_each_job_keeps_its_own_changes_and_skips(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        store.add_user("t1", _user("u2", mailbox=False))
        store.finish_job(commit_all(store, store.start_job(_new_job("j1", "t1"))).id, _at(1))
        commit_all(store, store.start_job(_new_job("j2", "t1", defaults=NEITHER, minutes=2)))

        assert [
            (True, 1),
            (True, 1),
        ] == [(s.change.selected, s.version_after) for s in store.job_changes("j1")]
        assert [
            (False, 2),
            (False, 2),
        ] == [(s.change.selected, s.version_after) for s in store.job_changes("j2")]
        skipped = [Skip("u2", None, SkipReason.NO_MAILBOX)]
        assert [skipped, skipped] == [list(store.job_skips(j)) for j in ("j1", "j2")]

    # -- tenant isolation ----------------------------------------------------------------

    def test_tenants_with_the_same_user_ids_never_read_or_write_each_other(
        self, store: Store
    ) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2"))
        store.add_tenant(_tenant("t2", "u1", "u2", domain="globex.test"))
        store.save_users("t2", [(_user("u1", email="u1@globex.test", version=5), 0)])
        t2_before = store.get_tenant("t2")

        # t1's u1 is at version 0, t2's at 5: the compare-and-set must read t1's.
        assert () == store.save_users("t1", [(_user("u1", synced=["Label_7"], version=1), 0)])
        store.add_user("t1", _user("u3"))
        job = commit_all(store, store.start_job(_new_job("j1", "t1")))
        store.finish_job(job.id, _at(1))

        assert t2_before == store.get_tenant("t2")
        assert 3 == job.total
        assert {"acme.test"} == {u.email.split("@")[1] for u in store.get_tenant("t1").users}
        assert [
            "u1@acme.test",
            "u2@acme.test",
        ] == [u.email for u in store.get_users("t1", ["u1", "u2"])]
        assert "u1@globex.test" == store.get_user("t2", "u1").email
        assert [] == store.list_jobs("t2")

    def test_a_job_reads_and_writes_only_its_own_tenant(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1", "u2"))
        store.add_tenant(_tenant("t2", "u1", "u2", domain="globex.test"))
        j2 = store.start_job(_new_job("j2", "t2"))
        j1 = store.start_job(_new_job("j1", "t1", minutes=1))

        assert (2, 2) == (j1.total, j2.total)
        commit_all(store, j1)
        assert j2 == store.get_job("j2")  # not superseded by another tenant's push
        assert (_user("u1", email="u1@globex.test"), _user("u2", email="u2@globex.test")) == (
            store.get_tenant("t2").users
        )
        commit_all(store, j2)
        pushed = LabelSet(["INBOX", "SENT"])
        both = (SystemLabel.INBOX, SystemLabel.SENT)
        assert (
            _stamped(_user("u1").with_selection(pushed), j1, *both),
            _stamped(_user("u2").with_selection(pushed), j1, *both),
        ) == store.get_tenant("t1").users

    def test_a_user_id_of_another_tenant_can_be_added(self, store: Store) -> None:
        store.add_tenant(_tenant("t1", "u1"))
        store.add_tenant(_tenant("t2", "u1", "u2", domain="globex.test"))

        store.add_user("t1", _user("u2"))

        assert ["u1", "u2"] == [u.id for u in store.get_tenant("t1").users]
        assert "u2@globex.test" == store.get_user("t2", "u2").email
