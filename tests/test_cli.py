"""End to end: the ``labelsync`` command run as a subprocess on temporary files.

Each test runs the real command (``python -m labelsync.cli``) and checks what it
printed, its exit code, and what is stored afterwards; a few cheap checks run
in process with click's `CliRunner`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from labelsync import Defaults, JobStatus, LabelSync, PushJob, Tenant, apply_defaults, io
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.changes import Summary
from labelsync.cli import EXIT_CODES, main
from labelsync.synthetic import ADMIN_ID, synthetic_tenant
from provenance_helpers import comparable

CLI = (sys.executable, "-m", "labelsync.cli")

# A non-interactive shell starts background commands with SIGINT ignored, and a
# child inherits that, so Python would not turn Ctrl-C into KeyboardInterrupt.
# This launcher restores Python's own handler first: Ctrl-C then reaches the
# command as it does at a terminal.
INTERRUPTIBLE = (
    sys.executable,
    "-c",
    (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'labelsync'; from labelsync.cli import main; main()"
    ),
)

JOB_ROW = re.compile(
    r"^([0-9a-f]{32})\s+(\S+)\s+(PENDING|RUNNING|INTERRUPTED|DONE|SUPERSEDED)\s", re.MULTILINE
)
STARTED = re.compile(r"^push ([0-9a-f]{32}) started", re.MULTILINE)

ROOT = Path(__file__).parent.parent


def env(**extra: str) -> dict[str, str]:
    """The environment of a command that is piped, as in a script: no colour, no terminal width."""
    variables = {**os.environ, "NO_COLOR": "1", **extra}
    variables.pop("COLUMNS", None)
    return variables


def labelsync(*args: str | Path, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``labelsync ARGS`` to completion with output captured."""
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env(**extra_env),
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's single stderr line; fails if there is more, a traceback, or any stdout."""
    assert "Traceback" not in result.stderr
    assert "" == result.stdout
    lines = result.stderr.splitlines()
    assert 1 == len(lines), result.stderr
    assert lines[0].startswith("labelsync")
    return lines[0]


def digest(db: Path) -> tuple[str, ...]:
    """The bytes of a SQLite file and of any journal beside it, hashed."""
    files = [db, *sorted(db.parent.glob(db.name + "-*"))]
    return tuple(f"{f.name}:{hashlib.sha256(f.read_bytes()).hexdigest()}" for f in files)


def stored(db: Path, tenant_id: str) -> Tenant:
    with SqliteStore(db) as store:
        return store.get_tenant(tenant_id)


def jobs(db: Path) -> list[PushJob]:
    with SqliteStore(db) as store:
        return store.list_jobs()


def make_db(path: Path, tenant: Tenant) -> Path:
    with SqliteStore(path) as store:
        store.add_tenant(tenant)
    return path


def status_rows(output: str) -> list[tuple[str, str, str]]:
    """(job id, tenant, status) of each row `labelsync status` printed."""
    return [(m[1], m[2], m[3]) for m in JOB_ROW.finditer(output)]


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acme() -> Tenant:
    """A small realistic tenant: Gmail, localised Microsoft and IMAP mailboxes, some with none."""
    return synthetic_tenant(300, seed=7, tenant_id="acme", name="Acme")


@pytest.fixture
def snapshot(tmp_path: Path, acme: Tenant) -> Path:
    path = tmp_path / "acme.json"
    io.dump(acme, path)
    return path


@pytest.fixture
def db(tmp_path: Path, acme: Tenant) -> Path:
    """A SQLite file holding `acme`, not pushed yet."""
    return make_db(tmp_path / "acme.db", acme)


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tenant large enough that a push in batches of 5 runs for hundreds of commits."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    return make_db(path, synthetic_tenant(3000, seed=3, tenant_id="big", name="Big"))


@pytest.fixture
def big_copy(tmp_path: Path, big_db: Path) -> Path:
    path = tmp_path / "pushed.db"
    shutil.copyfile(big_db, path)
    return path


# -- demo ----------------------------------------------------------------------------------


