"""Where admin policy (R15-R19) meets audiences and presets (R20-R22).

One definition of drift: `coverage`'s DRIFTED is `labelsync.policy.user_drift`
(R18, R22), measured against each User's preset where one applies (R21); and
pushing to exactly the drifted Users is one call (R18 with R20):
`LabelSync.push_drifted`, or ``labelsync push --drifted``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Audience,
    Defaults,
    InvalidInput,
    LabelSet,
    LabelSync,
    PermissionDenied,
    Preset,
    PushMode,
    SystemLabel,
    Tenant,
    coverage,
    drift,
    io,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.coverage import CoverageStatus
from labelsync.policy import DriftReason, DriftRow, drifted_push, user_drift
from labelsync.ports import Store
from labelsync.presets import PresetBook
from labelsync.testing.strategies import defaults, tenants
from test_audiences import acme, person
from test_cli import labelsync, one_error_line

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)


def _selection_drift(rows: Iterable[DriftRow]) -> dict[str, tuple[SystemLabel, ...]]:
    """Per User, the labels whose selection differs (drift's rows with a `selected`)."""
    found: dict[str, list[SystemLabel]] = {}
    for row in rows:
        if row.label is not None and row.selected is not None:
            found.setdefault(row.user_id, []).append(row.label)
    return {user_id: tuple(labels) for user_id, labels in found.items()}


# -- one definition of drift (R18, R22, R21) ------------------------------------------------


@given(tenants(max_users=8, max_stale=1))
def test_coverage_drifted_is_policys_drift_user_by_user(tenant: Tenant) -> None:
    """R18, R22: a User's `drifted` labels in coverage are exactly drift's selection rows."""
    seen = coverage(tenant)
    by_drift = _selection_drift(drift(tenant))

    for row in seen:
        assert by_drift.get(row.user_id, ()) == row.drifted
        if row.status is CoverageStatus.DRIFTED:
            assert row.user_id in by_drift


@given(tenants(max_users=8, max_stale=1), defaults(), st.sampled_from(["a", "b"]))
def test_coverage_against_a_preset_is_drift_against_the_presets_defaults(
    tenant: Tenant, preset_defaults: Defaults, group: str
) -> None:
    """R21 with R18: a User whose group has a preset drifts from the preset's defaults,
    by the same rule (`user_drift`); everyone else from the tenant's."""
    book = PresetBook().creating(Preset(name="P", defaults=preset_defaults)).assigning(group, "P")
    seen = coverage(tenant, book)

    for user in tenant.users:
        wanted = preset_defaults if group in user.groups else tenant.defaults
        expected = {} if wanted is None else _selection_drift(user_drift(user, wanted))
        assert expected.get(user.id, ()) == seen.row(user.id).drifted


def test_user_drift_refuses_what_is_not_a_user_or_defaults() -> None:
    with pytest.raises(InvalidInput, match="user: 'ana' is not a User"):
        user_drift("ana", BOTH)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="defaults: None is not a Defaults"):
        user_drift(person("ana"), None)  # type: ignore[arg-type]


# -- pushing to exactly the drifted Users (R18 with R20) -----------------------------------


@pytest.fixture
def svc(store: Store) -> LabelSync:
    """acme pushed Inbox + Sent; then di turned both off herself and gus joined, never covered."""
    service = LabelSync(store=store, clock=FixedClock(T0))
    service.create_tenant(acme())
    service.push("acme", actor_id="admin", defaults=BOTH)
    service.set_selection("acme", "di", LabelSet())
    service.add_user("acme", person("gus", "sales"))
    return service


def test_push_drifted_reaches_exactly_the_drifted_users(svc: LabelSync) -> None:
    """R18 with R20: the audience is drift's Users at the start; nobody else is written."""
    before = {user.id: user for user in svc.tenant("acme").users}
    drifted = svc.drift("acme").user_ids
    assert ("bo", "di", "gus") == drifted  # bo: no mailbox, di: her own change, gus: new

    report = svc.push_drifted("acme", actor_id="admin")

    job = report.job
    assert (Audience.users(drifted), BOTH, 3) == (job.audience, job.defaults, job.total)
    after = {user.id: user for user in svc.tenant("acme").users}
    assert {uid: u for uid, u in before.items() if uid not in drifted} == {
        uid: u for uid, u in after.items() if uid not in drifted
    }
    assert LabelSet(["INBOX", "SENT"]) == after["di"].synced == after["gus"].synced
    remaining = svc.drift("acme")
    assert [("bo", DriftReason.NO_MAILBOX)] == [(r.user_id, r.reason) for r in remaining]
    assert BOTH == svc.tenant("acme").defaults  # a narrowed push keeps the saved defaults


