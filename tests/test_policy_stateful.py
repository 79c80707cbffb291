"""Admin policy under interleavings (R15-R19): locks, resets, modes and reverts racing pushes.

A `RuleBasedStateMachine` drives a `LabelSync` over a real store next to a
plain model of each User's Inbox/Sent (selected, who set it, covered), the
tenant's locks and defaults, and every push and revert; after every step the
stored Users, defaults and last push must equal the model. Pushes run batch by
batch, so Users' edits, resets, locks and reverts land between a push's batches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from labelsync import (
    Defaults,
    JobStatus,
    LabelLocked,
    LabelSet,
    LabelSync,
    Mailbox,
    Origin,
    Permission,
    Provider,
    PushMode,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import AlreadyReverted, JobSuperseded
from labelsync.ports import Store
from labelsync.providers import gmail_label

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TENANT, ADMIN = "acme", "admin"
LABELS = (SystemLabel.INBOX, SystemLabel.SENT)
IDS = {SystemLabel.INBOX: "INBOX", SystemLabel.SENT: "SENT"}
PEOPLE = ("ana", "ben", "cy", "dee")


class StopAfterOneBatch(Exception):
    """Raised by a progress callback so that a run commits exactly one batch."""


def stop(_: object) -> None:
    raise StopAfterOneBatch


@dataclasses.dataclass
class ModelUser:
    on: dict[SystemLabel, bool]
    origin: dict[SystemLabel, tuple[Origin, str | None]]
    covered: bool = False
    own: frozenset[str] = frozenset({"L7"})


@dataclasses.dataclass
class ModelPush:
    id: str
    defaults: Defaults
    mode: PushMode
    locked: frozenset[SystemLabel]
    roster: list[str]
    started_at: dt.datetime
    processed: int = 0
    status: JobStatus = JobStatus.PENDING
    changes: list[tuple[str, SystemLabel, bool]] = dataclasses.field(default_factory=list)
    reverted: bool = False


def person(user_id: str, *selected: str) -> User:
    labels = (gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent"), gmail_label("L7", "X"))
    mailbox = Mailbox(provider=Provider.GMAIL, address=f"{user_id}@acme.io", labels=labels)
    return User(
        id=user_id,
        email=f"{user_id}@acme.io",
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=mailbox,
        synced=LabelSet(["L7", *selected]),
    )


class PolicyMachine(RuleBasedStateMachine):
    """A `LabelSync` over a real store (chosen by a subclass) next to the model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(T0)
        ids = itertools.count(1)
        self.store = self.open_store()
        self.svc = LabelSync(store=self.store, clock=self.clock, new_id=lambda: f"j{next(ids)}")
        admin = User(id=ADMIN, email="a@acme.io", permissions=frozenset({Permission.ADMIN_ACCESS}))
        users = [person("ana"), person("ben", "INBOX"), person("cy", "SENT"), person("dee")]
        self.svc.create_tenant(Tenant(id=TENANT, name="Acme", users=(admin, *users)))
        self.users = {
            u.id: ModelUser(
                on={label: IDS[label] in u.synced for label in LABELS},
                origin=dict.fromkeys(LABELS, (Origin.UNKNOWN, None)),
            )
            for u in users
        }
        self.roster = [ADMIN, *PEOPLE]
        self.locked: frozenset[SystemLabel] = frozenset()
        self.defaults: Defaults | None = None
        self.last_push: str | None = None
        self.pushes: dict[str, ModelPush] = {}
        self.current: str | None = None

    def open_store(self) -> Store:
        raise NotImplementedError

    def tick(self) -> None:
        self.clock.advance(dt.timedelta(minutes=1))

    # -- the model of a push batch and of a revert -------------------------------------------

    def model_user_in_push(self, push: ModelPush, user_id: str) -> None:
        user = self.users.get(user_id)
        if user is None:  # the admin: no mailbox, skipped
            return
        covered_before = user.covered
        for label in LABELS:
            unlocked = label not in push.locked
            if push.mode is PushMode.NEW_USERS_ONLY and unlocked and covered_before:
                continue
            wanted = push.defaults.checked(label)
            if user.on[label] is wanted:
                continue
            mine = user.origin[label][0] is Origin.USER
            if push.mode is PushMode.KEEP_USER_CHOICES and unlocked and mine:
                continue
            user.on[label] = wanted
            user.origin[label] = (Origin.PUSH, push.id)
            push.changes.append((user_id, label, wanted))
        user.covered = True

    def model_finish(self, push: ModelPush) -> None:
        push.status = JobStatus.DONE
        self.last_push = push.id
        self.current = None

    # -- rules ---------------------------------------------------------------------------------

    @rule(user_id=st.sampled_from(PEOPLE), inbox=st.booleans(), sent=st.booleans())
    def user_edits(self, user_id: str, inbox: bool, sent: bool) -> None:
        """R15, R17: the User's own change is theirs; a locked label refuses it, writing nothing."""
        self.tick()
        user = self.users[user_id]
        wanted = {SystemLabel.INBOX: inbox, SystemLabel.SENT: sent}
        changed = [label for label in LABELS if user.on[label] is not wanted[label]]
        synced = LabelSet([*user.own, *(IDS[label] for label in LABELS if wanted[label])])
        if any(label in self.locked for label in changed):
            with pytest.raises(LabelLocked):
                self.svc.set_selection(TENANT, user_id, synced)
            return
        self.svc.set_selection(TENANT, user_id, synced)
        for label in changed:
            user.on[label] = wanted[label]
            user.origin[label] = (Origin.USER, None)

    @rule(locked=st.frozensets(st.sampled_from(LABELS)))
    def admin_locks(self, locked: frozenset[SystemLabel]) -> None:
        """R17: locking changes no selection; later pushes apply the locked labels."""
        self.tick()
        self.svc.set_locks(TENANT, actor_id=ADMIN, locked=locked)
        self.locked = locked

    @precondition(lambda self: self.defaults is not None)
    @rule(user_id=st.sampled_from(PEOPLE))
    def user_resets(self, user_id: str) -> None:
        """R18: both labels become the defaults, origin RESET."""
        self.tick()
        assert self.defaults is not None
        self.svc.reset_to_defaults(TENANT, user_id)
        user = self.users[user_id]
        for label in LABELS:
            user.on[label] = self.defaults.checked(label)
            user.origin[label] = (Origin.RESET, None)

    @rule(inbox=st.booleans(), sent=st.booleans(), mode=st.sampled_from(PushMode))
    def start_push(self, inbox: bool, sent: bool, mode: PushMode) -> None:
        """R6, R10, R16: the roster is fixed now; an unfinished push is superseded."""
        self.tick()
        defaults = Defaults(inbox=inbox, sent=sent)
        job = self.svc.start_push(TENANT, actor_id=ADMIN, defaults=defaults, mode=mode)
        if self.current is not None:
            self.pushes[self.current].status = JobStatus.SUPERSEDED
        self.pushes[job.id] = ModelPush(
            id=job.id,
            defaults=defaults,
            mode=mode,
            locked=self.locked,
            roster=list(self.roster),
            started_at=self.clock.now(),
        )
        self.current = job.id
        self.defaults = defaults

    @precondition(lambda self: self.current is not None)
    @rule()
    def run_one_batch(self) -> None:
        """R12: one User per batch, so everything else can land between two batches."""
        self.tick()
        assert self.current is not None
        push = self.pushes[self.current]
        if push.processed == len(push.roster):
            self.svc.run_push(push.id, batch_size=1)
            self.model_finish(push)
            return
        with pytest.raises(StopAfterOneBatch):
            self.svc.run_push(push.id, batch_size=1, progress=stop)
        self.model_user_in_push(push, push.roster[push.processed])
        push.processed += 1
        push.status = JobStatus.RUNNING

    @precondition(lambda self: self.current is not None)
    @rule()
    def finish_push(self) -> None:
        self.tick()
        assert self.current is not None
        push = self.pushes[self.current]
        self.svc.run_push(push.id, batch_size=2)
        for user_id in push.roster[push.processed :]:
            self.model_user_in_push(push, user_id)
        push.processed = len(push.roster)
        self.model_finish(push)

    @precondition(lambda self: any(p.status is JobStatus.SUPERSEDED for p in self.pushes.values()))
    @rule()
    def a_superseded_push_writes_nothing(self) -> None:
        superseded = next(p for p in self.pushes.values() if p.status is JobStatus.SUPERSEDED)
        with pytest.raises(JobSuperseded):
            self.svc.run_push(superseded.id, batch_size=1)

    @precondition(lambda self: any(p.status is JobStatus.DONE for p in self.pushes.values()))
    @rule(data=st.data())
    def admin_reverts(self, data: st.DataObject) -> None:
        """R19: labels the push still owns go back; a second revert is refused."""
        self.tick()
        done = sorted(p.id for p in self.pushes.values() if p.status is JobStatus.DONE)
        push = self.pushes[data.draw(st.sampled_from(done))]
        if push.reverted:
            with pytest.raises(AlreadyReverted):
                self.svc.revert_push(push.id, actor_id=ADMIN)
            return
        report = self.svc.revert_push(push.id, actor_id=ADMIN)
        assert report.revert is not None
        for user_id, label, selected in push.changes:
            user = self.users[user_id]
            if user.origin[label] == (Origin.PUSH, push.id):
                user.on[label] = not selected
                user.origin[label] = (Origin.REVERT, report.revert.id)
        push.reverted = True
        if self.last_push == push.id:
            earlier = [
                p
                for p in self.pushes.values()
                if p.status is JobStatus.DONE and not p.reverted and p.started_at <= push.started_at
            ]
            latest = max(earlier, key=lambda p: p.started_at, default=None)
            self.last_push = None if latest is None else latest.id
            self.defaults = None if latest is None else latest.defaults

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def stored_users_equal_the_model(self) -> None:
        """R15: every User's Inbox/Sent, who set each (kind and job), covered."""
        tenant = self.svc.tenant(TENANT)
        for user_id, model in self.users.items():
            user = tenant.user(user_id)
            assert model.own == user.synced.ids - set(IDS.values())
            for label in LABELS:
                assert model.on[label] == (IDS[label] in user.synced), (user_id, label)
                origin = user.provenance.of(label)
                kind, job_id = model.origin[label]
                assert kind is origin.origin, (user_id, label)
                if kind in (Origin.PUSH, Origin.REVERT):
                    assert job_id == origin.job_id
            assert model.covered == user.provenance.covered

    @invariant()
    def defaults_locks_and_last_push_equal_the_model(self) -> None:
        """R11, R17, R19: the checkboxes, the locks and the last push the tenant names."""
        tenant = self.svc.tenant(TENANT)
        assert self.defaults == tenant.defaults
        assert self.locked == tenant.locked
        assert self.last_push == (None if tenant.last_push is None else tenant.last_push.job_id)


class MemoryPolicyMachine(PolicyMachine):
    def open_store(self) -> Store:
        return InMemoryStore()


class SqlitePolicyMachine(PolicyMachine):
    def open_store(self) -> Store:
        self._dir = tempfile.TemporaryDirectory()
        return SqliteStore(Path(self._dir.name) / "policy.db")

    def teardown(self) -> None:
        assert isinstance(self.store, SqliteStore)
        self.store.close()
        self._dir.cleanup()


SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestPolicyOnMemory = MemoryPolicyMachine.TestCase
TestPolicyOnMemory.settings = SETTINGS
TestPolicyOnSqlite = SqlitePolicyMachine.TestCase
TestPolicyOnSqlite.settings = SETTINGS
