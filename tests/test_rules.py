"""The push rules as laws over generated tenants, each citing the rule it states."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Defaults,
    InvalidInput,
    LabelChange,
    LabelSet,
    Mailbox,
    Permission,
    PermissionDenied,
    Provider,
    PushCounts,
    PushRecord,
    Skip,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    email_tab,
    onboard,
)
from labelsync.exceptions import UnknownUser
from labelsync.model import SYNC_ENABLED_NOTE
from labelsync.policy import Provenance
from labelsync.providers import gmail_label, graph_folder
from labelsync.rules import apply_to_user, onboarding_stamp
from labelsync.testing import defaults, tenants, user_ids, users


def role_ids(user: User) -> set[str]:
    """The ids of the labels holding INBOX/SENT in the User's mailbox, read off the labels."""
    if user.mailbox is None:
        return set()
    return {label.id for label in user.mailbox.labels if label.system is not None}


def selections(tenant: Tenant) -> dict[str, LabelSet]:
    return {user.id: user.synced for user in tenant.users}


def replay(tenant: Tenant, changed: Iterable[LabelChange]) -> dict[str, LabelSet]:
    """The selections after applying `changed` to `tenant` by hand (the R9 oracle)."""
    after = {user.id: set(user.synced.ids) for user in tenant.users}
    for change in changed:
        if change.selected:
            after[change.user_id].add(change.label_id)
        else:
            after[change.user_id].discard(change.label_id)
    return {user_id: LabelSet(ids) for user_id, ids in after.items()}


def expected_skips(tenant: Tenant) -> list[tuple[str, SystemLabel | None, SkipReason]]:
    skips: list[tuple[str, SystemLabel | None, SkipReason]] = []
    for user in tenant.users:
        if user.mailbox is None:
            skips.append((user.id, None, SkipReason.NO_MAILBOX))
            continue
        roles = {label.system for label in user.mailbox.labels}
        skips.extend(
            (user.id, role, SkipReason.LABEL_MISSING) for role in SystemLabel if role not in roles
        )
    return skips


def as_rows(skips: Iterable[Skip]) -> list[tuple[str, SystemLabel | None, SkipReason]]:
    return [(skip.user_id, skip.label, skip.reason) for skip in skips]


# R3, R4, R5


