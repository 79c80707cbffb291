"""A directory sync on SQLite: `LabelSync.sync_directory` against a raw-sqlite3 floor.

The host's roster differs from the stored tenant in 1% of its Users: 0.8%
updated (half a new email, half a mailbox refreshed without its last label,
whose selected id must leave the selection), 0.1% gone (``remove_missing``)
and 0.1% new. Both sides start from copies of one file labelsync wrote, run in
fresh child processes, interleaved, and get the roster as `User` values built
before the clock starts (the host's own work). Before any timing both sync a
smaller tenant and must leave files that labelsync reads back as equal tenants
(every User, its fields, selection, version and roster position order) and
report the same counts.

The floor (`floor_sync`) keeps the guarantees of `sync_directory`: batches of
1,000 host Users, each in one write transaction (``BEGIN IMMEDIATE``) that reads
the stored Users and writes them, so a killed run can be run again and
converges; the selection kept but for ids of labels a refreshed mailbox lost;
the version moved on for every changed User and only for them; new Users after
every roster position (after a running push's roster end) and onboarded when
the tenant onboards; removed Users deleted in batches, and kept for a running
push to skip (R14). What makes it fast: it compares the stored text of a User's
host-owned columns with the text of the host's User, building no `User` from a
row, and reads and writes each batch in one transaction instead of two.

    python -m benchmarks.sqlite_directory --users 1000000 --repeat 1 --doc
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from benchmarks import kept
from benchmarks.machine import load_average, this_machine
from benchmarks.sqlite_push import copy_db, peak_rss_kib, remove_db
from labelsync import LabelSync, Mailbox, Tenant, User
from labelsync.adapters._records import label_row, provenance_columns
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.model import SystemLabel
from labelsync.rules import apply_rows, onboarding_stamp
from labelsync.synthetic import synthetic_tenant

SEED = 1
BATCH = 1000
TENANT = "bench"
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
START, END = kept.markers("directory-sync")


# -- the tenant and the host's roster ------------------------------------------------------


def stored_tenant(users: int) -> Tenant:
    gc.disable()
    try:
        return synthetic_tenant(users, seed=SEED, tenant_id=TENANT, name="Bench Corp")
    finally:
        gc.enable()


def host_roster(tenant: Tenant) -> list[User]:
    """What the host's directory says of `tenant`: 1% of it differs (see the module)."""
    roster: list[User] = []
    for index, user in enumerate(tenant.users):
        kind = index % 1000
        if kind == 8 and index:  # gone (the admin, index 0, stays)
            continue
        if kind in (0, 1, 2, 3) or (kind in (4, 5, 6, 7) and user.mailbox is None):
            user = attrs.evolve(user, email=f"new.{user.email}")
        elif kind in (4, 5, 6, 7):
            assert user.mailbox is not None
            labels = user.mailbox.labels[:-1] if user.mailbox.labels else ()
            user = attrs.evolve(user, mailbox=attrs.evolve(user.mailbox, labels=labels))
        roster.append(user)
        if kind == 9:  # a newcomer
            box = user.mailbox
            email = f"joiner{index}@bench.test"
            mailbox = None if box is None else Mailbox(box.provider, email, box.labels)
            roster.append(User(id=f"joiner{index}", email=email, mailbox=mailbox))
    return roster


# -- the floor -------------------------------------------------------------------------------


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_COLD = """
    SELECT u.id, u.email, u.permissions, u.provider, u.address, u.mailbox_labels,
           u.other_synced, h.version, h.inbox_id, h.inbox_on, h.sent_id, h.sent_on
    FROM users AS u JOIN user_state AS h ON h.tenant_id = u.tenant_id AND h.position = u.position
    WHERE u.tenant_id = ? AND u.id IN ({})
"""


