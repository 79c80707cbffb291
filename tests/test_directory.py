"""The directory through the service (R13, R14) on every shipped store: memory, SQLite, PostgreSQL.

The four held-out scenarios of the issue come first, by name; then what an
integrator relies on around them: who may call, bad input, onboarding, resume.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import pytest

from labelsync import (
    Defaults,
    InvalidInput,
    JobStatus,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    PermissionDenied,
    Provider,
    PushCounts,
    PushJob,
    Skip,
    SkipReason,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.directory import DirectoryReport
from labelsync.exceptions import UnknownTenant, UnknownUser
from labelsync.ports import Store
from labelsync.providers import gmail_label
from postgres_fixtures import fresh_schema, postgres_dsn

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)
LABELS = (
    gmail_label("INBOX", "Inbox"),
    gmail_label("SENT", "Sent"),
    gmail_label("Label_7", "Project X"),
    gmail_label("Label_9", "Newsletters"),
)


def gmail(address: str, labels: tuple[object, ...] = LABELS) -> Mailbox:
    return Mailbox(provider=Provider.GMAIL, address=address, labels=labels)  # type: ignore[arg-type]


def person(user_id: str, *synced: str, mailbox: bool = True, admin: bool = False) -> User:
    email = f"{user_id}@acme.io"
    permissions = {Permission.EMAIL_SYNC} | ({Permission.ADMIN_ACCESS} if admin else set())
    return User(
        id=user_id,
        email=email,
        permissions=frozenset(permissions),
        mailbox=gmail(email) if mailbox else None,
        synced=LabelSet(synced),
    )


def acme(*users: User) -> Tenant:
    return Tenant(id="acme", name="Acme", users=(person("admin", admin=True), *users))


class _Stop(Exception):
    """Raised by a progress callback so that a run commits exactly one batch."""


def stop(job: PushJob) -> None:
    raise _Stop


@pytest.fixture
def svc(store: Store) -> LabelSync:
    ids = iter(f"push-{n}" for n in range(1, 100))
    return LabelSync(store=store, clock=FixedClock(T0), new_id=lambda: next(ids))


def started(svc: LabelSync, tenant: Tenant) -> PushJob:
    """`tenant` stored and a push of INBOX and SENT on, one batch of one User committed."""
    svc.create_tenant(tenant)
    job = svc.start_push("acme", actor_id="admin", defaults=BOTH)
    with pytest.raises(_Stop):
        svc.run_push(job.id, batch_size=1, progress=stop)
    return job


# -- the held-out scenarios -----------------------------------------------------------------


def test_update_during_a_push(svc: LabelSync) -> None:
    """R13, R12: the host changes a User's email and refreshes their labels while a push runs.

    The push, reaching them later, reads the User as updated: the new email and
    labels stay, the User's own custom label stays selected, INBOX/SENT are pushed.
    """
    job = started(svc, acme(person("ana", "Label_7"), person("bo")))
    refreshed = attrs.evolve(
        person("ana"),
        email="ana.new@acme.io",
        mailbox=gmail("ana.new@acme.io", (*LABELS[:3], gmail_label("Label_11", "Clients"))),
    )

    updated = svc.update_user("acme", refreshed)
    report = svc.run_push(job.id)

    assert (1, LabelSet(["Label_7"])) == (updated.version, updated.synced)
    ana = svc.user("acme", "ana")
    assert ("ana.new@acme.io", refreshed.mailbox, LabelSet(["INBOX", "SENT", "Label_7"]), 2) == (
        ana.email,
        ana.mailbox,
        ana.synced,
        ana.version,
    )
    assert (JobStatus.DONE, 3, PushCounts(users_changed=3, selected=6)) == (
        report.job.status,
        report.job.processed,
        report.counts,
    )


def test_remove_during_a_push(svc: LabelSync) -> None:
    """R14: removed while the push runs: skipped with USER_REMOVED, counted, nothing written;
    the id added again later is a new User the old push leaves alone."""
    job = started(svc, acme(person("ana"), person("bo"), person("cy")))

    svc.remove_user("acme", "bo")
    svc.add_user("acme", person("bo", "Label_9"))
    report = svc.run_push(job.id)

    assert (4, 4, 1) == (report.job.total, report.job.processed, report.counts.user_removed)
    assert SkipReason.USER_REMOVED in report.skipped_by_reason
    assert 1 == report.skipped_by_reason[SkipReason.USER_REMOVED]
    assert Skip(user_id="bo", label=None, reason=SkipReason.USER_REMOVED) in (
        svc.changes(job.id).skipped
    )
    assert "bo" not in svc.changes(job.id).changed_user_ids
    assert person("bo", "Label_9") == svc.user("acme", "bo")
    assert ["admin", "ana", "cy", "bo"] == [u.id for u in svc.tenant("acme").users]
    assert "1 removed while it ran" in str(report)


def test_a_sync_reports_added_updated_removed(svc: LabelSync) -> None:
    """R13: one sync of the host's whole roster reports each User by what it did to them."""
    svc.create_tenant(acme(person("ana"), person("bo"), person("cy"), person("dee")))
    roster = [
        person("admin", admin=True),
        person("ana"),  # as stored
        attrs.evolve(person("bo"), permissions=frozenset()),  # lost EMAIL_SYNC
        attrs.evolve(person("cy"), mailbox=None),  # disconnected
        person("eve", "INBOX"),  # new
    ]

    report = svc.sync_directory("acme", roster, remove_missing=True)

    assert (
        DirectoryReport(
            added=["eve"], updated=["bo", "cy"], removed=["dee"], unchanged=["admin", "ana"]
        )
        == report
    )
    assert ["admin", "ana", "bo", "cy", "eve"] == [u.id for u in svc.tenant("acme").users]
    assert (frozenset(), None) == (
        svc.user("acme", "bo").permissions,
        svc.user("acme", "cy").mailbox,
    )
    assert "1 added, 2 updated, 1 removed, 2 unchanged" in str(report)


