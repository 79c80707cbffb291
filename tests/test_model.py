"""Values: construction, validation with messages that name the field and value, immutability."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from labelsync import (
    Defaults,
    InvalidInput,
    Label,
    LabelSet,
    LabelSyncError,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.exceptions import UnknownUser
from labelsync.providers import gmail_label

INBOX = gmail_label("INBOX", "Inbox")
SENT = gmail_label("SENT", "Sent")
PROJECT_X = gmail_label("Label_7", "Project X")
MAILBOX = Mailbox(provider=Provider.GMAIL, address="ana@acme.io", labels=(INBOX, SENT, PROJECT_X))
NOON = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def user(user_id: str = "u1", **changes: Any) -> User:
    return attrs.evolve(User(id=user_id, email=f"{user_id}@acme.io", mailbox=MAILBOX), **changes)


def record(**changes: Any) -> PushRecord:
    fields: dict[str, Any] = {
        "job_id": "job-1",
        "actor_id": "admin",
        "defaults": Defaults(inbox=True, sent=True),
        "started_at": NOON,
        "finished_at": NOON + dt.timedelta(minutes=5),
        "roster_size": 3,
        "counts": PushCounts(),
    }
    fields.update(changes)
    return PushRecord(**fields)


INVALID: list[tuple[str, Callable[[], object], str, object]] = [
    ("label id empty", lambda: Label(id="", name="Inbox"), "Label.id", ""),
    ("label id blank", lambda: Label(id="  ", name="Inbox"), "Label.id", "  "),
    ("label id not a string", lambda: Label(id=7, name="Inbox"), "Label.id", 7),  # type: ignore[arg-type]
    ("label name empty", lambda: Label(id="INBOX", name=""), "Label.name", ""),
    (
        "label system a string",
        lambda: Label(id="INBOX", name="Inbox", system="INBOX"),  # type: ignore[arg-type]
        "Label.system",
        "INBOX",
    ),
    (
        "mailbox provider a string",
        lambda: Mailbox(provider="GMAIL", address="a@x.io"),  # type: ignore[arg-type]
        "Mailbox.provider",
        "GMAIL",
    ),
    (
        "mailbox address empty",
        lambda: Mailbox(provider=Provider.IMAP, address=""),
        "Mailbox.address",
        "",
    ),
    (
        "mailbox duplicate label id",
        lambda: Mailbox(
            provider=Provider.GMAIL,
            address="a@x.io",
            labels=(PROJECT_X, gmail_label("Label_7", "Renamed")),
        ),
        "Mailbox.labels[1].id",
        "Label_7",
    ),
    (
        "mailbox two labels with the same role",
        lambda: Mailbox(
            provider=Provider.OTHER,
            address="a@x.io",
            labels=(
                Label(id="in-1", name="Inbox", system=SystemLabel.INBOX),
                Label(id="in-2", name="Posteingang", system=SystemLabel.INBOX),
            ),
        ),
        "Mailbox.labels[1].system",
        "INBOX",
    ),
    ("labelset given one string", lambda: LabelSet("INBOX"), "LabelSet.ids", "INBOX"),
    ("labelset given bytes", lambda: LabelSet(b"INBOX"), "LabelSet.ids", b"INBOX"),
    ("labelset given a number", lambda: LabelSet(5), "LabelSet.ids", 5),
    ("labelset given None", lambda: LabelSet(None), "LabelSet.ids", None),
    ("labelset with a non-string id", lambda: LabelSet(["INBOX", 3]), "LabelSet.ids", 3),
    ("labelset with an empty id", lambda: LabelSet(["INBOX", ""]), "LabelSet.ids", ""),
    ("user id empty", lambda: User(id="", email="a@x.io"), "User.id", ""),
    ("user email empty", lambda: User(id="u1", email=""), "User.email", ""),
    ("user version negative", lambda: user(version=-1), "User.version", -1),
    ("user version a bool", lambda: user(version=True), "User.version", True),
    ("user version a float", lambda: user(version=1.5), "User.version", 1.5),
    ("user version a string", lambda: user(version="1"), "User.version", "1"),
    (
        "user permissions one string",
        lambda: User(id="u1", email="a@x.io", permissions="EMAIL_SYNC"),  # type: ignore[arg-type]
        "User.permissions",
        "EMAIL_SYNC",
    ),
    (
        "user permission a string",
        lambda: user(permissions={Permission.EMAIL_SYNC, "ADMIN_ACCESS"}),
        "User.permissions[",
        "ADMIN_ACCESS",
    ),
    ("user mailbox a string", lambda: user(mailbox="a@x.io"), "User.mailbox", "a@x.io"),
    ("user synced a list", lambda: user(synced=["INBOX"]), "User.synced", ["INBOX"]),
    (
        "user synced a frozenset",
        lambda: user(synced=frozenset({"INBOX"})),
        "User.synced",
        frozenset({"INBOX"}),
    ),
    (
        "tenant duplicate user ids",
        lambda: Tenant(id="t1", name="Acme", users=(user("u1"), user("u2"), user("u1"))),
        "Tenant.users[2].id",
        "u1",
    ),
    (
        "tenant user not a User",
        lambda: Tenant(id="t1", name="Acme", users=(user("u1"), "u2")),  # type: ignore[arg-type]
        "Tenant.users[1]",
        "u2",
    ),
    ("tenant id empty", lambda: Tenant(id="", name="Acme"), "Tenant.id", ""),
    ("tenant name empty", lambda: Tenant(id="t1", name=" "), "Tenant.name", " "),
    (
        "tenant defaults a dict",
        lambda: Tenant(id="t1", name="Acme", defaults={"inbox": True}),  # type: ignore[arg-type]
        "Tenant.defaults",
        {"inbox": True},
    ),
    (
        "tenant onboard setting 1",
        lambda: Tenant(id="t1", name="Acme", onboard_new_users=1),  # type: ignore[arg-type]
        "Tenant.onboard_new_users",
        1,
    ),
    ("defaults inbox 1", lambda: Defaults(inbox=1, sent=True), "Defaults.inbox", 1),  # type: ignore[arg-type]
    ("defaults sent 'yes'", lambda: Defaults(inbox=True, sent="yes"), "Defaults.sent", "yes"),  # type: ignore[arg-type]
    ("defaults inbox None", lambda: Defaults(inbox=None, sent=False), "Defaults.inbox", None),  # type: ignore[arg-type]
    (
        "push record naive start",
        lambda: record(started_at=dt.datetime(2024, 5, 1, 12, 0)),
        "PushRecord.started_at",
        dt.datetime(2024, 5, 1, 12, 0),
    ),
    (
        "push record naive finish",
        lambda: record(finished_at=dt.datetime(2024, 5, 1, 12, 5)),
        "PushRecord.finished_at",
        dt.datetime(2024, 5, 1, 12, 5),
    ),
    (
        "push record start a string",
        lambda: record(started_at="2024-05-01T12:00:00Z"),
        "PushRecord.started_at",
        "2024-05-01T12:00:00Z",
    ),
    ("push record roster negative", lambda: record(roster_size=-1), "PushRecord.roster_size", -1),
    ("push record job id empty", lambda: record(job_id=""), "PushRecord.job_id", ""),
    (
        "push record defaults a tuple",
        lambda: record(defaults=(True, True)),
        "PushRecord.defaults",
        (True, True),
    ),
    ("push counts negative", lambda: PushCounts(selected=-2), "PushCounts.selected", -2),
    (
        "mailbox labels None",
        lambda: Mailbox(provider=Provider.GMAIL, address="a@x.io", labels=None),  # type: ignore[arg-type]
        "Mailbox.labels",
        None,
    ),
    (
        "user permissions None",
        lambda: User(id="u1", email="a@x.io", permissions=None),  # type: ignore[arg-type]
        "User.permissions",
        None,
    ),
    (
        "tenant users None",
        lambda: Tenant(id="t1", name="Acme", users=None),  # type: ignore[arg-type]
        "Tenant.users",
        None,
    ),
]


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [pytest.param(build, field, value, id=name) for name, build, field, value in INVALID],
)
def test_invalid_values_raise_invalid_input_naming_the_field_and_the_value(
    build: Callable[[], object], field: str, value: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        build()
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, LabelSyncError)
    assert value == error.value
    assert error.field.startswith(field)
    assert str(error).startswith(f"{error.field}: {value!r} ")


def test_a_mailbox_with_a_non_label_raises_invalid_input_naming_the_index() -> None:
    with pytest.raises(InvalidInput) as caught:
        Mailbox(
            provider=Provider.GMAIL,
            address="a@x.io",
            labels=(INBOX, "Label_7"),  # type: ignore[arg-type]
        )
    assert "Mailbox.labels[1]: 'Label_7' is not a Label" == str(caught.value)


def test_with_selection_refuses_a_non_labelset_naming_the_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        user().with_selection(["INBOX"])  # type: ignore[arg-type]
    assert ["INBOX"] == caught.value.value
    assert "User.synced" == caught.value.field


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(INBOX, id="label"),
        pytest.param(MAILBOX, id="mailbox"),
        pytest.param(LabelSet(["INBOX"]), id="labelset"),
        pytest.param(user(), id="user"),
        pytest.param(Tenant(id="t1", name="Acme", users=(user(),)), id="tenant"),
        pytest.param(Defaults(inbox=True, sent=False), id="defaults"),
        pytest.param(record(), id="push record"),
        pytest.param(PushCounts(), id="push counts"),
    ],
)
def test_values_are_immutable(value: attrs.AttrsInstance) -> None:
    name = attrs.fields(type(value))[0].name
    before = getattr(value, name)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, name, before)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        value.extra = 1  # type: ignore[attr-defined]
    assert before == getattr(value, name)


def test_a_user_selection_cannot_be_mutated_in_place() -> None:
    synced = LabelSet(["INBOX"])
    with pytest.raises(AttributeError):
        synced.ids.add("SENT")  # type: ignore[attr-defined]
    assert frozenset({"INBOX"}) == synced.ids


def test_a_user_defaults_to_no_permissions_no_mailbox_an_empty_selection_and_version_0() -> None:
    bare = User(id="u1", email="a@x.io")
    assert (frozenset(), None, LabelSet(), 0) == (
        bare.permissions,
        bare.mailbox,
        bare.synced,
        bare.version,
    )


def test_user_permissions_are_stored_as_a_frozenset_and_checked_with_can() -> None:
    admin = User(id="u1", email="a@x.io", permissions={Permission.ADMIN_ACCESS})
    assert frozenset({Permission.ADMIN_ACCESS}) == admin.permissions
    assert admin.can(Permission.ADMIN_ACCESS)
    assert not admin.can(Permission.EMAIL_SYNC)


def test_with_selection_returns_a_new_user_one_version_on() -> None:
    before = user(version=4, synced=LabelSet(["Label_7"]))
    after = before.with_selection(LabelSet(["INBOX", "Label_7"]))
    assert (LabelSet(["INBOX", "Label_7"]), 5) == (after.synced, after.version)
    assert (LabelSet(["Label_7"]), 4) == (before.synced, before.version)
    assert attrs.evolve(before, synced=after.synced, version=5) == after


def test_a_mailbox_finds_its_labels_by_role_and_by_id() -> None:
    assert "INBOX" == MAILBOX.label_id(SystemLabel.INBOX)
    assert SENT == MAILBOX.label(SystemLabel.SENT)
    assert PROJECT_X == MAILBOX.get("Label_7")
    assert MAILBOX.get("Label_404") is None


def test_a_mailbox_without_sent_has_no_sent_label() -> None:
    inbox_only = Mailbox(provider=Provider.GMAIL, address="a@x.io", labels=(PROJECT_X, INBOX))
    assert inbox_only.label_id(SystemLabel.SENT) is None
    assert inbox_only.label(SystemLabel.SENT) is None
    assert "INBOX" == inbox_only.label_id(SystemLabel.INBOX)


def test_mailboxes_with_equal_labels_are_equal() -> None:
    assert (
        Mailbox(provider=Provider.GMAIL, address="ana@acme.io", labels=list(MAILBOX.labels))
        == MAILBOX
    )


def test_a_label_is_system_only_with_a_role() -> None:
    assert (True, False) == (INBOX.is_system, Label(id="Label_3", name="Inbox").is_system)


def test_a_label_defaults_to_no_role() -> None:
    assert Label(id="Label_3", name="Inbox").system is None


def test_defaults_report_each_checkbox_inbox_first() -> None:
    defaults = Defaults(inbox=True, sent=False)
    assert ((SystemLabel.INBOX, True), (SystemLabel.SENT, False)) == defaults.items()
    assert (
        defaults.checked(SystemLabel.INBOX),
        defaults.checked(SystemLabel.SENT),
    ) == (True, False)
    assert "Inbox on, Sent off" == defaults.describe()


def test_system_label_titles_are_what_the_checkboxes_show() -> None:
    assert ["Inbox", "Sent"] == [label.title for label in SystemLabel]


def test_push_counts_add_field_by_field() -> None:
    total = PushCounts(users_changed=1, selected=2, no_mailbox=1) + PushCounts(
        users_changed=2, deselected=3, label_missing=4
    )
    assert (
        PushCounts(users_changed=3, selected=2, deselected=3, no_mailbox=1, label_missing=4)
        == total
    )
    assert (5, 5) == (total.changes, total.skipped)


def test_a_push_record_accepts_any_timezone() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    at = dt.datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)
    assert at == record(started_at=at).started_at


# Tenant lookup


def test_tenant_user_finds_a_user_by_id() -> None:
    ana, bo = user("ana"), user("bo")
    tenant = Tenant(id="t1", name="Acme", users=(ana, bo))
    assert bo is tenant.user("bo")
    assert "ana" in tenant
    assert "eve" not in tenant


@pytest.mark.parametrize("missing", ["eve", "", ["ana"]])
def test_tenant_user_raises_unknown_user_naming_the_id_and_tenant(missing: Any) -> None:
    tenant = Tenant(id="t1", name="Acme", users=(user("ana"),))
    with pytest.raises(UnknownUser) as caught:
        tenant.user(missing)
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, InvalidInput)
    assert f"user_id: {missing!r} is not a User of tenant 't1'" == str(caught.value)


def test_a_tenant_keeps_its_users_in_roster_order() -> None:
    users = [user("c"), user("a"), user("b")]
    assert ("c", "a", "b") == tuple(u.id for u in Tenant(id="t1", name="Acme", users=users).users)


def test_adding_a_user_returns_a_new_tenant_with_the_user_last() -> None:
    tenant = Tenant(id="t1", name="Acme", users=(user("a"),))
    grown = tenant.adding(user("b"))
    assert ("a", "b") == tuple(u.id for u in grown.users)
    assert ("a",) == tuple(u.id for u in tenant.users)
    assert user("b") == grown.user("b")


def test_adding_a_user_with_a_taken_id_raises_invalid_input() -> None:
    tenant = Tenant(id="t1", name="Acme", users=(user("a"),))
    with pytest.raises(InvalidInput) as caught:
        tenant.adding(user("a"))
    assert ("Tenant.users[1].id", "a") == (caught.value.field, caught.value.value)


def test_with_users_replaces_the_roster_and_indexes_it_again() -> None:
    tenant = Tenant(id="t1", name="Acme", users=(user("a"),)).with_users([user("z")])
    assert "z" in tenant
    assert "a" not in tenant


def test_a_tenant_repr_counts_users_instead_of_listing_them() -> None:
    tenant = Tenant(id="t1", name="Acme", users=(user("a"), user("b")))
    assert (
        "Tenant(id='t1', name='Acme', users=<2 Users>, defaults=None, "
        "onboard_new_users=False, last_push=None)"
    ) == repr(tenant)


# LabelSet behaviour


def test_a_labelset_holds_ids_whatever_the_input_order_or_repeats() -> None:
    assert LabelSet(["Label_7", "INBOX"]) == LabelSet(("INBOX", "Label_7", "INBOX"))
    assert 2 == len(LabelSet(["Label_7", "INBOX", "INBOX"]))


def test_a_labelset_accepts_any_iterable_of_ids() -> None:
    assert LabelSet(["a", "b"]) == LabelSet(label_id for label_id in ("b", "a"))
    assert LabelSet(["a"]) == LabelSet(frozenset({"a"}))


def test_a_labelset_contains_its_ids_only() -> None:
    synced = LabelSet(["INBOX", "Label_7"])
    assert "INBOX" in synced
    assert "SENT" not in synced
    assert 7 not in synced


def test_a_labelset_iterates_in_sorted_order() -> None:
    assert ["INBOX", "Label_7", "SENT"] == list(LabelSet(["SENT", "Label_7", "INBOX"]))


def test_a_labelset_repr_lists_sorted_ids() -> None:
    assert "LabelSet(['INBOX', 'Label_7'])" == repr(LabelSet(["Label_7", "INBOX"]))
    assert "LabelSet([])" == repr(LabelSet())


def test_with_ids_and_without_return_new_sets_and_leave_the_original() -> None:
    synced = LabelSet(["Label_7"])
    assert LabelSet(["INBOX", "SENT", "Label_7"]) == synced.with_ids("INBOX", "SENT")
    assert LabelSet() == synced.without("Label_7", "not-there")
    assert LabelSet(["Label_7"]) == synced


def test_with_ids_refuses_an_empty_id() -> None:
    with pytest.raises(InvalidInput) as caught:
        LabelSet().with_ids("")
    assert ("LabelSet.ids", "") == (caught.value.field, caught.value.value)


@pytest.mark.parametrize("ids", [[" "], frozenset({" "})], ids=["list", "frozenset"])
def test_a_blank_label_id_is_refused_whatever_collection_holds_it(ids: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        LabelSet(ids)
    assert "LabelSet.ids: ' ' must be a non-empty string label id" == str(caught.value)


# -- the fast paths: each builds exactly what the validated path builds, and refuses
# -- what it refuses (R12: bad input raises InvalidInput naming the field and value)

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from labelsync.testing.strategies import label_sets, labels, mailboxes, users  # noqa: E402

# Ids as callers might pass them: good ones, and the blank, empty and non-string ones.
_ANY_IDS = st.one_of(st.text(max_size=3), st.sampled_from(["", " ", "\t"]), st.integers())


def _outcome(build: Callable[[], object]) -> object:
    """What `build` gives: its value, or the field and value of the InvalidInput it raises."""
    try:
        return build()
    except InvalidInput as error:
        return ("refused", error.field, error.value)


@given(st.frozensets(_ANY_IDS, max_size=4))
def test_labelset_trusted_equals_the_validated_labelset_and_refuses_what_it_refuses(
    ids: frozenset[Any],
) -> None:
    assert _outcome(lambda: LabelSet(ids)) == _outcome(lambda: LabelSet._trusted(ids))


@given(mailboxes().flatmap(lambda box: label_sets(box)), st.tuples(_ANY_IDS, _ANY_IDS))
def test_labelset_flipped_equals_the_validated_symmetric_difference_r9(
    selection: LabelSet, flipped: tuple[Any, Any]
) -> None:
    """R9: the new selection is the old one plus exactly the flipped ids, each refused if bad."""
    distinct = tuple(dict.fromkeys(flipped))
    expected = _outcome(lambda: LabelSet(selection.ids.symmetric_difference(distinct)))
    if isinstance(expected, LabelSet):
        # LabelSet(...) checks the result, _flipped the new ids: a bad id it removes
        # cannot have been in a valid selection, so both refuse the same inputs.
        assert expected == _outcome(lambda: selection._flipped(distinct))
    else:
        assert isinstance(_outcome(lambda: selection._flipped(distinct)), tuple)


@given(users(), st.one_of(mailboxes().flatmap(label_sets), st.just(["INBOX"]), st.none()))
def test_user_with_selection_equals_the_validated_user_one_version_on(
    user: User, synced: Any
) -> None:
    validated = _outcome(
        lambda: User(
            id=user.id,
            email=user.email,
            permissions=user.permissions,
            mailbox=user.mailbox,
            synced=synced,
            version=user.version + 1,
            groups=user.groups,
        )
    )
    assert validated == _outcome(lambda: user._with_selection(synced))


@given(mailboxes(), st.one_of(st.emails(), st.sampled_from(["", " ", "\n"]), st.integers()))
def test_mailbox_at_equals_the_validated_mailbox_and_refuses_a_blank_address(
    mailbox: Mailbox, address: Any
) -> None:
    validated = _outcome(
        lambda: Mailbox(provider=mailbox.provider, address=address, labels=mailbox.labels)
    )
    fast = _outcome(lambda: mailbox._at(address))
    assert validated == fast
    if isinstance(fast, Mailbox):
        assert mailbox.label_id(SystemLabel.INBOX) == fast.label_id(SystemLabel.INBOX)
        assert mailbox.label_id(SystemLabel.SENT) == fast.label_id(SystemLabel.SENT)


def test_mailbox_at_refuses_a_blank_address_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        MAILBOX._at("  ")
    assert ("Mailbox.address", "  ") == (caught.value.field, caught.value.value)


@given(st.lists(labels(), max_size=5))
def test_a_shared_layout_never_admits_labels_the_validated_path_refuses(
    drawn: list[Label],
) -> None:
    """Building the same labels twice gives the same outcome: a refused tuple is never cached."""
    first = _outcome(lambda: Mailbox(provider=Provider.IMAP, address="a@x.io", labels=drawn))
    again = _outcome(lambda: Mailbox(provider=Provider.IMAP, address="b@x.io", labels=drawn))
    if isinstance(first, Mailbox):
        assert isinstance(again, Mailbox)
        assert tuple(drawn) == first.labels == again.labels
    else:
        assert first == again


def test_mailboxes_with_equal_labels_share_one_tuple_of_labels() -> None:
    fresh = tuple(gmail_label(label.id, label.name) for label in MAILBOX.labels)
    other = Mailbox(provider=Provider.GMAIL, address="bo@acme.io", labels=fresh)
    assert MAILBOX.labels is other.labels


def test_users_with_equal_permissions_share_one_set() -> None:
    listed = User(id="a", email="a@x.io", permissions=[Permission.EMAIL_SYNC])
    built = User(id="b", email="b@x.io", permissions={Permission.EMAIL_SYNC})
    assert listed.permissions is built.permissions
