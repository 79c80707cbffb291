"""``labelsync sync-directory`` and ``labelsync import --replace`` (R13), run as a user runs them.

Success paths in a subprocess as well as in process; every bad input exits 2
with one line on stderr and leaves the file byte for byte as it was.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from labelsync import LabelSet, Mailbox, Permission, Provider, Tenant, User, io
from labelsync.adapters.sqlite import SqliteStore
from labelsync.cli import main
from labelsync.providers import gmail_label
from test_cli import digest, labelsync, one_error_line, stored

LABELS = (
    gmail_label("INBOX", "Inbox"),
    gmail_label("SENT", "Sent"),
    gmail_label("Label_7", "Project X"),
)


def person(user_id: str, *synced: str, admin: bool = False) -> User:
    email = f"{user_id}@acme.io"
    return User(
        id=user_id,
        email=email,
        permissions=frozenset({Permission.ADMIN_ACCESS} if admin else {Permission.EMAIL_SYNC}),
        mailbox=Mailbox(provider=Provider.GMAIL, address=email, labels=LABELS),
        synced=LabelSet(synced),
    )


ACME = Tenant(
    id="acme",
    name="Acme",
    users=(person("admin", admin=True), person("ana", "Label_7"), person("bo"), person("cy")),
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "acme.db"
    with SqliteStore(path) as store:
        store.add_tenant(ACME)
    return path


def roster_json(path: Path, users: list[User]) -> Path:
    document = io.to_dict(Tenant(id="x", name="x", users=users))["tenant"]["users"]
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


HOST = [
    person("admin", admin=True),
    attrs.evolve(person("ana"), email="ana@new.io"),
    person("bo"),
    person("dee", "INBOX"),
]


def test_sync_directory_takes_a_json_roster_and_reports_each_user(tmp_path: Path, db: Path) -> None:
    roster = roster_json(tmp_path / "roster.json", HOST)

    result = labelsync(
        "sync-directory", roster, "--db", db, "--tenant", "acme", "--remove-missing", cwd=tmp_path
    )

    assert 0 == result.returncode, result.stderr
    assert [
        "tenant 'acme': directory sync: 1 added, 1 updated, 1 removed, 2 unchanged",
        "  added: dee",
        "  updated: ana",
        "  removed: cy",
    ] == result.stdout.splitlines()
    tenant = stored(db, "acme")
    assert ["admin", "ana", "bo", "dee"] == [u.id for u in tenant.users]
    assert ("ana@new.io", LabelSet(["Label_7"])) == (
        tenant.user("ana").email,
        tenant.user("ana").synced,
    )


def test_sync_directory_takes_a_csv_roster_and_prints_json(tmp_path: Path, db: Path) -> None:
    labels = json.dumps(
        io.to_dict(Tenant(id="x", name="x", users=[person("a")]))["tenant"]["users"][0]["mailbox"][
            "labels"
        ]
    )
    path = tmp_path / "roster.csv"
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "email", "permissions", "provider", "address", "labels", "synced"])
        writer.writerow(
            ["admin", "admin@acme.io", "ADMIN_ACCESS", "GMAIL", "admin@acme.io", labels, ""]
        )
        writer.writerow(["ana", "ana@acme.io", "EMAIL_SYNC", "", "", "", ""])  # disconnected
        writer.writerow(
            [
                "eve",
                "eve@acme.io",
                "EMAIL_SYNC ADMIN_ACCESS",
                "GMAIL",
                "eve@acme.io",
                labels,
                "INBOX",
            ]
        )

    result = CliRunner().invoke(
        main, ["sync-directory", str(path), "--db", str(db), "--tenant", "acme", "--format", "json"]
    )

    assert 0 == result.exit_code, result.stderr
    assert {
        "tenant": "acme",
        "applied": True,
        "counts": {"added": 1, "updated": 1, "removed": 0, "unchanged": 1},
        "added": ["eve"],
        "updated": ["ana"],
        "removed": [],
        "unchanged": ["admin"],
    } == json.loads(result.stdout)
    tenant = stored(db, "acme")
    assert (None, LabelSet(["Label_7"])) == (tenant.user("ana").mailbox, tenant.user("ana").synced)
    assert frozenset(Permission) == tenant.user("eve").permissions
    assert ["admin", "ana", "bo", "cy", "eve"] == [u.id for u in tenant.users]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("r.json", "[{", "roster: 'r.json' line 1, column 3"),
        ("r.json", '[{"id": "zed"}]', "users[0].email: is missing"),
        (
            "r.json",
            '[{"id": "zed", "email": "z@a.io"}, {"id": "zed", "email": "y@a.io"}]',
            "users[1].id: 'zed' appears twice",
        ),
        ("r.json", '{"people": []}', "must be a list of Users"),
        ("r.csv", "id,mail\nzed,z@a.io\n", "line 1: unknown column 'mail'"),
        (
            "r.csv",
            "id,email,provider\nzed,z@a.io,GMALE\n",
            "line 2: mailbox.provider: 'GMALE' is not one of",
        ),
        ("r.csv", "id,email,address\nzed,z@a.io,z@a.io\n", "line 2: provider: is empty"),
        (
            "r.csv",
            "id,email,provider,labels\nzed,z@a.io,GMAIL,[oops\n",
            "line 2: labels: not a JSON list",
        ),
    ],
)
def test_a_bad_roster_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, db: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    before = digest(db)

    result = labelsync(
        "sync-directory", name, "--db", db, "--tenant", "acme", "--remove-missing", cwd=tmp_path
    )

    assert 2 == result.returncode
    assert message in one_error_line(result)
    assert before == digest(db)


def test_sync_directory_of_an_unknown_tenant_exits_2_with_a_suggestion(
    tmp_path: Path, db: Path
) -> None:
    roster = roster_json(tmp_path / "roster.json", HOST)
    before = digest(db)

    result = labelsync("sync-directory", roster, "--db", db, "--tenant", "acmee", cwd=tmp_path)

    assert 2 == result.returncode
    assert "did you mean 'acme'?" in one_error_line(result)
    assert before == digest(db)


def test_sync_directory_on_behalf_of_a_non_admin_exits_3(tmp_path: Path, db: Path) -> None:
    roster = roster_json(tmp_path / "roster.json", HOST)
    before = digest(db)

    result = labelsync(
        "sync-directory", roster, "--db", db, "--tenant", "acme", "--actor", "ana", cwd=tmp_path
    )

    assert 3 == result.returncode
    assert "actor_id: 'ana' lacks ADMIN_ACCESS" in one_error_line(result)
    assert before == digest(db)


# -- import --replace ----------------------------------------------------------------------------


def edited_snapshot(tmp_path: Path) -> Path:
    edited = attrs.evolve(ACME, name="Acme Corp", users=HOST)
    path = tmp_path / "edited.json"
    io.dump(edited, path)
    return path


def test_import_of_a_stored_tenant_says_to_add_replace(tmp_path: Path, db: Path) -> None:
    before = digest(db)

    result = labelsync("import", edited_snapshot(tmp_path), "--db", db, cwd=tmp_path)

    assert 2 == result.returncode
    assert "already a stored tenant; add --replace" in one_error_line(result)
    assert before == digest(db)


def test_import_replace_with_yes_shows_the_diff_and_reconciles(tmp_path: Path, db: Path) -> None:
    result = labelsync(
        "import", edited_snapshot(tmp_path), "--db", db, "--replace", "--yes", cwd=tmp_path
    )

    assert 0 == result.returncode, result.stderr
    assert [
        "tenant 'acme': directory sync: 1 added, 1 updated, 1 removed, 2 unchanged",
        "  added: dee",
        "  updated: ana",
        "  removed: cy",
        "applied: directory sync: 1 added, 1 updated, 1 removed, 2 unchanged",
        "(the stored name and checkbox settings were kept; only Users changed)",
    ] == result.stdout.splitlines()
    tenant = stored(db, "acme")
    assert ("Acme", ["admin", "ana", "bo", "dee"]) == (tenant.name, [u.id for u in tenant.users])
    assert LabelSet(["Label_7"]) == tenant.user("ana").synced  # the selection stays labelsync's


def test_import_replace_asks_and_a_no_writes_nothing(tmp_path: Path, db: Path) -> None:
    before = digest(db)

    result = CliRunner().invoke(
        main, ["import", str(edited_snapshot(tmp_path)), "--db", str(db), "--replace"], input="n\n"
    )

    assert 1 == result.exit_code
    assert "removed: cy" in result.stdout
    assert "Apply these changes? [y/N]" in result.stderr
    assert result.stderr.rstrip().endswith("not applied: nothing written")
    assert before == digest(db)


def test_import_replace_asks_and_a_yes_applies(tmp_path: Path, db: Path) -> None:
    result = CliRunner().invoke(
        main, ["import", str(edited_snapshot(tmp_path)), "--db", str(db), "--replace"], input="y\n"
    )

    assert 0 == result.exit_code, result.stderr
    assert ["admin", "ana", "bo", "dee"] == [u.id for u in stored(db, "acme").users]


def test_import_replace_without_a_terminal_or_yes_exits_2_and_writes_nothing(
    tmp_path: Path, db: Path
) -> None:
    before = digest(db)

    result = labelsync(
        "import",
        edited_snapshot(tmp_path),
        "--db",
        db,
        "--replace",
        "--format",
        "json",
        cwd=tmp_path,
    )

    assert 2 == result.returncode
    assert "--format json needs --yes" in one_error_line(result)
    assert before == digest(db)


def test_import_replace_json_reports_what_it_applied(tmp_path: Path, db: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "import",
            str(edited_snapshot(tmp_path)),
            "--db",
            str(db),
            "--replace",
            "--yes",
            "--format",
            "json",
        ],
    )

    assert 0 == result.exit_code, result.stderr
    document = json.loads(result.stdout)
    assert (True, ["dee"], ["ana"], ["cy"]) == (
        document["applied"],
        document["added"],
        document["updated"],
        document["removed"],
    )


def test_import_replace_of_a_new_tenant_imports_it(tmp_path: Path) -> None:
    db = tmp_path / "new.db"

    result = labelsync("import", edited_snapshot(tmp_path), "--db", db, "--replace", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert "4 added" in result.stdout
    assert "Acme Corp" == stored(db, "acme").name


def test_yes_without_replace_is_a_usage_error(tmp_path: Path, db: Path) -> None:
    before = digest(db)

    result = labelsync("import", edited_snapshot(tmp_path), "--db", db, "--yes", cwd=tmp_path)

    assert 2 == result.returncode
    assert "--yes answers the question of --replace" in one_error_line(result)
    assert before == digest(db)
