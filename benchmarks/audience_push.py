"""A push to a 10% audience (R20) against a push to everyone on SQLite, beside the floor.

    python -m benchmarks.audience_push --sizes 100000,1000000 --repeat 3
    python -m benchmarks.audience_push --store postgres ...   # benchmarks.audience_push_postgres

The tenant is `labelsync.synthetic.synthetic_tenant` with every tenth User in
group ``sales`` (a 10% audience spread over the whole roster, as a team whose
members joined over the years) and the first tenth of the roster also in group
``east`` (a 10% audience added together, clustered in roster order); the other
Users are in ``ops``. Each push runs both in labelsync's file (the tenant written
through `LabelSync.create_tenant`, timing `start_push`, which for an audience
selects the members in the store, and `run_push` together) and in the floor's
(`benchmarks.sqlite_floor`, the fastest push we could write that keeps the same
guarantees, timing `narrow`, its member selection, and `push` together). Each run
happens in a fresh child process on a fresh copy of its prepared file; the six
kinds of run (two implementations, three audiences) are interleaved, in an order
reversed every round. Before any timing, every push runs once on a smaller
tenant: labelsync's must leave every User, and count every change and skip,
exactly as the pure rule `apply_defaults(tenant, defaults, audience=...)` says,
and the floor's must leave what labelsync's leaves, provenance included; every
timed run must count the same as every other run of its kind.

The floor tells what the audience's share of a full push can be at best: a
spread audience has members on nearly every page of the narrow hot table, so
its batches rewrite about as many of those pages as a push to everyone.

It prints its table; its section of docs/performance.md (the table and how to
read it) sits between the markers ``<!-- audience-push:start -->`` and
``<!-- audience-push:end -->``, which `python -m benchmarks` keeps as it is
(`benchmarks.kept`): the full run does not measure audiences.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

from benchmarks import sqlite_floor
from benchmarks.sqlite_push import copy_db, peak_rss_kib, remove_db
from benchmarks.state import (
    FloorMismatch,
    State,
    check_equal,
    counts_tuple,
    labelsync_state,
    state_of,
)
from benchmarks.timing import Runs, Timing, runs
from labelsync import Audience, Defaults, LabelSync, Tenant, apply_defaults
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.synthetic import ADMIN_ID, synthetic_tenant

DEFAULTS = Defaults(inbox=True, sent=True)
BATCH_SIZE = 500
AUDIENCES = {
    "everyone": Audience.everyone(),
    "sales": Audience.groups({"sales"}),
    "east": Audience.groups({"east"}),
}
IMPLS = ("floor", "labelsync")
FLOOR_JOB = "floor-job"


def grouped_tenant(users: int) -> Tenant:
    """The synthetic tenant of `users` Users: every tenth in ``sales``, the first tenth in
    ``east``, the others in ``ops``."""
    tenant = synthetic_tenant(users, seed=14, tenant_id="bench")

    def groups(index: int) -> frozenset[str]:
        found = {"sales"} if index % 10 == 0 else {"ops"}
        if index < users // 10:
            found.add("east")
        return frozenset(found)

    return tenant.with_users(
        attrs.evolve(user, groups=groups(index)) for index, user in enumerate(tenant.users)
    )


def floor_path(path: Path) -> Path:
    """Where the floor's copy of the tenant in `path` is kept."""
    return path.with_name(f"{path.stem}-floor.db")


def prepare(tenant: Tenant, path: Path) -> float:
    """Write `tenant` to a fresh SQLite file, and to the floor's with a pending push to
    everyone (setup, not timed); seconds taken by labelsync's."""
    remove_db(path)
    start = time.perf_counter()
    with SqliteStore(path) as store:
        LabelSync(store=store, clock=SystemClock()).create_tenant(tenant)
    taken = time.perf_counter() - start
    remove_db(floor_path(path))
    sqlite_floor.write_tenant(floor_path(path), tenant, FLOOR_JOB, DEFAULTS)
    for written in (path, floor_path(path)):
        if Path(f"{written}-wal").exists():
            raise RuntimeError(f"{written}-wal is left after close; copies would miss it")
    return taken


