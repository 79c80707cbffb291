"""The push job through `LabelSync`: batches, progress, concurrent edits, supersede, crash, audit.

Every test runs against the in-memory store and a SQLite file, and compares the
job's outcome with the pure `apply_defaults` on the same tenant (one rule, two drivers).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

import attrs
import pytest

from labelsync import (
    Changes,
    Defaults,
    InvalidInput,
    JobStatus,
    JobSuperseded,
    Label,
    LabelSet,
    LabelSync,
    LabelSyncError,
    Mailbox,
    Permission,
    PermissionDenied,
    Provider,
    PushJob,
    PushRecord,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import AlreadyReverted
from labelsync.model import SYNC_ENABLED_NOTE
from labelsync.policy import Origin
from labelsync.ports import Store
from labelsync.providers import gmail_label, graph_folder, imap_mailbox
from labelsync.testing.faults import FaultyStore, InjectedFault, StoreProxy

T = TypeVar("T")

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
TENANT = "t1"
ADMIN = "admin"
ALL_DEFAULTS = [Defaults(inbox=i, sent=s) for i in (True, False) for s in (True, False)]

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "sqlite"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens fresh, empty stores of one kind; SQLite ones are real files, closed at teardown."""
    opened: list[SqliteStore] = []
    counter = itertools.count(1)

    def factory() -> Store:
        if request.param == "memory":
            return InMemoryStore()
        store = SqliteStore(tmp_path / f"store-{next(counter)}.db")
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def gmail_user(
    user_id: str,
    synced: tuple[str, ...] = (),
    *,
    permissions: frozenset[Permission] = frozenset({Permission.EMAIL_SYNC}),
    version: int = 0,
) -> User:
    """A Gmail User with INBOX, SENT and two custom labels, one of them *named* "Inbox"."""
    mailbox = Mailbox(
        provider=Provider.GMAIL,
        address=f"{user_id}@acme.io",
        labels=(
            gmail_label("INBOX", "Inbox"),
            gmail_label("SENT", "Sent"),
            gmail_label("Label_1", "Project X"),
            gmail_label("Label_2", "Inbox"),
        ),
    )
    return User(
        id=user_id,
        email=f"{user_id}@acme.io",
        permissions=permissions,
        mailbox=mailbox,
        synced=LabelSet(synced),
        version=version,
    )


def roster_user(n: int) -> User:
    """User number `n` of a deterministic roster mixing every case a push meets (R5, R7, R9)."""
    user_id = f"u{n:03d}"
    kind = n % 6
    email = f"{user_id}@acme.io"
    perms = frozenset({Permission.EMAIL_SYNC}) if n % 2 else frozenset()
    if kind == 0:
        return gmail_user(user_id, ("INBOX", "Label_1"), permissions=perms, version=n)
    if kind == 1:
        return gmail_user(user_id, ("SENT", "Label_404"), permissions=perms)
    if kind == 2:  # no mailbox connected, a stale selection kept as it is
        return User(id=user_id, email=email, permissions=perms, synced=LabelSet(["INBOX"]))
    if kind == 3:  # Outlook in German: SENT recognised by role, not name
        box = Mailbox(
            provider=Provider.MICROSOFT,
            address=email,
            labels=(
                graph_folder("AAMk01", "Posteingang", "inbox"),
                graph_folder("AAMk02", "Gesendete Elemente", "sentitems"),
                graph_folder("AAMk03", "Newsletters"),
            ),
        )
        return User(
            id=user_id, email=email, permissions=perms, mailbox=box, synced=LabelSet(["AAMk03"])
        )
    if kind == 4:  # IMAP without a \Sent folder: SENT is LABEL_MISSING
        box = Mailbox(
            provider=Provider.IMAP,
            address=email,
            labels=(imap_mailbox("INBOX"), imap_mailbox("Archive")),
        )
        return User(
            id=user_id, email=email, permissions=perms, mailbox=box, synced=LabelSet(["Archive"])
        )
    return gmail_user(user_id, ("INBOX", "SENT", "Label_2"), permissions=perms, version=3)


