"""Where the time goes: pyinstrument samples of the core and the SQLite push, summarised."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
from attrs import frozen
from pyinstrument import Profiler
from pyinstrument.frame import Frame

from benchmarks.core import DEFAULTS, floor_apply, floor_checked, to_floor
from benchmarks.sqlite_push import BATCH_SIZE, prepare
from labelsync import LabelSync, Tenant, apply_defaults
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore


@frozen
class Hotspot:
    """One function and the share of the sampled time spent in its own code."""

    function: str
    where: str
    seconds: float
    share: float


@frozen
class Profile:
    """The hot spots of one profiled call, and how much of it garbage collection took."""

    title: str
    seconds: float
    hotspots: tuple[Hotspot, ...]
    gc_share: float | None = None
    phases: tuple[tuple[str, float], ...] = ()
    """(what, share of the sampled time) for named calls, callees included."""


def _frames(frame: Frame) -> Iterator[Frame]:
    stack = [frame]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def hotspots(profiler: Profiler, top: int) -> tuple[float, tuple[Hotspot, ...]]:
    """The `top` functions by self time (time in their own code, not their callees)."""
    root = profiler.last_session.root_frame() if profiler.last_session else None
    if root is None:
        return 0.0, ()
    own: dict[tuple[str, str], float] = {}
    for frame in _frames(root):
        if frame.is_synthetic:
            continue
        children = sum(child.time for child in frame.children if not child.is_synthetic)
        key = (frame.function, f"{frame.file_path_short}:{frame.line_no}")
        own[key] = own.get(key, 0.0) + frame.time - children
    total = root.time
    ranked = sorted(own.items(), key=lambda item: item[1], reverse=True)[:top]
    return total, tuple(
        Hotspot(function=function, where=where, seconds=seconds, share=seconds / total)
        for (function, where), seconds in ranked
    )


# A phase: a label, the start of a function's name ("" for any), and a part of the
# path of the file that defines it. By file rather than by function, so the phases
# survive a rewrite of the store's internals.
Phase = tuple[str, str, str]

PUSH_PHASES: tuple[Phase, ...] = (
    ("the store: `labelsync/adapters/sqlite.py`", "", "labelsync/adapters/sqlite.py"),
    ("- of which SQLite's own calls (`execute`, `commit`, ...)", "Connection.", "<built-in>"),
    ("the rule: `labelsync/rules.py`", "", "labelsync/rules.py"),
    ("building values: `labelsync/model.py` and attrs' `__init__`s", "", "labelsync.model"),
    ("- `labelsync/model.py` itself", "", "labelsync/model.py"),
    ("the job: `labelsync/jobs.py`", "", "labelsync/jobs.py"),
)


def inclusive(root: Frame, function: str, path_part: str) -> float:
    """Seconds in calls of functions named `function...` in a file whose path has `path_part`.

    Callees are included; a call nested in another matching call is counted once.
    """
    total = 0.0
    stack = [root]
    while stack:
        frame = stack.pop()
        if frame.function.startswith(function) and path_part in (frame.file_path or ""):
            total += frame.time
        else:
            stack.extend(frame.children)
    return total


def _profile(
    title: str, call: Callable[[], object], top: int, phases: tuple[Phase, ...] = ()
) -> Profile:
    profiler = Profiler(interval=0.001)
    profiler.start()
    result = call()
    profiler.stop()
    del result
    total, spots = hotspots(profiler, top)
    root = profiler.last_session.root_frame() if profiler.last_session else None
    shares = tuple(
        (label, inclusive(root, function, path) / total if root and total else 0.0)
        for label, function, path in phases
    )
    # A phase that matched nothing names code this version does not have.
    shares = tuple((label, share) for label, share in shares if share > 0)
    return Profile(title=title, seconds=total, hotspots=spots, phases=shares)


def _gc_share(call: Callable[[], object]) -> float:
    """The share of `call`'s CPU time that the cyclic garbage collector takes (off vs on)."""
    gc.collect()
    start = time.process_time()
    result = call()
    with_gc = time.process_time() - start
    del result
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        result = call()
        without_gc = time.process_time() - start
        del result
    finally:
        gc.enable()
    return max(0.0, 1 - without_gc / with_gc)


def profile_core(tenant: Tenant, *, top: int = 10) -> tuple[Profile, Profile]:
    """Profile `apply_defaults` and the floor once each on `tenant`, and their GC share."""
    floor_users = to_floor(tenant.users)
    checked = floor_checked(DEFAULTS)

    def ours() -> object:
        return apply_defaults(tenant, DEFAULTS)

    def floor() -> object:
        return floor_apply(floor_users, checked)

    size = f"{len(tenant.users):,}"
    ours_profile = _profile(f"apply_defaults, {size} Users", ours, top)
    floor_profile = _profile(f"floor, {size} Users", floor, top)
    return (
        attrs.evolve(ours_profile, gc_share=_gc_share(ours)),
        attrs.evolve(floor_profile, gc_share=_gc_share(floor)),
    )


def profile_push(tenant: Tenant, work: Path, *, top: int = 12) -> Profile:
    """Profile `run_push` in this process on a fresh file holding `tenant`."""
    prepared = prepare(tenant, work / "profile.db", DEFAULTS)
    with SqliteStore(prepared.path) as store:
        service = LabelSync(store=store, clock=SystemClock())
        profile = _profile(
            f"run_push on SQLite, {len(tenant.users):,} Users",
            lambda: service.run_push(prepared.job_id, batch_size=BATCH_SIZE),
            top,
            PUSH_PHASES,
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{prepared.path}{suffix}").unlink(missing_ok=True)
    return profile