def test_the_selection_is_kept_across_updates(svc: LabelSync) -> None:
    """R13: the selection is labelsync's: new email, permissions, a disconnect and a reconnect
    leave it as it was; only a label the provider deleted leaves it."""
    svc.create_tenant(acme(person("ana", "INBOX", "Label_7", "Label_9")))
    svc.update_user("acme", attrs.evolve(person("ana"), email="ana@new.io"))
    svc.update_user("acme", attrs.evolve(person("ana"), permissions=frozenset()))
    svc.update_user("acme", attrs.evolve(person("ana"), mailbox=None))
    assert LabelSet(["INBOX", "Label_7", "Label_9"]) == svc.user("acme", "ana").synced

    svc.update_user("acme", person("ana"))  # reconnected
    assert LabelSet(["INBOX", "Label_7", "Label_9"]) == svc.user("acme", "ana").synced

    svc.sync_directory("acme", [person("admin", admin=True), person("ana", "SENT")])
    assert LabelSet(["INBOX", "Label_7", "Label_9"]) == svc.user("acme", "ana").synced

    refreshed = attrs.evolve(person("ana"), mailbox=gmail("ana@acme.io", LABELS[:3]))
    ana = svc.update_user("acme", refreshed)  # the provider deleted Newsletters
    assert (LabelSet(["INBOX", "Label_7"]), 5) == (ana.synced, ana.version)


# -- update_user and remove_user --------------------------------------------------------------


def test_an_update_that_changes_nothing_writes_nothing(svc: LabelSync) -> None:
    svc.create_tenant(acme(person("ana", "INBOX")))

    same = svc.update_user("acme", attrs.evolve(person("ana"), synced=LabelSet(), version=9))

    assert (0, LabelSet(["INBOX"])) == (same.version, same.synced)
    assert same == svc.user("acme", "ana")


def test_each_directory_change_moves_the_version_on_by_one(svc: LabelSync) -> None:
    """R13, R12: a writer that read the old User finds its compare-and-set refused."""
    svc.create_tenant(acme(person("ana")))
    read = svc.user("acme", "ana")

    svc.update_user("acme", attrs.evolve(person("ana"), email="a@new.io"))

    assert 1 == svc.user("acme", "ana").version
    assert ("ana",) == svc.store.save_users("acme", [(read.with_selection(LabelSet()), 0)])


