"""Many workers, one push (B6), on a real PostgreSQL server: claims, leases, takeovers, kills.

The reference for "the same guarantees" is always the single runner: a push
run by workers must end exactly where `LabelSync.run_push` ends on a copy of
the same tenant in another schema (R12), with every roster User handled once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from labelsync import (
    Defaults,
    InvalidInput,
    JobStatus,
    Label,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock, SystemClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.postgres import PostgresStore
from labelsync.exceptions import UnknownJob
from labelsync.parallel import Busy, Claim, LeaseLost, run_worker
from labelsync.ports import PushJob, Store
from postgres_fixtures import fresh_schema, postgres_dsn
from provenance_helpers import comparable

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
INBOX = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
SENT = Label(id="SENT", name="Sent", system=SystemLabel.SENT)
PROJECT = Label(id="Label_7", name="Project X")
DEFAULTS = Defaults(inbox=True, sent=False)


def roster_user(n: int) -> User:
    """User number `n` of a synthetic roster with every case a push meets (R3-R5, R7)."""
    address = f"u{n}@acme.test"
    if n % 10 == 0:
        mailbox = None
    elif n % 7 == 0:
        mailbox = Mailbox(provider=Provider.IMAP, address=address, labels=(INBOX, PROJECT))
    else:
        mailbox = Mailbox(provider=Provider.GMAIL, address=address, labels=(INBOX, SENT, PROJECT))
    synced = (("SENT",), ("INBOX",), ("Label_7", "SENT"), ())[n % 4]
    return User(
        id=f"u{n}",
        email=address,
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=mailbox,
        synced=LabelSet(synced),
    )


def roster_tenant(size: int) -> Tenant:
    admin = User(id="admin", email="admin@acme.test", permissions={Permission.ADMIN_ACCESS})
    return Tenant(id="t1", name="Acme", users=[admin, *(roster_user(n) for n in range(size))])


def with_project_label(svc: LabelSync, user_id: str) -> LabelSet:
    """A User's own edit: they add their "Project X" label; returns the selection they set."""
    current = svc.user("t1", user_id).synced
    wanted = current.with_ids("Label_7")
    svc.set_selection("t1", user_id, wanted)
    return wanted


@pytest.fixture
def dsn() -> str:
    return postgres_dsn()


