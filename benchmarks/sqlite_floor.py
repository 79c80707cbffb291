"""The SQLite floor: the fastest push we could write that keeps every guarantee of labelsync's.

What it keeps, as `SqliteStore` does:

- one write transaction per batch of 500 roster Users (``BEGIN IMMEDIATE``),
  fenced: it first checks that the job is still its tenant's current job and not
  finished, and stops with `Superseded` otherwise;
- the checkpoint (cursor, processed, counts) moved in the same transaction, so a
  crash resumes after the last committed batch;
- one row per label change and per skip, with foreign keys on (to the job; a
  change also to the User);
- a roster User removed while the job runs (R14): each batch first looks for
  removed Users in its range (one index probe) and, finding some, ends where its
  first 500 live or removed entries end and writes a USER_REMOVED skip for each;
- the roster fixed at the start: the job records the last roster position, and
  Users added later are never read;
- SQLite's durable settings: WAL, ``synchronous = FULL``;
- finishing in one fenced transaction that marks the job DONE and writes the
  tenant's audit record and checkbox settings.

What makes it fast: the hot state a push reads and writes is one narrow row per
User (its version, the ids of the labels holding INBOX/SENT, whether each is
selected); the User's other selected ids and everything else stay in a cold
table a push never touches. Each batch is decided in SQL, set-based: a few
``INSERT ... SELECT`` and one ``UPDATE`` over the batch's range of positions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from benchmarks.state import NarrowUser, State, state_of
from labelsync import Defaults, Tenant

__all__ = ["Superseded", "connect", "final_state", "push", "users_after", "write_tenant"]

_SCHEMA = (
    """
    CREATE TABLE tenants (
        id             TEXT PRIMARY KEY,
        current_job    TEXT,
        defaults_inbox INTEGER,
        defaults_sent  INTEGER,
        last_push      TEXT
    )""",
    """
    CREATE TABLE users (                -- the hot state: what a push reads and writes
        pos         INTEGER PRIMARY KEY, -- roster position
        tenant_id   TEXT NOT NULL REFERENCES tenants (id),
        id          TEXT NOT NULL,
        has_mailbox INTEGER NOT NULL,
        inbox_id    TEXT,                -- the label holding INBOX; NULL if the mailbox lacks it
        sent_id     TEXT,
        inbox_on    INTEGER NOT NULL,    -- whether that label is selected
        sent_on     INTEGER NOT NULL,
        version     INTEGER NOT NULL,
        UNIQUE (tenant_id, id)
    )""",
    """
    CREATE TABLE cold (                 -- the rest of a User: a push never touches it
        pos       INTEGER PRIMARY KEY REFERENCES users (pos),
        email     TEXT NOT NULL,
        other_ids TEXT NOT NULL         -- selected ids that are not INBOX/SENT, JSON
    )""",
    """
    CREATE TABLE jobs (
        id            TEXT PRIMARY KEY,
        tenant_id     TEXT NOT NULL REFERENCES tenants (id),
        status        TEXT NOT NULL,
        inbox         INTEGER NOT NULL,
        sent          INTEGER NOT NULL,
        roster_end    INTEGER NOT NULL,
        cursor        INTEGER NOT NULL DEFAULT 0,
        processed     INTEGER NOT NULL DEFAULT 0,
        users_changed INTEGER NOT NULL DEFAULT 0,
        selected      INTEGER NOT NULL DEFAULT 0,
        deselected    INTEGER NOT NULL DEFAULT 0,
        no_mailbox    INTEGER NOT NULL DEFAULT 0,
        label_missing INTEGER NOT NULL DEFAULT 0,
        user_removed  INTEGER NOT NULL DEFAULT 0,
        finished_at   TEXT
    )""",
    """
    CREATE TABLE removed (              -- roster Users removed while their push runs (R14)
        pos    INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        id     TEXT NOT NULL
    )""",
    """
    CREATE TABLE job_changes (
        seq           INTEGER PRIMARY KEY,
        job_id        TEXT NOT NULL REFERENCES jobs (id),
        user_pos      INTEGER NOT NULL REFERENCES users (pos),
        label         TEXT NOT NULL,
        label_id      TEXT NOT NULL,
        selected      INTEGER NOT NULL,
        version_after INTEGER NOT NULL
    )""",
    "CREATE INDEX job_changes_by_job ON job_changes (job_id, seq)",
    """
    CREATE TABLE job_skips (
        seq      INTEGER PRIMARY KEY,
        job_id   TEXT NOT NULL REFERENCES jobs (id),
        user_pos INTEGER NOT NULL,      -- a removed User's skip outlives its row
        label    TEXT,
        reason   TEXT NOT NULL
    )""",
    "CREATE INDEX job_skips_by_job ON job_skips (job_id, seq)",
)

# The batch: Users with positions in (cursor, end] of one tenant.
# `+tenant_id`: range over the positions (the rowid), never scan the tenant's index.
_RANGE = "pos > :cursor AND pos <= :end AND +tenant_id = :tenant"
_NEXT_BATCH = """
    SELECT max(pos), count(*) FROM (
        SELECT pos FROM users WHERE pos > :cursor AND pos <= :roster_end AND +tenant_id = :tenant
        ORDER BY pos LIMIT :size
    )