def test_updating_or_removing_an_unknown_user_raises_unknown_user(svc: LabelSync) -> None:
    svc.create_tenant(acme())
    with pytest.raises(UnknownUser):
        svc.update_user("acme", person("nope"))
    with pytest.raises(UnknownUser):
        svc.remove_user("acme", "nope")


def test_directory_calls_on_an_unknown_tenant_raise_unknown_tenant(svc: LabelSync) -> None:
    with pytest.raises(UnknownTenant):
        svc.update_user("nope", person("ana"))
    with pytest.raises(UnknownTenant):
        svc.remove_user("nope", "ana")
    with pytest.raises(UnknownTenant):
        svc.sync_directory("nope", [person("ana")])


def test_a_directory_call_on_someones_behalf_needs_an_admin(svc: LabelSync) -> None:
    """The host's own call is trusted; with actor_id, that person must be an admin (R1)."""
    svc.create_tenant(acme(person("ana"), person("bo")))
    before = svc.tenant("acme")

    with pytest.raises(PermissionDenied):
        svc.update_user("acme", attrs.evolve(person("bo"), email="x@y.io"), actor_id="ana")
    with pytest.raises(PermissionDenied):
        svc.remove_user("acme", "bo", actor_id="ana")
    with pytest.raises(PermissionDenied):
        svc.sync_directory("acme", [person("zed")], actor_id="nobody")
    assert before == svc.tenant("acme")

    svc.remove_user("acme", "bo", actor_id="admin")
    assert ["admin", "ana"] == [u.id for u in svc.tenant("acme").users]


@pytest.mark.parametrize(
    ("users", "field"),
    [
        ([person("zed"), "not a user"], "users[1]"),
        ([person("zed"), person("ana"), person("zed")], "users[2].id"),
        ("ana", "users"),
    ],
)
def test_a_bad_roster_is_refused_whole_and_writes_nothing(
    svc: LabelSync, users: object, field: str
) -> None:
    svc.create_tenant(acme(person("ana")))
    before = svc.tenant("acme")

    with pytest.raises(InvalidInput) as raised:
        svc.sync_directory("acme", users, batch_size=1)  # type: ignore[arg-type]

    assert str(raised.value).startswith(f"{field}:")
    assert before == svc.tenant("acme")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.sync_directory("acme", [], remove_missing="yes"), "remove_missing"),
        (lambda s: s.sync_directory("acme", [], batch_size=0), "batch_size"),
        (lambda s: s.update_user("acme", "ana"), "user"),
        (lambda s: s.remove_user("acme", ""), "user_id"),
    ],
)
def test_bad_arguments_name_the_field_and_write_nothing(
    svc: LabelSync, call: object, field: str
) -> None:
    svc.create_tenant(acme(person("ana")))
    before = svc.tenant("acme")

    with pytest.raises(InvalidInput) as raised:
        call(svc)  # type: ignore[operator]

    assert str(raised.value).startswith(f"{field}:")
    assert before == svc.tenant("acme")


# -- sync_directory ----------------------------------------------------------------------------


def test_a_user_added_by_sync_is_onboarded_as_add_user_onboards(svc: LabelSync) -> None:
    """B4: with onboarding on, a new User gets the last push's defaults, by either door."""
    svc.create_tenant(acme(person("ana")))
    svc.push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    svc.set_onboarding("acme", actor_id="admin", enabled=True)

    by_add = svc.add_user("acme", person("bo", "SENT", "Label_7"))
    svc.sync_directory("acme", [person("cy", "SENT", "Label_7")])

    assert LabelSet(["INBOX", "Label_7"]) == by_add.synced
    assert attrs.evolve(by_add, id="cy", email="cy@acme.io", mailbox=gmail("cy@acme.io")) == (
        svc.user("acme", "cy")
    )


