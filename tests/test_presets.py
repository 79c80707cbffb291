"""Presets (R21): create, rename, delete, assign in precedence order, audited; onboarding; apply."""

from __future__ import annotations

import datetime as dt

import pytest

from labelsync import (
    AlreadyExists,
    Audience,
    Defaults,
    InvalidInput,
    LabelLocked,
    LabelSet,
    LabelSync,
    NotFound,
    Origin,
    PermissionDenied,
    Preset,
    PushMode,
    SystemLabel,
    Tenant,
)
from labelsync.adapters.clock import FixedClock
from labelsync.coverage import CoverageStatus
from labelsync.ports import Store
from labelsync.presets import Assignment, PresetAction, PresetBook
from labelsync.whatif import compare
from test_audiences import acme, person

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)
INBOX_ONLY = Defaults(inbox=True, sent=False)
NEITHER = Defaults(inbox=False, sent=False)
SALES = Preset(name="Sales", defaults=BOTH, locks=frozenset({SystemLabel.SENT}))
SUPPORT = Preset(name="Support", defaults=INBOX_ONLY)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def svc(store: Store, clock: FixedClock) -> LabelSync:
    service = LabelSync(store=store, clock=clock)
    service.create_tenant(acme())
    return service


def with_two_presets(svc: LabelSync) -> None:
    svc.create_preset("acme", actor_id="admin", preset=SALES)
    svc.create_preset("acme", actor_id="admin", preset=SUPPORT)
    svc.assign_preset("acme", actor_id="admin", group="support", name="Support")
    svc.assign_preset("acme", actor_id="admin", group="sales", name="Sales", position=0)


def test_an_admin_creates_and_assigns_presets_in_precedence_order(svc: LabelSync) -> None:
    with_two_presets(svc)

    book = svc.presets("acme")
    assert (SALES, SUPPORT) == book.presets
    assert (
        Assignment(group="sales", preset="Sales"),
        Assignment(group="support", preset="Support"),
    ) == book.assignments
    assert 4 == book.version
    # ed is in sales and support: the first matching group wins.
    assert SALES == book.for_user(svc.user("acme", "ed"))
    assert None is book.for_user(svc.user("acme", "fay"))


def test_every_preset_change_is_audited_with_who_and_when(
    svc: LabelSync, clock: FixedClock
) -> None:
    svc.create_preset("acme", actor_id="admin", preset=SALES)
    clock.advance(dt.timedelta(minutes=5))
    svc.rename_preset("acme", actor_id="admin", name="Sales", new_name="Field sales")
    svc.assign_preset("acme", actor_id="admin", group="sales", name="Field sales")
    svc.assign_preset("acme", actor_id="admin", group="sales", name=None)
    svc.delete_preset("acme", actor_id="admin", name="Field sales")

    history = svc.preset_history("acme")
    assert [
        (PresetAction.CREATED, "Sales", T0),
        (PresetAction.RENAMED, "Sales", T0 + dt.timedelta(minutes=5)),
        (PresetAction.ASSIGNED, "Field sales", T0 + dt.timedelta(minutes=5)),
        (PresetAction.UNASSIGNED, "Field sales", T0 + dt.timedelta(minutes=5)),
        (PresetAction.DELETED, "Field sales", T0 + dt.timedelta(minutes=5)),
    ] == [(e.action, e.preset, e.at) for e in history]
    assert {"admin"} == {e.actor_id for e in history}
    assert "to 'Field sales'" == history[1].detail
    assert PresetBook(version=5) == svc.presets("acme")


def test_renaming_a_preset_moves_its_assignments(svc: LabelSync) -> None:
    with_two_presets(svc)
    svc.rename_preset("acme", actor_id="admin", name="Sales", new_name="Field")

    assert ("Field",) == tuple(
        a.preset for a in svc.presets("acme").assignments if a.group == "sales"
    )


def test_deleting_a_preset_drops_its_assignments(svc: LabelSync) -> None:
    with_two_presets(svc)
    svc.delete_preset("acme", actor_id="admin", name="Sales")

    book = svc.presets("acme")
    assert (SUPPORT,) == book.presets
    assert (Assignment(group="support", preset="Support"),) == book.assignments