def summary_numbers(output: str) -> tuple[int, int, int, int]:
    found = re.search(
        r"^Summary:\s+([\d,]+) Users: ([\d,]+) changed, ([\d,]+) unchanged, "
        r"([\d,]+) skipped \(no mailbox\)$",
        output,
        re.MULTILINE,
    )
    assert found is not None, output
    users, changed, unchanged, skipped = (int(g.replace(",", "")) for g in found.groups())
    return users, changed, unchanged, skipped


def label_rows(output: str) -> dict[str, tuple[int, ...]]:
    rows = re.findall(r"^(Inbox|Sent)((?:\s+[\d,]+){5})$", output, re.MULTILINE)
    return {label: tuple(int(n.replace(",", "")) for n in counts.split()) for label, counts in rows}


def expected_rows(summary: Summary) -> dict[str, tuple[int, ...]]:
    return {
        row.label.title: (
            row.selected,
            row.deselected,
            row.unchanged,
            row.no_mailbox,
            row.label_missing,
        )
        for row in summary.labels
    }


def test_demo_pushes_inbox_and_sent_and_its_summary_adds_up_to_the_roster(tmp_path: Path) -> None:
    """The demo's numbers are those `apply_defaults` gives on the same synthetic tenant."""
    result = labelsync("demo", "--users", "400", "--db", tmp_path / "demo.db", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    expected = apply_defaults(synthetic_tenant(400), Defaults(inbox=True, sent=True))[1].summary()
    users, changed, unchanged, skipped = summary_numbers(result.stdout)
    assert 400 == users == changed + unchanged + skipped
    assert (expected.counts.users_changed, expected.counts.no_mailbox) == (changed, skipped)
    rows = label_rows(result.stdout)
    assert expected_rows(expected) == rows
    assert all(400 == sum(counts) for counts in rows.values())
    assert re.search(rf"^NO_MAILBOX\s+{expected.counts.no_mailbox}$", result.stdout, re.MULTILINE)


def test_demo_shows_the_audit_record_of_the_push_it_ran(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = labelsync("demo", "--users", "120", "--db", db, cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    [job] = jobs(db)
    assert JobStatus.DONE is job.status
    assert re.search(rf"^job\s+{job.id}$", result.stdout, re.MULTILINE)
    assert re.search(rf"^actor\s+{ADMIN_ID}$", result.stdout, re.MULTILINE)
    assert re.search(r"^defaults\s+Inbox on, Sent on$", result.stdout, re.MULTILINE)
    assert re.search(r"^roster size\s+120$", result.stdout, re.MULTILINE)


def test_demo_shows_a_gmail_a_localised_microsoft_and_a_mailboxless_email_tab(
    tmp_path: Path,
) -> None:
    result = labelsync("demo", "--users", "400", "--db", tmp_path / "demo.db", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    out = result.stdout
    assert re.search(r"^user-\d+ \(Gmail\); this push: ", out, re.MULTILINE)
    assert re.search(r"^user-\d+ \(Microsoft, localised folder names\); this push: ", out, re.M)
    assert re.search(
        r"^user-\d+ \(no mailbox connected\); this push: User skipped \(NO_MAIL", out, re.M
    )
    assert "  [x] Inbox  (Sync is enabled for this label)" in out
    localised_sent = ("Gesendete Elemente", "Éléments envoyés", "Elementos enviados")
    assert any(f"  [x] {name}  (Sync is enabled for this label)" in out for name in localised_sent)
    assert "  Email tab: no mailbox connected" in out


def test_demo_email_tabs_say_which_labels_the_admins_push_set(tmp_path: Path) -> None:
    """R15: a label the demo's push selected reads "Set by your admin on <day>"; one the push
    found already selected keeps its origin and says nothing of the admin."""
    result = labelsync("demo", "--users", "400", "--db", tmp_path / "demo.db", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    tabs = re.findall(r"this push: (.*)\n  Email tab of .*\n((?:  \[.*\n)+)", result.stdout)
    assert tabs
    for pushed, rows in tabs:
        for label in ("Inbox", "Sent"):
            [row] = [r for r in rows.splitlines() if re.match(rf"  \[x\] {label}  ", r)] or [""]
            if not row:
                continue  # a localised mailbox names them otherwise
            assert (f"{label} selected" in pushed) == ("[Set by your admin on " in row), row


def test_demo_output_has_no_terminal_escapes_when_piped(tmp_path: Path) -> None:
    result = labelsync("demo", "--users", "50", "--db", tmp_path / "demo.db", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert [] == [line for line in result.stdout.splitlines() if line != line.rstrip()]


def test_demo_progress_goes_to_stderr_and_ends_at_the_roster_size(tmp_path: Path) -> None:
    result = labelsync(
        "demo", "--users", "90", "--db", tmp_path / "d.db", "--batch-size", "10", cwd=tmp_path
    )

    assert 0 == result.returncode, result.stderr
    assert result.stderr.splitlines()[-1].endswith(": 90/90 Users processed")


def test_demo_refuses_a_database_that_already_holds_its_tenant(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert 0 == labelsync("demo", "--users", "20", "--db", db, cwd=tmp_path).returncode
    before = digest(db)

    result = labelsync("demo", "--users", "20", "--db", db, cwd=tmp_path)

    assert 2 == result.returncode
    assert "already holds tenant 'demo'; pass a new --db path" in one_error_line(result)
    assert before == digest(db)


@pytest.mark.slow
def test_demo_with_no_options_builds_ten_thousand_users_in_a_temporary_file(
    tmp_path: Path,
) -> None:
    """The README quickstart's command, exactly (with the temporary directory under tmp_path)."""
    result = labelsync("demo", cwd=tmp_path, TMPDIR=str(tmp_path))

    assert 0 == result.returncode, result.stderr
    found = re.search(
        r"^Database: (.+) \(a temporary file; --db PATH picks one\)$", result.stdout, re.M
    )
    assert found is not None, result.stdout
    db = Path(found[1])
    assert tmp_path == db.parent.parent
    assert 10_000 == summary_numbers(result.stdout)[0]
    last_push = stored(db, "demo").last_push
    assert last_push is not None
    assert 10_000 == last_push.roster_size


# -- import, preview, push, status, export -------------------------------------------------


def test_import_stores_the_snapshot_tenant(tmp_path: Path, snapshot: Path, acme: Tenant) -> None:
    db = tmp_path / "new.db"
    result = labelsync("import", snapshot, "--db", db, cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert f"imported tenant 'acme' (Acme): 300 Users into {db}\n" == result.stdout
    assert acme == stored(db, "acme")


@pytest.mark.parametrize(
    "example", sorted((ROOT / "examples").glob("*.json")), ids=lambda p: p.name
)
def test_every_shipped_example_snapshot_imports_and_previews(tmp_path: Path, example: Path) -> None:
    db = tmp_path / "example.db"
    tenant = io.load(example)

    imported = labelsync("import", example, "--db", db, cwd=tmp_path)
    previewed = labelsync(
        "preview",
        "--db",
        db,
        "--tenant",
        tenant.id,
        "--inbox",
        "--sent",
        "--format",
        "json",
        cwd=tmp_path,
    )

    assert 0 == imported.returncode, imported.stderr
    assert 0 == previewed.returncode, previewed.stderr
    assert len(tenant.users) == json.loads(previewed.stdout)["users"]


def test_preview_of_a_stored_tenant_writes_nothing(tmp_path: Path, db: Path) -> None:
    before = digest(db)

    for output_format in ("table", "json", "csv"):
        result = labelsync(
            "preview",
            "--db",
            db,
            "--tenant",
            "acme",
            "--no-inbox",
            "--sent",
            "--format",
            output_format,
            cwd=tmp_path,
        )
        assert 0 == result.returncode, result.stderr

    assert before == digest(db)
    assert [] == jobs(db)


def test_preview_json_gives_the_counts_and_every_change_and_skip(
    tmp_path: Path, snapshot: Path, acme: Tenant
) -> None:
    changes = apply_defaults(acme, Defaults(inbox=False, sent=True))[1]
    result = labelsync(
        "preview", snapshot, "--no-inbox", "--sent", "--format", "json", cwd=tmp_path
    )

    assert 0 == result.returncode, result.stderr
    document = json.loads(result.stdout)
    counts = changes.counts()
    assert {"inbox": False, "sent": True} == document["defaults"]
    assert {
        "users_changed": counts.users_changed,
        "users_unchanged": 300 - counts.users_changed - counts.no_mailbox,
        "selected": counts.selected,
        "deselected": counts.deselected,
        "no_mailbox": counts.no_mailbox,
        "label_missing": counts.label_missing,
        "user_choice_kept": counts.user_choice_kept,
    } == document["counts"]
    assert [
        {
            "user_id": c.user_id,
            "label": c.label.name,
            "label_id": c.label_id,
            "selected": c.selected,
        }
        for c in changes.changed
    ] == document["changes"]
    assert [
        {"user_id": s.user_id, "label": s.label and s.label.name, "reason": s.reason.name}
        for s in changes.skipped
    ] == document["skips"]


def test_preview_csv_has_one_row_per_change_and_skip(
    tmp_path: Path, snapshot: Path, acme: Tenant
) -> None:
    changes = apply_defaults(acme, Defaults(inbox=True, sent=False))[1]
    result = labelsync("preview", snapshot, "--inbox", "--no-sent", "--format", "csv", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    lines = result.stdout.splitlines()
    assert "kind,user_id,label,label_id,selected,reason" == lines[0]
    assert len(changes.changed) + len(changes.skipped) == len(lines) - 1
    first = changes.changed[0]
    assert f"change,{first.user_id},{first.label.name},{first.label_id},false," == lines[1]
    assert f"skip,{changes.skipped[0].user_id}," in result.stdout


def test_preview_table_says_nothing_was_written_and_counts_by_label(
    tmp_path: Path, snapshot: Path, acme: Tenant
) -> None:
    summary = apply_defaults(acme, Defaults(inbox=True, sent=True))[1].summary()
    result = labelsync("preview", snapshot, "--inbox", "--sent", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert "nothing was written" in result.stdout.splitlines()[0]
    assert expected_rows(summary) == label_rows(result.stdout)


def test_import_push_status_export_round_trip(tmp_path: Path, snapshot: Path, acme: Tenant) -> None:
    """The exported snapshot is the stored tenant, with the pushed checkboxes and audit record."""
    db = tmp_path / "acme.db"
    defaults = Defaults(inbox=True, sent=False)
    expected_users = apply_defaults(acme, defaults)[0].users

    imported = labelsync("import", snapshot, "--db", db, cwd=tmp_path)
    pushed = labelsync(
        "push",
        "--db",
        db,
        "--tenant",
        "acme",
        "--actor",
        ADMIN_ID,
        "--inbox",
        "--no-sent",
        "--batch-size",
        "64",
        cwd=tmp_path,
    )
    status = labelsync("status", "--db", db, "--tenant", "acme", cwd=tmp_path)
    exported = labelsync("export", "--db", db, "--tenant", "acme", "-o", "out.json", cwd=tmp_path)
    to_stdout = labelsync("export", "--db", db, "--tenant", "acme", cwd=tmp_path)

    for result in (imported, pushed, status, exported, to_stdout):
        assert 0 == result.returncode, result.stderr
    [job] = jobs(db)
    assert [(job.id, "acme", "DONE")] == status_rows(status.stdout)
    assert re.search(rf"^{job.id}\s+acme\s+DONE\s+300/300\s", status.stdout, re.MULTILINE)
    assert f"push {job.id} to 'acme' done" in pushed.stdout
    assert re.search(rf"^Users changed\s+{job.counts.users_changed}$", pushed.stdout, re.M)
    back = io.load(tmp_path / "out.json")
    assert stored(db, "acme") == back
    assert io.loads(to_stdout.stdout) == back
    assert defaults == back.defaults
    assert back.last_push is not None
    assert (job.id, ADMIN_ID, defaults, 300) == (
        back.last_push.job_id,
        back.last_push.actor_id,
        back.last_push.defaults,
        back.last_push.roster_size,
    )
    assert comparable(expected_users) == comparable(back.users)


def test_revert_restores_the_users_a_push_changed(tmp_path: Path, db: Path, acme: Tenant) -> None:
    pushed = labelsync(
        "push",
        "--db",
        db,
        "--tenant",
        "acme",
        "--actor",
        ADMIN_ID,
        "--no-inbox",
        "--no-sent",
        cwd=tmp_path,
    )
    [job] = jobs(db)
    result = labelsync("revert", job.id, "--db", db, "--actor", ADMIN_ID, cwd=tmp_path)

    assert 0 == pushed.returncode, pushed.stderr
    assert 0 == result.returncode, result.stderr
    changed = job.counts.users_changed
    assert f"{changed} Users restored, 0 left alone" in result.stdout
    after = stored(db, "acme")
    assert [u.synced for u in acme.users] == [u.synced for u in after.users]


def test_status_of_an_empty_database_says_there_are_no_jobs(tmp_path: Path, db: Path) -> None:
    result = labelsync("status", "--db", db, cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert f"no push jobs in {db}\n" == result.stdout


# -- interrupted pushes --------------------------------------------------------------------


def wait_until_a_batch_committed(process: subprocess.Popen[str]) -> str:
    """Read the push's stderr until its first progress line; return the job id it started."""
    assert process.stderr is not None
    job_id = None
    for line in process.stderr:
        started = STARTED.match(line)
        if started:
            job_id = started[1]
        if line.rstrip().endswith("Users processed"):
            assert job_id is not None
            return job_id
    raise AssertionError(f"the push ended (exit {process.wait()}) before committing a batch")


def push_in_batches_of_5(db: Path, launcher: tuple[str, ...]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *launcher,
            "push",
            "--db",
            str(db),
            "--tenant",
            "big",
            "--actor",
            ADMIN_ID,
            "--inbox",
            "--no-sent",
            "--batch-size",
            "5",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=db.parent,
        env=env(),
    )


def reference_push(tmp_path: Path, big_db: Path) -> tuple[Tenant, PushJob]:
    """The same push, uninterrupted, on a copy of the same database."""
    reference = tmp_path / "reference.db"
    shutil.copyfile(big_db, reference)
    result = labelsync(
        "push",
        "--db",
        reference,
        "--tenant",
        "big",
        "--actor",
        ADMIN_ID,
        "--inbox",
        "--no-sent",
        "--batch-size",
        "500",
        cwd=tmp_path,
    )
    assert 0 == result.returncode, result.stderr
    [job] = jobs(reference)
    return stored(reference, "big"), job


@pytest.mark.slow
def test_a_push_killed_mid_run_resumes_to_the_state_of_an_uninterrupted_push(
    tmp_path: Path, big_db: Path, big_copy: Path
) -> None:
    """R12: a job whose process is SIGKILLed resumes from its checkpoint and ends the same."""
    with push_in_batches_of_5(big_copy, CLI) as process:
        job_id = wait_until_a_batch_committed(process)
        process.kill()
        assert -signal.SIGKILL == process.wait()

    status = labelsync("status", "--db", big_copy, cwd=tmp_path)
    [killed] = jobs(big_copy)
    resumed = labelsync("resume", job_id, "--db", big_copy, "--batch-size", "500", cwd=tmp_path)

    # Its runner is dead (the lease names its pid on this host): INTERRUPTED, not RUNNING.
    assert [(job_id, "big", "INTERRUPTED")] == status_rows(status.stdout)
    assert (
        f"interrupted (no runner): labelsync resume {job_id} --db {big_copy}"
        in status.stdout.replace("\n", " ")
    )
    assert (JobStatus.RUNNING, True) == (killed.status, killed.lease_until is not None)
    assert 0 < killed.processed < killed.total
    assert 0 == resumed.returncode, resumed.stderr
    assert f"push {job_id} to 'big' done" in resumed.stdout
    expected_tenant, expected_job = reference_push(tmp_path, big_db)
    [done] = jobs(big_copy)
    assert JobStatus.DONE is done.status
    assert (expected_job.total, expected_job.counts) == (done.processed, done.counts)
    after = stored(big_copy, "big")
    assert comparable(expected_tenant.users) == comparable(after.users)
    assert expected_tenant.defaults == after.defaults


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "exit_code", "message"),
    [
        (signal.SIGINT, 130, "labelsync: interrupted: push stopped by Ctrl-C; "),
        (signal.SIGTERM, 143, "labelsync: terminated: push stopped by SIGTERM; "),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_push_exits_with_the_command_that_resumes_it(
    tmp_path: Path,
    big_db: Path,
    big_copy: Path,
    signum: signal.Signals,
    exit_code: int,
    message: str,
) -> None:
    with push_in_batches_of_5(big_copy, INTERRUPTIBLE) as process:
        job_id = wait_until_a_batch_committed(process)
        process.send_signal(signum)
        _, rest = process.communicate(timeout=120)

    resume_line = f"resume with: labelsync resume {job_id} --db {shlex.quote(str(big_copy))}"
    assert exit_code == process.returncode
    assert [message + resume_line] == rest.splitlines()[-1:]
    assert "Traceback" not in rest
    [job] = jobs(big_copy)
    assert JobStatus.RUNNING is job.status
    printed = shlex.split(resume_line.removeprefix("resume with: "))
    resumed = labelsync(*printed[1:], "--batch-size", "1000", cwd=tmp_path)
    assert 0 == resumed.returncode, resumed.stderr
    expected_tenant, expected_job = reference_push(tmp_path, big_db)
    [done] = jobs(big_copy)
    assert (JobStatus.DONE, expected_job.counts) == (done.status, done.counts)
    assert comparable(expected_tenant.users) == comparable(stored(big_copy, "big").users)


# -- errors: one line on stderr, the exit code, nothing changed -----------------------------


def test_a_missing_snapshot_file_exits_2(tmp_path: Path) -> None:
    result = labelsync("import", "missing.json", "--db", "x.db", cwd=tmp_path)

    assert 2 == result.returncode
    assert "'missing.json' does not exist" in one_error_line(result)
    assert not (tmp_path / "x.db").exists()


def test_a_missing_database_exits_2_and_is_not_created(tmp_path: Path) -> None:
    result = labelsync("status", "--db", "missing.db", cwd=tmp_path)

    assert 2 == result.returncode
    assert "'--db': File 'missing.db' does not exist" in one_error_line(result)
    assert not (tmp_path / "missing.db").exists()


def test_malformed_json_exits_2_naming_the_file_and_the_place(tmp_path: Path, db: Path) -> None:
    (tmp_path / "bad.json").write_text('{"format": 1, "tenant": {\n', encoding="utf-8")
    before = digest(db)

    result = labelsync("import", "bad.json", "--db", db, cwd=tmp_path)

    assert 2 == result.returncode
    line = one_error_line(result)
    assert line.startswith("labelsync: error: snapshot bad.json: line 2, column 1: ")
    assert line.endswith("(not valid JSON)")
    assert before == digest(db)


def test_a_snapshot_with_bad_values_exits_2_listing_each_on_one_line(tmp_path: Path) -> None:
    users = [
        {"id": "a", "email": 5},
        {"id": "b", "email": "b@x.io", "mailbox": {"provider": "YAHOO", "address": "b@x.io"}},
    ]
    document = {"format": 1, "tenant": {"id": "t", "name": "T", "users": users}}
    (tmp_path / "bad.json").write_text(json.dumps(document), encoding="utf-8")

    result = labelsync("preview", "bad.json", "--inbox", "--sent", cwd=tmp_path)

    assert 2 == result.returncode
    line = one_error_line(result)
    assert (
        "labelsync: error: snapshot bad.json has 2 problems: "
        "tenant.users[0].email: 5 must be a string; "
        "tenant.users[1].mailbox.provider: 'YAHOO' is not one of GMAIL, MICROSOFT, IMAP, OTHER"
    ) == line


def test_a_file_that_is_not_a_database_exits_2(tmp_path: Path, snapshot: Path) -> None:
    result = labelsync("status", "--db", snapshot, cwd=tmp_path)

    assert 2 == result.returncode
    assert "cannot be opened as a labelsync SQLite file" in one_error_line(result)


@pytest.mark.parametrize(
    "command",
    [
        ("push", "--db", "acme.db", "--tenant", "nope", "--actor", ADMIN_ID, "--inbox", "--sent"),
        ("export", "--db", "acme.db", "--tenant", "nope"),
        ("preview", "--db", "acme.db", "--tenant", "nope", "--inbox", "--sent"),
        ("status", "--db", "acme.db", "--tenant", "nope"),
    ],
    ids=lambda command: command[0],
)
def test_an_unknown_tenant_exits_2(tmp_path: Path, db: Path, command: tuple[str, ...]) -> None:
    before = digest(db)

    result = labelsync(*command, cwd=tmp_path)

    assert 2 == result.returncode
    assert "labelsync: error: tenant_id: 'nope' is not a known tenant" == one_error_line(result)
    assert before == digest(db)


@pytest.mark.parametrize("command", ["resume", "revert"])
def test_an_unknown_job_exits_2(tmp_path: Path, db: Path, command: str) -> None:
    actor = ("--actor", ADMIN_ID) if command == "revert" else ()
    result = labelsync(command, "no-such-job", "--db", db, *actor, cwd=tmp_path)

    assert 2 == result.returncode
    assert "labelsync: error: job_id: 'no-such-job' is not a known push job" == one_error_line(
        result
    )


def test_a_push_by_a_user_without_admin_access_exits_3_and_starts_no_job(
    tmp_path: Path, db: Path, acme: Tenant
) -> None:
    user = acme.users[1].id
    result = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", user, "--inbox", "--sent", cwd=tmp_path
    )

    assert 3 == result.returncode
    assert f"actor_id: '{user}' lacks ADMIN_ACCESS in tenant 'acme'" in one_error_line(result)
    assert [] == jobs(db)
    assert acme == stored(db, "acme")


def test_a_push_by_someone_outside_the_tenant_exits_3(tmp_path: Path, db: Path) -> None:
    result = labelsync(
        "push",
        "--db",
        db,
        "--tenant",
        "acme",
        "--actor",
        "mallory",
        "--inbox",
        "--sent",
        cwd=tmp_path,
    )

    assert 3 == result.returncode
    assert "'mallory' is not a User of tenant 'acme'" in one_error_line(result)


def test_resuming_a_superseded_job_exits_4_and_writes_nothing(tmp_path: Path, db: Path) -> None:
    with SqliteStore(db) as store:
        first = LabelSync(store=store, clock=SystemClock()).start_push(
            "acme", actor_id=ADMIN_ID, defaults=Defaults(inbox=False, sent=False)
        )
    pushed = labelsync(
        "push",
        "--db",
        db,
        "--tenant",
        "acme",
        "--actor",
        ADMIN_ID,
        "--inbox",
        "--sent",
        cwd=tmp_path,
    )
    before = stored(db, "acme")
    [second, _] = jobs(db)

    result = labelsync("resume", first.id, "--db", db, cwd=tmp_path)

    assert 0 == pushed.returncode, pushed.stderr
    assert 4 == result.returncode
    assert (
        f"labelsync: error: job_id: {first.id!r} was superseded by job {second.id!r}; "
        "it writes nothing more"
    ) == one_error_line(result)
    assert before == stored(db, "acme")


def test_resuming_a_finished_job_changes_nothing(tmp_path: Path, db: Path) -> None:
    labelsync(
        "push",
        "--db",
        db,
        "--tenant",
        "acme",
        "--actor",
        ADMIN_ID,
        "--inbox",
        "--sent",
        cwd=tmp_path,
    )
    [job] = jobs(db)
    before = digest(db)

    result = labelsync("resume", job.id, "--db", db, cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert f"push {job.id} was already done; nothing to resume\n" == result.stderr
    assert before == digest(db)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--batch-size", "0"), "Invalid value for '--batch-size': 0 is not in the range x>=1."),
        (("--batch-size", "many"), "Invalid value for '--batch-size': 'many' is not a valid"),
        (("--sent",), "Missing option '--inbox/--no-inbox'"),
        (("--no-inbox",), "Missing option '--sent/--no-sent'"),
        (("--inbox", "--sent", "--actor"), "Option '--actor' requires an argument."),
        (("--inbox", "--sent", "--frobnicate"), "No such option '--frobnicate'."),
    ],
    ids=["batch-size-0", "batch-size-word", "no-inbox-flag", "no-sent-flag", "no-actor", "typo"],
)
def test_bad_push_usage_exits_2_and_points_to_help(
    tmp_path: Path, db: Path, args: tuple[str, ...], message: str
) -> None:
    actor = () if "--actor" in args else ("--actor", ADMIN_ID)
    result = labelsync("push", "--db", db, "--tenant", "acme", *actor, *args, cwd=tmp_path)

    assert 2 == result.returncode
    line = one_error_line(result)
    assert line.startswith("labelsync push: error: ")
    assert message in line
    assert line.endswith("(see 'labelsync push --help')")
    assert [] == jobs(db)


def test_preview_refuses_both_a_snapshot_and_a_database(
    tmp_path: Path, db: Path, snapshot: Path
) -> None:
    result = labelsync(
        "preview", snapshot, "--db", db, "--tenant", "acme", "--inbox", "--sent", cwd=tmp_path
    )

    assert 2 == result.returncode
    assert "give either SNAPSHOT or --db with --tenant, not both" in one_error_line(result)


def test_importing_a_tenant_id_twice_exits_2_and_keeps_the_first(
    tmp_path: Path, db: Path, snapshot: Path, acme: Tenant
) -> None:
    result = labelsync("import", snapshot, "--db", db, cwd=tmp_path)

    assert 2 == result.returncode
    assert "tenant.id: 'acme' is already a stored tenant" in one_error_line(result)
    assert acme == stored(db, "acme")


# -- in process ------------------------------------------------------------------------------


COMMANDS = [
    "demo",
    "import",
    "export",
    "preview",
    "push",
    "resume",
    "status",
    "revert",
    "history",
    "tenants",
    "migrate",
    "schema",
    "coverage",
    "presets",
    "sync-directory",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_help_page_with_its_summary(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])

    assert 0 == result.exit_code
    assert f"Usage: labelsync {command} " in result.stdout
    summary = main.commands[command].get_short_help_str(limit=200)
    assert summary in " ".join(result.stdout.split())


def test_the_top_level_help_lists_every_command_and_the_exit_codes() -> None:
    result = CliRunner().invoke(main, ["--help"])

    assert 0 == result.exit_code
    listed = re.findall(r"^  (\w[\w-]*)  ", result.stdout, re.MULTILINE)
    assert sorted(COMMANDS) == listed
    codes = re.findall(r"^ +(\d+)  (.+)$", result.stdout.split("Exit codes:")[1], re.MULTILINE)
    assert [(str(e.code), f"{e.short}: {e.meaning}") for e in EXIT_CODES] == codes
    assert "143" in {code for code, _ in codes}


def test_an_unknown_command_exits_2_in_process() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])

    assert 2 == result.exit_code
    assert "labelsync: error: No such command 'frobnicate'. (see 'labelsync --help')\n" == (
        result.stderr
    )


def test_preview_json_in_process_matches_apply_defaults(snapshot: Path, acme: Tenant) -> None:
    changes = apply_defaults(acme, Defaults(inbox=True, sent=True))[1]

    result = CliRunner().invoke(
        main, ["preview", str(snapshot), "--inbox", "--sent", "--format", "json"]
    )

    assert 0 == result.exit_code, result.stderr
    document = json.loads(result.stdout)
    assert (len(changes.changed), len(changes.skipped)) == (
        len(document["changes"]),
        len(document["skips"]),
    )
    assert [row.unchanged for row in changes.summary().labels] == [
        row["unchanged"] for row in document["labels"]
    ]