def test_without_onboarding_a_synced_user_is_stored_as_the_host_gave_them(svc: LabelSync) -> None:
    """R6: off, a new User gets defaults only from a later push."""
    svc.create_tenant(acme())
    svc.push("acme", actor_id="admin", defaults=BOTH)

    svc.sync_directory("acme", [person("cy", "Label_7")])

    assert person("cy", "Label_7") == svc.user("acme", "cy")


def test_a_sync_without_remove_missing_keeps_unlisted_users(svc: LabelSync) -> None:
    svc.create_tenant(acme(person("ana"), person("bo")))

    report = svc.sync_directory("acme", [person("bo")])

    assert DirectoryReport(unchanged=["bo"]) == report
    assert ["admin", "ana", "bo"] == [u.id for u in svc.tenant("acme").users]


def test_a_sync_that_changes_only_a_users_groups_reports_them_updated(svc: LabelSync) -> None:
    """R13, R20: groups are host-owned, so a roster that moves a User to another group and
    changes nothing else updates them (version on by one, selection kept); listed again
    the same, they are unchanged. Found by the directory state machine with batch_size=1,
    whose model had compared email, permissions and mailbox only."""
    sales, ops = frozenset({"sales"}), frozenset({"ops"})
    svc.create_tenant(acme(attrs.evolve(person("hu2", "INBOX"), groups=sales)))
    moved = attrs.evolve(person("hu2"), groups=ops, version=5)  # host's version ignored
    roster = [person("admin", admin=True), moved]

    report = svc.sync_directory("acme", roster, batch_size=1)
    again = svc.sync_directory("acme", roster, batch_size=1)

    assert DirectoryReport(updated=["hu2"], unchanged=["admin"]) == report
    assert DirectoryReport(unchanged=["admin", "hu2"]) == again
    hu2 = svc.user("acme", "hu2")
    assert (ops, 1, LabelSet(["INBOX"])) == (hu2.groups, hu2.version, hu2.synced)


def test_a_second_sync_of_the_same_roster_changes_nothing(svc: LabelSync) -> None:
    """R13 idempotence: the reconcile goes by id, so running it again converges."""
    svc.create_tenant(acme(person("ana"), person("bo")))
    roster = [
        person("admin", admin=True),
        attrs.evolve(person("ana"), email="a@b.io"),
        person("cy"),
    ]
    svc.sync_directory("acme", roster, remove_missing=True, batch_size=2)
    after_first = svc.tenant("acme")

    again = svc.sync_directory("acme", roster, remove_missing=True, batch_size=2)

    assert DirectoryReport(unchanged=["admin", "ana", "cy"]) == again
    assert after_first == svc.tenant("acme")


def test_a_sync_reports_progress_after_each_batch(svc: LabelSync) -> None:
    svc.create_tenant(acme(person("ana")))
    seen: list[dict[str, int]] = []

    svc.sync_directory(
        "acme",
        [person("b1"), person("b2"), person("b3")],
        remove_missing=True,
        batch_size=2,
        progress=lambda report: seen.append(report.counts()),
    )

    assert [
        {"added": 2, "updated": 0, "removed": 0, "unchanged": 0},
        {"added": 3, "updated": 0, "removed": 0, "unchanged": 0},
        {"added": 3, "updated": 0, "removed": 2, "unchanged": 0},
    ] == seen


def test_a_sync_while_a_push_runs_leaves_the_push_whole(svc: LabelSync) -> None:
    """R12-R14 together: updated Users are pushed as updated, removed ones skipped, added
    ones left out of the roster; the push still handles its whole roster."""
    job = started(svc, acme(person("ana"), person("bo"), person("cy")))

    svc.sync_directory(
        "acme",
        [person("admin", admin=True), attrs.evolve(person("bo"), email="bo@new.io"), person("dan")],
        remove_missing=True,
    )
    report = svc.run_push(job.id)

    assert (4, 4) == (report.job.total, report.job.processed)
    assert (2, 2) == (report.counts.user_removed, report.counts.users_changed)
    bo, dan = svc.user("acme", "bo"), svc.user("acme", "dan")
    assert ("bo@new.io", LabelSet(["INBOX", "SENT"]), LabelSet()) == (
        bo.email,
        bo.synced,
        dan.synced,
    )