@pytest.fixture
def stores(dsn: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on two fresh schemas: the one under test and the single-runner reference."""
    with (
        fresh_schema(dsn, "parallel") as schema,
        fresh_schema(dsn, "reference") as reference,
        PostgresStore(dsn, schema=schema) as store,
        PostgresStore(dsn, schema=reference) as single,
    ):
        yield store, single


def single_runner_result(
    store: PostgresStore, tenant: Tenant, edits: Sequence[str] = ()
) -> tuple[Tenant, PushJob, list[object], list[object]]:
    """The tenant, job, changes and skips after one plain `run_push`, with `edits` made first."""
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant)
    for user_id in edits:
        with_project_label(svc, user_id)
    report = svc.push("t1", actor_id="admin", defaults=DEFAULTS, batch_size=500)
    return outcome(store, report.job.id)


def outcome(store: Store, job_id: str) -> tuple[Tenant, PushJob, list[object], list[object]]:
    """What a finished push left: the tenant, the job, its changes (without versions) and skips."""
    changes: list[object] = [
        (s.change.user_id, s.change.label, s.change.label_id, s.change.selected)
        for s in store.job_changes(job_id)
    ]
    return store.get_tenant("t1"), store.get_job(job_id), changes, list(store.job_skips(job_id))


def assert_same_push(
    expected: tuple[Tenant, PushJob, list[object], list[object]],
    actual: tuple[Tenant, PushJob, list[object], list[object]],
) -> None:
    """Same Users (selection and version), same counts, changes and skips; the job DONE."""
    tenant, job, changes, skips = expected
    got_tenant, got_job, got_changes, got_skips = actual
    assert comparable(tenant.users) == comparable(got_tenant.users)
    assert (JobStatus.DONE, job.total, job.total, job.counts) == (
        got_job.status,
        got_job.total,
        got_job.processed,
        got_job.counts,
    )
    assert changes == got_changes
    assert skips == got_skips


# -- workers in threads: same result as one runner --------------------------------------


@pytest.mark.postgres
def test_three_workers_end_exactly_where_a_single_runner_ends(
    dsn: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """B6, R12: ranges claimed by three workers; the result equals one `run_push`."""
    store, single = stores
    tenant = roster_tenant(2_000)
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant)
    job = svc.start_push("t1", actor_id="admin", defaults=DEFAULTS)
    finished: list[PushJob] = []
    seen: list[int] = []

    def work(worker_id: str) -> None:
        with PostgresStore(dsn, schema=store.schema) as own:
            finished.append(
                run_worker(
                    own,
                    FixedClock(T0),
                    job.id,
                    worker_id=worker_id,
                    batch_size=150,
                    progress=lambda j: seen.append(j.processed),
                )
            )

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)

    assert 3 == len(finished)
    assert {JobStatus.DONE} == {j.status for j in finished}
    assert math.ceil(2_001 / 150) == len(seen)  # one progress call per committed range
    assert 2_001 == max(seen)
    assert_same_push(single_runner_result(single, tenant), outcome(store, job.id))


@pytest.mark.postgres
def test_a_job_begun_by_a_single_runner_is_finished_by_workers_from_its_checkpoint(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    """Ranges are cut after the checkpoint, so no roster User is handled twice."""
    store, single = stores
    tenant = roster_tenant(300)
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant)
    job = svc.start_push("t1", actor_id="admin", defaults=DEFAULTS)

    def stop(_: PushJob) -> None:
        raise KeyboardInterrupt  # the single runner dies after its first batch

    with pytest.raises(KeyboardInterrupt):
        svc.run_push(job.id, batch_size=120, progress=stop)
    done = run_worker(store, FixedClock(T0), job.id, worker_id="w1", batch_size=50)

    assert (301, 301) == (done.total, done.processed)
    assert_same_push(single_runner_result(single, tenant), outcome(store, job.id))


# -- leases ------------------------------------------------------------------------------


def started(store: PostgresStore, size: int) -> tuple[LabelSync, PushJob]:
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(roster_tenant(size))
    return svc, svc.start_push("t1", actor_id="admin", defaults=DEFAULTS)


def claimed(result: Claim | Busy | None) -> Claim:
    assert isinstance(result, Claim), f"expected a claim, got {result!r}"
    return result


@pytest.mark.postgres
def test_ranges_are_claimed_in_roster_order_each_by_one_worker(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = stores
    _, job = started(store, 9)  # 10 roster Users: ranges of 4, 4 and 2

    first, second, third = (claimed(store.claim_batch(job.id, w, 4, 60)) for w in "abc")

    assert [(0, 4, 1), (1, 4, 1), (2, 2, 1)] == [
        (c.range_no, c.size, c.attempt) for c in (first, second, third)
    ]
    assert first.after < first.last <= second.after < second.last <= third.after
    assert isinstance(store.claim_batch(job.id, "d", 4, 60), Busy)


@pytest.mark.postgres
def test_while_every_range_is_leased_a_claim_says_when_the_first_lease_expires(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = stores
    _, job = started(store, 3)
    claimed(store.claim_batch(job.id, "w1", 10, 30))

    busy = store.claim_batch(job.id, "w2", 10, 30)

    assert isinstance(busy, Busy)
    assert 0 < busy.retry_in <= 30


@pytest.mark.postgres
def test_a_range_whose_lease_expired_is_taken_over_and_the_late_worker_writes_nothing(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    """B6: a worker that stalls past its lease loses the range; its late commit lands nowhere."""
    store, _ = stores
    _, job = started(store, 5)
    late = claimed(store.claim_batch(job.id, "slow", 10, 0.2))

    taker = store.claim_batch(job.id, "fast", 10, 60)
    for _ in range(500):  # until the 0.2 s lease has expired (bounded)
        if not isinstance(taker, Busy):
            break
        time.sleep(max(taker.retry_in, 0.01))
        taker = store.claim_batch(job.id, "fast", 10, 60)
    takeover = claimed(taker)
    before = store.get_tenant("t1"), store.get_job(job.id)

    assert LeaseLost(late) == store.run_claimed(late)
    assert before == (store.get_tenant("t1"), store.get_job(job.id))
    assert (late.range_no, 2, "fast") == (takeover.range_no, takeover.attempt, takeover.worker_id)
    committed = store.run_claimed(takeover)
    assert isinstance(committed, PushJob)
    assert 6 == committed.processed
    assert None is store.claim_batch(job.id, "slow", 10, 60)


@pytest.mark.postgres
def test_an_edit_made_while_workers_run_is_kept_and_inbox_sent_still_pushed(
    dsn: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """R12 for workers: a range reads its Users in its own transaction, as edited."""
    store, _ = stores
    svc, job = started(store, 8)
    edits: list[str] = []

    class EditingStore(PostgresStore):
        """Lets a User edit their selection just before the first range runs."""

        def run_claimed(self, claim: Claim) -> PushJob | LeaseLost:
            if not edits:
                with_project_label(svc, "u3")
                edits.append("u3")
            return super().run_claimed(claim)

    with EditingStore(dsn, schema=store.schema) as editing:
        done = run_worker(editing, FixedClock(T0), job.id, worker_id="w1", batch_size=100)

    assert ["u3"] == edits
    assert LabelSet(["INBOX", "Label_7"]) == store.get_user("t1", "u3").synced
    assert (JobStatus.DONE, 9) == (done.status, done.processed)


@pytest.mark.postgres
def test_a_worker_that_lost_its_lease_logs_a_warning_and_goes_on(
    dsn: str, stores: tuple[PostgresStore, PostgresStore], caplog: pytest.LogCaptureFixture
) -> None:
    """B6: the lost lease is visible in the host's log, with job, tenant and worker ids."""
    store, _ = stores
    _, job = started(store, 5)

    class StallingStore(PostgresStore):
        """Stalls past its lease on the first range; another worker takes it over and runs it."""

        def run_claimed(self, claim: Claim) -> PushJob | LeaseLost:
            taker = store.claim_batch(job.id, "fast", 10, 60)
            while isinstance(taker, Busy):
                time.sleep(max(taker.retry_in, 0.01))
                taker = store.claim_batch(job.id, "fast", 10, 60)
            if isinstance(taker, Claim):
                store.run_claimed(taker)
            return super().run_claimed(claim)

    caplog.set_level(logging.DEBUG, logger="labelsync")
    with StallingStore(dsn, schema=store.schema) as stalling:
        done = run_worker(
            stalling, FixedClock(T0), job.id, worker_id="slow", batch_size=10, lease_seconds=0.2
        )

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    lost = (
        f"push job {job.id} of tenant t1: worker slow lost its lease on range 0 "
        f"(positions {done.roster_end - 5}-{done.roster_end}) to another worker; it wrote nothing"
    )
    assert [lost] == warnings
    assert (JobStatus.DONE, 6) == (done.status, done.processed)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_job_run_by_workers_refuses_the_single_runner(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    """Two ways of cutting one roster would handle Users twice; the error names worker_id."""
    store, _ = stores
    svc, job = started(store, 5)
    claimed(store.claim_batch(job.id, "w1", 2, 60))
    before = store.get_tenant("t1"), store.get_job(job.id)

    with pytest.raises(InvalidInput) as raised:
        svc.run_push(job.id, batch_size=2)

    assert "worker_id" == raised.value.field
    assert before == (store.get_tenant("t1"), store.get_job(job.id))


@pytest.mark.postgres
def test_a_job_with_ranges_not_done_cannot_finish(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = stores
    _, job = started(store, 5)
    claimed(store.claim_batch(job.id, "w1", 2, 60))

    with pytest.raises(InvalidInput, match="3 batches not done"):
        store.finish_job(job.id, T0)

    assert JobStatus.PENDING == store.get_job(job.id).status


@pytest.mark.postgres
def test_claims_on_a_done_or_unknown_job(stores: tuple[PostgresStore, PostgresStore]) -> None:
    store, _ = stores
    svc, job = started(store, 3)
    svc.run_push(job.id)

    assert None is store.claim_batch(job.id, "w1", 10, 60)
    assert JobStatus.DONE == run_worker(store, FixedClock(T0), job.id, worker_id="w1").status
    with pytest.raises(UnknownJob):
        store.claim_batch("nope", "w1", 10, 60)


def test_run_worker_on_a_store_that_cannot_claim_names_worker_id() -> None:
    with pytest.raises(InvalidInput) as raised:
        run_worker(InMemoryStore(), FixedClock(T0), "j1", worker_id="w1")

    assert ("worker_id", "w1") == (raised.value.field, raised.value.value)
    assert "InMemoryStore cannot" in str(raised.value)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("worker_id", {"worker_id": ""}),
        ("worker_id", {"worker_id": None}),
        ("lease_seconds", {"lease_seconds": 0}),
        ("lease_seconds", {"lease_seconds": -1}),
        ("lease_seconds", {"lease_seconds": math.nan}),
        ("lease_seconds", {"lease_seconds": True}),
        ("batch_size", {"batch_size": 0}),
    ],
)
def test_bad_worker_settings_are_refused_before_anything_is_read(
    field: str, kwargs: dict[str, object]
) -> None:
    arguments: dict[str, object] = {"worker_id": "w1", **kwargs}

    with pytest.raises(InvalidInput) as raised:
        run_worker(InMemoryStore(), FixedClock(T0), "j1", **arguments)  # type: ignore[arg-type]

    assert field == raised.value.field


# -- four processes, 100k Users, one killed mid-batch ----------------------------------------

USERS = 100_000
BATCH = 500
LEASE_SECONDS = 3.0

WORKER = """
import sys
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.postgres import PostgresStore
from labelsync.parallel import run_worker

dsn, schema, job_id, worker_id, batch_size, lease = sys.argv[1:]
with PostgresStore(dsn, schema=schema) as store:
    job = run_worker(
        store, SystemClock(), job_id,
        worker_id=worker_id, batch_size=int(batch_size), lease_seconds=float(lease),
    )
print(job.status.name, job.processed)
"""


def start_worker(
    dsn: str, schema: str, job_id: str, worker_id: str, logs: Path
) -> subprocess.Popen[bytes]:
    """A worker process, as a queue worker would run one; its session is named after it."""
    from psycopg.conninfo import make_conninfo

    named = make_conninfo(dsn, application_name=f"labelsync-{worker_id}")
    with (
        (logs / f"{worker_id}.out").open("wb") as out,
        (logs / f"{worker_id}.err").open("wb") as err,
    ):
        arguments = [named, schema, job_id, worker_id, str(BATCH), str(LEASE_SECONDS)]
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, *arguments],
            stdout=out,
            stderr=err,
        )


