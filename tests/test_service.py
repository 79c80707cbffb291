"""`LabelSync` refuses what it must: permissions, unknown ids, bad input, another tenant's Users.

Each refusal is a typed `LabelSyncError` naming the field and value, and leaves
every stored state (all tenants, all jobs, all recorded changes) as it was (R1, R12).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import attrs
import pytest

from labelsync import (
    AlreadyExists,
    Changes,
    Defaults,
    InvalidInput,
    LabelSet,
    LabelSync,
    LabelSyncError,
    Mailbox,
    Permission,
    PermissionDenied,
    Provider,
    PushCounts,
    PushJob,
    PushRecord,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import UnknownJob, UnknownTenant, UnknownUser
from labelsync.jobs import RevertJob
from labelsync.ports import JobStatus, Store
from labelsync.providers import gmail_label
from labelsync.testing.faults import StoreProxy

T = TypeVar("T")

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
ADMIN = "admin"
DEFAULTS = Defaults(inbox=True, sent=False)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store: in memory, or a real SQLite file closed at teardown."""
    if request.param == "memory":
        yield InMemoryStore()
        return
    with SqliteStore(tmp_path / "labelsync.db") as sqlite:
        yield sqlite


def user(
    user_id: str,
    domain: str = "acme.io",
    synced: tuple[str, ...] = ("SENT",),
    permissions: frozenset[Permission] = frozenset({Permission.EMAIL_SYNC}),
) -> User:
    address = f"{user_id}@{domain}"
    mailbox = Mailbox(
        provider=Provider.GMAIL,
        address=address,
        labels=(
            gmail_label("INBOX", "Inbox"),
            gmail_label("SENT", "Sent"),
            gmail_label("Label_1", "Project X"),
        ),
    )
    return User(
        id=user_id, email=address, permissions=permissions, mailbox=mailbox, synced=LabelSet(synced)
    )


def tenant(tenant_id: str = "t1", domain: str = "acme.io", size: int = 6) -> Tenant:
    """An admin and `size` Users u1..; two tenants built with this share their user ids."""
    admin = user(ADMIN, domain, ("INBOX",), frozenset({Permission.ADMIN_ACCESS}))
    return Tenant(
        id=tenant_id,
        name=domain,
        users=(admin, *(user(f"u{n}", domain) for n in range(1, size + 1))),
    )


def service(store: Store, clock: object = None) -> LabelSync:
    counter = itertools.count(1)
    return LabelSync(
        store=store,
        clock=clock or FixedClock(T0),  # type: ignore[arg-type]
        new_id=lambda: f"job-{next(counter)}",
    )


@pytest.fixture
def svc(store: Store) -> LabelSync:
    """Two tenants sharing user ids; t1 already has one finished push (job-1) to revert."""
    svc = service(store)
    svc.create_tenant(tenant("t1", "acme.io"))
    svc.create_tenant(tenant("t2", "globex.com"))
    svc.push("t1", actor_id=ADMIN, defaults=DEFAULTS)
    return svc


Snapshot = tuple[dict[str, Tenant], list[PushJob], dict[str, Changes]]


def snapshot(svc: LabelSync) -> Snapshot:
    """Everything stored: every tenant with its Users, every job, every job's recorded changes."""
    jobs = svc.jobs()
    return (
        {tenant_id: svc.tenant(tenant_id) for tenant_id in svc.store.tenant_ids()},
        jobs,
        {job.id: svc.changes(job.id) for job in jobs},
    )


# -- R1: only admins push, revert, and change the settings ------------------------------

ADMIN_ONLY: dict[str, Callable[[LabelSync, str], object]] = {
    "start_push": lambda s, actor: s.start_push("t1", actor_id=actor, defaults=DEFAULTS),
    "push": lambda s, actor: s.push("t1", actor_id=actor, defaults=DEFAULTS),
    "revert_push": lambda s, actor: s.revert_push("job-1", actor_id=actor),
    "save_defaults": lambda s, actor: s.save_defaults("t1", actor_id=actor, defaults=DEFAULTS),
    "set_onboarding": lambda s, actor: s.set_onboarding("t1", actor_id=actor, enabled=True),
}


@pytest.mark.parametrize(
    "actor",
    [
        "u1",  # a User of the tenant without ADMIN_ACCESS
        "nobody",  # not a User at all
        "",  # empty
    ],
)
@pytest.mark.parametrize("entry_point", sorted(ADMIN_ONLY))
def test_a_non_admin_is_denied_and_no_job_and_no_change_is_left_behind(
    svc: LabelSync, entry_point: str, actor: str
) -> None:
    """R1: PermissionDenied names the actor; nothing changes, no job exists."""
    before = snapshot(svc)
    with pytest.raises(PermissionDenied, match=f"actor_id: {actor!r}"):
        ADMIN_ONLY[entry_point](svc, actor)
    assert before == snapshot(svc)


