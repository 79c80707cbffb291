"""The push job on SQLite: `LabelSync.run_push` against the narrow set-based floor.

Each run happens in a fresh child process (``python -m benchmarks.sqlite_push``)
on a fresh copy of one prepared file, so the peak RSS it reports is the job's
own and every run starts from the same state. labelsync's file is written and
its push started through the public API (`LabelSync.create_tenant`,
`start_push`); the floor's file holds the same tenant in its own narrow schema
(`benchmarks.sqlite_floor`) with the same job started. Before any timing, both
run once on a smaller tenant and must leave every User with the same selection
and version and count the same changes and skips; every timed run must count
the same as every other.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from attrs import frozen

from benchmarks import sqlite_floor
from benchmarks.state import FloorMismatch, State, check_equal, counts_tuple, labelsync_state
from benchmarks.timing import Runs, Timing, runs
from labelsync import Defaults, LabelSync, PushMode, Tenant
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.synthetic import ADMIN_ID

BATCH_SIZE = 500
FLOOR_JOB = "floor-job"


def peak_rss_kib() -> int:
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


# -- one run, in a child process -------------------------------------------------------


def _child(impl: str, path: str, job_id: str, batch_size: int, keep: bool) -> dict[str, object]:
    """Run the job once, then report times, peak RSS and the state it left."""
    rss_before = peak_rss_kib()
    state: State
    if impl == "labelsync":
        with SqliteStore(path) as store:
            service = LabelSync(store=store, clock=SystemClock())
            wall, cpu = time.perf_counter(), time.process_time()
            service.run_push(job_id, batch_size=batch_size)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rss = peak_rss_kib()
            if keep:
                tenant_id = service.job(job_id).tenant_id
                state = labelsync_state(service, tenant_id, job_id, keep=True, provenance=True)
            else:
                job = service.job(job_id)
                state = State(
                    digest="",
                    processed=job.processed,
                    counts=counts_tuple(job.counts),
                    kept=job.counts.user_choice_kept,
                )
    else:
        conn = sqlite_floor.connect(path)
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            sqlite_floor.push(conn, job_id, batch_size, dt.datetime.now(dt.UTC).isoformat())
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rss = peak_rss_kib()
            state = sqlite_floor.final_state(conn, job_id, keep=keep)
            if not keep:
                state = State(
                    digest="", processed=state.processed, counts=state.counts, kept=state.kept
                )
        finally:
            conn.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_kib": rss,
        "rss_before_kib": rss_before,
        "state": state.to_json(),
    }


@frozen
class Run:
    """What one child reported."""

    timing: Timing
    rss_kib: int
    rss_before_kib: int
    state: State


def run_child(impl: str, base: Path, work: Path, job_id: str, *, keep: bool = False) -> Run:
    """Copy `base` to a scratch file and run the job on it in a fresh interpreter."""
    target = work / f"run-{impl}.db"
    remove_db(target)
    copy_db(base, target)
    done = subprocess.run(  # checked below, to show the child's stderr
        [
            sys.executable,
            "-m",
            "benchmarks.sqlite_push",
            impl,
            str(target),
            job_id,
            f"--batch-size={BATCH_SIZE}",
            *(["--keep"] if keep else []),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {impl} run on {target} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    remove_db(target)
    return Run(
        timing=Timing(wall=float(report["wall"]), cpu=float(report["cpu"])),
        rss_kib=int(report["rss_kib"]),
        rss_before_kib=int(report["rss_before_kib"]),
        state=State.from_json(report["state"]),
    )


# -- the prepared files -----------------------------------------------------------------


def copy_db(source: Path, target: Path) -> None:
    """Copy a closed SQLite file for one run, on disk before the run starts.

    A fresh copy is dirty in the page cache; the run's first checkpoint fsyncs
    the file and would write the whole copy out inside the timing (0 to 0.2 s at
    1,000,000 Users, varying with the kernel's own writeback): setup, not push.
    """
    shutil.copyfile(source, target)
    descriptor = os.open(target, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_db(path: Path) -> None:
    """Delete a SQLite file and its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@frozen
class Prepared:
    """A tenant and a pending push of it, once in labelsync's file and once in the floor's."""

    path: Path
    floor_path: Path
    job_id: str
    users: int
    seconds: float
    megabytes: float
    floor_megabytes: float


def prepare(
    tenant: Tenant, path: Path, defaults: Defaults, mode: PushMode = PushMode.OVERRIDE
) -> Prepared:
    """Write `tenant` for labelsync (`create_tenant`, one transaction) and for the floor,
    and start a push of `defaults` in `mode` in each (setup, not timed). The floor
    runs OVERRIDE and KEEP_USER_CHOICES pushes."""
    if mode is PushMode.NEW_USERS_ONLY:
        raise ValueError("the SQLite floor runs OVERRIDE and KEEP_USER_CHOICES pushes only")
    remove_db(path)
    start = time.perf_counter()
    with SqliteStore(path) as store:
        service = LabelSync(store=store, clock=SystemClock())
        service.create_tenant(tenant)
        job = service.start_push(tenant.id, actor_id=ADMIN_ID, defaults=defaults, mode=mode)
    seconds = time.perf_counter() - start
    # Closing the last connection checkpoints the WAL into the file: one file to copy.
    if Path(f"{path}-wal").exists():
        raise RuntimeError(f"{path}-wal is left after close; copies would miss it")
    floor_path = path.with_name(f"{path.stem}-floor.db")
    remove_db(floor_path)
    keep = mode is PushMode.KEEP_USER_CHOICES
    sqlite_floor.write_tenant(floor_path, tenant, FLOOR_JOB, defaults, keep=keep)
    return Prepared(
        path=path,
        floor_path=floor_path,
        job_id=job.id,
        users=len(tenant.users),
        seconds=seconds,
        megabytes=path.stat().st_size / 1e6,
        floor_megabytes=floor_path.stat().st_size / 1e6,
    )


def discard(prepared: Prepared) -> None:
    """Delete both prepared files."""
    remove_db(prepared.path)
    remove_db(prepared.floor_path)


def check_same(prepared: Prepared, work: Path) -> State:
    """Run both once and assert they leave every User alike and count alike (before timing)."""
    ours = run_child("labelsync", prepared.path, work, prepared.job_id, keep=True)
    floor = run_child("floor", prepared.floor_path, work, FLOOR_JOB, keep=True)
    check_equal(ours.state, floor.state, f"SQLite, {prepared.users:,} Users")
    return ours.state


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


def bench_push(prepared: Prepared, *, work: Path, repeat: int) -> PushResult:
    """Run labelsync and the floor interleaved `repeat` times each, each on a fresh copy.

    Every run must count the same changes and skips as every other, or this
    raises `FloorMismatch`.
    """
    floor: list[Run] = []
    ours: list[Run] = []
    for index in range(repeat):
        order = ("floor", "labelsync") if index % 2 == 0 else ("labelsync", "floor")
        for impl in order:
            if impl == "floor":
                floor.append(run_child("floor", prepared.floor_path, work, FLOOR_JOB))
            else:
                ours.append(run_child("labelsync", prepared.path, work, prepared.job_id))
    counted = {(run.state.processed, run.state.counts, run.state.kept) for run in floor + ours}
    if len(counted) != 1:
        raise FloorMismatch(f"runs at {prepared.users:,} Users counted differently: {counted}")
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
    parser.add_argument("--keep", action="store_true", help="report every User's state")
    args = parser.parse_args(argv)
    if not os.path.exists(args.path):
        parser.error(f"no such file: {args.path}")
    print(json.dumps(_child(args.impl, args.path, args.job_id, args.batch_size, args.keep)))


if __name__ == "__main__":
    main()
