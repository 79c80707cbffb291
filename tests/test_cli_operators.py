"""The command as an operator meets it: help, a missing extra, narrow terminals, JSON, typos.

Subprocess tests run the real command on temporary SQLite files; the cheap
ones run in process with click's `CliRunner`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labelsync import Defaults, Tenant
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.postgres import SCHEMA_VERSION, schema_sql
from labelsync.adapters.sqlite import SqliteStore
from labelsync.cli import EXIT_CODES, main
from labelsync.service import LabelSync
from labelsync.synthetic import ADMIN_ID, synthetic_tenant

CLI = (sys.executable, "-m", "labelsync.cli")


def labelsync(
    *args: str | Path, cwd: Path, columns: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``labelsync ARGS`` piped, as a script would, optionally with COLUMNS set."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def acme() -> Tenant:
    return synthetic_tenant(300, seed=7, tenant_id="acme", name="Acme")


@pytest.fixture
def pushed(tmp_path: Path, acme: Tenant) -> tuple[Path, list[str]]:
    """A SQLite file holding `acme` with two finished pushes; the job ids, newest first."""
    db = tmp_path / "acme.db"
    with SqliteStore(db) as store:
        store.add_tenant(acme)
        svc = LabelSync(store=store, clock=SystemClock())
        svc.push("acme", actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=True))
        svc.push("acme", actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=False))
        return db, [job.id for job in svc.jobs("acme")]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert "" == result.stdout
    [line] = result.stderr.splitlines()
    return line


# -- help and installation --------------------------------------------------------------------


def test_bare_labelsync_prints_the_help_and_exits_0(tmp_path: Path) -> None:
    result = labelsync(cwd=tmp_path)

    assert (0, "") == (result.returncode, result.stderr)
    assert result.stdout.startswith("Usage: labelsync [OPTIONS] [COMMAND] [ARGS]...\n")
    assert "Commands:" in result.stdout
    assert "Exit codes:" in result.stdout


def test_the_help_lists_the_exit_codes_of_the_table_in_order() -> None:
    result = CliRunner().invoke(main, [])

    listed = re.findall(r"^ +(\d+)  ", result.stdout.split("Exit codes:")[1], re.MULTILINE)
    assert [str(exit.code) for exit in EXIT_CODES] == listed
    assert ["0", "1", "2", "3", "4", "5", "130", "143"] == listed


@pytest.mark.parametrize("missing", ["click", "rich"])
def test_without_the_cli_extra_the_command_names_the_extra_in_one_line(
    tmp_path: Path, missing: str
) -> None:
    # None in sys.modules makes `import click` raise ImportError, as if it was never installed.
    code = f"import sys; sys.modules[{missing!r}] = None; from labelsync.cli import run; run()"
    result = subprocess.run(
        [sys.executable, "-c", code, "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )

    assert 1 == result.returncode
    assert (
        f"labelsync: error: the command needs {missing!r}, which is not installed; "
        "install it with: pip install 'labelsync[cli]'\n"
    ) == result.stderr
    assert "" == result.stdout


def test_the_exit_codes_import_without_click(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['click'] = None; "
        "from labelsync.cli import EXIT_TERMINATED; print(EXIT_TERMINATED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )

    assert (0, "143\n") == (result.returncode, result.stdout)


# -- status at 80 columns -------------------------------------------------------------------


def test_status_at_80_columns_fits_and_keeps_every_job_id_and_count_whole(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed
    with SqliteStore(db) as store:
        jobs = store.list_jobs()

    result = labelsync("status", "--db", db, cwd=tmp_path, columns=80)

    assert 0 == result.returncode, result.stderr
    lines = result.stdout.splitlines()
    assert [] == [line for line in lines if len(line) > 80]
    assert "…" not in result.stdout
    assert job_ids == re.findall(r"^([0-9a-f]{32})  acme  DONE$", result.stdout, re.MULTILINE)
    for job in jobs:
        c = job.counts
        assert (
            f"  300/300 Users, {c.users_changed} changed "
            f"(+{c.selected} -{c.deselected} labels), {c.skipped} skips"
        ) in lines


def test_status_wide_keeps_one_row_per_job_however_narrow(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed

    result = labelsync("status", "--db", db, "--wide", cwd=tmp_path, columns=80)

    assert 0 == result.returncode, result.stderr
    rows = re.findall(r"^([0-9a-f]{32})\s+acme\s+DONE\s+300/300\s", result.stdout, re.MULTILINE)
    assert job_ids == rows
    assert "Finished (UTC)" in result.stdout
    assert "…" not in result.stdout


def test_status_on_a_wide_terminal_is_the_table(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed

    result = labelsync("status", "--db", db, cwd=tmp_path, columns=200)

    rows = re.findall(r"^([0-9a-f]{32})\s+acme\s+DONE\s+300/300\s", result.stdout, re.MULTILINE)
    assert job_ids == rows


# -- --format json --------------------------------------------------------------------------


def run_json(*args: str | Path, cwd: Path) -> Any:
    result = labelsync(*args, "--format", "json", cwd=cwd)
    assert 0 == result.returncode, result.stderr
    return json.loads(result.stdout)


def test_status_json_lists_every_job_with_its_counts(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed
    with SqliteStore(db) as store:
        newest = store.list_jobs()[0]

    document = run_json("status", "--db", db, cwd=tmp_path)

    assert job_ids == [job["job"] for job in document]
    first = document[0]
    assert ("acme", ADMIN_ID, "DONE", {"inbox": True, "sent": False}) == (
        first["tenant"],
        first["actor"],
        first["status"],
        first["defaults"],
    )
    c = newest.counts
    assert {
        "users_changed": c.users_changed,
        "users_unchanged": 300 - c.users_changed - c.no_mailbox,
        "selected": c.selected,
        "deselected": c.deselected,
        "no_mailbox": c.no_mailbox,
        "label_missing": c.label_missing,
    } == first["counts"]
    assert (300, 300, None) == (first["users"], first["processed"], first["resume"])
    assert first["finished_at"].endswith("+00:00")


def test_push_and_resume_json_give_the_finished_job(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, _ = pushed

    pushed_doc = run_json(
        "push", "--db", db, "--tenant", "acme", "--actor", ADMIN_ID, "--no-inbox", "--sent",
        cwd=tmp_path,
    )  # fmt: skip
    resumed_doc = run_json("resume", pushed_doc["job"], "--db", db, cwd=tmp_path)

    with SqliteStore(db) as store:
        job = store.get_job(pushed_doc["job"])
    assert ("DONE", 300, job.counts.users_changed) == (
        pushed_doc["status"],
        pushed_doc["processed"],
        pushed_doc["counts"]["users_changed"],
    )
    assert pushed_doc == resumed_doc


def test_revert_json_lists_the_users_restored(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed
    with SqliteStore(db) as store:
        changed = {change.change.user_id for change in store.job_changes(job_ids[0])}

    document = run_json("revert", job_ids[0], "--db", db, "--actor", ADMIN_ID, cwd=tmp_path)

    assert (job_ids[0], changed, []) == (
        document["job"],
        set(document["reverted"]),
        document["changed_since"],
    )


def test_export_json_to_a_file_says_what_it_wrote(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, _ = pushed

    document = run_json("export", "--db", db, "--tenant", "acme", "-o", "out.json", cwd=tmp_path)

    assert {"tenant": "acme", "users": 300, "output": "out.json"} == document
    assert "acme" == json.loads((tmp_path / "out.json").read_text())["tenant"]["id"]


# -- tenants ----------------------------------------------------------------------------------


def test_tenants_lists_each_tenant_with_its_users_and_last_push(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed
    with SqliteStore(db) as store:
        store.add_tenant(synthetic_tenant(5, seed=1, tenant_id="beta", name="Beta"))

    text = labelsync("tenants", "--db", db, cwd=tmp_path)
    document = run_json("tenants", "--db", db, cwd=tmp_path)

    assert 0 == text.returncode, text.stderr
    assert re.search(r"^acme\s+Acme\s+300\s+Inbox on, Sent off\s+\S+ \S+ UTC by admin$",
                     text.stdout, re.M)  # fmt: skip
    assert re.search(r"^beta\s+Beta\s+5\s+never set\s+never$", text.stdout, re.M)
    assert [("acme", 300, job_ids[0]), ("beta", 5, None)] == [
        (t["tenant"], t["users"], t["last_push"] and t["last_push"]["job"]) for t in document
    ]


# -- did you mean -----------------------------------------------------------------------------


def test_a_mistyped_tenant_gets_the_closest_tenant_suggested(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, _ = pushed

    result = labelsync("status", "--db", db, "--tenant", "acne", cwd=tmp_path)

    assert 2 == result.returncode
    assert (
        "labelsync: error: tenant_id: 'acne' is not a known tenant; did you mean 'acme'?"
        == one_error_line(result)
    )


def test_a_job_id_prefix_gets_the_whole_job_id_suggested(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed

    result = labelsync("resume", job_ids[0][:8], "--db", db, cwd=tmp_path)

    assert 2 == result.returncode
    assert one_error_line(result).endswith(f"; did you mean '{job_ids[0]}'?")


def test_a_mistyped_actor_gets_the_tenants_admin_suggested(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, _ = pushed

    result = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", "admni", "--inbox", "--sent",
        cwd=tmp_path,
    )  # fmt: skip

    assert 3 == result.returncode
    assert one_error_line(result).endswith(
        "'admni' is not a User of tenant 'acme'; did you mean 'admin'?"
    )


def test_an_id_far_from_every_known_one_gets_no_suggestion(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, _ = pushed

    result = labelsync("status", "--db", db, "--tenant", "zzzzzz", cwd=tmp_path)

    assert "labelsync: error: tenant_id: 'zzzzzz' is not a known tenant" == one_error_line(result)


# -- pipes, progress, schema, logging ---------------------------------------------------------


def test_a_reader_that_stops_early_ends_the_command_quietly_with_0(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, _ = pushed
    command = [*CLI, "preview", "--db", str(db), "--tenant", "acme", "--no-inbox", "--no-sent"]
    shell = f"{' '.join(command)} --format csv | head -n 1; exit ${{PIPESTATUS[0]}}"

    result = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, cwd=tmp_path, check=False
    )

    assert (0, "kind,user_id,label,label_id,selected,reason\n", "") == (
        result.returncode,
        result.stdout,
        result.stderr,
    )


def test_demo_reports_progress_before_it_builds_the_users(tmp_path: Path) -> None:
    result = labelsync("demo", "--users", "30", "--db", tmp_path / "d.db", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    lines = result.stderr.splitlines()
    assert "building 30 synthetic Users ..." == lines[0]
    assert "storing 30 Users in d.db ..." == lines[1]


def test_demo_builds_the_synthetic_tenant_of_its_seed(tmp_path: Path) -> None:
    expected = synthetic_tenant(30, seed=4)

    result = labelsync(
        "demo", "--users", "30", "--seed", "4", "--db", tmp_path / "d.db", cwd=tmp_path
    )

    assert 0 == result.returncode, result.stderr
    with SqliteStore(tmp_path / "d.db") as store:
        built = store.get_tenant(expected.id)
    assert (expected.name, [(u.id, u.email, u.mailbox) for u in expected.users]) == (
        built.name,
        [(u.id, u.email, u.mailbox) for u in built.users],
    )


def test_schema_postgres_prints_the_stores_ddl(tmp_path: Path) -> None:
    result = labelsync("schema", "--postgres", cwd=tmp_path)

    assert (0, "") == (result.returncode, result.stderr)
    assert schema_sql() == result.stdout
    assert 'CREATE TABLE "labelsync".users (' in result.stdout
    assert (
        f'INSERT INTO "labelsync".schema_version (version) VALUES ({SCHEMA_VERSION});'
        in result.stdout
    )


def test_schema_needs_a_dialect(tmp_path: Path) -> None:
    result = labelsync("schema", cwd=tmp_path)

    assert 2 == result.returncode
    assert "Missing option '--postgres'" in one_error_line(result)


def test_verbose_logs_the_revert_to_stderr_and_quiet_logs_nothing(
    tmp_path: Path, pushed: tuple[Path, list[str]]
) -> None:
    db, job_ids = pushed
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)

    result = labelsync("-v", "revert", job_ids[0], "--db", db, "--actor", ADMIN_ID, cwd=tmp_path)
    quiet = labelsync("revert", job_ids[0], "--db", copy, "--actor", ADMIN_ID, cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert re.search(
        rf" INFO labelsync\.service: revert of push {job_ids[0]} \(tenant acme\) by admin: "
        r"\d+ Users restored, 0 left alone$",
        result.stderr,
        re.MULTILINE,
    )
    assert (0, "") == (quiet.returncode, quiet.stderr)


# -- in process -------------------------------------------------------------------------------


def test_status_json_in_process_is_the_stored_jobs(pushed: tuple[Path, list[str]]) -> None:
    db, job_ids = pushed

    result = CliRunner().invoke(main, ["status", "--db", str(db), "--format", "json"])

    assert 0 == result.exit_code, result.stderr
    assert job_ids == [job["job"] for job in json.loads(result.stdout)]


def test_schema_in_process_prints_the_sql_for_the_schema_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schema", "--postgres", "--schema", "mail_admin"])

    assert 0 == result.exit_code, result.stderr
    assert schema_sql("mail_admin") == result.stdout
    assert 'CREATE TABLE "mail_admin".jobs (' in result.stdout


def test_a_schema_name_that_is_not_an_identifier_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schema", "--postgres", "--schema", "x; DROP TABLE y"])

    assert 2 == result.exit_code
    assert result.stderr.startswith("labelsync: error: schema: 'x; DROP TABLE y' ")


def test_tenants_of_an_empty_file_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    SqliteStore(db).close()

    result = CliRunner().invoke(main, ["tenants", "--db", str(db)])

    assert (0, f"no tenants in {db}\n") == (result.exit_code, result.stdout)


@pytest.mark.postgres
def test_the_printed_schema_is_the_one_the_store_uses(tmp_path: Path, acme: Tenant) -> None:
    """A DBA runs the printed SQL; the store then finds its tables current and works on them."""
    import psycopg

    from labelsync.adapters.postgres import PostgresStore
    from postgres_fixtures import fresh_schema, postgres_dsn

    dsn = postgres_dsn()
    with fresh_schema(dsn, prefix="ddl") as name:
        printed = labelsync("schema", "--postgres", "--schema", name, cwd=tmp_path)
        assert 0 == printed.returncode, printed.stderr
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(printed.stdout.encode())

        with PostgresStore(dsn, schema=name) as store:
            assert SCHEMA_VERSION == store.schema_version()
            store.add_tenant(acme)
            assert acme == store.get_tenant("acme")
