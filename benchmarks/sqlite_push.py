"""The push job on SQLite: `LabelSync.run_push` against a floor written with raw `sqlite3`.

Each run happens in a fresh child process (``python -m benchmarks.sqlite_push``)
on a fresh copy of one prepared file, so the peak RSS it reports
(`resource.getrusage`) is the job's own and every run starts from the same
state. The floor does the reads and writes `SqliteStore` does, in the same
batches: per batch one write transaction that reads the checkpoint, reads the
next roster Users by position, decides with the push rule, compare-and-sets the
changed Users with the same UPDATE (every column, ``WHERE ... AND version = ?``),
inserts the change and skip rows and moves the checkpoint. It leaves out what a
library adds: fencing against a newer push, conflict handling, a separate read
transaction, and `User` values with their validation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from attrs import frozen

from benchmarks.timing import Runs, Timing, runs
from labelsync import Defaults, LabelSync, Tenant
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.synthetic import ADMIN_ID

BATCH_SIZE = 500

# The floor's statements: the same shapes as SqliteStore's, written out here.
_ROSTER_BATCH = """
    SELECT position, id, email, permissions, provider, address, mailbox_labels, synced, version
    FROM users
    WHERE tenant_id = ? AND position > ? AND position <= ?
    ORDER BY position
    LIMIT ?
"""
_CAS_USER = """
    UPDATE users SET synced = ?, version = ?
    WHERE tenant_id = ? AND id = ? AND version = ?
"""
_INSERT_CHANGE = """
    INSERT INTO job_changes (job_id, tenant_id, user_id, label, label_id, selected, version_after)
    VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_SKIP = """
    INSERT INTO job_skips (job_id, tenant_id, user_id, label, reason) VALUES (?, ?, ?, ?, ?)
"""
_UPDATE_JOB = """
    UPDATE jobs
    SET status = ?, cursor = ?, processed = ?, users_changed = ?, selected = ?,
        deselected = ?, no_mailbox = ?, label_missing = ?
    WHERE id = ?
"""

# -- the floor ------------------------------------------------------------------------


