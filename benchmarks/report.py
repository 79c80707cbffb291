"""The results as Markdown: printed to the terminal and written to ``docs/performance.md``."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from benchmarks.bench_postgres import PostgresBench
from benchmarks.bench_postgres import markdown as postgres_markdown
from benchmarks.core import CoreResult
from benchmarks.machine import Machine
from benchmarks.memory import MemoryResult
from benchmarks.policy_push import EVERY
from benchmarks.profiles import Profile
from benchmarks.sqlite_push import BATCH_SIZE, PushResult

# The targets of issue 10 (and those of issue 5 that still stand).
CORE_RATIO = 1.2
LINEAR = 1.3
MEMORY_SHARE = 0.05
TENANT_MEMORY = 1.5
PUSH_RATIO = 1.5
PUSH_AIM = 1.2
POSTGRES_RATIO = 1.5
TWO_WORKERS = 1.6
RSS_GROWTH = 1.2


@frozen
class Results:
    """Everything one benchmark run measured."""

    machine: Machine
    commit: str
    command: str
    core: tuple[CoreResult, ...]
    push: tuple[PushResult, ...]
    profiles: tuple[Profile, ...]
    tenant_memory: MemoryResult | None
    postgres: PostgresBench | None
    checked_users: int
    sections: tuple[tuple[str, float], ...]
    total_seconds: float
    cpu_seconds: float
    load_after: str
    keep_push: tuple[PushResult, ...] = ()
    """KEEP_USER_CHOICES pushes (R16), beside the floor that keeps User choices too."""


def _us(seconds: float, users: int) -> str:
    return f"{seconds / users * 1e6:.2f}"


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(results: Results) -> list[list[str]]:
    """One row per target of issue 5: what was asked, what was measured, met or not."""
    rows: list[list[str]] = []
    core = results.core
    if core:
        worst = max(core, key=lambda r: r.ratio)
        rows.append(
            [
                f"core: labelsync/floor <= {CORE_RATIO} at every size (CPU medians)",
                ", ".join(f"{r.ratio:.2f} at {r.users:,}" for r in core),
                _verdict(worst.ratio <= CORE_RATIO),
            ]
        )
        small, large = core[0], core[-1]
        if large.users > small.users:
            growth = (large.labelsync.cpu / large.users) / (small.labelsync.cpu / small.users)
            rows.append(
                [
                    f"core: per-User time at {large.users:,} <= {LINEAR}x that at {small.users:,}",
                    f"{growth:.2f}x",
                    _verdict(growth <= LINEAR),
                ]
            )
        shares = [(r.users, r.memory.share) for r in core if r.memory is not None]
        if shares:
            rows.append(
                [
                    f"core: a push changing 1% of Users adds <= {MEMORY_SHARE:.0%} of the input",
                    ", ".join(f"{share:.1%} at {users:,}" for users, share in shares),
                    _verdict(all(share <= MEMORY_SHARE for _, share in shares)),
                ]
            )
    if results.tenant_memory is not None:
        tm = results.tenant_memory
        rows.append(
            [
                f"a {tm.users:,}-User tenant in memory <= {TENANT_MEMORY}x the floor's dicts",
                (
                    f"{tm.ratio:.2f}x ({tm.labelsync_kib / 1024:,.0f} vs "
                    f"{tm.floor_kib / 1024:,.0f} MiB)"
                ),
                _verdict(tm.ratio <= TENANT_MEMORY),
            ]
        )
    if results.push:
        rows.append(
            [
                f"push on SQLite: labelsync/floor <= {PUSH_RATIO} (aim {PUSH_AIM}; wall medians)",
                ", ".join(f"{r.ratio:.2f} at {r.users:,}" for r in results.push),
                _verdict(all(r.ratio <= PUSH_RATIO for r in results.push)),
            ]
        )
        if len(results.push) > 1:
            small_push, large_push = results.push[0], results.push[-1]
            growth = large_push.labelsync_rss_kib / small_push.labelsync_rss_kib
            rows.append(
                [
                    (
                        f"push: peak RSS at {large_push.users:,} <= {RSS_GROWTH}x that at "
                        f"{small_push.users:,}"
                    ),
                    (
                        f"{growth:.2f}x ({large_push.labelsync_rss_kib / 1024:.0f} vs "
                        f"{small_push.labelsync_rss_kib / 1024:.0f} MiB)"
                    ),
                    _verdict(growth <= RSS_GROWTH),
                ]
            )
    pg = results.postgres
    if pg is not None and pg.skipped is None:
        rows.append(
            [
                (
                    f"push on PostgreSQL, one runner: labelsync/floor <= {POSTGRES_RATIO} "
                    f"at {pg.users:,} (wall medians)"
                ),
                f"{pg.ratio:.2f}",
                _verdict(pg.ratio <= POSTGRES_RATIO),
            ]
        )
        if any(run.workers == 1 for run in pg.runs) and any(run.workers == 2 for run in pg.runs):
            speedup = pg.median(1) / pg.median(2)
            rows.append(
                [
                    f"PostgreSQL: 2 workers >= {TWO_WORKERS}x one worker (2 cores)",
                    f"{speedup:.2f}x",
                    _verdict(speedup >= TWO_WORKERS),
                ]
            )
    return rows


def core_table(core: Sequence[CoreResult]) -> list[str]:
    """apply_defaults beside the floor, per size."""
    rows = [
        [
            f"{r.users:,}",
            str(len(r.labelsync)),
            f"{r.label_changes:,}",
            f"{r.floor.cpu:.3f}",
            f"{r.labelsync.cpu:.3f}",
            _us(r.floor.cpu, r.users),
            _us(r.labelsync.cpu, r.users),
            f"**{r.ratio:.2f}**",
            f"{r.floor.wall:.3f} / {r.labelsync.wall:.3f}",
            f"{_us(r.materialised.cpu, r.users)} ({_runs(len(r.materialised))})",
            (
                f"{_us(r.floor_gc_off.cpu, r.users)} / {_us(r.labelsync_gc_off.cpu, r.users)} "
                f"({r.ratio_gc_off:.2f})"
            ),
        ]
        for r in core
    ]
    head = [
        "Users",
        "runs",
        "label changes",
        "floor CPU s",
        "labelsync CPU s",
        "floor µs/User",
        "labelsync µs/User",
        "labelsync/floor",
        "wall s floor / labelsync",
        "+ `changes.changed` µs/User",
        "GC off, 1 run: floor / labelsync µs/User (ratio)",
    ]
    return _table(head, rows)


def memory_table(core: Sequence[CoreResult]) -> list[str]:
    """What a 1%-changing push adds beyond its input."""
    rows = [
        [
            f"{r.users:,}",
            _mb(r.memory.input_bytes),
            f"{r.memory.users_changed:,}",
            _mb(r.memory.new_tenant_bytes),
            f"**{r.memory.share:.2%}**",
            _mb(r.memory.changes_bytes),
        ]
        for r in core
        if r.memory is not None
    ]
    head = [
        "Users",
        "input (deep size)",
        "Users changed",
        "new_tenant adds (tracemalloc)",
        "share of input",
        "the Changes (tracemalloc)",
    ]
    return _table(head, rows)


def push_table(push: Sequence[PushResult]) -> list[str]:
    """run_push beside the narrow set-based floor, per size."""
    rows = [
        [
            f"{r.users:,}",
            str(len(r.labelsync)),
            f"{r.users / r.floor.wall:,.0f}",
            f"{r.users / r.labelsync.wall:,.0f}",
            f"**{r.ratio:.2f}**",
            f"{r.labelsync.cpu / r.floor.cpu:.2f}",
            f"{r.floor.wall:.1f} / {r.labelsync.wall:.1f}",
            f"{r.floor_rss_kib / 1024:.0f} / {r.labelsync_rss_kib / 1024:.0f} MiB",
            f"{r.baseline_rss_kib / 1024:.0f} MiB",
            f"{r.prepared.megabytes:,.0f} / {r.prepared.floor_megabytes:,.0f} MB",
        ]
        for r in push
    ]
    head = [
        "Users",
        "runs each",
        "floor Users/s",
        "labelsync Users/s",
        "labelsync/floor (wall)",
        "(CPU)",
        "wall s floor / labelsync",
        "peak RSS floor / labelsync",
        "RSS before the job",
        "file labelsync / floor",
    ]
    return _table(head, rows)


def profile_lines(profile: Profile) -> list[str]:
    """One profile: its top functions by own time."""
    lines = [f"**{profile.title}** ({profile.seconds:.2f} s sampled)"]
    if profile.gc_share is not None:
        lines[0] += f"; the cyclic garbage collector takes {profile.gc_share:.0%} of its CPU time"
    lines.append("")
    if profile.phases:
        lines += _table(
            ["where the time goes (callees included)", "share"],
            [[label, f"{share:.0%}"] for label, share in profile.phases],
        )
        lines.append("")
    rows = [
        [f"`{spot.function}`", f"`{spot.where}`", f"{spot.share:.0%}"] for spot in profile.hotspots
    ]
    lines += _table(["function", "where", "own time"], rows)
    return lines


def tenant_memory_table(result: MemoryResult) -> list[str]:
    """labelsync's tenant beside the floor's dicts of the same Users."""
    return _table(
        [
            "Users",
            "labelsync tenant",
            "floor dicts",
            "labelsync bytes/User",
            "floor bytes/User",
            "labelsync/floor",
        ],
        [
            [
                f"{result.users:,}",
                f"{result.labelsync_kib / 1024:,.0f} MiB",
                f"{result.floor_kib / 1024:,.0f} MiB",
                f"{result.per_user(result.labelsync_kib):,.0f}",
                f"{result.per_user(result.floor_kib):,.0f}",
                f"**{result.ratio:.2f}**",
            ]
        ],
    )


def markdown(results: Results) -> str:
    """The whole report."""
    m = results.machine
    out = [
        "# Performance",
        "",
        "Generated by `python -m benchmarks` (`nox -s bench`); do not edit by hand, rerun it.",
        "Every labelsync figure stands beside a *floor*: the fastest code we could write that",
        "does the same work on the same data with the same guarantees, in `benchmarks/`.",
        "Before any timing, each floor must reach the same result as labelsync.",
        "",
        "## Machine",
        "",
        f"- CPU: {m.cpu}, {m.cores} cores, {m.memory_gb} GB RAM; {m.system}",
        f"- {m.python}, SQLite {m.sqlite}",
        f"- {m.date}; labelsync at commit `{results.commit}`",
        f"- load average (1 min) at start {m.load}, at end {results.load_after}: the host is",
        "  shared, so wall-clock times carry other work; CPU times (`time.process_time`) less so",
        f"- command: `{results.command}`",
        (
            f"- the whole run took {results.total_seconds / 60:.1f} min wall-clock, "
            f"{results.cpu_seconds / 60:.1f} min of CPU (this process and its children)"
        ),
        "",
        "## Targets",
        "",
        *_table(["target", "measured", ""], targets(results)),
        "",
    ]
    if results.core:
        out += [
            "## Core: `apply_defaults` against the floor",
            "",
            "Both push `Defaults(inbox=True, sent=True)` to the same synthetic tenant",
            "(`labelsync.synthetic`, seed 1), interleaved, alternating which goes first, with the",
            "garbage collector on, as in a notebook. The floor (`benchmarks/core.py`) is the rule",
            "written plainly over dicts: a loop, a set copy for a User whose selection changes,",
            "changes and skips as tuples. Medians; the ratio is of CPU medians",
            "(`time.process_time`), wall-clock medians beside them. Before any timing the",
            "benchmark asserts that both leave every User with the same selection and version",
            "and report the same changes and skips. The `changes.changed` column times",
            "`apply_defaults` plus building the `LabelChange` records (the rule emits tuples).",
            "",
            *core_table(results.core),
            "",
            "### What a what-if adds",
            "",
            "The input is a tenant already pushed once, after which every 100th User deselected",
            "INBOX, so pushing again changes about 1% of Users. *Input* is everything the tenant",
            "reaches (`gc.get_referents`, each object once); *new_tenant adds* is what tracemalloc",
            "sees allocated by `apply_defaults` and still held by the new tenant once the",
            "`Changes` are dropped. Unchanged Users are the same objects.",
            "",
            *memory_table(results.core),
            "",
        ]
    if results.tenant_memory is not None:
        out += [
            "## A tenant in memory",
            "",
            "A host builds a tenant from its own data, every value parsed afresh.",
            "`benchmarks/memory.py` does the same: each synthetic User rebuilt through the",
            "public constructors (`Label`, `Mailbox`, `LabelSet`, `User`, one `Tenant`) from",
            "fresh copies of its strings. The floor holds the same Users as the core floor's",
            "dicts (id, a role -> label id dict, the selection as a frozenset, the version),",
            "built from the same fresh strings. Each is built in its own fresh process and",
            "measured as the growth of its resident set after a full collection.",
            "",
            *tenant_memory_table(results.tenant_memory),
            "",
        ]
    if results.push:
        out += [
            "## Push job on SQLite",
            "",
            f"`LabelSync.run_push(job_id, batch_size={BATCH_SIZE})` on `SqliteStore` against",
            "the floor in `benchmarks/sqlite_floor.py`, the fastest push we could write that",
            "keeps every guarantee of labelsync's:",
            "",
            "- one write transaction per batch of 500 roster Users, fenced: it checks first that",
            "  the job is still its tenant's current, unfinished job;",
            "- the checkpoint (cursor, processed, counts) moved in the same transaction, so a",
            "  crash resumes after the last committed batch;",
            "- a row per label change and per skip, with foreign keys on (to the job, the User);",
            "- the roster fixed at the start (the job's last roster position);",
            "- WAL and `synchronous = FULL`; finishing writes the audit record and checkboxes.",
            "",
            "It keeps the hot state narrow, one row per User with its version, the ids of the",
            "labels holding INBOX/SENT and whether each is selected (the other selected ids sit",
            "in a cold table a push never touches), and decides each batch in SQL, set-based:",
            "three `INSERT ... SELECT` for the skips, two for the changes, one `UPDATE` of the",
            "changed Users, one of the checkpoint.",
            "",
            "Both files hold the same tenant and a started push (labelsync's written through",
            "`LabelSync.create_tenant` and `start_push`, not timed). Each run is a fresh child",
            "process on a fresh copy; peak RSS is that child's VmHWM (`/proc/self/status`).",
            f"Before any timing both push a {results.checked_users:,}-User tenant and must leave",
            "every User with the same selection, version and provenance (who set Inbox and",
            "Sent, read through `LabelSync.tenant`) and the same counts of changes and skips;",
            "every timed run must count the same. Like labelsync, the floor records each flipped",
            "label's provenance (origin, job, time) and marks every reached User covered (R15).",
            "",
            *push_table(results.push),
            "",
        ]
    if results.keep_push:
        out += [
            "### A KEEP_USER_CHOICES push (R16)",
            "",
            f"The same push in mode `KEEP_USER_CHOICES`, with every {EVERY}th User having set",
            "Inbox and Sent themselves (origin USER): labelsync and the floor both leave those",
            "labels, one `USER_CHOICE_KEPT` skip row each, and must agree User by User first.",
            "Standalone: `python -m benchmarks.policy_push --users 100000 --repeat 5`.",
            "",
            *push_table(results.keep_push),
            "",
        ]
    if results.postgres is not None:
        out += [postgres_markdown(results.postgres).rstrip(), ""]
        if results.postgres.skipped is None:
            out += [
                "The floor (`benchmarks/postgres_floor.py`) keeps the same guarantees as the",
                "SQLite one, the job row locked `FOR UPDATE` as the fence, and writes each batch",
                "with one statement: data-modifying CTEs insert the skips and changes and",
                "`UPDATE ... FROM` the batch's changed Users, and move the checkpoint.",
                "",
            ]
    if results.profiles:
        out += [
            "## Where the time goes",
            "",
            "pyinstrument, 1 ms sampling, one run each in the benchmark process. *Own time* is",
            "time in the function's own code, not in what it calls.",
            "",
        ]
        for profile in results.profiles:
            out += [*profile_lines(profile), ""]
        out += [ANALYSIS.rstrip(), ""]
    out += [
        "## Reproduce",
        "",
        "```sh",
        'eval "$(bash scripts/postgres-test-server.sh start)"   # for the PostgreSQL section',
        "nox -s bench                                    # the run above",
        "python -m benchmarks --quick                    # a few minutes, writes nothing",
        "python -m benchmarks.bench_postgres --users 100000 --repeat 3",
        "```",
        "",
        "Sections of this run (seconds): "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in results.sections)
        + ".",
        "",
    ]
    return "\n".join(out)


ANALYSIS = """\
### Reading the numbers

