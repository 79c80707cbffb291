"""A push killed with SIGKILL mid-run resumes in a new process and ends like an uninterrupted run.

A SQLite file of 30,000 Users is copied; one copy is pushed in-process without
interruption, the other by a subprocess that is killed at a random batch (once,
and three times in a row) and then resumed. Users, counts, changes and the
audit record must come out identical (R12).
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import signal
from pathlib import Path

import attrs
import pytest

from labelsync import (
    Changes,
    Defaults,
    JobStatus,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    PushJob,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.providers import gmail_label, graph_folder, imap_mailbox
from worker_process import LineWorker

pytestmark = pytest.mark.slow

USERS = 30_000
BATCH = 200
TENANT = "t1"
ADMIN = "admin"
JOB = "push-1"
DEFAULTS = Defaults(inbox=True, sent=False)
STARTED = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
FINISHED = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)

# The worker: resumes the push and prints "processed total" after each committed batch.
WORKER = """
import datetime as dt, os, sys
from labelsync import LabelSync
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.sqlite import SqliteStore

os.nice(5)  # let the test process, which decides when to kill, win the CPU
path, job_id, batch_size, finished = sys.argv[1:]
clock = FixedClock(dt.datetime.fromisoformat(finished))
with SqliteStore(path) as store:
    report = LabelSync(store=store, clock=clock).run_push(
        job_id,
        batch_size=int(batch_size),
        progress=lambda job: print(job.processed, job.total, flush=True),
    )