def _json(value: object) -> str:
    # The text SqliteStore writes, so that both runs leave byte-for-byte equal rows.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def connect(path: str) -> sqlite3.Connection:
    """A connection set up as SqliteStore sets up its own (WAL, foreign keys, busy timeout)."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


def floor_push(conn: sqlite3.Connection, job_id: str, batch_size: int) -> None:
    """Run every batch of the pending job `job_id` with raw sqlite3, one transaction each.

    Marking the job done, once per push, is left to `SqliteStore.finish_job`, so
    that both runs write the same audit record however the store keeps it.
    """
    tenant_id, inbox, sent, roster_end, *counts = conn.execute(
        "SELECT tenant_id, defaults_inbox, defaults_sent, roster_end, processed,"
        " users_changed, selected, deselected, no_mailbox, label_missing FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()
    processed, users_changed, selected, deselected, no_mailbox, label_missing = counts
    plan = (("INBOX", bool(inbox)), ("SENT", bool(sent)))
    while True:
        conn.execute("BEGIN IMMEDIATE")
        (cursor,) = conn.execute("SELECT cursor FROM jobs WHERE id = ?", (job_id,)).fetchone()
        rows = conn.execute(_ROSTER_BATCH, (tenant_id, cursor, roster_end, batch_size)).fetchall()
        if not rows:
            conn.execute("COMMIT")
            break
        writes: list[tuple[object, ...]] = []
        changes: list[tuple[object, ...]] = []
        skips: list[tuple[object, ...]] = []
        # Every column SqliteStore reads is read here too; a push needs only some.
        for _, user_id, _email, _perms, provider, _address, labels, synced, version in rows:
            if provider is None:
                skips.append((job_id, tenant_id, user_id, None, "NO_MAILBOX"))
                no_mailbox += 1
                continue
            roles = {role: label_id for label_id, _, role in json.loads(labels) if role}
            ids = set(json.loads(synced))
            flipped = False
            for role, on in plan:
                label_id = roles.get(role)
                if label_id is None:
                    skips.append((job_id, tenant_id, user_id, role, "LABEL_MISSING"))
                    label_missing += 1
                elif (label_id in ids) != on:
                    if on:
                        ids.add(label_id)
                        selected += 1
                    else:
                        ids.discard(label_id)
                        deselected += 1
                    changes.append((job_id, tenant_id, user_id, role, label_id, on, version + 1))
                    flipped = True
            if flipped:
                users_changed += 1
                # The SET columns, then the WHERE: the same values SqliteStore binds.
                writes.append((_json(sorted(ids)), version + 1, tenant_id, user_id, version))
        if conn.executemany(_CAS_USER, writes).rowcount != len(writes):
            conn.execute("ROLLBACK")
            raise RuntimeError("the floor met a concurrent edit; a benchmark makes none")
        conn.executemany(_INSERT_CHANGE, changes)
        conn.executemany(_INSERT_SKIP, skips)
        processed += len(rows)
        conn.execute(
            _UPDATE_JOB,
            (
                "RUNNING",
                rows[-1][0],
                processed,
                users_changed,
                selected,
                deselected,
                no_mailbox,
                label_missing,
                job_id,
            ),
        )
        conn.execute("COMMIT")


# -- the state a run leaves ----------------------------------------------------------

# (table, order, columns to leave out) for the digest; jobs and the tenant's audit
# record hold the finish time, which differs from run to run.
_TABLES = (
    ("users", "tenant_id, position", ()),
    ("job_changes", "seq", ()),
    ("job_skips", "seq", ()),
    ("jobs", "seq", ("finished_at",)),
    ("tenants", "id", ()),
)
# What a push may change in a User's row; the rest is checked by the full digest.
_PUSHED_USER_COLUMNS = ("tenant_id", "id", "position", "synced", "version")


def _without_finish(value: object) -> object:
    """A JSON audit record with every ``finished_at`` taken out."""
    if isinstance(value, dict):
        return {k: _without_finish(v) for k, v in sorted(value.items()) if k != "finished_at"}
    if isinstance(value, list):
        return [_without_finish(item) for item in value]
    return value


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith("{") and "finished_at" in value:
        return repr(_without_finish(json.loads(value)))
    return value


def state_digest(conn: sqlite3.Connection, *, full: bool) -> str:
    """A hash of the rows a run leaves (all but finish times), to compare two runs.

    Every column of every table when `full`; otherwise only the columns of a
    User's row a push may change: reading and hashing a million mailbox
    layouts twice per run would cost more than the run.
    """
    digest = hashlib.sha256()
    for table, order, leave_out in _TABLES:
        columns = "*"
        if table == "users" and not full:
            columns = ", ".join(_PUSHED_USER_COLUMNS)
        cursor = conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")
        names = [column[0] for column in cursor.description]
        keep = [index for index, name in enumerate(names) if name not in leave_out]
        digest.update(repr([names[index] for index in keep]).encode())
        for row in cursor:
            digest.update(repr([_cell(row[index]) for index in keep]).encode())
        digest.update(b"|")
    return digest.hexdigest()


# -- one run, in a child process -------------------------------------------------------


def _peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    VmHWM, not `ru_maxrss`: Linux carries the parent's high-water mark into
    ``ru_maxrss`` across fork and exec, so a child of a parent holding a
    million Users would report the parent's size. VmHWM belongs to the
    child's own address space, which exec starts afresh.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _child(impl: str, path: str, job_id: str, batch_size: int, full: bool) -> dict[str, object]:
    """Run the job once, then report times, peak RSS, and the digest of the state it left."""
    rss_before = _peak_rss_kib()
    if impl == "labelsync":
        with SqliteStore(path) as store:
            service = LabelSync(store=store, clock=SystemClock())
            wall, cpu = time.perf_counter(), time.process_time()
            service.run_push(job_id, batch_size=batch_size)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    else:
        conn = connect(path)
        try:
            with SqliteStore(path) as store:
                clock = SystemClock()
                wall, cpu = time.perf_counter(), time.process_time()
                floor_push(conn, job_id, batch_size)
                store.finish_job(job_id, clock.now())
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            conn.close()
    rss = _peak_rss_kib()
    conn = sqlite3.connect(path)
    try:
        digest = state_digest(conn, full=full)
    finally:
        conn.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_kib": rss,
        "rss_before_kib": rss_before,
        "digest": digest,
    }


@frozen
class Run:
    """What one child reported."""

    timing: Timing
    rss_kib: int
    rss_before_kib: int
    digest: str


def run_child(
    impl: str, base: Path, work: Path, job_id: str, batch_size: int, *, full: bool = False
) -> Run:
    """Copy `base` to a scratch file and run the job on it in a fresh interpreter."""
    target = work / f"run-{impl}.db"
    _remove_db(target)
    shutil.copyfile(base, target)
    done = subprocess.run(  # checked below, to show the child's stderr
        [
            sys.executable,
            "-m",
            "benchmarks.sqlite_push",
            impl,
            str(target),
            job_id,
            f"--batch-size={batch_size}",
            *(["--full-digest"] if full else []),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {impl} run on {target} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    _remove_db(target)
    return Run(
        timing=Timing(wall=float(report["wall"]), cpu=float(report["cpu"])),
        rss_kib=int(report["rss_kib"]),
        rss_before_kib=int(report["rss_before_kib"]),
        digest=str(report["digest"]),
    )


# -- the prepared file -----------------------------------------------------------------


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@frozen
class Prepared:
    """A SQLite file holding one tenant and one pending push job of `DEFAULTS`."""

    path: Path
    job_id: str
    users: int
    seconds: float
    megabytes: float


def prepare(tenant: Tenant, path: Path, defaults: Defaults) -> Prepared:
    """Write `tenant` with one `add_tenant` (one transaction) and start a push on it.

    `add_user` per User would commit, and sync, once per User: about 2 ms each
    here, over half an hour for a million.
    """
    _remove_db(path)
    start = time.perf_counter()
    with SqliteStore(path) as store:
        store.add_tenant(tenant)
        job = LabelSync(store=store, clock=SystemClock()).start_push(
            tenant.id, actor_id=ADMIN_ID, defaults=defaults
        )
    # Closing the last connection checkpoints the WAL into the file: one file to copy.
    if Path(f"{path}-wal").exists():
        raise RuntimeError(f"{path}-wal is left after close; copies would miss it")
    return Prepared(
        path=path,
        job_id=job.id,
        users=len(tenant.users),
        seconds=time.perf_counter() - start,
        megabytes=path.stat().st_size / 1e6,
    )


class PushMismatch(AssertionError):
    """Raised when the floor and labelsync leave different files: one of them is wrong."""


def check_same(prepared: Prepared, work: Path) -> str:
    """Run both once and assert they leave the same rows; return the digest."""
    ours = run_child("labelsync", prepared.path, work, prepared.job_id, BATCH_SIZE, full=True)
    floor = run_child("floor", prepared.path, work, prepared.job_id, BATCH_SIZE, full=True)
    if ours.digest != floor.digest:
        raise PushMismatch(f"labelsync and the floor leave different files at {prepared.users}")
    return ours.digest


@frozen
class PushResult:
    """The push job at one roster size, beside the floor."""

    users: int
    floor: Runs
    labelsync: Runs
    floor_rss_kib: int
    labelsync_rss_kib: int
    baseline_rss_kib: int
    prepared: Prepared

    @property
    def ratio(self) -> float:
        """labelsync / floor, medians of wall-clock time (SQLite's waits count)."""
        return self.labelsync.wall / self.floor.wall


def bench_push(prepared: Prepared, work: Path, *, repeat: int) -> PushResult:
    """Run labelsync and the floor interleaved `repeat` times each, each on a fresh copy.

    Every run must leave the same rows as every other, or this raises `PushMismatch`.
    """
    floor: list[Run] = []
    ours: list[Run] = []
    for index in range(repeat):
        order = ("floor", "labelsync") if index % 2 == 0 else ("labelsync", "floor")
        for impl in order:
            run = run_child(impl, prepared.path, work, prepared.job_id, BATCH_SIZE)
            (floor if impl == "floor" else ours).append(run)
    digests = {run.digest for run in floor + ours}
    if len(digests) != 1:
        raise PushMismatch(f"runs at {prepared.users} Users left {len(digests)} different files")
    return PushResult(
        users=prepared.users,
        floor=runs([run.timing for run in floor]),
        labelsync=runs([run.timing for run in ours]),
        floor_rss_kib=max(run.rss_kib for run in floor),
        labelsync_rss_kib=max(run.rss_kib for run in ours),
        baseline_rss_kib=max(run.rss_before_kib for run in ours),
        prepared=prepared,
    )


def main(argv: list[str] | None = None) -> None:
    """The child: run one job once and print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sqlite_push")
    parser.add_argument("impl", choices=["labelsync", "floor"])
    parser.add_argument("path")
    parser.add_argument("job_id")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--full-digest", action="store_true")
    args = parser.parse_args(argv)
    if not os.path.exists(args.path):
        parser.error(f"no such file: {args.path}")
    print(json.dumps(_child(args.impl, args.path, args.job_id, args.batch_size, args.full_digest)))


if __name__ == "__main__":
    main()
