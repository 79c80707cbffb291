"""A state machine drives the real stores next to a plain model: edits, pushes, crashes, resumes.

Rules add Users, let Users edit their selection, start pushes (superseding
unfinished ones), run one batch at a time, crash a run before or after a store
write (`FaultyStore`), resume with a fresh service (a fresh `SqliteStore` on the
same file) and finish. The model is dicts and sets and computes the push rule
on its own, never through `labelsync.rules`; after every step the stored state
must equal it and R3-R6, R11 and R12 must hold.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import attrs
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from labelsync import (
    AlreadyExists,
    Defaults,
    JobStatus,
    JobSuperseded,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.policy import LabelOrigin, Origin, Provenance
from labelsync.ports import PushJob, Store
from labelsync.providers import gmail_label
from labelsync.testing import strategies
from labelsync.testing.faults import FaultyStore, InjectedFault

TENANT = "t1"
ADMIN = "admin"
T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
FINISHED = (JobStatus.DONE, JobStatus.SUPERSEDED)


class StopAfterOneBatch(Exception):
    """Raised by a progress callback so that a run commits exactly one batch."""


def stop_after_one_batch(job: PushJob) -> None:
    raise StopAfterOneBatch(job.processed)


def role_id(mailbox: Mailbox | None, role: SystemLabel) -> str | None:
    """The id of the label holding `role`, found by scanning the labels (not the model's cache)."""
    if mailbox is None:
        return None
    return next((label.id for label in mailbox.labels if label.system is role), None)


def system_ids(mailbox: Mailbox | None) -> set[str]:
    return {i for i in (role_id(mailbox, r) for r in SystemLabel) if i is not None}


@dataclasses.dataclass
class ModelUser:
    """What the model knows of one User: as added, then selection and version as they move."""

    added: User
    synced: frozenset[str]
    version: int
    own: frozenset[str]
    """The User's non-system labels as they last set them (R5, R12)."""
    last_writer: str
    """"added", "edit", or the id of the last push job that processed this User."""
    provenance: Provenance = dataclasses.field(default_factory=Provenance)
    """R15: who set INBOX and SENT last, and whether a push covered the User."""

    def expected(self) -> User:
        return attrs.evolve(
            self.added,
            synced=LabelSet(self.synced),
            version=self.version,
            provenance=self.provenance,
        )


@dataclasses.dataclass
class ModelJob:
    id: str
    inbox: bool
    sent: bool
    roster: list[str]
    started_at: dt.datetime
    status: JobStatus = JobStatus.PENDING
    processed: int = 0
    finished_at: dt.datetime | None = None
    superseded_by: str | None = None
    counts: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(
            (
                "users_changed",
                "selected",
                "deselected",
                "no_mailbox",
                "label_missing",
                "user_choice_kept",
                "user_removed",
            ),
            0,
        )
    )


