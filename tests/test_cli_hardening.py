"""Issue 11 at the command line: a broken file or bad input is one line on stderr, a documented
exit code, no traceback, and nothing written; preview and status never write at all.

The environment is broken for real, in the ``labelsync`` subprocess: a read-only file (an
immutable file for root, who ignores file modes), a full disk (RLIMIT_FSIZE), damaged pages
and a write lock held by another connection past a short busy timeout.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labelsync import io
from labelsync.cli import EXIT_STORAGE, EXIT_USAGE
from labelsync.synthetic import ADMIN_ID, synthetic_tenant
from test_cli import CLI, digest, env, labelsync, one_error_line


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshot") / "demo.json"
    io.dump(synthetic_tenant(2000, seed=3), path)
    return path


@pytest.fixture
def db(tmp_path: Path, snapshot_file: Path) -> Path:
    result = labelsync("import", snapshot_file, "--db", "demo.db", cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    return tmp_path / "demo.db"


PUSH = ("push", "--db", "demo.db", "--tenant", "demo", "--actor", ADMIN_ID, "--inbox", "--sent")


# -- F7: the file breaks under the command -------------------------------------------------------


@pytest.fixture
def read_only_db(db: Path) -> Iterator[Path]:
    """`db` made unwritable: mode 0444, or immutable (chattr +i) when running as root."""
    if os.geteuid() != 0:
        db.chmod(0o444)
        yield db
        db.chmod(0o644)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only for root")
    made = subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no immutable files: {made.stderr!r}")
    try:
        yield db
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


def test_a_push_into_a_read_only_file_exits_5_in_one_line_naming_the_file(
    tmp_path: Path, read_only_db: Path
) -> None:
    """F7: a read-only file reached the CLI as a traceback with exit 1."""
    before = digest(read_only_db)

    result = labelsync(*PUSH, cwd=tmp_path)

    assert EXIT_STORAGE == result.returncode
    line = one_error_line(result)
    assert line.startswith("labelsync: error: demo.db: the database cannot be written")
    assert "writable" in line
    assert before[0] == digest(read_only_db)[0]


def test_a_read_only_file_can_still_be_previewed_and_listed(
    tmp_path: Path, read_only_db: Path
) -> None:
    for args in (
        ("status", "--db", "demo.db"),
        ("preview", "--db", "demo.db", "--tenant", "demo", "--inbox", "--sent"),
    ):
        result = labelsync(*args, cwd=tmp_path)
        assert 0 == result.returncode, result.stderr


def _file_size_limit(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_an_import_that_fills_the_disk_exits_5_in_one_line_and_stores_nothing(
    tmp_path: Path, snapshot_file: Path
) -> None:
    """F7: a full disk (here a file size limit, RLIMIT_FSIZE) was a traceback with exit 1."""
    result = subprocess.run(
        [*CLI, "import", str(snapshot_file), "--db", "full.db"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(),
        preexec_fn=lambda: _file_size_limit(256 * 1024),
        timeout=600,
        check=False,
    )

    assert EXIT_STORAGE == result.returncode
    line = one_error_line(result)
    assert line.startswith("labelsync: error: full.db: ")
    assert "full" in line
    assert "free disk space" in line
    with sqlite3.connect(tmp_path / "full.db") as conn:
        assert [] == conn.execute("SELECT id FROM tenants").fetchall()


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--db", "demo.db"),
        ("export", "--db", "demo.db", "--tenant", "demo"),
        ("tenants", "--db", "demo.db"),
        PUSH,
    ],
    ids=["status", "export", "tenants", "push"],
)
def test_a_damaged_file_exits_5_in_one_line_saying_to_restore_it(
    tmp_path: Path, db: Path, args: tuple[str, ...]
) -> None:
    """F7: corrupt pages reached the CLI as a traceback with exit 1."""
    size = db.stat().st_size
    with db.open("r+b") as file:
        file.seek(3 * 4096)
        file.write(bytes(range(256)) * ((size - 3 * 4096) // 256))

    result = labelsync(*args, cwd=tmp_path)

    assert EXIT_STORAGE == result.returncode
    line = one_error_line(result)
    assert line.startswith("labelsync: error: demo.db: the database is damaged")
    assert "restore it from a backup" in line


def test_a_write_lock_held_past_the_busy_timeout_exits_5_and_starts_no_push(
    tmp_path: Path, db: Path
) -> None:
    """F7: a lock held longer than the wait was a traceback after 30 s; here the wait is short."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = labelsync(*PUSH, cwd=tmp_path, LABELSYNC_BUSY_TIMEOUT="0.2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert EXIT_STORAGE == result.returncode
    line = one_error_line(result)
    assert "demo.db: the database is locked by another writer" in line
    assert "retry later" in line
    assert (
        "no push jobs in demo.db\n" == labelsync("status", "--db", "demo.db", cwd=tmp_path).stdout
    )


