"""A push to a 10% audience (R20) against a push to everyone, on PostgreSQL, side by side.

    eval "$(bash scripts/postgres-test-server.sh start)"
    python -m benchmarks.audience_push --store postgres --sizes 100000,1000000 --repeat 3

The same comparison as `benchmarks.audience_push` (its tenant, audiences, batch
size and table), on the server LABELSYNC_POSTGRES_DSN names. Each size's tenant
is written once, through `LabelSync.create_tenant`, into a database of its own
that is then vacuumed and analysed (the settled state autovacuum leaves a
database in) and used as a template: every run gets a fresh file copy of it
(``CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY``) and pushes in a
fresh child process, which times `start_push` (which for an audience selects the
members in the database) and `run_push` together; the kinds of run alternate.
Before any timing, each push runs once on a smaller tenant and must leave every
User, and count every change and skip, exactly as the pure rule
`apply_defaults(tenant, defaults, audience=...)` says; every timed run must count
the same as every other run of its kind. The databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.audience_push import (
    AUDIENCES,
    Run,
    grouped_tenant,
    push_and_report,
    rule_state,
    without_provenance,
)
from benchmarks.state import FloorMismatch, State, check_equal
from benchmarks.timing import Runs, Timing, runs
from labelsync import LabelSync, Tenant
from labelsync.adapters.clock import SystemClock

DSN_VARIABLE = "LABELSYNC_POSTGRES_DSN"
ROOT = Path(__file__).resolve().parent.parent


def _on(dsn: str, database: str) -> str:
    """`dsn` with its database replaced."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, dbname=database)


def _admin(dsn: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE and DROP DATABASE need that)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def template(dsn: str, tenant: Tenant) -> Iterator[str]:
    """A database holding `tenant` (written by labelsync), vacuumed and analysed; its name."""
    import psycopg

    from labelsync.adapters.postgres import PostgresStore

    name = f"audience_tpl_{uuid.uuid4().hex[:8]}"
    _admin(dsn, f'CREATE DATABASE "{name}"')
    try:
        with PostgresStore(_on(dsn, name)) as store:
            LabelSync(store=store, clock=SystemClock()).create_tenant(tenant)
        with psycopg.connect(_on(dsn, name), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        yield name
    finally:
        _admin(dsn, f'DROP DATABASE IF EXISTS "{name}"')


def _child(dsn: str, audience_name: str, keep: bool) -> dict[str, object]:
    """One push by labelsync on the PostgreSQL database `dsn`."""
    from labelsync.adapters.postgres import PostgresStore

    with PostgresStore(dsn) as store:
        return push_and_report(LabelSync(store=store, clock=SystemClock()), audience_name, keep)


def run_child(dsn: str, base: str, audience_name: str, *, keep: bool = False) -> Run:
    """Copy database `base` and push to `audience_name` on the copy in a fresh interpreter."""
    target = f"audience_run_{uuid.uuid4().hex[:8]}"
    _admin(dsn, f'CREATE DATABASE "{target}" TEMPLATE "{base}" STRATEGY FILE_COPY')
    try:
        done = subprocess.run(  # checked below, to show the child's stderr
            [
                sys.executable,
                "-m",
                "benchmarks.audience_push_postgres",
                "child",
                _on(dsn, target),
                audience_name,
            ]
            + (["--keep"] if keep else []),
            check=False,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    finally:
        _admin(dsn, f'DROP DATABASE IF EXISTS "{target}"')
    if done.returncode != 0:
        raise RuntimeError(f"the {audience_name} run on {target} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(
        timing=Timing(wall=float(report["wall"]), cpu=float(report["cpu"])),
        start=float(report["start"]),
        rss_kib=int(report["rss_kib"]),
        state=State.from_json(report["state"]),
    )


def check_rule(dsn: str, tenant: Tenant, base: str) -> None:
    """Every push leaves every User and counts exactly as the pure rule (before timing)."""
    for name in AUDIENCES:
        got = without_provenance(run_child(dsn, base, name, keep=True).state)
        where = f"PostgreSQL push to {name}, {len(tenant.users):,} Users"
        check_equal(got, rule_state(tenant, name), where)


def bench(dsn: str, base: str, repeat: int) -> dict[str, tuple[Runs, list[Run]]]:
    """Every push `repeat` times, alternating the order of the kinds."""
    found: dict[str, list[Run]] = {name: [] for name in AUDIENCES}
    for index in range(repeat):
        order = list(AUDIENCES) if index % 2 == 0 else list(AUDIENCES)[::-1]
        for name in order:
            found[name].append(run_child(dsn, base, name))
    for name, done in found.items():
        counted = {(run.state.processed, run.state.counts) for run in done}
        if len(counted) != 1:
            raise FloorMismatch(f"the {name} runs counted differently: {counted}")
    return {name: (runs([r.timing for r in done]), done) for name, done in found.items()}


def _server(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def run(sizes: list[int], repeat: int, check_size: int) -> None:
    """The whole benchmark on the server `LABELSYNC_POSTGRES_DSN` names; prints its table."""
    dsn = os.environ.get(DSN_VARIABLE, "")
    if not dsn:
        raise SystemExit(
            f'{DSN_VARIABLE} is not set: eval "$(bash scripts/postgres-test-server.sh start)"'
        )
    print(f"server: {_server(dsn)}")
    small = grouped_tenant(check_size)
    with template(dsn, small) as base:
        check_rule(dsn, small, base)
    print(f"checked: every push equals apply_defaults at {check_size:,} Users on PostgreSQL")
    print(
        "| Users | runs | everyone: wall s | 10% spread (sales): wall s | ratio "
        "| 10% clustered (east): wall s | ratio | start: everyone / spread / clustered s "
        "| peak RSS MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        tenant = grouped_tenant(size)
        with template(dsn, tenant) as base:
            del tenant
            results = bench(dsn, base, repeat)
        everyone = results["everyone"][0]
        spread, clustered = results["sales"][0], results["east"][0]
        members = {name: done[0].state.processed for name, (_, done) in results.items()}
        starts = [sorted(r.start for r in done)[len(done) // 2] for _, done in results.values()]
        rss = max(r.rss_kib for _, done in results.values() for r in done) / 1024
        print(
            f"| {size:,} | {repeat} | {everyone.wall:.2f} "
            f"| {spread.wall:.2f} ({members['sales']:,} Users) "
            f"| **{spread.wall / everyone.wall:.3f}** "
            f"| {clustered.wall:.2f} ({members['east']:,} Users) "
            f"| **{clustered.wall / everyone.wall:.3f}** "
            f"| {' / '.join(f'{t:.3f}' for t in starts)} | {rss:.0f} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.audience_push_postgres child DSN AUDIENCE [--keep]``: one run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audience_push_postgres")
    sub = parser.add_subparsers(dest="command", required=True)
    child = sub.add_parser("child", help="one run (used by the benchmark itself)")
    child.add_argument("dsn")
    child.add_argument("audience", choices=list(AUDIENCES))
    child.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.dsn, args.audience, args.keep)))


if __name__ == "__main__":
    main()
