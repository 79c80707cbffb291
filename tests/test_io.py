"""JSON snapshots: lossless round trips, the shipped examples, and errors that name the path."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from labelsync import (
    Defaults,
    InvalidInput,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
    io,
)
from labelsync.exceptions import MissingExtra
from labelsync.testing import tenants

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
FORMAT_DOC = ROOT / "docs" / "reference" / "snapshot-format.md"


def full_tenant() -> Tenant:
    """A tenant using every field of the format, with non-default values."""
    berlin = dt.timezone(dt.timedelta(hours=2))
    gmail = Mailbox(
        provider=Provider.GMAIL,
        address="ada@acme.example",
        labels=(
            Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX),
            Label(id="SENT", name="Sent", system=SystemLabel.SENT),
            Label(id="Label_12", name="Project X"),
        ),
    )
    outlook = Mailbox(
        provider=Provider.MICROSOFT,
        address="bruno@acme.example",
        labels=(
            Label(id="AAMk1", name="Posteingang", system=SystemLabel.INBOX),
            Label(id="AAMk2", name="Gesendete Elemente", system=SystemLabel.SENT),
        ),
    )
    return Tenant(
        id="acme",
        name="Acme Corp",
        users=(
            User(
                id="u-ada",
                email="ada@acme.example",
                permissions=frozenset({Permission.ADMIN_ACCESS, Permission.EMAIL_SYNC}),
                mailbox=gmail,
                synced=LabelSet(["INBOX", "Label_12", "Label_404"]),
                version=5,
            ),
            User(id="u-bruno", email="bruno@acme.example", mailbox=outlook, version=2),
            User(id="u-eve", email="eve@acme.example"),
        ),
        defaults=Defaults(inbox=True, sent=False),
        last_push=PushRecord(
            job_id="job-1",
            actor_id="u-ada",
            defaults=Defaults(inbox=True, sent=False),
            started_at=dt.datetime(2024, 5, 1, 9, 30, tzinfo=berlin),
            finished_at=dt.datetime(2024, 5, 1, 9, 30, 1, 250_000, tzinfo=berlin),
            roster_size=3,
            counts=PushCounts(users_changed=1, selected=1, deselected=1, no_mailbox=1),
        ),
        onboard_new_users=True,
    )


def document() -> dict[str, Any]:
    """The snapshot of `full_tenant` as parsed JSON, for tests to break."""
    return json.loads(io.dumps(full_tenant()))  # type: ignore[no-any-return]


def problems_of(data: object) -> tuple[str, ...]:
    with pytest.raises(io.InvalidSnapshot) as raised:
        io.from_dict(data)
    return raised.value.problems


# -- round trips -----------------------------------------------------------------------------


def test_a_tenant_using_every_field_survives_a_round_trip() -> None:
    tenant = full_tenant()

    assert tenant == io.loads(io.dumps(tenant))


def test_a_round_trip_keeps_what_equality_might_miss() -> None:
    tenant = full_tenant()

    back = io.loads(io.dumps(tenant))

    assert [5, 2, 0] == [user.version for user in back.users]
    assert tenant.last_push == back.last_push
    assert back.last_push is not None
    assert dt.timedelta(hours=2) == back.last_push.started_at.utcoffset()
    assert back.onboard_new_users is True
    assert Defaults(inbox=True, sent=False) == back.defaults


@given(tenants())
def test_every_tenant_survives_a_round_trip_through_json_text(tenant: Tenant) -> None:
    assert tenant == io.loads(io.dumps(tenant))


@given(tenants())
def test_writing_a_read_snapshot_gives_the_same_text(tenant: Tenant) -> None:
    text = io.dumps(tenant)

    assert text == io.dumps(io.loads(text))


@given(tenants())
def test_to_dict_is_plain_json_data(tenant: Tenant) -> None:
    data = io.to_dict(tenant)

    assert data == json.loads(json.dumps(data))
    assert tenant == io.from_dict(data)


def test_dump_writes_a_utf8_file_that_load_reads(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"

    io.dump(full_tenant(), path)

    assert full_tenant() == io.load(path)
    assert "Gesendete Elemente" in path.read_text(encoding="utf-8")


def test_the_snapshot_writes_enums_by_name_and_sets_sorted() -> None:
    ada = document()["tenant"]["users"][0]

    assert ["ADMIN_ACCESS", "EMAIL_SYNC"] == ada["permissions"]
    assert ["INBOX", "Label_12", "Label_404"] == ada["synced"]
    assert {"id": "INBOX", "name": "Inbox", "system": "INBOX"} == ada["mailbox"]["labels"][0]
    assert "GMAIL" == ada["mailbox"]["provider"]


def test_the_snapshot_writes_every_field_defaults_included() -> None:
    eve = document()["tenant"]["users"][2]

    assert {
        "id": "u-eve",
        "email": "eve@acme.example",
        "permissions": [],
        "mailbox": None,
        "synced": [],
        "version": 0,
    } == eve


def test_the_snapshot_starts_with_the_format_number() -> None:
    assert {"format": 1} == {"format": document()["format"]}
    assert io.dumps(full_tenant()).startswith('{\n  "format": 1,\n')


def test_fields_with_a_default_may_be_left_out() -> None:
    data = {
        "format": 1,
        "tenant": {"id": "t1", "name": "Tiny", "users": [{"id": "u1", "email": "a@x.io"}]},
    }

    assert Tenant(id="t1", name="Tiny", users=(User(id="u1", email="a@x.io"),)) == io.from_dict(
        data
    )


# -- the shipped snapshots -------------------------------------------------------------------


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def test_both_example_snapshots_are_shipped() -> None:
    assert ["acme.json", "globex.json"] == [path.name for path in example_paths()]


@pytest.mark.parametrize("path", example_paths(), ids=lambda path: path.name)
def test_an_example_snapshot_loads_and_is_written_as_dump_writes_it(path: Path) -> None:
    tenant = io.load(path)

    assert path.read_text(encoding="utf-8") == io.dumps(tenant)


def test_acme_has_the_mix_the_notebook_talks_about() -> None:
    acme = io.load(EXAMPLES / "acme.json")

    assert 8 == len(acme.users)
    assert {Provider.GMAIL, Provider.MICROSOFT, Provider.IMAP} == {
        user.mailbox.provider for user in acme.users if user.mailbox
    }
    assert ["u-eve"] == [user.id for user in acme.users if user.mailbox is None]
    assert ["u-farid"] == [
        user.id for user in acme.users if user.mailbox and not user.mailbox.label(SystemLabel.SENT)
    ]
    assert ["u-ada"] == [user.id for user in acme.users if user.can(Permission.ADMIN_ACCESS)]


def test_globex_is_forty_users_after_an_inbox_only_push() -> None:
    globex = io.load(EXAMPLES / "globex.json")

    assert 40 == len(globex.users)
    assert globex.last_push is not None
    assert Defaults(inbox=True, sent=False) == globex.last_push.defaults


def test_the_globex_script_writes_the_shipped_file() -> None:
    script = runpy.run_path(str(EXAMPLES / "make_globex.py"))  # not as __main__: writes nothing

    assert (EXAMPLES / "globex.json").read_text(encoding="utf-8") == io.dumps(script["globex"]())


def json_blocks(markdown: str) -> Iterator[str]:
    yield from re.findall(r"```json\n(.*?)```", markdown, flags=re.DOTALL)


def test_the_full_example_of_the_format_reference_loads_as_written() -> None:
    (example,) = json_blocks(FORMAT_DOC.read_text(encoding="utf-8"))

    assert example == io.dumps(io.loads(example))


# -- errors: every bad value with its path ---------------------------------------------------


def test_a_bad_system_label_names_its_path_and_the_allowed_values() -> None:
    data = document()
    data["tenant"]["users"][1]["mailbox"]["labels"][0]["system"] = "SNET"

    assert ("tenant.users[1].mailbox.labels[0].system: 'SNET' is not one of INBOX, SENT",) == (
        problems_of(data)
    )


def test_every_problem_cattrs_can_collect_is_reported_at_once() -> None:
    data = document()
    ada, bruno, eve = data["tenant"]["users"]
    ada["mailbox"]["labels"][1]["id"] = 5
    ada["synced"] = ["INBOX", ""]
    ada["permissions"] = ["ADMIN_ACCESS", "ROOT"]
    del bruno["email"]
    bruno["version"] = True
    eve["synched"] = []
    data["tenant"]["last_push"]["started_at"] = "2024-05-01T09:30:00"
    data["tenant"]["onboard_new_users"] = "yes"

    assert (
        "tenant.users[0].permissions[1]: 'ROOT' is not one of ADMIN_ACCESS, EMAIL_SYNC",
        "tenant.users[0].mailbox.labels[1].id: 5 must be a string",
        "tenant.users[0].synced[1]: '' must be a non-empty string label id",
        "tenant.users[1].email: is missing",
        "tenant.users[1].version: True must be a whole number",
        (
            "tenant.users[2].synched: is not a field of User "
            "(it has id, email, permissions, mailbox, synced, version, groups)"
        ),
        (
            "tenant.last_push.started_at: '2024-05-01T09:30:00' must be an ISO 8601 date and time "
            "with a UTC offset, e.g. '2024-05-01T09:30:00+00:00'"
        ),
        "tenant.onboard_new_users: 'yes' must be true or false",
    ) == problems_of(data)


def test_the_message_lists_every_problem_and_names_the_file(tmp_path: Path) -> None:
    data = document()
    data["tenant"]["users"][0]["version"] = -1
    data["tenant"]["users"][1]["mailbox"]["provider"] = "YAHOO"
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(io.InvalidSnapshot) as raised:
        io.load(path)

    assert (
        f"snapshot {path} has 2 problems:\n"
        "  tenant.users[0].version: -1 must be a whole number >= 0\n"
        "  tenant.users[1].mailbox.provider: 'YAHOO' is not one of GMAIL, MICROSOFT, IMAP, OTHER"
    ) == str(raised.value)
    assert str(path) == raised.value.source


def test_a_duplicate_user_id_is_reported_at_the_users_path() -> None:
    data = document()
    data["tenant"]["users"][2]["id"] = "u-ada"

    assert ("tenant.users[2].id: 'u-ada' is a duplicate user id",) == problems_of(data)


def test_a_duplicate_label_id_is_reported_at_the_labels_path() -> None:
    data = document()
    data["tenant"]["users"][0]["mailbox"]["labels"][2]["id"] = "SENT"

    assert (
        "tenant.users[0].mailbox.labels[2].id: 'SENT' is a duplicate label id in this mailbox",
    ) == problems_of(data)


def test_two_labels_with_one_role_are_reported_at_the_second() -> None:
    data = document()
    data["tenant"]["users"][1]["mailbox"]["labels"][1]["system"] = "INBOX"

    assert (
        (
            "tenant.users[1].mailbox.labels[1].system: 'INBOX' is held by another label of this "
            "mailbox; a role belongs to one label"
        ),
    ) == problems_of(data)


def test_an_empty_string_is_refused_with_the_models_message() -> None:
    data = document()
    data["tenant"]["users"][0]["mailbox"]["labels"][2]["name"] = " "

    assert (
        "tenant.users[0].mailbox.labels[2].name: ' ' must be a non-empty string",
    ) == problems_of(data)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ADMIN_ACCESS", "tenant.users[0].permissions: 'ADMIN_ACCESS' must be a list"),
        ({"INBOX": True}, "tenant.users[0].synced: {'INBOX': True} must be a list of label ids"),
    ],
)
def test_a_string_or_object_where_a_list_belongs_is_refused(value: object, problem: str) -> None:
    data = document()
    field = "permissions" if isinstance(value, str) else "synced"
    data["tenant"]["users"][0][field] = value

    assert (problem,) == problems_of(data)


def test_a_value_where_an_object_belongs_is_refused() -> None:
    data = document()
    data["tenant"]["users"][1] = "bruno"
    data["tenant"]["defaults"] = [True, False]

    assert (
        "tenant.users[1]: 'bruno' must be a JSON object (a User)",
        "tenant.defaults: [True, False] must be a JSON object (a Defaults)",
    ) == problems_of(data)


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    data = document()
    data["tenant"]["name"] = ["x" * 500]

    (problem,) = problems_of(data)

    assert problem.startswith("tenant.name: ['xxxxxxxxxx")
    assert problem.endswith("] must be a string")
    assert len(problem) < 120


def test_malformed_json_gives_line_and_column() -> None:
    with pytest.raises(io.InvalidSnapshot) as raised:
        io.loads('{"format": 1,\n  "tenant": {,}}', source="bad.json")

    assert (
        "snapshot bad.json: line 2, column 14: Expecting property name enclosed in double quotes "
        "(not valid JSON)"
    ) == str(raised.value)


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(io.InvalidSnapshot) as raised:
        io.loads(b'{"format": 1, "tenant": "\xff"}')

    assert ("(top level): is not UTF-8 text (invalid start byte)",) == raised.value.problems


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (2, "format: 2 is not a snapshot format this labelsync reads (it reads format 1)"),
        (True, "format: True is not a snapshot format this labelsync reads (it reads format 1)"),
        ("1", "format: '1' is not a snapshot format this labelsync reads (it reads format 1)"),
    ],
)
def test_an_unknown_format_is_refused_before_reading_the_tenant(
    value: object, problem: str
) -> None:
    data = document()
    data["format"] = value
    data["tenant"]["users"] = "not even read"

    assert (problem,) == problems_of(data)


def test_a_file_without_format_or_tenant_says_what_a_snapshot_is() -> None:
    assert (
        'format: is missing; a snapshot is {"format": 1, "tenant": ...}',
        "tenant: is missing",
        "users: is not a key of a snapshot (it has 'format' and 'tenant')",
    ) == problems_of({"users": []})


@pytest.mark.parametrize("data", [[], "acme", 1, None])
def test_a_document_that_is_not_an_object_is_refused(data: object) -> None:
    expected = f"(top level): {data!r} must be a JSON object with 'format' and 'tenant'"

    assert (expected,) == problems_of(data)


def test_an_invalid_snapshot_is_invalid_input_and_a_value_error() -> None:
    with pytest.raises(io.InvalidSnapshot) as raised:
        io.loads("[]")

    assert isinstance(raised.value, InvalidInput)
    assert isinstance(raised.value, ValueError)
    assert "snapshot" == raised.value.field


def test_loads_refuses_what_is_not_text() -> None:
    with pytest.raises(InvalidInput, match=r"^text: 42 is not a str or bytes$"):
        io.loads(42)  # type: ignore[arg-type]


def test_dumping_what_is_not_a_tenant_names_the_argument() -> None:
    with pytest.raises(InvalidInput, match=r"^tenant: 'acme' is not a Tenant$"):
        io.dumps("acme")  # type: ignore[arg-type]


def test_a_missing_file_raises_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "nowhere.json")


def test_a_bad_file_changes_nothing_it_was_read_from(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": 1}', encoding="utf-8")

    with pytest.raises(io.InvalidSnapshot):
        io.load(path)

    assert '{"format": 1}' == path.read_text(encoding="utf-8")


# -- the json extra --------------------------------------------------------------------------


@pytest.fixture
def without_cattrs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    io._converter.cache_clear()
    monkeypatch.setitem(sys.modules, "cattrs", None)
    yield
    io._converter.cache_clear()


@pytest.mark.usefixtures("without_cattrs")
@pytest.mark.parametrize(
    "call",
    [lambda: io.dumps(full_tenant()), lambda: io.loads('{"format": 1, "tenant": {}}')],
    ids=["dumps", "loads"],
)
def test_without_cattrs_reading_and_writing_name_the_json_extra(call: Any) -> None:
    with pytest.raises(MissingExtra) as raised:
        call()

    assert (
        "JSON snapshots needs 'cattrs', which is not installed; "
        "install the extra: pip install 'labelsync[json]'"
    ) == str(raised.value)


def test_reading_leaves_the_document_as_it_was() -> None:
    data = document()
    before = copy.deepcopy(data)

    io.from_dict(data)

    assert before == data