# -- F8: files that are not labelsync's -----------------------------------------------------------


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("preview", "--db", "other.db", "--tenant", "t", "--inbox", "--sent"),
        ("status", "--db", "other.db"),
        ("tenants", "--db", "other.db"),
        ("push", "--db", "other.db", "--tenant", "t", "--actor", "a", "--inbox", "--sent"),
        ("demo", "--users", "5", "--db", "other.db"),
    ],
    ids=["preview", "status", "tenants", "push", "demo"],
)
def test_another_applications_file_is_refused_in_one_line_and_left_byte_for_byte(
    tmp_path: Path, foreign: Path, args: tuple[str, ...]
) -> None:
    """F8: preview --db other.db wrote labelsync's six tables into another application's file."""
    before = digest(foreign)

    result = labelsync(*args, cwd=tmp_path)

    assert EXIT_USAGE == result.returncode
    assert "is not a labelsync database: it holds another application's tables (invoices)" in (
        one_error_line(result)
    )
    assert before == digest(foreign)


def test_import_into_another_applications_file_is_refused(
    tmp_path: Path, foreign: Path, snapshot_file: Path
) -> None:
    before = digest(foreign)
    result = labelsync("import", snapshot_file, "--db", "other.db", cwd=tmp_path)
    assert EXIT_USAGE == result.returncode
    assert "not a labelsync database" in one_error_line(result)
    assert before == digest(foreign)


@pytest.mark.parametrize("command", ["status", "tenants", "push"])
def test_an_empty_file_is_not_turned_into_a_database_by_a_command_that_only_uses_one(
    tmp_path: Path, command: str
) -> None:
    """F8: status turned an empty file into a labelsync database."""
    (tmp_path / "empty.db").touch()
    args = {"status": (), "tenants": (), "push": PUSH[3:]}[command]

    result = labelsync(command, "--db", "empty.db", *args, cwd=tmp_path)

    assert EXIT_USAGE == result.returncode
    assert "is not a labelsync database (it is empty); create one with" in one_error_line(result)
    assert 0 == (tmp_path / "empty.db").stat().st_size


def test_import_creates_a_database_in_an_empty_file(tmp_path: Path, snapshot_file: Path) -> None:
    (tmp_path / "empty.db").touch()
    result = labelsync("import", snapshot_file, "--db", "empty.db", cwd=tmp_path)
    assert 0 == result.returncode, result.stderr


def test_preview_and_status_leave_the_directory_byte_for_byte_unchanged(
    tmp_path: Path, db: Path
) -> None:
    before = digest(db)
    for args in (
        ("preview", "--db", "demo.db", "--tenant", "demo", "--no-inbox", "--sent"),
        ("status", "--db", "demo.db"),
        ("tenants", "--db", "demo.db"),
        ("export", "--db", "demo.db", "--tenant", "demo"),
    ):
        assert 0 == labelsync(*args, cwd=tmp_path).returncode
    assert before == digest(db)


# -- F1, F4, F6: snapshots the CLI reads -----------------------------------------------------------


