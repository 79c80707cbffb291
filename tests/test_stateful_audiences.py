"""The push state machine of tests/test_stateful.py with audiences (R20) racing group changes.

Adds two rules to `PushMachine`: an admin starts a push to some groups or
listed Users, and the host moves a User between groups (a compare-and-set
write of the User, as a directory sync does) at any moment, also while a
push runs. The model's roster of a narrowed push is its members at the start
(R6): a User who joins the group later is not pushed to, one who leaves it is
still pushed to, and every invariant of the base machine keeps holding.
"""

from __future__ import annotations

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import rule

from labelsync import Audience, Defaults, JobStatus
from labelsync.ports import Store
from labelsync.testing.strategies import GROUP_NAMES, groups
from test_stateful import (
    ADMIN,
    MACHINE_SETTINGS,
    TENANT,
    InMemoryPushMachine,
    ModelJob,
    PushMachine,
    SqlitePushMachine,
)


class AudienceMachine(PushMachine):
    """`PushMachine` plus narrowed pushes and group changes."""

    @rule(
        inbox=st.booleans(),
        sent=st.booleans(),
        names=st.frozensets(st.sampled_from(GROUP_NAMES), min_size=1, max_size=2),
    )
    def start_group_push(self, inbox: bool, sent: bool, names: frozenset[str]) -> None:
        """R20, R6: the roster is the groups' members now; the tenant's checkboxes stay."""
        self.start_narrowed(inbox, sent, Audience.groups(names))

    @rule(inbox=st.booleans(), sent=st.booleans(), data=st.data())
    def start_users_push(self, inbox: bool, sent: bool, data: st.DataObject) -> None:
        picked = data.draw(st.frozensets(st.sampled_from(sorted(self.users)), min_size=1))
        self.start_narrowed(inbox, sent, Audience.users(picked))

    def start_narrowed(self, inbox: bool, sent: bool, audience: Audience) -> None:
        self.tick()
        job = self.svc.start_push(
            TENANT, actor_id=ADMIN, defaults=Defaults(inbox=inbox, sent=sent), audience=audience
        )
        if self.current is not None:
            old = self.current_job()
            old.status, old.superseded_by = JobStatus.SUPERSEDED, job.id
        roster = [uid for uid, user in self.users.items() if audience.includes(user.added)]
        assert (len(roster), audience) == (job.total, job.audience)
        self.jobs[job.id] = ModelJob(
            id=job.id, inbox=inbox, sent=sent, roster=roster, started_at=self.clock.now()
        )
        self.current = job.id

    @rule(data=st.data(), new_groups=groups())
    def change_groups(self, data: st.DataObject, new_groups: frozenset[str]) -> None:
        """The host moves a User between groups (a new version of the User), perhaps mid-push."""
        self.tick()
        user_id = data.draw(st.sampled_from(sorted(self.users)))
        model = self.users[user_id]
        stored = self.svc.user(TENANT, user_id)
        moved = attrs.evolve(stored, groups=new_groups, version=stored.version + 1)
        assert () == self.store.save_users(TENANT, [(moved, stored.version)])
        model.added = attrs.evolve(model.added, groups=new_groups)
        model.version += 1


class InMemoryAudienceMachine(AudienceMachine, InMemoryPushMachine):
    def open_store(self) -> Store:
        return InMemoryPushMachine.open_store(self)


class SqliteAudienceMachine(AudienceMachine, SqlitePushMachine):
    def open_store(self) -> Store:
        return SqlitePushMachine.open_store(self)


TestAudiencesOnMemory = InMemoryAudienceMachine.TestCase
TestAudiencesOnMemory.settings = MACHINE_SETTINGS
TestAudiencesOnSqlite = SqliteAudienceMachine.TestCase
TestAudiencesOnSqlite.settings = MACHINE_SETTINGS