def test_an_admin_of_another_tenant_is_not_an_admin_here(store: Store) -> None:
    """R1: admin rights are per tenant, even when the user ids coincide."""
    svc = service(store)
    svc.create_tenant(tenant("t1"))
    other_admin = user("boss", "globex.com", permissions=frozenset({Permission.ADMIN_ACCESS}))
    svc.create_tenant(Tenant(id="t2", name="Globex", users=(other_admin,)))
    before = snapshot(svc)
    with pytest.raises(PermissionDenied, match="'boss' is not a User of tenant 't1'"):
        svc.start_push("t1", actor_id="boss", defaults=DEFAULTS)
    assert before == snapshot(svc)


def test_a_user_with_email_sync_but_no_admin_access_names_the_missing_permission(
    svc: LabelSync,
) -> None:
    with pytest.raises(PermissionDenied, match="ADMIN_ACCESS"):
        svc.start_push("t1", actor_id="u1", defaults=DEFAULTS)


# -- unknown ids ----------------------------------------------------------------------

UNKNOWN_TENANT: dict[str, Callable[[LabelSync, str], object]] = {
    "tenant": lambda s, t: s.tenant(t),
    "user": lambda s, t: s.user(t, "u1"),
    "add_user": lambda s, t: s.add_user(t, user("u99")),
    "set_selection": lambda s, t: s.set_selection(t, "u1", LabelSet(["INBOX"])),
    "save_defaults": lambda s, t: s.save_defaults(t, actor_id=ADMIN, defaults=DEFAULTS),
    "set_onboarding": lambda s, t: s.set_onboarding(t, actor_id=ADMIN, enabled=True),
    "onboard": lambda s, t: s.onboard(t, "u1"),
    "email_tab": lambda s, t: s.email_tab(t, "u1"),
    "preview": lambda s, t: s.preview(t, DEFAULTS),
    "start_push": lambda s, t: s.start_push(t, actor_id=ADMIN, defaults=DEFAULTS),
    "push": lambda s, t: s.push(t, actor_id=ADMIN, defaults=DEFAULTS),
    "jobs": lambda s, t: s.jobs(t),
}


@pytest.mark.parametrize("tenant_id", ["t3", "T1", ""])
@pytest.mark.parametrize("entry_point", sorted(UNKNOWN_TENANT))
def test_an_unknown_tenant_is_refused_by_every_entry_point_naming_the_id(
    svc: LabelSync, entry_point: str, tenant_id: str
) -> None:
    before = snapshot(svc)
    with pytest.raises(UnknownTenant, match=f"tenant_id: {tenant_id!r}") as raised:
        UNKNOWN_TENANT[entry_point](svc, tenant_id)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, LookupError)
    assert before == snapshot(svc)


UNKNOWN_USER: dict[str, Callable[[LabelSync, str], object]] = {
    "user": lambda s, u: s.user("t1", u),
    "set_selection": lambda s, u: s.set_selection("t1", u, LabelSet(["INBOX"])),
    "onboard": lambda s, u: s.onboard("t1", u),  # t1 has a finished push to onboard with
    "email_tab": lambda s, u: s.email_tab("t1", u),
}


@pytest.mark.parametrize("user_id", ["u99", "U1", ""])
@pytest.mark.parametrize("entry_point", sorted(UNKNOWN_USER))
def test_an_unknown_user_is_refused_naming_the_id(
    svc: LabelSync, entry_point: str, user_id: str
) -> None:
    before = snapshot(svc)
    with pytest.raises(UnknownUser, match=f"user_id: {user_id!r}") as raised:
        UNKNOWN_USER[entry_point](svc, user_id)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, LookupError)
    assert before == snapshot(svc)


def test_a_user_of_another_tenant_is_unknown_here(store: Store) -> None:
    svc = service(store)
    svc.create_tenant(tenant("t1", size=1))
    svc.create_tenant(Tenant(id="t2", name="Globex", users=(user("only-in-t2", "globex.com"),)))
    with pytest.raises(UnknownUser, match="'only-in-t2' is not a User of tenant 't1'"):
        svc.set_selection("t1", "only-in-t2", LabelSet(["INBOX"]))