print("done", report.job.processed, flush=True)
"""

_GMAIL = tuple(
    gmail_label(i, n) for i, n in (("INBOX", "Inbox"), ("SENT", "Sent"), ("Label_1", "X"))
)
_GRAPH = (
    graph_folder("AAMk01", "Posteingang", "inbox"),
    graph_folder("AAMk02", "Gesendete Elemente", "sentitems"),
)
_IMAP = (imap_mailbox("INBOX"), imap_mailbox("Archive"))


def roster_user(n: int) -> User:
    """User `n` of a deterministic roster: Gmail, Outlook, IMAP without SENT, no mailbox."""
    user_id, email = f"u{n:05d}", f"u{n:05d}@acme.io"
    kind = n % 7
    if kind == 6:
        return User(id=user_id, email=email, synced=LabelSet(["INBOX"]), version=n % 3)
    if kind in (0, 3):
        box, synced = Mailbox(provider=Provider.GMAIL, address=email, labels=_GMAIL), ["SENT"]
    elif kind in (1, 4):
        box, synced = Mailbox(provider=Provider.MICROSOFT, address=email, labels=_GRAPH), []
    elif kind == 2:
        box, synced = Mailbox(provider=Provider.GMAIL, address=email, labels=_GMAIL), ["INBOX"]
    else:
        box, synced = Mailbox(provider=Provider.IMAP, address=email, labels=_IMAP), ["Archive"]
    return User(id=user_id, email=email, mailbox=box, synced=LabelSet(synced), version=n % 5)


def service(store: SqliteStore, at: dt.datetime) -> LabelSync:
    return LabelSync(store=store, clock=FixedClock(at), new_id=lambda: JOB)


@attrs.frozen
class Outcome:
    """What a finished push left behind, to compare runs."""

    users: list[tuple[str, frozenset[str], int]]
    job: PushJob
    changes: Changes
    tenant: Tenant


def outcome(path: Path) -> Outcome:
    with SqliteStore(path) as store:
        svc = service(store, FINISHED)
        tenant = svc.tenant(TENANT)
        return Outcome(
            users=[(u.id, u.synced.ids, u.version) for u in tenant.users],
            job=svc.job(JOB),
            changes=svc.changes(JOB),
            tenant=tenant,
        )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome, Outcome]:
    """A file of 30,000 Users with a push started (not run); its state; an uninterrupted run."""
    directory = tmp_path_factory.mktemp("kill")
    base = directory / "base.db"
    admin = User(
        id=ADMIN,
        email="admin@acme.io",
        permissions=frozenset({Permission.ADMIN_ACCESS}),
        mailbox=Mailbox(provider=Provider.GMAIL, address="admin@acme.io", labels=_GMAIL),
    )
    users = (admin, *(roster_user(n) for n in range(USERS)))
    with SqliteStore(base) as store:
        svc = service(store, STARTED)
        svc.create_tenant(Tenant(id=TENANT, name="Acme", users=users))
        svc.start_push(TENANT, actor_id=ADMIN, defaults=DEFAULTS)
    assert not Path(f"{base}-wal").exists()  # closed cleanly: one file holds everything
    before = outcome(base)

    uninterrupted = directory / "uninterrupted.db"
    shutil.copy(base, uninterrupted)
    with SqliteStore(uninterrupted) as store:
        service(store, FINISHED).run_push(JOB, batch_size=BATCH)
    return base, before, outcome(uninterrupted)


class Worker(LineWorker):
    """A subprocess resuming the push, whose progress lines are read as they come."""

    def __init__(self, path: Path, log: Path) -> None:
        super().__init__(WORKER, [str(path), JOB, str(BATCH), FINISHED.isoformat()], log)

    def processed_after(self, batches: int) -> int:
        """Wait until the worker reported `batches` more committed batches; the last processed."""
        processed = 0
        for _ in range(batches):
            processed = int(self.next_line().split()[0])
        return processed


def kill_at(path: Path, batches: int, log: Path) -> int:
    """Run a worker until it reported `batches` committed batches, SIGKILL it; the last reported."""
    worker = Worker(path, log)
    reported = worker.processed_after(batches)
    worker.kill()
    assert -signal.SIGKILL == worker.process.returncode
    return reported


def check_killed_state(path: Path, reported: int, before: Outcome, after: Outcome) -> int:
    """A killed push is RUNNING at a batch boundary, with every batch before it fully written."""
    state = outcome(path)
    job = state.job
    assert JobStatus.RUNNING == job.status
    assert reported <= job.processed < job.total == USERS + 1
    assert 0 == job.processed % BATCH
    # One transaction per batch: the roster is pushed up to the checkpoint and untouched after.
    assert after.users[: job.processed] == state.users[: job.processed]
    assert before.users[job.processed :] == state.users[job.processed :]
    return job.processed


def resume_to_the_end(path: Path, log: Path) -> None:
    worker = Worker(path, log)
    while not (line := worker.next_line()).startswith("done"):
        pass
    worker.close()
    assert 0 == worker.process.returncode, log.read_text()
    assert f"done {USERS + 1}" == line


def assert_same_outcome(expected: Outcome, got: Outcome) -> None:
    assert expected.users == got.users
    assert (JobStatus.DONE, USERS + 1, USERS + 1) == (
        got.job.status,
        got.job.processed,
        got.job.total,
    )
    assert expected.job.counts == got.job.counts
    assert expected.changes == got.changes
    assert expected.tenant.last_push == got.tenant.last_push
    assert expected.tenant == got.tenant


def test_a_push_killed_mid_run_resumes_in_a_new_process_to_the_uninterrupted_state(
    files: tuple[Path, Outcome, Outcome], tmp_path: Path
) -> None:
    """R12: SIGKILL at a random batch loses nothing and repeats nothing."""
    base, before, uninterrupted = files
    path = tmp_path / "killed.db"
    shutil.copy(base, path)

    reported = kill_at(path, random.Random(1).randint(3, 20), tmp_path / "worker-1.log")

    check_killed_state(path, reported, before, uninterrupted)
    resume_to_the_end(path, tmp_path / "resume.log")
    assert_same_outcome(uninterrupted, outcome(path))


def test_a_push_killed_three_times_in_a_row_still_ends_as_an_uninterrupted_run(
    files: tuple[Path, Outcome, Outcome], tmp_path: Path
) -> None:
    """R12: each new process resumes from the checkpoint the last one left; then one finishes."""
    base, before, uninterrupted = files
    path = tmp_path / "killed.db"
    shutil.copy(base, path)
    pick = random.Random(3)
    checkpoints = [0]
    for kill in range(1, 4):
        reported = kill_at(path, pick.randint(1, 12), tmp_path / f"worker-{kill}.log")
        checkpoints.append(check_killed_state(path, reported, before, uninterrupted))
    assert checkpoints == sorted(set(checkpoints))  # every resumed run made progress

    resume_to_the_end(path, tmp_path / "resume.log")
    assert_same_outcome(uninterrupted, outcome(path))
