"""The pure directory functions (labelsync.directory): each change; `reconcile` as laws (R13)."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Defaults,
    InvalidInput,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.directory import (
    DirectoryReport,
    connect_mailbox,
    disconnect_mailbox,
    kept_selection,
    reconcile,
    refresh_labels,
    remove_user,
    updated,
)
from labelsync.exceptions import UnknownUser
from labelsync.providers import gmail_label
from labelsync.testing.strategies import host_rosters, tenants

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
INBOX, SENT = gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent")
PROJECT, NEWS = gmail_label("Label_7", "Project X"), gmail_label("Label_9", "Newsletters")


def ana(*synced: str, version: int = 4) -> User:
    return User(
        id="ana",
        email="ana@acme.io",
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=Mailbox(
            provider=Provider.GMAIL, address="ana@acme.io", labels=(INBOX, SENT, PROJECT, NEWS)
        ),
        synced=LabelSet(synced),
        version=version,
    )


# -- one change each ---------------------------------------------------------------------------


def test_updated_takes_the_hosts_fields_and_keeps_labelsyncs() -> None:
    host = attrs.evolve(ana(), email="ana@new.io", permissions=frozenset(), version=0)

    new = updated(ana("INBOX", "Label_7"), host)

    assert ("ana@new.io", frozenset(), LabelSet(["INBOX", "Label_7"]), 5) == (
        new.email,
        new.permissions,
        new.synced,
        new.version,
    )


def test_updated_with_nothing_new_is_the_same_user() -> None:
    current = ana("INBOX")
    assert current is updated(current, attrs.evolve(current, synced=LabelSet(), version=0))


def test_updated_refuses_another_users_id() -> None:
    with pytest.raises(InvalidInput, match=r"user\.id: 'bo'"):
        updated(ana(), attrs.evolve(ana(), id="bo"))


def test_disconnecting_keeps_the_selection_and_reconnecting_restores_it() -> None:
    """R13: a disconnect is no deletion; every selected id waits for the reconnect."""
    current = ana("INBOX", "Label_9")

    gone = disconnect_mailbox(current)
    back = connect_mailbox(gone, ana().mailbox)  # type: ignore[arg-type]

    assert (None, LabelSet(["INBOX", "Label_9"]), 5) == (gone.mailbox, gone.synced, gone.version)
    assert (current.mailbox, current.synced, 6) == (back.mailbox, back.synced, back.version)


def test_a_refresh_drops_only_the_selected_ids_of_labels_the_provider_deleted() -> None:
    """R13 (decided): Newsletters was deleted, so its id leaves the selection; a stale id
    the mailbox never had, and every kept label, stay."""
    current = ana("INBOX", "Label_9", "Label_7", "stale-1")

    new = refresh_labels(current, [INBOX, SENT, gmail_label("Label_7", "Project Y")])

    assert LabelSet(["INBOX", "Label_7", "stale-1"]) == new.synced
    assert "Project Y" == new.mailbox.get("Label_7").name  # type: ignore[union-attr]
    assert 5 == new.version


def test_a_refresh_of_a_user_without_a_mailbox_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"user\.mailbox"):
        refresh_labels(attrs.evolve(ana(), mailbox=None), [INBOX])


def test_connecting_something_else_than_a_mailbox_is_refused() -> None:
    with pytest.raises(InvalidInput, match="mailbox: 'gmail'"):
        connect_mailbox(ana(), "gmail")  # type: ignore[arg-type]


def test_remove_user_leaves_the_others_in_order() -> None:
    bo, cy = attrs.evolve(ana(), id="bo"), attrs.evolve(ana(), id="cy")
    tenant = Tenant(id="t1", name="Acme", users=(ana(), bo, cy))

    assert (bo, cy) == remove_user(tenant, "ana").users
    with pytest.raises(UnknownUser):
        remove_user(tenant, "nope")


def test_reconcile_onboards_a_new_user_only_when_the_tenant_does() -> None:
    """B4, R6: as add_user: the last push's defaults when onboarding is on, else as given."""
    record = PushRecord(
        job_id="j1",
        actor_id="admin",
        defaults=Defaults(inbox=True, sent=False),
        started_at=T0,
        finished_at=T0,
        roster_size=0,
        counts=PushCounts(),
    )
    off = Tenant(id="t1", name="Acme", last_push=record)
    on = attrs.evolve(off, onboard_new_users=True)

    assert LabelSet(["SENT"]) == reconcile(off, [ana("SENT")])[0].user("ana").synced
    assert LabelSet(["INBOX"]) == reconcile(on, [ana("SENT")])[0].user("ana").synced