def make_tenant(size: int = 12, tenant_id: str = TENANT) -> Tenant:
    """An admin (who is on the roster too) and `size` Users of every kind."""
    admin = gmail_user(
        ADMIN, ("INBOX",), permissions=frozenset({Permission.ADMIN_ACCESS, Permission.EMAIL_SYNC})
    )
    return Tenant(
        id=tenant_id,
        name="Acme",
        users=(admin, *(roster_user(n) for n in range(1, size + 1))),
    )


def service(store: Store, clock: FixedClock | None = None) -> LabelSync:
    """A service with a fixed clock and job ids job-1, job-2, ... (deterministic)."""
    counter = itertools.count(1)
    return LabelSync(
        store=store, clock=clock or FixedClock(T0), new_id=lambda: f"job-{next(counter)}"
    )


def seeded(new_store: StoreFactory, tenant: Tenant | None = None) -> tuple[LabelSync, Store]:
    store = new_store()
    svc = service(store)
    svc.create_tenant(tenant or make_tenant())
    return svc, store


def selections(tenant: Tenant) -> dict[str, tuple[frozenset[str], int]]:
    """Each User's selection and version, by id: what a push may change."""
    return {user.id: (user.synced.ids, user.version) for user in tenant.users}


class _StopAfterOneBatch(Exception):
    """Raised by a progress callback to stop a run after its first committed batch."""


def stop_after_one_batch(job: PushJob) -> None:
    raise _StopAfterOneBatch(job.processed)


def run_one_batch(svc: LabelSync, job_id: str, batch_size: int) -> PushJob:
    """Run exactly one batch of the job and leave it unfinished, as a killed worker would."""
    with pytest.raises(_StopAfterOneBatch):
        svc.run_push(job_id, batch_size=batch_size, progress=stop_after_one_batch)
    return svc.job(job_id)


# -- batches and progress ------------------------------------------------------------


def test_progress_is_called_after_every_batch_with_increasing_processed_and_the_total(
    new_store: StoreFactory,
) -> None:
    svc, _ = seeded(new_store)
    seen: list[tuple[int, int, JobStatus]] = []
    job = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False))
    svc.run_push(
        job.id, batch_size=5, progress=lambda j: seen.append((j.processed, j.total, j.status))
    )
    assert [
        (5, 13, JobStatus.RUNNING),
        (10, 13, JobStatus.RUNNING),
        (13, 13, JobStatus.RUNNING),
    ] == seen


def test_total_is_the_roster_size_including_users_without_a_mailbox(
    new_store: StoreFactory,
) -> None:
    svc, _ = seeded(new_store)
    job = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=True))
    report = svc.run_push(job.id, batch_size=4)
    without_mailbox = [u.id for u in make_tenant().users if u.mailbox is None]
    assert (13, 13) == (job.total, report.job.total)
    assert 13 == report.job.processed
    assert len(without_mailbox) == report.counts.no_mailbox == 2
    assert len(without_mailbox) == report.skipped_by_reason[SkipReason.NO_MAILBOX]


@pytest.mark.parametrize("defaults", ALL_DEFAULTS, ids=str)
@pytest.mark.parametrize("batch_size", [1, 3, 500])
def test_any_batch_size_ends_in_the_state_and_counts_of_apply_defaults(
    new_store: StoreFactory, batch_size: int, defaults: Defaults
) -> None:
    """R3, R4, R5, R9: the job is `apply_defaults` run batch by batch, whatever the batch size."""
    svc, _ = seeded(new_store)
    expected_tenant, expected_changes = apply_defaults(make_tenant(), defaults)

    report = svc.push(TENANT, actor_id=ADMIN, defaults=defaults, batch_size=batch_size)

    assert selections(expected_tenant) == selections(svc.tenant(TENANT))
    assert expected_changes.counts() == report.counts
    assert expected_changes == svc.changes(report.job.id)
    assert defaults == svc.tenant(TENANT).defaults


