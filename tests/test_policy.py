"""Laws of admin policy (R15-R19) over random tenants, and the service's policy calls.

The property tests state laws of the pure rule and cite the rule they check;
the service tests run on the in-memory store and a SQLite file.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Defaults,
    LabelLocked,
    LabelSet,
    LabelSync,
    Mailbox,
    Origin,
    Permission,
    PermissionDenied,
    Provider,
    PushMode,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    drift,
    email_tab,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import AlreadyReverted, InvalidInput
from labelsync.model import Locks
from labelsync.policy import DriftReason, LabelOrigin, Provenance
from labelsync.ports import Store
from labelsync.providers import gmail_label
from labelsync.rules import PREVIEW_STAMP
from labelsync.testing import defaults, tenants
from labelsync.whatif import compare

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
STAMP = LabelOrigin(origin=Origin.PUSH, job_id="job-x", at=T0)
BOTH = Defaults(inbox=True, sent=True)
INBOX_ONLY = Defaults(inbox=True, sent=False)
LABELS = (SystemLabel.INBOX, SystemLabel.SENT)
modes = st.sampled_from(PushMode)


def selected(user: User, label: SystemLabel) -> bool | None:
    """Whether `user` has `label` selected; None when the mailbox lacks it or there is none."""
    if user.mailbox is None:
        return None
    label_id = user.mailbox.label_id(label)
    return None if label_id is None else label_id in user.synced


def without_user_choices(tenant: Tenant) -> Tenant:
    """`tenant` with every origin USER replaced by UNKNOWN: no User ever chose."""

    def plain(origin: LabelOrigin) -> LabelOrigin:
        return LabelOrigin() if origin.origin is Origin.USER else origin

    return tenant.with_users(
        attrs.evolve(
            u,
            provenance=attrs.evolve(
                u.provenance, inbox=plain(u.provenance.inbox), sent=plain(u.provenance.sent)
            ),
        )
        for u in tenant.users
    )


# -- R16: push modes, as laws ------------------------------------------------------------------


@given(tenants(), defaults())
def test_keep_equals_override_where_no_user_ever_chose(tenant: Tenant, pushed: Defaults) -> None:
    """R16: on a tenant where no label's origin is the User, KEEP_USER_CHOICES is OVERRIDE."""
    tenant = without_user_choices(tenant)
    keep, kept = apply_defaults(tenant, pushed, mode=PushMode.KEEP_USER_CHOICES, stamp=STAMP)
    override, changes = apply_defaults(tenant, pushed, mode=PushMode.OVERRIDE, stamp=STAMP)
    assert override.users == keep.users
    assert (changes.changed, changes.skipped) == (kept.changed, kept.skipped)