@pytest.mark.postgres
def test_parallel_workers_skip_a_user_removed_before_and_after_the_roster_was_cut(
    tmp_path: Path,
) -> None:
    """R14 with B6: the workers' ranges include removed Users, whether removed before the
    roster was cut into ranges or after, and each is skipped once, counted, never written."""
    from labelsync.adapters.postgres import PostgresStore

    dsn = postgres_dsn()
    with fresh_schema(dsn) as schema, PostgresStore(dsn, schema=schema) as store:
        svc = LabelSync(store=store, clock=FixedClock(T0))
        svc.create_tenant(acme(*(person(f"u{n}") for n in range(6))))
        job = svc.start_push("acme", actor_id="admin", defaults=BOTH)
        svc.remove_user("acme", "u1")  # before the first claim cuts the roster
        with pytest.raises(_Stop):
            svc.run_push(job.id, worker_id="w1", batch_size=2, progress=stop)
        svc.remove_user("acme", "u4")  # after: its range is not done yet

        report = svc.run_push(job.id, worker_id="w2", batch_size=2)

        assert (7, 7, 2) == (report.job.total, report.job.processed, report.counts.user_removed)
        skipped = {s.user_id for s in svc.changes(job.id).skipped}
        assert {"u1", "u4"} == skipped
        assert {"u1", "u4"}.isdisjoint(svc.changes(job.id).changed_user_ids)


# -- who may call what ----------------------------------------------------------------------------

ROLES: dict[str, str | None] = {
    "host": None,  # the host's own, trusted directory call
    "admin": "admin",
    "self": "ana",  # the User the call is about
    "other": "bo",  # another plain User
    "stranger": "nobody",  # not a User of the tenant
}
DIRECTORY_CALLS = {
    "update_user": lambda svc, actor: svc.update_user(
        "acme", attrs.evolve(person("ana"), email="ana@new.io"), actor_id=actor
    ),
    "remove_user": lambda svc, actor: svc.remove_user("acme", "ana", actor_id=actor),
    "sync_directory": lambda svc, actor: svc.sync_directory(
        "acme", [person("zed")], actor_id=actor
    ),
}


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("call", list(DIRECTORY_CALLS))
def test_a_directory_call_is_the_hosts_or_an_admins_and_refused_for_anyone_else(
    svc: LabelSync, call: str, role: str
) -> None:
    """Who may call what: the host (no actor) and the tenant's admins; anyone else gets
    PermissionDenied, decided in the core, and nothing is written."""
    svc.create_tenant(acme(person("ana"), person("bo")))
    before = svc.tenant("acme")

    if role in {"host", "admin"}:
        DIRECTORY_CALLS[call](svc, ROLES[role])
        assert before != svc.tenant("acme")
    else:
        with pytest.raises(PermissionDenied):
            DIRECTORY_CALLS[call](svc, ROLES[role])
        assert before == svc.tenant("acme")


def test_a_push_to_some_groups_skips_its_removed_members_and_ignores_other_removals(
    svc: LabelSync,
) -> None:
    """R14 with R20: a narrowed push's roster is its members; a removed member is skipped
    and counted, a removed non-member is nothing to it."""
    from labelsync import Audience

    sales = {"sales"}
    svc.create_tenant(
        acme(
            attrs.evolve(person("ana"), groups=frozenset(sales)),
            attrs.evolve(person("bo"), groups=frozenset(sales)),
            person("cy"),
            attrs.evolve(person("dee"), groups=frozenset(sales)),
        )
    )
    job = svc.start_push("acme", actor_id="admin", defaults=BOTH, audience=Audience.groups(sales))
    svc.remove_user("acme", "bo")  # a member
    svc.remove_user("acme", "cy")  # not a member

    report = svc.run_push(job.id, batch_size=1)

    assert (3, 3, 1, 2) == (
        report.job.total,
        report.job.processed,
        report.counts.user_removed,
        report.counts.users_changed,
    )
    assert [("bo", SkipReason.USER_REMOVED)] == [
        (s.user_id, s.reason) for s in svc.changes(job.id).skipped
    ]
