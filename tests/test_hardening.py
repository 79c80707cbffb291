"""Issue 11 (hardening): every bad input gets a typed answer and leaves every store as it was,
every caller is authorised in the core, and status tells an interrupted push from a running one.

Each test names the finding it closes (F1..F11, or "who may call what"). The services run on
memory, SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from labelsync import Defaults, JobStatus, LabelSet, LabelSync, Permission, Tenant, User
from labelsync._validate import MAX_BATCH_SIZE, MAX_ID_LENGTH, MAX_INT64, MAX_VERSION
from labelsync.adapters.clock import FixedClock, SystemClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    LabelSyncError,
    PermissionDenied,
    Retryable,
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    UnknownTenant,
    UnknownUser,
)
from labelsync.jobs import Activity, PushJob, activity
from labelsync.model import Label, Mailbox, Provider, SystemLabel
from labelsync.ports import Store
from postgres_fixtures import fresh_schema, postgres_dsn

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
INBOX = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
SENT = Label(id="SENT", name="Sent", system=SystemLabel.SENT)


def user(user_id: str, *, admin: bool = False, synced: tuple[str, ...] = ("SENT",)) -> User:
    address = f"{user_id}@acme.test"
    permissions = {Permission.EMAIL_SYNC} | ({Permission.ADMIN_ACCESS} if admin else set())
    return User(
        id=user_id,
        email=address,
        permissions=frozenset(permissions),
        mailbox=Mailbox(provider=Provider.GMAIL, address=address, labels=(INBOX, SENT)),
        synced=LabelSet(synced),
    )


def acme() -> Tenant:
    users = (user("admin", admin=True), user("ann"), user("bob"), user("cy"))
    return Tenant(id="acme", name="Acme", users=users)


@pytest.fixture
def svc(store: Store) -> LabelSync:
    service = LabelSync(store=store, clock=FixedClock(T0))
    service.create_tenant(acme())
    return service


def everything(svc: LabelSync) -> object:
    """All a caller can see of the store, to compare before and after a refused call."""
    store = svc.store
    tenants = [store.get_tenant(t) for t in store.tenant_ids()]
    jobs = store.list_jobs()
    trail = [(list(store.job_changes(j.id)), list(store.job_skips(j.id))) for j in jobs]
    return tenants, jobs, trail


# -- F1, F2, F3: text and ids ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("a\udc80", "lone surrogate"),
        ("a\x00b", "NUL"),
        ("x" * (MAX_ID_LENGTH + 1), "at most 255"),
    ],
)
def test_a_user_id_outside_the_input_policy_cannot_be_built(bad: str, problem: str) -> None:
    """F1, F2, F3: the model refuses it, naming the field, before any store sees it."""
    with pytest.raises(InvalidInput, match=rf"User\.id: .*{problem}"):
        User(id=bad, email="a@acme.test")


@pytest.mark.parametrize("bad", ["a\udc80", "a\x00b"])
def test_names_emails_and_label_ids_outside_the_input_policy_are_refused(bad: str) -> None:
    """F1, F2: every text field, not only ids."""
    with pytest.raises(InvalidInput, match=r"Tenant\.name"):
        Tenant(id="t", name=bad)
    with pytest.raises(InvalidInput, match=r"User\.email"):
        User(id="u", email=bad)
    with pytest.raises(InvalidInput, match=r"LabelSet\.ids"):
        LabelSet(["INBOX", bad])
    with pytest.raises(InvalidInput, match=r"Label\.name"):
        Label(id="x", name=bad)
    with pytest.raises(InvalidInput, match=r"Mailbox\.address"):
        Mailbox(provider=Provider.GMAIL, address=bad)


def test_text_longer_than_4096_characters_is_refused_and_4096_accepted() -> None:
    assert 4096 == len(Tenant(id="t", name="n" * 4096).name)
    with pytest.raises(InvalidInput, match="at most 4096"):
        Tenant(id="t", name="n" * 4097)


@pytest.mark.parametrize("bad", ["a\x00", "a\udc80", "x" * 3000])
def test_the_service_answers_unknown_for_an_id_outside_the_policy_on_every_store(
    svc: LabelSync, bad: str
) -> None:
    """F2: ``tenant("a\\x00")`` raises UnknownTenant (not psycopg.DataError), on every store."""
    before = everything(svc)
    with pytest.raises(UnknownTenant):
        svc.tenant(bad)
    with pytest.raises(UnknownUser):
        svc.user("acme", bad)
    with pytest.raises(UnknownUser):
        svc.set_selection("acme", bad, LabelSet())
    with pytest.raises(PermissionDenied):
        svc.start_push("acme", actor_id=bad, defaults=Defaults(inbox=True, sent=True))
    assert before == everything(svc)


# -- F4, F5: integers and batch sizes ----------------------------------------------------------


def test_a_new_user_above_version_2_62_is_refused_and_nothing_stored(svc: LabelSync) -> None:
    """F4: 2**63-1 used to pass, and then every push of the tenant crashed on the increment."""
    before = everything(svc)
    for version in (MAX_VERSION + 1, MAX_INT64):
        with pytest.raises(InvalidInput, match="version"):
            svc.add_user("acme", User(id="big", email="b@acme.test", version=version))
    with pytest.raises(InvalidInput, match="version"):
        User(id="big", email="b@acme.test", version=2**63)
    assert before == everything(svc)


def test_a_tenant_with_a_user_at_the_largest_version_pushes_to_the_end(store: Store) -> None:
    """F4: a User created at 2**62 is pushed, and the job finishes (no job PENDING forever)."""
    svc = LabelSync(store=store, clock=FixedClock(T0))
    big = User(id="big", email="b@acme.test", mailbox=user("big").mailbox, version=MAX_VERSION)
    svc.create_tenant(Tenant(id="t", name="T", users=(user("admin", admin=True), big)))

    report = svc.push("t", actor_id="admin", defaults=Defaults(inbox=True, sent=True))

    assert JobStatus.DONE is report.job.status
    assert MAX_VERSION + 1 == svc.user("t", "big").version


@pytest.mark.parametrize("batch_size", [2**63, MAX_BATCH_SIZE + 1, 0, -1, 1.0, True])
def test_push_refuses_a_batch_size_before_creating_or_superseding_a_job(
    svc: LabelSync, batch_size: object
) -> None:
    """F5: the running push is not superseded and no job is left behind."""
    running = svc.start_push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=True))
    before = everything(svc)

    with pytest.raises(InvalidInput, match="batch_size"):
        svc.push(
            "acme",
            actor_id="admin",
            defaults=Defaults(inbox=False, sent=False),
            batch_size=batch_size,  # type: ignore[arg-type]
        )

    assert before == everything(svc)
    assert JobStatus.PENDING is svc.job(running.id).status


def test_revert_refuses_a_huge_batch_size_with_a_typed_error(svc: LabelSync) -> None:
    """F5: revert_push(batch_size=2**63) raised a bare ValueError."""
    done = svc.push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=False))
    before = everything(svc)
    with pytest.raises(InvalidInput, match="batch_size"):
        svc.revert_push(done.job.id, actor_id="admin", batch_size=2**63)
    assert before == everything(svc)


@pytest.mark.parametrize("lease", [math.nan, math.inf, 0, -1, 8 * 24 * 3600, "60"])
def test_run_push_refuses_a_lease_outside_the_policy_and_writes_nothing(
    svc: LabelSync, lease: object
) -> None:
    job = svc.start_push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=True))
    before = everything(svc)
    with pytest.raises(InvalidInput, match="lease_seconds"):
        svc.run_push(job.id, lease_seconds=lease)  # type: ignore[arg-type]
    assert before == everything(svc)


# -- F9: racing add_user on PostgreSQL --------------------------------------------------------


@pytest.mark.postgres
def test_the_loser_of_an_add_user_race_on_postgres_gets_already_exists() -> None:
    """F9: the insert that loses on the unique index raised psycopg's UniqueViolation."""
    import psycopg

    from labelsync.adapters.postgres import PostgresStore

    dsn = postgres_dsn()
    with fresh_schema(dsn) as schema, PostgresStore(dsn, schema=schema) as store:
        store.add_tenant(acme())
        racer = user("dan")
        with psycopg.connect(dsn) as other:
            # Another transaction inserts the same id and holds it uncommitted, so our
            # add_user passes its existence check and then waits on the unique index.
            other.execute(
                f'INSERT INTO "{schema}".users (tenant_id, id, position, email, permissions, '
                f"other_synced) VALUES ('acme', 'dan', 1000, 'd@acme.test', '[]', '[]')"
            )
            outcome: list[BaseException | None] = []

            def add() -> None:
                try:
                    store.add_user("acme", racer)
                    outcome.append(None)
                except BaseException as error:
                    outcome.append(error)

            thread = threading.Thread(target=add)
            thread.start()
            thread.join(timeout=1)
            other.commit()
            thread.join(timeout=30)

        assert 1 == len(outcome)
        assert isinstance(outcome[0], AlreadyExists), outcome


