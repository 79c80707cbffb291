"""The PostgreSQL floor: the push as set-based SQL over psycopg, with labelsync's guarantees.

It keeps what `PostgresStore` keeps for one runner: one transaction per batch
of 500 roster Users, fenced (the job row is locked ``FOR UPDATE`` and must still
be its tenant's current, unfinished job); the batch's User rows locked before
they are decided, so no concurrent edit is lost; the checkpoint moved in that
transaction; one row per change and per skip; the roster fixed at the start
(the job's last roster position); the server's durability settings, as
labelsync gets them; finishing in one fenced transaction that writes the
tenant's audit record and checkboxes.

What makes it fast: one narrow hot row per User (version, the INBOX/SENT label
ids and whether each is selected; everything else in a cold table), and each
batch written by one statement: data-modifying CTEs lock and read the batch,
insert the skips and changes and ``UPDATE ... FROM`` the batch, and the
statement moves the checkpoint with the counts. Change and skip rows are keyed
by job, batch and order, without foreign keys, as labelsync's PostgreSQL store
keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import psycopg

from benchmarks.state import NarrowUser, State, state_of
from labelsync import Defaults, Tenant

__all__ = ["Superseded", "final_state", "push", "write_tenant"]

_SCHEMA = (
    """
    CREATE TABLE tenants (
        id             text PRIMARY KEY,
        current_job    text,
        defaults_inbox boolean,
        defaults_sent  boolean,
        last_push      jsonb
    )""",
    """
    CREATE TABLE users (
        tenant_id   text NOT NULL REFERENCES tenants (id),
        pos         bigint NOT NULL,
        id          text NOT NULL,
        has_mailbox boolean NOT NULL,
        inbox_id    text,
        sent_id     text,
        inbox_on    boolean NOT NULL,
        sent_on     boolean NOT NULL,
        version     bigint NOT NULL,
        PRIMARY KEY (tenant_id, pos),
        UNIQUE (tenant_id, id)
    )""",
    """
    CREATE TABLE cold (
        tenant_id text NOT NULL,
        pos       bigint NOT NULL,
        email     text NOT NULL,
        other_ids jsonb NOT NULL,
        PRIMARY KEY (tenant_id, pos),
        FOREIGN KEY (tenant_id, pos) REFERENCES users (tenant_id, pos)
    )""",
    """
    CREATE TABLE jobs (
        id            text PRIMARY KEY,
        tenant_id     text NOT NULL REFERENCES tenants (id),
        status        text NOT NULL,
        inbox         boolean NOT NULL,
        sent          boolean NOT NULL,
        roster_end    bigint NOT NULL,
        cursor        bigint NOT NULL DEFAULT 0,
        processed     bigint NOT NULL DEFAULT 0,
        users_changed bigint NOT NULL DEFAULT 0,
        selected      bigint NOT NULL DEFAULT 0,
        deselected    bigint NOT NULL DEFAULT 0,
        no_mailbox    bigint NOT NULL DEFAULT 0,
        label_missing bigint NOT NULL DEFAULT 0,
        finished_at   timestamptz
    )""",
    # Keyed by (job, batch, order) like labelsync's PostgreSQL store, with no foreign
    # keys, as there: each row is written in the job's fenced batch transaction.
    """
    CREATE TABLE job_changes (
        job_id        text NOT NULL,
        batch_key     bigint NOT NULL,
        ord           integer NOT NULL,
        tenant_id     text NOT NULL,
        user_pos      bigint NOT NULL,
        label         text NOT NULL,
        label_id      text NOT NULL,
        selected      boolean NOT NULL,
        version_after bigint NOT NULL,
        PRIMARY KEY (job_id, batch_key, ord)
    )""",
    """
    CREATE TABLE job_skips (
        job_id    text NOT NULL,
        batch_key bigint NOT NULL,
        ord       integer NOT NULL,
        tenant_id text NOT NULL,
        user_pos  bigint NOT NULL,
        label     text,
        reason    text NOT NULL,
        PRIMARY KEY (job_id, batch_key, ord)
    )""",
)

# The fence, and the batch: the last position of the next `size` roster Users.
_FENCE = """
    SELECT j.tenant_id, j.status, j.cursor, j.inbox, j.sent, t.current_job, (
        SELECT max(pos) FROM (
            SELECT pos FROM users
            WHERE tenant_id = j.tenant_id AND pos > j.cursor AND pos <= j.roster_end
            ORDER BY pos LIMIT %(size)s
        ) next
    )
    FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.id = %(job)s FOR UPDATE OF j
