"""The push on PostgreSQL: Users per second for one, two and four worker processes (B6).

`bench_postgres()` pushes a synthetic tenant (100,000 Users by default) once
with the single runner (`LabelSync.run_push` in one process) and once per
worker count with that many worker processes calling
`labelsync.parallel.run_worker` on the same job. Each run gets a fresh schema
holding the same tenant, written before the clock starts. Every run happens in
fresh child processes that import and connect first; the clock runs from the
moment all of them are told to go until the last one has returned the DONE
job, and the result is checked (every roster User processed once, the same
counts in every run).

The server is the one LABELSYNC_POSTGRES_DSN names (``eval "$(bash
scripts/postgres-test-server.sh start)"``); without one the benchmark is
skipped with the reason. Standalone: ``python -m benchmarks.bench_postgres``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence

from attrs import frozen

from benchmarks.core import DEFAULTS
from labelsync import LabelSync, PushCounts, Tenant
from labelsync.adapters.clock import SystemClock
from labelsync.synthetic import ADMIN_ID, synthetic_tenant

__all__ = ["PostgresBench", "PostgresRun", "bench_postgres", "markdown"]

DSN_VARIABLE = "LABELSYNC_POSTGRES_DSN"
SEED = 1

# A child process: import and connect, say "ready", wait for "go", push, say how it ended.
# Worker id "-" is the single runner (run_push); any other runs one of the workers.
_CHILD = """
import sys
from labelsync import LabelSync
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.postgres import PostgresStore
from labelsync.parallel import run_worker

dsn, schema, job_id, worker_id, batch_size, lease = sys.argv[1:]
with PostgresStore(dsn, schema=schema) as store:
    print("ready", flush=True)
    sys.stdin.readline()
    if worker_id == "-":
        job = LabelSync(store=store, clock=SystemClock()).run_push(
            job_id, batch_size=int(batch_size)).job
    else:
        job = run_worker(store, SystemClock(), job_id, worker_id=worker_id,
                         batch_size=int(batch_size), lease_seconds=float(lease))
    print(job.status.name, job.processed, flush=True)
"""


@frozen
class PostgresRun:
    """One push: how many worker processes (0 for the in-process single runner) and how long."""

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


def _prepared(dsn: str, tenant: Tenant) -> tuple[str, str]:
    """A fresh schema holding `tenant` and a started push of it: (schema, job id)."""
    from labelsync.adapters.postgres import PostgresStore

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with PostgresStore(dsn, schema=schema) as store:
        service = LabelSync(store=store, clock=SystemClock())
        service.create_tenant(tenant)
        job = service.start_push(tenant.id, actor_id=ADMIN_ID, defaults=DEFAULTS)
    return schema, job.id


def _finished(dsn: str, schema: str, job_id: str, workers: int, seconds: float) -> PostgresRun:
    from labelsync.adapters.postgres import PostgresStore

    with PostgresStore(dsn, schema=schema) as store:
        job = store.get_job(job_id)
    if job.status.name != "DONE" or job.processed != job.total:
        raise RuntimeError(f"the push did not finish whole: {job!r}")
    return PostgresRun(workers=workers, users=job.total, seconds=seconds, counts=job.counts)


def _run(
    dsn: str, tenant: Tenant, workers: int, batch_size: int, lease_seconds: float
) -> PostgresRun:
    """One timed push by `workers` worker processes, or by the single runner if 0."""
    schema, job_id = _prepared(dsn, tenant)
    processes: list[subprocess.Popen[str]] = []
    names = [f"bench-{n}" for n in range(workers)] if workers else ["-"]
    try:
        for name in names:
            arguments = [dsn, schema, job_id, name, str(batch_size), str(lease_seconds)]
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", _CHILD, *arguments],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
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
        return _finished(dsn, schema, job_id, workers, seconds)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        _drop(dsn, schema)


def bench_postgres(
    users: int = 100_000,
    workers: Sequence[int] = (1, 2, 4),
    *,
    batch_size: int = 500,
    lease_seconds: float = 60,
    dsn: str | None = None,
    say: Callable[[str], object] = print,
) -> PostgresBench:
    """Push `users` synthetic Users with the single runner and with each count of `workers`.

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
    tenant = synthetic_tenant(users, seed=SEED, tenant_id="bench", name="Bench Corp")
    runs: list[PostgresRun] = []
    for count in (0, *workers):
        runs.append(_run(dsn, tenant, count, batch_size, lease_seconds))
        say(f"    {runs[-1].label}: {runs[-1].users_per_second:,.0f} Users/s")
    if len({run.counts for run in runs}) != 1:
        raise RuntimeError(f"the runs disagree on what the push did: {runs!r}")
    return PostgresBench(
        users=users, batch_size=batch_size, server=server, runs=tuple(runs), load=_load()
    )


def _load() -> str:
    """The 1-minute load average: other work on the host skews wall-clock times."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def markdown(result: PostgresBench) -> str:
    """The results as a Markdown section for docs/performance.md."""
    lines = ["## The push on PostgreSQL, with parallel workers", ""]
    if result.skipped is not None:
        return "\n".join([*lines, f"Not measured: {result.skipped}.", ""])
    lines += [
        (
            f"{result.users:,} Users, batches of {result.batch_size}, on {result.server} on "
            "the same host (loopback). Each run starts from a fresh schema holding the same "
            "tenant; the processes are started and connected before the clock starts. "
            f"Load average when done: {result.load}."
        ),
        "",
        "| run | seconds | Users/s | vs. single runner |",
        "| --- | ---: | ---: | ---: |",
    ]
    single = result.runs[0].users_per_second
    for run in result.runs:
        lines.append(
            f"| {run.label} | {run.seconds:.1f} | {run.users_per_second:,.0f} | "
            f"{run.users_per_second / single:.2f}x |"
        )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.bench_postgres [--users N] [--workers 1,2,4]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_postgres")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.workers.split(",") if part.strip()]
    print(markdown(bench_postgres(args.users, counts, batch_size=args.batch_size)))


if __name__ == "__main__":
    main()
