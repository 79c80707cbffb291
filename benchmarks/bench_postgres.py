"""The push on PostgreSQL: labelsync beside a set-based psycopg floor, and 1, 2 and 4 workers (B6).

`bench_postgres()` pushes a synthetic tenant (100,000 Users by default) with
the single runner (`LabelSync.run_push` in one process) and with the floor
(`benchmarks.postgres_floor`), interleaved `repeat` times each, then once per
worker count with that many worker processes calling `LabelSync.run_push(...,
worker_id=...)` on the same job. Each run gets a fresh schema holding the
same tenant, written before the clock starts (labelsync's through
`LabelSync.create_tenant`). Every run happens in fresh child processes that
import and connect first; the clock runs from the moment all of them are told
to go until the last one has finished. Before any timing, labelsync and the
floor push a smaller tenant and must leave every User with the same selection
and version and count the same changes and skips; every timed run must count
the same as every other.

The server is the one LABELSYNC_POSTGRES_DSN names (``eval "$(bash
scripts/postgres-test-server.sh start)"``); without one the benchmark is
skipped with the reason. Standalone: ``python -m benchmarks.bench_postgres``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from attrs import frozen

from benchmarks import postgres_floor
from benchmarks.core import DEFAULTS
from benchmarks.state import FloorMismatch, State, check_equal, counts_tuple, labelsync_state
from labelsync import LabelSync, PushCounts, Tenant
from labelsync.adapters.clock import SystemClock
from labelsync.synthetic import ADMIN_ID, synthetic_tenant

__all__ = ["PostgresBench", "PostgresRun", "bench_postgres", "markdown"]

DSN_VARIABLE = "LABELSYNC_POSTGRES_DSN"
ROOT = Path(__file__).resolve().parent.parent
SEED = 1

# A child process: import and connect, say "ready", wait for "go", push, say how it ended.
# Worker id "-" is the single runner, "floor" the floor; any other runs one of the workers.
_CHILD = """
import sys
import psycopg
from benchmarks import postgres_floor
from labelsync import LabelSync
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.postgres import PostgresStore

dsn, schema, job_id, worker_id, batch_size, lease = sys.argv[1:]
if worker_id == "floor":
    with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
        print("ready", flush=True)
        sys.stdin.readline()
        postgres_floor.push(conn, job_id, int(batch_size))
    print("DONE", flush=True)
    raise SystemExit
with PostgresStore(dsn, schema=schema) as store:
    service = LabelSync(store=store, clock=SystemClock())
    print("ready", flush=True)
    sys.stdin.readline()
    if worker_id == "-":
        job = service.run_push(job_id, batch_size=int(batch_size)).job
    else:
        job = service.run_push(job_id, batch_size=int(batch_size), worker_id=worker_id,
                               lease_seconds=float(lease)).job
    print(job.status.name, job.processed, flush=True)
"""
FLOOR_JOB = "floor-job"
PRECHECK_USERS = 10_000


@frozen
class PostgresRun:
    """One push: how many worker processes (0: the single runner; -1: the floor) and how long."""

    workers: int
    users: int
    seconds: float
    counts: PushCounts

    @property
    def users_per_second(self) -> float:
        """Roster Users pushed per wall-clock second."""
        return self.users / self.seconds

    @property
    def label(self) -> str:
        """How the run is named in tables."""
        if self.workers == -1:
            return "floor (set-based psycopg, 1 process)"
        if self.workers == 0:
            return "single runner (run_push, 1 process)"
        return f"{self.workers} worker process{'es' if self.workers > 1 else ''}"


@frozen
class PostgresBench:
    """The runs of one benchmark, or why it was skipped (`skipped` is then the reason)."""

    users: int
    batch_size: int
    server: str
    runs: tuple[PostgresRun, ...]
    skipped: str | None = None
    load: str = "n/a"
    repeat: int = 0
    checked_users: int = 0

    def median(self, workers: int) -> float:
        """Median seconds of the runs with `workers` (0: single runner, -1: floor)."""
        return statistics.median(run.seconds for run in self.runs if run.workers == workers)

    @property
    def ratio(self) -> float:
        """Single runner / floor, medians of wall-clock seconds."""
        return self.median(0) / self.median(-1)


def _server(dsn: str) -> tuple[str, str | None]:
    """The server's version, or None and the reason it cannot be reached."""
    try:
        import psycopg
    except ImportError:
        return "", "psycopg is not installed (pip install 'labelsync[postgres]')"
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        return "", f"PostgreSQL not reachable: {error}".strip()
    return f"PostgreSQL {row[0] if row else '?'}", None


