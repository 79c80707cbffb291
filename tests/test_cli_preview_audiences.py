"""``labelsync preview`` with push's audience options (R20): it shows what ``push`` with the
same options then does, in every format, from a database and from a snapshot, writing nothing."""

from __future__ import annotations

import csv
import io as text_io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labelsync import Changes, LabelSet, LabelSync, io
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.cli import main
from test_audiences import T0, acme
from test_cli import digest, expected_rows, jobs, label_rows, labelsync, one_error_line


def run_ok(*args: str | Path, cwd: Path) -> str:
    result = labelsync(*args, cwd=cwd)
    assert 0 == result.returncode, result.stderr
    return result.stdout


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """Acme imported, never pushed to: no defaults, so nobody can drift yet."""
    snapshot = tmp_path / "acme.json"
    io.dump(acme(), snapshot)
    path = tmp_path / "fresh.db"
    run_ok("import", snapshot, "--db", path, cwd=tmp_path)
    return path


@pytest.fixture
def db(fresh: Path) -> Path:
    """Acme after a push of Inbox and Sent to everyone, then di unticked both herself."""
    run_ok(
        "push", "--db", fresh, "--tenant", "acme", "--actor", "admin", "--inbox", "--sent",
        cwd=fresh.parent,
    )  # fmt: skip
    with SqliteStore(fresh) as store:
        LabelSync(store=store, clock=FixedClock(T0)).set_selection("acme", "di", LabelSet())
    return fresh


def preview(source: list[str | Path], options: tuple[str, ...], output_format: str) -> str:
    """``labelsync preview`` in process (the push it is checked against runs as a subprocess)."""
    args = ["preview", *map(str, source), *options, "--format", output_format]
    result = CliRunner().invoke(main, args)
    assert 0 == result.exit_code, result.stderr
    return result.stdout


def pushed(db: Path, options: tuple[str, ...]) -> tuple[dict[str, Any], Changes]:
    """Push with `options` for real: its ``--format json`` document and its stored changes."""
    args: list[str | Path] = ["--db", db, "--tenant", "acme", "--actor", "admin", *options]
    args += ["--format", "json"]
    document = json.loads(run_ok("push", *args, cwd=db.parent))
    with SqliteStore(db) as store:
        changes = LabelSync(store=store, clock=FixedClock(T0)).changes(document["job"])
    return document, changes


def csv_rows(changes: Changes) -> list[tuple[str, ...]]:
    def cell(value: object) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        return "" if value is None else str(value)

    columns = ("kind", "user_id", "label", "label_id", "selected", "reason")
    return sorted(tuple(cell(record[c]) for c in columns) for record in changes.to_records())


AUDIENCES = {
    "one group": ("--no-inbox", "--sent", "--group", "sales"),
    "two groups": ("--no-inbox", "--sent", "--group", "sales", "--group", "support"),
    "listed users": ("--no-inbox", "--sent", "--users", "di, fay"),
    "kept choices": ("--no-inbox", "--sent", "--users", "di,ana", "--mode", "KEEP_USER_CHOICES"),
    "a group nobody is in": ("--no-inbox", "--sent", "--group", "interns"),
    "everyone": ("--no-inbox", "--sent"),
    "the drifted": ("--drifted",),
}


@pytest.mark.parametrize("options", AUDIENCES.values(), ids=AUDIENCES.keys())
@pytest.mark.parametrize("source", ["db", "snapshot"])
def test_preview_shows_exactly_what_the_push_with_the_same_options_does(
    db: Path, options: tuple[str, ...], source: str
) -> None:
    """R20: the preview's roster is the audience's members, as the push's is."""
    if source == "db":
        where: list[str | Path] = ["--db", db, "--tenant", "acme"]
    else:
        where = [db.parent / "stored.json"]
        run_ok("export", "--db", db, "--tenant", "acme", "-o", where[0], cwd=db.parent)
    before = digest(db)

    as_json = json.loads(preview(where, options, "json"))
    as_csv = preview(where, options, "csv")
    as_table = preview(where, options, "table")

    assert before == digest(db)
    copy = db.parent / "copy.db"
    shutil.copyfile(db, copy)
    job, changes = pushed(copy, options)
    assert (job["users"], job["counts"]) == (as_json["users"], as_json["counts"])
    assert (job["audience"], job["mode"], job["defaults"]) == (
        as_json["audience"],
        as_json["mode"],
        as_json["defaults"],
    )
    assert sorted(
        (c.user_id, c.label.name, c.label_id, c.selected) for c in changes.changed
    ) == sorted(
        (c["user_id"], c["label"], c["label_id"], c["selected"]) for c in as_json["changes"]
    )
    assert sorted(
        (s.user_id, s.label and s.label.name, s.reason.name) for s in changes.skipped
    ) == sorted((s["user_id"], s["label"], s["reason"]) for s in as_json["skips"])
    header, *rows = csv.reader(text_io.StringIO(as_csv))
    assert ["kind", "user_id", "label", "label_id", "selected", "reason"] == header
    assert csv_rows(changes) == sorted(map(tuple, rows))
    counts = job["counts"]
    assert (
        f"Would change: {job['users']} Users: {counts['users_changed']} changed, "
        f"{counts['users_unchanged']} unchanged, {counts['no_mailbox']} skipped (no mailbox)"
    ) == as_table.splitlines()[1]
    assert expected_rows(changes.summary()) == label_rows(as_table)


