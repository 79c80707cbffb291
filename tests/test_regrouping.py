"""R21 on a directory change: a User whose groups give it another preset gets that preset.

With onboarding on, `update_user` and `sync_directory` apply the defaults of a
User's new first-matching preset (or, leaving every preset, what a new User
without one gets) in the same compare-and-set write as the directory change;
with onboarding off only the host's fields change. Every test runs on the
memory, SQLite and PostgreSQL stores; `directory.reconcile` with the tenant's
presets is checked to preview exactly what the service stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

import attrs
import pytest

from labelsync import (
    Defaults,
    InvalidInput,
    JobStatus,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Preset,
    Provider,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.directory import reconcile, regrouped
from labelsync.ports import Store
from labelsync.presets import PresetBook
from labelsync.providers import gmail_label

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)
INBOX_ONLY = Defaults(inbox=True, sent=False)
SENT_ONLY = Defaults(inbox=False, sent=True)
LABELS = (
    gmail_label("INBOX", "Inbox"),
    gmail_label("SENT", "Sent"),
    gmail_label("Label_7", "Project X"),
)


def person(user_id: str, *synced: str, groups: Sequence[str] = (), admin: bool = False) -> User:
    email = f"{user_id}@acme.io"
    permissions = {Permission.EMAIL_SYNC} | ({Permission.ADMIN_ACCESS} if admin else set())
    return User(
        id=user_id,
        email=email,
        permissions=frozenset(permissions),
        mailbox=Mailbox(provider=Provider.GMAIL, address=email, labels=LABELS),
        synced=LabelSet(synced),
        groups=frozenset(groups),
    )


@pytest.fixture
def svc(store: Store) -> LabelSync:
    ids = iter(f"push-{n}" for n in range(1, 100))
    return LabelSync(store=store, clock=FixedClock(T0), new_id=lambda: next(ids))


def teams(svc: LabelSync, *users: User, onboarding: bool = True) -> None:
    """Tenant acme with `users`; preset inbox-only for `sales`, then sent-only for `eng`."""
    svc.create_tenant(Tenant(id="acme", name="Acme", users=(person("admin", admin=True), *users)))
    svc.create_preset("acme", actor_id="admin", preset=Preset(name="sales", defaults=INBOX_ONLY))
    svc.create_preset("acme", actor_id="admin", preset=Preset(name="eng", defaults=SENT_ONLY))
    svc.assign_preset("acme", actor_id="admin", group="sales", name="sales")
    svc.assign_preset("acme", actor_id="admin", group="eng", name="eng")
    svc.set_onboarding("acme", actor_id="admin", enabled=onboarding)


def moved(user: User, *groups: str, **changes: Any) -> User:
    return attrs.evolve(user, groups=frozenset(groups), **changes)


def test_update_user_moving_a_user_to_another_preset_applies_it_in_one_write(
    svc: LabelSync,
) -> None:
    """R21, R13: sales -> eng gives eng's defaults; the custom label stays; version + 1."""
    teams(svc, person("ana", "INBOX", "Label_7", groups=["sales"]))
    before = svc.user("acme", "ana")

    after = svc.update_user("acme", moved(before, "eng", email="ana@new.io"))

    assert (frozenset({"SENT", "Label_7"}), "ana@new.io") == (after.synced.ids, after.email)
    assert before.version + 1 == after.version
    assert after == svc.user("acme", "ana")


def test_a_user_joining_a_preset_group_gets_the_preset(svc: LabelSync) -> None:
    """R21: no preset -> a preset applies it."""
    teams(svc, person("ana", "Label_7"))

    after = svc.update_user("acme", moved(svc.user("acme", "ana"), "sales"))

    assert frozenset({"INBOX", "Label_7"}) == after.synced.ids


