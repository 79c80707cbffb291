"""The command line of admin policy (R16, R19), end to end: push --mode, history, revert once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from labelsync import JobStatus, PushMode
from labelsync.adapters.sqlite import SqliteStore
from labelsync.cli import EXIT_ALREADY_REVERTED

CLI = (sys.executable, "-m", "labelsync.cli")
EXAMPLES = Path(__file__).parent.parent / "examples"
ADMIN = "u-ada"


def labelsync(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def pushed_twice(tmp_path: Path) -> tuple[Path, str, str]:
    """acme.json imported, pushed in OVERRIDE then KEEP_USER_CHOICES; the two job ids."""
    shutil.copy(EXAMPLES / "acme.json", tmp_path / "acme.json")
    db = tmp_path / "acme.db"
    assert 0 == labelsync("import", "acme.json", "--db", db, cwd=tmp_path).returncode
    first = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", ADMIN, "--inbox", "--no-sent",
        "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    second = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", ADMIN, "--inbox", "--sent",
        "--mode", "keep_user_choices", "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert (0, 0) == (first.returncode, second.returncode), first.stderr + second.stderr
    return db, json.loads(first.stdout)["job"], json.loads(second.stdout)["job"]


def test_push_with_a_mode_stores_it_with_the_job(tmp_path: Path) -> None:
    """R16: --mode reaches the job; the JSON names it and counts the kept labels."""
    db, first, second = pushed_twice(tmp_path)
    with SqliteStore(db) as store:
        assert (PushMode.OVERRIDE, PushMode.KEEP_USER_CHOICES) == (
            store.get_job(first).mode,
            store.get_job(second).mode,
        )


def test_history_lists_every_push_with_its_report_in_text_and_json(tmp_path: Path) -> None:
    """R19: newest first, each push with its defaults, mode, actor and counts."""
    db, first, second = pushed_twice(tmp_path)

    text = labelsync("history", "--db", db, "--tenant", "acme", cwd=tmp_path)
    as_json = labelsync("history", "--db", db, "--tenant", "acme", "--format", "json", cwd=tmp_path)

    assert (0, 0) == (text.returncode, as_json.returncode)
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"{second}  DONE  Inbox on, Sent on  KEEP_USER_CHOICES  by {ADMIN}")
    assert lines[2].startswith(f"{first}  DONE  Inbox on, Sent off  by {ADMIN}")
    docs = json.loads(as_json.stdout)
    assert [second, first] == [doc["job"] for doc in docs]
    assert ["KEEP_USER_CHOICES", "OVERRIDE"] == [doc["mode"] for doc in docs]
    assert [None, None] == [doc["revert"] for doc in docs]


def test_a_revert_is_recorded_shown_and_refused_a_second_time(tmp_path: Path) -> None:
    """Issue 11, R19: the revert is an audited job in history and status; a second revert
    exits with code 5 in one stderr line and writes nothing."""
    db, first, second = pushed_twice(tmp_path)

    reverted = labelsync(
        "revert", second, "--db", db, "--actor", ADMIN, "--format", "json", cwd=tmp_path
    )

    assert 0 == reverted.returncode, reverted.stderr
    doc = json.loads(reverted.stdout)
    assert (second, ADMIN, "DONE", True) == (
        doc["revert"]["job"],
        doc["revert"]["actor"],
        doc["revert"]["status"],
        doc["restored_defaults"],
    )
    before = (db.read_bytes(), labelsync("history", "--db", db, "--tenant", "acme", cwd=tmp_path))
    again = labelsync("revert", second, "--db", db, "--actor", ADMIN, cwd=tmp_path)
    assert EXIT_ALREADY_REVERTED == again.returncode == 6
    assert "" == again.stdout
    refused = f"labelsync: error: job_id: '{second}' was already reverted"
    assert [f"{refused} (by revert '{doc['revert']['revert']}')"] == again.stderr.splitlines()
    assert before[0] == db.read_bytes()
    history = before[1].stdout.splitlines()
    assert history[2].startswith(f"  reverted by {ADMIN} at ")
    status = labelsync("status", "--db", db, "--tenant", "acme", "--format", "json", cwd=tmp_path)
    revert_of = {job["job"]: job["revert"] for job in json.loads(status.stdout)}
    assert (None, doc["revert"]["revert"]) == (
        revert_of[first],
        revert_of[second]["revert"],
    )
    text_status = labelsync("status", "--db", db, "--tenant", "acme", cwd=tmp_path).stdout
    assert f"reverted: {second} by {ADMIN} at " in text_status
    with SqliteStore(db) as store:
        last = store.settings("acme").last_push
        assert last is not None
        assert first == last.job_id  # the push before it is the last push again
        assert JobStatus.DONE is store.list_reverts("acme")[0].status