def test_service_changes_of_a_job_equal_the_changes_apply_defaults_reports(
    new_store: StoreFactory,
) -> None:
    """R7, R9: the stored diff is exactly the pure diff, records and skips in roster order."""
    svc, _ = seeded(new_store)
    defaults = Defaults(inbox=False, sent=True)
    _, expected = apply_defaults(make_tenant(), defaults)
    report = svc.push(TENANT, actor_id=ADMIN, defaults=defaults, batch_size=4)
    got = svc.changes(report.job.id)
    assert expected.changed == got.changed
    assert expected.skipped == got.skipped
    assert 13 == got.users


# -- R12: a User edit landing right before a batch ---------------------------------------


class EditBeforeFirstCommit(StoreProxy):
    """Runs `edit` once, right before the first `run_batch` reaches the store."""

    def __init__(self, inner: Store, edit: Callable[[], object]) -> None:
        super().__init__(inner)
        self.edit: Callable[[], object] | None = edit
        self.commits = 0

    def intercept(self, method: str, args: tuple[object, ...], call: Callable[[], T]) -> T:
        if method == "run_batch":
            self.commits += 1
            if self.edit is not None:
                edit, self.edit = self.edit, None
                edit()
        return call()


def test_a_user_edit_landing_just_before_a_batch_survives_and_inbox_sent_are_still_pushed(
    new_store: StoreFactory,
) -> None:
    """R12: the batch reads the edited User, keeps their own labels and enforces INBOX/SENT."""
    store = new_store()
    service(store).create_tenant(make_tenant())
    # u001 has SENT selected and no INBOX: the push below changes both, so it writes u001.
    edited = LabelSet(["SENT", "Label_1", "Label_2"])
    racing = EditBeforeFirstCommit(
        store, lambda: service(store).set_selection(TENANT, "u001", edited)
    )
    svc = service(racing)
    defaults = Defaults(inbox=True, sent=False)

    report = svc.push(TENANT, actor_id=ADMIN, defaults=defaults, batch_size=500)

    after_edit = make_tenant()._replacing(make_tenant().user("u001").with_selection(edited))
    expected_tenant, expected_changes = apply_defaults(after_edit, defaults)
    assert 1 == racing.commits  # read and written in one transaction: nothing to retry
    assert frozenset({"INBOX", "Label_1", "Label_2"}) == svc.user(TENANT, "u001").synced.ids
    assert selections(expected_tenant) == selections(svc.tenant(TENANT))
    assert expected_changes.counts() == report.counts
    assert expected_changes == svc.changes(report.job.id)


# -- R10: supersede and re-run -------------------------------------------------------


def test_a_newer_push_supersedes_an_unfinished_one_whose_later_batches_write_nothing(
    new_store: StoreFactory,
) -> None:
    """R10: running the superseded job raises JobSuperseded; the latest click wins for everyone."""
    svc, _ = seeded(new_store)
    job_a = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=False))
    after_one = run_one_batch(svc, job_a.id, batch_size=4)
    assert (JobStatus.RUNNING, 4) == (after_one.status, after_one.processed)

    job_b = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=True))
    superseded = svc.job(job_a.id)
    assert (JobStatus.SUPERSEDED, job_b.id) == (superseded.status, superseded.superseded_by)
    before = (svc.tenant(TENANT), svc.jobs(TENANT), svc.changes(job_a.id))
    with pytest.raises(JobSuperseded, match=job_a.id):
        svc.run_push(job_a.id, batch_size=4)
    assert before == (svc.tenant(TENANT), svc.jobs(TENANT), svc.changes(job_a.id))

    report = svc.run_push(job_b.id, batch_size=4)
    expected, _ = apply_defaults(make_tenant(), Defaults(inbox=True, sent=True))
    got = svc.tenant(TENANT)
    assert {u.id: u.synced for u in expected.users} == {u.id: u.synced for u in got.users}
    assert JobStatus.DONE == report.job.status
    assert got.last_push is not None
    assert job_b.id == got.last_push.job_id