def test_a_preset_change_by_a_non_admin_is_refused_and_writes_nothing(svc: LabelSync) -> None:
    with pytest.raises(PermissionDenied):
        svc.create_preset("acme", actor_id="ana", preset=SALES)
    assert PresetBook() == svc.presets("acme")
    assert [] == svc.preset_history("acme")


def test_bad_preset_edits_are_refused_and_write_nothing(svc: LabelSync) -> None:
    svc.create_preset("acme", actor_id="admin", preset=SALES)
    before = (svc.presets("acme"), svc.preset_history("acme"))

    with pytest.raises(AlreadyExists, match="Sales"):
        svc.create_preset("acme", actor_id="admin", preset=SALES)
    with pytest.raises(NotFound, match="Nope"):
        svc.assign_preset("acme", actor_id="admin", group="sales", name="Nope")
    with pytest.raises(InvalidInput, match="group"):
        svc.assign_preset("acme", actor_id="admin", group=" ", name="Sales")
    with pytest.raises(NotFound, match="sales"):
        svc.assign_preset("acme", actor_id="admin", group="sales", name=None)
    with pytest.raises(InvalidInput, match="new_name"):
        svc.rename_preset("acme", actor_id="admin", name="Sales", new_name="")
    with pytest.raises(InvalidInput, match=r"Preset\.locks"):
        Preset(name="x", defaults=BOTH, locks="SENT")

    assert before == (svc.presets("acme"), svc.preset_history("acme"))


def test_with_onboarding_on_a_new_user_gets_its_first_groups_preset(svc: LabelSync) -> None:
    """R21: the preset of the first matching group, else the tenant's defaults (B4)."""
    with_two_presets(svc)
    svc.push("acme", actor_id="admin", defaults=NEITHER)
    svc.set_onboarding("acme", actor_id="admin", enabled=True)

    both = svc.add_user("acme", person("gus", "support", "sales"))
    support = svc.add_user("acme", person("hal", "support"))
    nobody = svc.add_user("acme", person("ivy", "marketing", synced=("INBOX",)))

    assert LabelSet(["INBOX", "SENT"]) == both.synced == svc.user("acme", "gus").synced
    assert LabelSet(["INBOX"]) == support.synced
    assert LabelSet() == nobody.synced


def test_with_onboarding_off_a_new_user_gets_nothing_even_with_a_preset(svc: LabelSync) -> None:
    """R6 stays: onboarding off means point in time, presets or not."""
    with_two_presets(svc)

    assert LabelSet() == svc.add_user("acme", person("gus", "sales")).synced


def test_applying_a_preset_is_one_push_to_its_groups(svc: LabelSync) -> None:
    with_two_presets(svc)

    report = svc.apply_preset("acme", actor_id="admin", name="Support")

    assert Audience.groups({"support"}) == report.job.audience
    assert (3, INBOX_ONLY) == (report.job.total, report.job.defaults)
    assert {"cy", "di", "ed"} == {c.user_id for c in svc.changes(report.job.id).changed}
    last = svc.preset_history("acme")[-1]
    assert (PresetAction.APPLIED, "Support") == (last.action, last.preset)
    assert f"push {report.job.id} to group support" == last.detail
    assert None is svc.tenant("acme").defaults  # a push to some groups is not everyone's setting


def test_applying_a_preset_assigned_to_no_group_is_refused(svc: LabelSync) -> None:
    svc.create_preset("acme", actor_id="admin", preset=SALES)

    with pytest.raises(InvalidInput, match="assigned to no group"):
        svc.apply_preset("acme", actor_id="admin", name="Sales")
    assert [] == svc.jobs("acme")


def test_what_if_compares_presets_side_by_side() -> None:
    tenant: Tenant = acme()
    book = PresetBook(presets=(SALES, SUPPORT))

    table = compare(tenant, {p.name: p.defaults for p in book.presets})
    per_group = compare(tenant, {"Sales": SALES.defaults}, audience=Audience.groups({"sales"}))

    assert ["Sales", "Support"] == [row.candidate for row in table.rows]
    assert 3 == per_group.users


