"""A push to a group on PostgreSQL reads only its members (R20): the `user_groups` index.

`users.groups` is what a User's groups are; `user_groups` holds the same facts as one
row per (tenant, group, roster position), written in the same statements, so a push to
a group selects its members by key instead of reading every User of the tenant. These
tests check that the two never disagree whatever the directory does, that the plans use
the keys, and that a schema written before the table existed gains it on migration.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelsync import (
    Audience,
    Defaults,
    Label,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.adapters import postgres as postgres_adapter
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.postgres import SCHEMA_VERSION, PostgresStore
from postgres_fixtures import fresh_schema, postgres_dsn

pytestmark = pytest.mark.postgres

INBOX = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
SENT = Label(id="SENT", name="Sent", system=SystemLabel.SENT)
GROUPS = ("sales", "east", "ops")
DEFAULTS = Defaults(inbox=True, sent=True)
T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
ADMIN = User(
    id="admin",
    email="admin@acme.test",
    permissions=frozenset({Permission.ADMIN_ACCESS}),
)
_tenants = itertools.count()


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn()


@pytest.fixture(scope="module")
def store(dsn: str) -> Iterator[PostgresStore]:
    with fresh_schema(dsn) as schema, PostgresStore(dsn, schema=schema) as opened:
        yield opened


def member(user_id: str, groups: frozenset[str]) -> User:
    address = f"{user_id}@acme.test"
    return User(
        id=user_id,
        email=address,
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=Mailbox(provider=Provider.GMAIL, address=address, labels=(INBOX, SENT)),
        groups=groups,
    )


def index_rows(store: PostgresStore, tenant_id: str) -> set[tuple[str, int]]:
    """(group, position) rows `user_groups` holds for the tenant."""
    with store._tx() as cur:
        cur.execute(
            f"SELECT name, position FROM {store._s}.user_groups WHERE tenant_id = %s", (tenant_id,)
        )
        return {(name, position) for name, position in cur.fetchall()}


def derived_rows(store: PostgresStore, tenant_id: str) -> set[tuple[str, int]]:
    """(group, position) for every group named in `users.groups` of the tenant."""
    with store._tx() as cur:
        cur.execute(
            f"SELECT g.name, u.position FROM {store._s}.users AS u, "
            f"jsonb_array_elements_text(u.groups) AS g (name) WHERE u.tenant_id = %s",
            (tenant_id,),
        )
        return {(name, position) for name, position in cur.fetchall()}


group_sets = st.frozensets(st.sampled_from(GROUPS), max_size=3)
# One directory step: add a User, regroup one (by index into the live ones), remove one,
# or sync the whole roster (the directory of issue 10) with new groups for some.
steps = st.one_of(
    st.tuples(st.just("add"), group_sets),
    st.tuples(st.just("regroup"), st.integers(0, 20), group_sets),
    st.tuples(st.just("remove"), st.integers(0, 20)),
    st.tuples(st.just("sync"), st.lists(group_sets, min_size=1, max_size=6)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.lists(group_sets, max_size=8),
    other=st.lists(group_sets, max_size=4),
    script=st.lists(steps, max_size=8),
    audience=st.frozensets(st.sampled_from(GROUPS), min_size=1),
)
def test_the_group_index_always_says_what_users_groups_say_and_a_push_reaches_exactly_members(
    store: PostgresStore,
    first: list[frozenset[str]],
    other: list[frozenset[str]],
    script: list[tuple[object, ...]],
    audience: frozenset[str],
) -> None:
    """R20: after any directory calls, `user_groups` equals `users.groups` row for row, and a
    push to groups (selected through it) leaves every User and counts as the pure rule does;
    a second tenant with the same group names is neither counted nor touched."""
    svc = LabelSync(store=store, clock=FixedClock(T0))
    n = next(_tenants)
    tenant_id, neighbour_id = f"t{n}", f"n{n}"
    fresh = (f"u{i}" for i in itertools.count())
    svc.create_tenant(
        Tenant(
            id=tenant_id,
            name="Acme",
            users=(ADMIN, *(member(next(fresh), groups) for groups in first)),
        )
    )
    svc.create_tenant(
        Tenant(
            id=neighbour_id,
            name="Neighbour",
            users=tuple(member(f"x{i}", groups) for i, groups in enumerate(other)),
        )
    )
    for step in script:
        live = [u for u in svc.tenant(tenant_id).users if u.id != ADMIN.id]
        kind = step[0]
        if kind == "add":
            svc.add_user(tenant_id, member(next(fresh), step[1]))  # type: ignore[arg-type]
        elif kind == "regroup" and live:
            target = live[int(step[1]) % len(live)]  # type: ignore[call-overload]
            svc.update_user(tenant_id, attrs.evolve(target, groups=step[2]))
        elif kind == "remove" and live:
            svc.remove_user(tenant_id, live[int(step[1]) % len(live)].id)  # type: ignore[call-overload]
        elif kind == "sync":
            wanted = step[1]
            assert isinstance(wanted, list)
            roster = [attrs.evolve(u, groups=g) for u, g in zip(live, wanted, strict=False)]
            svc.sync_directory(tenant_id, [ADMIN, *roster, *live[len(wanted) :]])
        assert index_rows(store, tenant_id) == derived_rows(store, tenant_id)
    assert index_rows(store, neighbour_id) == derived_rows(store, neighbour_id)

    before = svc.tenant(tenant_id)
    neighbour = svc.tenant(neighbour_id)
    report = svc.push(
        tenant_id, actor_id=ADMIN.id, defaults=DEFAULTS, audience=Audience.groups(audience)
    )
    after, changes = apply_defaults(
        before, DEFAULTS, stamp=report.job.stamp, audience=Audience.groups(audience)
    )
    assert report.job.total == sum(1 for u in before.users if u.groups & audience)
    assert (after.users, changes.counts()) == (svc.tenant(tenant_id).users, report.counts)
    assert svc.tenant(neighbour_id).users == neighbour.users


def _plan(store: PostgresStore, sql: str, params: dict[str, object]) -> str:
    """The plan PostgreSQL would use for `sql` with sequential scans priced out."""
    with store._tx() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql.replace("{s}", store._s), params)
        return "\n".join(row[0] for row in cur.fetchall())


def test_a_push_to_groups_selects_its_members_by_the_group_index_not_by_reading_users(
    store: PostgresStore,
) -> None:
    """R20, the bulk engine: the roster of a group push comes from an index-only scan of
    `user_groups` by (tenant, group) and never reads `users` (one group: in roster order,
    unsorted); listed Users by (tenant, id)."""
    groups_sql = postgres_adapter._ROSTER_OF["groups"]
    plan = _plan(store, groups_sql, {"job": "j", "t": "acme", "names": ["sales", "east"]})
    assert "Index Only Scan using user_groups_pkey on user_groups" in plan
    assert "on users" not in plan
    one_sql = postgres_adapter._ROSTER_OF_GROUP
    plan = _plan(store, one_sql, {"job": "j", "t": "acme", "names": ["sales"]})
    assert "Index Only Scan using user_groups_pkey on user_groups" in plan
    assert "Sort" not in plan  # the key range is in roster order already
    users_sql = postgres_adapter._ROSTER_OF["users"]
    plan = _plan(store, users_sql, {"job": "j", "t": "acme", "names": ["u1", "u2"]})
    assert "using user_state_tenant_id_id_key on user_state" in plan


# The schema version before the step that adds `user_groups`.
BEFORE_GROUP_INDEX = next(
    version
    for version, step in enumerate(postgres_adapter._MIGRATIONS)
    if "CREATE TABLE {s}.user_groups" in step
)


def test_a_schema_from_before_the_group_index_gains_it_on_migration(dsn: str) -> None:
    """A schema one step older (groups in `users.groups` only) migrates to the current one
    with every group's members in `user_groups`, and a group push reaches exactly them."""
    users = [member(f"u{i}", frozenset(GROUPS[: i % 4])) for i in range(12)]
    tenant = Tenant(id="acme", name="Acme", users=(ADMIN, *users))
    with fresh_schema(dsn) as schema:
        with PostgresStore(dsn, schema=schema) as store:
            store.add_tenant(tenant)
            with store._tx() as cur:  # back to what the step before wrote
                cur.execute(f"DROP TABLE {store._s}.user_groups")
                cur.execute(
                    f"UPDATE {store._s}.schema_version SET version = %s", (BEFORE_GROUP_INDEX,)
                )
        with PostgresStore(dsn, schema=schema) as store:
            assert BEFORE_GROUP_INDEX < SCHEMA_VERSION == store.schema_version()
            assert index_rows(store, "acme") == derived_rows(store, "acme")
            assert {name for name, _ in index_rows(store, "acme")} == set(GROUPS)
            svc = LabelSync(store=store, clock=FixedClock(T0))
            report = svc.push(
                "acme", actor_id=ADMIN.id, defaults=DEFAULTS, audience=Audience.groups({"east"})
            )
            assert report.job.total == sum(1 for u in users if "east" in u.groups) == 6
            assert {c.user_id for c in svc.changes(report.job.id).changed} == {
                u.id for u in users if "east" in u.groups
            }


