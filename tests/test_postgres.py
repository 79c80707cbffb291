"""`PostgresStore` on a real PostgreSQL server: the shipped contract, the state machine, fencing.

Every test here that needs the server is marked ``postgres`` and works in a
schema of its own, dropped afterwards. Without a reachable server they are
skipped with the reason (see tests/postgres_fixtures.py).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from labelsync import (
    Defaults,
    InvalidInput,
    JobStatus,
    JobSuperseded,
    Label,
    LabelSet,
    LabelSync,
    LabelSyncError,
    Mailbox,
    Permission,
    Provider,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.adapters import postgres as postgres_adapter
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.postgres import SCHEMA_VERSION, PostgresStore, schema_sql
from labelsync.exceptions import MissingExtra, Retryable, StorageUnavailable
from labelsync.parallel import Claim
from labelsync.ports import PushJob, Store
from labelsync.testing.conformance import StoreContract
from postgres_fixtures import drop_schema, fresh_schema, new_schema_name, postgres_dsn
from test_sqlite import V1_DUMP, v1_users
from test_stateful import PushMachine

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
INBOX = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
SENT = Label(id="SENT", name="Sent", system=SystemLabel.SENT)
PROJECT = Label(id="Label_7", name="Project X")


@pytest.fixture
def dsn() -> str:
    return postgres_dsn()


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    with fresh_schema(dsn) as name:
        yield name


@pytest.fixture
def store(dsn: str, schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(dsn, schema=schema) as opened:
        yield opened


def user(user_id: str, *, synced: tuple[str, ...] = (), admin: bool = False) -> User:
    address = f"{user_id}@acme.test"
    return User(
        id=user_id,
        email=address,
        permissions=frozenset({Permission.ADMIN_ACCESS} if admin else {Permission.EMAIL_SYNC}),
        mailbox=Mailbox(provider=Provider.GMAIL, address=address, labels=(INBOX, SENT, PROJECT)),
        synced=LabelSet(synced),
    )


def tenant(tenant_id: str, size: int) -> Tenant:
    users = [user("admin", admin=True)] + [user(f"u{n}", synced=("SENT",)) for n in range(size)]
    return Tenant(id=tenant_id, name=f"Tenant {tenant_id}", users=users)


def stop_after_one_batch(job: PushJob) -> None:
    raise _Stop


class _Stop(Exception):
    """Raised by a progress callback so that a run commits exactly one batch."""


def snapshot(store: Store) -> tuple[object, ...]:
    """Everything the store shows a caller."""
    tenants = [store.get_tenant(tenant_id) for tenant_id in store.tenant_ids()]
    jobs = store.list_jobs()
    trail = [(list(store.job_changes(j.id)), list(store.job_skips(j.id))) for j in jobs]
    return tenants, jobs, trail


# -- the shipped conformance suite, unchanged ----------------------------------------


@pytest.mark.postgres
class TestPostgresStoreContract(StoreContract):
    """`labelsync.testing.conformance` exactly as a host runs it against its own store."""

    @pytest.fixture
    def store(self, dsn: str, schema: str) -> Iterator[Store]:
        with PostgresStore(dsn, schema=schema) as opened:
            yield opened


# -- the state machine of tests/test_stateful.py, on PostgreSQL ------------------------------


class PostgresPushMachine(PushMachine):
    """The push state machine (edits, pushes, faults, resumes) over a fresh Postgres schema."""

    dsn = ""

    def open_store(self) -> Store:
        self.schema = new_schema_name("stateful")
        self.pg = PostgresStore(self.dsn, schema=self.schema)
        return self.pg

    def reopen_store(self) -> Store:
        """A new store object on the same schema, as a new process would open it."""
        self.pg.close()
        self.pg = PostgresStore(self.dsn, schema=self.schema)
        return self.pg

    def close_store(self) -> None:
        self.pg.close()
        drop_schema(self.dsn, self.schema)


@pytest.mark.postgres
@pytest.mark.slow
def test_the_push_state_machine_holds_on_postgres(dsn: str) -> None:
    """R3-R6, R10-R12 after every step of random edits, pushes, faults and resumes.

    Each example builds a schema on the server, so the example count is capped
    below the profile's (the in-memory and SQLite machines run the full count).
    """
    PostgresPushMachine.dsn = dsn
    run_state_machine_as_test(
        PostgresPushMachine,
        settings=settings(
            max_examples=min(settings().max_examples, 40),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# -- fencing: a superseded job writes nothing ---------------------------------------------


@pytest.mark.postgres
def test_a_superseded_single_runner_cannot_write_and_leaves_everything_as_it_was(
    store: PostgresStore,
) -> None:
    """R10: after a second click the first job's run raises JobSuperseded and writes nothing."""
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant("t1", 10))
    old = svc.start_push("t1", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    with pytest.raises(_Stop):
        svc.run_push(old.id, batch_size=4, progress=stop_after_one_batch)
    new = svc.start_push("t1", actor_id="admin", defaults=Defaults(inbox=False, sent=True))
    before = snapshot(store)

    with pytest.raises(JobSuperseded) as raised:
        svc.run_push(old.id, batch_size=4)

    assert (old.id, new.id) == (raised.value.job_id, raised.value.by)
    assert before == snapshot(store)
    assert (JobStatus.SUPERSEDED, 4) == (svc.job(old.id).status, svc.job(old.id).processed)


@pytest.mark.postgres
def test_a_worker_of_a_superseded_job_cannot_commit_its_claimed_batch(
    store: PostgresStore,
) -> None:
    """R10, B6: a range claimed and decided before the second click is refused at commit."""
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant("t1", 10))
    old = svc.start_push("t1", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    claim = store.claim_batch(old.id, "w1", 5, 60)
    assert isinstance(claim, Claim)
    svc.start_push("t1", actor_id="admin", defaults=Defaults(inbox=False, sent=False))
    before = snapshot(store)

    with pytest.raises(JobSuperseded):
        store.run_claimed(claim)
    with pytest.raises(JobSuperseded):
        store.claim_batch(old.id, "w2", 5, 60)

    assert before == snapshot(store)


@pytest.mark.postgres
def test_a_batch_in_flight_lands_before_a_newer_push_starts_never_after(
    dsn: str, store: PostgresStore
) -> None:
    """R10: start_job waits for a batch commit holding the fence, then supersedes the job.

    The job row is held by this test so a worker's commit stops at its last
    step, inside its transaction; a second click must wait for it.
    """
    import psycopg

    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant("t1", 6))
    old = svc.start_push("t1", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    claim = store.claim_batch(old.id, "w1", 7, 60)
    assert isinstance(claim, Claim)
    results: dict[str, object] = {}

    def commit() -> None:
        with PostgresStore(dsn, schema=store.schema) as other:
            results["commit"] = other.run_claimed(claim)

    def click() -> None:
        with PostgresStore(dsn, schema=store.schema) as other:
            results["start"] = LabelSync(store=other, clock=FixedClock(T0)).start_push(
                "t1", actor_id="admin", defaults=Defaults(inbox=False, sent=False)
            )

    with psycopg.connect(dsn) as holder:
        holder.execute(f'SELECT 1 FROM "{store.schema}".jobs WHERE id = %s FOR UPDATE', (old.id,))
        committer = threading.Thread(target=commit)
        committer.start()
        _wait_for_lock_waiters(dsn, 1)
        clicker = threading.Thread(target=click)
        clicker.start()
        _wait_for_lock_waiters(dsn, 2)
        holder.rollback()
    committer.join(60)
    clicker.join(60)

    committed = results["commit"]
    assert isinstance(committed, PushJob)
    assert (7, JobStatus.SUPERSEDED) == (committed.processed, svc.job(old.id).status)
    assert 7 == svc.job(old.id).processed
    assert all(LabelSet(["INBOX"]) == u.synced for u in svc.tenant("t1").users)


def _wait_for_lock_waiters(dsn: str, count: int) -> None:
    """Block until `count` sessions of this database wait for a lock (bounded: 60 s)."""
    import time

    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(6000):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            time.sleep(0.01)
    pytest.fail(f"expected {count} sessions waiting for a lock")


# -- tenant isolation ------------------------------------------------------------------


@pytest.mark.postgres
def test_a_push_on_one_tenant_never_reads_or_writes_another_with_the_same_user_ids(
    store: PostgresStore,
) -> None:
    """Every row is scoped by tenant: t2's Users, settings and jobs stay as they were."""
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant("t1", 20))
    svc.create_tenant(tenant("t2", 20))
    t2_before = store.get_tenant("t2")

    svc.push("t1", actor_id="admin", defaults=Defaults(inbox=True, sent=False), batch_size=7)

    assert t2_before == store.get_tenant("t2")
    assert [] == store.list_jobs("t2")
    assert all(u.synced == LabelSet(["INBOX"]) for u in store.get_tenant("t1").users[1:])