def _snapshot_with(tmp_path: Path, field: str, value: object) -> Path:
    document = io.to_dict(synthetic_tenant(3, seed=1))
    document["tenant"]["users"][1][field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")  # \udc80 becomes the escape \\udc80
    return path


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("id", "a\udc80", "tenant.users[1].id: 'a\\udc80' is not valid Unicode"),
        ("id", "a\x00b", "tenant.users[1].id: 'a\\x00b' contains a NUL character"),
        ("id", "x" * 3000, "is 3000 characters long; at most 255 are allowed"),
        ("version", 2**63, "tenant.users[1].version: 9223372036854775808 must fit"),
        ("version", 2**63 - 1, "must be at most 2**62"),
    ],
    ids=["surrogate", "nul", "long-id", "version-2**63", "version-2**63-1"],
)
def test_a_snapshot_value_outside_the_input_policy_exits_2_and_stores_nothing(
    tmp_path: Path, field: str, value: object, says: str
) -> None:
    """F1 (traceback from import), F2, F3, F4 (overflow on create)."""
    bad = _snapshot_with(tmp_path, field, value)

    result = labelsync("import", bad, "--db", "new.db", cwd=tmp_path)

    assert EXIT_USAGE == result.returncode
    assert says in one_error_line(result)
    assert not (tmp_path / "new.db").exists() or 0 == (tmp_path / "new.db").stat().st_size


@pytest.mark.parametrize("command", ["import", "preview"])
def test_a_snapshot_nested_100000_levels_deep_is_bad_input_not_a_traceback(
    tmp_path: Path, command: str
) -> None:
    """F6: it was a RecursionError traceback from import and preview."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"format": 1, "tenant": ' + "[" * 100_000 + "]" * 100_000 + "}")
    args = ("--db", "new.db") if command == "import" else ("--inbox", "--sent")

    result = labelsync(command, deep, *args, cwd=tmp_path)

    assert EXIT_USAGE == result.returncode
    assert "is nested too deeply to read" in one_error_line(result)
    assert not (tmp_path / "new.db").exists()


# -- interrupted vs running ------------------------------------------------------------------------


def test_status_of_a_push_stopped_by_ctrl_c_says_interrupted_with_the_resume_command(
    tmp_path: Path, db: Path
) -> None:
    """Status: a push stopped with Ctrl-C showed RUNNING although nothing ran it."""
    from labelsync import LabelSync
    from labelsync.adapters.clock import SystemClock
    from labelsync.adapters.sqlite import SqliteStore
    from labelsync.model import Defaults

    with SqliteStore(db) as store:
        svc = LabelSync(store=store, clock=SystemClock())
        job = svc.start_push("demo", actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=True))

        def ctrl_c(_: object) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            svc.run_push(job.id, batch_size=100, progress=ctrl_c)

    text = labelsync("status", "--db", "demo.db", "--wide", cwd=tmp_path).stdout
    listed = json.loads(
        labelsync("status", "--db", "demo.db", "--format", "json", cwd=tmp_path).stdout
    )

    assert f"{job.id}   demo     INTERRUPTED" in text
    assert f"interrupted (no runner): labelsync resume {job.id} --db demo.db" in text
    assert ("RUNNING", "INTERRUPTED", None) == (
        listed[0]["status"],
        listed[0]["activity"],
        listed[0]["lease_until"],
    )


def test_a_read_only_command_on_an_older_schema_points_to_migrate_which_upgrades_it(
    tmp_path: Path,
) -> None:
    """A read-only open cannot migrate: it says how, and ``labelsync migrate`` does it."""
    from test_sqlite import V1_DUMP

    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.executescript(V1_DUMP.read_text(encoding="utf-8"))
    before = digest(tmp_path / "old.db")

    refused = labelsync("status", "--db", "old.db", cwd=tmp_path)
    assert before == digest(tmp_path / "old.db")
    migrated = labelsync("migrate", "--db", "old.db", cwd=tmp_path)
    listed = labelsync("status", "--db", "old.db", cwd=tmp_path)

    assert EXIT_USAGE == refused.returncode
    assert "has schema version 1" in one_error_line(refused)
    assert "labelsync migrate --db PATH" in one_error_line(refused)
    assert (0, "") == (migrated.returncode, migrated.stderr)
    assert 0 == listed.returncode, listed.stderr