def test_rerunning_a_done_job_changes_nothing_and_reports_the_same_counts(
    new_store: StoreFactory,
) -> None:
    """R10: a second run of a finished job is a no-op with the same report."""
    clock = FixedClock(T0)
    store = new_store()
    svc = service(store, clock)
    svc.create_tenant(make_tenant())
    first = svc.push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False))
    before = (svc.tenant(TENANT), svc.jobs(TENANT), svc.changes(first.job.id))
    clock.advance(dt.timedelta(hours=1))

    again = svc.run_push(first.job.id, batch_size=2)

    assert first == again
    assert before == (svc.tenant(TENANT), svc.jobs(TENANT), svc.changes(first.job.id))


def test_pushing_the_same_defaults_twice_reports_no_changes_the_second_time(
    new_store: StoreFactory,
) -> None:
    """R10: idempotent."""
    svc, _ = seeded(new_store)
    defaults = Defaults(inbox=True, sent=False)
    svc.push(TENANT, actor_id=ADMIN, defaults=defaults)
    state = selections(svc.tenant(TENANT))
    second = svc.push(TENANT, actor_id=ADMIN, defaults=defaults, batch_size=3)
    assert 0 == second.counts.users_changed == second.counts.changes
    assert state == selections(svc.tenant(TENANT))


# -- R6 and B4: Users added after the start -------------------------------------------


def test_users_added_after_start_push_are_not_touched_even_while_the_job_runs(
    new_store: StoreFactory,
) -> None:
    """R6: the roster is fixed when the push starts."""
    svc, _ = seeded(new_store)
    early = gmail_user("late-1", ("SENT",))
    during = gmail_user("late-2", ("SENT", "Label_1"), version=7)
    job = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False))
    svc.add_user(TENANT, early)
    added: list[int] = []

    def add_during_run(j: PushJob) -> None:
        if not added:
            svc.add_user(TENANT, during)
            added.append(j.processed)

    report = svc.run_push(job.id, batch_size=3, progress=add_during_run)

    assert [3] == added
    assert early == svc.user(TENANT, "late-1")
    assert during == svc.user(TENANT, "late-2")
    assert 13 == report.job.total == report.job.processed
    touched = {c.user_id for c in svc.changes(job.id).changed}
    touched |= {s.user_id for s in svc.changes(job.id).skipped}
    assert set() == touched & {"late-1", "late-2"}


def test_onboarding_is_off_by_default_and_onboard_gives_the_last_finished_push(
    new_store: StoreFactory,
) -> None:
    """B4, R6: off by default a new User keeps their selection; `onboard` applies the last push."""
    svc, _ = seeded(new_store)
    assert False is svc.tenant(TENANT).onboard_new_users
    pushed = Defaults(inbox=True, sent=False)
    svc.push(TENANT, actor_id=ADMIN, defaults=pushed)
    # An unfinished newer push is not "the last push": onboard uses the finished one.
    svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=True))
    newcomer = gmail_user("new-1", ("SENT", "Label_1"))

    assert newcomer == svc.add_user(TENANT, newcomer)
    assert newcomer == svc.user(TENANT, "new-1")

    changes = svc.onboard(TENANT, "new-1")

    onboarded = svc.user(TENANT, "new-1")
    expected_user = newcomer.with_selection(LabelSet(["INBOX", "Label_1"]))
    assert expected_user == attrs.evolve(onboarded, provenance=newcomer.provenance)
    assert [(SystemLabel.INBOX, True), (SystemLabel.SENT, False)] == [
        (c.label, c.selected) for c in changes.changed
    ]
    # R15: onboarding set both labels, from the last finished push; the User is covered.
    assert (Origin.ONBOARDING, Origin.ONBOARDING, True) == (
        onboarded.provenance.inbox.origin,
        onboarded.provenance.sent.origin,
        onboarded.provenance.covered,
    )
    # A covered User is not onboarded again (it would undo their own changes).
    with pytest.raises(InvalidInput, match="already covered"):
        svc.onboard(TENANT, "new-1")
    assert onboarded == svc.user(TENANT, "new-1")


