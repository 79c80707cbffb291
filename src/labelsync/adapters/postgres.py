"""A `Store` on PostgreSQL (psycopg 3), for hosts that keep their Users in a shared database.

Every table lives in one schema (``labelsync`` unless told) that the store
creates and migrates in place itself, recording its version in
``schema_version``; with ``migrate=False`` a DBA creates it instead from
`schema_sql`. Every row carries its tenant id. Each method is one transaction.
A User's push state is narrow and hot (the INBOX/SENT label ids and their
selection flags are columns; other selected ids stay cold in JSON), and a push
batch is one set-based statement over a range of roster positions that runs
`labelsync.jobs.BatchPlan`; the job's transitions come from `labelsync.jobs`. Push writes are
fenced on the tenant's current job: they hold a share lock on the tenant row,
which `start_job` must lock exclusively to supersede a job, so a batch either
lands before the newer push starts or not at all (R10). Users are written with
compare-and-set on their version (R12), and every writer locks User rows in
roster order, so a batch and a multi-User write never deadlock.

It is also a `labelsync.parallel.ParallelStore`: a job's roster is cut once
into ranges that worker processes claim with ``SELECT ... FOR UPDATE SKIP
LOCKED`` and a lease (B6).

Needs the ``postgres`` extra (psycopg); nothing connects until a store is made.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from labelsync import jobs
from labelsync._validate import is_id
from labelsync.adapters._records import (
    check_added_users,
    check_distinct,
    check_limit,
    check_new_users,
    check_user_ids,
    hot_state,
    label_from_row,
    label_row,
    locked_from_text,
    locked_text,
    locks_doc,
    locks_from_doc,
    provenance_columns,
    provenance_from,
    record_doc,
    record_from_doc,
    selection,
)
from labelsync.audience import Audience
from labelsync.changes import LabelChange, Skip
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    LabelSyncError,
    MissingExtra,
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.jobs import JobStatus, PushJob, RevertJob, StoredChange
from labelsync.model import (
    Defaults,
    Label,
    Locks,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.parallel import Busy, Claim, LeaseLost
from labelsync.policy import PushMode
from labelsync.ports import StaleCheckpoint, TenantSettings
from labelsync.presets import PresetBook, PresetEvent, event_doc, event_from_doc

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["SCHEMA_VERSION", "PostgresStore", "schema_sql"]

Row = tuple[Any, ...]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Each entry migrates the schema from version i to i + 1; "{s}" is the schema. A later
# release appends entries and never edits one.
#
# Only jobs reference tenants by foreign key: the bulk tables (users, job_changes,
# job_skips, batches) are written only by transactions that have just read and
# locked the tenant or job row they belong to, and a foreign key would cost a
# trigger call per row on the hot path of a push. Users leave room on each page
# (fillfactor) so a push's update stays on the page without touching the indexes.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE SEQUENCE {s}.roster_positions;
    CREATE TABLE {s}.tenants (
        id text PRIMARY KEY,
        name text NOT NULL,
        defaults_inbox boolean,
        defaults_sent boolean,
        onboard_new_users boolean NOT NULL,
        current_job_id text,
        last_push jsonb,
        CHECK ((defaults_inbox IS NULL) = (defaults_sent IS NULL))
    );
    CREATE TABLE {s}.users (
        tenant_id text NOT NULL,
        id text NOT NULL,
        position bigint NOT NULL,
        email text NOT NULL,
        permissions jsonb NOT NULL,
        provider text,
        address text,
        labels jsonb,
        synced jsonb NOT NULL,
        version bigint NOT NULL,
        CHECK ((provider IS NULL) = (address IS NULL) AND (provider IS NULL) = (labels IS NULL)),
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, position)
    ) WITH (fillfactor = 80);
    CREATE TABLE {s}.jobs (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        tenant_id text NOT NULL REFERENCES {s}.tenants (id),
        actor_id text NOT NULL,
        defaults_inbox boolean NOT NULL,
        defaults_sent boolean NOT NULL,
        status text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'DONE', 'SUPERSEDED')),
        started_at timestamptz NOT NULL,
        total bigint NOT NULL,
        processed bigint NOT NULL,
        checkpoint bigint NOT NULL,
        roster_end bigint NOT NULL,
        users_changed bigint NOT NULL,
        selected bigint NOT NULL,
        deselected bigint NOT NULL,
        no_mailbox bigint NOT NULL,
        label_missing bigint NOT NULL,
        finished_at timestamptz,
        superseded_by text,
        batch_size integer
    );
    CREATE INDEX ON {s}.jobs (tenant_id, seq);
    CREATE TABLE {s}.job_changes (
        tenant_id text NOT NULL,
        job_id text NOT NULL,
        batch_key bigint NOT NULL,
        ord integer NOT NULL,
        user_id text NOT NULL,
        label text NOT NULL,
        label_id text NOT NULL,
        selected boolean NOT NULL,
        version_after bigint NOT NULL,
        PRIMARY KEY (job_id, batch_key, ord)
    );
    CREATE TABLE {s}.job_skips (
        tenant_id text NOT NULL,
        job_id text NOT NULL,
        batch_key bigint NOT NULL,
        ord integer NOT NULL,
        user_id text NOT NULL,
        label text,
        reason text NOT NULL,
        PRIMARY KEY (job_id, batch_key, ord)
    );
    CREATE TABLE {s}.batches (
        tenant_id text NOT NULL,
        job_id text NOT NULL,
        range_no integer NOT NULL,
        first_position bigint NOT NULL,
        last_position bigint NOT NULL,
        size integer NOT NULL,
        done boolean NOT NULL DEFAULT false,
        worker_id text,
        token text,
        lease_until timestamptz,
        claims integer NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, range_no)
    );
    CREATE INDEX batches_open ON {s}.batches (job_id, range_no) WHERE NOT done;
    """,
    # Version 2: the narrow hot state of a push in its own table, a few dozen bytes per
    # User, so a batch's update writes new versions of narrow rows, not of the wide
    # ones. `users` keeps the cold rest; its `synced` (renamed `other_synced`) only
    # the selected ids other than the mailbox's INBOX and SENT labels.
    """
    CREATE TABLE {s}.user_state (
        tenant_id text NOT NULL,
        position bigint NOT NULL,
        id text NOT NULL,
        version bigint NOT NULL,
        has_mailbox boolean NOT NULL,
        inbox_id text,
        inbox_on boolean NOT NULL,
        sent_id text,
        sent_on boolean NOT NULL,
        PRIMARY KEY (tenant_id, position),
        UNIQUE (tenant_id, id),
        CHECK (has_mailbox OR (inbox_id IS NULL AND sent_id IS NULL))
    ) WITH (fillfactor = 80);
    INSERT INTO {s}.user_state
    SELECT tenant_id, position, id, version, has_mailbox, inbox_id,
           coalesce(synced ? inbox_id, false), sent_id, coalesce(synced ? sent_id, false)
    FROM (SELECT tenant_id, position, id, version, synced, labels IS NOT NULL AS has_mailbox,
                 (SELECT e->>0 FROM jsonb_array_elements(labels) AS e
                  WHERE e->>2 = 'INBOX' LIMIT 1) AS inbox_id,
                 (SELECT e->>0 FROM jsonb_array_elements(labels) AS e
                  WHERE e->>2 = 'SENT' LIMIT 1) AS sent_id
          FROM {s}.users) AS v1;
    UPDATE {s}.users AS u SET synced = coalesce(
        (SELECT jsonb_agg(x ORDER BY x) FROM jsonb_array_elements_text(u.synced) AS x
         WHERE x IS DISTINCT FROM h.inbox_id AND x IS DISTINCT FROM h.sent_id),
        '[]'::jsonb)
    FROM {s}.user_state AS h
    WHERE h.tenant_id = u.tenant_id AND h.position = u.position
      AND (h.inbox_on OR h.sent_on);
    ALTER TABLE {s}.users DROP COLUMN version;
    ALTER TABLE {s}.users RENAME COLUMN synced TO other_synced;
    """,
    # Version 3: a job's runner lease, so `status` tells a running job from an interrupted one.
    """
    ALTER TABLE {s}.jobs ADD COLUMN runner_id text;
    ALTER TABLE {s}.jobs ADD COLUMN lease_until timestamptz;
    """,
    # Version 4: audiences and presets (R20, R21). A User's groups are cold (a push
    # never reads them); a job names its audience, and a narrowed job's roster is
    # the positions of its members at the start, so a batch walks them only.
    """
    ALTER TABLE {s}.users ADD COLUMN groups jsonb NOT NULL DEFAULT '[]';
    ALTER TABLE {s}.jobs ADD COLUMN audience jsonb;
    CREATE TABLE {s}.job_members (
        job_id text NOT NULL,
        position bigint NOT NULL,
        PRIMARY KEY (job_id, position)
    );
    CREATE TABLE {s}.presets (
        tenant_id text PRIMARY KEY REFERENCES {s}.tenants (id),
        version bigint NOT NULL,
        book jsonb NOT NULL
    );
    CREATE TABLE {s}.preset_events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id text NOT NULL REFERENCES {s}.tenants (id),
        event jsonb NOT NULL
    );
    CREATE INDEX ON {s}.preset_events (tenant_id, seq);
    """,
    # Version 5: the directory (R13, R14). A roster User removed before the running push
    # reached them stays in `removed_users` for that push to skip; jobs count those skips.
    """
    ALTER TABLE {s}.jobs ADD COLUMN user_removed bigint NOT NULL DEFAULT 0;
    CREATE TABLE {s}.removed_users (
        tenant_id text NOT NULL,
        position bigint NOT NULL,
        id text NOT NULL,
        job_id text NOT NULL,
        PRIMARY KEY (tenant_id, position)
    );
    """,
    # Version 6: admin policy (R15-R19). Each User's provenance stays in the narrow hot
    # row a push writes (covered; per label the origin, its job and time; NULL origin:
    # unknown, which every existing User migrates to). Jobs keep their mode, the labels
    # locked when they started and their USER_CHOICE_KEPT count; tenants their locks;
    # reverts are audited jobs of their own, one per push.
    """
    ALTER TABLE {s}.user_state
        ADD COLUMN covered boolean NOT NULL DEFAULT false,
        ADD COLUMN inbox_origin text,
        ADD COLUMN inbox_job text,
        ADD COLUMN inbox_at text,
        ADD COLUMN sent_origin text,
        ADD COLUMN sent_job text,
        ADD COLUMN sent_at text;
    ALTER TABLE {s}.jobs
        ADD COLUMN mode text NOT NULL DEFAULT 'OVERRIDE',
        ADD COLUMN locked text NOT NULL DEFAULT '',
        ADD COLUMN user_choice_kept bigint NOT NULL DEFAULT 0;
    ALTER TABLE {s}.tenants ADD COLUMN locks jsonb;
    CREATE TABLE {s}.reverts (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        tenant_id text NOT NULL REFERENCES {s}.tenants (id),
        push_job_id text NOT NULL UNIQUE REFERENCES {s}.jobs (id),
        actor_id text NOT NULL,
        started_at timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('RUNNING', 'DONE')),
        finished_at timestamptz,
        users_restored bigint NOT NULL,
        labels_restored bigint NOT NULL,
        users_left_alone bigint NOT NULL,
        restored_defaults boolean NOT NULL
    );
    """,
    # Version 7: the members of each group, in roster order, as an index of `users.groups`
    # (R20). A push to a group reads only its members' entries (an index-only scan), where
    # `groups ?| names` read every User of the tenant: a GIN index on `groups` would still
    # visit each member's wide `users` row, and a 10% group spread over the roster sits on
    # most of the table's pages. Written in the same statements as `users.groups`.
    """
    CREATE TABLE {s}.user_groups (
        tenant_id text NOT NULL,
        name text NOT NULL,
        position bigint NOT NULL,
        PRIMARY KEY (tenant_id, name, position)
    );
    INSERT INTO {s}.user_groups (tenant_id, name, position)
    SELECT DISTINCT u.tenant_id, g.name, u.position
    FROM {s}.users AS u, jsonb_array_elements_text(u.groups) AS g (name);
    """,
)

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this labelsync writes; a newer one in the database is refused."""

_SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)"


def _schema_identifier(schema: object) -> str:
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidInput(
            "schema", schema, "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*, <= 63)"
        )
    return f'"{schema}"'


def schema_sql(schema: str = "labelsync") -> str:
    """The DDL that creates labelsync's tables in `schema` at `SCHEMA_VERSION`, as a DBA runs it.

    For databases where the application may not create tables: run this once
    (``psql -f``), then open the store with ``PostgresStore(dsn, migrate=False)``.
    """
    s = _schema_identifier(schema)
    steps = [
        f"CREATE SCHEMA IF NOT EXISTS {s};",
        _SCHEMA_VERSION_TABLE.replace("{s}", s) + ";",
        *(migration.replace("{s}", s).strip() for migration in _MIGRATIONS),
        f"INSERT INTO {s}.schema_version (version) VALUES ({SCHEMA_VERSION});",
    ]
    return "BEGIN;\n" + "\n".join(steps) + "\nCOMMIT;\n"


_JOB_COLUMNS = (
    "id, tenant_id, actor_id, defaults_inbox, defaults_sent, status, started_at, total, "
    "processed, checkpoint, roster_end, users_changed, selected, deselected, no_mailbox, "
    "label_missing, finished_at, superseded_by, mode, locked, user_choice_kept, audience, "
    "user_removed"
)
_REVERT_COLUMNS = (
    "id, tenant_id, push_job_id, actor_id, started_at, status, finished_at, users_restored, "
    "labels_restored, users_left_alone, restored_defaults"
)
# What a job read selects: its columns, then its runner lease.
_JOB_SELECT = _JOB_COLUMNS + ", runner_id, lease_until"
# A User travels as one JSON array; a batch of them as one JSON document, parsed
# once, so no per-value conversion runs in Python. A mailbox's labels travel as
# JSON text: many Users share one layout, which is then decoded (and validated) once.
_USER_JSON = (
    "json_build_array(u.id, u.email, u.permissions, u.provider, u.address, u.labels::text, "
    "u.other_synced, h.version, h.inbox_id, h.inbox_on, h.sent_id, h.sent_on, h.covered, "
    "h.inbox_origin, h.inbox_job, h.inbox_at, h.sent_origin, h.sent_job, h.sent_at, u.groups)"
)
# A User is its cold row joined to its hot row; filters name `u.` columns.
_USERS = (
    "{s}.users AS u JOIN {s}.user_state AS h "
    "ON h.tenant_id = u.tenant_id AND h.position = u.position"
)
_USER_RECORDS = (
    "json_to_recordset(%s) AS w(id text, email text, permissions jsonb, provider text, "
    "address text, labels text, other_synced jsonb, version bigint, position bigint, "
    "inbox_id text, inbox_on boolean, sent_id text, sent_on boolean, covered boolean, "
    "inbox_origin text, inbox_job text, inbox_at text, sent_origin text, sent_job text, "
    "sent_at text, groups jsonb)"
)

# -- a push batch, set-based ----------------------------------------------------------------
#
# The batch is the roster positions (%(after)s, %(last)s], its rows already locked, so
# every part of the one statement (which shares one snapshot) sees them as they are;
# %(i)s and %(s)s are the plan's INBOX and SENT checkboxes. A label is flipped
# where the mailbox has it and its flag differs (R3, R4); a mailbox without it is
# skipped for it (R7); a User without a mailbox is skipped whole. Change and skip
# rows are numbered in roster order, INBOX before SENT, as the rule emits them.
_LOCK_BATCH = """
    SELECT count(*), max(position) FROM (
        SELECT position FROM {s}.user_state
        WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(end)s
        ORDER BY position LIMIT %(limit)s FOR UPDATE
    ) AS r