def _drop(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _prepared(dsn: str, tenant: Tenant, *, floor: bool) -> tuple[str, str]:
    """A fresh schema holding `tenant` and a started push of it: (schema, job id).

    labelsync's through its public API, the floor's in its own tables.
    """
    import psycopg

    from labelsync.adapters.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    if floor:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
            postgres_floor.write_tenant(conn, tenant, FLOOR_JOB, DEFAULTS)
        return schema, FLOOR_JOB
    with PostgresStore(dsn, schema=schema) as store:
        service = LabelSync(store=store, clock=SystemClock())
        service.create_tenant(tenant)
        job = service.start_push(tenant.id, actor_id=ADMIN_ID, defaults=DEFAULTS)
    return schema, job.id


def _state(dsn: str, schema: str, job_id: str, *, floor: bool, keep: bool) -> State:
    """What a finished run left, read through labelsync's public API or the floor's tables."""
    import psycopg

    from labelsync.adapters.postgres import PostgresStore

    if floor:
        with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as conn:
            return postgres_floor.final_state(conn, job_id, keep=keep)
    with PostgresStore(dsn, schema=schema) as store:
        service = LabelSync(store=store, clock=SystemClock())
        job = service.job(job_id)
        if job.status.name != "DONE" or job.processed != job.total:
            raise RuntimeError(f"the push did not finish whole: {job!r}")
        if keep:
            return labelsync_state(service, job.tenant_id, job_id, keep=True)
        return State(digest="", processed=job.processed, counts=counts_tuple(job.counts))


def _counts(state: State) -> PushCounts:
    changed, selected, deselected, no_mailbox, label_missing = state.counts
    return PushCounts(
        users_changed=changed,
        selected=selected,
        deselected=deselected,
        no_mailbox=no_mailbox,
        label_missing=label_missing,
    )


def _run(
    dsn: str,
    tenant: Tenant,
    workers: int,
    batch_size: int,
    lease_seconds: float,
    *,
    keep: bool = False,
) -> tuple[PostgresRun, State]:
    """One timed push by `workers` worker processes, the single runner if 0, the floor if -1."""
    floor = workers == -1
    schema, job_id = _prepared(dsn, tenant, floor=floor)
    processes: list[subprocess.Popen[str]] = []
    names = [f"bench-{n}" for n in range(workers)] if workers > 0 else ["floor" if floor else "-"]
    try:
        for name in names:
            arguments = [dsn, schema, job_id, name, str(batch_size), str(lease_seconds)]
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", _CHILD, *arguments],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
            )
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker failed to start (exit {process.wait()})")
        start = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate()[0] for process in processes]
        seconds = time.perf_counter() - start
        if any(process.returncode for process in processes):
            raise RuntimeError(f"a worker failed: {outputs!r}")
        state = _state(dsn, schema, job_id, floor=floor, keep=keep)
        run = PostgresRun(
            workers=workers, users=state.processed, seconds=seconds, counts=_counts(state)
        )
        return run, state
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        _drop(dsn, schema)


def check_same(dsn: str, users: int = PRECHECK_USERS, batch_size: int = 500) -> State:
    """Push a `users`-User tenant with labelsync and with the floor; raise unless alike."""
    tenant = synthetic_tenant(users, seed=SEED, tenant_id="bench", name="Bench Corp")
    _, ours = _run(dsn, tenant, 0, batch_size, 60, keep=True)
    _, floor = _run(dsn, tenant, -1, batch_size, 60, keep=True)
    check_equal(ours, floor, f"PostgreSQL, {users:,} Users")
    return ours