def test_the_onboarding_setting_gives_every_new_user_the_last_push_defaults(
    new_store: StoreFactory,
) -> None:
    """B4: with the switch on, `add_user` stores the User with the last push applied."""
    svc, _ = seeded(new_store)
    svc.push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False))
    svc.set_onboarding(TENANT, actor_id=ADMIN, enabled=True)
    newcomer = gmail_user("new-1", ("SENT", "Label_2"))

    stored = svc.add_user(TENANT, newcomer)

    assert frozenset({"INBOX", "Label_2"}) == stored.synced.ids
    assert stored == svc.user(TENANT, "new-1")
    assert True is svc.tenant(TENANT).onboard_new_users


def test_onboard_without_a_finished_push_is_refused_naming_last_push(
    new_store: StoreFactory,
) -> None:
    svc, _ = seeded(new_store)
    before = svc.tenant(TENANT)
    with pytest.raises(InvalidInput, match="last_push"):
        svc.onboard(TENANT, "u001")
    assert before == svc.tenant(TENANT)


# -- B5: revert ---------------------------------------------------------------------


def test_revert_restores_users_unchanged_since_and_lists_the_others(
    new_store: StoreFactory,
) -> None:
    """B5: only Users whose selection did not change since the push are restored."""
    svc, _ = seeded(new_store)
    original = make_tenant()
    report = svc.push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=True))
    changed = list(svc.changes(report.job.id).changed_user_ids)
    assert len(changed) >= 3
    edited_id = "u006"
    assert edited_id in changed
    # The User changes both labels the push set (INBOX back on, SENT off): both are theirs now.
    edited = svc.set_selection(TENANT, edited_id, LabelSet(["INBOX", "Label_1"]))

    result = svc.revert_push(report.job.id, actor_id=ADMIN, batch_size=2)

    assert (edited_id,) == result.changed_since
    assert tuple(u for u in changed if u != edited_id) == result.reverted
    got = svc.tenant(TENANT)
    for user in original.users:
        if user.id == edited_id:
            assert edited == got.user(user.id)
        else:
            assert user.synced == got.user(user.id).synced
    # R19: a push is reverted once; a second revert is refused and writes nothing.
    before = svc.tenant(TENANT)
    with pytest.raises(AlreadyReverted):
        svc.revert_push(report.job.id, actor_id=ADMIN)
    assert before == svc.tenant(TENANT)


def test_only_a_done_push_can_be_reverted(new_store: StoreFactory) -> None:
    svc, _ = seeded(new_store)
    job = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=True))
    before = (svc.tenant(TENANT), svc.jobs(TENANT))
    with pytest.raises(InvalidInput, match=job.id):
        svc.revert_push(job.id, actor_id=ADMIN)
    assert before == (svc.tenant(TENANT), svc.jobs(TENANT))


def test_an_older_push_is_reverted_only_for_the_labels_it_still_owns(
    new_store: StoreFactory,
) -> None:
    """R19: under a later push, reverting an earlier one restores only the labels whose origin
    is still the earlier push (R15); what the later push set stays, and so do its defaults."""
    svc, _ = seeded(new_store)
    first = svc.push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=False))
    second = svc.push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=True))
    after_second = svc.tenant(TENANT)

    report = svc.revert_push(first.job.id, actor_id=ADMIN)

    got = svc.tenant(TENANT)
    for user in got.users:
        before = after_second.user(user.id)
        if user.mailbox is None:
            assert before == user
            continue
        sent_origin = before.provenance.sent
        if sent_origin.job_id == second.job.id:
            assert before.mailbox is not None
            sent_id = before.mailbox.label_id(SystemLabel.SENT)
            assert (sent_id in before.synced) == (sent_id in user.synced)
    assert (Defaults(inbox=False, sent=True), second.job.id) == (
        got.defaults,
        got.last_push and got.last_push.job_id,
    )
    assert report.revert is not None
    assert not report.revert.restored_defaults