"""
_REMOVED_AHEAD = "SELECT count(*) FROM removed WHERE job_id = ? AND pos > ? AND pos <= ?"
_ENTRIES = """
    SELECT max(pos), count(*), sum(gone) FROM (
        SELECT pos, gone FROM (
            SELECT pos, 0 AS gone FROM users
            WHERE pos > :cursor AND pos <= :roster_end AND +tenant_id = :tenant
            UNION ALL
            SELECT pos, 1 FROM removed WHERE job_id = :job AND pos > :cursor AND pos <= :roster_end
        ) ORDER BY pos LIMIT :size
    )
"""
_REMOVED_SKIPS = (
    "INSERT INTO job_skips (job_id, user_pos, label, reason) SELECT :job, pos, NULL,"
    " 'USER_REMOVED' FROM removed WHERE job_id = :job AND pos > :cursor AND pos <= :end"
)
_SKIPS = (
    (
        f"INSERT INTO job_skips (job_id, user_pos, label, reason) SELECT :job, pos, NULL,"
        f" 'NO_MAILBOX' FROM users WHERE {_RANGE} AND has_mailbox = 0"
    ),
    (
        f"INSERT INTO job_skips (job_id, user_pos, label, reason) SELECT :job, pos, 'INBOX',"
        f" 'LABEL_MISSING' FROM users WHERE {_RANGE} AND has_mailbox = 1 AND inbox_id IS NULL"
    ),
    (
        f"INSERT INTO job_skips (job_id, user_pos, label, reason) SELECT :job, pos, 'SENT',"
        f" 'LABEL_MISSING' FROM users WHERE {_RANGE} AND has_mailbox = 1 AND sent_id IS NULL"
    ),
)
_CHANGES = (
    (
        "INSERT INTO job_changes (job_id, user_pos, label, label_id, selected, version_after)"
        f" SELECT :job, pos, 'INBOX', inbox_id, :inbox, version + 1 FROM users WHERE {_RANGE}"
        " AND inbox_id IS NOT NULL AND inbox_on != :inbox"
    ),
    (
        "INSERT INTO job_changes (job_id, user_pos, label, label_id, selected, version_after)"
        f" SELECT :job, pos, 'SENT', sent_id, :sent, version + 1 FROM users WHERE {_RANGE}"
        " AND sent_id IS NOT NULL AND sent_on != :sent"
    ),
)
_UPDATE_USERS = f"""
    UPDATE users SET
        inbox_on = CASE WHEN inbox_id IS NULL THEN inbox_on ELSE :inbox END,
        sent_on = CASE WHEN sent_id IS NULL THEN sent_on ELSE :sent END,
        version = version + 1
    WHERE {_RANGE}
      AND ((inbox_id IS NOT NULL AND inbox_on != :inbox)
           OR (sent_id IS NOT NULL AND sent_on != :sent))
"""
_CHECKPOINT = """
    UPDATE jobs SET status = 'RUNNING', cursor = :end, processed = processed + :batch,
        users_changed = users_changed + :users_changed, selected = selected + :selected,
        deselected = deselected + :deselected, no_mailbox = no_mailbox + :no_mailbox,
        label_missing = label_missing + :label_missing, user_removed = user_removed + :removed
    WHERE id = :job
"""
_FENCE = """
    SELECT j.tenant_id, j.status, j.cursor, j.roster_end, j.inbox, j.sent, t.current_job
    FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.id = ?
"""


class Superseded(RuntimeError):
    """Raised when the job is no longer its tenant's current job, or already finished."""


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with labelsync's settings: WAL, synchronous FULL, foreign keys on."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def write_tenant(path: Path, tenant: Tenant, job_id: str, defaults: Defaults) -> None:
    """A new file holding `tenant` and a started push of `defaults` (setup, not timed)."""
    conn = connect(path)
    try:
        conn.execute("BEGIN")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO tenants (id) VALUES (?)", (tenant.id,))
        hot: list[tuple[object, ...]] = []
        cold: list[tuple[object, ...]] = []
        for pos, user in enumerate(tenant.users, 1):
            n = NarrowUser.of(user)
            hot.append(
                (
                    pos,
                    tenant.id,
                    user.id,
                    n.has_mailbox,
                    n.inbox_id,
                    n.sent_id,
                    n.inbox_on,
                    n.sent_on,
                    user.version,
                )
            )
            cold.append((pos, user.email, json.dumps(n.other_ids, separators=(",", ":"))))
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", hot)
        conn.executemany("INSERT INTO cold VALUES (?, ?, ?)", cold)
        conn.execute(
            "INSERT INTO jobs (id, tenant_id, status, inbox, sent, roster_end)"
            " VALUES (?, ?, 'PENDING', ?, ?, ?)",
            (job_id, tenant.id, defaults.inbox, defaults.sent, len(tenant.users)),
        )
        conn.execute("UPDATE tenants SET current_job = ? WHERE id = ?", (job_id, tenant.id))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _fence(conn: sqlite3.Connection, job_id: str) -> tuple[str, int, int, bool, bool]:
    """Inside a write transaction: the job's tenant, cursor, roster end and checkboxes,
    or `Superseded` if a newer push started or the job is finished."""
    row = conn.execute(_FENCE, (job_id,)).fetchone()
    if row is None:
        raise LookupError(f"no job {job_id!r}")
    tenant_id, status, cursor, roster_end, inbox, sent, current = row
    if current != job_id or status not in ("PENDING", "RUNNING"):
        raise Superseded(f"job {job_id!r} is {status}, the tenant's current job is {current!r}")
    return tenant_id, cursor, roster_end, bool(inbox), bool(sent)