# -- F10, F11: clocks and constructors --------------------------------------------------------


def test_advancing_a_fixed_clock_past_the_year_9999_is_a_typed_error() -> None:
    """F10: it raised OverflowError; the clock stays where it was."""
    clock = FixedClock(dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(InvalidInput, match="9999"):
        clock.advance(dt.timedelta(days=2))
    assert dt.datetime(9999, 12, 31, tzinfo=dt.UTC) == clock.now()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"store": None, "clock": SystemClock()}, "store"),
        ({"store": object(), "clock": SystemClock()}, "store"),
        ({"store": InMemoryStore(), "clock": None}, "clock"),
        ({"store": InMemoryStore(), "clock": SystemClock(), "new_id": "id"}, "new_id"),
    ],
)
def test_labelsync_checks_its_arguments_when_made(arguments: dict[str, object], field: str) -> None:
    """F11: ``LabelSync(store=None)`` failed later with AttributeError."""
    with pytest.raises(InvalidInput, match=rf"^{field}: "):
        LabelSync(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [123, None, b"x.db", "a\x00.db"])
def test_sqlite_store_refuses_a_path_that_is_not_a_text_path(path: object) -> None:
    """F11: ``SqliteStore(123)`` raised TypeError."""
    with pytest.raises(InvalidInput, match=r"^path: "):
        SqliteStore(path)  # type: ignore[arg-type]


