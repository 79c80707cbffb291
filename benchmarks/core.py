"""The pure core: `apply_defaults` against a floor over plain dicts and sets, and its memory.

The floor is the simplest correct implementation of the push rule (R3, R4, R5,
R7): a loop over dicts, a set copy for a User whose selection changes, the
changes and skips reported as tuples. It gets the same Users, converted once
(role -> label id looked up beforehand, as a `Mailbox` does at construction).
"""

from __future__ import annotations

import enum
import gc
import sys
import tracemalloc
from collections.abc import Callable, Iterable
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import TypedDict

from attrs import frozen

from benchmarks.timing import Runs, Timing, runs, timed
from labelsync import Defaults, SystemLabel, Tenant, User, apply_defaults

DEFAULTS = Defaults(inbox=True, sent=True)
"""What every benchmark pushes: both boxes checked, the usual first push of a tenant."""


class FloorUser(TypedDict):
    """A User as the floor sees it."""

    id: str
    roles: dict[str, str] | None  # "INBOX"/"SENT" -> label id; None: no mailbox
    synced: frozenset[str]
    version: int


FloorChange = tuple[str, str, str, bool]  # user id, role, label id, selected
FloorSkip = tuple[str, str | None, str]  # user id, role or None, reason


def to_floor(users: Iterable[User]) -> list[FloorUser]:
    """Convert labelsync Users to the floor's dicts (done once, never timed)."""
    floor: list[FloorUser] = []
    for user in users:
        roles = None
        if user.mailbox is not None:
            roles = {
                label.system.value: label.id
                for label in user.mailbox.labels
                if label.system is not None
            }
        floor.append(
            FloorUser(id=user.id, roles=roles, synced=user.synced.ids, version=user.version)
        )
    return floor


def floor_apply(
    users: list[FloorUser], checked: dict[str, bool]
) -> tuple[list[FloorUser], list[FloorChange], list[FloorSkip]]:
    """The push rule, as plainly as it can be written: the Users after, the changes, the skips."""
    after: list[FloorUser] = []
    changes: list[FloorChange] = []
    skips: list[FloorSkip] = []
    for user in users:
        roles = user["roles"]
        if roles is None:
            skips.append((user["id"], None, "NO_MAILBOX"))
            after.append(user)
            continue
        synced = user["synced"]
        new: set[str] | None = None
        for role, on in checked.items():
            label_id = roles.get(role)
            if label_id is None:
                skips.append((user["id"], role, "LABEL_MISSING"))
            elif (label_id in synced) != on:
                if new is None:
                    new = set(synced)
                if on:
                    new.add(label_id)
                else:
                    new.discard(label_id)
                changes.append((user["id"], role, label_id, on))
        if new is None:
            after.append(user)
        else:
            after.append(
                FloorUser(
                    id=user["id"],
                    roles=roles,
                    synced=frozenset(new),
                    version=user["version"] + 1,
                )
            )
    return after, changes, skips


def floor_checked(defaults: Defaults) -> dict[str, bool]:
    """The floor's form of `defaults`: INBOX then SENT, as labelsync applies them."""
    return {label.value: on for label, on in defaults.items()}


class FloorMismatch(AssertionError):
    """Raised when the floor and labelsync disagree: the floor is wrong, or labelsync is."""


def check_same(
    tenant: Tenant, floor_users: list[FloorUser], defaults: Defaults
) -> tuple[int, Tenant]:
    """Assert floor and labelsync give the same after-state and the same changes and skips.

    Returns the number of label changes, for the record, and the tenant after the push.
    """
    new, changes = apply_defaults(tenant, defaults)
    after, floor_changes, floor_skips = floor_apply(floor_users, floor_checked(defaults))
    for position, (user, floor_user) in enumerate(zip(new.users, after, strict=True)):
        if (user.id, user.synced.ids, user.version) != (
            floor_user["id"],
            floor_user["synced"],
            floor_user["version"],
        ):
            raise FloorMismatch(f"User at position {position}: {user!r} vs {floor_user!r}")
    ours = [(c.user_id, c.label.value, c.label_id, c.selected) for c in changes.changed]
    if ours != floor_changes:
        raise FloorMismatch(f"changes differ: {len(ours)} vs {len(floor_changes)}")
    our_skips = [
        (s.user_id, None if s.label is None else s.label.value, s.reason.value)
        for s in changes.skipped
    ]
    if our_skips != floor_skips:
        raise FloorMismatch(f"skips differ: {len(our_skips)} vs {len(floor_skips)}")
    return len(ours), new


# -- memory ------------------------------------------------------------------------

# Shared by every value and owned by no tenant: classes, modules, functions, enum members.
_NOT_INPUT = (type, ModuleType, FunctionType, BuiltinFunctionType, enum.Enum)


def deep_size(root: object) -> int:
    """Bytes held by `root` and everything it reaches, each object counted once.

    Walks `gc.get_referents` (which sees slots, tuples, dicts and sets) and stops
    at classes, modules, functions and enum members, which belong to no value.
    """
    seen = {id(root)}
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        total += sys.getsizeof(obj)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, _NOT_INPUT):
                seen.add(id(ref))
                stack.append(ref)
    return total