"""
_RUN_BATCH = """
    WITH r AS (
        SELECT position, id, version, NOT has_mailbox AS no_mailbox, inbox_id, inbox_on,
               sent_id, sent_on, covered,
               NOT (%(ni)s AND covered) AS in_i, NOT (%(ns)s AND covered) AS in_s,
               coalesce(inbox_origin, '') = 'USER' AS mine_i,
               coalesce(sent_origin, '') = 'USER' AS mine_s
        FROM {s}.user_state
        WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(last)s
    ), d AS (
        SELECT *, (inbox_id IS NOT NULL AND inbox_on <> %(i)s AND in_i) AS di,
               (sent_id IS NOT NULL AND sent_on <> %(s)s AND in_s) AS ds
        FROM r
    ), b AS (
        SELECT *, di AND NOT (%(ki)s AND mine_i) AS fi, ds AND NOT (%(ks)s AND mine_s) AS fs,
               di AND %(ki)s AND mine_i AS kept_i, ds AND %(ks)s AND mine_s AS kept_s,
               no_mailbox AND NOT (%(ni)s AND %(ns)s AND covered) AS nm,
               NOT no_mailbox AND inbox_id IS NULL AND in_i AS mi,
               NOT no_mailbox AND sent_id IS NULL AND in_s AS ms
        FROM d
    ), ch AS (
        INSERT INTO {s}.job_changes (tenant_id, job_id, batch_key, ord, user_id, label,
                                     label_id, selected, version_after)
        SELECT %(t)s, %(job)s, %(key)s, row_number() OVER (ORDER BY position, rank), id,
               label, label_id, selected, version + 1
        FROM (SELECT position, 0 AS rank, id, 'INBOX' AS label, inbox_id AS label_id,
                     %(i)s AS selected, version FROM b WHERE fi
              UNION ALL
              SELECT position, 1, id, 'SENT', sent_id, %(s)s, version FROM b WHERE fs) AS c
    ), sk AS (
        INSERT INTO {s}.job_skips (tenant_id, job_id, batch_key, ord, user_id, label, reason)
        SELECT %(t)s, %(job)s, %(key)s, row_number() OVER (ORDER BY position, rank), id,
               label, reason
        FROM (SELECT position, 0 AS rank, id, NULL::text AS label, 'NO_MAILBOX' AS reason
              FROM b WHERE nm
              UNION ALL
              SELECT position, 0, id, NULL, 'USER_REMOVED' FROM {s}.removed_users
              WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(last)s
                AND job_id = %(job)s
              UNION ALL
              SELECT position, 1, id, 'INBOX', 'LABEL_MISSING' FROM b WHERE mi
              UNION ALL
              SELECT position, 1, id, 'INBOX', 'USER_CHOICE_KEPT' FROM b WHERE kept_i
              UNION ALL
              SELECT position, 2, id, 'SENT', 'LABEL_MISSING' FROM b WHERE ms
              UNION ALL
              SELECT position, 2, id, 'SENT', 'USER_CHOICE_KEPT' FROM b WHERE kept_s) AS k
    ), up AS (
        UPDATE {s}.user_state AS h
        SET inbox_on = CASE WHEN b.fi THEN %(i)s ELSE h.inbox_on END,
            inbox_origin = CASE WHEN b.fi THEN 'PUSH' ELSE h.inbox_origin END,
            inbox_job = CASE WHEN b.fi THEN %(job)s ELSE h.inbox_job END,
            inbox_at = CASE WHEN b.fi THEN %(at)s ELSE h.inbox_at END,
            sent_on = CASE WHEN b.fs THEN %(s)s ELSE h.sent_on END,
            sent_origin = CASE WHEN b.fs THEN 'PUSH' ELSE h.sent_origin END,
            sent_job = CASE WHEN b.fs THEN %(job)s ELSE h.sent_job END,
            sent_at = CASE WHEN b.fs THEN %(at)s ELSE h.sent_at END,
            covered = h.covered OR NOT b.no_mailbox,
            version = h.version + CASE WHEN b.fi OR b.fs THEN 1 ELSE 0 END
        FROM b
        WHERE h.tenant_id = %(t)s AND h.position = b.position
          AND (b.fi OR b.fs OR (NOT b.no_mailbox AND NOT b.covered))
    )
    SELECT count(*) FILTER (WHERE fi OR fs), count(*) FILTER (WHERE fi),
           count(*) FILTER (WHERE fs), count(*) FILTER (WHERE nm),
           count(*) FILTER (WHERE mi), count(*) FILTER (WHERE ms),
           count(*) FILTER (WHERE kept_i), count(*) FILTER (WHERE kept_s)
    FROM b