- **Core.** The rule is one loop (`rules.apply_rows`) written out for INBOX and SENT.
  A User whose selection changes costs a copy of the `User` (its fields set without
  running `__init__` again: they come from a valid User) and, once per distinct
  selection and flip, a new `LabelSet`: Users who had the same selection and flip
  the same labels share the new one. That sharing pays on rosters whose Users look
  alike, as the synthetic one does and as Gmail and IMAP mailboxes do (their role ids
  are names such as `INBOX`); Microsoft Graph ids differ per mailbox, and there it
  saves nothing.
- **The garbage collector.** A first push changes about 80% of the Users, each a new
  object. Left on, Python's cyclic collector then runs full collections that walk
  every object in the process, the whole roster included. From 50,000 Users on,
  `apply_defaults` pauses it for the loop (it builds only immutable, acyclic values),
  counted under a lock so overlapping what-ifs in several threads end with the
  collector as they found it; the one young collection that runs when it is turned
  back on shows as `__exit__` in the profile. Below 50,000 Users, and in a push
  (batches of 500), pausing does not pay, and labelsync leaves the collector alone:
  it belongs to the whole process, request threads included. The floor keeps it on,
  so from 100,000 Users its time includes those full collections; the "GC off"
  column (one run each) compares both without them.
- **A tenant in memory.** Mailboxes whose labels are equal share one validated tuple
  of them (and so the `Label` values), and Users with equal permissions share one
  set: a tenant built from outside data keeps one copy of each distinct mailbox
  layout, not one per User. Measured the same way at commit 7d8406c, before this
  sharing, 100,000 Users took 4,340 bytes each against the floor's 878 (4.9 times).