def test_preview_to_a_group_lists_only_its_members_and_names_the_group(db: Path) -> None:
    where: list[str | Path] = ["--db", db, "--tenant", "acme"]

    document = json.loads(preview(where, ("--no-inbox", "--sent", "--group", "sales"), "json"))
    table = preview(where, ("--no-inbox", "--sent", "--group", "sales"), "table")

    assert (3, {"groups": ["sales"]}) == (document["users"], document["audience"])
    assert {"ana", "ed"} == {c["user_id"] for c in document["changes"]}
    assert [("bo", None, "NO_MAILBOX")] == [
        (s["user_id"], s["label"], s["reason"]) for s in document["skips"]
    ]
    assert (
        "Preview of tenant 'acme' (Acme), Inbox off, Sent on (group sales); nothing was written."
    ) == table.splitlines()[0]


def test_preview_of_the_drifted_names_them_and_the_saved_defaults(db: Path) -> None:
    where: list[str | Path] = ["--db", db, "--tenant", "acme"]

    document = json.loads(preview(where, ("--drifted",), "json"))
    table = preview(where, ("--drifted",), "table")

    assert ({"users": ["bo", "di"]}, 2) == (document["audience"], document["users"])
    assert {"inbox": True, "sent": True} == document["defaults"]
    assert "(the Users that drifted from these defaults); nothing was written" in table


def test_preview_keeping_user_choices_counts_the_label_a_user_set_herself(db: Path) -> None:
    """R16 with R20: di unticked Sent herself, so pushing Sent to her keeps her choice."""
    options = ("--no-inbox", "--sent", "--users", "di", "--mode", "KEEP_USER_CHOICES")

    document = json.loads(preview(["--db", db, "--tenant", "acme"], options, "json"))

    assert (1, 1, "KEEP_USER_CHOICES") == (
        document["users"],
        document["counts"]["user_choice_kept"],
        document["mode"],
    )
    assert [] == document["changes"]
    assert [("di", "SENT", "USER_CHOICE_KEPT")] == [
        (s["user_id"], s["label"], s["reason"]) for s in document["skips"]
    ]


BAD = {
    "group and users": (("--inbox", "--sent", "--group", "sales", "--users", "ana"), 2),
    "no user id": (("--inbox", "--sent", "--users", " , "), 2),
    "unknown user": (("--inbox", "--sent", "--users", "ana,zed"), 2),
    "blank group": (("--inbox", "--sent", "--group", " "), 2),
    "too long an id": (("--inbox", "--sent", "--users", "u" * 256), 2),
    "drifted with checkboxes": (("--drifted", "--inbox", "--sent"), 2),
    "drifted with a group": (("--drifted", "--group", "sales"), 2),
    "a checkbox missing": (("--inbox", "--group", "sales"), 2),
    "drifted without defaults": (("--drifted",), 2),
}


@pytest.mark.parametrize(("options", "code"), BAD.values(), ids=BAD.keys())
def test_a_bad_audience_gets_the_error_line_and_exit_code_push_gives(
    fresh: Path, options: tuple[str, ...], code: int
) -> None:
    before = digest(fresh)

    previewed = labelsync("preview", "--db", fresh, "--tenant", "acme", *options, cwd=fresh.parent)
    from_snapshot = labelsync("preview", fresh.parent / "acme.json", *options, cwd=fresh.parent)
    pushing = labelsync(
        "push", "--db", fresh, "--tenant", "acme", "--actor", "admin", *options, cwd=fresh.parent
    )

    assert (code, code, code) == (
        pushing.returncode,
        previewed.returncode,
        from_snapshot.returncode,
    )
    said = one_error_line(pushing).replace("labelsync push", "labelsync preview")
    assert said == one_error_line(previewed) == one_error_line(from_snapshot)
    assert before == digest(fresh)
    assert [] == jobs(fresh)


def test_preview_to_listed_users_refuses_one_the_tenant_lacks(tmp_path: Path) -> None:
    snapshot = tmp_path / "acme.json"
    io.dump(acme(), snapshot)

    result = labelsync("preview", snapshot, "--inbox", "--sent", "--users", "ana,zed", cwd=tmp_path)

    assert 2 == result.returncode
    assert "labelsync: error: audience.user_ids: 'zed' is not a User of tenant 'acme'" == (
        one_error_line(result)
    )