class PushMachine(RuleBasedStateMachine):
    """Drives a `LabelSync` over a real store (chosen by a subclass) next to the model."""

    user_ids = Bundle("user_ids")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.open_store()
        self.clock = FixedClock(T0)
        self.svc = self.new_service(self.store)
        self.users: dict[str, ModelUser] = {}  # insertion order is roster order
        self.jobs: dict[str, ModelJob] = {}
        self.current: str | None = None  # the tenant's unfinished job, if any
        self.last_done: str | None = None
        self.saved_defaults: Defaults | None = None
        self.job_counter = 0
        self.user_counter = 0

    # -- the store under test, chosen by subclasses ------------------------------------

    def open_store(self) -> Store:
        raise NotImplementedError

    def reopen_store(self) -> Store:
        """The same stored state through a new store object (a new process would do this)."""
        return self.store

    def new_service(self, store: Store) -> LabelSync:
        def new_id() -> str:
            self.job_counter += 1
            return f"job-{self.job_counter}"

        return LabelSync(store=store, clock=self.clock, new_id=new_id)

    def tick(self) -> None:
        self.clock.advance(dt.timedelta(seconds=1))

    # -- the model's push rule, computed independently ------------------------------------

    def model_batch(self, job: ModelJob, size: int) -> None:
        """R3, R4, R5, R7 for the next `size` roster Users, as the job would read them now."""
        for user_id in job.roster[job.processed : job.processed + size]:
            user = self.users[user_id]
            user.last_writer = job.id
            mailbox = user.added.mailbox
            if mailbox is None:
                job.counts["no_mailbox"] += 1
                continue
            synced = set(user.synced)
            stamp = LabelOrigin(origin=Origin.PUSH, job_id=job.id, at=job.started_at)
            user.provenance = attrs.evolve(user.provenance, covered=True)
            for role, checked in ((SystemLabel.INBOX, job.inbox), (SystemLabel.SENT, job.sent)):
                label_id = role_id(mailbox, role)
                if label_id is None:
                    job.counts["label_missing"] += 1
                    continue
                if checked and label_id not in synced:
                    synced.add(label_id)
                    job.counts["selected"] += 1
                elif not checked and label_id in synced:
                    synced.remove(label_id)
                    job.counts["deselected"] += 1
                else:
                    continue
                user.provenance = user.provenance.setting(role, stamp)
            if synced != user.synced:
                user.synced = frozenset(synced)
                user.version += 1
                job.counts["users_changed"] += 1
        job.processed = min(len(job.roster), job.processed + size)
        job.status = JobStatus.RUNNING

    def model_finish(self, job: ModelJob) -> None:
        job.status = JobStatus.DONE
        job.finished_at = self.clock.now()
        self.last_done = job.id
        self.current = None

    def model_remaining_batches(self, job: ModelJob, size: int) -> int:
        return -(-(len(job.roster) - job.processed) // size)

    def current_job(self) -> ModelJob:
        assert self.current is not None
        return self.jobs[self.current]

    # -- rules ------------------------------------------------------------------------------

    @initialize(target=user_ids)
    def create_tenant(self) -> str:
        mailbox = Mailbox(
            provider=Provider.GMAIL,
            address="admin@acme.io",
            labels=(gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent")),
        )
        admin = User(
            id=ADMIN,
            email="admin@acme.io",
            permissions=frozenset({Permission.ADMIN_ACCESS}),
            mailbox=mailbox,
            synced=LabelSet(["SENT"]),
        )
        self.svc.create_tenant(Tenant(id=TENANT, name="Acme", users=(admin,)))
        self.remember(admin)
        return ADMIN

    def remember(self, user: User) -> None:
        self.users[user.id] = ModelUser(
            added=user,
            synced=user.synced.ids,
            version=user.version,
            own=user.synced.ids - system_ids(user.mailbox),
            last_writer="added",
            provenance=user.provenance,
        )

    @rule(target=user_ids, user=strategies.users(user_id="new", max_labels=3, max_stale=1))
    def add_user(self, user: User) -> str:
        """R6: a User added now is in no running push's roster."""
        self.tick()
        self.user_counter += 1
        user = attrs.evolve(user, id=f"u{self.user_counter}")
        assert user == self.svc.add_user(TENANT, user)  # onboarding is off by default (B4)
        self.remember(user)
        return user.id

    @rule(user_id=user_ids)
    def add_a_duplicate_user(self, user_id: str) -> None:
        with pytest.raises(AlreadyExists):
            self.svc.add_user(TENANT, attrs.evolve(self.users[user_id].added, version=0))

    @rule(user_id=user_ids, data=st.data())
    def user_edit(self, user_id: str, data: st.DataObject) -> None:
        """A User sets their own selection from their mailbox's labels (and stale ids kept)."""
        self.tick()
        user = self.users[user_id]
        mailbox = user.added.mailbox
        choices = sorted(
            user.synced | {label.id for label in mailbox.labels} if mailbox else user.synced
        )
        wanted = frozenset(
            data.draw(st.sets(st.sampled_from(choices)) if choices else st.just(set()))
        )
        stored = self.svc.set_selection(TENANT, user_id, LabelSet(wanted))
        mine = LabelOrigin(origin=Origin.USER, at=self.clock.now())
        for role in SystemLabel:
            label_id = role_id(mailbox, role)
            if label_id is not None and (label_id in wanted) != (label_id in user.synced):
                user.provenance = user.provenance.setting(role, mine)  # R15: set by the User
        if wanted != user.synced:
            user.synced = wanted
            user.version += 1
        user.own = wanted - system_ids(mailbox)
        user.last_writer = "edit"
        assert user.expected() == stored

    @rule(inbox=st.booleans(), sent=st.booleans())
    def start_push(self, inbox: bool, sent: bool) -> None:
        """R6: the roster is every User now; an unfinished push is superseded (R10)."""
        self.tick()
        job = self.svc.start_push(TENANT, actor_id=ADMIN, defaults=Defaults(inbox=inbox, sent=sent))
        if self.current is not None:
            old = self.current_job()
            old.status, old.superseded_by = JobStatus.SUPERSEDED, job.id
        self.jobs[job.id] = ModelJob(
            id=job.id, inbox=inbox, sent=sent, roster=list(self.users), started_at=self.clock.now()
        )
        self.current = job.id
        self.saved_defaults = Defaults(inbox=inbox, sent=sent)

    @precondition(lambda self: self.current is not None)
    @rule(inbox=st.booleans(), sent=st.booleans())
    def supersede(self, inbox: bool, sent: bool) -> None:
        """R10: a second click while a push runs; the first one writes nothing more."""
        old = self.current
        assert old is not None
        self.start_push(inbox, sent)
        with pytest.raises(JobSuperseded):
            self.svc.run_push(old, batch_size=1)

    @precondition(lambda self: self.current is not None)
    @rule(batch_size=st.integers(1, 4))
    def run_one_batch(self, batch_size: int) -> None:
        self.tick()
        job = self.current_job()
        if job.processed == len(job.roster):
            # Nothing left to read: the run finishes without another batch or progress call.
            assert JobStatus.DONE == self.svc.run_push(job.id, batch_size=batch_size).job.status
            self.model_finish(job)
            return
        with pytest.raises(StopAfterOneBatch):
            self.svc.run_push(job.id, batch_size=batch_size, progress=stop_after_one_batch)
        self.model_batch(job, batch_size)

    @precondition(lambda self: self.current is not None)
    @rule(
        fail_on=st.sampled_from(["run_batch", "finish_job"]),
        when=st.sampled_from(["before", "after"]),
        batch_size=st.integers(1, 4),
        data=st.data(),
    )
    def inject_fault(
        self,
        fail_on: str,
        when: Literal["before", "after"],
        batch_size: int,
        data: st.DataObject,
    ) -> None:
        """R12: the store call crashes before or after its write; the run stops there."""
        self.tick()
        job = self.current_job()
        batches = self.model_remaining_batches(job, batch_size)
        # Mostly a call the run reaches; sometimes one past its end, where nothing fails.
        reached = batches if fail_on == "run_batch" else 1
        after_calls = data.draw(st.integers(0, reached), label="after_calls")
        faulty = FaultyStore(self.store, fail_on=fail_on, after_calls=after_calls, when=when)
        batches = self.model_remaining_batches(job, batch_size)
        if fail_on == "run_batch":
            fires = after_calls < batches
            committed = min(batches, after_calls + (1 if when == "after" else 0))
            finished = not fires
        else:
            fires = after_calls == 0
            committed = batches
            finished = not fires or when == "after"
        if fires:
            with pytest.raises(InjectedFault):
                self.new_service(faulty).run_push(job.id, batch_size=batch_size)
        else:
            self.new_service(faulty).run_push(job.id, batch_size=batch_size)
        assert fires == faulty.fired
        event(f"{fail_on} {when}: {'fired' if fires else 'not reached'}")
        for _ in range(committed):
            self.model_batch(job, batch_size)
        if finished:
            self.model_finish(job)

    @rule(run=st.booleans(), batch_size=st.integers(1, 4))
    def resume_with_new_service(self, run: bool, batch_size: int) -> None:
        """R12: a fresh process (new store object, new service) picks up where the last left off."""
        self.tick()
        self.store = self.reopen_store()
        self.svc = self.new_service(self.store)
        if run and self.current is not None:
            self.finish(batch_size)

    @precondition(lambda self: self.current is not None)
    @rule(batch_size=st.integers(1, 4))
    def finish(self, batch_size: int) -> None:
        self.tick()
        job = self.current_job()
        report = self.svc.run_push(job.id, batch_size=batch_size)
        for _ in range(self.model_remaining_batches(job, batch_size)):
            self.model_batch(job, batch_size)
        self.model_finish(job)
        assert job.counts == attrs.asdict(report.counts)

    @precondition(
        lambda self: any(j.status.name in ("DONE", "SUPERSEDED") for j in self.jobs.values())
    )
    @rule(data=st.data())
    def rerun_a_finished_job(self, data: st.DataObject) -> None:
        """R10: a DONE job reports the same again and changes nothing; a superseded one refuses."""
        self.tick()
        finished = sorted(
            j.id for j in self.jobs.values() if j.status.name in ("DONE", "SUPERSEDED")
        )
        job = self.jobs[data.draw(st.sampled_from(finished))]
        if job.status is JobStatus.DONE:
            report = self.svc.run_push(job.id, batch_size=1)
            assert job.counts == attrs.asdict(report.counts)
            assert job.finished_at == report.job.finished_at
        else:
            with pytest.raises(JobSuperseded):
                self.svc.run_push(job.id, batch_size=1)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def stored_users_equal_the_model(self) -> None:
        """R12: every User, in roster order, is exactly what the model says (nothing lost)."""
        tenant = self.svc.tenant(TENANT)
        assert [u.expected() for u in self.users.values()] == list(tenant.users)

    @invariant()
    def stored_jobs_equal_the_model(self) -> None:
        """R6, R10, R11: status, roster size, progress, counts, times; the last push's record."""
        stored = {job.id: job for job in self.svc.jobs(TENANT)}
        assert list(self.jobs) == list(reversed(stored))  # newest first
        for model in self.jobs.values():
            job = stored[model.id]
            assert (
                model.status,
                len(model.roster),
                model.processed,
                model.started_at,
                model.finished_at,
                model.superseded_by,
                model.counts,
            ) == (
                job.status,
                job.total,
                job.processed,
                job.started_at,
                job.finished_at,
                job.superseded_by,
                attrs.asdict(job.counts),
            )
        tenant = self.svc.tenant(TENANT)
        assert self.saved_defaults == tenant.defaults
        if self.last_done is None:
            assert None is tenant.last_push
        else:
            assert tenant.last_push is not None
            assert (self.last_done, self.jobs[self.last_done].finished_at) == (
                tenant.last_push.job_id,
                tenant.last_push.finished_at,
            )

    @invariant()
    def done_pushes_hold_for_users_nobody_touched_since(self) -> None:
        """R3, R4: checked labels selected, unchecked deselected, unless edited or pushed since."""
        tenant = self.svc.tenant(TENANT)
        for job in self.jobs.values():
            if job.status is not JobStatus.DONE:
                continue
            for user_id in job.roster:
                model = self.users.get(
                    user_id
                )  # None once removed (tests/test_stateful_directory.py)
                if model is None or model.last_writer != job.id:
                    continue
                user = tenant.user(user_id)
                for role, checked in ((SystemLabel.INBOX, job.inbox), (SystemLabel.SENT, job.sent)):
                    label_id = role_id(user.mailbox, role)
                    if label_id is not None:
                        assert checked == (label_id in user.synced), (job.id, user_id, role)

    @invariant()
    def other_labels_are_always_the_users_own_last_choice(self) -> None:
        """R5, R12: a push never adds or removes a non-system label; edits are never lost."""
        for user in self.svc.tenant(TENANT).users:
            assert self.users[user.id].own == user.synced.ids - system_ids(user.mailbox)

    @invariant()
    def a_push_only_ever_touches_its_roster(self) -> None:
        """R6: Users added after a push started appear in none of its changes or skips."""
        for job in self.jobs.values():
            changes = self.svc.changes(job.id)
            handled = set(job.roster[: job.processed])
            assert set() == {c.user_id for c in changes.changed} - handled
            assert set() == {s.user_id for s in changes.skipped} - handled

    def teardown(self) -> None:
        self.close_store()

    def close_store(self) -> None:
        """Release what `open_store` took."""


class InMemoryPushMachine(PushMachine):
    def open_store(self) -> Store:
        return InMemoryStore()


class SqlitePushMachine(PushMachine):
    """The same machine on a real SQLite file in a directory of its own."""

    def open_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="labelsync-stateful-"))
        self.sqlite = SqliteStore(self.directory / "labelsync.db")
        return self.sqlite

    def reopen_store(self) -> Store:
        self.sqlite.close()
        self.sqlite = SqliteStore(self.directory / "labelsync.db")
        return self.sqlite

    def close_store(self) -> None:
        self.sqlite.close()
        shutil.rmtree(self.directory, ignore_errors=True)


# The number of examples comes from the hypothesis profile (tests/conftest.py).
MACHINE_SETTINGS = settings(
    stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

TestPushOnMemory = InMemoryPushMachine.TestCase
TestPushOnMemory.settings = MACHINE_SETTINGS
TestPushOnSqlite = SqlitePushMachine.TestCase
TestPushOnSqlite.settings = MACHINE_SETTINGS