UNKNOWN_JOB: dict[str, Callable[[LabelSync, str], object]] = {
    "job": lambda s, j: s.job(j),
    "run_push": lambda s, j: s.run_push(j),
    "changes": lambda s, j: s.changes(j),
    "revert_push": lambda s, j: s.revert_push(j, actor_id=ADMIN),
}


@pytest.mark.parametrize("job_id", ["job-99", "JOB-1", ""])
@pytest.mark.parametrize("entry_point", sorted(UNKNOWN_JOB))
def test_an_unknown_job_is_refused_naming_the_id(
    svc: LabelSync, entry_point: str, job_id: str
) -> None:
    before = snapshot(svc)
    with pytest.raises(UnknownJob, match=f"job_id: {job_id!r}") as raised:
        UNKNOWN_JOB[entry_point](svc, job_id)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, LookupError)
    assert before == snapshot(svc)


# -- bad input -----------------------------------------------------------------------


class NaiveClock:
    """A broken clock port: local wall time without a zone."""

    def now(self) -> dt.datetime:
        return dt.datetime(2024, 5, 1, 9, 0)


def test_a_naive_clock_is_refused_naming_clock_now_and_no_job_is_stored(
    svc: LabelSync,
) -> None:
    broken = service(svc.store, NaiveClock())
    before = snapshot(svc)
    with pytest.raises(
        InvalidInput, match=r"clock\.now\(\): datetime\.datetime\(2024, 5, 1, 9, 0\)"
    ):
        broken.start_push("t1", actor_id=ADMIN, defaults=DEFAULTS)
    with pytest.raises(InvalidInput, match=r"clock\.now\(\)"):
        broken.push("t1", actor_id=ADMIN, defaults=DEFAULTS)
    assert before == snapshot(svc)


def test_a_naive_clock_at_the_finish_leaves_the_job_unfinished_and_resumable(
    svc: LabelSync,
) -> None:
    """R11, R12: no audit record with an ambiguous time; a good clock finishes the job later."""
    job = svc.start_push("t1", actor_id=ADMIN, defaults=Defaults(inbox=False, sent=True))
    broken = service(svc.store, NaiveClock())
    with pytest.raises(InvalidInput, match=r"clock\.now\(\)"):
        broken.run_push(job.id, batch_size=3)
    stuck = svc.job(job.id)
    assert (JobStatus.RUNNING, 7, None) == (stuck.status, stuck.processed, stuck.finished_at)
    last = svc.tenant("t1").last_push
    assert last is not None
    assert "job-1" == last.job_id

    done = svc.run_push(job.id).job
    assert (JobStatus.DONE, T0) == (done.status, done.finished_at)


@pytest.mark.parametrize("batch_size", [0, -1, True, False, "5", 2.0, None])
def test_a_bad_batch_size_is_refused_naming_it_before_anything_is_stored(
    svc: LabelSync, batch_size: object
) -> None:
    job = svc.start_push("t1", actor_id=ADMIN, defaults=DEFAULTS)
    before = snapshot(svc)
    calls: dict[str, Callable[[], object]] = {
        "run_push": lambda: svc.run_push(job.id, batch_size=batch_size),  # type: ignore[arg-type]
        "push": lambda: svc.push(
            "t1",
            actor_id=ADMIN,
            defaults=DEFAULTS,
            batch_size=batch_size,  # type: ignore[arg-type]
        ),
        "revert_push": lambda: svc.revert_push(
            "job-1",
            actor_id=ADMIN,
            batch_size=batch_size,  # type: ignore[arg-type]
        ),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInput, match=re.escape(f"batch_size: {batch_size!r}")):
            call()
        assert before == snapshot(svc), name


def test_a_duplicate_user_id_on_add_user_is_refused_and_the_first_user_kept(
    svc: LabelSync,
) -> None:
    before = snapshot(svc)
    with pytest.raises(AlreadyExists, match=r"user\.id: 'u1'") as raised:
        svc.add_user("t1", user("u1", "impostor.io"))
    assert isinstance(raised.value, ValueError)
    assert before == snapshot(svc)


def test_a_duplicate_tenant_id_is_refused(svc: LabelSync) -> None:
    before = snapshot(svc)
    with pytest.raises(AlreadyExists, match=r"tenant\.id: 't1'"):
        svc.create_tenant(tenant("t1", "impostor.io"))
    assert before == snapshot(svc)


NOT_DEFAULTS: list[object] = [None, {"inbox": True, "sent": True}, (True, False), "inbox"]

