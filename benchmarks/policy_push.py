"""A KEEP_USER_CHOICES push on SQLite (R16) against the raw-sqlite3 floor that keeps the same.

``python -m benchmarks.policy_push --users 100000 --repeat 3`` builds a synthetic
tenant, lets every `EVERY`-th User choose Inbox and Sent themselves (origin USER,
as `set_selection` records it), and starts a KEEP_USER_CHOICES push of Inbox on,
Sent off in labelsync's file and in the floor's. Before any timing both run once
and must leave every User alike — selection, version and provenance (R15) — and
count the same changes, skips and kept labels; then they run interleaved, each
in a fresh process on a fresh copy (`benchmarks.sqlite_push`), and the medians
are printed as one Markdown table row per size and mode (the same tenant is
pushed in OVERRIDE too, for the cost of keeping choices).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import attrs

from benchmarks.sqlite_push import bench_push, check_same, discard, prepare
from labelsync import Defaults, Origin, PushMode, Tenant
from labelsync.policy import LabelOrigin, Provenance
from labelsync.synthetic import synthetic_tenant

__all__ = ["EVERY", "MIXED", "main", "with_user_choices"]

EVERY = 5
"""Every fifth User has set Inbox and Sent themselves."""
MIXED = Defaults(inbox=True, sent=False)
"""Inbox checked, Sent unchecked: the push both selects and deselects, and keeps."""

_CHOSEN = LabelOrigin(origin=Origin.USER, at=dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC))


def with_user_choices(tenant: Tenant, every: int = EVERY) -> Tenant:
    """`tenant` with every `every`-th User's Inbox and Sent set by the User themself (R15)."""
    mine = Provenance(inbox=_CHOSEN, sent=_CHOSEN, covered=True)
    return tenant.with_users(
        attrs.evolve(user, provenance=mine) if index % every == 0 else user
        for index, user in enumerate(tenant.users)
    )


def main(argv: list[str] | None = None) -> None:
    """Time the KEEP_USER_CHOICES push against the floor and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policy_push")
    parser.add_argument("--users", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print("| Users | mode | floor (s) | labelsync (s) | labelsync/floor (wall) | labels kept |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        check = prepare(
            with_user_choices(synthetic_tenant(3_000, seed=7, tenant_id="bench")),
            work / "check.db",
            MIXED,
            PushMode.KEEP_USER_CHOICES,
        )
        check_same(check, work)
        discard(check)
        for users in args.users:
            tenant = with_user_choices(synthetic_tenant(users, seed=7, tenant_id="bench"))
            # The same tenant pushed in both modes, for the cost of keeping choices.
            for mode in (PushMode.OVERRIDE, PushMode.KEEP_USER_CHOICES):
                prepared = prepare(tenant, work / "keep.db", MIXED, mode)
                kept = check_same(prepared, work).kept
                result = bench_push(prepared, work=work, repeat=args.repeat)
                print(
                    f"| {users:,} | {mode.name} | {result.floor.wall:.2f} "
                    f"| {result.labelsync.wall:.2f} | {result.ratio:.2f} | {kept:,} |",
                    flush=True,
                )
                discard(prepared)


if __name__ == "__main__":
    main()