def _host_columns(user: User, layouts: dict[int, str]) -> tuple[object, ...]:
    """The stored text of `user`'s host-owned fields; a mailbox layout encoded once."""
    box = user.mailbox
    if box is None:
        provider = address = labels = None
    else:
        labels = layouts.get(id(box.labels))
        if labels is None:
            labels = layouts[id(box.labels)] = _json([label_row(lb) for lb in box.labels])
        provider, address = box.provider.value, box.address
    permissions = _json(sorted(p.value for p in user.permissions))
    return user.email, permissions, provider, address, labels


def _hot(ids: set[str], box: Mailbox | None) -> tuple[object, ...]:
    inbox_id = sent_id = None
    if box is not None:
        inbox_id, sent_id = box.label_id(SystemLabel.INBOX), box.label_id(SystemLabel.SENT)
    inbox_on = inbox_id is not None and inbox_id in ids
    sent_on = sent_id is not None and sent_id in ids
    others = sorted(ids.difference((inbox_id, sent_id)) if (inbox_on or sent_on) else ids)
    return box is not None, inbox_id, inbox_on, sent_id, sent_on, _json(others)


def floor_sync(path: Path, roster: Sequence[User], *, remove_missing: bool) -> tuple[int, ...]:
    """Reconcile the stored tenant with `roster` in raw SQL; the counts of each outcome."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    added = updated = unchanged = removed = 0
    layouts: dict[int, str] = {}
    try:
        seen = set()
        for index, item in enumerate(roster):  # checked whole first: bad input writes nothing
            given: object = item
            if not isinstance(given, User) or given.id in seen:
                raise ValueError(f"users[{index}]")
            seen.add(given.id)
        for start in range(0, len(roster), BATCH):
            batch = roster[start : start + BATCH]
            conn.execute("BEGIN IMMEDIATE")
            onboard, last_push = conn.execute(
                "SELECT onboard_new_users, last_push FROM tenants WHERE id = ?", (TENANT,)
            ).fetchone()
            stored: dict[str, tuple[Any, ...]] = {}
            for part in range(0, len(batch), 500):
                ids = [u.id for u in batch[part : part + 500]]
                sql = _COLD.format(", ".join("?" * len(ids)))
                stored.update((row[0], row) for row in conn.execute(sql, (TENANT, *ids)))
            cold_updates, hot_updates, adds = [], [], []
            for user in batch:
                row = stored.get(user.id)
                if row is None:
                    adds.append(user)
                    continue
                host = _host_columns(user, layouts)
                if host == row[1:6]:
                    unchanged += 1
                    continue
                version, inbox_id, inbox_on, sent_id, sent_on = row[7:12]
                selected = set(json.loads(row[6]))
                selected.update(i for i, on in ((inbox_id, inbox_on), (sent_id, sent_on)) if on)
                if row[5] is not None and user.mailbox is not None:  # a refresh: deleted go
                    old = {label[0] for label in json.loads(row[5])}
                    selected -= old - {label.id for label in user.mailbox.labels}
                has, inbox, inbox_on, sent, sent_on, others = _hot(selected, user.mailbox)
                hot_updates.append(
                    (version + 1, has, inbox, inbox_on, sent, sent_on, TENANT, user.id)
                )
                cold_updates.append((*host, others, TENANT, user.id))
                updated += 1
            conn.executemany(
                "UPDATE user_state SET version = ?, has_mailbox = ?, inbox_id = ?, inbox_on = ?,"
                " sent_id = ?, sent_on = ? WHERE tenant_id = ? AND id = ?",
                hot_updates,
            )
            conn.executemany(
                "UPDATE users SET email = ?, permissions = ?, provider = ?, address = ?,"
                " mailbox_labels = ?, other_synced = ? WHERE tenant_id = ? AND id = ?",
                cold_updates,
            )
            if adds:
                _floor_add(conn, adds, layouts, onboard and last_push)
                added += len(adds)
            conn.execute("COMMIT")
        if remove_missing:
            missing = [
                (user_id, position)
                for user_id, position in conn.execute(
                    "SELECT id, position FROM user_state WHERE tenant_id = ? ORDER BY position",
                    (TENANT,),
                )
                if user_id not in seen
            ]
            for start in range(0, len(missing), BATCH):
                removed += _floor_remove(conn, missing[start : start + BATCH])
    finally:
        conn.close()
    return added, updated, removed, unchanged


def _floor_add(
    conn: sqlite3.Connection, adds: list[User], layouts: dict[int, str], last_push: str | None
) -> None:
    if last_push:  # onboarding (B4): the last push's defaults, by the one rule
        from labelsync.adapters._records import record_from_doc

        record = record_from_doc(json.loads(last_push))
        assert record is not None
        # R15: onboarded labels are stamped ONBOARDING by the last push, now.
        stamp = onboarding_stamp(record.job_id, dt.datetime.now(dt.UTC))
        adds = apply_rows(adds, record.defaults, stamp=stamp)[0]
    (last,) = conn.execute(
        "SELECT max(COALESCE((SELECT MAX(position) FROM user_state WHERE tenant_id = :t), 0),"
        " COALESCE((SELECT j.roster_end FROM tenants AS t JOIN jobs AS j"
        " ON j.id = t.current_job_id WHERE t.id = :t), 0))",
        {"t": TENANT},
    ).fetchone()
    cold, hot = [], []
    for position, user in enumerate(adds, start=last + 1):
        has, inbox, inbox_on, sent, sent_on, others = _hot(set(user.synced.ids), user.mailbox)
        cold.append((TENANT, user.id, position, *_host_columns(user, layouts), others))
        hot.append(
            (
                TENANT,
                position,
                user.id,
                user.version,
                has,
                inbox,
                inbox_on,
                sent,
                sent_on,
                *provenance_columns(user.provenance),  # R15: who set it, whether covered
            )
        )
    conn.executemany(
        "INSERT INTO users (tenant_id, id, position, email, permissions, provider, address,"
        " mailbox_labels, other_synced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        cold,
    )
    conn.executemany(
        "INSERT INTO user_state (tenant_id, position, id, version, has_mailbox, inbox_id,"
        " inbox_on, sent_id, sent_on, covered, inbox_origin, inbox_job, inbox_at, sent_origin,"
        " sent_job, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        hot,
    )


def _floor_remove(conn: sqlite3.Connection, gone: list[tuple[str, int]]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    job = conn.execute(
        "SELECT j.id, j.status, j.cursor, j.roster_end FROM tenants AS t JOIN jobs AS j"
        " ON j.id = t.current_job_id WHERE t.id = ?",
        (TENANT,),
    ).fetchone()
    if job is not None and job[1] in ("PENDING", "RUNNING"):  # R14: the running push skips them
        conn.executemany(
            "INSERT INTO removed_users VALUES (?, ?, ?, ?)",
            [(TENANT, pos, user_id, job[0]) for user_id, pos in gone if job[2] < pos <= job[3]],
        )
    ids = [(TENANT, user_id) for user_id, _ in gone]
    conn.executemany("DELETE FROM user_state WHERE tenant_id = ? AND id = ?", ids)
    conn.executemany("DELETE FROM users WHERE tenant_id = ? AND id = ?", ids)
    conn.execute("COMMIT")
    return len(gone)


# -- one run, in a child process ---------------------------------------------------------------


def _child(impl: str, path: str, users: int) -> dict[str, object]:
    roster = host_roster(stored_tenant(users))  # the host's work, before the clock
    gc.collect()
    rss_before = peak_rss_kib()
    wall, cpu = time.perf_counter(), time.process_time()
    if impl == "labelsync":
        with SqliteStore(path) as store:
            report = LabelSync(store=store, clock=SystemClock()).sync_directory(
                TENANT, roster, remove_missing=True, batch_size=BATCH
            )
        counts = tuple(report.counts().values())
    else:
        counts = floor_sync(Path(path), roster, remove_missing=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_kib": peak_rss_kib(),
        "rss_before_kib": rss_before,
        "counts": list(counts),
    }


@attrs.frozen
class Run:
    impl: str
    wall: float
    cpu: float
    rss_kib: int
    rss_before_kib: int
    counts: tuple[int, ...]


def run_child(impl: str, base: Path, work: Path, users: int, *, keep: bool = False) -> Run:
    target = work / f"{impl}.db"
    remove_db(target)
    copy_db(base, target)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.sqlite_directory",
            "child",
            impl,
            str(target),
            str(users),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {impl} run failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not keep:
        remove_db(target)
    return Run(
        impl=impl,
        wall=float(report["wall"]),
        cpu=float(report["cpu"]),
        rss_kib=int(report["rss_kib"]),
        rss_before_kib=int(report["rss_before_kib"]),
        counts=tuple(report["counts"]),
    )


def prepare(users: int, path: Path) -> float:
    """A file of the synthetic tenant, written by labelsync (setup, not timed); its seconds."""
    remove_db(path)
    start = time.perf_counter()
    with SqliteStore(path) as store:
        LabelSync(store=store, clock=SystemClock()).create_tenant(stored_tenant(users))
    return time.perf_counter() - start


def check_same(users: int, work: Path) -> tuple[int, ...]:
    """Both sync a tenant of `users`; the files must read back as equal tenants (before timing)."""
    base = work / "check.db"
    prepare(users, base)
    ours = run_child("labelsync", base, work, users, keep=True)
    floor = run_child("floor", base, work, users, keep=True)
    with SqliteStore(work / "labelsync.db") as a, SqliteStore(work / "floor.db") as b:
        if a.get_tenant(TENANT) != b.get_tenant(TENANT) or ours.counts != floor.counts:
            raise RuntimeError("the floor and labelsync left different tenants or counts")
    for name in ("check.db", "labelsync.db", "floor.db"):
        remove_db(work / name)
    return ours.counts


@attrs.frozen
class Result:
    users: int
    repeat: int
    counts: tuple[int, ...]
    ours: tuple[Run, ...]
    floor: tuple[Run, ...]


def bench(users: int, repeat: int, work: Path) -> Result:
    """`repeat` runs of each, interleaved, on fresh copies of one prepared file."""
    base = work / f"base-{users}.db"
    print(f"preparing {users:,} Users ...", flush=True)
    prepare(users, base)
    ours: list[Run] = []
    floor: list[Run] = []
    for n in range(repeat):
        for impl, into in (("labelsync", ours), ("floor", floor))[:: 1 if n % 2 == 0 else -1]:
            run = run_child(impl, base, work, users)
            print(f"  {impl} {users:,}: {run.wall:.2f} s", flush=True)
            into.append(run)
    remove_db(base)
    counts = {run.counts for run in (*ours, *floor)}
    if len(counts) != 1:
        raise RuntimeError(f"runs counted differently: {counts}")
    return Result(users, repeat, counts.pop(), tuple(ours), tuple(floor))


# -- the report ------------------------------------------------------------------------------


def _machine() -> str:
    m = this_machine()
    return (
        f"{m.cpu}, {m.cores} cores, {m.memory_gb:.0f} GB, {m.python}, SQLite {m.sqlite}, "
        f"{m.system}, {m.date}"
    )


def section(results: Sequence[Result], check_users: int, command: str) -> str:
    rows = []
    for r in results:
        ours = statistics.median(run.wall for run in r.ours)
        floor = statistics.median(run.wall for run in r.floor)
        ours_cpu = statistics.median(run.cpu for run in r.ours)
        floor_cpu = statistics.median(run.cpu for run in r.floor)
        rss = max(run.rss_kib for run in r.ours) / 1024
        before = max(run.rss_before_kib for run in r.ours) / 1024
        floor_rss = max(run.rss_kib for run in r.floor) / 1024
        added, updated, removed, unchanged = r.counts
        rows.append(
            f"| {r.users:,} | {r.repeat} | {added:,} / {updated:,} / {removed:,} / {unchanged:,} "
            f"| {floor:.1f} / {ours:.1f} | {r.users / floor:,.0f} | {r.users / ours:,.0f} "
            f"| **{ours / floor:.2f}** | {ours_cpu / floor_cpu:.2f} "
            f"| {before:.0f} → {floor_rss:.0f} / {rss:.0f} MiB |"
        )
    return "\n".join(
        [
            START,
            "## Directory sync on SQLite",
            "",
            (
                "`LabelSync.sync_directory(tenant, roster, remove_missing=True)` "
                "(batches of 1,000) against a raw-sqlite3 floor "
                "(`benchmarks/sqlite_directory.py`). The host's roster differs in 1% of "
                "the Users: 0.8% updated (half a new email, half a mailbox refreshed "
                "without its last label), 0.1% gone, 0.1% new. Each run is a fresh "
                "process on a fresh copy of one file, labelsync and the floor "
                "interleaved; the roster is built as `User` values before the clock "
                "starts. Before any timing both synced a tenant of "
                f"{check_users:,} Users and left files that read back as equal "
                "tenants, with equal counts; every timed run counted the same."
            ),
            "",
            f"Machine: {_machine()}; load average when done: {load_average()}.",
            "",
            (
                "| Users | runs each | added / updated / removed / unchanged | wall s floor / "
                "labelsync | floor Users/s | labelsync Users/s | labelsync/floor (wall) | (CPU) "
                "| peak RSS: with the roster → floor / labelsync |"
            ),
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            (
                "The floor keeps every guarantee of the sync (see the module's docstring). "
                "labelsync pays for building each stored User of a batch as a value and comparing "
                "values, and for reading and writing a batch in two transactions (a read, then a "
                "compare-and-set), which lets a push or a User's edit run between them. Peak RSS "
                "is dominated by the host's roster itself; the sync holds one batch of stored "
                "Users at a time."
            ),
            "",
            "```sh",
            command,
            "```",
            END,
        ]
    )


def write_section(text: str, doc: Path = DOC) -> None:
    """Put the section into `doc`, replacing the one there, else before "## Reproduce"."""
    page = doc.read_text(encoding="utf-8")
    if START in page and END in page:
        head, rest = page.split(START, 1)
        page = head + text + rest.split(END, 1)[1]
    else:
        head, marker, tail = page.partition("## Reproduce")
        page = head + text + "\n\n" + marker + tail
    doc.write_text(page, encoding="utf-8")


def carry_section(old_page: str, new_page: str) -> str:
    """`new_page` (a report `python -m benchmarks` wrote) with this benchmark's section of
    `old_page` kept, before "## Reproduce": the full run does not measure the sync."""
    return kept.carry_one(old_page, new_page, "directory-sync")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "child":
        impl, path, users = args[1:4]
        print(json.dumps(_child(impl, path, int(users))))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sqlite_directory")
    parser.add_argument("--users", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--repeat", default="3,1", help="runs of each per size, comma-separated")
    parser.add_argument("--check-users", type=int, default=20_000)
    parser.add_argument("--doc", action="store_true", help=f"write the section into {DOC}")
    parsed = parser.parse_args(args)
    sizes = [int(s.replace("_", "")) for s in parsed.users.split(",")]
    repeats = [int(r) for r in parsed.repeat.split(",")]
    repeats += [repeats[-1]] * (len(sizes) - len(repeats))
    with tempfile.TemporaryDirectory(prefix="labelsync-directory-bench-") as scratch:
        work = Path(scratch)
        counts = check_same(parsed.check_users, work)
        print(f"checked at {parsed.check_users:,}: equal tenants, counts {counts}", flush=True)
        results = [bench(size, repeat, work) for size, repeat in zip(sizes, repeats, strict=False)]
    command = "python -m benchmarks.sqlite_directory " + " ".join(args)
    text = section(results, parsed.check_users, command.strip())
    print(text)
    if parsed.doc:
        write_section(text)


if __name__ == "__main__":
    main()