def bench_postgres(
    users: int = 100_000,
    workers: Sequence[int] = (1, 2, 4),
    *,
    repeat: int = 3,
    batch_size: int = 500,
    lease_seconds: float = 60,
    dsn: str | None = None,
    say: Callable[[str], object] = print,
) -> PostgresBench:
    """The single runner and the floor interleaved `repeat` times, then each count of `workers`.

    Returns the runs, or a `PostgresBench` whose `skipped` says why there are
    none (no server); `say` reports progress and the skip.
    """
    dsn = dsn if dsn is not None else os.environ.get(DSN_VARIABLE, "")
    if not dsn:
        reason = f"{DSN_VARIABLE} is not set (bash scripts/postgres-test-server.sh start)"
        say(f"PostgreSQL benchmark skipped: {reason}")
        return PostgresBench(users=users, batch_size=batch_size, server="", runs=(), skipped=reason)
    server, problem = _server(dsn)
    if problem is not None:
        say(f"PostgreSQL benchmark skipped: {problem}")
        return PostgresBench(
            users=users, batch_size=batch_size, server="", runs=(), skipped=problem
        )
    checked = min(users, PRECHECK_USERS)
    check_same(dsn, checked, batch_size)
    say(f"    labelsync == floor on PostgreSQL at {checked:,} Users")
    tenant = synthetic_tenant(users, seed=SEED, tenant_id="bench", name="Bench Corp")
    order = [(-1, 0) if index % 2 == 0 else (0, -1) for index in range(repeat)]
    runs: list[PostgresRun] = []
    for count in [*(count for pair in order for count in pair), *workers]:
        run, _ = _run(dsn, tenant, count, batch_size, lease_seconds)
        runs.append(run)
        say(f"    {run.label}: {run.users_per_second:,.0f} Users/s")
    if len({run.counts for run in runs}) != 1:
        raise FloorMismatch(f"the runs disagree on what the push did: {runs!r}")
    return PostgresBench(
        users=users,
        batch_size=batch_size,
        server=server,
        runs=tuple(runs),
        load=_load(),
        repeat=repeat,
        checked_users=checked,
    )


def _load() -> str:
    """The 1-minute load average: other work on the host skews wall-clock times."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def markdown(result: PostgresBench) -> str:
    """The results as a Markdown section for docs/performance.md."""
    lines = ["## The push on PostgreSQL: the floor, and parallel workers", ""]
    if result.skipped is not None:
        return "\n".join([*lines, f"Not measured: {result.skipped}.", ""])
    single = result.median(0)
    lines += [
        (
            f"{result.users:,} Users, batches of {result.batch_size}, on {result.server} on "
            "the same host (loopback), started by `scripts/postgres-test-server.sh`, which "
            "turns `fsync` and `synchronous_commit` off: a commit here costs no disk flush, "
            "for labelsync and the floor alike. Each run starts from a fresh schema holding "
            "the same tenant; the processes are started and connected before the clock "
            f"starts. The single runner and the floor ran {result.repeat} times each, "
            "interleaved; each worker count once. Before any timing both pushed a "
            f"{result.checked_users:,}-User tenant and left every User alike. "
            f"Load average when done: {result.load}."
        ),
        "",
        "| run | runs | seconds (median) | Users/s | vs. single runner |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for workers in sorted({run.workers for run in result.runs}):
        seconds = result.median(workers)
        count = sum(1 for run in result.runs if run.workers == workers)
        label = next(run.label for run in result.runs if run.workers == workers)
        lines.append(
            f"| {label} | {count} | {seconds:.1f} | {result.users / seconds:,.0f} | "
            f"{single / seconds:.2f}x |"
        )
    lines += [
        "",
        (
            f"labelsync's single runner takes **{result.ratio:.2f}x** the floor's time "
            "(medians of wall-clock seconds)."
        ),
    ]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.bench_postgres [--users N] [--workers 1,2,4]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_postgres")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the runner and the floor")
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.workers.split(",") if part.strip()]
    result = bench_postgres(args.users, counts, repeat=args.repeat, batch_size=args.batch_size)
    print(markdown(result))


if __name__ == "__main__":
    main()