def test_leaving_every_preset_gives_the_last_push_defaults(svc: LabelSync) -> None:
    """R21, B4: preset -> none applies what a new User without a preset gets: the last push's."""
    teams(svc, person("ana", groups=["sales"]))
    svc.push("acme", actor_id="admin", defaults=BOTH)
    ana = svc.update_user("acme", moved(svc.user("acme", "ana"), "sales", "eng"))
    assert frozenset({"INBOX", "SENT"}) == ana.synced.ids  # sales still first: kept
    ana = svc.update_user("acme", moved(ana, "eng"))
    assert frozenset({"SENT"}) == ana.synced.ids

    left = svc.update_user("acme", moved(ana))

    assert frozenset({"INBOX", "SENT"}) == left.synced.ids
    assert ana.version + 1 == left.version


def test_leaving_every_preset_before_any_push_keeps_the_selection(svc: LabelSync) -> None:
    """R21, B4: with no push yet a new User gets nothing, so neither does one leaving a preset."""
    teams(svc, person("ana", "SENT", "Label_7", groups=["sales"]))

    left = svc.update_user("acme", moved(svc.user("acme", "ana"), "support"))

    assert frozenset({"SENT", "Label_7"}) == left.synced.ids


def test_a_groups_change_keeping_the_first_preset_keeps_the_users_choices(
    svc: LabelSync,
) -> None:
    """R21, R12: the first matching preset is still sales: the User's own edit stays."""
    teams(svc, person("ana", "INBOX", groups=["sales"]))
    svc.set_selection("acme", "ana", LabelSet({"SENT"}))

    after = svc.update_user("acme", moved(svc.user("acme", "ana"), "sales", "eng"))

    assert frozenset({"SENT"}) == after.synced.ids


def test_with_onboarding_off_only_the_groups_change(svc: LabelSync) -> None:
    """R21: onboarding off: the groups and the version change, the selection does not."""
    teams(svc, person("ana", "INBOX", groups=["sales"]), onboarding=False)
    before = svc.user("acme", "ana")

    after = svc.update_user("acme", moved(before, "eng"))

    assert attrs.evolve(before, groups=frozenset({"eng"}), version=before.version + 1) == after
    report = svc.sync_directory("acme", [moved(after, "sales"), person("new", groups=["eng"])])
    assert (("new",), ("ana",)) == (report.added, report.updated)
    assert frozenset({"INBOX"}) == svc.user("acme", "ana").synced.ids
    assert frozenset() == svc.user("acme", "new").synced.ids


class _EditFirst:
    """The store, with the User's own edit landing between the service's read and its write."""

    def __init__(self, store: Store) -> None:
        self._store, self._raced = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save_users(self, tenant_id: str, writes: Sequence[tuple[User, int]]) -> Sequence[str]:
        if not self._raced:
            self._raced = True
            ana = self._store.get_user(tenant_id, "ana")
            own = attrs.evolve(ana, synced=LabelSet(ana.synced.ids | {"Label_7"}))
            assert not self._store.save_users(
                tenant_id, [(attrs.evolve(own, version=ana.version + 1), ana.version)]
            )
        return self._store.save_users(tenant_id, writes)


@pytest.mark.parametrize("call", ["update_user", "sync_directory"])
def test_a_users_edit_racing_the_regrouping_is_kept(store: Store, call: str) -> None:
    """R12, R21: the compare-and-set fails on the racing edit; the retry keeps the edit."""
    setup = LabelSync(store=store, clock=FixedClock(T0))
    teams(setup, person("ana", "INBOX", groups=["sales"]))
    before = setup.user("acme", "ana")
    racing = LabelSync(store=cast(Store, _EditFirst(store)), clock=FixedClock(T0))

    if call == "update_user":
        racing.update_user("acme", moved(before, "eng"))
    else:
        assert ("ana",) == racing.sync_directory("acme", [moved(before, "eng")]).updated

    after = setup.user("acme", "ana")
    assert frozenset({"SENT", "Label_7"}) == after.synced.ids
    assert (before.version + 2, frozenset({"eng"})) == (after.version, after.groups)


def test_a_regrouping_while_a_push_runs_leaves_the_push_whole(svc: LabelSync) -> None:
    """R12, R21: the push reaching the regrouped User later re-reads it; last push wins (R10)."""
    teams(svc, person("ana", "Label_7", groups=["sales"]), person("bo"))
    job = svc.start_push("acme", actor_id="admin", defaults=BOTH)
    regrouped_ana = svc.update_user("acme", moved(svc.user("acme", "ana"), "eng"))
    assert frozenset({"SENT", "Label_7"}) == regrouped_ana.synced.ids

    svc.run_push(job.id, batch_size=1)

    assert JobStatus.DONE is svc.job(job.id).status
    ana = svc.user("acme", "ana")
    assert (frozenset({"INBOX", "SENT", "Label_7"}), frozenset({"eng"})) == (
        ana.synced.ids,
        ana.groups,
    )