- **Push on SQLite.** labelsync's push now decides each batch in SQL over a narrow
  hot table too (`user_state`), so the profile above finds almost all of its time
  inside SQLite. What it does that the floor does not: its change and skip rows carry
  the User's id and tenant as text with a foreign key to the Users' `(tenant_id, id)`
  key (the floor keys them by the integer roster position), the hot table is keyed by
  `(tenant_id, position)` with a second unique index on the User id (the floor's by
  the rowid), and the job is read and written whole around each batch. Each costs a
  little per row and per commit; together they are the gap in the table, larger in
  wall-clock than in CPU time because the wider rows mean more pages to write and
  flush per commit.
- **When the push slows as it goes.** If labelsync's Users per second fall from
  100,000 to 1,000,000 Users while the floor's do not, the time per batch grows with
  the job. In the run above that comes from saving the job after each batch with an
  `UPDATE` that also sets the job's `id` (to the same value): with foreign keys on,
  SQLite then visits every change and skip row that references the job, so each
  batch costs more than the one before. Measured apart, on 500,000 child rows,
  such an update took 128 ms against 0.02 ms for one that leaves the key column out.
- **Push on PostgreSQL.** Both lock the batch's Users and decide it set-based; the
  floor sends one statement per batch, labelsync a few (fence, job, lock, batch,
  checkpoint), one round trip each.
- **Peak RSS** of the push is flat from 100,000 to 1,000,000 Users: the job streams
  batches of 500 and keeps nothing between them but the job.
- **Workers on this host.** Two cores run the workers and the PostgreSQL server
  together, and the host is shared with other work (see the load average), so more
  workers than cores cannot add speed and the worker runs (one each) are noisy.
"""