@given(tenants(), defaults())
def test_checked_labels_end_selected_and_unchecked_ones_deselected(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R3/R4: after a push each User's INBOX/SENT selection equals its checkbox, whatever before."""
    after, _ = apply_defaults(tenant, pushed)
    for user in after.users:
        if user.mailbox is None:
            continue
        for role, checked in pushed.items():
            label = user.mailbox.label(role)
            if label is not None:
                assert checked == (label.id in user.synced), (user.id, role)


@given(tenants(), defaults())
def test_other_labels_and_stale_ids_are_untouched(tenant: Tenant, pushed: Defaults) -> None:
    """R5: a push never adds or removes a custom label or a stale id in any selection."""
    after, _ = apply_defaults(tenant, pushed)
    for before_user, after_user in zip(tenant.users, after.users, strict=True):
        others = role_ids(before_user)
        assert before_user.synced.ids - others == after_user.synced.ids - others


@given(tenants(), defaults())
def test_users_without_a_mailbox_keep_their_selection_and_are_the_same_object(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R7/R5: a User with no mailbox has nothing to sync; the push leaves them as they are."""
    after, _ = apply_defaults(tenant, pushed)
    for before_user, after_user in zip(tenant.users, after.users, strict=True):
        if before_user.mailbox is None:
            assert before_user is after_user


# R7


@given(tenants(), defaults())
def test_every_skip_is_reported_with_its_reason_and_none_is_silent(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R7: NO_MAILBOX exactly for Users without a mailbox, LABEL_MISSING per missing role."""
    _, changes = apply_defaults(tenant, pushed)
    assert expected_skips(tenant) == as_rows(changes.skipped)


@given(tenants(), defaults())
def test_skipped_users_and_labels_get_no_changes(tenant: Tenant, pushed: Defaults) -> None:
    """R7: whatever is skipped is not also changed."""
    _, changes = apply_defaults(tenant, pushed)
    skipped = {(skip.user_id, skip.label) for skip in changes.skipped}
    for change in changes.changed:
        assert (change.user_id, None) not in skipped
        assert (change.user_id, change.label) not in skipped


# R9


@given(tenants(), defaults())
def test_replaying_the_changes_on_the_old_tenant_gives_the_new_selections(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R9: new state == old state + exactly the reported changes."""
    after, changes = apply_defaults(tenant, pushed)
    assert selections(after) == replay(tenant, changes.changed)


@given(tenants(), defaults())
def test_every_reported_change_flips_a_label_of_that_role(tenant: Tenant, pushed: Defaults) -> None:
    """R9: each change names the label holding its role (not one named like it) and flips it."""
    _, changes = apply_defaults(tenant, pushed)
    for change in changes.changed:
        before = tenant.user(change.user_id)
        assert before.mailbox is not None
        label = before.mailbox.get(change.label_id)
        assert label is not None
        assert change.label is label.system
        assert pushed.checked(change.label) is change.selected
        assert (change.label_id in before.synced) is not change.selected


@given(tenants(), defaults())
def test_only_users_whose_selection_changed_are_reported_and_their_version_moves_by_one(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R9: a User is reported iff their selection changed; the version bumps by one exactly then."""
    after, changes = apply_defaults(tenant, pushed)
    reported = set(changes.changed_user_ids)
    for before_user, after_user in zip(tenant.users, after.users, strict=True):
        changed = before_user.synced != after_user.synced
        assert changed == (before_user.id in reported)
        assert before_user.version + int(changed) == after_user.version


@given(tenants(), defaults())
def test_a_changed_selection_differs_only_on_inbox_and_sent_ids(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R9/R5: the symmetric difference of a changed selection lies within the INBOX/SENT ids."""
    after, _ = apply_defaults(tenant, pushed)
    for before_user, after_user in zip(tenant.users, after.users, strict=True):
        assert before_user.synced.ids ^ after_user.synced.ids <= role_ids(before_user)


@given(tenants(), defaults())
def test_changes_are_listed_in_roster_order(tenant: Tenant, pushed: Defaults) -> None:
    """R9: `changed` follows the roster, so a reader can match it to the User list."""
    _, changes = apply_defaults(tenant, pushed)
    positions = [[u.id for u in tenant.users].index(c.user_id) for c in changes.changed]
    assert sorted(positions) == positions


@given(tenants(), defaults())
def test_the_changes_count_the_whole_roster(tenant: Tenant, pushed: Defaults) -> None:
    """R6/R9: the push looks at every User of the roster, skipped ones included."""
    _, changes = apply_defaults(tenant, pushed)
    assert len(tenant.users) == changes.users


def test_labels_are_recognised_by_role_not_by_display_name() -> None:
    """R9: a custom folder named "Inbox" is not INBOX; a German "Posteingang" is."""
    mailbox = Mailbox(
        provider=Provider.MICROSOFT,
        address="ana@acme.de",
        labels=(
            graph_folder("AAMk-custom", "Inbox"),
            graph_folder("AAMk-in", "Posteingang", "inbox"),
            graph_folder("AAMk-sent", "Gesendete Elemente", "sentitems"),
            graph_folder("AAMk-sent-custom", "Sent Items"),
        ),
    )
    ana = User(id="ana", email="ana@acme.de", mailbox=mailbox, synced=LabelSet(["AAMk-custom"]))
    tenant = Tenant(id="t1", name="Acme", users=(ana,))

    after, changes = apply_defaults(tenant, Defaults(inbox=True, sent=True))

    assert LabelSet(["AAMk-custom", "AAMk-in", "AAMk-sent"]) == after.user("ana").synced
    assert (
        LabelChange(user_id="ana", label=SystemLabel.INBOX, label_id="AAMk-in", selected=True),
        LabelChange(user_id="ana", label=SystemLabel.SENT, label_id="AAMk-sent", selected=True),
    ) == changes.changed


def test_a_stale_inbox_id_is_not_the_mailbox_inbox() -> None:
    """R5/R9: a Gmail "INBOX" id left from a former mailbox is stale in an Outlook mailbox."""
    mailbox = Mailbox(
        provider=Provider.MICROSOFT,
        address="bo@acme.io",
        labels=(graph_folder("AAMk-in", "Inbox", "inbox"),),
    )
    bo = User(id="bo", email="bo@acme.io", mailbox=mailbox, synced=LabelSet(["INBOX", "AAMk-in"]))
    after, _ = apply_defaults(
        Tenant(id="t1", name="Acme", users=(bo,)), Defaults(inbox=False, sent=False)
    )
    assert LabelSet(["INBOX"]) == after.user("bo").synced


# R10


@given(tenants(), defaults())
def test_pushing_twice_changes_nothing_the_second_time(tenant: Tenant, pushed: Defaults) -> None:
    """R10: pushing the same defaults again reports no changes and shares every User."""
    once, _ = apply_defaults(tenant, pushed)
    twice, changes = apply_defaults(once, pushed)
    assert () == changes.changed
    assert not changes
    assert all(a is b for a, b in zip(once.users, twice.users, strict=True))


@given(tenants(), defaults())
def test_a_second_identical_push_reports_the_same_skips(tenant: Tenant, pushed: Defaults) -> None:
    """R7/R10: skips are not a change, so they are reported by every push, not only the first."""
    once, first = apply_defaults(tenant, pushed)
    _, second = apply_defaults(once, pushed)
    assert first.skipped == second.skipped


@given(tenants(), defaults(), defaults())
def test_the_last_push_wins(tenant: Tenant, first: Defaults, last: Defaults) -> None:
    """R10: pushing d1 then d2 leaves the same selections as d2 alone."""
    via_first, _ = apply_defaults(apply_defaults(tenant, first)[0], last)
    direct, _ = apply_defaults(tenant, last)
    assert selections(direct) == selections(via_first)
    assert last == via_first.defaults


# Roster order, purity, sharing


@given(tenants(), defaults(), st.data())
def test_the_order_of_users_does_not_matter(
    tenant: Tenant, pushed: Defaults, data: st.DataObject
) -> None:
    """R3-R7: each User's outcome depends on that User alone, not on the roster order."""
    shuffled = tenant.with_users(data.draw(st.permutations(tenant.users)))
    after, changes = apply_defaults(tenant, pushed)
    after_shuffled, changes_shuffled = apply_defaults(shuffled, pushed)
    for user in tenant.users:
        assert after.user(user.id) == after_shuffled.user(user.id)
        assert [c for c in changes.changed if c.user_id == user.id] == [
            c for c in changes_shuffled.changed if c.user_id == user.id
        ]
        assert [s for s in changes.skipped if s.user_id == user.id] == [
            s for s in changes_shuffled.skipped if s.user_id == user.id
        ]


@given(tenants(), defaults())
def test_a_push_never_mutates_its_inputs(tenant: Tenant, pushed: Defaults) -> None:
    """B1: apply_defaults is pure, so it is its own preview; its inputs stay as they were."""
    tenant_copy, defaults_copy = copy.deepcopy(tenant), copy.deepcopy(pushed)
    users_before = tenant.users
    apply_defaults(tenant, pushed)
    assert tenant_copy == tenant
    assert defaults_copy == pushed
    assert users_before is tenant.users
    assert [u.synced for u in tenant_copy.users] == [u.synced for u in tenant.users]


@given(tenants(), defaults())
def test_unchanged_users_are_the_same_objects_in_the_new_tenant(
    tenant: Tenant, pushed: Defaults
) -> None:
    """Structural sharing: a User the push did not change is shared, a changed one is new.

    R16: the one change without a label change is marking a User with a mailbox
    covered; such a User keeps their very selection and version.
    """
    after, changes = apply_defaults(tenant, pushed)
    reported = set(changes.changed_user_ids)
    for before_user, after_user in zip(tenant.users, after.users, strict=True):
        newly_covered = before_user.mailbox is not None and not before_user.provenance.covered
        assert (before_user.id not in reported and not newly_covered) == (before_user is after_user)
        if before_user.id not in reported:
            assert before_user.synced is after_user.synced
            assert before_user.version == after_user.version


@given(tenants(), defaults())
def test_a_push_records_the_checkboxes_and_keeps_the_rest_of_the_tenant(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R11: the new tenant holds the pushed checkbox settings; the pure push writes no audit."""
    after, _ = apply_defaults(tenant, pushed)
    assert pushed == after.defaults
    assert (tenant.id, tenant.name, tenant.last_push, tenant.onboard_new_users) == (
        after.id,
        after.name,
        after.last_push,
        after.onboard_new_users,
    )
    assert [u.id for u in tenant.users] == [u.id for u in after.users]
    assert all(u.id in after for u in tenant.users)


@given(tenants(), defaults())
def test_apply_to_user_agrees_with_apply_defaults_for_every_user(
    tenant: Tenant, pushed: Defaults
) -> None:
    """One rule, two drivers: the per-User function gives what the roster push gives that User."""
    after, changes = apply_defaults(tenant, pushed)
    for user in tenant.users:
        outcome = apply_to_user(user, pushed)
        assert after.user(user.id) == outcome.user
        assert tuple(c for c in changes.changed if c.user_id == user.id) == outcome.changed
        assert tuple(s for s in changes.skipped if s.user_id == user.id) == outcome.skipped
        newly_covered = user.mailbox is not None and not user.provenance.covered
        assert (outcome.user is user) == (outcome.changed == () and not newly_covered)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(
            lambda: apply_defaults(Tenant(id="t1", name="Acme"), (True, True)),  # type: ignore[arg-type]
            "defaults",
            id="apply_defaults given a tuple",
        ),
        pytest.param(
            lambda: apply_defaults("t1", Defaults(inbox=True, sent=True)),  # type: ignore[arg-type]
            "tenant",
            id="apply_defaults given an id",
        ),
        pytest.param(
            lambda: apply_to_user("u1", Defaults(inbox=True, sent=True)),  # type: ignore[arg-type]
            "user",
            id="apply_to_user given an id",
        ),
        pytest.param(
            lambda: apply_to_user(User(id="u1", email="a@x.io"), {"inbox": True}),  # type: ignore[arg-type]
            "defaults",
            id="apply_to_user given a dict",
        ),
        pytest.param(
            lambda: email_tab("u1"),  # type: ignore[arg-type]
            "user",
            id="email_tab given an id",
        ),
    ],
)
def test_the_rules_refuse_values_of_the_wrong_type(call: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert field == caught.value.field


# B4 onboard


@given(tenants(last_push=True), users(), st.data())
def test_onboarding_gives_a_new_user_the_last_pushed_defaults(
    tenant: Tenant, newcomer: User, data: st.DataObject
) -> None:
    """B4: onboard applies the last push's defaults to that one User and to nobody else."""
    assert tenant.last_push is not None
    user_id = data.draw(user_ids().filter(lambda uid: uid not in tenant))
    # A new User: no push or onboarding covered them yet (R16).
    grown = tenant.adding(attrs.evolve(newcomer, id=user_id, provenance=Provenance()))
    expected = apply_to_user(
        grown.user(user_id),
        tenant.last_push.defaults,
        stamp=onboarding_stamp(tenant.last_push.job_id),
    )

    onboarded, changes = onboard(grown, user_id)

    assert expected.user == onboarded.user(user_id)
    assert expected.changed == changes.changed
    assert expected.skipped == changes.skipped
    assert 1 == changes.users
    assert all(a is b for a, b in zip(grown.users[:-1], onboarded.users[:-1], strict=True))
    assert (grown.defaults, grown.last_push) == (onboarded.defaults, onboarded.last_push)


def test_onboard_uses_the_last_push_not_the_current_checkboxes(
    pushed_tenant: Tenant,
) -> None:
    """B4: the checkboxes may have changed since; onboarding follows what was pushed."""
    assert pushed_tenant.last_push is not None
    assert Defaults(inbox=True, sent=False) == pushed_tenant.last_push.defaults
    onboarded, _ = onboard(pushed_tenant, "new")
    assert LabelSet(["INBOX", "Label_7"]) == onboarded.user("new").synced


def test_onboarding_a_covered_user_again_is_refused_unless_forced(
    pushed_tenant: Tenant,
) -> None:
    """Onboarding covers only a User no push or onboarding covered; force overrides it."""
    once, _ = onboard(pushed_tenant, "new")
    assert once.user("new").provenance.covered
    with pytest.raises(InvalidInput) as caught:
        onboard(once, "new")
    assert ("user_id", "new") == (caught.value.field, caught.value.value)
    assert "force=True" in str(caught.value)
    twice, changes = onboard(once, "new", force=True)
    assert once is twice
    assert not changes


def test_onboard_without_a_finished_push_raises_invalid_input() -> None:
    tenant = Tenant(id="t1", name="Acme", users=(User(id="u1", email="a@x.io"),))
    with pytest.raises(InvalidInput) as caught:
        onboard(tenant, "u1")
    assert ("Tenant.last_push", None) == (caught.value.field, caught.value.value)
    assert "'t1'" in str(caught.value)


def test_onboard_an_unknown_user_raises_unknown_user(pushed_tenant: Tenant) -> None:
    with pytest.raises(UnknownUser) as caught:
        onboard(pushed_tenant, "ghost")
    assert "ghost" == caught.value.value


@pytest.fixture
def pushed_tenant() -> Tenant:
    """A tenant whose last push was Inbox on, Sent off, and whose checkboxes now say otherwise."""
    mailbox = Mailbox(
        provider=Provider.GMAIL,
        address="new@acme.io",
        labels=(
            gmail_label("INBOX", "Inbox"),
            gmail_label("SENT", "Sent"),
            gmail_label("Label_7", "Project X"),
        ),
    )
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    record = PushRecord(
        job_id="job-1",
        actor_id="admin",
        defaults=Defaults(inbox=True, sent=False),
        started_at=at,
        finished_at=at,
        roster_size=0,
        counts=PushCounts(),
    )
    newcomer = User(
        id="new", email="new@acme.io", mailbox=mailbox, synced=LabelSet(["SENT", "Label_7"])
    )
    return Tenant(
        id="t1",
        name="Acme",
        users=(newcomer,),
        defaults=Defaults(inbox=False, sent=True),
        last_push=record,
    )


# R8 Email tab


@given(users())
def test_the_email_tab_marks_exactly_the_selected_labels_with_the_note(user: User) -> None:
    """R8: one row per mailbox label (a hidden one only if it syncs or holds a role); selected
    iff its id is synced, and then the note is shown, with a guessed role or hiding noted too."""
    visible = attrs.evolve(user, permissions={Permission.EMAIL_SYNC})
    tab = email_tab(visible)
    labels = () if user.mailbox is None else user.mailbox.labels
    shown = [lb for lb in labels if not lb.hidden or lb.id in user.synced or lb.is_system]
    assert sorted(label.id for label in shown) == sorted(row.label.id for row in tab.rows)
    for row in tab.rows:
        assert (row.label.id in user.synced) == row.selected
        expected = [SYNC_ENABLED_NOTE] if row.selected else []
        if row.label.guessed:
            expected.append("Recognised as Sent by its name: your mail server does not mark it")
        if row.label.hidden:
            expected.append("Hidden in your mail app")
        assert ("; ".join(expected) or None) == row.note


@given(users(mailbox=True))
def test_the_email_tab_lists_inbox_then_sent_first(user: User) -> None:
    """R8: the system labels lead the tab, INBOX then SENT, then the User's own labels."""
    visible = attrs.evolve(user, permissions={Permission.EMAIL_SYNC})
    roles = [row.label.system for row in email_tab(visible).rows]
    present = [role for role in SystemLabel if role in roles]
    assert present == roles[: len(present)]
    assert all(role is None for role in roles[len(present) :])


@given(tenants(), st.data())
def test_after_a_push_with_both_checked_the_tab_shows_inbox_and_sent_selected(
    tenant: Tenant, data: st.DataObject
) -> None:
    """R8: after pushing Inbox+Sent, every visible tab shows them selected with the note
    (followed, for a role guessed from the name, by the note saying so)."""
    after, _ = apply_defaults(tenant, Defaults(inbox=True, sent=True))
    for user in after.users:
        if not user.can(Permission.EMAIL_SYNC):
            continue
        for row in email_tab(user).rows:
            if row.label.system is not None:
                assert row.selected
                assert row.note is not None
                assert SYNC_ENABLED_NOTE == row.note.split("; ")[0]


@given(tenants(), defaults())
def test_users_without_email_sync_cannot_see_the_tab_but_are_pushed(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R8: EMAIL_SYNC gates only the tab; the push applies to Users without it too."""
    after, _ = apply_defaults(tenant, pushed)
    for user in after.users:
        if user.can(Permission.EMAIL_SYNC):
            continue
        with pytest.raises(PermissionDenied):
            email_tab(user)
        if user.mailbox is not None:
            for role, checked in pushed.items():
                label_id = user.mailbox.label_id(role)
                if label_id is not None:
                    assert checked == (label_id in user.synced)


def test_a_user_without_a_mailbox_sees_an_empty_tab() -> None:
    tab = email_tab(User(id="u1", email="a@x.io", permissions={Permission.EMAIL_SYNC}))
    assert ("u1", None, ()) == (tab.user_id, tab.address, tab.rows)
    assert "u1: no mailbox connected" == str(tab)


def test_permission_denied_names_the_user_and_the_permission() -> None:
    with pytest.raises(PermissionDenied) as caught:
        email_tab(User(id="u1", email="a@x.io", permissions={Permission.ADMIN_ACCESS}))
    assert "'u1'" in str(caught.value)
    assert "EMAIL_SYNC" in str(caught.value)


# -- the cyclic collector: paused only for large what-ifs, never by a push, thread-safe

import gc  # noqa: E402
import threading  # noqa: E402

from labelsync import LabelSync, rules  # noqa: E402
from labelsync.adapters.clock import FixedClock  # noqa: E402
from labelsync.adapters.memory import InMemoryStore  # noqa: E402
from labelsync.synthetic import ADMIN_ID, synthetic_tenant  # noqa: E402


@pytest.fixture
def collector_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every gc.disable/gc.enable call, recorded instead of flipping the real collector."""
    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: calls.append("enable"))
    monkeypatch.setattr(gc, "isenabled", lambda: True)
    return calls


def test_a_push_never_flips_the_process_wide_collector(collector_calls: list[str]) -> None:
    """A host runs pushes in threads beside its requests; the collector is theirs too."""
    service = LabelSync(
        store=InMemoryStore(), clock=FixedClock(dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    )
    service.create_tenant(synthetic_tenant(2_000, seed=3, tenant_id="t1"))
    report = service.push("t1", actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=True))
    assert 2_000 == report.job.processed
    assert [] == collector_calls


def test_a_small_what_if_leaves_the_collector_alone(collector_calls: list[str]) -> None:
    apply_defaults(synthetic_tenant(100, seed=3), Defaults(inbox=True, sent=False))
    assert [] == collector_calls


def test_a_large_what_if_pauses_the_collector_once_and_restores_it(
    collector_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "PAUSE_COLLECTOR_FROM", 100)
    apply_defaults(synthetic_tenant(100, seed=3), Defaults(inbox=True, sent=False))
    assert ["disable", "enable"] == collector_calls


def test_overlapping_pauses_in_two_threads_keep_the_collector_off_until_the_last_ends() -> None:
    """The old per-call pause let the first thread to finish turn it back on under the other."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with rules._collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with rules._collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.isenabled()
        seen["after both ended"] = gc.isenabled()

    assert gc.isenabled()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        gc.enable()
    assert {"after the first ended": False, "after both ended": True} == seen


def test_a_pause_leaves_a_collector_the_host_turned_off_turned_off() -> None:
    gc.disable()
    try:
        with rules._collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@given(tenants(), defaults())
def test_users_flipping_the_same_ids_from_the_same_selection_share_the_new_selection(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R9 holds with sharing: each new selection equals the old one plus its own changes."""
    new, changes = apply_defaults(tenant, pushed)
    assert replay(tenant, changes.changed) == selections(new)
    by_key: dict[tuple[frozenset[str], frozenset[str]], LabelSet] = {}
    for before, after in zip(tenant.users, new.users, strict=True):
        if after.synced is not before.synced:
            key = (before.synced.ids, before.synced.ids ^ after.synced.ids)
            assert by_key.setdefault(key, after.synced) is after.synced
