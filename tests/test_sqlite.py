"""SqliteStore on a real file: pragmas, schema versions and migration, reopening, sharing, rollback.

The `Store` contract itself is checked by tests/test_store_conformance.py;
these tests look at what only a file database has. Raw `sqlite3` connections
read the file directly to see every row, not only what the Store API shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from labelsync import (
    Audience,
    Defaults,
    InvalidInput,
    JobSuperseded,
    Label,
    LabelSet,
    LabelSyncError,
    Mailbox,
    Permission,
    Provider,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.adapters.sqlite import SCHEMA_VERSION, SqliteStore
from labelsync.exceptions import Retryable, StorageBusy
from labelsync.ports import JobStatus, PushJob
from labelsync.testing.conformance import commit_all, run_next

TABLES = (
    "schema_version", "tenants", "users", "user_state", "jobs", "job_changes", "job_skips",
    "reverts", "removed_users",
)  # fmt: skip
AUDIENCE_TABLES = ("job_members", "presets", "preset_events")  # schema version 4 (R20, R21)
V1_DUMP = Path(__file__).parent / "data" / "labelsync-v1.sql"
START = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)


def gmail_user(user_id: str, *, version: int = 0) -> User:
    address = f"{user_id}@acme.test"
    mailbox = Mailbox(
        provider=Provider.GMAIL,
        address=address,
        labels=(
            Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX),
            Label(id="SENT", name="Sent", system=SystemLabel.SENT),
        ),
    )
    return User(id=user_id, email=address, mailbox=mailbox, version=version)


def tenant(tenant_id: str, count: int) -> Tenant:
    return Tenant(id=tenant_id, name="Acme", users=tuple(gmail_user(f"u{n}") for n in range(count)))


def new_job(job_id: str, tenant_id: str = "t1", *, minutes: int = 0) -> PushJob:
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id="admin",
        defaults=BOTH,
        status=JobStatus.PENDING,
        started_at=START + dt.timedelta(minutes=minutes),
    )


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the file, closed afterwards; autocommit."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to compare before and after a failed call."""
    with raw(path) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "labelsync.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(path) as store:
        yield store


# -- the file ----------------------------------------------------------------------


def test_a_new_file_is_in_wal_mode(store: SqliteStore, path: Path) -> None:
    with raw(path) as conn:
        assert ("wal",) == conn.execute("PRAGMA journal_mode").fetchone()


def test_a_new_file_records_the_current_schema_version(store: SqliteStore, path: Path) -> None:
    assert 6 == SCHEMA_VERSION  # 4: audiences (R20, R21); 5: directory (R13, R14); 6: policy
    assert [(1, SCHEMA_VERSION)] == rows(path)["schema_version"]  # (id, version): one row only