def test_sqlite_store_names_a_directory_given_as_its_path(tmp_path: Path) -> None:
    """F11: the error did not name the path."""
    with pytest.raises(InvalidInput, match=f"path: '{tmp_path}' is a directory"):
        SqliteStore(tmp_path)


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1, 10**9, "30", True])
def test_sqlite_store_refuses_a_busy_timeout_that_is_not_a_finite_wait(
    tmp_path: Path, timeout: object
) -> None:
    """F11: ``busy_timeout=nan`` was accepted."""
    with pytest.raises(InvalidInput, match=r"^busy_timeout: "):
        SqliteStore(tmp_path / "x.db", busy_timeout=timeout)  # type: ignore[arg-type]
    assert not (tmp_path / "x.db").exists()


# -- F7, F8 in the library: typed storage errors, read-only and foreign files -------------------


def test_storage_errors_are_typed_and_only_busy_and_unavailable_are_retryable() -> None:
    assert all(issubclass(cls, StorageError) for cls in (StorageCorrupt, StorageFull))
    retryable = {StorageBusy, StorageUnavailable}
    final = {StorageCorrupt, StorageReadOnly, StorageFull, InvalidInput, PermissionDenied}
    assert all(issubclass(cls, Retryable) for cls in retryable)
    assert not any(issubclass(cls, Retryable) for cls in final)


def test_a_read_only_store_reads_and_refuses_every_write_leaving_the_file_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "acme.db"
    with SqliteStore(path) as writable:
        writable.add_tenant(acme())
    before = path.read_bytes()

    with SqliteStore(path, read_only=True) as store:
        assert acme().users == store.get_tenant("acme").users
        with pytest.raises(StorageReadOnly, match=str(path)):
            store.add_user("acme", user("dan"))

    assert before == path.read_bytes()
    assert ["acme.db"] == sorted(p.name for p in tmp_path.iterdir())


def test_another_applications_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    """F8: opening it used to add labelsync's six tables to it."""
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    before = path.read_bytes()

    for read_only in (False, True):
        with pytest.raises(InvalidInput, match=r"not a labelsync database.*invoices"):
            SqliteStore(path, read_only=read_only)

    assert before == path.read_bytes()


def test_a_store_that_may_not_create_refuses_an_empty_or_missing_file(tmp_path: Path) -> None:
    """F8: ``status`` turned an empty file into a labelsync database."""
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(InvalidInput, match="is not a labelsync database"):
        SqliteStore(empty, create=False)
    with pytest.raises(InvalidInput, match="does not exist"):
        SqliteStore(tmp_path / "missing.db", create=False)
    assert 0 == empty.stat().st_size
    assert not (tmp_path / "missing.db").exists()


