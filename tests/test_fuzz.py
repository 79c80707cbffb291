"""Fuzzing the edges (issue 11): the snapshot reader, every public constructor and every service
argument answer any input with a value or a typed `LabelSyncError`, and a refused call leaves
the store exactly as it was (R12: bad input raises a LabelSyncError and changes nothing).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelsync import (
    Defaults,
    Label,
    LabelChange,
    LabelSet,
    LabelSync,
    Mailbox,
    Skip,
    Tenant,
    User,
    io,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import InvalidInput, LabelSyncError
from labelsync.io import InvalidSnapshot
from labelsync.model import PushCounts, PushRecord
from labelsync.ports import Store
from labelsync.synthetic import synthetic_tenant
from test_hardening import acme

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)

WEIRD_TEXT = st.sampled_from(
    ["", " ", "a\x00", "a\udc80", "\ud800x", "x" * 256, "x" * 5000, "acme", "ann", "admin", "é✉"]
)
ANYTHING: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.text(max_size=20),
        WEIRD_TEXT,
        st.binary(max_size=8),
        st.just(Defaults(inbox=True, sent=False)),
        st.just(LabelSet(["INBOX"])),
        st.datetimes(),
        st.timedeltas(),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.frozensets(st.text(max_size=3), max_size=3),
    max_leaves=6,
)


# -- the snapshot reader ------------------------------------------------------------


def _valid_document() -> dict[str, Any]:
    return io.to_dict(synthetic_tenant(4, seed=2))


def _paths(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


_DOCUMENT = _valid_document()
_PATHS = _paths(_DOCUMENT)[1:]


def _replaced(document: Any, path: tuple[object, ...], value: object) -> Any:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | WEIRD_TEXT,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _read(data: str | bytes) -> None:
    try:
        tenant = io.loads(data)
    except InvalidSnapshot:
        return
    assert isinstance(tenant, Tenant)


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_the_snapshot_reader_answers_any_bytes_with_a_tenant_or_invalid_snapshot(
    data: str | bytes,
) -> None:
    """R12: whatever the file holds, one typed error (F6: never a RecursionError)."""
    _read(data)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PATHS), JSON_VALUES)
def test_the_snapshot_reader_answers_any_value_anywhere_with_a_typed_error(
    path: tuple[object, ...], value: object
) -> None:
    """R12: one value of a valid snapshot replaced by anything: a Tenant or InvalidSnapshot."""
    _read(json.dumps(_replaced(_DOCUMENT, path, value)))


@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["[", '{"a":']))
def test_the_snapshot_reader_bounds_nesting_at_any_depth(depth: int, opener: str) -> None:
    """F6: deep nesting is bad input at every depth, never a RecursionError."""
    closer = "]" if opener == "[" else "}"
    text = '{"format": 1, "tenant": ' + opener * depth + "1" + closer * depth + "}"
    with pytest.raises(InvalidSnapshot):
        io.loads(text)


# -- every public constructor -------------------------------------------------------

_SCRATCH = tempfile.mkdtemp(prefix="labelsync-fuzz-")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def _sqlite_store(**arguments: Any) -> None:
    """`SqliteStore(...)` in a scratch directory: a drawn path never lands anywhere else."""
    path = arguments.pop("path", ":memory:")
    if isinstance(path, str):
        path = os.path.basename(path)
    with contextlib.chdir(_SCRATCH):
        SqliteStore(path, **arguments).close()


CONSTRUCTORS: dict[str, tuple[Callable[..., object], tuple[str, ...]]] = {
    "User": (User, ("id", "email", "permissions", "mailbox", "synced", "version")),
    "Tenant": (Tenant, ("id", "name", "users", "defaults", "last_push", "onboard_new_users")),
    "Label": (Label, ("id", "name", "system")),
    "Mailbox": (Mailbox, ("provider", "address", "labels")),
    "LabelSet": (LabelSet, ("ids",)),
    "Defaults": (Defaults, ("inbox", "sent")),
    "PushCounts": (PushCounts, ("users_changed", "selected", "deselected")),
    "PushRecord": (
        PushRecord,
        ("job_id", "actor_id", "defaults", "started_at", "finished_at", "roster_size", "counts"),
    ),
    "LabelChange": (LabelChange, ("user_id", "label", "label_id", "selected")),
    "Skip": (Skip, ("user_id", "label", "reason")),
    "FixedClock": (FixedClock, ("at",)),
    "LabelSync": (LabelSync, ("store", "clock", "new_id")),
    "SqliteStore": (_sqlite_store, ("path", "busy_timeout", "read_only", "create")),
}


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(CONSTRUCTORS)),
    st.data(),
)
def test_every_public_constructor_answers_any_argument_with_a_value_or_a_typed_error(
    name: str, data: st.DataObject
) -> None:
    """R12: every public constructor checks its arguments (F11: no TypeError, AttributeError)."""
    build, fields = CONSTRUCTORS[name]
    chosen = data.draw(st.lists(st.sampled_from(fields), unique=True, min_size=1))
    arguments = {field: data.draw(ANYTHING, label=field) for field in chosen}
    untyped: TypeError | None = None
    try:
        build(**arguments)
    except LabelSyncError:
        pass
    except TypeError as error:
        untyped = error
    if untyped is not None:
        # Only a missing required keyword, which Python itself reports before any code runs.
        assert "required keyword-only argument" in str(untyped) or "missing" in str(untyped)
        assert "required" in str(untyped), untyped


# -- every service argument ---------------------------------------------------------


def _seeded(kind: str) -> LabelSync:
    store: Store = InMemoryStore() if kind == "memory" else SqliteStore(":memory:")
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(acme())
    svc.push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    return svc


def _everything(svc: LabelSync) -> object:
    store = svc.store
    tenants = [store.get_tenant(t) for t in store.tenant_ids()]
    jobs = store.list_jobs()
    return tenants, jobs, [list(store.job_changes(j.id)) for j in jobs]


ID = st.one_of(st.sampled_from(["acme", "ann", "admin", "bob"]), ANYTHING)

CALLS: dict[str, Callable[[LabelSync, st.DataObject], object]] = {
    "tenant": lambda s, d: s.tenant(d.draw(ID)),
    "user": lambda s, d: s.user(d.draw(ID), d.draw(ID)),
    "add_user": lambda s, d: s.add_user(d.draw(ID), d.draw(ANYTHING), actor_id=d.draw(ID)),
    "set_selection": lambda s, d: s.set_selection(
        d.draw(ID), d.draw(ID), d.draw(ANYTHING), actor_id=d.draw(ID)
    ),
    "onboard": lambda s, d: s.onboard(d.draw(ID), d.draw(ID), actor_id=d.draw(ID)),
    "save_defaults": lambda s, d: s.save_defaults(
        d.draw(ID), actor_id=d.draw(ID), defaults=d.draw(ANYTHING)
    ),
    "set_onboarding": lambda s, d: s.set_onboarding(
        d.draw(ID), actor_id=d.draw(ID), enabled=d.draw(ANYTHING)
    ),
    "start_push": lambda s, d: s.start_push(
        d.draw(ID), actor_id=d.draw(ID), defaults=d.draw(ANYTHING)
    ),
    "push": lambda s, d: s.push(
        d.draw(ID), actor_id=d.draw(ID), defaults=d.draw(ANYTHING), batch_size=d.draw(ANYTHING)
    ),
    "run_push": lambda s, d: s.run_push(
        d.draw(ID), batch_size=d.draw(ANYTHING), lease_seconds=d.draw(ANYTHING)
    ),
    "revert_push": lambda s, d: s.revert_push(
        d.draw(ID), actor_id=d.draw(ID), batch_size=d.draw(ANYTHING)
    ),
    "preview": lambda s, d: s.preview(d.draw(ID), d.draw(ANYTHING)),
    "job": lambda s, d: s.job(d.draw(ID)),
    "jobs": lambda s, d: s.jobs(d.draw(ID)),
    "changes": lambda s, d: s.changes(d.draw(ID)),
    "email_tab": lambda s, d: s.email_tab(d.draw(ID), d.draw(ID)),
    "activity": lambda s, d: s.activity(d.draw(ANYTHING)),
    "update_user": lambda s, d: s.update_user(d.draw(ID), d.draw(ANYTHING), actor_id=d.draw(ID)),
    "remove_user": lambda s, d: s.remove_user(d.draw(ID), d.draw(ID), actor_id=d.draw(ID)),
    "sync_directory": lambda s, d: s.sync_directory(
        d.draw(ID),
        d.draw(ANYTHING),
        remove_missing=d.draw(ANYTHING),
        actor_id=d.draw(ID),
        batch_size=d.draw(ANYTHING),
    ),
}


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["memory", "sqlite"]), st.sampled_from(sorted(CALLS)), st.data())
def test_every_service_argument_gets_a_typed_error_and_a_refused_call_changes_nothing(
    kind: str, call: str, data: st.DataObject
) -> None:
    """R12: any argument to any entry point: a result, or a typed error and the store as it was."""
    svc = _seeded(kind)
    before = _everything(svc)
    refused: LabelSyncError | None = None
    try:
        CALLS[call](svc, data)
    except LabelSyncError as error:
        refused = error
    if refused is not None:
        assert before == _everything(svc), refused
    if isinstance(refused, InvalidInput):
        assert refused.field  # names the field