def test_a_report_prints_its_counts_and_exports_its_ids() -> None:
    report = DirectoryReport(added=["a"], updated=["b", "c"], removed=[], unchanged=["d"])

    assert "directory sync: 1 added, 2 updated, 0 removed, 1 unchanged" == str(report)
    assert {
        "counts": {"added": 1, "updated": 2, "removed": 0, "unchanged": 1},
        "added": ["a"],
        "updated": ["b", "c"],
        "removed": [],
        "unchanged": ["d"],
    } == report.to_dict()


# -- reconcile, as laws ------------------------------------------------------------------------


@st.composite
def tenant_and_roster(draw: st.DrawFn) -> tuple[Tenant, list[User], bool]:
    tenant = draw(tenants(max_users=6, max_labels=3, max_stale=1))
    return tenant, draw(host_rosters(tenant)), draw(st.booleans())


@given(tenant_and_roster())
def test_reconcile_reports_every_user_once_and_the_tenant_follows_the_host(
    case: tuple[Tenant, list[User], bool],
) -> None:
    """R13: added, updated, unchanged partition the host's ids; removed are the stored Users
    the host no longer lists (none unless remove_missing); the host-owned fields now match."""
    tenant, roster, remove_missing = case
    new, report = reconcile(tenant, roster, remove_missing=remove_missing)

    listed = [u.id for u in roster]
    assert sorted(listed) == sorted(report.added + report.updated + report.unchanged)
    stored = [u.id for u in tenant.users]
    gone = [i for i in stored if i not in listed] if remove_missing else []
    assert gone == list(report.removed)
    for host in roster:
        got = new.user(host.id)
        assert (host.email, host.permissions, host.mailbox) == (
            got.email,
            got.permissions,
            got.mailbox,
        )
    assert [*(i for i in stored if i not in gone), *report.added] == [u.id for u in new.users]


@given(tenant_and_roster())
def test_reconcile_keeps_each_selection_but_the_ids_of_deleted_labels(
    case: tuple[Tenant, list[User], bool],
) -> None:
    """R13: `synced` is labelsync's: a stored User keeps it, minus the ids of labels that the
    refreshed mailbox no longer has; the version moves on by one exactly when something changed."""
    tenant, roster, remove_missing = case
    new, report = reconcile(tenant, roster, remove_missing=remove_missing)

    for user_id in report.updated:
        before, after = tenant.user(user_id), new.user(user_id)
        assert kept_selection(before, after.mailbox) == after.synced
        if before.mailbox is not None and after.mailbox is not None:
            deleted = {lb.id for lb in before.mailbox.labels} - {
                lb.id for lb in after.mailbox.labels
            }
            assert before.synced.ids - deleted == after.synced.ids
        else:
            assert before.synced == after.synced
        assert before.version + 1 == after.version
    for user_id in report.unchanged:
        assert tenant.user(user_id) is new.user(user_id)


@given(tenant_and_roster())
def test_reconciling_twice_changes_nothing_the_second_time(
    case: tuple[Tenant, list[User], bool],
) -> None:
    """R13, like R10: a sync is idempotent, which is what lets an interrupted one be run again."""
    tenant, roster, remove_missing = case
    once, _ = reconcile(tenant, roster, remove_missing=remove_missing)

    twice, report = reconcile(once, roster, remove_missing=remove_missing)

    assert twice is once
    assert not report.changed
    assert sorted(u.id for u in roster) == sorted(report.unchanged)


@given(tenant_and_roster(), st.integers(1, 4))
def test_reconcile_previews_exactly_what_sync_directory_does(
    case: tuple[Tenant, list[User], bool], batch_size: int
) -> None:
    """B1 for the directory: the pure reconcile is the preview of the service's batched sync."""
    tenant, roster, remove_missing = case
    svc = LabelSync(store=InMemoryStore(), clock=FixedClock(T0))
    svc.create_tenant(tenant)

    preview, expected = reconcile(tenant, roster, remove_missing=remove_missing, at=T0)
    report = svc.sync_directory(
        tenant.id, roster, remove_missing=remove_missing, batch_size=batch_size
    )

    assert preview == svc.tenant(tenant.id)
    assert expected == report