def push_and_report(service: LabelSync, audience_name: str, keep: bool) -> dict[str, object]:
    """Start and run one push through `service` (on any store); report its times, peak
    RSS and the state it left (every User, provenance included, when `keep`)."""
    wall, cpu = time.perf_counter(), time.process_time()
    job = service.start_push(
        "bench", actor_id=ADMIN_ID, defaults=DEFAULTS, audience=AUDIENCES[audience_name]
    )
    started = time.perf_counter() - wall
    service.run_push(job.id, batch_size=BATCH_SIZE)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = peak_rss_kib()
    done = service.job(job.id)
    if keep:
        state = labelsync_state(service, "bench", job.id, keep=True, provenance=True)
    else:
        state = State("", done.processed, counts_tuple(done.counts))
    return {"wall": wall, "cpu": cpu, "start": started, "rss_kib": rss, "state": state.to_json()}


def _labelsync_child(path: str, audience_name: str, keep: bool) -> dict[str, object]:
    """One push by labelsync on the SQLite file `path`."""
    with SqliteStore(path) as store:
        return push_and_report(LabelSync(store=store, clock=SystemClock()), audience_name, keep)


def _floor_child(path: str, audience_name: str, keep: bool) -> dict[str, object]:
    """The floor's run of the same push on its own file."""
    audience = AUDIENCES[audience_name]
    conn = sqlite_floor.connect(path)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        if audience.narrowed:
            sqlite_floor.narrow(conn, FLOOR_JOB, audience.group_names)
        started = time.perf_counter() - wall
        sqlite_floor.push(conn, FLOOR_JOB, BATCH_SIZE, dt.datetime.now(dt.UTC).isoformat())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rss = peak_rss_kib()
        state = sqlite_floor.final_state(conn, FLOOR_JOB, keep=keep)
        if not keep:
            state = State("", state.processed, state.counts)
    finally:
        conn.close()
    return {"wall": wall, "cpu": cpu, "start": started, "rss_kib": rss, "state": state.to_json()}


@attrs.frozen
class Run:
    timing: Timing
    start: float
    rss_kib: int
    state: State