def edit_one_percent(pushed: Tenant) -> tuple[Tenant, int]:
    """`pushed` (a tenant just pushed) after every 100th connected User deselected INBOX.

    Pushing the same defaults again changes exactly the edited Users.
    """
    users = list(pushed.users)
    edited = 0
    for position in range(0, len(users), 100):
        user = users[position]
        inbox = user.mailbox.label_id(SystemLabel.INBOX) if user.mailbox else None
        if inbox is not None and inbox in user.synced:
            users[position] = user.with_selection(user.synced.without(inbox))
            edited += 1
    return pushed.with_users(users), edited


@frozen
class Memory:
    """What a push that changes about 1% of Users adds beyond its input."""

    input_bytes: int
    new_tenant_bytes: int
    changes_bytes: int
    users_changed: int

    @property
    def share(self) -> float:
        """`new_tenant_bytes` as a share of `input_bytes`."""
        return self.new_tenant_bytes / self.input_bytes


def measure_memory(pushed: Tenant, defaults: Defaults) -> Memory:
    """tracemalloc of re-pushing `defaults` to `pushed` after 1% of its Users changed."""
    edited, _ = edit_one_percent(pushed)
    input_bytes = deep_size(edited)
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        new, changes = apply_defaults(edited, defaults)
        with_changes = tracemalloc.get_traced_memory()[0]
        users_changed = changes.counts().users_changed
        del changes
        gc.collect()
        tenant_only = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del new
    return Memory(
        input_bytes=input_bytes,
        new_tenant_bytes=tenant_only - start,
        changes_bytes=with_changes - tenant_only,
        users_changed=users_changed,
    )


# -- timing ------------------------------------------------------------------------


@frozen
class CoreResult:
    """`apply_defaults` at one roster size, beside the floor."""

    users: int
    label_changes: int
    floor: Runs
    labelsync: Runs
    materialised: Runs
    floor_gc_off: Timing
    labelsync_gc_off: Timing
    memory: Memory | None

    @property
    def ratio(self) -> float:
        """labelsync / floor, medians of CPU time (what the code costs, not what else ran)."""
        return self.labelsync.cpu / self.floor.cpu

    @property
    def ratio_gc_off(self) -> float:
        """labelsync / floor with the cyclic garbage collector off (one run each)."""
        return self.labelsync_gc_off.cpu / self.floor_gc_off.cpu


def _run(call: Callable[[], object]) -> Timing:
    result, timing = timed(call)
    del result  # freeing the result (by reference counting: it holds no cycles) is not timed
    return timing


def _run_gc_off(call: Callable[[], object]) -> Timing:
    """One run with the cyclic garbage collector off: how much of a run the collector takes."""
    gc.collect()
    gc.disable()
    try:
        return _run(call)
    finally:
        gc.enable()


def bench_core(
    tenant: Tenant, *, repeat: int, materialise: int = 3, memory: bool = True
) -> CoreResult:
    """Check floor == labelsync, then time them interleaved `repeat` times each.

    The garbage collector stays on, as in a notebook; one `gc.collect()` before
    the runs clears the setup's garbage. `materialise` runs (at most `repeat`)
    time `apply_defaults` plus `changes.changed`. One more run of each with the
    collector off shows how much of the time it takes.
    """
    floor_users = to_floor(tenant.users)
    checked = floor_checked(DEFAULTS)
    label_changes, pushed = check_same(tenant, floor_users, DEFAULTS)
    # Measured before the runs, so no run has the pushed tenant in its heap.
    memory_result = measure_memory(pushed, DEFAULTS) if memory else None
    del pushed

    def labelsync_run() -> object:
        return apply_defaults(tenant, DEFAULTS)

    def floor_run() -> object:
        return floor_apply(floor_users, checked)

    def materialised_run() -> object:
        new, changes = apply_defaults(tenant, DEFAULTS)
        return new, changes.changed

    gc.collect()
    floor: list[Timing] = []
    ours: list[Timing] = []
    materialised: list[Timing] = []
    for index in range(repeat):
        # Alternate who goes first, so neither always runs on a warmer heap.
        if index % 2 == 0:
            floor.append(_run(floor_run))
            ours.append(_run(labelsync_run))
        else:
            ours.append(_run(labelsync_run))
            floor.append(_run(floor_run))
        if index < materialise:
            materialised.append(_run(materialised_run))
    floor_gc_off = _run_gc_off(floor_run)
    labelsync_gc_off = _run_gc_off(labelsync_run)
    return CoreResult(
        users=len(tenant.users),
        label_changes=label_changes,
        floor=runs(floor),
        labelsync=runs(ours),
        materialised=runs(materialised),
        floor_gc_off=floor_gc_off,
        labelsync_gc_off=labelsync_gc_off,
        memory=memory_result,
    )