def wait_until(what: str, check: Callable[[], bool], *, seconds: float = 300) -> None:
    """Poll `check()` until true; fail naming `what` after `seconds` (a bound, not a measure)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_push_100k_users_and_one_killed_mid_batch_loses_nothing(
    dsn: str, stores: tuple[PostgresStore, PostgresStore], tmp_path: Path
) -> None:
    """B6, R12: one push, four worker processes, one SIGKILLed inside its commit transaction.

    The test holds the job row, so every commit stops at its last statement with
    its Users already written in an open transaction; the worker ``w0`` is killed
    there. While the row is held (the job cannot move on) Users edit their
    selection, in ranges already done and in ranges not yet claimed. Then the
    other workers finish, taking over w0's range once its lease expires. The
    result equals a single runner's on a copy that saw the same edits.
    """
    import psycopg

    store, single = stores
    tenant = roster_tenant(USERS)
    svc = LabelSync(store=store, clock=SystemClock())
    svc.create_tenant(tenant)
    job = svc.start_push("t1", actor_id="admin", defaults=DEFAULTS)
    s = f'"{store.schema}"'
    workers = {
        f"w{n}": start_worker(dsn, store.schema, job.id, f"w{n}", tmp_path) for n in range(4)
    }

    def logs() -> str:
        return "\n".join(
            f"{w}: {(tmp_path / f'{w}.err').read_text()[-2000:]}"
            for w in workers
            if (tmp_path / f"{w}.err").stat().st_size
        )

    try:
        wait_until(
            "six committed batches or a worker that died",
            lambda: (
                store.get_job(job.id).processed >= 6 * BATCH
                or any(p.poll() is not None for p in workers.values())
            ),
        )
        assert all(p.poll() is None for p in workers.values()), logs()
        with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watch:
            holder.execute(f"SELECT 1 FROM {s}.jobs WHERE id = %s FOR UPDATE", (job.id,))

            def w0_waits_inside_its_commit() -> bool:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'labelsync-w0' AND wait_event_type = 'Lock'"
                ).fetchone()
                return row is not None and row[0] == 1

            wait_until("w0 to block inside its commit", w0_waits_inside_its_commit)
            in_flight = watch.execute(
                f"SELECT range_no FROM {s}.batches WHERE job_id = %s AND worker_id = 'w0' "
                f"AND NOT done",
                (job.id,),
            ).fetchall()
            assert 1 == len(in_flight)
            killed_range = in_flight[0][0]
            workers["w0"].send_signal(signal.SIGKILL)
            assert -signal.SIGKILL == workers["w0"].wait(60)

            # Users edit their own selection while the push runs: in ranges done and not claimed.
            ranges = watch.execute(
                f"SELECT first_position, done FROM {s}.batches WHERE job_id = %s "
                f"AND (done OR claims = 0) ORDER BY range_no",
                (job.id,),
            ).fetchall()
            done_first = [p for p, done in ranges if done][:5]
            open_first = [p for p, done in ranges if not done][-5:]
            assert (5, 5) == (len(done_first), len(open_first))
            edited = [
                user_id
                for first in done_first + open_first
                for (user_id,) in watch.execute(
                    f"SELECT id FROM {s}.users WHERE tenant_id = %s AND position >= %s "
                    f"AND provider IS NOT NULL ORDER BY position LIMIT 4",
                    (job.tenant_id, first),
                ).fetchall()
            ]
            for user_id in edited:
                with_project_label(svc, user_id)
            assert JobStatus.RUNNING == store.get_job(job.id).status
            holder.rollback()

        for worker_id, process in workers.items():
            if worker_id != "w0":
                assert 0 == process.wait(900), logs()
                assert f"DONE {USERS + 1}" == (tmp_path / f"{worker_id}.out").read_text().strip()
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    with psycopg.connect(dsn) as conn:
        takeover = conn.execute(
            f"SELECT done, claims, worker_id FROM {s}.batches WHERE job_id = %s AND range_no = %s",
            (job.id, killed_range),
        ).fetchone()
        ranges_done = conn.execute(
            f"SELECT count(*) FILTER (WHERE done), count(*), sum(size) FROM {s}.batches "
            f"WHERE job_id = %s",
            (job.id,),
        ).fetchone()
    assert takeover is not None
    assert (True, True) == (takeover[0], takeover[1] >= 2 and takeover[2] != "w0")
    assert (USERS // BATCH + 1, USERS // BATCH + 1, USERS + 1) == ranges_done
    assert all("Label_7" in store.get_user("t1", u).synced for u in edited)
    assert_same_push(single_runner_result(single, tenant, edited), outcome(store, job.id))


# -- the service's entry point: LabelSync.run_push(job_id, worker_id=...) --------------------


@pytest.mark.postgres
def test_run_push_with_a_worker_id_runs_the_job_as_one_of_its_workers(
    dsn: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    import psycopg

    store, single = stores
    svc, job = started(store, 40)

    report = svc.run_push(job.id, batch_size=15, worker_id="w1")

    assert (JobStatus.DONE, 41) == (report.job.status, report.job.processed)
    with psycopg.connect(dsn) as conn:  # the roster was cut into ranges and each claimed once
        ranges = conn.execute(
            f'SELECT count(*), sum(claims) FROM "{store.schema}".batches WHERE job_id = %s',
            (job.id,),
        ).fetchone()
    assert (3, 3) == ranges
    assert_same_push(single_runner_result(single, roster_tenant(40)), outcome(store, job.id))


def test_run_push_with_a_worker_id_on_a_store_that_cannot_claim_names_worker_id() -> None:
    svc = LabelSync(store=InMemoryStore(), clock=FixedClock(T0))
    svc.create_tenant(roster_tenant(3))
    job = svc.start_push("t1", actor_id="admin", defaults=DEFAULTS)

    with pytest.raises(InvalidInput) as raised:
        svc.run_push(job.id, worker_id="w1")

    assert ("worker_id", "w1") == (raised.value.field, raised.value.value)
    assert job == svc.job(job.id)