def test_push_drifted_in_keep_user_choices_reaches_only_the_never_covered(
    svc: LabelSync,
) -> None:
    """R18, R20 with R16: di's own choice is kept (and counted); gus is covered now."""
    report = svc.push_drifted("acme", actor_id="admin", mode=PushMode.KEEP_USER_CHOICES)

    assert PushMode.KEEP_USER_CHOICES == report.job.mode
    assert 2 == report.job.counts.user_choice_kept
    assert LabelSet() == svc.user("acme", "di").synced
    assert svc.user("acme", "gus").provenance.covered
    assert ["di", "di"] == [
        r.user_id for r in svc.drift("acme") if r.reason is DriftReason.USER_CHANGE
    ]


def test_drifted_push_is_the_target_push_drifted_starts(svc: LabelSync) -> None:
    """R18 with R20: the pure answer (the CLI preview's) is the started push's."""
    defaults, audience = drifted_push(svc.tenant("acme"))

    job = svc.start_push_drifted("acme", actor_id="admin")

    assert (BOTH, Audience.users(["bo", "di", "gus"])) == (defaults, audience)
    assert (defaults, audience) == (job.defaults, job.audience)


def test_push_drifted_needs_an_admin_and_something_drifted(store: Store) -> None:
    """Refusals write nothing: no defaults yet; nobody drifted; not an admin."""
    service = LabelSync(store=store, clock=FixedClock(T0))
    users = tuple(user for user in acme().users if user.mailbox is not None)
    service.create_tenant(Tenant(id="acme", name="Acme", users=users))

    with pytest.raises(InvalidInput, match=r"tenant\.defaults: None means tenant 'acme' has no"):
        service.push_drifted("acme", actor_id="admin")
    service.push("acme", actor_id="admin", defaults=BOTH)
    jobs = service.jobs("acme")
    with pytest.raises(InvalidInput, match="nothing to push"):
        service.push_drifted("acme", actor_id="admin")
    service.set_selection("acme", "ana", LabelSet())
    with pytest.raises(PermissionDenied):
        service.push_drifted("acme", actor_id="ana")
    assert jobs == service.jobs("acme")


# -- labelsync push --drifted ---------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    tenant: Tenant = acme()
    snapshot = tmp_path / "acme.json"
    io.dump(tenant, snapshot)
    path = tmp_path / "acme.db"
    assert 0 == labelsync("import", snapshot, "--db", path, cwd=tmp_path).returncode
    pushed = labelsync(
        "push", "--db", path, "--tenant", "acme", "--actor", "admin", "--inbox", "--sent",
        cwd=tmp_path,
    )  # fmt: skip
    assert 0 == pushed.returncode, pushed.stderr
    with SqliteStore(path) as store:
        LabelSync(store=store, clock=FixedClock(T0)).set_selection("acme", "di", LabelSet())
    return path


def test_cli_push_drifted_pushes_the_saved_defaults_to_the_drifted_users(db: Path) -> None:
    result = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", "admin", "--drifted",
        "--format", "json", cwd=db.parent,
    )  # fmt: skip

    assert 0 == result.returncode, result.stderr
    job = json.loads(result.stdout)
    assert ({"users": ["bo", "di"]}, 2) == (job["audience"], job["users"])
    assert "the Users that drifted from these defaults" in result.stderr
    with SqliteStore(db) as store:
        assert LabelSet(["INBOX", "SENT"]) == store.get_user("acme", "di").synced


def test_cli_push_drifted_with_checkboxes_is_a_usage_error(db: Path) -> None:
    result = labelsync(
        "push", "--db", db, "--tenant", "acme", "--actor", "admin", "--drifted", "--inbox",
        "--sent", cwd=db.parent,
    )  # fmt: skip

    assert 2 == result.returncode
    assert "--drifted pushes the tenant's saved defaults" in one_error_line(result)