def push(conn: sqlite3.Connection, job_id: str, batch_size: int, finished_at: str) -> None:
    """Run (or resume) the job to the end: one fenced transaction per batch, then finish."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tenant_id, cursor, roster_end, inbox, sent = _fence(conn, job_id)
            bounds = {
                "cursor": cursor,
                "roster_end": roster_end,
                "tenant": tenant_id,
                "size": batch_size,
                "job": job_id,
            }
            removed = 0
            if conn.execute(_REMOVED_AHEAD, (job_id, cursor, roster_end)).fetchone()[0]:
                end, batch, removed = conn.execute(_ENTRIES, bounds).fetchone()
            else:
                end, batch = conn.execute(_NEXT_BATCH, bounds).fetchone()
            if end is None:
                _finish(conn, job_id, tenant_id, inbox, sent, finished_at)
                conn.execute("COMMIT")
                return
            where = {"cursor": cursor, "end": end, "tenant": tenant_id, "job": job_id}
            flags = {**where, "inbox": inbox, "sent": sent}
            no_mailbox, inbox_missing, sent_missing = (
                conn.execute(statement, where).rowcount for statement in _SKIPS
            )
            inbox_flips, sent_flips = (
                conn.execute(statement, flags).rowcount for statement in _CHANGES
            )
            users_changed = conn.execute(_UPDATE_USERS, flags).rowcount
            if removed:
                conn.execute(_REMOVED_SKIPS, where)
            conn.execute(
                _CHECKPOINT,
                {
                    "job": job_id,
                    "end": end,
                    "batch": batch,
                    "users_changed": users_changed,
                    "selected": inbox_flips * inbox + sent_flips * sent,
                    "deselected": inbox_flips * (not inbox) + sent_flips * (not sent),
                    "no_mailbox": no_mailbox,
                    "label_missing": inbox_missing + sent_missing,
                    "removed": removed,
                },
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _finish(
    conn: sqlite3.Connection, job_id: str, tenant_id: str, inbox: bool, sent: bool, at: str
) -> None:
    """Mark the job DONE and write the tenant's audit record and checkboxes (R11)."""
    conn.execute("UPDATE jobs SET status = 'DONE', finished_at = ? WHERE id = ?", (at, job_id))
    record = conn.execute(
        "SELECT json_object('job_id', id, 'finished_at', finished_at, 'roster_size', roster_end,"
        " 'users_changed', users_changed, 'selected', selected, 'deselected', deselected,"
        " 'no_mailbox', no_mailbox, 'label_missing', label_missing) FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()[0]
    conn.execute(
        "UPDATE tenants SET defaults_inbox = ?, defaults_sent = ?, last_push = ? WHERE id = ?",
        (inbox, sent, record, tenant_id),
    )


def users_after(conn: sqlite3.Connection) -> Iterator[tuple[str, list[str], int]]:
    """Every User in roster order: id, selected label ids (hot and cold), version."""
    rows = conn.execute(
        "SELECT u.id, u.inbox_id, u.inbox_on, u.sent_id, u.sent_on, u.version, c.other_ids"
        " FROM users u JOIN cold c ON c.pos = u.pos ORDER BY u.pos"
    )
    for user_id, inbox_id, inbox_on, sent_id, sent_on, version, others in rows:
        ids = json.loads(others)
        if inbox_on and inbox_id is not None:
            ids.append(inbox_id)
        if sent_on and sent_id is not None:
            ids.append(sent_id)
        yield user_id, ids, version


def final_state(conn: sqlite3.Connection, job_id: str, *, keep: bool) -> State:
    """What the floor left: every User's selection and version, and the job's counts."""
    processed, *counts = conn.execute(
        "SELECT processed, users_changed, selected, deselected, no_mailbox, label_missing"
        " FROM jobs WHERE id = ? AND status = 'DONE'",
        (job_id,),
    ).fetchone()
    return state_of(
        users_after(conn),
        processed,
        (counts[0], counts[1], counts[2], counts[3], counts[4]),
        keep=keep,
    )