# -- R11: audit ---------------------------------------------------------------------


def test_the_audit_record_keeps_actor_times_from_the_clock_defaults_roster_and_counts(
    new_store: StoreFactory,
) -> None:
    """R11: started_at and finished_at come from the clock port, not the wall clock."""
    clock = FixedClock(T0)
    store = new_store()
    svc = service(store, clock)
    svc.create_tenant(make_tenant())
    defaults = Defaults(inbox=True, sent=True)
    _, expected_changes = apply_defaults(make_tenant(), defaults)

    job = svc.start_push(TENANT, actor_id=ADMIN, defaults=defaults)
    clock.advance(dt.timedelta(minutes=7))
    run_one_batch(svc, job.id, batch_size=5)
    assert None is svc.tenant(TENANT).last_push
    clock.advance(dt.timedelta(minutes=3))
    svc.run_push(job.id, batch_size=5)

    expected = PushRecord(
        job_id=job.id,
        actor_id=ADMIN,
        defaults=defaults,
        started_at=T0,
        finished_at=T0 + dt.timedelta(minutes=10),
        roster_size=13,
        counts=expected_changes.counts(),
    )
    tenant = svc.tenant(TENANT)
    assert expected == tenant.last_push
    assert defaults == tenant.defaults
    assert T0 + dt.timedelta(minutes=10) == svc.job(job.id).finished_at


# -- R8: the Email tab -----------------------------------------------------------------


def test_the_email_tab_shows_pushed_labels_as_selected_with_the_sync_note(
    new_store: StoreFactory,
) -> None:
    """R8: visible with EMAIL_SYNC; the push applied to Users without it too."""
    svc, _ = seeded(new_store)
    svc.push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False))

    tab = svc.email_tab(TENANT, "u001")  # odd numbers hold EMAIL_SYNC
    rows = {row.label.id: (row.selected, row.note) for row in tab.rows}
    assert (True, SYNC_ENABLED_NOTE) == rows["INBOX"]
    assert (False, None) == rows["SENT"]
    assert [Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)] == [
        label for label in tab.selected if label.system is not None
    ]
    with pytest.raises(PermissionDenied, match="EMAIL_SYNC"):
        svc.email_tab(TENANT, "u006")
    assert "INBOX" in svc.user(TENANT, "u006").synced


# -- R12: crash and resume -------------------------------------------------------------


def uninterrupted(new_store: StoreFactory, defaults: Defaults) -> tuple[Tenant, PushJob, Changes]:
    svc, _ = seeded(new_store)
    report = svc.push(TENANT, actor_id=ADMIN, defaults=defaults, batch_size=3)
    return svc.tenant(TENANT), report.job, svc.changes(report.job.id)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(
    ("fail_on", "after_calls"),
    [
        ("run_batch", 0),
        ("run_batch", 1),
        ("run_batch", 4),
        ("finish_job", 0),
    ],
)
def test_a_crashed_push_resumed_by_a_new_service_ends_as_an_uninterrupted_run(
    new_store: StoreFactory,
    fail_on: str,
    after_calls: int,
    when: Literal["before", "after"],
) -> None:
    """R12: whether the crash hit before or after the write, resuming loses and repeats nothing."""
    defaults = Defaults(inbox=True, sent=False)
    expected_tenant, expected_job, expected_changes = uninterrupted(new_store, defaults)
    store = new_store()
    service(store).create_tenant(make_tenant())
    faulty = FaultyStore(store, fail_on=fail_on, after_calls=after_calls, when=when)
    crashing = service(faulty)
    job = crashing.start_push(TENANT, actor_id=ADMIN, defaults=defaults)

    with pytest.raises(InjectedFault):
        crashing.run_push(job.id, batch_size=3)

    assert faulty.fired
    crashed = service(store).job(job.id)
    if fail_on == "run_batch":
        committed = after_calls + (1 if when == "after" else 0)
        assert min(13, 3 * committed) == crashed.processed
    resumed = service(store).run_push(job.id, batch_size=3)
    assert selections(expected_tenant) == selections(service(store).tenant(TENANT))
    assert expected_job.counts == resumed.counts
    assert (13, 13, JobStatus.DONE) == (
        resumed.job.total,
        resumed.job.processed,
        resumed.job.status,
    )
    assert expected_changes == service(store).changes(job.id)
    assert expected_tenant.last_push == service(store).tenant(TENANT).last_push


