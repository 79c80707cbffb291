"""``python -m benchmarks``: run every benchmark, print the tables, write docs/performance.md."""

from __future__ import annotations

import argparse
import gc
import hashlib
import pickle
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from benchmarks import kept
from benchmarks.bench_postgres import PostgresBench, bench_postgres
from benchmarks.core import DEFAULTS, CoreResult, bench_core
from benchmarks.machine import load_average, this_machine
from benchmarks.memory import MemoryResult, bench_memory
from benchmarks.policy_push import with_user_choices
from benchmarks.profiles import Profile, profile_core, profile_push
from benchmarks.report import Results, markdown
from benchmarks.sqlite_push import (
    Prepared,
    PushResult,
    bench_push,
    check_same,
    discard,
    prepare,
)
from labelsync import PushMode, Tenant
from labelsync.synthetic import synthetic_tenant

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
SEED = 1
LARGE = 1_000_000  # from this size on, the push runs --large-push-repeat times
PRECHECK_USERS = 20_000
PROFILE_CORE_USERS = 100_000
PROFILE_PUSH_USERS = 20_000


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of sizes"
        ) from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be >= 1")
    return sizes


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="labelsync against its floors: the core, a tenant in memory, the push job"
        " on SQLite and on PostgreSQL.",
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=None, help="core sizes (default 10000,100000,1000000)"
    )
    parser.add_argument(
        "--push-sizes", type=_sizes, default=None, help="push sizes (default 100000,1000000)"
    )
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=5,
        help=f"core runs of each below {LARGE:,} Users, times 100,000/size, at most 25 (default 5)",
    )
    parser.add_argument(
        "--large-repeat",
        type=_positive,
        default=3,
        help=f"core runs of each from {LARGE:,} Users on (default 3: the budget of 10 minutes)",
    )
    parser.add_argument(
        "--push-repeat",
        type=_positive,
        default=3,
        help=f"push runs of each below {LARGE:,} Users (default 3)",
    )
    parser.add_argument(
        "--large-push-repeat",
        type=_positive,
        default=1,
        help=f"push runs of each from {LARGE:,} Users on (default 1)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and 3 runs, for a try-out; writes no file unless --out is given",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument runs")
    parser.add_argument(
        "--save", type=Path, default=None, help="also pickle the raw results to this file"
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="PICKLE",
        help="measure nothing: render the report again from results saved with --save",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"where to write the report (default {DOC})"
    )
    parser.add_argument(
        "--postgres-users",
        type=int,
        default=None,
        metavar="N",
        help="Users for the PostgreSQL run of 1, 2 and 4 workers (default 100,000; 0 skips it;"
        " needs LABELSYNC_POSTGRES_DSN, see scripts/postgres-test-server.sh)",
    )
    parser.add_argument(
        "--postgres-repeat",
        type=_positive,
        default=3,
        help="PostgreSQL runs of the single runner and of the floor, interleaved (default 3)",
    )
    parser.add_argument(
        "--memory-users",
        type=int,
        default=None,
        metavar="N",
        help="Users of the tenant-in-memory benchmark (default 1,000,000; 0 skips it)",
    )
    args = parser.parse_args(argv)
    if args.memory_users is None:
        args.memory_users = 100_000 if args.quick else 1_000_000
    if args.quick:
        args.sizes = args.sizes or [10_000, 50_000]
        args.push_sizes = args.push_sizes or [10_000, 50_000]
        args.repeat = min(args.repeat, 3)
        args.push_repeat = min(args.push_repeat, 3)
    else:
        args.out = args.out or DOC
    if args.postgres_users is None:
        args.postgres_users = 0 if args.quick else 100_000
    args.sizes = args.sizes if args.sizes is not None else [10_000, 100_000, 1_000_000]
    args.push_sizes = args.push_sizes if args.push_sizes is not None else [100_000, 1_000_000]
    return args


class Clock:
    """Names and times the sections of the run, and says what it is doing."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.sections: list[tuple[str, float]] = []

    def section(self, name: str, call: Callable[[], T]) -> T:
        """Run `call` as the section `name`."""
        print(f"[{time.perf_counter() - self.start:6.0f} s] {name} ...", flush=True)
        start = time.perf_counter()
        result = call()
        self.sections.append((name, time.perf_counter() - start))
        return result


def _tenant(users: int) -> Tenant:
    # Setup, not measured: the collector off while a million long-lived values are built.
    gc.disable()
    try:
        return synthetic_tenant(users, seed=SEED, tenant_id="bench", name="Bench Corp")
    finally:
        gc.enable()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def _commit() -> str:
    """HEAD, marked when src/ has uncommitted changes."""
    dirty = _git("status", "--porcelain", "--", "src")
    return _git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in src" if dirty else "")


def _source() -> str:
    """A hash of the library's code as it is on disk, to notice a change during the run."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks the options ask for, print the report and write it."""
    args = parse(argv)
    if args.render is not None:
        with args.render.open("rb") as saved:
            results = pickle.load(saved)  # a file this command wrote
        _write(markdown(results), args.out)
        return
    machine = this_machine()
    commit, source = _commit(), _source()
    clock = Clock()
    core: list[CoreResult] = []
    prepared: list[Prepared] = []
    keep_prepared: list[Prepared] = []
    profiles: list[Profile] = []
    with tempfile.TemporaryDirectory(prefix="labelsync-bench-") as scratch:
        work = Path(scratch)
        # Each size is generated once and serves the core and the push's file.
        for size in sorted(set(args.sizes) | set(args.push_sizes)):
            tenant = clock.section(f"generate {size:,} Users", partial(_tenant, size))
            if size in args.sizes:
                result = clock.section(
                    f"core at {size:,}",
                    partial(
                        bench_core,
                        tenant,
                        repeat=_core_repeat(size, args.repeat, args.large_repeat),
                        materialise=min(args.repeat, 3 if size < LARGE else 1),
                        # tracemalloc slows a run several times over; the share it measures
                        # is the same at every size, so a million Users skip it.
                        memory=size < LARGE,
                    ),
                )
                core.append(result)
                _print_core(result)
            if not args.no_profile and size == _profile_size(args.sizes):
                profiles += clock.section(
                    f"profile the core at {size:,}", partial(profile_core, tenant)
                )
            if size in args.push_sizes:
                prepared.append(
                    clock.section(
                        f"write the SQLite file of {size:,}",
                        partial(prepare, tenant, work / f"base-{size}.db", DEFAULTS),
                    )
                )
                if size == min(args.push_sizes):
                    keep_prepared.append(
                        clock.section(
                            f"write the SQLite file of {size:,} for KEEP_USER_CHOICES",
                            partial(
                                prepare,
                                with_user_choices(tenant),
                                work / f"keep-{size}.db",
                                DEFAULTS,
                                PushMode.KEEP_USER_CHOICES,
                            ),
                        )
                    )
            del tenant
            gc.collect()
        push: list[PushResult] = []
        if prepared:
            small = clock.section(
                f"write the SQLite files of {PRECHECK_USERS:,}",
                partial(prepare, _tenant(PRECHECK_USERS), work / "precheck.db", DEFAULTS),
            )
            clock.section(
                f"check labelsync == floor on SQLite at {PRECHECK_USERS:,}",
                partial(check_same, small, work),
            )
            discard(small)
        for base in prepared:
            repeat = args.large_push_repeat if base.users >= LARGE else args.push_repeat
            result_push = clock.section(
                f"push at {base.users:,}", partial(bench_push, base, work=work, repeat=repeat)
            )
            push.append(result_push)
            _print_push(result_push)
            discard(base)
        keep_push: list[PushResult] = []
        for base in keep_prepared:
            clock.section(
                f"check labelsync == floor, KEEP_USER_CHOICES at {base.users:,}",
                partial(check_same, base, work),
            )
            result_keep = clock.section(
                f"KEEP_USER_CHOICES push at {base.users:,}",
                partial(bench_push, base, work=work, repeat=args.push_repeat),
            )
            keep_push.append(result_keep)
            _print_push(result_keep)
            discard(base)
        if prepared and not args.no_profile:
            profiles.append(
                clock.section(
                    f"profile the push at {PROFILE_PUSH_USERS:,}",
                    partial(profile_push, _tenant(PROFILE_PUSH_USERS), work),
                )
            )
    tenant_memory: MemoryResult | None = None
    if args.memory_users > 0:
        tenant_memory = clock.section(
            f"a tenant of {args.memory_users:,} Users in memory",
            partial(bench_memory, args.memory_users),
        )
        print(
            f"    labelsync {tenant_memory.labelsync_kib / 1024:,.0f} MiB, floor "
            f"{tenant_memory.floor_kib / 1024:,.0f} MiB (ratio {tenant_memory.ratio:.2f})",
            flush=True,
        )
    postgres: PostgresBench | None = None
    if args.postgres_users > 0:
        postgres = clock.section(
            f"PostgreSQL at {args.postgres_users:,}",
            partial(bench_postgres, args.postgres_users, (1, 2, 4), repeat=args.postgres_repeat),
        )
    results = Results(
        machine=machine,
        commit=commit if _source() == source else f"{commit}, but src/ changed during the run",
        command="python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:]),
        core=tuple(core),
        push=tuple(push),
        profiles=tuple(profiles),
        tenant_memory=tenant_memory,
        postgres=postgres,
        checked_users=PRECHECK_USERS,
        sections=tuple(clock.sections),
        total_seconds=time.perf_counter() - clock.start,
        cpu_seconds=_cpu_seconds(),
        load_after=load_average(),
        keep_push=tuple(keep_push),
    )
    if args.save is not None:
        with args.save.open("wb") as saved:
            pickle.dump(results, saved)
    _write(markdown(results), args.out)


def _write(text: str, out: Path | None) -> None:
    print()
    print(text)
    if out is not None:
        kept.write_page(text, out)  # keeps the sections measured on their own (kept.KEPT)
        print(f"written to {out}")


def _core_repeat(size: int, repeat: int, large_repeat: int) -> int:
    """Runs at one core size: small sizes get more (a run of 10,000 takes a few tens of
    milliseconds, at the mercy of any hiccup), a million fewer, for the time budget."""
    if size >= LARGE:
        return large_repeat
    return min(25, repeat * max(1, 100_000 // size))


def _cpu_seconds() -> float:
    """CPU time of this process and every child it waited for, user plus system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _profile_size(sizes: list[int]) -> int:
    """The core size profiled: 100,000 if measured, else the largest below it, else the smallest."""
    below = [size for size in sizes if size <= PROFILE_CORE_USERS]
    return max(below) if below else min(sizes)


def _print_core(result: CoreResult) -> None:
    print(
        f"    floor {result.floor.cpu:.3f} s, labelsync {result.labelsync.cpu:.3f} s CPU "
        f"(ratio {result.ratio:.2f}), memory share "
        + (f"{result.memory.share:.2%}" if result.memory else "n/a"),
        flush=True,
    )


def _print_push(result: PushResult) -> None:
    print(
        f"    floor {result.users / result.floor.wall:,.0f} Users/s, labelsync "
        f"{result.users / result.labelsync.wall:,.0f} Users/s (ratio {result.ratio:.2f}), "
        f"peak RSS {result.labelsync_rss_kib / 1024:.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
