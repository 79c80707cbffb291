"""A push to a 10% audience (R20) against a push to everyone, both on SQLite, side by side.

    python -m benchmarks.audience_push --sizes 100000,1000000 --repeat 3
    python -m benchmarks.audience_push --store postgres ...   # benchmarks.audience_push_postgres

The tenant is `labelsync.synthetic.synthetic_tenant` with every tenth User in
group ``sales`` (a 10% audience spread over the whole roster, as a team whose
members joined over the years) and the first tenth of the roster also in group
``east`` (a 10% audience added together, clustered in roster order); the other
Users are in ``ops``. Each run happens in a fresh child
process on a fresh copy of one prepared file (the tenant written through
`LabelSync.create_tenant`), and times `start_push` (which for the audience
selects the members in the store) and `run_push` together; the two kinds of
run alternate. Before any timing, both pushes run once on a smaller tenant and
must leave every User, and count every change and skip, exactly as the pure
rule `apply_defaults(tenant, defaults, audience=...)` says; every timed run
must count the same as every other run of its kind.

It prints its table; its section of docs/performance.md (the table and how to
read it) sits between the markers ``<!-- audience-push:start -->`` and
``<!-- audience-push:end -->``, which `python -m benchmarks` keeps as it is
(`benchmarks.kept`): the full run does not measure audiences.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

from benchmarks.sqlite_push import peak_rss_kib, remove_db
from benchmarks.state import FloorMismatch, State, check_equal, counts_tuple, state_of
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


def prepare(tenant: Tenant, path: Path) -> float:
    """Write `tenant` to a fresh SQLite file (setup, not timed); seconds taken."""
    remove_db(path)
    start = time.perf_counter()
    with SqliteStore(path) as store:
        LabelSync(store=store, clock=SystemClock()).create_tenant(tenant)
    if Path(f"{path}-wal").exists():
        raise RuntimeError(f"{path}-wal is left after close; copies would miss it")
    return time.perf_counter() - start


def _child(path: str, audience_name: str, keep: bool) -> dict[str, object]:
    """Start and run one push on `path`; report its times, peak RSS and the state it left."""
    with SqliteStore(path) as store:
        service = LabelSync(store=store, clock=SystemClock())
        wall, cpu = time.perf_counter(), time.process_time()
        job = service.start_push(
            "bench", actor_id=ADMIN_ID, defaults=DEFAULTS, audience=AUDIENCES[audience_name]
        )
        started = time.perf_counter() - wall
        service.run_push(job.id, batch_size=BATCH_SIZE)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rss = peak_rss_kib()
        done = service.job(job.id)
        users = service.tenant("bench").users if keep else ()
        state = state_of(
            ((u.id, u.synced.ids, u.version) for u in users),
            done.processed,
            counts_tuple(done.counts),
            keep=keep,
        )
    return {"wall": wall, "cpu": cpu, "start": started, "rss_kib": rss, "state": state.to_json()}


@attrs.frozen
class Run:
    timing: Timing
    start: float
    rss_kib: int
    state: State


def run_child(base: Path, work: Path, audience_name: str, *, keep: bool = False) -> Run:
    """Copy `base` to a scratch file and push to `audience_name` on it in a fresh interpreter."""
    target = work / f"run-{audience_name}.db"
    remove_db(target)
    shutil.copyfile(base, target)
    done = subprocess.run(  # checked below, to show the child's stderr
        [sys.executable, "-m", "benchmarks.audience_push", "child", str(target), audience_name]
        + (["--keep"] if keep else []),
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {audience_name} run on {target} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    remove_db(target)
    return Run(
        timing=Timing(wall=float(report["wall"]), cpu=float(report["cpu"])),
        start=float(report["start"]),
        rss_kib=int(report["rss_kib"]),
        state=State.from_json(report["state"]),
    )


def check_rule(tenant: Tenant, base: Path, work: Path) -> None:
    """Both pushes leave every User and count exactly as the pure rule (before timing)."""
    for name, audience in AUDIENCES.items():
        after, changes = apply_defaults(tenant, DEFAULTS, audience=audience)
        want = state_of(
            ((u.id, u.synced.ids, u.version) for u in after.users),
            changes.users,
            counts_tuple(changes.counts()),
            keep=True,
        )
        got = run_child(base, work, name, keep=True).state
        check_equal(got, want, f"push to {name}, {len(tenant.users):,} Users")


def bench(base: Path, work: Path, repeat: int) -> dict[str, tuple[Runs, list[Run]]]:
    """Both pushes `repeat` times each, alternating which goes first."""
    found: dict[str, list[Run]] = {name: [] for name in AUDIENCES}
    for index in range(repeat):
        order = list(AUDIENCES) if index % 2 == 0 else list(AUDIENCES)[::-1]
        for name in order:
            found[name].append(run_child(base, work, name))
    for name, done in found.items():
        counted = {(run.state.processed, run.state.counts) for run in done}
        if len(counted) != 1:
            raise FloorMismatch(f"the {name} runs counted differently: {counted}")
    return {name: (runs([r.timing for r in done]), done) for name, done in found.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audience_push")
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("child", help="one run (used by the benchmark itself)")
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
        print(json.dumps(_child(args.path, args.audience, args.keep)))
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
        print(f"checked: both pushes equal apply_defaults at {args.check_size:,} Users")
        print(
            "| Users | runs | everyone: wall s | 10% spread (sales): wall s | ratio "
            "| 10% clustered (east): wall s | ratio | start: everyone / spread / clustered s "
            "| peak RSS MiB |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in (int(part) for part in args.sizes.split(",")):
            base = work / f"bench-{size}.db"
            tenant = grouped_tenant(size)
            prepare(tenant, base)
            del tenant
            results = bench(base, work, args.repeat)
            everyone = results["everyone"][0]
            spread, clustered = results["sales"][0], results["east"][0]
            members = {name: done[0].state.processed for name, (_, done) in results.items()}
            starts = [sorted(r.start for r in done)[len(done) // 2] for _, done in results.values()]
            rss = max(r.rss_kib for _, done in results.values() for r in done) / 1024
            print(
                f"| {size:,} | {args.repeat} | {everyone.wall:.2f} "
                f"| {spread.wall:.2f} ({members['sales']:,} Users) "
                f"| **{spread.wall / everyone.wall:.3f}** "
                f"| {clustered.wall:.2f} ({members['east']:,} Users) "
                f"| **{clustered.wall / everyone.wall:.3f}** "
                f"| {' / '.join(f'{t:.3f}' for t in starts)} | {rss:.0f} |",
                flush=True,
            )
            remove_db(base)


if __name__ == "__main__":
    main()