def test_repeated_crashes_at_every_commit_still_end_as_an_uninterrupted_run(
    new_store: StoreFactory,
) -> None:
    """R12: a crash after each write in turn, each resumed by a fresh service."""
    defaults = Defaults(inbox=False, sent=True)
    expected_tenant, expected_job, expected_changes = uninterrupted(new_store, defaults)
    store = new_store()
    service(store).create_tenant(make_tenant())
    job = service(store).start_push(TENANT, actor_id=ADMIN, defaults=defaults)
    crashes = 0
    while service(store).job(job.id).status is not JobStatus.DONE:
        faulty = FaultyStore(store, fail_on="run_batch", after_calls=0, when="after")
        try:
            service(faulty).run_push(job.id, batch_size=2)
        except InjectedFault:
            crashes += 1
    assert 7 == crashes  # ceil(13 / 2) batches, each crashed once right after its commit
    assert selections(expected_tenant) == selections(service(store).tenant(TENANT))
    assert expected_job.counts == service(store).job(job.id).counts
    assert expected_changes == service(store).changes(job.id)


class OtherRunnerFirst(StoreProxy):
    """Lets `other` (another worker on the same job) run right before our first commit lands."""

    def __init__(self, inner: Store, other: Callable[[], object]) -> None:
        super().__init__(inner)
        self.other: Callable[[], object] | None = other

    def intercept(self, method: str, args: tuple[object, ...], call: Callable[[], T]) -> T:
        if method == "run_batch" and self.other is not None:
            other, self.other = self.other, None
            other()
        return call()


def test_a_runner_whose_checkpoint_moved_drops_its_batch_and_counts_nothing_twice(
    new_store: StoreFactory,
) -> None:
    """R12, B6: another worker committed the batch first; this one re-reads the job, goes on."""
    defaults = Defaults(inbox=True, sent=False)
    expected_tenant, expected_job, expected_changes = uninterrupted(new_store, defaults)
    store = new_store()
    service(store).create_tenant(make_tenant())
    job = service(store).start_push(TENANT, actor_id=ADMIN, defaults=defaults)
    racing = OtherRunnerFirst(store, lambda: run_one_batch(service(store), job.id, batch_size=3))

    report = service(racing).run_push(job.id, batch_size=3)

    assert selections(expected_tenant) == selections(service(store).tenant(TENANT))
    assert expected_job.counts == report.counts
    assert expected_changes == service(store).changes(job.id)


def test_a_runner_that_finds_its_job_finished_by_another_worker_reports_it_done(
    new_store: StoreFactory,
) -> None:
    """R10, B6: the job is DONE, not superseded: the slower worker gets the same report."""
    defaults = Defaults(inbox=True, sent=False)
    _, expected_job, expected_changes = uninterrupted(new_store, defaults)
    store = new_store()
    service(store).create_tenant(make_tenant())
    job = service(store).start_push(TENANT, actor_id=ADMIN, defaults=defaults)
    racing = OtherRunnerFirst(store, lambda: service(store).run_push(job.id, batch_size=3))

    report = service(racing).run_push(job.id, batch_size=3)

    assert (JobStatus.DONE, expected_job.counts) == (report.job.status, report.counts)
    assert expected_changes == service(store).changes(job.id)


