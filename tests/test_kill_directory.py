"""A directory sync killed with SIGKILL, run again in a new process, ends as an uninterrupted one.

A SQLite file of 50,000 Users (a push done, onboarding on) is copied; one copy
is synced with the host's roster in-process without interruption, the other by
a subprocess killed at a random batch (once in the reconcile, and three times
in a row, the last in the removals), then run again to the end with the same
roster. The reconcile goes by id, so running it again converges (R13): Users,
versions, selections, onboarding and roster order must come out identical.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from labelsync import Defaults, LabelSync, Permission, Tenant, User
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.sqlite import SqliteStore
from worker_process import LineWorker

pytestmark = pytest.mark.slow

BATCH = 1000
TENANT = "t1"
AT = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

# The host's directory, deterministic, so the test and its workers build the same roster:
# 50,000 stored Users; of them every 13th has left, every 10th has a new email, every
# 7th refreshed its labels (Label_1 deleted); 2,000 new Users join.
ROSTER = """
import attrs
from labelsync import LabelSet, Mailbox, Permission, Provider, User
from labelsync.providers import gmail_label

USERS, NEW = 50_000, 2_000
_LABELS = (gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent"), gmail_label("Label_1", "X"))

def stored_user(n):
    email = f"u{n:05d}@acme.io"
    box = Mailbox(provider=Provider.GMAIL, address=email, labels=_LABELS)
    return User(id=f"u{n:05d}", email=email, permissions=frozenset({Permission.EMAIL_SYNC}),
                mailbox=box, synced=LabelSet(["Label_1"] if n % 2 else ["SENT"]), version=n % 3)

def host_roster():
    roster = []
    for n in range(USERS):
        if n % 13 == 0:
            continue
        user = stored_user(n)
        if n % 10 == 0:
            user = attrs.evolve(user, email=f"new.{user.email}")
        if n % 7 == 0:
            box = attrs.evolve(user.mailbox, labels=_LABELS[:2])
            user = attrs.evolve(user, mailbox=box)
        roster.append(user)
    roster += [stored_user(n) for n in range(USERS, USERS + NEW)]
    return roster
"""

WORKER = (
    ROSTER
    + """
import datetime as dt, os, sys
from labelsync import LabelSync, Permission
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.sqlite import SqliteStore

os.nice(5)  # let the test process, which decides when to kill, win the CPU
path, batch_size, at = sys.argv[1:]
admin = User(id="admin", email="admin@acme.io", permissions=frozenset({Permission.ADMIN_ACCESS}))
with SqliteStore(path) as store:
    report = LabelSync(store=store, clock=FixedClock(dt.datetime.fromisoformat(at))).sync_directory(
        "t1",
        [admin, *host_roster()],
        remove_missing=True,
        batch_size=int(batch_size),
        progress=lambda r: print(*r.counts().values(), flush=True),
    )
print("done", *report.counts().values(), flush=True)
"""
)

_names: dict[str, object] = {}
exec(ROSTER, _names)
stored_user = cast(Callable[[int], User], _names["stored_user"])
host_roster = cast(Callable[[], list[User]], _names["host_roster"])

ADMIN = User(id="admin", email="admin@acme.io", permissions=frozenset({Permission.ADMIN_ACCESS}))


def service(store: SqliteStore) -> LabelSync:
    return LabelSync(store=store, clock=FixedClock(AT))


def state(path: Path) -> Tenant:
    with SqliteStore(path) as store:
        return store.get_tenant(TENANT)


def sync(svc: LabelSync) -> None:
    svc.sync_directory(TENANT, [ADMIN, *host_roster()], remove_missing=True, batch_size=BATCH)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tenant]:
    """The file before the sync (a push done, onboarding on) and the uninterrupted outcome."""
    directory = tmp_path_factory.mktemp("kill-directory")
    base = directory / "base.db"
    make = stored_user
    with SqliteStore(base) as store:
        svc = service(store)
        svc.create_tenant(Tenant(id=TENANT, name="Acme", users=[ADMIN, *map(make, range(50_000))]))
        svc.push(TENANT, actor_id="admin", defaults=Defaults(inbox=True, sent=False))
        svc.set_onboarding(TENANT, actor_id="admin", enabled=True)
    uninterrupted = directory / "uninterrupted.db"
    shutil.copy(base, uninterrupted)
    with SqliteStore(uninterrupted) as store:
        sync(service(store))
    return base, state(uninterrupted)


class Worker(LineWorker):
    """A subprocess running the sync, whose progress lines are read as they come."""

    def __init__(self, path: Path, log: Path) -> None:
        super().__init__(WORKER, [str(path), str(BATCH), AT.isoformat()], log)


def kill_after(path: Path, batches: int, log: Path) -> list[int]:
    """Run a worker until it reported `batches` batches, SIGKILL it; its last counts."""
    worker = Worker(path, log)
    counts = [0, 0, 0, 0]
    for _ in range(batches):
        counts = [int(n) for n in worker.next_line().split()]
    worker.kill()
    assert -signal.SIGKILL == worker.process.returncode
    return counts


def run_to_the_end(path: Path, log: Path) -> list[int]:
    worker = Worker(path, log)
    while not (line := worker.next_line()).startswith("done"):
        pass
    worker.close()
    assert 0 == worker.process.returncode, log.read_text()
    return [int(n) for n in line.split()[1:]]


def test_a_sync_killed_mid_run_converges_when_run_again(
    files: tuple[Path, Tenant], tmp_path: Path
) -> None:
    """R13, R12: SIGKILL in the reconcile loses nothing; the second run finishes the job."""
    base, uninterrupted = files
    path = tmp_path / "killed.db"
    shutil.copy(base, path)

    added, updated, removed, _ = kill_after(
        path, random.Random(1).randint(5, 40), tmp_path / "w.log"
    )
    assert added + updated > 0
    assert 0 == removed
    assert uninterrupted != state(path)
    again = run_to_the_end(path, tmp_path / "again.log")

    assert uninterrupted == state(path)
    # Users the killed run already added or updated are unchanged the second time.
    assert 2_000 == again[0] + added
    changed = [n for n in range(50_000) if n % 13 and (n % 10 == 0 or n % 7 == 0)]
    assert len(changed) == again[1] + updated


def test_a_sync_killed_three_times_even_in_its_removals_converges(
    files: tuple[Path, Tenant], tmp_path: Path
) -> None:
    """Each run starts over by id and gets further; the last kill lands among the removals."""
    base, uninterrupted = files
    path = tmp_path / "killed.db"
    shutil.copy(base, path)
    pick = random.Random(3)
    sizes = []
    # 49 batches of the host's roster, then 4 of removals: the last kill follows the first.
    for kill, batches in enumerate((pick.randint(5, 20), pick.randint(20, 40), 50), start=1):
        kill_after(path, batches, tmp_path / f"w{kill}.log")
        sizes.append(len(state(path).users))
    leavers = len(range(0, 50_000, 13))
    assert 50_001 + 2_000 - leavers < sizes[-1] < 50_001 + 2_000  # newcomers in, some leavers out

    run_to_the_end(path, tmp_path / "again.log")

    assert uninterrupted == state(path)
    tenant = state(path)
    assert 50_000 + 2_000 + 1 - len(range(0, 50_000, 13)) == len(tenant.users)
    newcomer = tenant.user("u50001")
    assert {"INBOX", "Label_1"} == set(newcomer.synced.ids)  # onboarded (B4)