def test_every_table_of_the_schema_exists(store: SqliteStore, path: Path) -> None:
    with raw(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(TABLES) | set(AUDIENCE_TABLES) <= names


def test_reopening_a_file_keeps_one_schema_version_row(path: Path) -> None:
    for _ in range(3):
        SqliteStore(path).close()

    assert [(1, SCHEMA_VERSION)] == rows(path)["schema_version"]  # (id, version): one row only


def test_a_file_from_a_newer_labelsync_is_refused(path: Path) -> None:
    SqliteStore(path).close()
    with raw(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")

    with pytest.raises(InvalidInput) as raised:
        SqliteStore(path)

    assert str(path) == raised.value.value
    assert "99" in str(raised.value)


def test_foreign_keys_are_enforced(store: SqliteStore, path: Path) -> None:
    """A skip row must name a stored job; a User's row must belong to a stored tenant.

    Since schema 3 a skip or change row may name a removed User (R14): the push's
    history outlives the User, so those rows no longer refer to `users`.
    """
    store.add_tenant(tenant("t1", 2))
    store.start_job(new_job("j1"))
    before = rows(path)

    with raw(path) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(
                "INSERT INTO job_skips (job_id, tenant_id, user_id, label, reason)"
                " VALUES ('nope', 't1', 'u1', NULL, 'NO_MAILBOX')"
            )
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(
                "INSERT INTO users (tenant_id, id, position, email, permissions, other_synced)"
                " VALUES ('t9', 'u1', 99, 'a@x.io', '[]', '[]')"
            )

    assert before == rows(path)


def test_the_push_state_of_a_user_is_narrow_and_its_other_ids_cold(
    store: SqliteStore, path: Path
) -> None:
    """INBOX/SENT are an id and a flag each; every other selected id stays in JSON (R5)."""
    user = gmail_user("u1").with_selection(LabelSet(["INBOX", "Label_9", "gone"]))
    store.add_tenant(Tenant(id="t1", name="Acme", users=(user,)))

    with raw(path) as conn:
        hot = conn.execute(
            "SELECT id, version, has_mailbox, inbox_id, inbox_on, sent_id, sent_on FROM user_state"
        ).fetchall()
        (cold,) = conn.execute("SELECT other_synced FROM users").fetchone()
    assert [("u1", 1, 1, "INBOX", 1, "SENT", 0)] == hot
    assert ["Label_9", "gone"] == json.loads(cold)
    assert user == store.get_user("t1", "u1")


def test_a_negative_busy_timeout_is_refused(path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        SqliteStore(path, busy_timeout=-1)

    assert "busy_timeout" == raised.value.field


# -- opening and closing --------------------------------------------------------------


def test_the_context_manager_closes_the_store(path: Path) -> None:
    with SqliteStore(path) as store:
        store.add_tenant(tenant("t1", 1))

    with pytest.raises(LabelSyncError, match="is closed"):
        store.tenant_ids()
    assert repr(store).endswith("closed>")


def test_closing_twice_does_nothing(path: Path) -> None:
    store = SqliteStore(path)
    store.close()
    store.close()

    with pytest.raises(LabelSyncError, match="is closed"):
        store.get_tenant("t1")


def test_everything_survives_reopening_the_file(path: Path) -> None:
    cest = dt.timezone(dt.timedelta(hours=2))
    with SqliteStore(path) as store:
        store.add_tenant(tenant("t1", 3))
        store.add_user("t1", User(id="nobox", email="n@acme.test"))
        job = store.start_job(attrs.evolve(new_job("j1"), started_at=START.astimezone(cest)))
        commit_all(store, job, limit=2)
        store.finish_job("j1", START.astimezone(cest) + dt.timedelta(minutes=5))
        store.start_job(new_job("j2", minutes=10))
        before = (
            store.get_tenant("t1"),
            store.list_jobs(),
            list(store.job_changes("j1")),
            list(store.job_skips("j1")),
        )

    with SqliteStore(path) as reopened:
        after = (
            reopened.get_tenant("t1"),
            reopened.list_jobs(),
            list(reopened.job_changes("j1")),
            list(reopened.job_skips("j1")),
        )
        started_at = reopened.get_job("j1").started_at

    assert before == after
    assert dt.timedelta(hours=2) == started_at.utcoffset()  # the offset itself is kept


# -- two stores on one file -----------------------------------------------------------


def test_two_stores_on_one_file_see_each_others_commits(path: Path) -> None:
    with SqliteStore(path) as first, SqliteStore(path) as second:
        first.add_tenant(tenant("t1", 2))
        assert first.get_tenant("t1") == second.get_tenant("t1")

        edited = gmail_user("u1").with_selection(LabelSet(["SENT"]))
        assert () == second.save_users("t1", [(edited, 0)])
        assert edited == first.get_user("t1", "u1")

        old = first.start_job(new_job("old"))
        second.start_job(new_job("new", minutes=1))
        with pytest.raises(JobSuperseded) as raised:
            first.run_batch(old.id, after=old.cursor, limit=10)
        assert ("old", "new") == (raised.value.job_id, raised.value.by)


def test_a_write_waits_for_the_lock_another_connection_holds(
    store: SqliteStore, path: Path
) -> None:
    store.add_tenant(tenant("t1", 1))
    errors: list[BaseException] = []
    started = threading.Event()

    def add_late_user() -> None:
        started.set()
        try:
            store.add_user("t1", gmail_user("late"))
        except BaseException as error:  # reported to the test thread below
            errors.append(error)

    with raw(path) as other:
        other.execute("BEGIN IMMEDIATE")
        writer = threading.Thread(target=add_late_user)
        writer.start()
        started.wait()
        time.sleep(0.2)  # give the writer time to hit the lock; no timing is asserted
        still_waiting = writer.is_alive()
        other.execute("COMMIT")
    writer.join(timeout=60)

    assert (True, []) == (still_waiting, errors)
    assert ["u0", "late"] == [u.id for u in store.get_tenant("t1").users]


def test_without_a_busy_timeout_a_locked_file_fails_the_write_and_writes_nothing(
    path: Path,
) -> None:
    with SqliteStore(path, busy_timeout=0) as store:
        store.add_tenant(tenant("t1", 1))
        with raw(path) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageBusy, match="locked") as refused:
                store.add_user("t1", gmail_user("late"))
            assert isinstance(refused.value, Retryable)
            other.execute("ROLLBACK")

        assert ["u0"] == [u.id for u in store.get_tenant("t1").users]


# -- failures roll back every row ---------------------------------------------------------


def test_a_batch_failing_mid_transaction_leaves_every_row_as_it_was(
    store: SqliteStore, path: Path
) -> None:
    """The failure strikes after the Users and changes are written, at the skips (R12)."""
    store.add_tenant(tenant("t1", 3))
    store.add_user("t1", User(id="nobox", email="n@acme.test"))
    job = store.start_job(new_job("j1"))
    with raw(path) as conn:
        conn.execute(
            "CREATE TRIGGER fail_skips BEFORE INSERT ON job_skips"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    before = rows(path)

    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        store.run_batch(job.id, after=job.cursor, limit=10)

    assert before == rows(path)
    with raw(path) as conn:
        conn.execute("DROP TRIGGER fail_skips")
    assert 4 == commit_all(store, store.get_job("j1")).processed  # and it can still go on


def test_an_add_tenant_failing_midway_stores_no_part_of_it(store: SqliteStore, path: Path) -> None:
    with raw(path) as conn:
        conn.execute(
            "CREATE TRIGGER fail_u2 BEFORE INSERT ON users WHEN NEW.id = 'u2'"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    before = rows(path)

    with pytest.raises(sqlite3.IntegrityError, match="injected failure"):
        store.add_tenant(tenant("t1", 4))

    assert before == rows(path)
    assert [] == store.tenant_ids()


# -- sizes beyond one query ------------------------------------------------------------------


def test_many_users_are_read_and_compared_in_chunks(store: SqliteStore) -> None:
    """More ids than one IN (...) binds: get_users and a conflicting save_users still see all."""
    store.add_tenant(tenant("t1", 1200))
    ids = [f"u{n}" for n in reversed(range(1200))]

    assert ids == [u.id for u in store.get_users("t1", ids)]

    store.save_users("t1", [(gmail_user("u1100", version=1), 0)])
    writes = [(gmail_user(f"u{n}").with_selection(LabelSet(["INBOX"])), 0) for n in range(1200)]
    assert ("u1100",) == store.save_users("t1", writes)
    assert 1199 == sum(1 for u in store.get_tenant("t1").users if u.synced == LabelSet(["INBOX"]))


def test_job_changes_stream_past_one_page_in_roster_order(store: SqliteStore) -> None:
    store.add_tenant(tenant("t1", 700))
    job = commit_all(store, store.start_job(new_job("j1")), limit=250)

    changes = list(store.job_changes("j1"))

    assert 1400 == len(changes) == job.counts.selected
    assert [f"u{n}" for n in range(700)] == [c.change.user_id for c in changes[::2]]


def test_job_changes_yield_what_was_committed_when_called(store: SqliteStore) -> None:
    store.add_tenant(tenant("t1", 4))
    half = run_next(store, store.start_job(new_job("j1")), limit=2)

    changes = store.job_changes("j1")
    skips = store.job_skips("j1")
    commit_all(store, half)

    assert 4 == len(list(changes))
    assert [] == list(skips)
    assert 8 == len(list(store.job_changes("j1")))


# -- migrating a version-1 file in place ------------------------------------------------------


def v1_users(conn: sqlite3.Connection) -> tuple[User, ...]:
    """The Users of a version-1 file, decoded from its wide JSON rows as labelsync 1 stored them."""
    users = []
    query = (
        "SELECT id, email, permissions, provider, address, mailbox_labels, synced, version"
        " FROM users ORDER BY position"
    )
    for user_id, email, permissions, provider, address, labels, synced, version in conn.execute(
        query
    ):
        mailbox = None
        if provider is not None:
            mailbox = Mailbox(
                provider=Provider(provider),
                address=address,
                labels=tuple(
                    Label(id=i, name=n, system=None if r is None else SystemLabel(r))
                    for i, n, r in json.loads(labels)
                ),
            )
        users.append(
            User(
                id=user_id,
                email=email,
                permissions=frozenset(Permission(p) for p in json.loads(permissions)),
                mailbox=mailbox,
                synced=LabelSet(json.loads(synced)),
                version=version,
            )
        )
    return tuple(users)


def test_a_version_1_file_migrates_in_place_keeping_every_user_job_and_record(
    path: Path,
) -> None:
    """tests/data/labelsync-v1.sql was written by labelsync 1 (tests/data/v1_scenario.py)."""
    with raw(path) as conn:
        conn.executescript(V1_DUMP.read_text())
        users = v1_users(conn)
        (old_changes,) = conn.execute("SELECT count(*) FROM job_changes").fetchone()
    assert 40 == len(users)
    assert any(u.mailbox is None for u in users)
    assert any(u.mailbox and u.synced.ids - {lb.id for lb in u.mailbox.labels} for u in users)

    with SqliteStore(path) as store:
        tenant = store.get_tenant("acme")
        finished, running = store.get_job("j1"), store.get_job("j2")
        changes = list(store.job_changes("j1")) + list(store.job_changes("j2"))
        last_push = store.settings("acme").last_push

    assert [(1, SCHEMA_VERSION)] == rows(path)["schema_version"]
    assert users == tenant.users
    assert (JobStatus.DONE, JobStatus.RUNNING, 7) == (
        finished.status,
        running.status,
        running.cursor,
    )
    assert old_changes == len(changes)
    assert last_push is not None
    assert "j1" == last_push.job_id


def test_a_push_left_running_in_a_version_1_file_resumes_after_migrating(path: Path) -> None:
    """R12: the resumed push ends as the rule says for every roster User it had not reached."""
    with raw(path) as conn:
        conn.executescript(V1_DUMP.read_text())
        users = v1_users(conn)

    with SqliteStore(path) as store:
        running = store.get_job("j2")
        done = commit_all(store, running, limit=7)
        after = store.get_tenant("acme").users

    rest = Tenant(id="acme", name="Acme", users=users[running.processed :])
    pushed, changes = apply_defaults(rest, running.defaults, stamp=running.stamp)
    assert users[: running.processed] + pushed.users == after
    assert (40, running.counts + changes.counts()) == (done.processed, done.counts)


def test_a_batch_costs_as_much_late_in_a_push_as_early(tmp_path: Path) -> None:
    """A batch's work does not grow with the change rows the job already wrote.

    Counted in SQLite virtual-machine steps, which do not depend on the machine's
    load: saving the job once rewrote its key, and SQLite then checked every
    change row referencing it, so each batch cost more than the one before.
    """
    with SqliteStore(tmp_path / "steps.db") as store:
        store.add_tenant(tenant("t1", 3000))
        store.start_job(new_job("j1"))
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        # Private on purpose: SQLite counts steps per connection, and only the store has it.
        store._connection().set_progress_handler(count, 50)
        per_batch: list[int] = []
        after = 0
        while True:
            steps[0] = 0
            result = store.run_batch("j1", after=after, limit=100)
            assert isinstance(result, PushJob)
            if result.cursor == after:
                break
            per_batch.append(steps[0])
            after = result.cursor
    assert 30 == len(per_batch)
    assert per_batch[-1] <= 1.5 * per_batch[1], per_batch


def test_a_push_to_a_group_keeps_its_members_only_while_it_can_run(
    store: SqliteStore, path: Path
) -> None:
    """R20, R6: `job_members` holds a narrowed push's roster while the push can run;
    superseding or finishing it drops those rows (the job keeps its audience and total),
    so the file does not grow by a roster with every push to a group."""
    users = tenant("t1", 4).users
    grouped = tuple(
        attrs.evolve(u, groups=frozenset({"sales"} if n % 2 == 0 else {"ops"}))
        for n, u in enumerate(users)
    )
    store.add_tenant(Tenant(id="t1", name="Acme", users=grouped))
    sales = Audience.groups({"sales"})

    def members() -> dict[str, int]:
        with raw(path) as conn:
            found = conn.execute("SELECT job_id, count(*) FROM job_members GROUP BY job_id")
            return dict(found.fetchall())

    store.start_job(attrs.evolve(new_job("j1"), audience=sales))
    assert {"j1": 2} == members()
    job = store.start_job(attrs.evolve(new_job("j2", minutes=1), audience=sales))
    assert {"j2": 2} == members()
    while not job.roster_done:
        done = store.run_batch(job.id, after=job.cursor, limit=1)
        assert isinstance(done, PushJob)
        job = done
    assert {"j2": 2} == members()

    finished = store.finish_job("j2", START + dt.timedelta(minutes=2))

    assert {} == members()
    assert (sales, 2, 2) == (finished.audience, finished.total, finished.processed)
    assert (sales, 2) == (store.get_job("j2").audience, store.get_job("j2").total)