def test_faulty_store_refuses_an_unknown_method_a_negative_count_and_a_bad_moment() -> None:
    with pytest.raises(InvalidInput, match="fail_on: 'commit'"):
        FaultyStore(InMemoryStore(), fail_on="commit")
    with pytest.raises(InvalidInput, match="after_calls: -1"):
        FaultyStore(InMemoryStore(), fail_on="run_batch", after_calls=-1)
    with pytest.raises(InvalidInput, match="when: 'during'"):
        FaultyStore(InMemoryStore(), fail_on="run_batch", when="during")  # type: ignore[arg-type]


def test_injected_fault_is_not_a_labelsync_error() -> None:
    """A crash must not be mistaken for an error labelsync reports on purpose."""
    assert not issubclass(InjectedFault, LabelSyncError)


# -- logging: what a host's log shows of a job's life ------------------------------------------


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages logged by labelsync.push at exactly `level`."""
    return [
        r.getMessage() for r in caplog.records if r.name == "labelsync.push" and r.levelno == level
    ]


def test_a_push_logs_its_start_and_finish_at_info_and_each_batch_at_debug(
    new_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    svc, _ = seeded(new_store)
    caplog.set_level(logging.DEBUG, logger="labelsync")

    report = svc.push(
        TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False), batch_size=5
    )

    job = report.job
    finished = (
        f"push job {job.id} of tenant {TENANT} finished: 13/13 Users, "
        f"{job.counts.users_changed} changed, {job.counts.skipped} skips"
    )
    assert [
        f"push job {job.id} of tenant {TENANT} started: Inbox on, Sent off, roster of 13 Users",
        finished,
    ] == records(caplog, logging.INFO)
    batches = records(caplog, logging.DEBUG)
    assert 3 == len(batches)
    assert all(f"push job {job.id} of tenant {TENANT}: batch committed" in m for m in batches)
    assert batches[-1].endswith("13/13 Users")
    assert [] == records(caplog, logging.WARNING)


def test_a_resumed_push_logs_where_it_resumes_and_a_superseded_one_that_it_stops(
    new_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    svc, _ = seeded(new_store)
    old = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False))
    run_one_batch(svc, old.id, batch_size=4)
    caplog.set_level(logging.INFO, logger="labelsync")

    svc.run_push(old.id, batch_size=4)
    new = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=False, sent=False))
    run_one_batch(svc, new.id, batch_size=4)
    newest = svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=True))
    with pytest.raises(JobSuperseded):
        svc.run_push(new.id, batch_size=4)

    info = records(caplog, logging.INFO)
    assert info[0].startswith(f"push job {old.id} of tenant {TENANT} resumed after position ")
    assert info[0].endswith("4/13 Users done")
    assert (
        f"push job {new.id} of tenant {TENANT} superseded by {newest.id}; it writes nothing more"
    ) == info[-1]


def test_a_batch_another_runner_committed_first_is_logged_as_a_warning(
    new_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    store = new_store()
    service(store).create_tenant(make_tenant())
    job = service(store).start_push(
        TENANT, actor_id=ADMIN, defaults=Defaults(inbox=True, sent=False)
    )
    racing = OtherRunnerFirst(store, lambda: run_one_batch(service(store), job.id, batch_size=3))
    caplog.set_level(logging.WARNING, logger="labelsync")

    service(racing).run_push(job.id, batch_size=3)

    (warning,) = records(caplog, logging.WARNING)
    head = f"push job {job.id} of tenant {TENANT}: another runner committed the batch after 0 first"
    assert warning.startswith(head + "; going on from its checkpoint ")
    assert int(warning.rsplit(" ", 1)[1]) > 0


def test_store_methods_name_every_method_of_the_three_ports_in_their_order() -> None:
    """FaultyStore can fail any call a push makes, because it knows every port method."""
    from labelsync.ports import PolicyStorage, PushExecution, PushHistory, TenantDirectory
    from labelsync.testing import STORE_METHODS

    declared = [
        name
        for port in (TenantDirectory, PushExecution, PushHistory, PolicyStorage)
        for name, value in vars(port).items()
        if callable(value) and not name.startswith("_")
    ]
    assert declared == list(STORE_METHODS)
