"""The directory benchmark's floor ends where `sync_directory` ends, so its timings compare
like with like; and the push floor keeps R14's guarantee."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import attrs
import pytest
from benchmarks import sqlite_floor
from benchmarks.sqlite_directory import (
    BATCH,
    END,
    START,
    TENANT,
    carry_section,
    floor_sync,
    host_roster,
    prepare,
    stored_tenant,
)
from benchmarks.sqlite_push import FLOOR_JOB

from labelsync import Defaults, LabelSync, Origin, SystemLabel, Tenant, User
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.synthetic import ADMIN_ID, synthetic_tenant


def untimed(tenant: Tenant) -> Tenant:
    """`tenant` without the times of its onboarding stamps (R15): the two runs onboard the
    same Users with the same origin and push, each at its own clock's time."""

    def untimed_user(user: User) -> User:
        provenance = user.provenance
        for label in SystemLabel:
            origin = provenance.of(label)
            if origin.origin is Origin.ONBOARDING:
                provenance = provenance.setting(label, attrs.evolve(origin, at=None))
        return attrs.evolve(user, provenance=provenance)

    return attrs.evolve(tenant, users=[untimed_user(user) for user in tenant.users])


def removed_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT * FROM removed_users").fetchall())


@pytest.mark.parametrize("onboarding_and_a_running_push", [False, True])
def test_the_directory_floor_leaves_the_tenant_sync_directory_leaves(
    tmp_path: Path, onboarding_and_a_running_push: bool
) -> None:
    """R13, R14, B4: same Users, fields, selections, versions, positions, removed-User rows."""
    base = tmp_path / "base.db"
    prepare(3_000, base)
    if onboarding_and_a_running_push:
        with SqliteStore(base) as store:
            svc = LabelSync(store=store, clock=SystemClock())
            svc.push(TENANT, actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=False))
            svc.set_onboarding(TENANT, actor_id=ADMIN_ID, enabled=True)
            svc.start_push(TENANT, actor_id=ADMIN_ID, defaults=Defaults(inbox=False, sent=True))
    ours, floor = tmp_path / "ours.db", tmp_path / "floor.db"
    shutil.copyfile(base, ours)
    shutil.copyfile(base, floor)
    roster = host_roster(stored_tenant(3_000))

    with SqliteStore(ours) as store:
        report = LabelSync(store=store, clock=SystemClock()).sync_directory(
            TENANT, roster, remove_missing=True, batch_size=BATCH
        )
    counts = floor_sync(floor, roster, remove_missing=True)

    assert tuple(report.counts().values()) == counts
    assert (3, 24, 3) == counts[:3]
    with SqliteStore(ours) as a, SqliteStore(floor) as b:
        assert untimed(a.get_tenant(TENANT)) == untimed(b.get_tenant(TENANT))
        onboarded = [
            user.id
            for user in b.get_tenant(TENANT).users
            if user.provenance.inbox.origin is Origin.ONBOARDING
        ]
        assert onboarding_and_a_running_push == bool(onboarded)  # the times were compared out
    assert removed_rows(ours) == removed_rows(floor)
    assert (3 if onboarding_and_a_running_push else 0) == len(removed_rows(floor))


def test_the_push_floor_skips_a_removed_user_and_writes_nothing_for_them(tmp_path: Path) -> None:
    """R14 in the floor: the removed entry is handled, skipped as USER_REMOVED, counted."""
    path = tmp_path / "floor.db"
    sqlite_floor.write_tenant(
        path, synthetic_tenant(30, seed=5, tenant_id="bench"), FLOOR_JOB, Defaults(True, True)
    )
    conn = sqlite_floor.connect(path)
    try:
        pos, user_id = conn.execute("SELECT pos, id FROM users WHERE pos = 7").fetchone()
        conn.execute("DELETE FROM cold WHERE pos = ?", (pos,))
        conn.execute("DELETE FROM users WHERE pos = ?", (pos,))
        conn.execute("INSERT INTO removed VALUES (?, ?, ?)", (pos, FLOOR_JOB, user_id))
        sqlite_floor.push(conn, FLOOR_JOB, 4, "2024-05-01T00:00:00+00:00")
        skips = conn.execute(
            "SELECT user_pos FROM job_skips WHERE reason = 'USER_REMOVED'"
        ).fetchall()
        processed, removed = conn.execute("SELECT processed, user_removed FROM jobs").fetchone()
    finally:
        conn.close()
    assert ([(7,)], 30, 1) == (skips, processed, removed)


def test_the_full_benchmark_run_keeps_the_directory_section() -> None:
    old = f"# P\n{START}\n## Directory sync\nnumbers\n{END}\n\n## Reproduce\nold"
    new = "# P\n## Push\n## Reproduce\nnew"

    kept = carry_section(old, new)

    assert f"# P\n## Push\n{START}\n## Directory sync\nnumbers\n{END}\n\n## Reproduce\nnew" == kept
    assert new == carry_section("# P without the section", new)
