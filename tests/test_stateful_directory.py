"""The push state machine of tests/test_stateful.py, with the host's directory changing under it.

`DirectoryMachine` adds rules that update a User's host-owned fields, remove
a User, add a removed id again and sync a whole host roster (with or without
removing the Users it no longer lists), racing the inherited pushes, batches,
crashes, resumes and supersedes. The model follows R13 and R14 on its own,
never through `labelsync.directory`: a directory change keeps the selection but
the ids of labels the provider deleted and moves the version on; a roster User
removed before the push reached them is skipped as removed and counted; an id
added again is a new User outside that push's roster. After every step the
inherited invariants (stored Users and jobs equal the model, R3-R6, R11, R12) hold.
"""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, consumes, multiple, rule, run_state_machine_as_test

from labelsync import JobStatus, LabelSet, Mailbox, Tenant, User
from labelsync.exceptions import UnknownUser
from labelsync.ports import Store
from labelsync.testing import strategies
from postgres_fixtures import drop_schema, new_schema_name, postgres_dsn
from test_stateful import (
    ADMIN,
    MACHINE_SETTINGS,
    TENANT,
    InMemoryPushMachine,
    ModelJob,
    PushMachine,
    SqlitePushMachine,
    system_ids,
)


def deleted_ids(old: Mailbox | None, new: Mailbox | None) -> set[str]:
    """The label ids a refresh removed: the old mailbox had them, the new one has not."""
    if old is None or new is None:
        return set()
    return {label.id for label in old.labels} - {label.id for label in new.labels}


# R13: the host owns every field of a User but labelsync's own three; the model names them
# here rather than asking `labelsync.directory`, and covers fields added later (groups, R20).
LABELSYNC_FIELDS = frozenset({"synced", "version", "provenance"})
HOST_FIELDS = tuple(a.name for a in attrs.fields(User) if a.name not in LABELSYNC_FIELDS)


def host_fields(user: User) -> tuple[object, ...]:
    """Every host-owned field of `user` (R13): a change of any of them is an update."""
    return tuple(getattr(user, name) for name in HOST_FIELDS)


class DirectoryMachine(PushMachine):
    """Directory changes (R13, R14) racing the push machine's rules, next to the model."""

    removed_ids = Bundle("removed_ids")

    def __init__(self) -> None:
        super().__init__()
        self.born: dict[str, dt.datetime] = {}  # when the live User of each id was added
        self.removed_entries: dict[str, set[int]] = {}  # job id -> removed roster indices

    def remember(self, user: User) -> None:
        super().remember(user)
        self.born[user.id] = self.clock.now()

    # -- the model of R14 -----------------------------------------------------------------

    def model_batch(self, job: ModelJob, size: int) -> None:
        """R14: a removed roster entry is handled, skipped and counted; the rest as before."""
        removed = self.removed_entries.get(job.id, set())
        end = min(len(job.roster), job.processed + size)
        index = job.processed
        while index < end:
            if index in removed:
                job.counts["user_removed"] += 1
                job.processed, job.status = index + 1, JobStatus.RUNNING
                index += 1
                continue
            stretch = index
            while stretch < end and stretch not in removed:
                stretch += 1
            super().model_batch(job, stretch - index)
            index = stretch
        job.processed, job.status = max(job.processed, end), JobStatus.RUNNING

    def model_remove(self, user_id: str) -> None:
        """The User leaves; the running push, if its roster has them ahead, will skip them."""
        if self.current is not None:
            job = self.current_job()
            if user_id in job.roster and self.born[user_id] < job.started_at:
                index = job.roster.index(user_id)
                if index >= job.processed:
                    self.removed_entries.setdefault(job.id, set()).add(index)
        del self.users[user_id]
        del self.born[user_id]

    def model_update(self, host: User) -> bool:
        """R13: host-owned fields from `host`; the selection kept but for deleted labels."""
        model = self.users[host.id]
        if host_fields(host) == host_fields(model.added):
            return False
        synced = model.synced - deleted_ids(model.added.mailbox, host.mailbox)
        model.added = attrs.evolve(host, synced=LabelSet(synced), version=0)
        model.synced = frozenset(synced)
        model.version += 1
        model.own = model.synced - system_ids(host.mailbox)
        model.last_writer = "directory"
        return True

    # -- rules --------------------------------------------------------------------------

    @rule(user_id=PushMachine.user_ids, data=st.data())
    def update_user(self, user_id: str, data: st.DataObject) -> None:
        """R13: the host changes email, permissions or the mailbox (connect, refresh, drop)."""
        self.tick()
        if user_id not in self.users or user_id == ADMIN:
            return
        current = self.users[user_id].expected()
        tenant = Tenant(id=TENANT, name="Acme", users=(current,))
        listed = [
            u for u in data.draw(strategies.host_rosters(tenant, max_new=0)) if u.id == user_id
        ]
        host = listed[0] if listed else attrs.evolve(current, mailbox=None)
        changed = self.model_update(host)
        stored = self.svc.update_user(TENANT, host)
        assert self.users[user_id].expected() == stored
        assert changed == (stored.version == current.version + 1)

    @rule(target=removed_ids, user_id=consumes(PushMachine.user_ids))
    def remove_user(self, user_id: str) -> str:
        """R14: removed now; a running push that has not reached them skips them."""
        self.tick()
        if user_id == ADMIN or user_id not in self.users:
            return user_id  # the admin stays; an id a sync removed is gone already
        self.svc.remove_user(TENANT, user_id)
        self.model_remove(user_id)
        with pytest.raises(UnknownUser):
            self.svc.user(TENANT, user_id)
        return user_id

    @rule(
        target=PushMachine.user_ids,
        user_id=consumes(removed_ids),
        user=strategies.users(user_id="again", max_labels=3, max_stale=1),
    )
    def add_a_removed_id_again(self, user_id: str, user: User) -> str:
        """R14: the id is free again; the new User is outside every running push's roster (R6)."""
        self.tick()
        if user_id in self.users:
            return user_id  # a sync brought it back already
        user = attrs.evolve(user, id=user_id)
        assert user == self.svc.add_user(TENANT, user)
        self.remember(user)
        return user_id

    @rule(
        target=PushMachine.user_ids,
        data=st.data(),
        remove_missing=st.booleans(),
        batch_size=st.integers(1, 4),
    )
    def sync_directory(self, data: st.DataObject, remove_missing: bool, batch_size: int) -> object:
        """R13: the host's whole roster; new ids added, others updated, missing ones removed."""
        self.tick()
        tenant = Tenant(id=TENANT, name="Acme", users=[u.expected() for u in self.users.values()])
        drawn = data.draw(strategies.host_rosters(tenant))
        # Newcomers get ids of their own ("h..."), apart from the push machine's "u<n>".
        renamed = [u if u.id in tenant else attrs.evolve(u, id=f"h{u.id}") for u in drawn]
        roster = list({u.id: u for u in reversed(renamed) if u.id != ADMIN}.values())[::-1]
        roster.insert(data.draw(st.integers(0, len(roster))), tenant.user(ADMIN))
        stored_before = set(self.users)
        listed = {user.id for user in roster}

        report = self.svc.sync_directory(
            TENANT, roster, remove_missing=remove_missing, batch_size=batch_size
        )

        updated = [u.id for u in roster if u.id in stored_before and self.model_update(u)]
        added = [u.id for u in roster if u.id not in stored_before]
        for user in roster:
            if user.id not in stored_before:
                self.remember(user)
        removed = [i for i in stored_before if remove_missing and i not in listed]
        for user_id in [i for i in self.users if i in removed]:
            self.model_remove(user_id)
        assert (sorted(added), sorted(updated), sorted(removed)) == (
            sorted(report.added),
            sorted(report.updated),
            sorted(report.removed),
        )
        return multiple(*added)

    @rule(user_id=PushMachine.user_ids, data=st.data())
    def user_edit(self, user_id: str, data: st.DataObject) -> None:
        """As the push machine's, and a removed User's edit is refused (UnknownUser)."""
        if user_id not in self.users:
            with pytest.raises(UnknownUser):
                self.svc.set_selection(TENANT, user_id, LabelSet())
            return
        super().user_edit(user_id, data)

    @rule(user_id=PushMachine.user_ids)
    def add_a_duplicate_user(self, user_id: str) -> None:
        if user_id in self.users:
            super().add_a_duplicate_user(user_id)