@given(tenants(), defaults())
def test_keep_never_changes_a_label_the_user_set_unless_it_is_locked(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R16, R17: KEEP_USER_CHOICES leaves every unlocked label whose origin is the User,
    reporting USER_CHOICE_KEPT exactly where OVERRIDE would have changed it."""
    after, changes = apply_defaults(tenant, pushed, mode=PushMode.KEEP_USER_CHOICES)
    override = apply_defaults(tenant, pushed)[1]
    flipped = {(c.user_id, c.label) for c in override.changed}
    kept = {
        (s.user_id, s.label) for s in changes.skipped if s.reason is SkipReason.USER_CHOICE_KEPT
    }
    for before, now in zip(tenant.users, after.users, strict=True):
        for label in LABELS:
            mine = before.provenance.of(label).origin is Origin.USER
            if mine and label not in tenant.locked:
                assert selected(before, label) == selected(now, label)
                assert before.provenance.of(label) == now.provenance.of(label)
                assert ((before.id, label) in flipped) == ((before.id, label) in kept)
            else:
                assert (before.id, label) not in kept
    assert changes.counts().user_choice_kept == len(kept)


@given(tenants(), defaults())
def test_new_users_only_never_touches_a_covered_user_except_for_locked_labels(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R16, R17: NEW_USERS_ONLY leaves covered Users as they are, but for locked labels;
    uncovered Users get exactly what OVERRIDE gives them."""
    after, changes = apply_defaults(tenant, pushed, mode=PushMode.NEW_USERS_ONLY)
    override, _ = apply_defaults(tenant, pushed)
    for before, now, full in zip(tenant.users, after.users, override.users, strict=True):
        if not before.provenance.covered:
            assert full == now
            continue
        for label in LABELS:
            expected = full if label in tenant.locked else before
            assert selected(expected, label) == selected(now, label)
    touched = {c.user_id for c in changes.changed}
    assert all(not tenant.user(u).provenance.covered or tenant.locked for u in touched)


@given(tenants(), defaults(), modes)
def test_override_is_version_1_whatever_the_provenance(
    tenant: Tenant, pushed: Defaults, mode: PushMode
) -> None:
    """R3, R4, R16: OVERRIDE selects and deselects as version 1 did: provenance, covered and
    locks change nothing of its selections or its report."""
    plain = tenant.with_users(attrs.evolve(u, provenance=Provenance()) for u in tenant.users)
    plain = attrs.evolve(plain, locks=None)
    after, changes = apply_defaults(tenant, pushed)
    v1, v1_changes = apply_defaults(plain, pushed)
    assert [u.synced for u in v1.users] == [u.synced for u in after.users]
    assert [u.version for u in v1.users] == [u.version for u in after.users]
    assert (v1_changes.changed, v1_changes.skipped) == (changes.changed, changes.skipped)


@given(tenants(), defaults(), modes)
def test_every_mode_applies_locked_labels_as_override(
    tenant: Tenant, pushed: Defaults, mode: PushMode
) -> None:
    """R17: whatever the mode, a locked label ends as OVERRIDE sets it."""
    after, _ = apply_defaults(tenant, pushed, mode=mode)
    override, _ = apply_defaults(tenant, pushed)
    for now, full in zip(after.users, override.users, strict=True):
        for label in tenant.locked:
            assert selected(full, label) == selected(now, label)


# -- R15: provenance, as laws ------------------------------------------------------------------


@given(tenants(), defaults(), modes)
def test_a_push_stamps_exactly_the_labels_it_flips_and_covers_every_mailbox(
    tenant: Tenant, pushed: Defaults, mode: PushMode
) -> None:
    """R15: a flipped label's origin is the push; a label found as checked keeps its origin;
    every User with a mailbox the push reached is covered after it."""
    after, changes = apply_defaults(tenant, pushed, mode=mode, stamp=STAMP)
    flipped = {(c.user_id, c.label) for c in changes.changed}
    for before, now in zip(tenant.users, after.users, strict=True):
        for label in LABELS:
            want = STAMP if (before.id, label) in flipped else before.provenance.of(label)
            assert want == now.provenance.of(label)
        assert now.provenance.covered == (before.provenance.covered or now.mailbox is not None)


def test_a_what_if_push_stamps_a_push_without_job_or_time() -> None:
    tenant = Tenant(id="t", name="T", users=(person("ana"),))
    after, _ = apply_defaults(tenant, BOTH)
    assert PREVIEW_STAMP == after.user("ana").provenance.inbox
    assert "Set by your admin" == PREVIEW_STAMP.describe()


# -- R18: drift, as laws -----------------------------------------------------------------------


@given(tenants())
def test_after_an_override_push_of_the_defaults_only_skips_drift(tenant: Tenant) -> None:
    """R18: pushing the tenant's defaults in OVERRIDE leaves no drift but what no push can
    reach: Users without a mailbox, labels the mailbox lacks."""
    if tenant.defaults is None:
        assert not drift(tenant)
        return
    after, _ = apply_defaults(tenant, tenant.defaults)
    reasons = {row.reason for row in drift(after)}
    assert reasons <= {DriftReason.NO_MAILBOX, DriftReason.LABEL_MISSING}


@given(tenants())
def test_drift_names_each_differing_label_once_with_its_origin(tenant: Tenant) -> None:
    """R18: a row per label that differs from the defaults, its reason from its origin."""
    rows = drift(tenant)
    if tenant.defaults is None:
        assert () == rows.rows
        return
    for row in rows:
        if row.reason in (DriftReason.NO_MAILBOX, DriftReason.LABEL_MISSING):
            continue
        user = tenant.user(row.user_id)
        assert row.label is not None
        assert row.selected is not tenant.defaults.checked(row.label)
        assert user.provenance.of(row.label) == row.origin
        if row.reason is DriftReason.USER_CHANGE:
            assert Origin.USER is user.provenance.of(row.label).origin
        elif row.reason is DriftReason.NEVER_COVERED:
            assert not user.provenance.covered
    keys = [(row.user_id, row.label) for row in rows]
    assert len(set(keys)) == len(keys)


# -- the service: locks, reset, revert, onboard, history ----------------------------------------


def gmail(address: str) -> Mailbox:
    return Mailbox(
        provider=Provider.GMAIL,
        address=address,
        labels=(gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent"), gmail_label("L7", "X")),
    )


def person(user_id: str, *synced: str, admin: bool = False) -> User:
    permissions = {Permission.EMAIL_SYNC} | ({Permission.ADMIN_ACCESS} if admin else set())
    return User(
        id=user_id,
        email=f"{user_id}@acme.io",
        permissions=frozenset(permissions),
        mailbox=gmail(f"{user_id}@acme.io"),
        synced=LabelSet(synced),
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield InMemoryStore()
    else:
        with SqliteStore(tmp_path / "policy.db") as sqlite:
            yield sqlite


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def svc(store: Store, clock: FixedClock) -> LabelSync:
    counter = itertools.count(1)
    service = LabelSync(store=store, clock=clock, new_id=lambda: f"job-{next(counter)}")
    service.create_tenant(
        Tenant(
            id="acme",
            name="Acme",
            users=(person("admin", admin=True), person("ana"), person("ben")),
        )
    )
    return service


def test_set_selection_marks_only_the_changed_system_labels_as_the_users(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R15: the User's own edit is the origin of the labels it changed, with the time."""
    svc.push("acme", actor_id="admin", defaults=INBOX_ONLY)
    clock.advance(dt.timedelta(days=1))
    ana = svc.set_selection("acme", "ana", LabelSet(["INBOX", "SENT", "L7"]))
    assert LabelOrigin(origin=Origin.USER, at=T0 + dt.timedelta(days=1)) == ana.provenance.sent
    assert Origin.PUSH is ana.provenance.inbox.origin
    rows = {row.label.name: row for row in svc.email_tab("acme", "ana").rows}
    assert "Set by you on 2 Dec 2026" == rows["Sent"].set_by
    assert "Set by your admin on 1 Dec 2026" == rows["Inbox"].set_by
    assert rows["X"].set_by is None
    assert "[Set by your admin on 1 Dec 2026]" in str(svc.email_tab("acme", "ana"))


def test_set_locks_is_for_admins_only_and_writes_nothing_when_refused(svc: LabelSync) -> None:
    """R17: a non-admin's lock is refused with PermissionDenied; no lock is stored."""
    with pytest.raises(PermissionDenied):
        svc.set_locks("acme", actor_id="ana", locked=frozenset({SystemLabel.INBOX}))
    assert svc.tenant("acme").locks is None
    with pytest.raises(InvalidInput) as caught:
        svc.set_locks("acme", actor_id="admin", locked=frozenset({"INBOX"}))  # type: ignore[arg-type]
    assert ("locked", "INBOX") == (caught.value.field, caught.value.value)
    assert svc.tenant("acme").locks is None


def test_locking_changes_no_selection_and_unlocking_frees_the_label(svc: LabelSync) -> None:
    """R17: a lock by itself writes no User; an empty set unlocks; the change is audited."""
    before = svc.tenant("acme").users
    svc.set_locks("acme", actor_id="admin", locked=frozenset({SystemLabel.SENT}))
    assert before == svc.tenant("acme").users
    with pytest.raises(LabelLocked):
        svc.set_selection("acme", "ben", LabelSet(["SENT"]))
    unlocked = svc.set_locks("acme", actor_id="admin", locked=frozenset())
    assert unlocked is not None
    assert frozenset() == unlocked.labels
    assert frozenset({"SENT"}) == svc.set_selection("acme", "ben", LabelSet(["SENT"])).synced.ids


def test_a_keep_push_still_applies_a_locked_label_the_user_set(svc: LabelSync) -> None:
    """R17: KEEP_USER_CHOICES keeps the User's unlocked choice but applies the locked label."""
    svc.set_selection("acme", "ana", LabelSet(["SENT"]))  # ana's own INBOX off, SENT on
    svc.set_locks("acme", actor_id="admin", locked=frozenset({SystemLabel.SENT}))
    report = svc.push(
        "acme", actor_id="admin", defaults=INBOX_ONLY, mode=PushMode.KEEP_USER_CHOICES
    )
    # INBOX: ana's origin is unknown (never chosen) -> set. SENT: hers but locked -> off.
    assert frozenset({"INBOX"}) == svc.user("acme", "ana").synced.ids
    assert frozenset({SystemLabel.SENT}) == report.job.locked


def test_reset_by_the_user_writes_origin_reset_and_by_another_user_is_refused(
    svc: LabelSync,
) -> None:
    """R18: reset needs defaults; a User resets themself, an admin may too, others may not."""
    with pytest.raises(InvalidInput):
        svc.reset_to_defaults("acme", "ana")  # no defaults yet
    svc.save_defaults("acme", actor_id="admin", defaults=BOTH)
    with pytest.raises(PermissionDenied):
        svc.reset_to_defaults("acme", "ana", actor_id="ben")
    assert frozenset() == svc.user("acme", "ana").synced.ids
    by_admin = svc.reset_to_defaults("acme", "ana", actor_id="admin")
    assert frozenset({"INBOX", "SENT"}) == by_admin.synced.ids
    assert Origin.RESET is by_admin.provenance.inbox.origin


def test_onboard_refuses_a_user_a_push_already_covered_and_writes_nothing(
    svc: LabelSync,
) -> None:
    """Issue 11: onboard covers only a User no push or onboarding covered."""
    svc.push("acme", actor_id="admin", defaults=BOTH)
    svc.set_selection("acme", "ana", LabelSet(["L7"]))
    before = svc.user("acme", "ana")
    with pytest.raises(InvalidInput) as caught:
        svc.onboard("acme", "ana")
    assert ("user_id", "ana") == (caught.value.field, caught.value.value)
    assert before == svc.user("acme", "ana")


def test_onboard_with_force_needs_an_admin_and_then_onboards_a_covered_user_again(
    svc: LabelSync,
) -> None:
    """Issue 11: force=True is an admin's call; it gives the covered User the last push."""
    push = svc.push("acme", actor_id="admin", defaults=BOTH)
    svc.set_selection("acme", "ana", LabelSet(["L7"]))
    with pytest.raises(PermissionDenied):
        svc.onboard("acme", "ana", force=True)
    with pytest.raises(PermissionDenied):
        svc.onboard("acme", "ana", force=True, actor_id="ben")
    changes = svc.onboard("acme", "ana", force=True, actor_id="admin")
    assert 2 == len(changes)
    ana = svc.user("acme", "ana")
    assert frozenset({"INBOX", "SENT", "L7"}) == ana.synced.ids
    assert (Origin.ONBOARDING, push.job.id) == (
        ana.provenance.inbox.origin,
        ana.provenance.inbox.job_id,
    )


def test_onboard_covers_a_user_added_after_the_push_once(svc: LabelSync) -> None:
    """Issue 11, B4: a newcomer is onboarded once; a second onboard is refused."""
    svc.push("acme", actor_id="admin", defaults=BOTH)
    svc.add_user("acme", person("dee"))
    assert 2 == len(svc.onboard("acme", "dee"))
    assert svc.user("acme", "dee").provenance.covered
    with pytest.raises(InvalidInput):
        svc.onboard("acme", "dee")


def test_a_revert_is_recorded_as_an_audited_job_with_its_own_report(
    svc: LabelSync, clock: FixedClock
) -> None:
    """Issue 11, R19: who reverted, when it started and finished, its counts, in history."""
    push = svc.push("acme", actor_id="admin", defaults=BOTH)
    clock.advance(dt.timedelta(minutes=5))
    report = svc.revert_push(push.job.id, actor_id="admin")
    revert = report.revert
    assert revert is not None
    assert (push.job.id, "admin", T0 + dt.timedelta(minutes=5)) == (
        revert.push_job_id,
        revert.actor_id,
        revert.started_at,
    )
    assert revert.finished_at is not None
    assert (3, 6, 0, True) == (
        revert.users_restored,
        revert.labels_restored,
        revert.users_left_alone,
        revert.restored_defaults,
    )
    (entry,) = svc.history("acme")
    assert (push.job.id, revert) == (entry.job.id, entry.revert)
    assert entry.reverted
    assert "reverted by admin" in str(entry)
    assert [revert] == svc.store.list_reverts("acme")


def test_a_second_revert_of_the_same_push_is_refused_and_writes_nothing(
    svc: LabelSync,
) -> None:
    """Issue 11, R19: a push is reverted once; the second call raises AlreadyReverted."""
    push = svc.push("acme", actor_id="admin", defaults=BOTH)
    svc.revert_push(push.job.id, actor_id="admin")
    svc.set_selection("acme", "ana", LabelSet(["INBOX"]))
    before = (svc.tenant("acme"), svc.store.list_reverts("acme"))
    with pytest.raises(AlreadyReverted) as caught:
        svc.revert_push(push.job.id, actor_id="admin")
    assert isinstance(caught.value, InvalidInput)
    assert ("job_id", push.job.id) == (caught.value.field, caught.value.value)
    assert before == (svc.tenant("acme"), svc.store.list_reverts("acme"))


def test_reverting_the_only_push_leaves_no_defaults_and_no_last_push(svc: LabelSync) -> None:
    """Issue 11, R19: with no push before it, the tenant has neither defaults nor a last push."""
    push = svc.push("acme", actor_id="admin", defaults=BOTH)
    svc.revert_push(push.job.id, actor_id="admin")
    tenant = svc.tenant("acme")
    assert (None, None) == (tenant.defaults, tenant.last_push)
    assert frozenset() == svc.user("acme", "ana").synced.ids
    with pytest.raises(InvalidInput):
        svc.onboard("acme", "ana")


def test_a_revert_by_a_non_admin_is_refused_and_records_nothing(svc: LabelSync) -> None:
    push = svc.push("acme", actor_id="admin", defaults=BOTH)
    with pytest.raises(PermissionDenied):
        svc.revert_push(push.job.id, actor_id="ana")
    assert [] == svc.store.list_reverts("acme")


def test_history_lists_every_push_newest_first_with_its_report(svc: LabelSync) -> None:
    """R19: every push stays listed with its report and mode."""
    first = svc.push("acme", actor_id="admin", defaults=INBOX_ONLY)
    second = svc.push("acme", actor_id="admin", defaults=BOTH, mode=PushMode.NEW_USERS_ONLY)
    entries = svc.history("acme")
    assert [second.job.id, first.job.id] == [e.job.id for e in entries]
    assert [PushMode.NEW_USERS_ONLY, PushMode.OVERRIDE] == [e.job.mode for e in entries]
    assert str(second) == str(entries[0].report)
    assert "NEW_USERS_ONLY" in str(entries[0])


def test_preview_and_compare_show_each_mode(svc: LabelSync) -> None:
    """R16, B1: the preview takes a mode; compare puts modes side by side."""
    svc.push("acme", actor_id="admin", defaults=INBOX_ONLY)
    svc.set_selection("acme", "ana", LabelSet([]))
    assert (
        1
        == svc.preview("acme", INBOX_ONLY, mode=PushMode.KEEP_USER_CHOICES)
        .counts()
        .user_choice_kept
    )
    assert not svc.preview("acme", BOTH, mode=PushMode.NEW_USERS_ONLY)
    comparison = compare(svc.tenant("acme"), {"Both": BOTH}, modes=list(PushMode))
    assert [m.name for m in PushMode] == [r["mode"] for r in comparison.to_records()]
    # OVERRIDE selects SENT for all three and ana's INBOX; KEEP leaves ana's own INBOX off.
    assert (4, 0) == (
        comparison.row("Both", PushMode.OVERRIDE).selected,
        comparison.row("Both", PushMode.OVERRIDE).user_choice_kept,
    )
    assert (3, 1) == (
        comparison.row("Both", PushMode.KEEP_USER_CHOICES).selected,
        comparison.row("Both", PushMode.KEEP_USER_CHOICES).user_choice_kept,
    )
    assert 0 == comparison.row("Both", PushMode.NEW_USERS_ONLY).users_changed
    assert "[KEEP_USER_CHOICES]" in str(comparison)
    html = comparison._repr_html_()
    assert html is not None
    assert "NEW_USERS_ONLY" in html


def test_start_push_refuses_a_mode_that_is_not_a_push_mode_and_starts_nothing(
    svc: LabelSync,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        svc.start_push("acme", actor_id="admin", defaults=BOTH, mode="KEEP")  # type: ignore[arg-type]
    assert "mode" == caught.value.field
    assert [] == svc.jobs("acme")


def test_the_email_tab_of_the_pure_core_marks_locked_labels() -> None:
    user = person("ana", "INBOX")
    tab = email_tab(user, locked=frozenset({SystemLabel.INBOX}))
    assert [True, False, False] == [row.managed for row in tab.rows]
    assert "Managed by your admin" in str(tab)


def test_locks_round_trip_through_every_store(store: Store) -> None:
    locks = Locks(labels=frozenset({SystemLabel.SENT}), actor_id="admin", at=T0)
    store.add_tenant(Tenant(id="t", name="T", locks=locks))
    assert locks == store.get_tenant("t").locks == store.settings("t").locks
    store.save_locks("t", None)
    assert None is store.settings("t").locks


def test_snapshots_carry_provenance_and_locks_and_older_ones_still_load() -> None:
    """R15, R17: optional snapshot fields, written only when set; a snapshot without them
    loads with unknown provenance and no locks."""
    from labelsync import io

    mine = Provenance(
        inbox=LabelOrigin(origin=Origin.PUSH, job_id="job-1", at=T0),
        sent=LabelOrigin(origin=Origin.USER, at=T0),
        covered=True,
    )
    locks = Locks(labels=frozenset({SystemLabel.SENT}), actor_id="admin", at=T0)
    tenant = Tenant(
        id="acme",
        name="Acme",
        users=(attrs.evolve(person("ana"), provenance=mine), person("ben")),
        locks=locks,
    )
    text = io.dumps(tenant)
    assert tenant == io.loads(text)
    ben = io.to_dict(tenant)["tenant"]["users"][1]
    assert "provenance" not in ben
    old = io.to_dict(attrs.evolve(tenant, locks=None, users=(person("ana"),)))
    assert "locks" not in old["tenant"]
    loaded = io.from_dict(old)
    assert (Provenance(), None) == (loaded.user("ana").provenance, loaded.locks)
