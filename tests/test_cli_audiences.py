"""End to end: ``push --group/--users``, ``coverage`` and ``presets`` as subprocesses (R20-R22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelsync import Audience, LabelSet, io
from labelsync.adapters.sqlite import SqliteStore
from test_audiences import acme
from test_cli import labelsync, one_error_line


@pytest.fixture
def db(tmp_path: Path) -> Path:
    snapshot = tmp_path / "acme.json"
    io.dump(acme(), snapshot)
    path = tmp_path / "acme.db"
    result = labelsync("import", snapshot, "--db", path, cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    return path


def push(db: Path, *args: str) -> dict[str, object]:
    result = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", "admin", "--inbox", "--sent",
        "--format", "json", *args, cwd=db.parent,
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_push_to_a_group_touches_only_its_members(db: Path) -> None:
    job = push(db, "--group", "sales")

    assert (3, {"groups": ["sales"]}) == (job["users"], job["audience"])
    with SqliteStore(db) as store:
        changed = {u.id for u in store.get_tenant("acme").users if u.version}
    assert {"ana", "ed"} == changed


def test_push_to_two_groups_goes_to_the_members_of_either(db: Path) -> None:
    job = push(db, "--group", "sales", "--group", "support")

    assert (5, {"groups": ["sales", "support"]}) == (job["users"], job["audience"])


def test_push_to_listed_users_touches_only_them(db: Path) -> None:
    job = push(db, "--users", "di, fay")

    assert (2, {"users": ["di", "fay"]}) == (job["users"], job["audience"])
    with SqliteStore(db) as store:
        assert LabelSet(["INBOX", "SENT"]) == store.get_user("acme", "fay").synced
        assert Audience.users(["di", "fay"]) == store.list_jobs("acme")[0].audience


def test_push_without_an_audience_goes_to_everyone(db: Path) -> None:
    job = push(db)

    assert (7, None) == (job["users"], job["audience"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--group", "sales", "--users", "ana"), "give --group or --users, not both"),
        (("--users", " , "), "--users needs at least one User id"),
        (("--users", "ana,zed"), "audience.user_ids: 'zed' is not a User of tenant 'acme'"),
    ],
)
def test_a_bad_audience_is_one_error_line_and_writes_nothing(
    db: Path, args: tuple[str, ...], message: str
) -> None:
    result = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", "admin", "--inbox", "--sent", *args,
        cwd=db.parent,
    )  # fmt: skip

    assert 2 == result.returncode
    assert message in one_error_line(result)
    with SqliteStore(db) as store:
        assert [] == store.list_jobs("acme")


def test_coverage_shows_each_status_in_text_and_json(db: Path) -> None:
    push(db)

    text = labelsync("coverage", "--db", db, "--tenant", "acme", cwd=db.parent)
    document = json.loads(
        labelsync(
            "coverage", "--db", db, "--tenant", "acme", "--format", "json", cwd=db.parent
        ).stdout
    )

    assert 0 == text.returncode, text.stderr
    assert "  bo: no mailbox" in text.stdout
    assert "  cy: cannot see the Email tab" in text.stdout
    assert "By group (covered / not covered):" in text.stdout
    assert {"COVERED": 5, "NO_MAILBOX": 1, "NO_EMAIL_TAB": 1} == {
        status: n for status, n in document["counts"].items() if n
    }
    assert {"COVERED": 2, "NO_MAILBOX": 1} == {
        status: n for status, n in document["by_group"]["sales"].items() if n
    }
    assert "NO_EMAIL_TAB" == next(u for u in document["users"] if u["user_id"] == "cy")["status"]


def test_coverage_of_an_unknown_tenant_is_one_error_line(db: Path) -> None:
    result = labelsync("coverage", "--db", db, "--tenant", "nope", cwd=db.parent)

    assert 2 == result.returncode
    assert "nope" in one_error_line(result)


def test_presets_are_created_assigned_listed_renamed_applied_and_deleted(db: Path) -> None:
    def run(*args: str) -> str:
        result = labelsync(
            "presets", *args[:1], "--db", db, "--tenant", "acme", *args[1:], cwd=db.parent
        )
        assert 0 == result.returncode, result.stderr
        return result.stdout

    run("create", "Sales", "--actor", "admin", "--inbox", "--no-sent", "--lock", "sent")
    run("assign", "sales", "Sales", "--actor", "admin")
    run("rename", "Sales", "Field", "--actor", "admin")
    listed = json.loads(run("list", "--format", "json"))
    applied = run("apply", "Field", "--actor", "admin")

    assert [
        {
            "name": "Field",
            "inbox": True,
            "sent": False,
            "locks": ["SENT"],
            "mode": "OVERRIDE",
            "groups": ["sales"],
        }
    ] == listed["presets"]
    assert "done: 3 Users" in applied
    with SqliteStore(db) as store:
        assert LabelSet(["INBOX"]) == store.get_user("acme", "ana").synced
        assert [("CREATED", "Sales"), ("ASSIGNED", "Sales"), ("RENAMED", "Sales")] == [
            (e.action.name, e.preset) for e in store.preset_events("acme")[:3]
        ]
    run("delete", "Field", "--actor", "admin")
    assert "No presets yet" in run("list")


def test_a_preset_change_by_a_non_admin_exits_3(db: Path) -> None:
    result = labelsync(
        "presets", "create", "--db", db, "--tenant", "acme", "X", "--actor", "ana", "--inbox",
        "--sent",
        cwd=db.parent,
    )  # fmt: skip

    assert 3 == result.returncode
    assert "lacks ADMIN_ACCESS" in one_error_line(result)