"""
# One statement per batch: every write of the batch and the checkpoint. A row's order
# within its batch is computed from the User's position (no sort). The batch's
# rows are locked as they are read, so a User's concurrent edit is either already
# in them or waits for the commit: none is lost (R12).
_BATCH = """
WITH batch AS (
    SELECT pos, has_mailbox, inbox_id, sent_id, inbox_on, sent_on, version,
           (inbox_id IS NOT NULL AND inbox_on <> %(inbox)s) AS fi,
           (sent_id IS NOT NULL AND sent_on <> %(sent)s) AS fs
    FROM users
    WHERE tenant_id = %(tenant)s AND pos > %(cursor)s AND pos <= %(end)s
    FOR UPDATE
), skips AS (
    INSERT INTO job_skips (job_id, batch_key, ord, tenant_id, user_pos, label, reason)
    SELECT %(job)s, %(cursor)s, (pos - %(cursor)s) * 3 + k, %(tenant)s, pos, label, reason
    FROM (
        SELECT pos, 0 AS k, NULL AS label, 'NO_MAILBOX' AS reason FROM batch
        WHERE NOT has_mailbox
        UNION ALL
        SELECT pos, 1, 'INBOX', 'LABEL_MISSING' FROM batch WHERE has_mailbox AND inbox_id IS NULL
        UNION ALL
        SELECT pos, 2, 'SENT', 'LABEL_MISSING' FROM batch WHERE has_mailbox AND sent_id IS NULL
    ) s
), changes AS (
    INSERT INTO job_changes (job_id, batch_key, ord, tenant_id, user_pos, label, label_id,
                             selected, version_after)
    SELECT %(job)s, %(cursor)s, (pos - %(cursor)s) * 3 + k, %(tenant)s, pos, label, label_id,
           selected, version + 1
    FROM (
        SELECT pos, 1 AS k, 'INBOX' AS label, inbox_id AS label_id, %(inbox)s AS selected,
               version
        FROM batch WHERE fi
        UNION ALL
        SELECT pos, 2, 'SENT', sent_id, %(sent)s, version FROM batch WHERE fs
    ) c
), changed AS (
    UPDATE users u SET
        inbox_on = CASE WHEN b.fi THEN %(inbox)s ELSE b.inbox_on END,
        sent_on = CASE WHEN b.fs THEN %(sent)s ELSE b.sent_on END,
        version = b.version + 1
    FROM batch b
    WHERE u.tenant_id = %(tenant)s AND u.pos = b.pos AND (b.fi OR b.fs)
)
UPDATE jobs SET
    status = 'RUNNING',
    cursor = %(end)s,
    processed = jobs.processed + n.users,
    users_changed = jobs.users_changed + n.changed,
    selected = jobs.selected + n.flips_on,
    deselected = jobs.deselected + n.flips_off,
    no_mailbox = jobs.no_mailbox + n.no_mailbox,
    label_missing = jobs.label_missing + n.missing
FROM (
    SELECT count(*) AS users,
           count(*) FILTER (WHERE fi OR fs) AS changed,
           count(*) FILTER (WHERE fi AND %(inbox)s) + count(*) FILTER (WHERE fs AND %(sent)s)
               AS flips_on,
           count(*) FILTER (WHERE fi AND NOT %(inbox)s)
               + count(*) FILTER (WHERE fs AND NOT %(sent)s) AS flips_off,
           count(*) FILTER (WHERE NOT has_mailbox) AS no_mailbox,
           count(*) FILTER (WHERE has_mailbox AND inbox_id IS NULL)
               + count(*) FILTER (WHERE has_mailbox AND sent_id IS NULL) AS missing
    FROM batch
) n
WHERE id = %(job)s
"""


class Superseded(RuntimeError):
    """Raised when the job is no longer its tenant's current job, or already finished."""