"""
# Roster Users removed since the job started (R14). Read after the batch's live rows are
# locked: a removal of one of those waits for the batch, and one committed before the
# lock has its row in `removed_users` visible to these later statements.
_REMOVED_AHEAD = """
    SELECT count(*) FROM {s}.removed_users
    WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(end)s
      AND job_id = %(job)s
"""
_MEMBERS_END = """
    SELECT max(position) FROM (
        SELECT position FROM {s}.job_members
        WHERE job_id = %(job)s AND position > %(after)s AND position <= %(end)s
        ORDER BY position LIMIT %(limit)s
    ) AS f
"""
_ENTRIES_END = """
    SELECT max(position) FROM (
        SELECT position, removed FROM (
            SELECT position, 0 AS removed FROM {s}.user_state
            WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(end)s
            UNION ALL
            SELECT position, 1 FROM {s}.removed_users
            WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(end)s
              AND job_id = %(job)s
        ) AS e ORDER BY position LIMIT %(limit)s
    ) AS f
"""
# A narrowed audience (R20): the batch is its members in the range, whose positions
# `job_members` holds; the same statements, over them only. The batch's members are
# taken first, by key and in order: joined before the limit, the planner (which has no
# statistics for a job's fresh members) joined and sorted every member left to the end of
# the roster for each batch. A member removed since the start has no row to lock; the
# batch then recounts its entries below (R14), as a full push does.
#
# The members' rows are looked up by key (`position = ANY(ARRAY(...))`, one index probe
# each, in order) whatever the planner estimates: as a join, it scanned all of
# `user_state` and hashed it for a batch of a spread group of a 100,000-User tenant.
_LOCK_MEMBERS = """
    SELECT count(*), max(position) FROM (
        SELECT position FROM {s}.user_state
        WHERE tenant_id = %(t)s AND position = ANY(ARRAY(
            SELECT position FROM {s}.job_members
            WHERE job_id = %(job)s AND position > %(after)s AND position <= %(end)s
            ORDER BY position LIMIT %(limit)s
        ))
        ORDER BY position FOR UPDATE
    ) AS r