def test_a_write_lock_held_past_the_busy_timeout_is_storage_busy_naming_the_file(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "acme.db"
    with SqliteStore(path, busy_timeout=0.05) as store:
        store.add_tenant(acme())
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageBusy, match=str(path)) as busy:
                store.add_user("acme", user("dan"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert isinstance(busy.value, Retryable)
        assert ["admin", "ann", "bob", "cy"] == [u.id for u in store.get_tenant("acme").users]


# -- who may call what --------------------------------------------------------------------------

HOST, SELF, OTHER, ADMIN, STRANGER = "host", "self", "other", "admin", "stranger"
ROLE_ACTOR: dict[str, str | None] = {
    HOST: None,  # the host's own, trusted call
    SELF: "ann",  # the User the call is about
    OTHER: "bob",  # another plain User of the tenant
    ADMIN: "admin",
    STRANGER: "nobody",  # not a User of the tenant
}

Entry = Callable[[LabelSync, str | None], object]


def _add_plain(svc: LabelSync, actor: str | None) -> object:
    return svc.add_user("acme", user("dan"), actor_id=actor)


def _add_admin(svc: LabelSync, actor: str | None) -> object:
    return svc.add_user("acme", user("dan", admin=True), actor_id=actor)


def _select(svc: LabelSync, actor: str | None) -> object:
    return svc.set_selection("acme", "ann", LabelSet(["INBOX"]), actor_id=actor)


def _onboard(svc: LabelSync, actor: str | None) -> object:
    return svc.onboard("acme", "ann", actor_id=actor)


def _save_defaults(svc: LabelSync, actor: str | None) -> None:
    svc.save_defaults("acme", actor_id=actor or "", defaults=Defaults(inbox=True, sent=False))


def _set_onboarding(svc: LabelSync, actor: str | None) -> None:
    svc.set_onboarding("acme", actor_id=actor or "", enabled=True)


def _start_push(svc: LabelSync, actor: str | None) -> object:
    return svc.start_push("acme", actor_id=actor or "", defaults=Defaults(inbox=True, sent=True))


def _revert(svc: LabelSync, actor: str | None) -> object:
    return svc.revert_push(svc.jobs("acme")[0].id, actor_id=actor or "")


ENTRY_POINTS: dict[str, Entry] = {
    "add_user (plain User)": _add_plain,
    "add_user (ADMIN_ACCESS)": _add_admin,
    "set_selection": _select,
    "onboard": _onboard,
    "save_defaults": _save_defaults,
    "set_onboarding": _set_onboarding,
    "start_push": _start_push,
    "revert_push": _revert,
}

# Who may: the decision table the docs state (docs/reference/limits.md, "Who may call what").
ALLOWED: dict[str, set[str]] = {
    "add_user (plain User)": {HOST, ADMIN},
    "add_user (ADMIN_ACCESS)": {HOST, ADMIN},
    "set_selection": {HOST, SELF, ADMIN},
    "onboard": {HOST, SELF, ADMIN},
    "save_defaults": {ADMIN},
    "set_onboarding": {ADMIN},
    "start_push": {ADMIN},
    "revert_push": {ADMIN},
}


@pytest.mark.parametrize("role", list(ROLE_ACTOR))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_role_and_entry_point_pair_is_allowed_or_denied_as_documented(
    entry: str, role: str, tmp_path: Path
) -> None:
    """Who may call what: each pair of role x entry point, decided in the core; a refusal
    raises PermissionDenied and writes nothing. (A host call of an admin-only entry point
    names no actor, so it is denied like anyone who is not an admin.)"""
    with SqliteStore(tmp_path / "acme.db") as store:
        svc = LabelSync(store=store, clock=FixedClock(T0))
        tenant = acme()
        if entry == "onboard":
            # Onboarding covers only a User no push covered (R16): ann joins after the push.
            tenant = tenant.with_users(u for u in tenant.users if u.id != "ann")
        svc.create_tenant(tenant)
        svc.push("acme", actor_id="admin", defaults=Defaults(inbox=False, sent=False))
        if entry == "onboard":
            svc.add_user("acme", user("ann"))
        before = everything(svc)

        if role in ALLOWED[entry]:
            ENTRY_POINTS[entry](svc, ROLE_ACTOR[role])
            assert before != everything(svc) or entry in {"save_defaults", "onboard"}
        else:
            with pytest.raises(PermissionDenied):
                ENTRY_POINTS[entry](svc, ROLE_ACTOR[role])
            assert before == everything(svc)


def test_a_plain_user_cannot_add_a_user_holding_admin_access_and_push_as_them(
    svc: LabelSync,
) -> None:
    """Who may call what: the escalation the issue found, refused on every store."""
    before = everything(svc)
    with pytest.raises(PermissionDenied, match=r"'bob' lacks ADMIN_ACCESS.*add User 'mallory'"):
        svc.add_user("acme", user("mallory", admin=True), actor_id="bob")
    with pytest.raises(PermissionDenied):
        svc.start_push("acme", actor_id="mallory", defaults=Defaults(inbox=False, sent=False))
    assert before == everything(svc)


def test_a_user_changes_their_own_selection_and_an_admin_anyones(svc: LabelSync) -> None:
    """Who may call what: set_selection on a person's behalf."""
    assert LabelSet(["INBOX"]) == svc.set_selection("acme", "ann", LabelSet(["INBOX"])).synced
    assert LabelSet([]) == svc.set_selection("acme", "ann", LabelSet(), actor_id="ann").synced
    assert LabelSet(["SENT"]) == (
        svc.set_selection("acme", "ann", LabelSet(["SENT"]), actor_id="admin").synced
    )
    with pytest.raises(PermissionDenied, match="'bob' lacks ADMIN_ACCESS"):
        svc.set_selection("acme", "ann", LabelSet(), actor_id="bob")
    assert LabelSet(["SENT"]) == svc.user("acme", "ann").synced


# -- interrupted vs running -----------------------------------------------------------------------


class _Stop(BaseException):
    """Stands for Ctrl-C (a KeyboardInterrupt) arriving between two batches."""


def _stop(job: PushJob) -> None:
    raise _Stop


def test_a_push_stopped_between_batches_is_interrupted_not_running(svc: LabelSync) -> None:
    """Status: a push stopped by Ctrl-C showed RUNNING although nothing ran it."""
    job = svc.start_push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=True))
    assert Activity.WAITING is svc.activity(svc.job(job.id))

    with pytest.raises(_Stop):
        svc.run_push(job.id, batch_size=1, progress=_stop)

    stopped = svc.job(job.id)
    assert (JobStatus.RUNNING, Activity.INTERRUPTED) == (stopped.status, svc.activity(stopped))
    assert Activity.FINISHED is svc.activity(svc.run_push(job.id).job)


