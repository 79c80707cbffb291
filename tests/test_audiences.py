"""Audiences (R20) and coverage (R22): the held-out scenarios on every store, and the pure laws."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Audience,
    Defaults,
    InvalidInput,
    Label,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    PermissionDenied,
    Provider,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    coverage,
)
from labelsync.adapters.clock import FixedClock
from labelsync.coverage import NO_GROUP, CoverageStatus
from labelsync.ports import Store
from labelsync.testing.strategies import audiences, defaults, tenants
from labelsync.whatif import compare
from postgres_fixtures import fresh_schema, postgres_dsn

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)
INBOX_ONLY = Defaults(inbox=True, sent=False)
INBOX = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
SENT = Label(id="SENT", name="Sent", system=SystemLabel.SENT)


def person(
    user_id: str,
    *groups: str,
    mailbox: bool = True,
    email_sync: bool = True,
    admin: bool = False,
    labels: tuple[Label, ...] = (INBOX, SENT),
    synced: tuple[str, ...] = (),
) -> User:
    address = f"{user_id}@acme.test"
    permissions = {Permission.EMAIL_SYNC} if email_sync else set()
    if admin:
        permissions.add(Permission.ADMIN_ACCESS)
    return User(
        id=user_id,
        email=address,
        permissions=frozenset(permissions),
        mailbox=Mailbox(provider=Provider.GMAIL, address=address, labels=labels)
        if mailbox
        else None,
        synced=LabelSet(synced),
        groups=frozenset(groups),
    )


def acme() -> Tenant:
    """An admin, three in sales (one without a mailbox), two in support, one in both."""
    return Tenant(
        id="acme",
        name="Acme",
        users=(
            person("admin", admin=True),
            person("ana", "sales"),
            person("bo", "sales", mailbox=False),
            person("cy", "support", email_sync=False),
            person("di", "support"),
            person("ed", "sales", "support", synced=("SENT",)),
            person("fay"),
        ),
    )


@pytest.fixture
def svc(store: Store) -> LabelSync:
    service = LabelSync(store=store, clock=FixedClock(T0))
    service.create_tenant(acme())
    return service


def versions(svc: LabelSync) -> dict[str, int]:
    return {user.id: user.version for user in svc.tenant("acme").users}


# -- the held-out scenarios of issue 14 ----------------------------------------------------


def test_scenario_a_push_to_a_group_touches_only_its_members_with_total_the_members_count(
    svc: LabelSync,
) -> None:
    """R20, R6: the roster is the group's members at the start; nobody else is written."""
    before = svc.tenant("acme")

    job = svc.start_push(
        "acme", actor_id="admin", defaults=BOTH, audience=Audience.groups({"sales"})
    )
    report = svc.run_push(job.id, batch_size=1)

    assert 3 == job.total  # ana, bo (no mailbox), ed
    assert (3, 3) == (report.job.total, report.job.processed)
    changes = svc.changes(job.id)
    assert {"ana", "ed"} == {c.user_id for c in changes.changed}
    assert ["bo"] == [s.user_id for s in changes.skipped]
    after = svc.tenant("acme")
    untouched = [u.id for u in before.users if u.id not in {"ana", "bo", "ed"}]
    assert [before.user(i) for i in untouched] == [after.user(i) for i in untouched]
    assert after.last_push is not None
    assert (Audience.groups({"sales"}), 3) == (
        after.last_push.audience,
        after.last_push.roster_size,
    )
    assert Audience.groups({"sales"}) == svc.job(job.id).audience


def test_scenario_a_push_to_listed_users_touches_only_them(svc: LabelSync) -> None:
    before = versions(svc)

    report = svc.push(
        "acme", actor_id="admin", defaults=INBOX_ONLY, audience=Audience.users(["di", "fay"])
    )

    assert (2, 2) == (report.job.total, report.job.processed)
    assert {"di", "fay"} == {c.user_id for c in svc.changes(report.job.id).changed}
    after = versions(svc)
    assert {"di": 1, "fay": 1} == {i: after[i] - before[i] for i in after if after[i] != before[i]}
    assert LabelSet(["INBOX"]) == svc.user("acme", "di").synced


def test_scenario_coverage_flags_a_user_without_a_mailbox_and_a_user_without_email_sync(
    svc: LabelSync,
) -> None:
    svc.push("acme", actor_id="admin", defaults=BOTH)

    seen = svc.coverage("acme")

    assert CoverageStatus.NO_MAILBOX == seen.row("bo").status
    assert CoverageStatus.NO_EMAIL_TAB == seen.row("cy").status
    assert CoverageStatus.COVERED == seen.row("ana").status
    assert {"bo", "cy"} == {row.user_id for row in seen.uncovered}
    assert 1 == seen.counts()[CoverageStatus.NO_MAILBOX]
    assert 1 == seen.counts()[CoverageStatus.NO_EMAIL_TAB]