def test_coverage_measures_a_user_against_its_groups_preset(svc: LabelSync) -> None:
    """R22 with R21: drifted means "not as the User's preset says" where a preset applies."""
    with_two_presets(svc)
    svc.apply_preset("acme", actor_id="admin", name="Support")
    svc.set_selection("acme", "di", LabelSet(["INBOX", "SENT"]))  # di selects Sent herself

    seen = svc.coverage("acme")

    assert CoverageStatus.DRIFTED == seen.row("di").status
    assert (SystemLabel.SENT,) == seen.row("di").drifted
    # ed is in sales first: the Sales preset (both on) is his, and Support left Sent off.
    assert (SystemLabel.SENT,) == seen.row("ed").drifted
    assert CoverageStatus.COVERED == seen.row("fay").status  # no preset, no tenant defaults


def test_a_label_locked_by_the_users_preset_cannot_be_changed_by_the_user(svc: LabelSync) -> None:
    """R21 with R17: Sales locks Sent; ana (sales) may change Inbox, not Sent. Nothing written.

    The refusal is policy's `LabelLocked` (a `PermissionDenied`), as for the tenant's locks."""
    with_two_presets(svc)
    svc.apply_preset("acme", actor_id="admin", name="Sales")
    before = svc.user("acme", "ana")

    with pytest.raises(LabelLocked, match="SENT is locked by preset 'Sales'") as refused:
        svc.set_selection("acme", "ana", LabelSet(["INBOX"]))
    assert isinstance(refused.value, PermissionDenied)
    assert ("ana", "SENT", "preset 'Sales'") == (
        refused.value.user_id,
        refused.value.label,
        refused.value.by,
    )
    assert before == svc.user("acme", "ana")
    assert LabelSet(["SENT"]) == svc.set_selection("acme", "ana", LabelSet(["SENT"])).synced
    # di's group (support) has a preset without locks: free to change.
    assert LabelSet(["SENT"]) == svc.set_selection("acme", "di", LabelSet(["SENT"])).synced


def test_a_keep_user_choices_preset_leaves_its_users_own_choices(svc: LabelSync) -> None:
    """R21 with R16, R15: a KEEP_USER_CHOICES preset pushes in that mode to its group only.

    ana (sales) turned Inbox on herself; the preset (Inbox off, Sent on) keeps her
    Inbox, counts it kept, and still sets Sent; ed (sales, nothing of his own)
    gets both; di (support) is not in the audience and stays as she was."""
    keep = Preset(
        name="Keep", defaults=Defaults(inbox=False, sent=True), mode=PushMode.KEEP_USER_CHOICES
    )
    svc.create_preset("acme", actor_id="admin", preset=keep)
    svc.assign_preset("acme", actor_id="admin", group="sales", name="Keep")
    svc.set_selection("acme", "ana", LabelSet(["INBOX"]))
    di_before = svc.user("acme", "di")

    report = svc.apply_preset("acme", actor_id="admin", name="Keep")

    job = report.job
    assert (PushMode.KEEP_USER_CHOICES, Audience.groups({"sales"})) == (job.mode, job.audience)
    assert LabelSet(["INBOX", "SENT"]) == svc.user("acme", "ana").synced  # her Inbox kept
    assert Origin.USER == svc.user("acme", "ana").provenance.inbox.origin
    assert Origin.PUSH == svc.user("acme", "ana").provenance.sent.origin
    assert LabelSet(["SENT"]) == svc.user("acme", "ed").synced
    assert 1 == job.counts.user_choice_kept
    assert di_before == svc.user("acme", "di")


def test_a_presets_locks_are_applied_in_every_mode(svc: LabelSync) -> None:
    """R21 with R17: a label the preset locks is pushed even where its mode keeps choices."""
    keep = Preset(
        name="Keep",
        defaults=Defaults(inbox=False, sent=True),
        locks=frozenset({SystemLabel.INBOX}),
        mode=PushMode.KEEP_USER_CHOICES,
    )
    svc.create_preset("acme", actor_id="admin", preset=keep)
    svc.assign_preset("acme", actor_id="admin", group="sales", name="Keep")
    svc.set_selection("acme", "ana", LabelSet(["INBOX"]), actor_id="admin")  # an admin may
    assert Origin.USER == svc.user("acme", "ana").provenance.inbox.origin

    report = svc.apply_preset("acme", actor_id="admin", name="Keep")

    assert frozenset({SystemLabel.INBOX}) == report.job.locked
    assert LabelSet(["SENT"]) == svc.user("acme", "ana").synced  # locked Inbox overridden
    assert 0 == report.job.counts.user_choice_kept