def test_a_sync_of_1200_users_regroups_some_and_matches_its_preview(svc: LabelSync) -> None:
    """R13, R21: a sync in batches of 500; regrouped Users get their new preset, the rest keep
    their selection; `reconcile(..., presets=)` previews exactly the stored tenant."""
    stored = [person(f"u{n:04}", "INBOX", "Label_7", groups=["sales"]) for n in range(1200)]
    teams(svc, *stored)
    svc.push("acme", actor_id="admin", defaults=BOTH)  # everyone INBOX+SENT now
    tenant_before = svc.tenant("acme")
    users = {u.id: u for u in tenant_before.users}
    roster: list[User] = [users["admin"]]
    for n in range(1200):
        user = users[f"u{n:04}"]
        if n % 3 == 0:
            user = moved(user, "eng")  # another preset: SENT only
        elif n % 5 == 0:
            user = moved(user, "sales", "eng")  # same first preset: kept
        elif n % 7 == 0:
            user = moved(user)  # no preset any more: the last push's defaults
        elif n % 11 == 0:
            user = attrs.evolve(user, email=f"u{n:04}@new.io")  # not a groups change
        roster.append(user)
    roster += [person(f"new{n}", groups=["eng"] if n % 2 else []) for n in range(40)]
    preview, expected = reconcile(
        tenant_before, roster, presets=svc.presets("acme"), at=svc.clock.now()
    )

    report = svc.sync_directory("acme", roster, batch_size=500)

    assert expected == report
    assert 40 == len(report.added)
    changed_groups = {f"u{n:04}" for n in range(1200) if n % 3 == 0 or n % 5 == 0 or n % 7 == 0}
    emails = {f"u{n:04}" for n in range(1200) if f"u{n:04}" not in changed_groups and n % 11 == 0}
    assert changed_groups | emails == set(report.updated)
    after = {u.id: u for u in svc.tenant("acme").users}
    assert {u.id: u for u in preview.users} == after
    for n in range(1200):
        user, old = after[f"u{n:04}"], users[f"u{n:04}"]
        if n % 3 == 0:
            assert frozenset({"SENT", "Label_7"}) == user.synced.ids
        else:
            assert frozenset({"INBOX", "SENT", "Label_7"}) == user.synced.ids
        assert old.version + (1 if user.id in report.updated else 0) == user.version
    assert 400 == sum(1 for u in after.values() if u.synced.ids == {"SENT", "Label_7"})
    assert frozenset({"SENT"}) == after["new1"].synced.ids
    assert frozenset({"INBOX", "SENT"}) == after["new0"].synced.ids


def test_reconcile_without_presets_or_onboarding_applies_no_preset() -> None:
    """R21: the pure preview applies presets only when given them and onboarding is on."""
    ana = person("ana", "INBOX", groups=["sales"])
    book = PresetBook(presets=[Preset(name="eng", defaults=SENT_ONLY)]).assigning("eng", "eng")
    tenant = Tenant(id="acme", name="Acme", users=(ana,), onboard_new_users=True)

    def synced(t: Tenant, **kwargs: Any) -> frozenset[str]:
        return reconcile(t, [moved(ana, "eng")], **kwargs)[0].user("ana").synced.ids

    assert frozenset({"SENT"}) == synced(tenant, presets=book)
    assert frozenset({"INBOX"}) == synced(tenant)
    assert frozenset({"INBOX"}) == synced(
        attrs.evolve(tenant, onboard_new_users=False), presets=book
    )
    with pytest.raises(InvalidInput, match="presets"):
        reconcile(tenant, [ana], presets="sales")  # type: ignore[arg-type]
    assert ana is regrouped(ana, ana, presets=book, onboard_with=BOTH)
