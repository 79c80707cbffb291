"""Changes: the typed diff of a push, its counts, summary, records and repr (R7, R9, R11, B2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given

from labelsync import (
    Changes,
    Defaults,
    InvalidInput,
    LabelChange,
    LabelSet,
    Mailbox,
    Provider,
    PushCounts,
    Skip,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.changes import LabelSummary
from labelsync.providers import gmail_label
from labelsync.testing import defaults, tenants

Outcome = str  # "selected" | "deselected" | "unchanged" | "no_mailbox" | "label_missing"


def outcomes(before: Tenant, after: Tenant) -> Counter[tuple[SystemLabel, Outcome]]:
    """What happened to each (User, system label), worked out from the two tenants alone."""
    tally: Counter[tuple[SystemLabel, Outcome]] = Counter()
    for old, new in zip(before.users, after.users, strict=True):
        for role in SystemLabel:
            label = None if old.mailbox is None else old.mailbox.label(role)
            if old.mailbox is None:
                outcome = "no_mailbox"
            elif label is None:
                outcome = "label_missing"
            elif (label.id in old.synced) == (label.id in new.synced):
                outcome = "unchanged"
            elif label.id in new.synced:
                outcome = "selected"
            else:
                outcome = "deselected"
            tally[role, outcome] += 1
    return tally


@given(tenants(), defaults())
def test_the_summary_counts_each_label_as_the_tenants_show(
    tenant: Tenant, pushed: Defaults
) -> None:
    """B2/R7: per label, selected + deselected + unchanged + skips cover the roster exactly."""
    after, changes = apply_defaults(tenant, pushed)
    tally = outcomes(tenant, after)
    summary = changes.summary()
    assert len(tenant.users) == summary.users
    expected = tuple(
        LabelSummary(
            label=role,
            selected=tally[role, "selected"],
            deselected=tally[role, "deselected"],
            unchanged=tally[role, "unchanged"],
            no_mailbox=tally[role, "no_mailbox"],
            label_missing=tally[role, "label_missing"],
        )
        for role in SystemLabel
    )
    assert expected == summary.labels


@given(tenants(), defaults())
def test_the_counts_match_the_tenants_before_and_after(tenant: Tenant, pushed: Defaults) -> None:
    """R11: users changed, labels selected/deselected and skips by reason, counted independently."""
    after, changes = apply_defaults(tenant, pushed)
    tally = outcomes(tenant, after)
    expected = PushCounts(
        users_changed=sum(
            old.synced != new.synced for old, new in zip(tenant.users, after.users, strict=True)
        ),
        selected=sum(n for (_, outcome), n in tally.items() if outcome == "selected"),
        deselected=sum(n for (_, outcome), n in tally.items() if outcome == "deselected"),
        no_mailbox=sum(user.mailbox is None for user in tenant.users),
        label_missing=sum(n for (_, outcome), n in tally.items() if outcome == "label_missing"),
    )
    assert expected == changes.counts()
    assert expected == changes.summary().counts
    assert expected.changes == len(changes)
    assert bool(expected.changes) is bool(changes)
    assert {
        SkipReason.NO_MAILBOX: expected.no_mailbox,
        SkipReason.LABEL_MISSING: expected.label_missing,
    } == changes.skipped_by_reason()


@given(tenants(), defaults())
def test_changes_survive_a_round_trip_through_their_records(
    tenant: Tenant, pushed: Defaults
) -> None:
    """R9: rebuilding Changes from its LabelChange and Skip records gives an equal Changes."""
    _, changes = apply_defaults(tenant, pushed)
    rebuilt = Changes.of(changes.changed, changes.skipped, users=changes.users)
    assert changes == rebuilt
    assert changes.changed == rebuilt.changed
    assert changes.skipped == rebuilt.skipped
    assert changes.counts() == rebuilt.counts()


@given(tenants(), defaults())
def test_to_records_has_one_plain_row_per_change_and_per_skip(
    tenant: Tenant, pushed: Defaults
) -> None:
    """B1: records mirror the typed changes and skips, with names instead of enums."""
    _, changes = apply_defaults(tenant, pushed)
    expected = [
        {
            "kind": "change",
            "user_id": c.user_id,
            "label": c.label.name,
            "label_id": c.label_id,
            "selected": c.selected,
            "reason": None,
        }
        for c in changes.changed
    ] + [
        {
            "kind": "skip",
            "user_id": s.user_id,
            "label": None if s.label is None else s.label.name,
            "label_id": None,
            "selected": None,
            "reason": s.reason.name,
        }
        for s in changes.skipped
    ]
    assert expected == changes.to_records()


def mailbox(*label_ids: str) -> Mailbox:
    names = {"INBOX": "Inbox", "SENT": "Sent"}
    return Mailbox(
        provider=Provider.GMAIL,
        address="x@acme.io",
        labels=tuple(gmail_label(i, names.get(i, i)) for i in label_ids),
    )


@pytest.fixture
def pushed() -> Changes:
    """Inbox+Sent pushed to: ana (nothing selected), bo (no mailbox), cy (no SENT, INBOX on)."""
    tenant = Tenant(
        id="t1",
        name="Acme",
        users=(
            User(id="ana", email="ana@acme.io", mailbox=mailbox("INBOX", "SENT", "Label_7")),
            User(id="bo", email="bo@acme.io"),
            User(
                id="cy",
                email="cy@acme.io",
                mailbox=mailbox("INBOX"),
                synced=LabelSet(["INBOX"]),
            ),
        ),
    )
    return apply_defaults(tenant, Defaults(inbox=True, sent=True))[1]


def test_a_push_lists_its_changes_and_skips_as_typed_records(pushed: Changes) -> None:
    assert (
        LabelChange(user_id="ana", label=SystemLabel.INBOX, label_id="INBOX", selected=True),
        LabelChange(user_id="ana", label=SystemLabel.SENT, label_id="SENT", selected=True),
    ) == pushed.changed
    assert (
        Skip(user_id="bo", label=None, reason=SkipReason.NO_MAILBOX),
        Skip(user_id="cy", label=SystemLabel.SENT, reason=SkipReason.LABEL_MISSING),
    ) == pushed.skipped
    assert ("ana",) == pushed.changed_user_ids


def test_the_repr_reads_as_a_sentence_of_counts(pushed: Changes) -> None:
    assert (
        "<Changes: 3 Users, 1 changed (+2 selected, -0 deselected), "
        "skipped 1 no mailbox, 1 label missing>"
    ) == repr(pushed)


def test_the_summary_prints_a_table_per_label(pushed: Changes) -> None:
    lines = str(pushed.summary()).splitlines()
    assert "3 Users, 1 changed, 2 skips" == lines[0]
    assert [
        "label",
        "selected",
        "deselected",
        "unchanged",
        "no",
        "mailbox",
        "label",
        "missing",
    ] == (lines[1].split())
    assert ["Inbox", "1", "0", "1", "1", "0"] == lines[2].split()
    assert ["Sent", "1", "0", "0", "1", "1"] == lines[3].split()


def test_to_records_lists_changes_then_skips(pushed: Changes) -> None:
    assert [
        {
            "kind": "change",
            "user_id": "ana",
            "label": "INBOX",
            "label_id": "INBOX",
            "selected": True,
            "reason": None,
        },
        {
            "kind": "change",
            "user_id": "ana",
            "label": "SENT",
            "label_id": "SENT",
            "selected": True,
            "reason": None,
        },
        {
            "kind": "skip",
            "user_id": "bo",
            "label": None,
            "label_id": None,
            "selected": None,
            "reason": "NO_MAILBOX",
        },
        {
            "kind": "skip",
            "user_id": "cy",
            "label": "SENT",
            "label_id": None,
            "selected": None,
            "reason": "LABEL_MISSING",
        },
    ] == pushed.to_records()


def test_a_push_to_nobody_changes_nothing_and_counts_zero() -> None:
    _, changes = apply_defaults(Tenant(id="t1", name="Acme"), Defaults(inbox=True, sent=False))
    assert (0, (), (), PushCounts()) == (
        changes.users,
        changes.changed,
        changes.skipped,
        changes.counts(),
    )
    assert not changes
    assert [] == changes.to_records()
    assert all(s == LabelSummary(s.label, 0, 0, 0, 0, 0) for s in changes.summary().labels)


def test_changes_of_builds_from_records() -> None:
    change = LabelChange(user_id="u1", label=SystemLabel.SENT, label_id="SENT", selected=False)
    skip = Skip(user_id="u2", label=None, reason=SkipReason.NO_MAILBOX)
    changes = Changes.of([change], [skip], users=2)
    assert ((change,), (skip,), 2) == (changes.changed, changes.skipped, changes.users)
    assert PushCounts(users_changed=1, deselected=1, no_mailbox=1) == changes.counts()


INVALID: list[tuple[str, Callable[[], object], str, object]] = [
    (
        "change user id empty",
        lambda: LabelChange(user_id="", label=SystemLabel.INBOX, label_id="INBOX", selected=True),
        "LabelChange.user_id",
        "",
    ),
    (
        "change label a string",
        lambda: LabelChange(user_id="u1", label="INBOX", label_id="INBOX", selected=True),  # type: ignore[arg-type]
        "LabelChange.label",
        "INBOX",
    ),
    (
        "change label None",
        lambda: LabelChange(user_id="u1", label=None, label_id="INBOX", selected=True),  # type: ignore[arg-type]
        "LabelChange.label",
        None,
    ),
    (
        "change label id empty",
        lambda: LabelChange(user_id="u1", label=SystemLabel.SENT, label_id="", selected=True),
        "LabelChange.label_id",
        "",
    ),
    (
        "change selected 1",
        lambda: LabelChange(user_id="u1", label=SystemLabel.SENT, label_id="SENT", selected=1),  # type: ignore[arg-type]
        "LabelChange.selected",
        1,
    ),
    (
        "skip user id empty",
        lambda: Skip(user_id="", label=None, reason=SkipReason.NO_MAILBOX),
        "Skip.user_id",
        "",
    ),
    (
        "skip label a string",
        lambda: Skip(user_id="u1", label="SENT", reason=SkipReason.LABEL_MISSING),  # type: ignore[arg-type]
        "Skip.label",
        "SENT",
    ),
    (
        "skip reason a string",
        lambda: Skip(user_id="u1", label=None, reason="NO_MAILBOX"),  # type: ignore[arg-type]
        "Skip.reason",
        "NO_MAILBOX",
    ),
    (
        "changes users negative",
        lambda: Changes.of((), (), users=-1),
        "Changes.users",
        -1,
    ),
]


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [pytest.param(build, field, value, id=name) for name, build, field, value in INVALID],
)
def test_invalid_records_raise_invalid_input_naming_the_field_and_the_value(
    build: Callable[[], object], field: str, value: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        build()
    assert (field, value) == (caught.value.field, caught.value.value)
    assert str(caught.value).startswith(f"{field}: {value!r} ")


def test_records_of_the_same_change_are_equal() -> None:
    a = LabelChange(user_id="u1", label=SystemLabel.INBOX, label_id="INBOX", selected=True)
    b = LabelChange(user_id="u1", label=SystemLabel.INBOX, label_id="INBOX", selected=True)
    assert a == b
    assert hash(a) == hash(b)