def test_a_running_push_holds_a_live_lease_that_lapses_if_its_runner_is_killed(
    svc: LabelSync,
) -> None:
    """A runner killed outright cannot release its lease; once it lapses, the job is INTERRUPTED."""
    job = svc.start_push("acme", actor_id="admin", defaults=Defaults(inbox=True, sent=True))
    seen: list[Activity] = []
    svc.run_push(job.id, batch_size=1, progress=lambda j: seen.append(svc.activity(j)))
    assert {Activity.RUNNING} == set(seen)

    # What a SIGKILLed runner leaves behind: a lease that nobody renews or releases.
    left = PushJob(
        id="k",
        tenant_id="acme",
        actor_id="admin",
        defaults=Defaults(inbox=True, sent=True),
        status=JobStatus.RUNNING,
        started_at=T0,
        runner_id="elsewhere:1:x",
        lease_until=T0 + dt.timedelta(seconds=60),
    )
    assert Activity.RUNNING is activity(left, T0 + dt.timedelta(seconds=59))
    assert Activity.INTERRUPTED is activity(left, T0 + dt.timedelta(seconds=60))
    assert Activity.INTERRUPTED is activity(left, T0, runner_alive=False)


def test_a_runner_of_this_host_whose_process_is_gone_is_known_dead_at_once() -> None:
    import socket

    from labelsync.service import runner_alive

    host = socket.gethostname()
    assert runner_alive(f"{host}:{os.getpid()}:x") is None  # alive: only the lease can tell
    assert runner_alive(f"{host}:{2**22 + 12345}:x") is False  # above pid_max: no such process
    assert runner_alive("worker-7") is None
    assert runner_alive(None) is None


def test_every_error_labelsync_raises_here_is_a_labelsync_error() -> None:
    assert issubclass(StorageError, LabelSyncError)
    assert issubclass(StorageBusy, LabelSyncError)


@pytest.mark.parametrize(
    "cls", [StorageBusy, StorageUnavailable, StorageFull, StorageReadOnly, StorageCorrupt]
)
def test_a_storage_error_survives_pickling_as_a_task_queue_ships_it(
    cls: type[StorageError],
) -> None:
    import pickle

    error = cls("acme.db", "the database is locked", "retry later")
    again = pickle.loads(pickle.dumps(error))

    assert (cls, "acme.db: the database is locked; retry later") == (type(again), str(again))
    assert ("acme.db", "retry later") == (again.path, again.advice)