@pytest.mark.postgres
def test_every_row_a_push_writes_carries_the_tenant_of_its_job(
    dsn: str, store: PostgresStore
) -> None:
    import psycopg

    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant("t1", 5))
    svc.create_tenant(tenant("t2", 5))
    svc.add_user("t1", User(id="nobox", email="nobox@acme.test"))  # a skip to record
    svc.push("t1", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    job = svc.start_push("t2", actor_id="admin", defaults=Defaults(inbox=True, sent=True))
    assert isinstance(store.claim_batch(job.id, "w1", 2, 60), Claim)
    s = f'"{store.schema}"'

    with psycopg.connect(dsn) as conn:
        users = conn.execute(f"SELECT tenant_id, count(*) FROM {s}.users GROUP BY 1 ORDER BY 1")
        assert [("t1", 7), ("t2", 6)] == users.fetchall()
        for table in ("job_changes", "job_skips", "batches"):
            rows = conn.execute(
                f"SELECT t.tenant_id, j.tenant_id, count(*) FROM {s}.{table} t "
                f"JOIN {s}.jobs j ON j.id = t.job_id GROUP BY 1, 2 ORDER BY 1"
            ).fetchall()
            assert rows, table
            assert all(row_tenant == job_tenant for row_tenant, job_tenant, _ in rows), table


# -- schema, connections, errors -------------------------------------------------------------


@pytest.mark.postgres
def test_a_new_schema_is_created_at_the_current_version_and_reopening_keeps_the_data(
    dsn: str, schema: str
) -> None:
    with PostgresStore(dsn, schema=schema) as first:
        first.add_tenant(tenant("t1", 3))
        assert SCHEMA_VERSION == first.schema_version()

    with PostgresStore(dsn, schema=schema) as again:
        assert SCHEMA_VERSION == again.schema_version()
        assert tenant("t1", 3) == again.get_tenant("t1")


@pytest.mark.postgres
def test_a_schema_from_a_newer_labelsync_is_refused(dsn: str, schema: str) -> None:
    import psycopg

    PostgresStore(dsn, schema=schema).close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{schema}".schema_version SET version = 99')

    with pytest.raises(LabelSyncError, match="schema_version: 99"):
        PostgresStore(dsn, schema=schema)


@pytest.mark.postgres
def test_workers_opening_one_new_schema_at_once_all_succeed(dsn: str, schema: str) -> None:
    """Four processes starting together must not race to create the same tables."""
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            PostgresStore(dsn, schema=schema).close()
        except BaseException as error:  # collected for the assert below
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [] == errors
    with PostgresStore(dsn, schema=schema) as store:
        assert SCHEMA_VERSION == store.schema_version()


@pytest.mark.postgres
def test_a_store_borrows_from_a_pool_and_leaves_it_open(dsn: str, schema: str) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        with PostgresStore(pool, schema=schema) as store:
            store.add_tenant(tenant("t1", 2))
        assert not pool.closed
        with PostgresStore(pool, schema=schema) as store:
            assert ["t1"] == store.tenant_ids()


@pytest.mark.postgres
def test_a_store_whose_connection_the_server_dropped_reconnects_on_the_next_call(
    dsn: str, schema: str
) -> None:
    """The call that meets the dropped connection fails (its fate unknown); the next one works."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    named = make_conninfo(dsn, application_name=f"dropped-{schema}")
    with PostgresStore(named, schema=schema) as store:
        store.add_tenant(tenant("t1", 2))
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (f"dropped-{schema}",),
            )

        with pytest.raises(StorageUnavailable) as failed:
            store.tenant_ids()

        assert isinstance(failed.value, Retryable)
        assert ["t1"] == store.tenant_ids()


@pytest.mark.postgres
def test_a_closed_store_refuses_calls(dsn: str, schema: str) -> None:
    store = PostgresStore(dsn, schema=schema)
    store.close()
    store.close()  # idempotent

    with pytest.raises(InvalidInput, match="is closed"):
        store.tenant_ids()


@pytest.mark.postgres
@pytest.mark.parametrize("bad", ["", "Upper", "with-dash", "1st", 'quo"te', "x" * 64, None])
def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(dsn: str, bad: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        PostgresStore(dsn, schema=bad)  # type: ignore[arg-type]

    assert ("schema", bad) == (raised.value.field, raised.value.value)


def test_a_conninfo_that_is_neither_a_string_nor_a_pool_is_refused() -> None:
    pytest.importorskip("psycopg")

    with pytest.raises(InvalidInput) as raised:
        PostgresStore(42)  # type: ignore[arg-type]

    assert "conninfo" == raised.value.field


def test_importing_the_adapter_connects_to_nothing_and_imports_no_driver() -> None:
    code = (
        "import sys, labelsync.adapters.postgres as m; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('psycopg', 'psycopg_pool')))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout

    assert "[]" == out.strip()


def test_without_psycopg_the_store_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)

    with pytest.raises(MissingExtra, match=r"labelsync\[postgres\]"):
        PostgresStore("postgresql://nowhere.invalid/none")


@pytest.mark.postgres
def test_a_store_repr_names_schema_and_server_but_no_password(store: PostgresStore) -> None:
    text = repr(store)

    assert text.startswith(f"<PostgresStore schema={store.schema!r} on ")
    assert "password" not in text


@pytest.mark.postgres
def test_bad_input_to_the_store_is_refused_and_changes_nothing(store: PostgresStore) -> None:
    store.add_tenant(tenant("t1", 2))
    job = store.start_job(
        PushJob(
            id="j1",
            tenant_id="t1",
            actor_id="admin",
            defaults=Defaults(inbox=True, sent=True),
            status=JobStatus.PENDING,
            started_at=T0,
        )
    )
    before = snapshot(store)
    twice = user("u0").with_selection(LabelSet(["INBOX"]))

    with pytest.raises(InvalidInput) as raised:
        store.save_users("t1", [(twice, 0), (twice, 0)])
    assert ("writes[1].id", "u0") == (raised.value.field, raised.value.value)
    with pytest.raises(InvalidInput):
        store.finish_job(job.id, dt.datetime(2024, 5, 1, 9, 0))  # naive on purpose
    assert before == snapshot(store)
    assert attrs.evolve(job) == store.get_job("j1")


# -- migrating a version-1 schema in place, and a schema made by a DBA ------------------------

# The version-1 DDL as labelsync 1 ran it: migrations are append-only, so it is the first.
V1_DDL = postgres_adapter._MIGRATIONS[0]


def _v1_schema(dsn: str, schema: str) -> tuple[User, ...]:
    """A version-1 schema holding the Users of tests/data/labelsync-v1.sql, as labelsync 1 wrote."""
    import psycopg
    from psycopg.types.json import Jsonb

    source = sqlite3.connect(":memory:")
    source.executescript(V1_DUMP.read_text())
    users = v1_users(source)
    rows = source.execute(
        "SELECT id, position, email, permissions, provider, address, mailbox_labels, synced,"
        " version FROM users ORDER BY position"
    ).fetchall()
    source.close()
    s = f'"{schema}"'
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(f"CREATE SCHEMA {s}")
        conn.execute(f"CREATE TABLE {s}.schema_version (version integer NOT NULL)")
        conn.execute(f"INSERT INTO {s}.schema_version (version) VALUES (1)")
        conn.execute(V1_DDL.replace("{s}", s))
        conn.execute(
            f"INSERT INTO {s}.tenants (id, name, onboard_new_users) VALUES ('acme', 'Acme', false)"
        )
        for user_id, position, email, permissions, provider, address, labels, synced, v in rows:
            conn.execute(
                f"INSERT INTO {s}.users (tenant_id, id, position, email, permissions, provider, "
                f"address, labels, synced, version) VALUES ('acme', %s, %s, %s, %s, %s, %s, %s, "
                f"%s, %s)",
                (
                    user_id,
                    position,
                    email,
                    Jsonb(json.loads(permissions)),
                    provider,
                    address,
                    None if labels is None else Jsonb(json.loads(labels)),
                    Jsonb(json.loads(synced)),
                    v,
                ),
            )
        conn.execute(f"SELECT setval('{s}.roster_positions', %s)", (len(rows),))
    return users


@pytest.mark.postgres
def test_a_version_1_schema_migrates_in_place_and_pushes_as_the_rule_says(
    dsn: str, schema: str
) -> None:
    """Every User of a labelsync 1 schema comes back equal, then a push equals the rule."""
    users = _v1_schema(dsn, schema)
    assert any(u.mailbox is None for u in users)

    with PostgresStore(dsn, schema=schema) as store:
        assert (SCHEMA_VERSION, users) == (store.schema_version(), store.get_tenant("acme").users)
        svc = LabelSync(store=store, clock=FixedClock(T0))
        report = svc.push("acme", actor_id="admin", defaults=Defaults(inbox=False, sent=True))
        after = store.get_tenant("acme").users

    pushed, changes = apply_defaults(
        Tenant(id="acme", name="Acme", users=users), Defaults(inbox=False, sent=True)
    )
    assert pushed.users == after
    assert changes.counts() == report.counts


@pytest.mark.postgres
def test_schema_sql_creates_what_a_store_opened_without_migrating_uses(
    dsn: str, schema: str
) -> None:
    """A DBA runs schema_sql(); the application opens the store with migrate=False."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema_sql(schema))

    with PostgresStore(dsn, schema=schema, migrate=False) as store:
        assert SCHEMA_VERSION == store.schema_version()
        store.add_tenant(tenant("t1", 3))
        svc = LabelSync(store=store, clock=FixedClock(T0))
        report = svc.push("t1", actor_id="admin", defaults=Defaults(inbox=True, sent=True))
        assert (JobStatus.DONE, 4) == (report.job.status, report.job.processed)


@pytest.mark.postgres
def test_a_store_opened_without_migrating_refuses_a_missing_or_old_schema(
    dsn: str, schema: str
) -> None:
    import psycopg

    with pytest.raises(LabelSyncError, match="schema_sql"):
        PostgresStore(dsn, schema=schema, migrate=False)
    _v1_schema(dsn, schema)
    with pytest.raises(LabelSyncError, match=f"version 1, not {SCHEMA_VERSION}"):
        PostgresStore(dsn, schema=schema, migrate=False)
    with psycopg.connect(dsn) as conn:
        assert (1,) == conn.execute(f'SELECT version FROM "{schema}".schema_version').fetchone()


def test_schema_sql_names_the_schema_and_ends_at_the_current_version() -> None:
    ddl = schema_sql("tenant_data")

    assert ddl.startswith('BEGIN;\nCREATE SCHEMA IF NOT EXISTS "tenant_data";')
    assert f'INSERT INTO "tenant_data".schema_version (version) VALUES ({SCHEMA_VERSION});' in ddl
    assert '"labelsync"' not in ddl
    assert "{s}" not in ddl
    assert ddl.rstrip().endswith("COMMIT;")


@pytest.mark.parametrize("bad", ["Tenant", "a-b", "", "x" * 64, 'x"; DROP'])
def test_schema_sql_refuses_a_name_that_is_not_a_plain_identifier(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        schema_sql(bad)

    assert "schema" == raised.value.field