# -- audiences through the service ---------------------------------------------------------


def test_a_push_to_everyone_is_todays_push(svc: LabelSync) -> None:
    report = svc.push("acme", actor_id="admin", defaults=BOTH, audience=Audience.everyone())

    assert (7, Audience.everyone()) == (report.job.total, report.job.audience)
    assert "to " not in str(report).split(":")[0]


def test_a_push_to_an_unknown_user_is_refused_and_writes_nothing(svc: LabelSync) -> None:
    with pytest.raises(InvalidInput, match=r"audience\.user_ids: .zed. is not a User"):
        svc.start_push("acme", actor_id="admin", defaults=BOTH, audience=Audience.users(["zed"]))

    assert [] == svc.jobs("acme")
    assert None is svc.tenant("acme").defaults


def test_a_preview_to_an_unknown_user_is_refused_as_the_push_is(svc: LabelSync) -> None:
    """A preview shows what the push would do, so it refuses what the push refuses."""
    with pytest.raises(InvalidInput, match=r"audience\.user_ids: 'zed' is not a User of tenant"):
        svc.preview("acme", BOTH, audience=Audience.users(["ana", "zed"]))

    assert 2 == svc.preview("acme", BOTH, audience=Audience.users(["ana", "di"])).users


def test_an_audience_push_by_a_non_admin_is_refused(svc: LabelSync) -> None:
    """R1 holds for every audience."""
    with pytest.raises(PermissionDenied):
        svc.start_push("acme", actor_id="ana", defaults=BOTH, audience=Audience.groups({"sales"}))
    assert [] == svc.jobs("acme")


def test_an_audience_that_is_not_an_audience_is_refused(svc: LabelSync) -> None:
    with pytest.raises(InvalidInput, match="audience"):
        svc.start_push("acme", actor_id="admin", defaults=BOTH, audience="sales")  # type: ignore[arg-type]
    assert [] == svc.jobs("acme")


def test_preview_with_an_audience_counts_only_its_members(svc: LabelSync) -> None:
    changes = svc.preview("acme", BOTH, audience=Audience.groups({"support"}))

    assert 3 == changes.users
    assert {"cy", "di", "ed"} == {c.user_id for c in changes.changed}


def test_the_report_names_the_audience(svc: LabelSync) -> None:
    report = svc.push("acme", actor_id="admin", defaults=BOTH, audience=Audience.groups({"sales"}))

    assert " to group sales done" in str(report)


# -- the pure core ----------------------------------------------------------------------------


@given(tenants(max_users=8), defaults(), st.data())
def test_apply_defaults_to_an_audience_is_apply_defaults_to_its_members(
    tenant: Tenant, pushed: Defaults, data: st.DataObject
) -> None:
    """R20: a narrowed push equals the full rule over the members; every other User is the
    same object as before."""
    audience = data.draw(audiences(tuple(u.id for u in tenant.users)))
    members = [u for u in tenant.users if audience.includes(u)]

    after, changes = apply_defaults(tenant, pushed, audience=audience)
    alone, expected = apply_defaults(attrs.evolve(tenant, users=members), pushed)

    assert expected.changed == changes.changed
    assert expected.skipped == changes.skipped
    assert len(members) == changes.users
    assert list(alone.users) == [u for u in after.users if audience.includes(u)]
    for old, new in zip(tenant.users, after.users, strict=True):
        if not audience.includes(old):
            assert old is new


@given(tenants(max_users=8), defaults())
def test_apply_defaults_to_everyone_is_the_version_1_push(tenant: Tenant, pushed: Defaults) -> None:
    """R20: the default audience behaves exactly as a push without one."""
    assert apply_defaults(tenant, pushed) == apply_defaults(
        tenant, pushed, audience=Audience.everyone()
    )


def test_audiences_refuse_empty_and_stringly_input() -> None:
    with pytest.raises(InvalidInput, match=r"Audience\.group_names"):
        Audience.groups(set())
    with pytest.raises(InvalidInput, match=r"Audience\.user_ids"):
        Audience.users([])
    with pytest.raises(InvalidInput, match="not one string"):
        Audience.groups("sales")
    with pytest.raises(InvalidInput, match=r"Audience.user_ids\[1\]"):
        Audience.users(["u1", " "])


def test_user_groups_are_validated_like_ids() -> None:
    with pytest.raises(InvalidInput, match=r"User\.groups"):
        User(id="u1", email="a@x.io", groups="sales")
    with pytest.raises(InvalidInput, match=r"User.groups\[0\]"):
        User(id="u1", email="a@x.io", groups=frozenset({""}))
    assert frozenset({"sales"}) == User(id="u1", email="a@x.io", groups=["sales"]).groups