def test_a_narrowed_batch_takes_its_members_by_key_up_to_its_limit(store: PostgresStore) -> None:
    """R20, the bulk engine: after a push to a big group starts, a batch's lock reads the
    job's members in order by key and stops at the batch size; it never gathers (bitmap
    scan, sort) every member left up to the roster's end, which made each batch cost as
    much as the members still to come."""
    members = 10_000
    tenant = Tenant(
        id="big",
        name="Big",
        users=(ADMIN, *(member(f"u{i}", frozenset({GROUPS[i % 2]})) for i in range(2 * members))),
    )
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(tenant)
    job = svc.start_push(
        "big", actor_id=ADMIN.id, defaults=DEFAULTS, audience=Audience.groups({"sales"})
    )
    assert job.total == members
    params = {"t": "big", "job": job.id, "after": 0, "end": job.roster_end, "limit": 500}
    plan = _plan(store, postgres_adapter._LOCK_MEMBERS, params)
    assert "Bitmap Heap Scan on job_members" not in plan
    assert "Index Only Scan using job_members_pkey on job_members" in plan
    assert plan.index("Limit") < plan.index("job_members_pkey")
    report = svc.run_push(job.id)
    assert (report.job.processed, report.counts.users_changed) == (members, members)


def test_a_push_to_a_group_keeps_its_members_only_while_it_can_run(store: PostgresStore) -> None:
    """R20, R6: `job_members` holds a narrowed push's roster while the push can run;
    superseding or finishing it drops those rows (the job keeps its audience and total),
    so the schema does not grow by a roster with every push to a group."""
    tenant_id = f"kept-{next(_tenants)}"
    users = (ADMIN, *(member(f"u{i}", frozenset({GROUPS[i % 2]})) for i in range(6)))
    svc = LabelSync(store=store, clock=FixedClock(T0))
    svc.create_tenant(Tenant(id=tenant_id, name="Kept", users=users))
    sales = Audience.groups({"sales"})

    def members(*job_ids: str) -> dict[str, int]:
        with store._tx() as cur:
            cur.execute(
                f"SELECT job_id, count(*) FROM {store._s}.job_members"
                " WHERE job_id = ANY(%s) GROUP BY job_id",
                (list(job_ids),),
            )
            return dict(cur.fetchall())

    first = svc.start_push(tenant_id, actor_id=ADMIN.id, defaults=DEFAULTS, audience=sales)
    assert {first.id: 3} == members(first.id)
    second = svc.start_push(tenant_id, actor_id=ADMIN.id, defaults=DEFAULTS, audience=sales)
    assert {second.id: 3} == members(first.id, second.id)

    report = svc.run_push(second.id)

    assert {} == members(first.id, second.id)
    assert (sales, 3, 3) == (report.job.audience, report.job.total, report.job.processed)
