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
  tenant's audit record and checkbox settings;
- provenance (R15): each label the push flips records the push (origin, job id,
  time), every User with a mailbox is marked covered, and a KEEP_USER_CHOICES
  push (R16) leaves labels whose origin is the User, one skip row each;
- audiences (R20): `narrow` fixes a push's members in the file when it starts
  (the Users holding one of its groups, found by an index on the cold rows), a
  batch is the next 500 members and reads only their rows (by key; by range where
  they are all the Users of their stretch of the roster), the job counts only
  them, and the tenant's checkboxes stay as they were.

What makes it fast: the hot state a push reads and writes is one narrow row per
User (its version, the ids of the labels holding INBOX/SENT, whether each is
selected); the User's other selected ids and everything else stay in a cold
table a push never touches. Each batch is decided in SQL, set-based: a few
``INSERT ... SELECT`` and one ``UPDATE`` over the batch's range of positions.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from benchmarks.state import NarrowUser, State, provenance_text, state_of
from labelsync import Defaults, Origin, Tenant
from labelsync.policy import LabelOrigin

__all__ = [
    "Superseded", "connect", "final_state", "narrow", "push", "users_after", "write_tenant",
]  # fmt: skip

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
        covered     INTEGER NOT NULL,    -- a push or onboarding reached this User (R16)
        inbox_origin TEXT,               -- who set INBOX last (R15); NULL: unknown
        inbox_job   TEXT,
        inbox_at    TEXT,
        sent_origin TEXT,
        sent_job    TEXT,
        sent_at     TEXT,
        UNIQUE (tenant_id, id)
    )""",
    """
    CREATE TABLE cold (                 -- the rest of a User: a push never touches it
        pos       INTEGER PRIMARY KEY REFERENCES users (pos),
        email     TEXT NOT NULL,
        other_ids TEXT NOT NULL,        -- selected ids that are not INBOX/SENT, JSON
        groups    TEXT NOT NULL         -- the User's groups, a sorted JSON list
    )""",
    "CREATE INDEX cold_by_groups ON cold (groups, pos)",
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
        keep          INTEGER NOT NULL DEFAULT 0,  -- KEEP_USER_CHOICES (R16)
        kept          INTEGER NOT NULL DEFAULT 0,
        user_removed  INTEGER NOT NULL DEFAULT 0,
        narrowed      INTEGER NOT NULL DEFAULT 0,  -- the roster is its members (R20)
        started_at    TEXT NOT NULL,
        finished_at   TEXT
    )""",
    """
    CREATE TABLE members (              -- a narrowed push's roster, fixed at its start
        job_id TEXT NOT NULL REFERENCES jobs (id),
        pos    INTEGER NOT NULL,
        PRIMARY KEY (job_id, pos)
    ) WITHOUT ROWID""",
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
_MINE_INBOX = ":keep AND coalesce(inbox_origin, '') = 'USER'"
_MINE_SENT = ":keep AND coalesce(sent_origin, '') = 'USER'"
_FLIP_INBOX = f"(inbox_id IS NOT NULL AND inbox_on != :inbox AND NOT ({_MINE_INBOX}))"
_FLIP_SENT = f"(sent_id IS NOT NULL AND sent_on != :sent AND NOT ({_MINE_SENT}))"
_KEPT = (
    (
        f"INSERT INTO job_skips (job_id, user_pos, label, reason) SELECT :job, pos, 'INBOX',"
        f" 'USER_CHOICE_KEPT' FROM users WHERE {_RANGE} AND inbox_id IS NOT NULL"
        f" AND inbox_on != :inbox AND {_MINE_INBOX}"
    ),
    (
        f"INSERT INTO job_skips (job_id, user_pos, label, reason) SELECT :job, pos, 'SENT',"
        f" 'USER_CHOICE_KEPT' FROM users WHERE {_RANGE} AND sent_id IS NOT NULL"
        f" AND sent_on != :sent AND {_MINE_SENT}"
    ),
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
        f" AND {_FLIP_INBOX}"
    ),
    (
        "INSERT INTO job_changes (job_id, user_pos, label, label_id, selected, version_after)"
        f" SELECT :job, pos, 'SENT', sent_id, :sent, version + 1 FROM users WHERE {_RANGE}"
        f" AND {_FLIP_SENT}"
    ),
)
# SET reads the row as it was, so each flag and its provenance decide on the old values.
_UPDATE_USERS = f"""
    UPDATE users SET
        inbox_on = CASE WHEN {_FLIP_INBOX} THEN :inbox ELSE inbox_on END,
        inbox_origin = CASE WHEN {_FLIP_INBOX} THEN 'PUSH' ELSE inbox_origin END,
        inbox_job = CASE WHEN {_FLIP_INBOX} THEN :job ELSE inbox_job END,
        inbox_at = CASE WHEN {_FLIP_INBOX} THEN :at ELSE inbox_at END,
        sent_on = CASE WHEN {_FLIP_SENT} THEN :sent ELSE sent_on END,
        sent_origin = CASE WHEN {_FLIP_SENT} THEN 'PUSH' ELSE sent_origin END,
        sent_job = CASE WHEN {_FLIP_SENT} THEN :job ELSE sent_job END,
        sent_at = CASE WHEN {_FLIP_SENT} THEN :at ELSE sent_at END,
        covered = 1,
        version = version + 1
    WHERE {_RANGE} AND ({_FLIP_INBOX} OR {_FLIP_SENT})
"""
_COVER_USERS = f"UPDATE users SET covered = 1 WHERE {_RANGE} AND has_mailbox = 1 AND covered = 0"
# A narrowed batch: its members, and whether they are all the Users of their stretch.
_MEMBERS = "pos IN (SELECT pos FROM members WHERE job_id = :job AND pos > :cursor AND pos <= :end)"
_NEXT_MEMBERS = """
    SELECT max(pos), count(*) FROM (
        SELECT pos FROM members WHERE job_id = :job AND pos > :cursor AND pos <= :roster_end
        ORDER BY pos LIMIT :size
    )
"""
_STORED_IN = """
    SELECT count(*) FROM (
        SELECT 1 FROM users WHERE pos > :cursor AND pos <= :end AND +tenant_id = :tenant
        LIMIT :size + 1
    )
"""
_NEXT_GROUP_SET = "SELECT groups FROM cold WHERE groups > ? ORDER BY groups LIMIT 1"
_CHECKPOINT = """
    UPDATE jobs SET status = 'RUNNING', cursor = :end, processed = processed + :batch,
        users_changed = users_changed + :users_changed, selected = selected + :selected,
        deselected = deselected + :deselected, no_mailbox = no_mailbox + :no_mailbox,
        label_missing = label_missing + :label_missing, kept = kept + :kept,
        user_removed = user_removed + :removed
    WHERE id = :job
"""
_FENCE = """
    SELECT j.tenant_id, j.status, j.cursor, j.roster_end, j.inbox, j.sent, t.current_job,
           j.keep, j.started_at, j.narrowed
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


def _origin(origin: LabelOrigin) -> tuple[str | None, str | None, str | None]:
    if origin.origin is Origin.UNKNOWN:
        return None, None, None
    return origin.origin.value, origin.job_id, None if origin.at is None else origin.at.isoformat()


def write_tenant(
    path: Path, tenant: Tenant, job_id: str, defaults: Defaults, *, keep: bool = False
) -> None:
    """A new file holding `tenant` and a started push of `defaults` (setup, not timed);
    `keep` makes it a KEEP_USER_CHOICES push (R16)."""
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
                    user.provenance.covered,
                    *_origin(user.provenance.inbox),
                    *_origin(user.provenance.sent),
                )
            )
            other_ids, groups = (
                json.dumps(v, separators=(",", ":")) for v in (n.other_ids, sorted(user.groups))
            )
            cold.append((pos, user.email, other_ids, groups))
        conn.executemany(f"INSERT INTO users VALUES ({', '.join('?' * 16)})", hot)
        conn.executemany("INSERT INTO cold VALUES (?, ?, ?, ?)", cold)
        conn.execute(
            "INSERT INTO jobs (id, tenant_id, status, inbox, sent, roster_end, keep, started_at)"
            " VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?)",
            (
                job_id,
                tenant.id,
                defaults.inbox,
                defaults.sent,
                len(tenant.users),
                keep,
                dt.datetime.now(dt.UTC).isoformat(),
            ),
        )
        conn.execute("UPDATE tenants SET current_job = ? WHERE id = ?", (job_id, tenant.id))
        conn.execute("COMMIT")
    finally:
        conn.close()


def narrow(conn: sqlite3.Connection, job_id: str, groups: frozenset[str]) -> None:
    """Make the PENDING job a push to the Users holding one of `groups` (R20): fix its
    members in the file, in one transaction. The distinct sets of groups are found by
    one seek each in the cold rows' index (a tenant has few), then their Users."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        sets: list[str] = []
        after = ""
        while row := conn.execute(_NEXT_GROUP_SET, (after,)).fetchone():
            after = row[0]
            if not groups.isdisjoint(json.loads(after)):
                sets.append(after)
        conn.execute(
            "INSERT INTO members (job_id, pos) SELECT ?, pos FROM cold"
            " WHERE groups IN (SELECT value FROM json_each(?))",
            (job_id, json.dumps(sets)),
        )
        conn.execute(
            "UPDATE jobs SET narrowed = 1,"
            " roster_end = coalesce((SELECT max(pos) FROM members WHERE job_id = ?1), 0)"
            " WHERE id = ?1 AND status = 'PENDING'",
            (job_id,),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _fence(
    conn: sqlite3.Connection, job_id: str
) -> tuple[str, int, int, bool, bool, bool, str, bool]:
    """Inside a write transaction: the job's tenant, cursor, roster end, checkboxes, mode,
    start time and whether it is narrowed, or `Superseded` if a newer push started or the
    job is finished."""
    row = conn.execute(_FENCE, (job_id,)).fetchone()
    if row is None:
        raise LookupError(f"no job {job_id!r}")
    tenant_id, status, cursor, roster_end, inbox, sent, current, keep, started_at, narrowed = row
    if current != job_id or status not in ("PENDING", "RUNNING"):
        raise Superseded(f"job {job_id!r} is {status}, the tenant's current job is {current!r}")
    return (
        tenant_id, cursor, roster_end, bool(inbox), bool(sent), bool(keep), started_at,
        bool(narrowed),
    )  # fmt: skip


def _over(statement: str, narrowed: bool) -> str:
    """`statement` over the batch's members instead of its range of the roster."""
    return statement.replace(_RANGE, _MEMBERS) if narrowed else statement


def push(conn: sqlite3.Connection, job_id: str, batch_size: int, finished_at: str) -> None:
    """Run (or resume) the job to the end: one fenced transaction per batch, then finish."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            tenant_id, cursor, roster_end, inbox, sent, keep, started_at, narrowed = _fence(
                conn, job_id
            )
            bounds = {
                "cursor": cursor,
                "roster_end": roster_end,
                "tenant": tenant_id,
                "size": batch_size,
                "job": job_id,
            }
            removed = 0
            removed_ahead = conn.execute(_REMOVED_AHEAD, (job_id, cursor, roster_end)).fetchone()[0]
            if narrowed:
                # The members include removed ones; `removed` holds only members.
                end, batch = conn.execute(_NEXT_MEMBERS, bounds).fetchone()
                if removed_ahead:
                    removed = conn.execute(_REMOVED_AHEAD, (job_id, cursor, end)).fetchone()[0]
            elif removed_ahead:
                end, batch, removed = conn.execute(_ENTRIES, bounds).fetchone()
            else:
                end, batch = conn.execute(_NEXT_BATCH, bounds).fetchone()
            if end is None:
                _finish(conn, job_id, tenant_id, inbox, sent, finished_at, narrowed)
                conn.execute("COMMIT")
                return
            where = {"cursor": cursor, "end": end, "tenant": tenant_id, "job": job_id}
            if narrowed and not removed_ahead:
                stored = conn.execute(_STORED_IN, {**where, "size": batch}).fetchone()[0]
                narrowed = stored != batch  # all the Users of the stretch: read it as a range
            flags = {**where, "inbox": inbox, "sent": sent, "keep": keep, "at": started_at}
            no_mailbox, inbox_missing, sent_missing = (
                conn.execute(_over(statement, narrowed), where).rowcount for statement in _SKIPS
            )
            kept = (
                sum(conn.execute(_over(s, narrowed), flags).rowcount for s in _KEPT) if keep else 0
            )
            inbox_flips, sent_flips = (
                conn.execute(_over(statement, narrowed), flags).rowcount for statement in _CHANGES
            )
            users_changed = conn.execute(_over(_UPDATE_USERS, narrowed), flags).rowcount
            conn.execute(_over(_COVER_USERS, narrowed), where)
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
                    "kept": kept,
                    "removed": removed,
                },
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _finish(
    conn: sqlite3.Connection,
    job_id: str,
    tenant_id: str,
    inbox: bool,
    sent: bool,
    at: str,
    narrowed: bool,
) -> None:
    """Mark the job DONE and write the tenant's audit record and, for a push to everyone,
    its checkboxes (R11, R20)."""
    conn.execute("UPDATE jobs SET status = 'DONE', finished_at = ? WHERE id = ?", (at, job_id))
    record = conn.execute(
        "SELECT json_object('job_id', id, 'finished_at', finished_at, 'roster_size', processed,"
        " 'users_changed', users_changed, 'selected', selected, 'deselected', deselected,"
        " 'no_mailbox', no_mailbox, 'label_missing', label_missing) FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()[0]
    if narrowed:
        conn.execute("UPDATE tenants SET last_push = ? WHERE id = ?", (record, tenant_id))
        return
    conn.execute(
        "UPDATE tenants SET defaults_inbox = ?, defaults_sent = ?, last_push = ? WHERE id = ?",
        (inbox, sent, record, tenant_id),
    )


def users_after(
    conn: sqlite3.Connection, job_id: str = ""
) -> Iterator[tuple[str, list[str], int, str]]:
    """Every User in roster order: id, selected label ids (hot and cold), version, and
    provenance as `provenance_text` writes it for the push `job_id`."""
    rows = conn.execute(
        "SELECT u.id, u.inbox_id, u.inbox_on, u.sent_id, u.sent_on, u.version, c.other_ids,"
        " u.inbox_origin, u.inbox_job, u.sent_origin, u.sent_job, u.covered"
        " FROM users u JOIN cold c ON c.pos = u.pos ORDER BY u.pos"
    )
    for row in rows:
        user_id, inbox_id, inbox_on, sent_id, sent_on, version, others = row[:7]
        inbox_origin, inbox_job, sent_origin, sent_job, covered = row[7:]
        ids = json.loads(others)
        if inbox_on and inbox_id is not None:
            ids.append(inbox_id)
        if sent_on and sent_id is not None:
            ids.append(sent_id)
        origins = [(inbox_origin, inbox_job), (sent_origin, sent_job)]
        yield user_id, ids, version, provenance_text(origins, bool(covered), job_id)


def final_state(conn: sqlite3.Connection, job_id: str, *, keep: bool) -> State:
    """What the floor left: every User's selection and version, and the job's counts."""
    processed, *counts, kept = conn.execute(
        "SELECT processed, users_changed, selected, deselected, no_mailbox, label_missing, kept"
        " FROM jobs WHERE id = ? AND status = 'DONE'",
        (job_id,),
    ).fetchone()
    return state_of(
        users_after(conn, job_id),
        processed,
        (counts[0], counts[1], counts[2], counts[3], counts[4]),
        keep=keep,
        kept=kept,
    )