def test_an_audience_round_trips_through_its_document() -> None:
    for audience in (Audience.everyone(), Audience.groups({"b", "a"}), Audience.users(["u2"])):
        assert audience == Audience.from_doc(audience.to_doc())
    with pytest.raises(InvalidInput, match="audience"):
        Audience.from_doc({"teams": ["a"]})


def test_compare_per_group_counts_only_the_groups_members() -> None:
    table = compare(
        acme(), {"both": BOTH, "inbox": INBOX_ONLY}, audience=Audience.groups({"sales"})
    )

    assert 3 == table.users
    assert [3, 3] == [row.users for row in table.rows]
    assert "of group sales" in str(table).splitlines()[0]
    assert "audience: group sales" in (table._repr_html_() or "")


# -- coverage ---------------------------------------------------------------------------------


def test_coverage_gives_each_user_one_status_in_precedence_order() -> None:
    guessed_sent = Label(id="Sent Items", name="Sent Items", system=SystemLabel.SENT, guessed=True)
    tenant = Tenant(
        id="t",
        name="T",
        defaults=BOTH,
        users=(
            person("ok", "sales", synced=("INBOX", "SENT")),
            person("nobox", "sales", mailbox=False, synced=("INBOX",)),
            person("nosent", labels=(INBOX,), email_sync=False, synced=("INBOX",)),
            person("hidden", email_sync=False, synced=("INBOX", "SENT")),
            person("own", synced=("INBOX",)),
            person("stale", synced=("INBOX", "SENT", "Label_gone")),
            person("guess", labels=(INBOX, guessed_sent), synced=("INBOX", "Sent Items")),
        ),
    )

    seen = coverage(tenant)

    assert [
        CoverageStatus.COVERED,
        CoverageStatus.NO_MAILBOX,
        CoverageStatus.LABEL_MISSING,
        CoverageStatus.NO_EMAIL_TAB,
        CoverageStatus.DRIFTED,
        CoverageStatus.STALE_IDS,
        CoverageStatus.COVERED,
    ] == [row.status for row in seen]
    assert (SystemLabel.SENT,) == seen.row("nosent").missing
    assert (SystemLabel.SENT,) == seen.row("own").drifted
    assert ("Label_gone",) == seen.row("stale").stale_ids
    assert (SystemLabel.SENT,) == seen.row("guess").guessed
    assert "Sent recognised by its name only" in seen.row("guess").detail
    assert "label missing: Sent" == seen.row("nosent").detail
    assert {"sales": 1, NO_GROUP: 1} == {
        g: c[CoverageStatus.COVERED] for g, c in seen.by_group().items() if g in {"sales", NO_GROUP}
    }
    assert 1 == seen.by_group()["sales"][CoverageStatus.NO_MAILBOX]
    text = str(seen)
    assert "guess: covered; Sent recognised by its name only" in text
    assert "cannot see the Email tab  1" in text


def test_coverage_without_saved_defaults_reports_nobody_drifted() -> None:
    seen = coverage(Tenant(id="t", name="T", users=(person("a", synced=("INBOX",)),)))

    assert CoverageStatus.COVERED == seen.row("a").status


def test_coverage_exports_records_a_dataframe_and_html() -> None:
    pd = pytest.importorskip("pandas")
    seen = coverage(acme())

    records = seen.to_records()
    frame = seen.to_dataframe()

    assert {
        "user_id": "bo",
        "status": "NO_MAILBOX",
        "groups": ["sales"],
        "missing": [],
        "drifted": [],
        "stale_ids": [],
        "guessed": [],
    } == records[2]
    assert list(frame.columns) == [*records[0]]
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert "NO_MAILBOX" == frame.loc[2, "status"]
    page = seen._repr_html_() or ""
    assert "<b>Coverage</b> of acme" in page
    assert "cannot see the Email tab" in page
    assert "support" in page


@pytest.mark.postgres
def test_parallel_workers_push_to_an_audience_only_its_members() -> None:
    """B6 with R20: the ranges workers claim are cut over the audience's members only."""
    from labelsync.adapters.postgres import PostgresStore

    dsn = postgres_dsn()
    with fresh_schema(dsn) as schema, PostgresStore(dsn, schema=schema) as store:
        svc = LabelSync(store=store, clock=FixedClock(T0))
        svc.create_tenant(acme())
        job = svc.start_push(
            "acme", actor_id="admin", defaults=BOTH, audience=Audience.groups({"support"})
        )
        svc.run_push(job.id, worker_id="w1", batch_size=1)
        report = svc.run_push(job.id, worker_id="w2", batch_size=1)

        assert (3, 3) == (report.job.total, report.job.processed)
        assert {"cy", "di", "ed"} == {c.user_id for c in svc.changes(job.id).changed}
