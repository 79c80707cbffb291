"""The scenario stored in ``labelsync-v1.sql``: run it with labelsync 1 to make the file again.

``PYTHONPATH=<labelsync 1 checkout>/src python tests/data/v1_scenario.py`` writes
the SQL dump of a schema-version-1 SQLite file; tests/test_sqlite.py replays the
same scenario on an in-memory store and checks the migrated file against it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from labelsync import (
    Defaults,
    Label,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    PushJob,
    SystemLabel,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.synthetic import ADMIN_ID, synthetic_tenant

TENANT = "acme"
FIRST = Defaults(inbox=True, sent=False)
SECOND = Defaults(inbox=False, sent=True)
INBOX = SystemLabel.INBOX


class Stop(Exception):
    """Ends a push after its first batch, leaving it RUNNING."""


def scenario(svc: LabelSync) -> PushJob:
    """A finished push, a User's own edit, and a second push stopped after one batch."""
    svc.create_tenant(synthetic_tenant(36, seed=7, tenant_id=TENANT, name="Acme"))
    for user in odd_users():
        svc.add_user(TENANT, user)
    svc.push(TENANT, actor_id=ADMIN_ID, defaults=FIRST, batch_size=7)
    # The first User with an INBOX deselects it again on their own (R12 keeps that).
    user = next(u for u in svc.tenant(TENANT).users if u.mailbox and u.mailbox.label(INBOX))
    assert user.mailbox is not None
    inbox = user.mailbox.label_id(INBOX)
    svc.set_selection(TENANT, user.id, LabelSet(user.synced.ids - {inbox}))
    job = svc.start_push(TENANT, actor_id=ADMIN_ID, defaults=SECOND)

    def stop(_: PushJob) -> None:
        raise Stop

    with contextlib.suppress(Stop):
        svc.run_push(job.id, batch_size=7, progress=stop)
    return svc.job(job.id)


def odd_users() -> list[User]:
    """Users a synthetic roster may lack: stale ids, a missing SENT, localised names, no mailbox."""
    outlook = Mailbox(
        provider=Provider.MICROSOFT,
        address="o@acme.test",
        labels=(
            Label(id="AAMk-in", name="Posteingang", system=SystemLabel.INBOX),
            Label(id="AAMk-sent", name="Gesendete Elemente", system=SystemLabel.SENT),
            Label(id="AAMk-7", name="Projekt X", system=None),
        ),
    )
    imap = Mailbox(
        provider=Provider.IMAP,
        address="i@acme.test",
        labels=(Label(id="INBOX", name="INBOX", system=SystemLabel.INBOX),),
    )
    sync = frozenset({Permission.EMAIL_SYNC})
    return [
        User(
            id="odd-outlook",
            email="o@acme.test",
            permissions=sync,
            mailbox=outlook,
            synced=LabelSet(["AAMk-sent", "AAMk-7", "deleted-at-provider"]),
            version=3,
        ),
        User(
            id="odd-imap",
            email="i@acme.test",
            mailbox=imap,
            synced=LabelSet(["INBOX", "Sent"]),
        ),
        User(id="odd-none", email="n@acme.test", synced=LabelSet(["INBOX", "old"]), version=9),
        User(
            id="odd-empty",
            email="e@acme.test",
            permissions=sync,
            mailbox=Mailbox(provider=Provider.OTHER, address="e@acme.test", labels=()),
        ),
    ]


def service(store: object) -> LabelSync:
    """A service with a fixed clock and job ids j1, j2, ... so both runs agree."""
    counter = itertools.count(1)
    new_id: Callable[[], str] = lambda: f"j{next(counter)}"  # noqa: E731
    clock = FixedClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
    return LabelSync(store=store, clock=clock, new_id=new_id)  # type: ignore[arg-type]


if __name__ == "__main__":
    from labelsync.adapters.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v1.db"
        with SqliteStore(path) as store:
            scenario(service(store))
        with sqlite3.connect(path) as conn:
            sys.stdout.write("\n".join(conn.iterdump()) + "\n")