def run_child(impl: str, base: Path, work: Path, audience_name: str, *, keep: bool = False) -> Run:
    """Copy `impl`'s file of `base` to a scratch file and push to `audience_name` on it
    in a fresh interpreter."""
    target = work / f"run-{impl}-{audience_name}.db"
    remove_db(target)
    copy_db(base if impl == "labelsync" else floor_path(base), target)
    done = subprocess.run(  # checked below, to show the child's stderr
        [sys.executable, "-m", "benchmarks.audience_push", "child", impl, str(target)]
        + [audience_name]
        + (["--keep"] if keep else []),
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {impl} {audience_name} run on {target} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    remove_db(target)
    return Run(
        timing=Timing(wall=float(report["wall"]), cpu=float(report["cpu"])),
        start=float(report["start"]),
        rss_kib=int(report["rss_kib"]),
        state=State.from_json(report["state"]),
    )


def without_provenance(state: State) -> State:
    """`state` with only each User's id, selection and version (what the rule is checked on)."""
    assert state.users is not None
    rows = ((row[0], row[1], row[2]) for row in state.users)
    return state_of(rows, state.processed, state.counts, keep=True)


def rule_state(tenant: Tenant, audience_name: str) -> State:
    """What the pure rule says the push to `audience_name` leaves and counts."""
    after, changes = apply_defaults(tenant, DEFAULTS, audience=AUDIENCES[audience_name])
    return state_of(
        ((u.id, u.synced.ids, u.version) for u in after.users),
        changes.users,
        counts_tuple(changes.counts()),
        keep=True,
    )


def check_rule(tenant: Tenant, base: Path, work: Path) -> None:
    """Every push leaves every User and counts exactly as the pure rule, and the floor's
    leaves what labelsync's leaves, provenance included (before timing)."""
    for name in AUDIENCES:
        where = f"push to {name}, {len(tenant.users):,} Users"
        ours = run_child("labelsync", base, work, name, keep=True).state
        check_equal(without_provenance(ours), rule_state(tenant, name), where)
        check_equal(ours, run_child("floor", base, work, name, keep=True).state, f"floor, {where}")


Kind = tuple[str, str]  # (implementation, audience name)


def bench(base: Path, work: Path, repeat: int) -> dict[Kind, tuple[Runs, list[Run]]]:
    """Every push by both implementations `repeat` times each, interleaved, the order
    reversed every round."""
    kinds = [(impl, name) for name in AUDIENCES for impl in IMPLS]
    found: dict[Kind, list[Run]] = {kind: [] for kind in kinds}
    for index in range(repeat):
        for impl, name in kinds if index % 2 == 0 else kinds[::-1]:
            found[impl, name].append(run_child(impl, base, work, name))
    for name in AUDIENCES:
        counted = {
            (run.state.processed, run.state.counts) for impl in IMPLS for run in found[impl, name]
        }
        if len(counted) != 1:
            raise FloorMismatch(f"the {name} runs counted differently: {counted}")
    return {kind: (runs([r.timing for r in done]), done) for kind, done in found.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audience_push")
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("child", help="one run (used by the benchmark itself)")
    child.add_argument("impl", choices=IMPLS)
    child.add_argument("path")
    child.add_argument("audience", choices=list(AUDIENCES))
    child.add_argument("--keep", action="store_true")
    parser.add_argument("--sizes", default="100000,1000000", help="roster sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each push per size")
    parser.add_argument("--check-size", type=int, default=20_000, help="size of the rule check")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the store to push on (postgres: benchmarks.audience_push_postgres)",
    )
    args = parser.parse_args(argv)
    if args.command == "child":
        run = _labelsync_child if args.impl == "labelsync" else _floor_child
        print(json.dumps(run(args.path, args.audience, args.keep)))
        return
    if args.store == "postgres":
        from benchmarks import audience_push_postgres

        sizes = [int(part) for part in args.sizes.split(",")]
        audience_push_postgres.run(sizes, args.repeat, args.check_size)
        return
    with tempfile.TemporaryDirectory(prefix="labelsync-audience-") as scratch:
        work = Path(scratch)
        small = grouped_tenant(args.check_size)
        prepare(small, work / "check.db")
        check_rule(small, work / "check.db", work)
        print(
            f"checked: every push equals apply_defaults at {args.check_size:,} Users,"
            " and the floor's equals labelsync's"
        )
        print(
            "| Users | audience | members | floor: wall s | labelsync: wall s | labelsync/floor "
            "| floor: share of its full push | labelsync: share of its full push "
            "| labelsync start s | peak RSS MiB |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in (int(part) for part in args.sizes.split(",")):
            base = work / f"bench-{size}.db"
            tenant = grouped_tenant(size)
            prepare(tenant, base)
            del tenant
            results = bench(base, work, args.repeat)
            full = {impl: results[impl, "everyone"][0].wall for impl in IMPLS}
            for name, label in (
                ("everyone", "everyone"),
                ("sales", "10% spread (`sales`)"),
                ("east", "10% clustered (`east`)"),
            ):
                floor, ours = results["floor", name][0], results["labelsync", name][0]
                done = results["labelsync", name][1]
                start = sorted(r.start for r in done)[len(done) // 2]
                rss = max(r.rss_kib for r in done) / 1024
                print(
                    f"| {size:,} | {label} | {done[0].state.processed:,} | {floor.wall:.2f} "
                    f"| {ours.wall:.2f} | {ours.wall / floor.wall:.2f} "
                    f"| {floor.wall / full['floor']:.3f} | **{ours.wall / full['labelsync']:.3f}** "
                    f"| {start:.3f} | {rss:.0f} |",
                    flush=True,
                )
            remove_db(base)
            remove_db(floor_path(base))


if __name__ == "__main__":
    main()