"""
_RANGE = "WHERE tenant_id = %(t)s AND position > %(after)s AND position <= %(last)s"
# Only the members' rows, looked up by key: the positions between them are never read.
_RUN_MEMBERS = _RUN_BATCH.replace(
    _RANGE,
    "WHERE tenant_id = %(t)s AND position = ANY(ARRAY(SELECT position FROM {s}.job_members "
    "WHERE job_id = %(job)s AND position > %(after)s AND position <= %(last)s))",
)
# The members of named groups come from `user_groups` by its key (an index-only scan);
# a User in several of them once. Written in roster order, each row lands at the end of
# the `job_members` key (in hash order, the insert took half as long again). Listed Users
# are looked up by id: ordered by position, the planner may walk the whole roster instead.
_ROSTER_OF = {
    "groups": "INSERT INTO {s}.job_members (job_id, position) SELECT %(job)s, position "
    "FROM (SELECT DISTINCT position FROM {s}.user_groups WHERE tenant_id = %(t)s "
    "AND name = ANY(%(names)s::text[])) AS g ORDER BY position",
    "users": "INSERT INTO {s}.job_members (job_id, position) SELECT %(job)s, position "
    "FROM {s}.user_state WHERE tenant_id = %(t)s AND id = ANY(%(names)s::text[])",
}
# One group: its key range is already in roster order, and holds each member once.
_ROSTER_OF_GROUP = (
    "INSERT INTO {s}.job_members (job_id, position) SELECT %(job)s, position "
    "FROM {s}.user_groups WHERE tenant_id = %(t)s AND name = (%(names)s::text[])[1] "
    "ORDER BY position"
)
_INSERT_CHUNK = 10_000
_UNFINISHED = ("PENDING", "RUNNING")


def _storage_error(error: Exception, where: str) -> StorageError | None:
    """The typed error for a psycopg error that is the database's, or None for labelsync's own."""
    errors = _psycopg().errors
    if isinstance(
        error,
        errors.SerializationFailure
        | errors.DeadlockDetected
        | errors.LockNotAvailable
        | errors.QueryCanceled,
    ):
        return StorageBusy(
            where,
            f"the transaction collided with another or waited too long ({error.sqlstate})",
            "retry the call; nothing of it was written",
        )
    if isinstance(error, errors.DiskFull | errors.OutOfMemory | errors.InsufficientResources):
        return StorageFull(
            where, f"the server has no room ({error})".strip(), "free space on the server"
        )
    if isinstance(error, errors.ReadOnlySqlTransaction):
        return StorageReadOnly(
            where,
            "the server accepts no writes (a read-only replica or session)",
            "connect to the primary server",
        )
    if isinstance(error, errors.DataCorrupted | errors.IndexCorrupted):
        return StorageCorrupt(where, f"the database is damaged ({error})", "restore it")
    if isinstance(error, _psycopg().OperationalError):
        return StorageUnavailable(
            where, f"the database could not be reached ({error})".strip(), "retry later"
        )
    return None


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as error:
        raise MissingExtra("PostgresStore", "postgres", "psycopg") from error
    return psycopg


def _jsonb(value: object) -> object:
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _json(value: object) -> object:
    from psycopg.types.json import Json

    return Json(value)


# -- rows <-> values ------------------------------------------------------------------------------


# Label layouts by their stored text and back. Layouts repeat across a roster (the
# same provider, the same folders) and are immutable, so sharing them is safe.
_LAYOUTS = 4096
_layout_texts: dict[int, tuple[tuple[Label, ...], str]] = {}


@functools.lru_cache(maxsize=_LAYOUTS)
def _labels_from_text(text: str) -> tuple[Label, ...]:
    labels = tuple(label_from_row(row) for row in json.loads(text))
    _remember_layout(labels, text)
    return labels


def _remember_layout(labels: tuple[Label, ...], text: str) -> None:
    if len(_layout_texts) >= _LAYOUTS:
        _layout_texts.clear()
    _layout_texts[id(labels)] = (labels, text)


def _labels_text(labels: tuple[Label, ...]) -> str:
    """The stored text of a label layout, encoded once per layout object."""
    known = _layout_texts.get(id(labels))
    if known is not None and known[0] is labels:
        return known[1]
    text = json.dumps(
        [label_row(lb) for lb in labels],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    _remember_layout(labels, text)
    return text


@functools.lru_cache(maxsize=256)
def _permissions_from(names: tuple[str, ...]) -> frozenset[Permission]:
    return frozenset(Permission(p) for p in names)


def _user_doc(user: User, position: int | None = None) -> dict[str, object]:
    """The stored form of a User, as a record of `_USER_RECORDS`."""
    mailbox = user.mailbox
    inbox_id, inbox_on, sent_id, sent_on, others = hot_state(user)
    return {
        "id": user.id,
        "email": user.email,
        "permissions": sorted(p.value for p in user.permissions),
        "provider": None if mailbox is None else mailbox.provider.value,
        "address": None if mailbox is None else mailbox.address,
        "labels": None if mailbox is None else _labels_text(mailbox.labels),
        "other_synced": others,
        "version": user.version,
        "position": position,
        "inbox_id": inbox_id,
        "inbox_on": inbox_on,
        "sent_id": sent_id,
        "sent_on": sent_on,
        **dict(zip(_PROVENANCE_KEYS, provenance_columns(user.provenance), strict=True)),
        "groups": sorted(user.groups),
    }


_PROVENANCE_KEYS = (
    "covered", "inbox_origin", "inbox_job", "inbox_at", "sent_origin", "sent_job", "sent_at",
)  # fmt: skip


def _user_from_doc(doc: Sequence[Any]) -> User:
    """A User from the array `_USER_JSON` builds."""
    user_id, email, permissions, provider, address, labels, others, version = doc[:8]
    inbox_id, inbox_on, sent_id, sent_on = doc[8:12]
    groups = doc[19]
    return User(
        id=user_id,
        email=email,
        permissions=_permissions_from(tuple(permissions)),
        mailbox=None
        if provider is None
        else Mailbox(
            provider=Provider(provider), address=address, labels=_labels_from_text(labels)
        ),
        synced=selection(others, inbox_id, inbox_on, sent_id, sent_on),
        version=version,
        provenance=provenance_from(*doc[12:19]),
        groups=frozenset(groups) if groups else frozenset(),
    )


def _defaults(inbox: bool | None, sent: bool | None) -> Defaults | None:
    return None if inbox is None or sent is None else Defaults(inbox=inbox, sent=sent)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _job_from_row(row: Row) -> PushJob:
    (job_id, tenant_id, actor_id, inbox, sent, status, started_at, total, processed) = row[:9]
    (checkpoint, roster_end, changed, selected, deselected, no_mailbox, missing) = row[9:16]
    finished_at, superseded_by, mode, locked, kept, audience, user_removed = row[16:23]
    return PushJob(
        id=job_id,
        tenant_id=tenant_id,
        actor_id=actor_id,
        defaults=Defaults(inbox=inbox, sent=sent),
        status=JobStatus(status),
        started_at=_utc(started_at),
        total=total,
        processed=processed,
        cursor=checkpoint,
        roster_end=roster_end,
        counts=PushCounts(
            users_changed=changed,
            selected=selected,
            deselected=deselected,
            no_mailbox=no_mailbox,
            label_missing=missing,
            user_choice_kept=kept,
            user_removed=user_removed,
        ),
        finished_at=None if finished_at is None else _utc(finished_at),
        superseded_by=superseded_by,
        mode=PushMode(mode),
        locked=locked_from_text(locked),
        audience=Audience.from_doc(audience),
        runner_id=row[23] if len(row) > 23 else None,
        lease_until=_utc(row[24]) if len(row) > 24 and row[24] is not None else None,
    )


def _revert_from_row(row: Row) -> RevertJob:
    (revert_id, tenant_id, push_job_id, actor_id, started_at, status, finished_at) = row[:7]
    users_restored, labels_restored, left_alone, restored_defaults = row[7:11]
    return RevertJob(
        id=revert_id,
        tenant_id=tenant_id,
        push_job_id=push_job_id,
        actor_id=actor_id,
        started_at=_utc(started_at),
        status=JobStatus(status),
        finished_at=None if finished_at is None else _utc(finished_at),
        users_restored=users_restored,
        labels_restored=labels_restored,
        users_left_alone=left_alone,
        restored_defaults=restored_defaults,
    )


def _one(cur: psycopg.Cursor[Row]) -> Any:
    """The single value of the single row a query returned."""
    row = cur.fetchone()
    assert row is not None
    return row[0]


class PostgresStore:
    """Tenants, Users and push jobs in PostgreSQL, in the tables of `schema`.

    `conninfo` is a connection string (the store opens one connection and
    serialises its use across threads) or a `psycopg_pool.ConnectionPool` (the
    store borrows a connection per call and never closes the pool). The schema
    is created or migrated in place on construction; with ``migrate=False`` it
    must already be at `SCHEMA_VERSION` (created from `schema_sql` by a DBA),
    else `LabelSyncError`. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        conninfo: str | ConnectionPool[Any],
        *,
        schema: str = "labelsync",
        migrate: bool = True,
    ) -> None:
        pg = _psycopg()
        self._s = _schema_identifier(schema)
        if not isinstance(migrate, bool):
            raise InvalidInput("migrate", migrate, "must be True or False")
        self.schema = schema
        self._lock = threading.RLock()
        self._conninfo: str | None = None
        self._conn: psycopg.Connection[Row] | None = None
        self._pool: ConnectionPool[Any] | None = None
        if isinstance(conninfo, str):
            self._conninfo = conninfo
            try:
                self._conn = pg.connect(conninfo, autocommit=True)
            except pg.OperationalError as error:
                raise StorageUnavailable(
                    "PostgreSQL", f"the server could not be reached ({error})", "retry later"
                ) from error
        elif hasattr(conninfo, "connection") and hasattr(conninfo, "getconn"):
            self._pool = conninfo
        else:
            raise InvalidInput(
                "conninfo", conninfo, "must be a connection string or a psycopg_pool.ConnectionPool"
            )
        try:
            if migrate:
                self._migrate()
            else:
                self._check_schema()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        where = "a pool" if self._pool is not None else "closed"
        if self._conn is not None and not self._conn.closed:
            info = self._conn.info
            where = f"{info.host}:{info.port}/{info.dbname}"
        return f"<PostgresStore schema={self.schema!r} on {where}>"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's own connection (a pool given to it is left open); idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    # -- connections and transactions -----------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        if self._pool is not None:
            with self._pool.connection() as conn:
                yield conn
            return
        with self._lock:
            if self._conn is not None and self._conn.broken and self._conninfo is not None:
                # The server dropped us (restart, idle timeout) during an earlier call, which
                # failed; this call gets a new connection.
                self._conn = _psycopg().connect(self._conninfo, autocommit=True)
            if self._conn is None or self._conn.closed:
                raise InvalidInput("PostgresStore", self, "is closed")
            yield self._conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Row]]:
        """One transaction: committed when the block ends, rolled back if it raises.

        A database error that is the server's or the network's, not labelsync's,
        becomes a typed `StorageError` (`StorageBusy` and `StorageUnavailable` are
        `Retryable`).
        """
        try:
            with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except _psycopg().Error as error:
            typed = _storage_error(error, self._where())
            if typed is None:
                raise
            raise typed from error

    def _where(self) -> str:
        """Where the store's tables are, for error messages (no password)."""
        place = "PostgreSQL"
        if self._conn is not None:
            with contextlib.suppress(Exception):
                info = self._conn.info
                place = f"PostgreSQL {info.host}:{info.port}/{info.dbname}"
        return f"{place} schema {self.schema!r}"

    def _migrate(self) -> None:
        s = self._s
        with self._tx() as cur:
            # Workers starting together must not race to create the same tables.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"labelsync:{self.schema}",))
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            cur.execute(_SCHEMA_VERSION_TABLE.replace("{s}", s))
            cur.execute(f"SELECT version FROM {s}.schema_version")
            row = cur.fetchone()
            if row is None:
                cur.execute(f"INSERT INTO {s}.schema_version (version) VALUES (0)")
                version = 0
            else:
                version = row[0]
            if version > SCHEMA_VERSION:
                raise LabelSyncError(
                    f"schema_version: {version!r} in schema {self.schema!r} is newer than this "
                    f"labelsync understands ({SCHEMA_VERSION}); upgrade labelsync"
                )
            for migration in _MIGRATIONS[version:]:
                cur.execute(migration.replace("{s}", s))
            cur.execute(f"UPDATE {s}.schema_version SET version = %s", (SCHEMA_VERSION,))

    def _check_schema(self) -> None:
        """Refuse a schema that is missing or not at `SCHEMA_VERSION` (``migrate=False``)."""
        with self._tx() as cur:
            cur.execute("SELECT to_regclass(%s)", (f"{self._s}.schema_version",))
            version = None
            if _one(cur) is not None:
                cur.execute(f"SELECT version FROM {self._s}.schema_version")
                row = cur.fetchone()
                version = None if row is None else row[0]
        if version != SCHEMA_VERSION:
            raise LabelSyncError(
                f"schema: {self.schema!r} is at version {version!r}, not {SCHEMA_VERSION}; "
                f"create or upgrade it with the DDL of labelsync.adapters.postgres.schema_sql() "
                f"(`labelsync schema --postgres`), or open the store with migrate=True"
            )

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._tx() as cur:
            cur.execute(f"SELECT version FROM {self._s}.schema_version")
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

    # -- shared steps -----------------------------------------------------------------------------

    def _lock_tenant(self, cur: psycopg.Cursor[Row], tenant_id: object, mode: str) -> Row:
        """The tenant row (name, defaults, onboarding, current job, last push), locked in `mode`."""
        if not is_id(tenant_id):
            raise UnknownTenant(tenant_id)
        cur.execute(
            f"SELECT name, defaults_inbox, defaults_sent, onboard_new_users, current_job_id, "
            f"last_push FROM {self._s}.tenants WHERE id = %s {mode}",
            (tenant_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise UnknownTenant(tenant_id)
        return row

    def _locks(self, cur: psycopg.Cursor[Row], tenant_id: str) -> Locks | None:
        cur.execute(f"SELECT locks FROM {self._s}.tenants WHERE id = %s", (tenant_id,))
        row = cur.fetchone()
        return None if row is None else locks_from_doc(row[0])

    def _job(self, cur: psycopg.Cursor[Row], job_id: object, lock: str = "") -> PushJob:
        if not is_id(job_id):
            raise UnknownJob(job_id)
        cur.execute(f"SELECT {_JOB_SELECT} FROM {self._s}.jobs WHERE id = %s {lock}", (job_id,))
        row = cur.fetchone()
        if row is None:
            raise UnknownJob(job_id)
        return _job_from_row(row)

    def _fence(self, cur: psycopg.Cursor[Row], job_id: object, mode: str) -> str | None:
        """Lock the job's tenant row in `mode` and return its current job id; `UnknownJob`."""
        if not is_id(job_id):
            raise UnknownJob(job_id)
        cur.execute(
            f"SELECT t.current_job_id FROM {self._s}.tenants t JOIN {self._s}.jobs j "
            f"ON j.tenant_id = t.id WHERE j.id = %s {mode} OF t",
            (job_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise UnknownJob(job_id)
        return cast(str | None, row[0])

    def _insert_users(
        self, cur: psycopg.Cursor[Row], tenant_id: str, users: Sequence[User]
    ) -> None:
        if not users:
            return
        s = self._s
        # Positions are global and increasing: the roster order, and R6's cut-off.
        cur.execute(
            f"SELECT nextval('{s}.roster_positions') FROM generate_series(1, %s)", (len(users),)
        )
        positions = sorted(row[0] for row in cur.fetchall())
        for start in range(0, len(users), _INSERT_CHUNK):
            chunk = zip(positions[start:], users[start : start + _INSERT_CHUNK], strict=False)
            docs = _json([_user_doc(user, position) for position, user in chunk])
            cur.execute(
                f"WITH w AS (SELECT * FROM {_USER_RECORDS}), cold AS ("
                f"INSERT INTO {s}.users (tenant_id, position, id, email, permissions, provider, "
                f"address, labels, other_synced, groups) SELECT %s, w.position, w.id, w.email, "
                f"w.permissions, w.provider, w.address, w.labels::jsonb, w.other_synced, "
                f"w.groups FROM w), grouped AS ("
                f"INSERT INTO {s}.user_groups (tenant_id, name, position) SELECT %s, g.name, "
                f"w.position FROM w, jsonb_array_elements_text(w.groups) AS g (name)) "
                f"INSERT INTO {s}.user_state (tenant_id, position, id, version, has_mailbox, "
                f"inbox_id, inbox_on, sent_id, sent_on, covered, inbox_origin, inbox_job, "
                f"inbox_at, sent_origin, sent_job, sent_at) SELECT %s, w.position, w.id, "
                f"w.version, w.provider IS NOT NULL, w.inbox_id, w.inbox_on, w.sent_id, "
                f"w.sent_on, w.covered, w.inbox_origin, w.inbox_job, w.inbox_at, w.sent_origin, "
                f"w.sent_job, w.sent_at FROM w",
                (docs, tenant_id, tenant_id, tenant_id),
            )

    def _cas_users(
        self, cur: psycopg.Cursor[Row], tenant_id: str, writes: Sequence[tuple[User, int]]
    ) -> tuple[str, ...]:
        """Lock the Users in roster order and return the ids whose version is not the paired one.

        Roster order, as a push batch locks its range: two writers never wait on each other
        in a cycle.
        """
        if not writes:
            return ()
        cur.execute(
            f"SELECT id, version FROM {self._s}.user_state WHERE tenant_id = %s "
            f"AND id = ANY(ARRAY(SELECT json_array_elements_text(%s))) ORDER BY position "
            f"FOR UPDATE",
            (tenant_id, _json([user.id for user, _ in writes])),
        )
        stored = dict(cast(list[tuple[str, int]], cur.fetchall()))
        return tuple(user.id for user, expected in writes if stored.get(user.id) != expected)

    def _update_users(
        self, cur: psycopg.Cursor[Row], tenant_id: str, users: Sequence[User]
    ) -> None:
        if not users:
            return
        s = self._s
        cur.execute(
            f"WITH w AS (SELECT * FROM {_USER_RECORDS}), moved AS ("
            # Users whose groups change, with their groups before and after: `user_groups`
            # loses the left ones and gains the joined ones (the two never share a row).
            f"SELECT u.position, u.groups AS before, w.groups AS after FROM {s}.users AS u "
            f"JOIN w ON u.tenant_id = %s AND u.id = w.id WHERE u.groups <> w.groups), gone AS ("
            f"DELETE FROM {s}.user_groups AS g USING moved WHERE g.tenant_id = %s "
            f"AND g.position = moved.position AND NOT moved.after ? g.name), joined AS ("
            f"INSERT INTO {s}.user_groups (tenant_id, name, position) SELECT %s, g.name, "
            f"moved.position FROM moved, jsonb_array_elements_text(moved.after) AS g (name) "
            f"WHERE NOT moved.before ? g.name), cold AS ("
            f"UPDATE {s}.users AS u SET email = w.email, permissions = w.permissions, "
            f"provider = w.provider, address = w.address, labels = w.labels::jsonb, "
            f"other_synced = w.other_synced, groups = w.groups "
            f"FROM w WHERE u.tenant_id = %s AND u.id = w.id) "
            f"UPDATE {s}.user_state AS h SET version = w.version, "
            f"has_mailbox = w.provider IS NOT NULL, inbox_id = w.inbox_id, "
            f"inbox_on = w.inbox_on, sent_id = w.sent_id, sent_on = w.sent_on, "
            # Covered never goes back: marking a User covered does not move the version.
            f"covered = h.covered OR w.covered, inbox_origin = w.inbox_origin, "
            f"inbox_job = w.inbox_job, inbox_at = w.inbox_at, sent_origin = w.sent_origin, "
            f"sent_job = w.sent_job, sent_at = w.sent_at "
            f"FROM w WHERE h.tenant_id = %s AND h.id = w.id",
            (
                _json([_user_doc(user) for user in users]),
                tenant_id,
                tenant_id,
                tenant_id,
                tenant_id,
                tenant_id,
            ),
        )

    def _run_range(
        self, cur: psycopg.Cursor[Row], job: PushJob, after: int, end: int, limit: int | None
    ) -> tuple[int, int, PushCounts] | None:
        """Run the job's plan on its roster Users in (after, end], at most `limit` of them.

        Locks them first (roster order), then runs one set-based statement on the
        now-stable rows. Returns how many it handled, the last position, and the
        counts; None when there were none.
        """
        s = self._s
        narrowed = job.audience.narrowed
        where = {"t": job.tenant_id, "job": job.id, "after": after, "end": end, "limit": limit}
        cur.execute((_LOCK_MEMBERS if narrowed else _LOCK_BATCH).replace("{s}", s), where)
        row = cur.fetchone()
        assert row is not None
        size, last = row
        removed = 0
        cur.execute(_REMOVED_AHEAD.replace("{s}", s), where)
        if _one(cur):
            # The batch ends where its first `limit` live or removed entries end; its
            # live rows are among those just locked.
            # A narrowed job's entries are its members, removed ones included (R20).
            cur.execute((_MEMBERS_END if narrowed else _ENTRIES_END).replace("{s}", s), where)
            last = _one(cur)
            bounded = {**where, "end": last, "last": last}
            cur.execute(_REMOVED_AHEAD.replace("{s}", s), bounded)
            removed = _one(cur)
            live = (
                # The members' rows by key, as the batch reads them.
                f"SELECT count(*) FROM {s}.user_state WHERE tenant_id = %(t)s "
                f"AND position = ANY(ARRAY(SELECT position FROM {s}.job_members "
                f"WHERE job_id = %(job)s AND position > %(after)s AND position <= %(last)s))"
                if narrowed
                else f"SELECT count(*) FROM {s}.user_state WHERE tenant_id = %(t)s "
                f"AND position > %(after)s AND position <= %(last)s"
            )
            cur.execute(live, bounded)
            size = _one(cur)
        if not size and not removed:
            return None
        plan = jobs.job_plan(job)
        inbox, sent = plan.checked
        cur.execute(
            (_RUN_MEMBERS if narrowed else _RUN_BATCH).replace("{s}", s),
            {
                "t": job.tenant_id,
                "job": job.id,
                "key": after,
                "after": after,
                "last": last,
                "i": inbox,
                "s": sent,
                "ki": plan.keep[0],
                "ks": plan.keep[1],
                "ni": plan.new_only[0],
                "ns": plan.new_only[1],
                "at": job.started_at.isoformat(),
            },
        )
        counted = cur.fetchone()
        assert counted is not None
        changed, flips_inbox, flips_sent, no_mailbox, miss_inbox, miss_sent = counted[:6]
        counts = plan.counts(
            users_changed=changed,
            flips=(flips_inbox, flips_sent),
            no_mailbox=no_mailbox,
            missing=(miss_inbox, miss_sent),
            kept=counted[6:8],
            removed=removed,
        )
        return size + removed, last, counts

    def _save_job(self, cur: psycopg.Cursor[Row], job: PushJob) -> None:
        """Persist what `labelsync.jobs` made of a stored job."""
        c = job.counts
        cur.execute(
            f"UPDATE {self._s}.jobs SET status = %s, finished_at = %s, processed = %s, "
            f"checkpoint = %s, users_changed = %s, selected = %s, deselected = %s, "
            f"no_mailbox = %s, label_missing = %s, superseded_by = %s, user_choice_kept = %s, "
            f"user_removed = %s "
            f"WHERE id = %s",
            (
                job.status.value,
                job.finished_at,
                job.processed,
                job.cursor,
                c.users_changed,
                c.selected,
                c.deselected,
                c.no_mailbox,
                c.label_missing,
                job.superseded_by,
                c.user_choice_kept,
                c.user_removed,
                job.id,
            ),
        )

    # -- tenants and Users ----------------------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        check_new_users(tenant.users)
        defaults = tenant.defaults
        last_push = None if tenant.last_push is None else _jsonb(record_doc(tenant.last_push))
        with self._tx() as cur:
            cur.execute(
                f"INSERT INTO {self._s}.tenants (id, name, defaults_inbox, defaults_sent, "
                f"onboard_new_users, last_push, locks) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (id) DO NOTHING",
                (
                    tenant.id,
                    tenant.name,
                    None if defaults is None else defaults.inbox,
                    None if defaults is None else defaults.sent,
                    tenant.onboard_new_users,
                    last_push,
                    None if tenant.locks is None else _jsonb(locks_doc(tenant.locks)),
                ),
            )
            if cur.rowcount == 0:
                raise AlreadyExists("tenant.id", tenant.id, "is already a stored tenant")
            try:
                self._insert_users(cur, tenant.id, tenant.users)
            except _psycopg().errors.UniqueViolation:
                # Another add_tenant of the same id won the race.
                raise AlreadyExists("tenant.id", tenant.id, "is already a stored tenant") from None
            if len(tenant.users) >= _INSERT_CHUNK:
                # Fresh statistics, so the planner reads a big roster by index, not by scan.
                cur.execute(f"ANALYZE {self._s}.users (tenant_id, id, position)")
                cur.execute(f"ANALYZE {self._s}.user_state (tenant_id, id, position)")
                cur.execute(f"ANALYZE {self._s}.user_groups")

    def tenant_ids(self) -> list[str]:
        with self._tx() as cur:
            cur.execute(f'SELECT id FROM {self._s}.tenants ORDER BY id COLLATE "C"')
            return [row[0] for row in cur.fetchall()]

    def get_tenant(self, tenant_id: str) -> Tenant:
        with self._tx() as cur:
            name, inbox, sent, onboard, _, last_push = self._lock_tenant(cur, tenant_id, "")
            locks = self._locks(cur, tenant_id)
            cur.execute(
                f"SELECT coalesce(json_agg({_USER_JSON} ORDER BY u.position), '[]') "
                f"FROM {_USERS.format(s=self._s)} WHERE u.tenant_id = %s",
                (tenant_id,),
            )
            roster = [_user_from_doc(doc) for doc in _one(cur)]
        return Tenant(
            id=tenant_id,
            name=name,
            users=roster,
            defaults=_defaults(inbox, sent),
            last_push=record_from_doc(last_push),
            onboard_new_users=onboard,
            locks=locks,
        )

    def settings(self, tenant_id: str) -> TenantSettings:
        with self._tx() as cur:
            name, inbox, sent, onboard, _, last_push = self._lock_tenant(cur, tenant_id, "")
            locks = self._locks(cur, tenant_id)
        return TenantSettings(
            id=tenant_id,
            name=name,
            defaults=_defaults(inbox, sent),
            onboard_new_users=onboard,
            last_push=record_from_doc(last_push),
            locks=locks,
        )

    def save_defaults(self, tenant_id: str, defaults: Defaults | None) -> None:
        if defaults is not None and not isinstance(defaults, Defaults):
            raise InvalidInput("defaults", defaults, "is not a Defaults")
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "FOR NO KEY UPDATE")
            cur.execute(
                f"UPDATE {self._s}.tenants SET defaults_inbox = %s, defaults_sent = %s "
                f"WHERE id = %s",
                (
                    None if defaults is None else defaults.inbox,
                    None if defaults is None else defaults.sent,
                    tenant_id,
                ),
            )

    def save_onboarding(self, tenant_id: str, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled", enabled, "must be True or False")
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "FOR NO KEY UPDATE")
            cur.execute(
                f"UPDATE {self._s}.tenants SET onboard_new_users = %s WHERE id = %s",
                (enabled, tenant_id),
            )

    def add_user(self, tenant_id: str, user: User) -> None:
        check_new_users((user,))
        with self._tx() as cur:
            # A share lock: new Users and a starting push's roster cut (R6) never interleave.
            self._lock_tenant(cur, tenant_id, "FOR SHARE")
            cur.execute(
                f"SELECT 1 FROM {self._s}.users WHERE tenant_id = %s AND id = %s",
                (tenant_id, user.id),
            )
            if cur.fetchone() is not None:
                raise AlreadyExists(
                    "user.id", user.id, f"is already a User of tenant {tenant_id!r}"
                )
            try:
                self._insert_users(cur, tenant_id, [user])
            except _psycopg().errors.UniqueViolation:
                # Another add_user of the same id committed between our check and insert.
                raise AlreadyExists(
                    "user.id", user.id, f"is already a User of tenant {tenant_id!r}"
                ) from None

    def get_user(self, tenant_id: str, user_id: str) -> User:
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "")
            if is_id(user_id):
                cur.execute(
                    f"SELECT {_USER_JSON} FROM {_USERS.format(s=self._s)} "
                    f"WHERE u.tenant_id = %s AND u.id = %s",
                    (tenant_id, user_id),
                )
                row = cur.fetchone()
                if row is not None:
                    return _user_from_doc(row[0])
        raise UnknownUser(user_id, tenant_id)

    def get_users(self, tenant_id: str, user_ids: Sequence[str]) -> list[User]:
        ids: Sequence[object] = user_ids
        wanted = [i for i in ids if is_id(i)]
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "")
            cur.execute(
                f"SELECT coalesce(json_agg({_USER_JSON}), '[]') FROM {_USERS.format(s=self._s)} "
                f"WHERE u.tenant_id = %s "
                f"AND u.id = ANY(ARRAY(SELECT json_array_elements_text(%s)))",
                (tenant_id, _json(wanted)),
            )
            found = {user.id: user for user in map(_user_from_doc, _one(cur))}
        return [found[i] for i in wanted if i in found]

    def save_users(self, tenant_id: str, writes: Sequence[tuple[User, int]]) -> tuple[str, ...]:
        check_distinct("writes", writes)
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "")
            conflicts = self._cas_users(cur, tenant_id, writes)
            rejected = set(conflicts)
            self._update_users(cur, tenant_id, [u for u, _ in writes if u.id not in rejected])
            return conflicts

    def add_users(self, tenant_id: str, users: Sequence[User]) -> None:
        users = list(users)
        check_added_users("users", users)
        with self._tx() as cur:
            # A share lock, as add_user: new Users and a roster cut (R6) never interleave.
            self._lock_tenant(cur, tenant_id, "FOR SHARE")
            cur.execute(
                f"SELECT id FROM {self._s}.users WHERE tenant_id = %s "
                f"AND id = ANY(ARRAY(SELECT json_array_elements_text(%s)))",
                (tenant_id, _json([user.id for user in users])),
            )
            taken = {row[0] for row in cur.fetchall()}
            for index, user in enumerate(users):
                if user.id in taken:
                    raise AlreadyExists(
                        f"users[{index}].id", user.id, f"is already a User of tenant {tenant_id!r}"
                    )
            self._insert_users(cur, tenant_id, users)

    def remove_users(self, tenant_id: str, user_ids: Sequence[str]) -> tuple[str, ...]:
        wanted = check_user_ids("user_ids", user_ids)
        s = self._s
        with self._tx() as cur:
            # A share lock: a push cannot start (and cut its roster) meanwhile.
            current = self._lock_tenant(cur, tenant_id, "FOR SHARE")[4]
            # Roster order, as a batch locks its range; a batch holding one of these
            # commits first, and the job read below sees how far it got.
            cur.execute(
                f"SELECT id, position FROM {s}.user_state WHERE tenant_id = %s "
                f"AND id = ANY(ARRAY(SELECT json_array_elements_text(%s))) ORDER BY position "
                f"FOR UPDATE",
                (tenant_id, _json(wanted)),
            )
            found = dict(cast(list[tuple[str, int]], cur.fetchall()))
            if not found:
                return ()
            ids = _json(list(found))
            for table in ("user_state", "users"):
                cur.execute(
                    f"DELETE FROM {s}.{table} WHERE tenant_id = %s "
                    f"AND id = ANY(ARRAY(SELECT json_array_elements_text(%s)))",
                    (tenant_id, ids),
                )
            cur.execute(
                f"DELETE FROM {s}.user_groups WHERE tenant_id = %s AND position = ANY(%s)",
                (tenant_id, list(found.values())),
            )
            job = None if current is None else self._job(cur, current)
            if job is not None and not job.finished:
                ahead = [
                    (user_id, position)
                    for user_id, position in found.items()
                    if job.cursor < position <= job.roster_end
                ]
                if ahead and job.audience.narrowed:  # only the audience's members (R20)
                    cur.execute(
                        f"SELECT position FROM {s}.job_members WHERE job_id = %s "
                        f"AND position = ANY(%s)",
                        (job.id, [position for _, position in ahead]),
                    )
                    members = {row[0] for row in cur.fetchall()}
                    ahead = [(u, p) for u, p in ahead if p in members]
                cur.executemany(
                    f"INSERT INTO {s}.removed_users (tenant_id, position, id, job_id) "
                    f"VALUES (%s, %s, %s, %s)",
                    [(tenant_id, position, user_id, job.id) for user_id, position in ahead],
                )
            return tuple(i for i in wanted if i in found)

    def user_ids(self, tenant_id: str) -> Iterator[str]:
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "")
        return self._id_pages(tenant_id)

    def _id_pages(self, tenant_id: str) -> Iterator[str]:
        after = 0
        while True:
            with self._tx() as cur:
                cur.execute(
                    f"SELECT position, id FROM {self._s}.user_state WHERE tenant_id = %s "
                    f"AND position > %s ORDER BY position LIMIT %s",
                    (tenant_id, after, _INSERT_CHUNK),
                )
                rows = cur.fetchall()
            for _, user_id in rows:
                yield user_id
            if len(rows) < _INSERT_CHUNK:
                return
            after = rows[-1][0]

    # -- push jobs --------------------------------------------------------------------------------

    def start_job(self, job: PushJob) -> PushJob:
        s = self._s
        with self._tx() as cur:
            # Exclusive against the share lock every batch write holds: no batch of the
            # job superseded here can land after this commits (R10).
            self._lock_tenant(cur, job.tenant_id, "FOR NO KEY UPDATE")
            cur.execute(f"SELECT 1 FROM {s}.jobs WHERE id = %s", (job.id,))
            if cur.fetchone() is not None:
                raise AlreadyExists("job.id", job.id, "is already a stored push job")
            if job.audience.narrowed:
                # The members now (R6, R20), selected in the database.
                ((key, names),) = (job.audience.to_doc() or {}).items()
                one_group = key == "groups" and len(names) == 1
                roster = _ROSTER_OF_GROUP if one_group else _ROSTER_OF[key]
                cur.execute(
                    roster.replace("{s}", s),
                    {"job": job.id, "t": job.tenant_id, "names": names},
                )
                cur.execute(
                    f"SELECT count(*), coalesce(max(position), 0) FROM {s}.job_members "
                    f"WHERE job_id = %s",
                    (job.id,),
                )
            else:
                cur.execute(
                    f"SELECT count(*), coalesce(max(position), 0) FROM {s}.user_state "
                    f"WHERE tenant_id = %s",
                    (job.tenant_id,),
                )
            counted = cur.fetchone()
            assert counted is not None
            if job.audience.narrowed and counted[0] >= _INSERT_CHUNK:
                # Fresh statistics, so each batch takes its members by key in order (an
                # index scan that stops at the batch's end), not all that are left.
                cur.execute(f"ANALYZE {s}.job_members")
            stored = jobs.started(job, total=counted[0], roster_end=counted[1])
            cur.execute(
                f"SELECT {_JOB_SELECT} FROM {s}.jobs WHERE tenant_id = %s AND status = ANY(%s) "
                f"FOR UPDATE",
                (job.tenant_id, list(_UNFINISHED)),
            )
            for row in cur.fetchall():
                superseded = jobs.superseded(_job_from_row(row), by=job.id)
                self._save_job(cur, superseded)
                # A roster is kept while its push can run: a superseded one never runs again.
                cur.execute(f"DELETE FROM {s}.job_members WHERE job_id = %s", (superseded.id,))
            c = stored.counts
            cur.execute(
                f"INSERT INTO {s}.jobs ({_JOB_COLUMNS}) VALUES ({', '.join(['%s'] * 23)})",
                (
                    stored.id,
                    stored.tenant_id,
                    stored.actor_id,
                    stored.defaults.inbox,
                    stored.defaults.sent,
                    stored.status.value,
                    stored.started_at,
                    stored.total,
                    stored.processed,
                    stored.cursor,
                    stored.roster_end,
                    c.users_changed,
                    c.selected,
                    c.deselected,
                    c.no_mailbox,
                    c.label_missing,
                    stored.finished_at,
                    stored.superseded_by,
                    stored.mode.value,
                    locked_text(stored.locked),
                    c.user_choice_kept,
                    None if stored.audience.to_doc() is None else _jsonb(stored.audience.to_doc()),
                    c.user_removed,
                ),
            )
            # Removed Users were kept only for the jobs superseded above.
            cur.execute(f"DELETE FROM {s}.removed_users WHERE tenant_id = %s", (job.tenant_id,))
            if job.audience.narrowed:
                # A push to some Users only is not the tenant's checkbox setting (R20).
                cur.execute(
                    f"UPDATE {s}.tenants SET current_job_id = %s WHERE id = %s",
                    (job.id, job.tenant_id),
                )
            else:
                cur.execute(
                    f"UPDATE {s}.tenants SET current_job_id = %s, defaults_inbox = %s, "
                    f"defaults_sent = %s WHERE id = %s",
                    (job.id, job.defaults.inbox, job.defaults.sent, job.tenant_id),
                )
            return stored

    def get_job(self, job_id: str) -> PushJob:
        with self._tx() as cur:
            return self._job(cur, job_id)

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        if tenant_id is not None and not is_id(tenant_id):
            return []
        with self._tx() as cur:
            if tenant_id is None:
                cur.execute(f"SELECT {_JOB_SELECT} FROM {self._s}.jobs ORDER BY seq DESC")
            else:
                cur.execute(
                    f"SELECT {_JOB_SELECT} FROM {self._s}.jobs WHERE tenant_id = %s "
                    f"ORDER BY seq DESC",
                    (tenant_id,),
                )
            return [_job_from_row(row) for row in cur.fetchall()]

    def run_batch(self, job_id: str, *, after: int, limit: int) -> PushJob | StaleCheckpoint:
        check_limit(limit)
        with self._tx() as cur:
            current = self._fence(cur, job_id, "FOR SHARE")
            job = self._job(cur, job_id, "FOR UPDATE")
            jobs.check_writable(job, current)
            if self._has_ranges(cur, job.id):
                raise InvalidInput(
                    "worker_id",
                    None,
                    f"cannot run job {job.id!r}: parallel workers run it; pass a worker_id",
                )
            if job.cursor != after:
                return StaleCheckpoint(job)
            ran = self._run_range(cur, job, after, job.roster_end, limit)
            if ran is None:
                return job
            size, last, counts = ran
            stored = jobs.after_batch(job, last_position=last, processed=size, counts=counts)
            self._save_job(cur, stored)
            return stored

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        s = self._s
        with self._tx() as cur:
            current = self._fence(cur, job_id, "FOR NO KEY UPDATE")
            job = self._job(cur, job_id, "FOR UPDATE")
            jobs.check_current(job, current)
            done = jobs.finished(job, finished_at)
            if done is job:
                return job
            cur.execute(
                f"SELECT count(*) FROM {s}.batches WHERE job_id = %s AND NOT done", (job_id,)
            )
            open_ranges = _one(cur)
            if open_ranges:
                raise InvalidInput(
                    "job_id", job_id, f"has {open_ranges} batches not done yet; it cannot finish"
                )
            self._save_job(cur, done)
            cur.execute(
                f"UPDATE {s}.tenants SET last_push = %s WHERE id = %s",
                (_jsonb(record_doc(done.record())), job.tenant_id),
            )
            cur.execute(f"DELETE FROM {s}.removed_users WHERE job_id = %s", (job_id,))
            # The audience and its count stay with the job; its members were for running it.
            cur.execute(f"DELETE FROM {s}.job_members WHERE job_id = %s", (job_id,))
            return done

    def lease_job(self, job_id: str, *, runner_id: str, until: dt.datetime | None) -> PushJob:
        with self._tx() as cur:
            job = self._job(cur, job_id, "FOR NO KEY UPDATE")
            stored = jobs.leased(job, runner_id=runner_id, until=until)
            if stored is not job:
                cur.execute(
                    f"UPDATE {self._s}.jobs SET runner_id = %s, lease_until = %s WHERE id = %s",
                    (stored.runner_id, stored.lease_until, job_id),
                )
            return stored

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        with self._tx() as cur:
            self._job(cur, job_id)
            cur.execute(
                f"SELECT user_id, label, label_id, selected, version_after FROM "
                f"{self._s}.job_changes WHERE job_id = %s ORDER BY batch_key, ord",
                (job_id,),
            )
            rows = cur.fetchall()
        return iter(
            [
                StoredChange(
                    change=LabelChange(
                        user_id=u, label=SystemLabel(label), label_id=i, selected=selected
                    ),
                    version_after=v,
                )
                for u, label, i, selected, v in rows
            ]
        )

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        with self._tx() as cur:
            self._job(cur, job_id)
            cur.execute(
                f"SELECT user_id, label, reason FROM {self._s}.job_skips WHERE job_id = %s "
                f"ORDER BY batch_key, ord",
                (job_id,),
            )
            rows = cur.fetchall()
        return iter(
            [
                Skip(
                    user_id=u,
                    label=None if label is None else SystemLabel(label),
                    reason=SkipReason(reason),
                )
                for u, label, reason in rows
            ]
        )

    # -- parallel workers (labelsync.parallel.ParallelStore) -----------------------------------

    def _has_ranges(self, cur: psycopg.Cursor[Row], job_id: str) -> bool:
        cur.execute(f"SELECT batch_size FROM {self._s}.jobs WHERE id = %s", (job_id,))
        row = cur.fetchone()
        return row is not None and row[0] is not None

    def claim_batch(
        self, job_id: str, worker_id: str, batch_size: int, lease_seconds: float
    ) -> Claim | Busy | None:
        s = self._s
        with self._tx() as cur:
            job = self._job(cur, job_id)
            jobs.check_live(job)
            if job.status is JobStatus.DONE:
                return None
            if not self._has_ranges(cur, job_id):
                # Cut the roster once; whoever holds the job row does it, the others wait.
                job = self._job(cur, job_id, "FOR UPDATE")
                if not self._has_ranges(cur, job_id):
                    # A narrowed job's ranges are cut over its members only (R20).
                    roster = (
                        f"{s}.job_members WHERE job_id = %(job)s"
                        if job.audience.narrowed
                        else f"{s}.user_state WHERE tenant_id = %(tenant)s"
                    )
                    positions = (
                        f"SELECT position FROM {roster} "
                        f"AND position > %(after)s AND position <= %(end)s"
                    )
                    if not job.audience.narrowed:  # members include removed ones already
                        positions += (
                            f" UNION ALL SELECT position FROM {s}.removed_users "
                            f"WHERE tenant_id = %(tenant)s AND job_id = %(job)s "
                            f"AND position > %(after)s AND position <= %(end)s"
                        )
                    cur.execute(
                        f"INSERT INTO {s}.batches (tenant_id, job_id, range_no, first_position, "
                        f"last_position, size) SELECT %(tenant)s, %(job)s, n, min(position), "
                        f"max(position), count(*) FROM (SELECT position, "
                        f"(row_number() OVER (ORDER BY position) - 1) / %(size)s AS n "
                        f"FROM ({positions}) AS e) AS r GROUP BY n",
                        {
                            "tenant": job.tenant_id,
                            "job": job_id,
                            "size": batch_size,
                            "after": job.cursor,
                            "end": job.roster_end,
                        },
                    )
                    cur.execute(
                        f"UPDATE {s}.jobs SET batch_size = %s WHERE id = %s", (batch_size, job_id)
                    )
            token = uuid.uuid4().hex
            cur.execute(
                f"WITH next AS (SELECT range_no FROM {s}.batches WHERE job_id = %s AND NOT done "
                f"AND (lease_until IS NULL OR lease_until < clock_timestamp()) "
                f"ORDER BY range_no LIMIT 1 FOR UPDATE SKIP LOCKED) "
                f"UPDATE {s}.batches AS b SET worker_id = %s, token = %s, claims = b.claims + 1, "
                f"lease_until = clock_timestamp() + make_interval(secs => %s::float8) FROM next "
                f"WHERE b.job_id = %s AND b.range_no = next.range_no "
                f"RETURNING b.range_no, b.first_position, b.last_position, b.size, "
                f"b.lease_until, b.claims",
                (job_id, worker_id, token, lease_seconds, job_id),
            )
            row = cur.fetchone()
            if row is not None:
                range_no, first, last, size, lease_until, attempt = row
                return Claim(
                    job=job,
                    worker_id=worker_id,
                    range_no=range_no,
                    after=first - 1,
                    last=last,
                    size=size,
                    token=token,
                    lease_until=_utc(lease_until),
                    attempt=attempt,
                )
            cur.execute(
                f"SELECT count(*), extract(epoch FROM min(lease_until) - clock_timestamp()) "
                f"FROM {s}.batches WHERE job_id = %s AND NOT done",
                (job_id,),
            )
            left = cur.fetchone()
            assert left is not None
            if not left[0]:
                return None
            return Busy(retry_in=max(0.0, float(left[1] or 0)))

    def run_claimed(self, claim: Claim) -> PushJob | LeaseLost:
        with self._tx() as cur:
            current = self._fence(cur, claim.job.id, "FOR SHARE")
            job = self._job(cur, claim.job.id)
            jobs.check_current(job, current)
            if job.status is JobStatus.DONE:
                return LeaseLost(claim)
            cur.execute(
                f"SELECT token, done FROM {self._s}.batches WHERE job_id = %s "
                f"AND range_no = %s FOR UPDATE",
                (job.id, claim.range_no),
            )
            lease = cur.fetchone()
            if lease is None or lease[0] != claim.token or lease[1]:
                return LeaseLost(claim)
            ran = self._run_range(cur, job, claim.after, claim.last, None)
            cur.execute(
                f"UPDATE {self._s}.batches SET done = true, lease_until = NULL "
                f"WHERE job_id = %s AND range_no = %s",
                (job.id, claim.range_no),
            )
            # The job row is the one row every worker writes: locked last, for the
            # shortest time, and its new counts decided by labelsync.jobs.
            job = self._job(cur, job.id, "FOR UPDATE")
            size, counts = (0, PushCounts()) if ran is None else (ran[0], ran[2])
            stored = jobs.after_range(job, processed=size, counts=counts)
            self._save_job(cur, stored)
            return stored

    # -- policy: locks and reverts (R17, R19) ------------------------------------------------

    def save_locks(self, tenant_id: str, locks: Locks | None) -> None:
        if locks is not None and not isinstance(locks, Locks):
            raise InvalidInput("locks", locks, "is not a Locks")
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "FOR NO KEY UPDATE")
            cur.execute(
                f"UPDATE {self._s}.tenants SET locks = %s WHERE id = %s",
                (None if locks is None else _jsonb(locks_doc(locks)), tenant_id),
            )

    def start_revert(self, revert: RevertJob) -> RevertJob:
        with self._tx() as cur:
            self._lock_tenant(cur, revert.tenant_id, "FOR NO KEY UPDATE")
            job = self._job(cur, revert.push_job_id)
            if job.tenant_id != revert.tenant_id:
                raise UnknownJob(revert.push_job_id)
            cur.execute(
                f"SELECT {_REVERT_COLUMNS} FROM {self._s}.reverts WHERE push_job_id = %s",
                (revert.push_job_id,),
            )
            row = cur.fetchone()
            started = jobs.revert_started(revert, None if row is None else _revert_from_row(row))
            if started is revert:
                cur.execute(
                    f"INSERT INTO {self._s}.reverts ({_REVERT_COLUMNS}) VALUES "
                    f"({', '.join(['%s'] * 11)})",
                    _revert_params(revert),
                )
            return started

    def finish_revert(
        self, revert: RevertJob, *, defaults: Defaults | None, last_push: PushRecord | None
    ) -> RevertJob:
        s = self._s
        with self._tx() as cur:
            self._lock_tenant(cur, revert.tenant_id, "FOR NO KEY UPDATE")
            cur.execute(
                f"SELECT push_job_id, status FROM {s}.reverts WHERE id = %s FOR UPDATE",
                (revert.id,),
            )
            row = cur.fetchone()
            jobs.check_revert_finishable(
                revert,
                push_job_id=None if row is None else row[0],
                status=None if row is None else JobStatus(row[1]),
            )
            cur.execute(
                f"UPDATE {s}.reverts SET status = %s, finished_at = %s, users_restored = %s, "
                f"labels_restored = %s, users_left_alone = %s, restored_defaults = %s "
                f"WHERE id = %s",
                (*_revert_params(revert)[5:], revert.id),
            )
            if revert.restored_defaults:
                cur.execute(
                    f"UPDATE {s}.tenants SET defaults_inbox = %s, defaults_sent = %s, "
                    f"last_push = %s WHERE id = %s",
                    (
                        None if defaults is None else defaults.inbox,
                        None if defaults is None else defaults.sent,
                        None if last_push is None else _jsonb(record_doc(last_push)),
                        revert.tenant_id,
                    ),
                )
            return revert

    def list_reverts(self, tenant_id: str | None = None) -> list[RevertJob]:
        with self._tx() as cur:
            if tenant_id is None:
                cur.execute(f"SELECT {_REVERT_COLUMNS} FROM {self._s}.reverts ORDER BY seq DESC")
            else:
                cur.execute(
                    f"SELECT {_REVERT_COLUMNS} FROM {self._s}.reverts WHERE tenant_id = %s "
                    f"ORDER BY seq DESC",
                    (tenant_id,),
                )
            return [_revert_from_row(row) for row in cur.fetchall()]

    # -- presets (R21) ----------------------------------------------------------------------------

    def get_presets(self, tenant_id: str) -> PresetBook:
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "")
            cur.execute(
                f"SELECT version, book FROM {self._s}.presets WHERE tenant_id = %s", (tenant_id,)
            )
            row = cur.fetchone()
        return PresetBook() if row is None else PresetBook.from_doc(row[1], row[0])

    def save_presets(self, tenant_id: str, book: PresetBook, event: PresetEvent) -> bool:
        if not isinstance(book, PresetBook):
            raise InvalidInput("book", book, "is not a PresetBook")
        if not isinstance(event, PresetEvent):
            raise InvalidInput("event", event, "is not a PresetEvent")
        s = self._s
        with self._tx() as cur:
            # The tenant row's lock orders concurrent edits: the version read stays true.
            self._lock_tenant(cur, tenant_id, "FOR NO KEY UPDATE")
            cur.execute(f"SELECT version FROM {s}.presets WHERE tenant_id = %s", (tenant_id,))
            row = cur.fetchone()
            if (0 if row is None else row[0]) != book.version - 1:
                return False
            cur.execute(
                f"INSERT INTO {s}.presets (tenant_id, version, book) VALUES (%s, %s, %s) "
                f"ON CONFLICT (tenant_id) DO UPDATE SET version = excluded.version, "
                f"book = excluded.book",
                (tenant_id, book.version, _jsonb(book.to_doc())),
            )
            cur.execute(
                f"INSERT INTO {s}.preset_events (tenant_id, event) VALUES (%s, %s)",
                (tenant_id, _jsonb(event_doc(event))),
            )
            return True

    def preset_events(self, tenant_id: str) -> list[PresetEvent]:
        with self._tx() as cur:
            self._lock_tenant(cur, tenant_id, "")
            cur.execute(
                f"SELECT event FROM {self._s}.preset_events WHERE tenant_id = %s ORDER BY seq",
                (tenant_id,),
            )
            rows = cur.fetchall()
        return [event_from_doc(row[0]) for row in rows]


def _revert_params(revert: RevertJob) -> tuple[object, ...]:
    return (
        revert.id,
        revert.tenant_id,
        revert.push_job_id,
        revert.actor_id,
        revert.started_at,
        revert.status.value,
        revert.finished_at,
        revert.users_restored,
        revert.labels_restored,
        revert.users_left_alone,
        revert.restored_defaults,
    )