class InMemoryDirectoryMachine(DirectoryMachine, InMemoryPushMachine):
    pass


class SqliteDirectoryMachine(DirectoryMachine, SqlitePushMachine):
    pass


class PostgresDirectoryMachine(DirectoryMachine):
    """The same machine over a fresh PostgreSQL schema."""

    dsn = ""

    def open_store(self) -> Store:
        from labelsync.adapters.postgres import PostgresStore

        self.schema = new_schema_name("stateful_directory")
        self.pg = PostgresStore(self.dsn, schema=self.schema)
        return self.pg

    def reopen_store(self) -> Store:
        from labelsync.adapters.postgres import PostgresStore

        self.pg.close()
        self.pg = PostgresStore(self.dsn, schema=self.schema)
        return self.pg

    def close_store(self) -> None:
        self.pg.close()
        drop_schema(self.dsn, self.schema)


TestDirectoryOnMemory = InMemoryDirectoryMachine.TestCase
TestDirectoryOnMemory.settings = MACHINE_SETTINGS
TestDirectoryOnSqlite = SqliteDirectoryMachine.TestCase
TestDirectoryOnSqlite.settings = MACHINE_SETTINGS


@pytest.mark.postgres
@pytest.mark.slow
def test_the_directory_state_machine_holds_on_postgres() -> None:
    """R12-R14 after every step; the example count is capped as for the push machine."""
    PostgresDirectoryMachine.dsn = postgres_dsn()
    run_state_machine_as_test(
        PostgresDirectoryMachine,
        settings=settings(
            max_examples=min(settings().max_examples, 40),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_model_counts_a_change_of_groups_alone_as_an_update() -> None:
    """R13, R20: groups are host-owned, so a host roster that changes only a User's groups
    updates them; the model once compared email, permissions and mailbox only and expected
    no update where the service (rightly) reported one."""
    user = User(id="hu2", email="a@a.io", groups=frozenset({"sales"}))
    assert "groups" in HOST_FIELDS
    assert host_fields(user) != host_fields(attrs.evolve(user, groups=frozenset()))
    assert host_fields(user) == host_fields(attrs.evolve(user, synced=LabelSet(["x"]), version=7))