TAKES_DEFAULTS: dict[str, Callable[[LabelSync, object], object]] = {
    "start_push": lambda s, d: s.start_push("t1", actor_id=ADMIN, defaults=d),  # type: ignore[arg-type]
    "push": lambda s, d: s.push("t1", actor_id=ADMIN, defaults=d),  # type: ignore[arg-type]
    "save_defaults": lambda s, d: s.save_defaults("t1", actor_id=ADMIN, defaults=d),  # type: ignore[arg-type]
    "preview": lambda s, d: s.preview("t1", d),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("value", NOT_DEFAULTS, ids=repr)
@pytest.mark.parametrize("entry_point", sorted(TAKES_DEFAULTS))
def test_defaults_that_are_not_a_defaults_are_refused_naming_defaults(
    svc: LabelSync, entry_point: str, value: object
) -> None:
    before = snapshot(svc)
    with pytest.raises(InvalidInput, match="defaults: ") as raised:
        TAKES_DEFAULTS[entry_point](svc, value)
    assert value == raised.value.value
    assert before == snapshot(svc)


def test_selecting_a_label_the_mailbox_lacks_is_refused_naming_it(svc: LabelSync) -> None:
    before = snapshot(svc)
    with pytest.raises(InvalidInput, match="synced: 'Label_404' is not a label of the mailbox"):
        svc.set_selection("t1", "u1", LabelSet(["INBOX", "Label_404"]))
    assert before == snapshot(svc)


def test_a_stale_id_already_selected_may_stay_in_an_edit(store: Store) -> None:
    """R5: an id the mailbox lost is kept, and keeping it is not 'selecting' it."""
    svc = service(store)
    svc.create_tenant(Tenant(id="t1", name="Acme", users=(user("u1", synced=("Gone_7",)),)))
    stored = svc.set_selection("t1", "u1", LabelSet(["Gone_7", "Label_1"]))
    assert frozenset({"Gone_7", "Label_1"}) == stored.synced.ids
    assert stored == svc.user("t1", "u1")
    assert 1 == stored.version


def test_create_tenant_keeps_the_last_push_record_so_onboarding_can_use_it(
    store: Store,
) -> None:
    """R11, B4: a tenant with a push on record is stored whole, never silently trimmed."""
    svc = service(store)
    record = PushRecord(
        job_id="imported-1",
        actor_id=ADMIN,
        defaults=DEFAULTS,
        started_at=T0,
        finished_at=T0,
        roster_size=7,
        counts=PushCounts(),
    )
    given = attrs.evolve(tenant("t1"), last_push=record, onboard_new_users=True)

    svc.create_tenant(given)

    assert record == svc.tenant("t1").last_push


WRONG_TYPES: list[tuple[str, Callable[[LabelSync], object], str]] = [
    ("create_tenant", lambda s: s.create_tenant("t9"), "tenant: 't9'"),  # type: ignore[arg-type]
    ("add_user", lambda s: s.add_user("t1", "u9"), "user: 'u9'"),  # type: ignore[arg-type]
    (
        "set_selection",
        lambda s: s.set_selection("t1", "u1", ["INBOX"]),  # type: ignore[arg-type]
        r"synced: \['INBOX'\]",
    ),
    (
        "set_onboarding",
        lambda s: s.set_onboarding("t1", actor_id=ADMIN, enabled="yes"),  # type: ignore[arg-type]
        "enabled: 'yes'",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"), [(c, m) for _, c, m in WRONG_TYPES], ids=[n for n, _, _ in WRONG_TYPES]
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(
    svc: LabelSync, call: Callable[[LabelSync], object], message: str
) -> None:
    before = snapshot(svc)
    with pytest.raises(InvalidInput, match=message):
        call(svc)
    assert before == snapshot(svc)


def test_every_refusal_is_a_labelsync_error(svc: LabelSync) -> None:
    """Callers can catch one base class for everything labelsync refuses on purpose."""
    refusals: list[Callable[[], object]] = [
        lambda: svc.start_push("t1", actor_id="u1", defaults=DEFAULTS),
        lambda: svc.tenant("nope"),
        lambda: svc.job("nope"),
        lambda: svc.run_push("job-1", batch_size=0),
    ]
    for refusal in refusals:
        with pytest.raises(LabelSyncError):
            refusal()


# -- tenant isolation ---------------------------------------------------------------


class RecordingStore(StoreProxy):
    """Records, for every call, the tenant it concerned and every User it returned."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.calls: list[tuple[str, str]] = []
        self.users_seen: list[User] = []

    def _tenant_of(self, method: str, args: tuple[object, ...]) -> str:
        first = args[0] if args else None
        if isinstance(first, Tenant):
            return first.id
        if isinstance(first, PushJob | RevertJob):
            return first.tenant_id
        if method in ("get_job", "run_batch", "finish_job", "job_changes", "job_skips"):
            return self.inner.get_job(str(first)).tenant_id
        return str(first)

    def intercept(self, method: str, args: tuple[object, ...], call: Callable[[], T]) -> T:
        self.calls.append((method, self._tenant_of(method, args)))
        result = call()
        found: object = result
        if isinstance(found, User):
            self.users_seen.append(found)
        elif isinstance(found, Tenant):
            self.users_seen.extend(found.users)
        elif isinstance(found, list):
            for item in found:
                if isinstance(item, User):
                    self.users_seen.append(item)
                elif isinstance(item, tuple) and isinstance(item[1], User):
                    self.users_seen.append(item[1])
        return result


def test_a_push_of_one_tenant_never_reads_or_writes_another_tenants_users(
    store: Store,
) -> None:
    """Every store call of a push, a revert and an edit names the pushed tenant only."""
    setup = service(store)
    setup.create_tenant(tenant("t1", "acme.io", size=9))
    setup.create_tenant(tenant("t2", "globex.com", size=9))
    setup.set_selection("t2", "u3", LabelSet(["Label_1"]))
    other_before = (setup.tenant("t2"), setup.jobs("t2"))
    recording = RecordingStore(store)
    svc = service(recording)

    report = svc.push("t1", actor_id=ADMIN, defaults=Defaults(inbox=False, sent=True), batch_size=2)
    svc.set_selection("t1", "u3", LabelSet(["INBOX", "Label_1"]))
    # Onboarding covers only a User no push covered (R16): a User added after the push.
    svc.add_user("t1", user("u-new", "acme.io"))
    svc.onboard("t1", "u-new")
    svc.revert_push(report.job.id, actor_id=ADMIN, batch_size=2)

    assert other_before == (setup.tenant("t2"), setup.jobs("t2"))
    assert {"t1"} == {tenant_id for _, tenant_id in recording.calls}
    assert {"run_batch", "finish_job", "save_users"} <= {method for method, _ in recording.calls}
    assert recording.users_seen
    assert [] == [u.email for u in recording.users_seen if not u.email.endswith("@acme.io")]
    assert 10 == report.job.total


# -- R11: settings written per field, so concurrent writers never undo each other ----------------


class Interleaved(StoreProxy):
    """Runs `other` once, just before the `at`-th store call (counting from 0) reaches the store."""

    def __init__(self, inner: Store, other: Callable[[], object], at: int) -> None:
        super().__init__(inner)
        self.other = other
        self.at = at
        self.calls = 0

    def intercept(self, method: str, args: tuple[object, ...], call: Callable[[], T]) -> T:
        if self.calls == self.at:
            self.other()
        self.calls += 1
        return call()


@pytest.mark.parametrize("at", range(5))
def test_set_onboarding_never_undoes_the_checkboxes_of_a_push_started_meanwhile(
    store: Store, at: int
) -> None:
    """R11, B4: whichever of its store calls a whole push lands before, both settings survive."""
    service(store).create_tenant(tenant())
    pushed = Defaults(inbox=False, sent=True)

    def push() -> None:
        service(store).push("t1", actor_id=ADMIN, defaults=pushed)

    racing = Interleaved(store, push, at)
    service(racing).set_onboarding("t1", actor_id=ADMIN, enabled=True)
    if racing.calls <= at:
        push()  # set_onboarding made fewer calls: the push comes after it

    stored = service(store).tenant("t1")
    assert (pushed, True) == (stored.defaults, stored.onboard_new_users)


@pytest.mark.parametrize("at", range(5))
def test_save_defaults_never_undoes_an_onboarding_switch_turned_on_meanwhile(
    store: Store, at: int
) -> None:
    """R11, B4: the checkboxes and the switch are two fields; writing one keeps the other."""
    service(store).create_tenant(tenant())
    saved = Defaults(inbox=True, sent=True)

    def switch_on() -> None:
        service(store).set_onboarding("t1", actor_id=ADMIN, enabled=True)

    racing = Interleaved(store, switch_on, at)
    service(racing).save_defaults("t1", actor_id=ADMIN, defaults=saved)
    if racing.calls <= at:
        switch_on()

    stored = service(store).tenant("t1")
    assert (saved, True) == (stored.defaults, stored.onboard_new_users)