def write_tenant(conn: psycopg.Connection[Any], tenant: Tenant, job_id: str, d: Defaults) -> None:
    """Create the floor's tables in the connection's schema, copy `tenant` in, start a push."""
    with conn.transaction():
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO tenants (id) VALUES (%s)", (tenant.id,))
        narrow = [NarrowUser.of(user) for user in tenant.users]
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY users (tenant_id, pos, id, has_mailbox, inbox_id, sent_id, inbox_on,"
                " sent_on, version) FROM STDIN"
            ) as copy:
                for pos, (user, n) in enumerate(zip(tenant.users, narrow, strict=True), 1):
                    copy.write_row(
                        (
                            tenant.id,
                            pos,
                            user.id,
                            n.has_mailbox,
                            n.inbox_id,
                            n.sent_id,
                            n.inbox_on,
                            n.sent_on,
                            user.version,
                        )
                    )
            with cursor.copy("COPY cold (tenant_id, pos, email, other_ids) FROM STDIN") as copy:
                for pos, (user, n) in enumerate(zip(tenant.users, narrow, strict=True), 1):
                    copy.write_row((tenant.id, pos, user.email, json.dumps(n.other_ids)))
        conn.execute(
            "INSERT INTO jobs (id, tenant_id, status, inbox, sent, roster_end)"
            " VALUES (%s, %s, 'PENDING', %s, %s, %s)",
            (job_id, tenant.id, d.inbox, d.sent, len(tenant.users)),
        )
        conn.execute("UPDATE tenants SET current_job = %s WHERE id = %s", (job_id, tenant.id))
    conn.execute("ANALYZE")


def push(conn: psycopg.Connection[Any], job_id: str, batch_size: int) -> None:
    """Run (or resume) the job to the end: one fenced transaction per batch, then finish."""
    while True:
        with conn.transaction():
            row = conn.execute(_FENCE, {"job": job_id, "size": batch_size}).fetchone()
            if row is None:
                raise LookupError(f"no job {job_id!r}")
            tenant_id, status, cursor, inbox, sent, current, end = row
            if current != job_id or status not in ("PENDING", "RUNNING"):
                raise Superseded(f"job {job_id!r} is {status}; the current job is {current!r}")
            if end is None:
                _finish(conn, job_id, tenant_id, inbox, sent)
                return
            conn.execute(
                _BATCH,
                {
                    "job": job_id,
                    "tenant": tenant_id,
                    "cursor": cursor,
                    "end": end,
                    "inbox": inbox,
                    "sent": sent,
                },
            )


def _finish(
    conn: psycopg.Connection[Any], job_id: str, tenant_id: str, inbox: bool, sent: bool
) -> None:
    """Mark the job DONE and write the tenant's audit record and checkboxes (R11)."""
    conn.execute(
        "UPDATE jobs SET status = 'DONE', finished_at = %s WHERE id = %s",
        (dt.datetime.now(dt.UTC), job_id),
    )
    conn.execute(
        "UPDATE tenants SET defaults_inbox = %s, defaults_sent = %s, last_push = ("
        " SELECT jsonb_build_object('job_id', id, 'finished_at', finished_at, 'roster_size',"
        " roster_end, 'users_changed', users_changed, 'selected', selected, 'deselected',"
        " deselected, 'no_mailbox', no_mailbox, 'label_missing', label_missing)"
        " FROM jobs WHERE id = %s) WHERE id = %s",
        (inbox, sent, job_id, tenant_id),
    )


def final_state(conn: psycopg.Connection[Any], job_id: str, *, keep: bool) -> State:
    """What the floor left: every User's selection and version, and the job's counts."""
    row = conn.execute(
        "SELECT processed, users_changed, selected, deselected, no_mailbox, label_missing"
        " FROM jobs WHERE id = %s AND status = 'DONE'",
        (job_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"job {job_id!r} is not DONE")
    processed, *counts = (int(n) for n in row)
    rows = conn.execute(
        "SELECT u.id, u.inbox_id, u.inbox_on, u.sent_id, u.sent_on, u.version, c.other_ids"
        " FROM users u JOIN cold c USING (tenant_id, pos) ORDER BY u.tenant_id, u.pos"
    ).fetchall()

    def users() -> Iterator[tuple[str, list[str], int]]:
        for user_id, inbox_id, inbox_on, sent_id, sent_on, version, others in rows:
            ids = list(others)
            if inbox_on and inbox_id is not None:
                ids.append(inbox_id)
            if sent_on and sent_id is not None:
                ids.append(sent_id)
            yield user_id, ids, int(version)

    return state_of(
        users(), processed, (counts[0], counts[1], counts[2], counts[3], counts[4]), keep=keep
    )
