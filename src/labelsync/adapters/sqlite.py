"""A `Store` on one SQLite file: durable, transactional, and shared safely by several processes.

Every method runs in one SQLite transaction: writes take the write lock up
front (``BEGIN IMMEDIATE``), reads see one snapshot. The file is in WAL mode so
readers never block the writer, and a busy timeout makes a second process wait
for the write lock instead of failing. The schema is versioned: opening a file
migrates it to `SCHEMA_VERSION` in place, and a file from a newer labelsync is
refused.

A User's push state is kept narrow and hot: the ids of its INBOX and SENT
labels and whether each is selected are columns, and the other selected ids
stay cold in a JSON column a push never reads. A push batch is one write
transaction of a few set-based statements that run `labelsync.jobs.BatchPlan`
over a range of roster positions, without building a `User` per row; the
conformance kit's differential test proves it equal to `apply_defaults`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import math
import os
import pathlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Final, Self, TypeVar

from labelsync import jobs
from labelsync._validate import check_text, is_id
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
from labelsync.audience import Audience, AudienceKind
from labelsync.changes import LabelChange, Skip
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    LabelSyncError,
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
    LabelSet,
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
from labelsync.policy import PushMode
from labelsync.ports import StaleCheckpoint, TenantSettings
from labelsync.presets import PresetBook, PresetEvent, event_doc, event_from_doc

__all__ = ["MAX_BUSY_TIMEOUT", "SCHEMA_VERSION", "SqliteStore", "storage_error"]

T = TypeVar("T")

# -- schema --------------------------------------------------------------------
#
# Each entry of _MIGRATIONS takes the schema from version i to i + 1; a later
# release appends (never edits) entries, and opening a file applies the missing ones.

_V1: Final = (
    """
    CREATE TABLE tenants (
        id                TEXT PRIMARY KEY,
        name              TEXT NOT NULL,
        defaults_inbox    INTEGER CHECK (defaults_inbox IN (0, 1)),
        defaults_sent     INTEGER CHECK (defaults_sent IN (0, 1)),
        onboard_new_users INTEGER NOT NULL CHECK (onboard_new_users IN (0, 1)),
        current_job_id    TEXT REFERENCES jobs (id),
        last_push         TEXT,               -- JSON audit record of the last push (R11)
        -- the two checkboxes are saved together or not at all (NULL: never saved)
        CHECK ((defaults_inbox IS NULL) = (defaults_sent IS NULL))
    )
    """,
    """
    CREATE TABLE users (
        tenant_id      TEXT NOT NULL REFERENCES tenants (id),
        id             TEXT NOT NULL,
        position       INTEGER NOT NULL,   -- roster position, increasing per insert
        email          TEXT NOT NULL,
        permissions    TEXT NOT NULL,      -- JSON list of Permission values, sorted
        provider       TEXT,               -- provider, address, mailbox_labels: NULL = no mailbox
        address        TEXT,
        mailbox_labels TEXT,               -- JSON [[id, name, system or null], ...]
        synced         TEXT NOT NULL,      -- JSON list of label ids, sorted
        version        INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, position),      -- the index roster_batch streams through
        CHECK ((provider IS NULL) = (address IS NULL)
               AND (provider IS NULL) = (mailbox_labels IS NULL))
    )
    """,
    """
    CREATE TABLE jobs (
        seq            INTEGER PRIMARY KEY,  -- start order: list_jobs is newest first
        id             TEXT NOT NULL UNIQUE,
        tenant_id      TEXT NOT NULL REFERENCES tenants (id),
        actor_id       TEXT NOT NULL,
        defaults_inbox INTEGER NOT NULL CHECK (defaults_inbox IN (0, 1)),
        defaults_sent  INTEGER NOT NULL CHECK (defaults_sent IN (0, 1)),
        status         TEXT NOT NULL
                       CHECK (status IN ('PENDING', 'RUNNING', 'DONE', 'SUPERSEDED')),
        started_at     TEXT NOT NULL,        -- ISO 8601 with its UTC offset
        finished_at    TEXT,
        total          INTEGER NOT NULL,
        processed      INTEGER NOT NULL,
        cursor         INTEGER NOT NULL,
        roster_end     INTEGER NOT NULL,
        users_changed  INTEGER NOT NULL,
        selected       INTEGER NOT NULL,
        deselected     INTEGER NOT NULL,
        no_mailbox     INTEGER NOT NULL,
        label_missing  INTEGER NOT NULL,
        superseded_by  TEXT
    )
    """,
    "CREATE INDEX jobs_by_tenant ON jobs (tenant_id, seq)",
    """
    CREATE TABLE job_changes (
        seq           INTEGER PRIMARY KEY,   -- write order, which is roster order
        job_id        TEXT NOT NULL REFERENCES jobs (id),
        tenant_id     TEXT NOT NULL,
        user_id       TEXT NOT NULL,
        label         TEXT NOT NULL,
        label_id      TEXT NOT NULL,
        selected      INTEGER NOT NULL CHECK (selected IN (0, 1)),
        version_after INTEGER NOT NULL,
        FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
    )
    """,
    "CREATE INDEX job_changes_by_job ON job_changes (job_id, seq)",
    """
    CREATE TABLE job_skips (
        seq       INTEGER PRIMARY KEY,
        job_id    TEXT NOT NULL REFERENCES jobs (id),
        tenant_id TEXT NOT NULL,
        user_id   TEXT NOT NULL,
        label     TEXT,                      -- NULL: the whole User was skipped
        reason    TEXT NOT NULL,
        FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
    )
    """,
    "CREATE INDEX job_skips_by_job ON job_skips (job_id, seq)",
)


def _split_selections(conn: sqlite3.Connection) -> None:
    """Move every v1 User's push state into `user_state`, keeping only cold ids in `users`."""
    after = 0
    while True:
        rows = conn.execute(
            "SELECT rowid, tenant_id, position, id, version, mailbox_labels, synced FROM users"
            " WHERE rowid > ? ORDER BY rowid LIMIT 10000",
            (after,),
        ).fetchall()
        if not rows:
            return
        hot = []
        cold = []
        for rowid, tenant_id, position, user_id, version, labels, synced in rows:
            roles = {s: i for i, _, s in json.loads(labels)} if labels is not None else {}
            ids = set(json.loads(synced))
            inbox_id, sent_id = roles.get("INBOX"), roles.get("SENT")
            hot.append(
                (
                    tenant_id,
                    position,
                    user_id,
                    version,
                    labels is not None,
                    inbox_id,
                    inbox_id in ids,
                    sent_id,
                    sent_id in ids,
                )
            )
            cold.append((_json(sorted(ids.difference((inbox_id, sent_id)))), rowid))
        conn.executemany(_INSERT_STATE_V2, hot)
        conn.executemany("UPDATE users SET synced = ? WHERE rowid = ?", cold)
        after = rows[-1][0]


# Version 2: the narrow hot state of a push in its own table, clustered by roster
# position, a few dozen bytes per User: the version and, for INBOX and SENT, the
# label id and whether it is selected. `users` keeps the cold rest, its `synced`
# (renamed `other_synced`) only the other selected ids.
_V2: Final = (
    """
    CREATE TABLE user_state (
        tenant_id   TEXT NOT NULL,
        position    INTEGER NOT NULL,
        id          TEXT NOT NULL,
        version     INTEGER NOT NULL,
        has_mailbox INTEGER NOT NULL CHECK (has_mailbox IN (0, 1)),
        inbox_id    TEXT,                 -- NULL: the mailbox has no INBOX label
        inbox_on    INTEGER NOT NULL CHECK (inbox_on IN (0, 1)),
        sent_id     TEXT,
        sent_on     INTEGER NOT NULL CHECK (sent_on IN (0, 1)),
        PRIMARY KEY (tenant_id, position),
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, id) REFERENCES users (tenant_id, id),
        CHECK (has_mailbox OR (inbox_id IS NULL AND sent_id IS NULL))
    ) WITHOUT ROWID
    """,
    _split_selections,
    "ALTER TABLE users DROP COLUMN version",
    "ALTER TABLE users RENAME COLUMN synced TO other_synced",
)

# Version 3: a job's runner lease, so `status` tells a running job from an interrupted one.
_V3: Final = (
    "ALTER TABLE jobs ADD COLUMN runner_id TEXT",
    "ALTER TABLE jobs ADD COLUMN lease_until TEXT",  # ISO 8601; NULL: no live runner
)

# Version 4: audiences and presets (R20, R21). A User's groups are cold (a push never
# reads them); a job names its audience, and a narrowed job's roster is the
# positions of its members at the start, so a batch walks them and nobody else.
_V4: Final = (
    "ALTER TABLE users ADD COLUMN groups TEXT NOT NULL DEFAULT '[]'",  # JSON list, sorted
    # Users by their set of groups: few distinct sets, so a group's members are found
    # by key, without reading the wide cold rows.
    "CREATE INDEX users_by_groups ON users (tenant_id, groups, position)",
    "ALTER TABLE jobs ADD COLUMN audience TEXT",  # JSON; NULL: everyone
    """
    CREATE TABLE job_members (
        job_id   TEXT NOT NULL REFERENCES jobs (id),
        position INTEGER NOT NULL,
        PRIMARY KEY (job_id, position)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE presets (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
        version   INTEGER NOT NULL,
        book      TEXT NOT NULL               -- JSON: presets and group assignments
    )
    """,
    """
    CREATE TABLE preset_events (
        seq       INTEGER PRIMARY KEY,        -- change order
        tenant_id TEXT NOT NULL REFERENCES tenants (id),
        event     TEXT NOT NULL               -- JSON: who, when, what
    )
    """,
    "CREATE INDEX preset_events_by_tenant ON preset_events (tenant_id, seq)",
)

# Version 5: the directory (R13, R14). Users can be removed: a push's changes and skips
# keep naming a removed User (their tables are rebuilt without the foreign key to
# `users`), a roster User removed before the running push reached them is kept in
# `removed_users` for that push to skip, and jobs count those skips.
_HISTORY_WITHOUT_USER_KEYS: Final = tuple(
    step
    for table, columns, index in (
        (
            "job_changes",
            """seq           INTEGER PRIMARY KEY,
               job_id        TEXT NOT NULL REFERENCES jobs (id),
               tenant_id     TEXT NOT NULL,
               user_id       TEXT NOT NULL,
               label         TEXT NOT NULL,
               label_id      TEXT NOT NULL,
               selected      INTEGER NOT NULL CHECK (selected IN (0, 1)),
               version_after INTEGER NOT NULL""",
            "seq, job_id, tenant_id, user_id, label, label_id, selected, version_after",
        ),
        (
            "job_skips",
            """seq       INTEGER PRIMARY KEY,
               job_id    TEXT NOT NULL REFERENCES jobs (id),
               tenant_id TEXT NOT NULL,
               user_id   TEXT NOT NULL,
               label     TEXT,
               reason    TEXT NOT NULL""",
            "seq, job_id, tenant_id, user_id, label, reason",
        ),
    )
    for step in (
        f"CREATE TABLE {table}_v5 ({columns})",
        f"INSERT INTO {table}_v5 ({index}) SELECT {index} FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_v5 RENAME TO {table}",
        f"CREATE INDEX {table}_by_job ON {table} (job_id, seq)",
    )
)

_V5: Final = (
    *_HISTORY_WITHOUT_USER_KEYS,
    "ALTER TABLE jobs ADD COLUMN user_removed INTEGER NOT NULL DEFAULT 0",
    """
    CREATE TABLE removed_users (
        tenant_id TEXT NOT NULL REFERENCES tenants (id),
        position  INTEGER NOT NULL,        -- the removed User's roster position
        id        TEXT NOT NULL,
        job_id    TEXT NOT NULL REFERENCES jobs (id),  -- the unfinished push that skips it
        PRIMARY KEY (tenant_id, position)
    ) WITHOUT ROWID
    """,
)

# Version 6: admin policy (R15-R19). Each User's provenance stays in the narrow hot
# row the push engine writes (covered, and per label the origin, its job and time;
# NULL origin: unknown, which is what every existing User migrates to). Jobs keep
# their mode, the labels locked when they started and their USER_CHOICE_KEPT count;
# tenants their locks (JSON: labels, who, when); reverts are audited jobs of their own.
_V6: Final = (
    "ALTER TABLE user_state ADD COLUMN covered INTEGER NOT NULL DEFAULT 0 CHECK (covered IN (0,1))",
    "ALTER TABLE user_state ADD COLUMN inbox_origin TEXT",
    "ALTER TABLE user_state ADD COLUMN inbox_job TEXT",
    "ALTER TABLE user_state ADD COLUMN inbox_at TEXT",
    "ALTER TABLE user_state ADD COLUMN sent_origin TEXT",
    "ALTER TABLE user_state ADD COLUMN sent_job TEXT",
    "ALTER TABLE user_state ADD COLUMN sent_at TEXT",
    "ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'OVERRIDE'",
    "ALTER TABLE jobs ADD COLUMN locked TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE jobs ADD COLUMN user_choice_kept INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE tenants ADD COLUMN locks TEXT",
    """
    CREATE TABLE reverts (
        seq               INTEGER PRIMARY KEY,   -- start order: newest first when listed
        id                TEXT NOT NULL UNIQUE,
        tenant_id         TEXT NOT NULL REFERENCES tenants (id),
        push_job_id       TEXT NOT NULL UNIQUE REFERENCES jobs (id),  -- one revert per push
        actor_id          TEXT NOT NULL,
        started_at        TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (status IN ('RUNNING', 'DONE')),
        finished_at       TEXT,
        users_restored    INTEGER NOT NULL,
        labels_restored   INTEGER NOT NULL,
        users_left_alone  INTEGER NOT NULL,
        restored_defaults INTEGER NOT NULL CHECK (restored_defaults IN (0, 1))
    )
    """,
)

Migration = tuple[str | Callable[[sqlite3.Connection], None], ...]

_MIGRATIONS: Final[tuple[Migration, ...]] = (_V1, _V2, _V3, _V4, _V5, _V6)

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this labelsync writes; files at a lower version are migrated on open."""

MAX_BUSY_TIMEOUT: Final = 86_400
"""Longest `busy_timeout` in seconds (a day): longer waits are a hang, not a wait."""

_IDS_PER_QUERY: Final = 500  # ids bound in one IN (...): under every SQLite build's limit
_PAGE: Final = 1000  # rows per query when streaming a job's changes or skips

# A User is its cold row joined to its hot row; filters name `u.` columns.
_SELECT_USERS: Final = """
    SELECT u.id, u.email, u.permissions, u.provider, u.address, u.mailbox_labels,
           u.other_synced, u.groups, h.version, h.inbox_id, h.inbox_on, h.sent_id, h.sent_on,
           h.covered, h.inbox_origin, h.inbox_job, h.inbox_at, h.sent_origin, h.sent_job,
           h.sent_at
    FROM users AS u JOIN user_state AS h ON h.tenant_id = u.tenant_id AND h.position = u.position
"""

_INSERT_USER: Final = """
    INSERT INTO users (tenant_id, id, position, email, permissions, provider, address,
                       mailbox_labels, other_synced, groups)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_INSERT_STATE_V2: Final = """
    INSERT INTO user_state (tenant_id, position, id, version, has_mailbox, inbox_id, inbox_on,
                            sent_id, sent_on)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_INSERT_STATE: Final = """
    INSERT INTO user_state (tenant_id, position, id, version, has_mailbox, inbox_id, inbox_on,
                            sent_id, sent_on, covered, inbox_origin, inbox_job, inbox_at,
                            sent_origin, sent_job, sent_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# Compare-and-set: the hot row is written only if it is still at the version it was
# read at; the cold row follows only when every hot row did. Covered never goes back
# (marking a User covered does not move the version).
_CAS_STATE: Final = """
    UPDATE user_state
    SET version = ?, has_mailbox = ?, inbox_id = ?, inbox_on = ?, sent_id = ?, sent_on = ?,
        covered = max(covered, ?), inbox_origin = ?, inbox_job = ?, inbox_at = ?,
        sent_origin = ?, sent_job = ?, sent_at = ?
    WHERE tenant_id = ? AND id = ? AND version = ?
"""

_UPDATE_COLD: Final = """
    UPDATE users
    SET email = ?, permissions = ?, provider = ?, address = ?, mailbox_labels = ?,
        other_synced = ?, groups = ?
    WHERE tenant_id = ? AND id = ?
"""

# -- a push batch, set-based -------------------------------------------------------------
#
# The batch is the roster positions (:after, :last]; :i and :s are the plan's
# INBOX and SENT checkboxes. A label is flipped where the mailbox has it and its
# flag differs (R3, R4); a mailbox without it is skipped for it (R7); a User
# without a mailbox is skipped whole. Change and skip rows are inserted in
# roster order, INBOX before SENT, as the rule emits them.

_BATCH: Final = "tenant_id = :t AND position > :after AND position <= :last"
# Per label: the User is in the push's scope (NEW_USERS_ONLY leaves covered Users,
# :ni/:ns), the label differs from its checkbox, and then it is either kept as the
# User chose it (KEEP_USER_CHOICES, :ki/:ks) or flipped (R16; locked labels come with
# :ki = :ni = 0, R17).
_IN_INBOX: Final = "NOT (:ni AND covered)"
_IN_SENT: Final = "NOT (:ns AND covered)"
_DIFF_INBOX: Final = f"(inbox_id IS NOT NULL AND inbox_on <> :i AND {_IN_INBOX})"
_DIFF_SENT: Final = f"(sent_id IS NOT NULL AND sent_on <> :s AND {_IN_SENT})"
_KEPT_INBOX: Final = f"({_DIFF_INBOX} AND :ki AND coalesce(inbox_origin, '') = 'USER')"
_KEPT_SENT: Final = f"({_DIFF_SENT} AND :ks AND coalesce(sent_origin, '') = 'USER')"
_FLIP_INBOX: Final = f"({_DIFF_INBOX} AND NOT (:ki AND coalesce(inbox_origin, '') = 'USER'))"
_FLIP_SENT: Final = f"({_DIFF_SENT} AND NOT (:ks AND coalesce(sent_origin, '') = 'USER'))"
_MISS_INBOX: Final = f"(has_mailbox AND inbox_id IS NULL AND {_IN_INBOX})"
_MISS_SENT: Final = f"(has_mailbox AND sent_id IS NULL AND {_IN_SENT})"
_NO_MAILBOX: Final = "(NOT has_mailbox AND NOT (:ni AND :ns AND covered))"
_UNCOVERED: Final = "(has_mailbox AND NOT covered)"

# Where the batch ends and what it will do, in one pass over its rows.
_BATCH_RANGE: Final = f"""
    SELECT count(*), max(position),
           sum({_FLIP_INBOX} OR {_FLIP_SENT}), sum({_FLIP_INBOX}), sum({_FLIP_SENT}),
           sum({_NO_MAILBOX}), sum({_MISS_INBOX}), sum({_MISS_SENT}),
           sum({_KEPT_INBOX}), sum({_KEPT_SENT}), sum({_UNCOVERED})
    FROM (
        SELECT position, has_mailbox, inbox_id, inbox_on, sent_id, sent_on, covered,
               inbox_origin, sent_origin
        FROM user_state
        WHERE tenant_id = :t AND position > :after AND position <= :end
        ORDER BY position LIMIT :limit
    )
"""

_BATCH_CHANGES: Final = f"""
    INSERT INTO job_changes (job_id, tenant_id, user_id, label, label_id, selected, version_after)
    SELECT :job, :t, id, label, label_id, selected, version + 1 FROM (
        SELECT position, 0 AS rank, id, version, 'INBOX' AS label, inbox_id AS label_id,
               :i AS selected
        FROM user_state WHERE {_BATCH} AND {_FLIP_INBOX}
        UNION ALL
        SELECT position, 1, id, version, 'SENT', sent_id, :s
        FROM user_state WHERE {_BATCH} AND {_FLIP_SENT}
    ) ORDER BY position, rank
"""

# The skip kinds in the order the rule reports them for one User, each an arm of the
# batch's skips statement; a batch runs only the arms its range counted rows for
# (`_skips_sql`), since an arm with nothing to report still seeks every row it covers.
_SKIP_ARMS: Final = (
    f"""SELECT position, 0 AS rank, id, NULL AS label, 'NO_MAILBOX' AS reason
        FROM user_state WHERE {_BATCH} AND {_NO_MAILBOX}""",
    f"""SELECT position, 0 AS rank, id, NULL AS label, 'USER_REMOVED' AS reason
        FROM removed_users WHERE {_BATCH} AND job_id = :job""",
    f"""SELECT position, 1 AS rank, id, 'INBOX' AS label, 'LABEL_MISSING' AS reason
        FROM user_state WHERE {_BATCH} AND {_MISS_INBOX}""",
    f"""SELECT position, 1 AS rank, id, 'INBOX' AS label, 'USER_CHOICE_KEPT' AS reason
        FROM user_state WHERE {_BATCH} AND {_KEPT_INBOX}""",
    f"""SELECT position, 2 AS rank, id, 'SENT' AS label, 'LABEL_MISSING' AS reason
        FROM user_state WHERE {_BATCH} AND {_MISS_SENT}""",
    f"""SELECT position, 2 AS rank, id, 'SENT' AS label, 'USER_CHOICE_KEPT' AS reason
        FROM user_state WHERE {_BATCH} AND {_KEPT_SENT}""",
)


def _skips_of(arms: Iterable[str]) -> str:
    """The skips statement of `arms` (a non-empty selection of `_SKIP_ARMS`), in roster order."""
    return f"""
    INSERT INTO job_skips (job_id, tenant_id, user_id, label, reason)
    SELECT :job, :t, id, label, reason FROM (
        {" UNION ALL ".join(arms)}
    ) ORDER BY position, rank
"""


# Roster Users removed since the job started (R14), kept for it in `removed_users`. Only
# when the batch's stretch of the roster has some does the batch end where the
# first :limit entries of both tables end, not of `user_state` alone.
_REMOVED_AHEAD: Final = """
    SELECT count(*) FROM removed_users
    WHERE tenant_id = :t AND position > :after AND position <= :end AND job_id = :job
"""

_ENTRIES_END: Final = """
    SELECT max(position), sum(removed) FROM (
        SELECT position, removed FROM (
            SELECT position, 0 AS removed FROM user_state
            WHERE tenant_id = :t AND position > :after AND position <= :end
            UNION ALL
            SELECT position, 1 FROM removed_users
            WHERE tenant_id = :t AND position > :after AND position <= :end AND job_id = :job
        ) ORDER BY position LIMIT :limit
    )
"""

# A narrowed job's roster entries are its members' positions, live or removed (R20, R14):
# where its batch of the first :limit after :after ends, and how many they are.
_MEMBERS_END: Final = """
    SELECT max(position), count(*) FROM (
        SELECT position FROM job_members
        WHERE job_id = :job AND position > :after AND position <= :end
        ORDER BY position LIMIT :limit
    )
"""

# Only the flags, their provenance, the covered mark and the version change (R5,
# R15): cold columns are never read or written. SET reads the row as it was.
_BATCH_USERS: Final = f"""
    UPDATE user_state
    SET inbox_on = CASE WHEN {_FLIP_INBOX} THEN :i ELSE inbox_on END,
        inbox_origin = CASE WHEN {_FLIP_INBOX} THEN 'PUSH' ELSE inbox_origin END,
        inbox_job = CASE WHEN {_FLIP_INBOX} THEN :job ELSE inbox_job END,
        inbox_at = CASE WHEN {_FLIP_INBOX} THEN :at ELSE inbox_at END,
        sent_on = CASE WHEN {_FLIP_SENT} THEN :s ELSE sent_on END,
        sent_origin = CASE WHEN {_FLIP_SENT} THEN 'PUSH' ELSE sent_origin END,
        sent_job = CASE WHEN {_FLIP_SENT} THEN :job ELSE sent_job END,
        sent_at = CASE WHEN {_FLIP_SENT} THEN :at ELSE sent_at END,
        covered = covered OR has_mailbox,
        version = version + ({_FLIP_INBOX} OR {_FLIP_SENT})
    WHERE {_BATCH} AND ({_FLIP_INBOX} OR {_FLIP_SENT} OR {_UNCOVERED})
"""

# -- a push batch of a narrowed audience (R20) ------------------------------------------
#
# The same statements, over the job's members only: `job_members` holds their
# positions, fixed at the start, so a batch reads its members by primary key
# and never the Users outside the audience.

_MEMBERS: Final = (
    "position IN (SELECT position FROM job_members"
    " WHERE job_id = :job AND position > :after AND position <= :last)"
)
# Only the members' rows, looked up by key: the positions between them are never read.
_BATCH_MEMBERS: Final = f"tenant_id = :t AND {_MEMBERS}"

_MEMBERS_RANGE: Final = f"""
    SELECT count(*), max(position),
           sum({_FLIP_INBOX} OR {_FLIP_SENT}), sum({_FLIP_INBOX}), sum({_FLIP_SENT}),
           sum({_NO_MAILBOX}), sum({_MISS_INBOX}), sum({_MISS_SENT}),
           sum({_KEPT_INBOX}), sum({_KEPT_SENT}), sum({_UNCOVERED})
    FROM (
        SELECT h.position, h.has_mailbox, h.inbox_id, h.inbox_on, h.sent_id, h.sent_on,
               h.covered, h.inbox_origin, h.sent_origin
        FROM job_members AS m
        JOIN user_state AS h ON h.tenant_id = :t AND h.position = m.position
        WHERE m.job_id = :job AND m.position > :after AND m.position <= :end
        ORDER BY m.position LIMIT :limit
    )
"""
_MEMBERS_CHANGES: Final = _BATCH_CHANGES.replace(_BATCH, _BATCH_MEMBERS)
_MEMBERS_USERS: Final = _BATCH_USERS.replace(_BATCH, _BATCH_MEMBERS)

# How many Users are stored in the stretch (after, last] of the roster, counted up to
# one more than the batch's members in it (`_MEMBERS_END`): where they are as many, the
# members are all the Users of their stretch (an audience added together, or the tail
# of a team), and the batch runs the statements of a push to everyone over it: a range
# read, not a lookup per member.
_STORED_IN_STRETCH: Final = """
    SELECT count(*) FROM (
        SELECT 1 FROM user_state
        WHERE tenant_id = :t AND position > :after AND position <= :last
        LIMIT :limit + 1
    )
"""


@dataclasses.dataclass(frozen=True)
class _BatchSql:
    """The statements of a batch: over a range of the roster, or over a job's members."""

    range: str
    changes: str
    users: str
    where: str  # which rows an arm of `_SKIP_ARMS` reads: `_BATCH` or `_BATCH_MEMBERS`

    def skips(self, present: tuple[bool, ...]) -> str:
        """The skips statement of the arms of `_SKIP_ARMS` that `present` marks."""
        return _skips_sql(self.where, present)


@functools.cache
def _skips_sql(where: str, present: tuple[bool, ...]) -> str:
    arms = (arm for arm, keep in zip(_SKIP_ARMS, present, strict=True) if keep)
    return _skips_of(arm.replace(_BATCH, where) for arm in arms)


_EVERYONE: Final = _BatchSql(_BATCH_RANGE, _BATCH_CHANGES, _BATCH_USERS, _BATCH)
_NARROWED: Final = _BatchSql(_MEMBERS_RANGE, _MEMBERS_CHANGES, _MEMBERS_USERS, _BATCH_MEMBERS)

# A narrowed job's roster: its members' positions, selected in the store at the start.
# The next distinct set of groups after :after, by one seek in `users_by_groups`: a
# tenant has few distinct sets, so they are found in that many seeks, not a scan.
_NEXT_GROUP_SET: Final = (
    "SELECT groups FROM users WHERE tenant_id = :t AND groups > :after ORDER BY groups LIMIT 1"
)
_ROSTER_OF_GROUPS: Final = """
    INSERT INTO job_members (job_id, position)
    SELECT :job, position FROM users
    WHERE tenant_id = :t AND groups IN (SELECT value FROM json_each(:names))
"""
_ROSTER_OF_USERS: Final = """
    INSERT INTO job_members (job_id, position)
    SELECT :job, h.position FROM json_each(:names) AS n CROSS JOIN user_state AS h
    WHERE h.tenant_id = :t AND h.id = n.value  -- CROSS JOIN: the listed ids drive
"""

# A job's key (`id`, `tenant_id`) and the columns that follow it; `_job_params` gives both.
_JOB_KEY: Final = ("id", "tenant_id")
_JOB_COLUMNS: Final = (
    "actor_id", "defaults_inbox", "defaults_sent", "status", "started_at", "finished_at",
    "total", "processed", "cursor", "roster_end", "users_changed", "selected", "deselected",
    "no_mailbox", "label_missing", "superseded_by", "mode", "locked", "user_choice_kept",
    "audience", "user_removed",
)  # fmt: skip

_INSERT_JOB: Final = (
    f"INSERT INTO jobs ({', '.join(_JOB_KEY + _JOB_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_JOB_KEY + _JOB_COLUMNS))})"
)

# Saving a job never sets its key: `jobs.id` is the parent of every change and skip
# row, and SQLite checks those children whenever a parent key is written (even with
# the same value), which made each batch's save cost grow with the rows written so far.
_UPDATE_JOB: Final = (
    f"UPDATE jobs SET ({', '.join(_JOB_COLUMNS)}) = ({', '.join('?' * len(_JOB_COLUMNS))})"
    " WHERE id = ?"
)

_CHANGES_PAGE: Final = """
    SELECT seq, user_id, label, label_id, selected, version_after FROM job_changes
    WHERE job_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?
"""

_SKIPS_PAGE: Final = """
    SELECT seq, user_id, label, reason FROM job_skips
    WHERE job_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?
"""


# -- rows <-> values -------------------------------------------------------------

ColdParams = tuple[str, str, str | None, str | None, str | None, str, str]
HotParams = tuple[object, ...]


def _role(label: SystemLabel | None) -> str | None:
    return None if label is None else label.value


def _role_from_text(text: str | None) -> SystemLabel | None:
    return None if text is None else SystemLabel(text)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _user_params(user: User) -> tuple[ColdParams, HotParams]:
    """The stored columns of `user`: its cold row (email to other ids), its hot row (version on)."""
    mailbox = user.mailbox
    provider = address = labels = None
    if mailbox is not None:
        provider = mailbox.provider.value
        address = mailbox.address
        labels = _json([label_row(lb) for lb in mailbox.labels])
    inbox_id, inbox_on, sent_id, sent_on, others = hot_state(user)
    cold = (
        user.email,
        _json(sorted(p.value for p in user.permissions)),
        provider,
        address,
        labels,
        _json(others),
        _GROUPS_NONE if not user.groups else _json(sorted(user.groups)),
    )
    hot = (user.version, mailbox is not None, inbox_id, inbox_on, sent_id, sent_on)
    return cold, (*hot, *provenance_columns(user.provenance))


def _insert_users(
    conn: sqlite3.Connection, tenant_id: str, users: Sequence[tuple[int, User]]
) -> None:
    """Store `users` at their roster positions: a cold row and a hot row each."""
    rows = [(position, user, *_user_params(user)) for position, user in users]
    conn.executemany(
        _INSERT_USER, ((tenant_id, user.id, position, *cold) for position, user, cold, _ in rows)
    )
    conn.executemany(
        _INSERT_STATE, ((tenant_id, position, user.id, *hot) for position, user, _, hot in rows)
    )


# Many Users share a mailbox layout, a permission set and a selection (same
# provider, same folders), so decoding and validating each distinct JSON text
# once saves most of a roster read. The values are immutable, so sharing them between Users is safe.
@functools.lru_cache(maxsize=4096)
def _layout_from_text(provider: str, text: str) -> Mailbox:
    """A validated mailbox of this provider and labels; rows copy it to their address."""
    return Mailbox(
        provider=Provider(provider),
        address="-",
        labels=tuple(label_from_row(row) for row in json.loads(text)),
    )


@functools.lru_cache(maxsize=4096)
def _selection_from(text: str, inbox_id: str | None, sent_id: str | None) -> LabelSet:
    """The selection of the cold ids in `text` plus the selected INBOX/SENT ids (or None)."""
    return selection(json.loads(text), inbox_id, inbox_id is not None, sent_id, sent_id is not None)


_GROUPS_NONE: Final = "[]"


@functools.lru_cache(maxsize=4096)
def _groups_from_text(text: str) -> frozenset[str]:
    # Checked by `User(...)` like any other groups.
    return frozenset() if text == _GROUPS_NONE else frozenset(json.loads(text))


@functools.lru_cache(maxsize=256)
def _permissions_from_text(text: str) -> frozenset[Permission]:
    return frozenset(Permission(p) for p in json.loads(text))


def _user_from_row(row: sqlite3.Row) -> User:
    mailbox = None
    if row["provider"] is not None:
        layout = _layout_from_text(row["provider"], row["mailbox_labels"])
        mailbox = layout._at(row["address"])
    return User(
        id=row["id"],
        email=row["email"],
        permissions=_permissions_from_text(row["permissions"]),
        mailbox=mailbox,
        synced=_selection_from(
            row["other_synced"],
            row["inbox_id"] if row["inbox_on"] else None,
            row["sent_id"] if row["sent_on"] else None,
        ),
        version=row["version"],
        provenance=provenance_from(
            row["covered"],
            row["inbox_origin"],
            row["inbox_job"],
            row["inbox_at"],
            row["sent_origin"],
            row["sent_job"],
            row["sent_at"],
        ),
        groups=_groups_from_text(row["groups"]),
    )


def _defaults_params(defaults: Defaults | None) -> tuple[bool | None, bool | None]:
    """The two checkbox columns; NULL, NULL when the admin never saved them."""
    if defaults is None:
        return None, None
    return defaults.inbox, defaults.sent


def _defaults_from_row(row: sqlite3.Row) -> Defaults | None:
    if row["defaults_inbox"] is None:
        return None
    return Defaults(inbox=bool(row["defaults_inbox"]), sent=bool(row["defaults_sent"]))


def _last_push(row: sqlite3.Row) -> PushRecord | None:
    text = row["last_push"]
    return None if text is None else record_from_doc(json.loads(text))


def _tenant_from_row(
    row: sqlite3.Row, users: tuple[User, ...], last_push: PushRecord | None
) -> Tenant:
    return Tenant(
        id=row["id"],
        name=row["name"],
        users=users,
        defaults=_defaults_from_row(row),
        last_push=last_push,
        onboard_new_users=bool(row["onboard_new_users"]),
        locks=_locks(row),
    )


def _locks(row: sqlite3.Row) -> Locks | None:
    text = row["locks"]
    return None if text is None else locks_from_doc(json.loads(text))


_REVERT_COLUMNS: Final = (
    "id", "tenant_id", "push_job_id", "actor_id", "started_at", "status", "finished_at",
    "users_restored", "labels_restored", "users_left_alone", "restored_defaults",
)  # fmt: skip


def _revert_params(revert: RevertJob) -> tuple[object, ...]:
    return (
        revert.id,
        revert.tenant_id,
        revert.push_job_id,
        revert.actor_id,
        _time(revert.started_at),
        revert.status.value,
        None if revert.finished_at is None else _time(revert.finished_at),
        revert.users_restored,
        revert.labels_restored,
        revert.users_left_alone,
        revert.restored_defaults,
    )


def _revert_from_row(row: sqlite3.Row) -> RevertJob:
    finished_at = row["finished_at"]
    return RevertJob(
        id=row["id"],
        tenant_id=row["tenant_id"],
        push_job_id=row["push_job_id"],
        actor_id=row["actor_id"],
        started_at=_time_from_text(row["started_at"]),
        status=JobStatus(row["status"]),
        finished_at=None if finished_at is None else _time_from_text(finished_at),
        users_restored=row["users_restored"],
        labels_restored=row["labels_restored"],
        users_left_alone=row["users_left_alone"],
        restored_defaults=bool(row["restored_defaults"]),
    )


def _time(value: dt.datetime) -> str:
    return value.isoformat()


def _time_from_text(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _job_params(job: PushJob) -> tuple[object, ...]:
    """The columns of `_INSERT_JOB`, in order."""
    counts = job.counts
    return (
        job.id,
        job.tenant_id,
        job.actor_id,
        job.defaults.inbox,
        job.defaults.sent,
        job.status.value,
        _time(job.started_at),
        None if job.finished_at is None else _time(job.finished_at),
        job.total,
        job.processed,
        job.cursor,
        job.roster_end,
        counts.users_changed,
        counts.selected,
        counts.deselected,
        counts.no_mailbox,
        counts.label_missing,
        job.superseded_by,
        job.mode.value,
        locked_text(job.locked),
        counts.user_choice_kept,
        _audience_text(job.audience),
        counts.user_removed,
    )


def _audience_text(audience: Audience) -> str | None:
    doc = audience.to_doc()
    return None if doc is None else _json(doc)


def _job_from_row(row: sqlite3.Row) -> PushJob:
    finished_at = row["finished_at"]
    return PushJob(
        id=row["id"],
        tenant_id=row["tenant_id"],
        actor_id=row["actor_id"],
        defaults=Defaults(inbox=bool(row["defaults_inbox"]), sent=bool(row["defaults_sent"])),
        status=JobStatus(row["status"]),
        started_at=_time_from_text(row["started_at"]),
        total=row["total"],
        processed=row["processed"],
        cursor=row["cursor"],
        roster_end=row["roster_end"],
        counts=PushCounts(
            users_changed=row["users_changed"],
            selected=row["selected"],
            deselected=row["deselected"],
            no_mailbox=row["no_mailbox"],
            label_missing=row["label_missing"],
            user_choice_kept=row["user_choice_kept"],
            user_removed=row["user_removed"],
        ),
        finished_at=None if finished_at is None else _time_from_text(finished_at),
        superseded_by=row["superseded_by"],
        mode=PushMode(row["mode"]),
        locked=locked_from_text(row["locked"]),
        audience=_audience_from_text(row["audience"]),
        runner_id=row["runner_id"],
        lease_until=None if row["lease_until"] is None else _time_from_text(row["lease_until"]),
    )


def _audience_from_text(text: str | None) -> Audience:
    return Audience.from_doc(None if text is None else json.loads(text))


def _change_from_row(row: sqlite3.Row) -> StoredChange:
    change = LabelChange(
        user_id=row["user_id"],
        label=SystemLabel(row["label"]),
        label_id=row["label_id"],
        selected=bool(row["selected"]),
    )
    return StoredChange(change=change, version_after=row["version_after"])


def _skip_from_row(row: sqlite3.Row) -> Skip:
    return Skip(
        user_id=row["user_id"],
        label=_role_from_text(row["label"]),
        reason=SkipReason(row["reason"]),
    )


# -- connection and schema ---------------------------------------------------------


def _schema_version(conn: sqlite3.Connection) -> int:
    table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if table is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


# -- storage errors ------------------------------------------------------------------------
#
# sqlite3 raises its own errors for what goes wrong under the store; each becomes a typed
# `StorageError` that names the file and says what to do. Codes are SQLite's primary result
# codes (the low byte of the extended code).

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26


def storage_error(error: sqlite3.Error, path: str) -> LabelSyncError:
    """The typed error for an sqlite3 error raised while using the file at `path`."""
    code = getattr(error, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    text = str(error)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
        return StorageBusy(
            path,
            "the database is locked by another writer past the busy timeout",
            "retry later, or find the process holding it (a long push, an open sqlite3 shell)",
        )
    if primary == _SQLITE_READONLY or "readonly" in text:
        return StorageReadOnly(
            path,
            "the database cannot be written (read-only file, directory or mount)",
            "make the file and its directory writable by this user, or copy it elsewhere",
        )
    if primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and "full" in text):
        return StorageFull(
            path,
            "no room to write: the disk is full or a file size limit was reached",
            "free disk space (or raise the limit, ulimit -f) and run the command again",
        )
    if primary == _SQLITE_IOERR:
        return StorageFull(
            path,
            f"the write failed ({text}): the disk is full, a file size limit was reached "
            "or the device failed",
            "free disk space, check the device, and run the command again",
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StorageCorrupt(
            path,
            f"the database is damaged ({text})",
            "restore it from a backup; sqlite3's .recover may save what is left",
        )
    if primary == _SQLITE_CANTOPEN:
        return StorageUnavailable(
            path,
            f"the database file cannot be opened ({text})",
            "check that the file and its directory exist and are readable",
        )
    return StorageError(path, f"SQLite failed: {text}", "check the file and the disk")


def _labelsync_file(conn: sqlite3.Connection, path: str) -> bool:
    """Whether the file holds labelsync's tables (True) or no table at all (False).

    Any other file is another application's database: `InvalidInput`, and nothing written.
    """
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if not tables:
        return False
    if {"schema_version", "tenants", "jobs"} <= tables:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(schema_version)")}
        if {"id", "version"} <= columns:
            return True
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise InvalidInput(
        "path",
        path,
        f"is not a labelsync database: it holds another application's tables ({shown}); "
        "labelsync writes only into its own files",
    )


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    if _schema_version(conn) == SCHEMA_VERSION:
        return  # the usual case: no write lock needed just to open the file
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the lock: another process may have migrated meanwhile.
        current = _schema_version(conn)
        if current > SCHEMA_VERSION:
            raise InvalidInput(
                "path",
                path,
                f"has schema version {current}, newer than this labelsync's "
                f"{SCHEMA_VERSION}; upgrade labelsync to open it",
            )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        for steps in _MIGRATIONS[current:]:
            for step in steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
        conn.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (SCHEMA_VERSION,),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _connect(
    path: str, busy_timeout: float, *, read_only: bool, create: bool
) -> sqlite3.Connection:
    memory = path == ":memory:"
    if not memory:
        if os.path.isdir(path):
            raise InvalidInput("path", path, "is a directory, not a database file")
        if not os.path.exists(path) and (read_only or not create):
            raise InvalidInput("path", path, "does not exist (no labelsync database there)")
    # isolation_level=None: the module issues no implicit BEGIN/COMMIT; we do.
    # check_same_thread=False: the store's own lock serialises threads instead.
    # A read-only store opens the file with mode=ro: SQLite itself then writes nothing to it.
    target, uri = path, False
    if not memory and (read_only or not create):
        query = "mode=ro" if read_only else "mode=rw"
        if read_only and not any(os.path.exists(path + end) for end in ("-wal", "-shm")):
            # No process has the file open for writing (its WAL files are gone): read it as
            # immutable, so that not even the WAL's -shm and -wal files are created next to it
            # and the directory stays byte for byte as it was. A writer that starts meanwhile
            # writes into its own new WAL, which this read does not see.
            query += "&immutable=1"
        target, uri = f"{pathlib.Path(path).resolve().as_uri()}?{query}", True
    try:
        conn = sqlite3.connect(
            target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=uri
        )
    except sqlite3.Error as error:
        raise storage_error(error, path) from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        try:
            ours = _labelsync_file(conn, path)
        except sqlite3.DatabaseError as error:
            if getattr(error, "sqlite_errorcode", None) == _SQLITE_NOTADB:
                raise InvalidInput(
                    "path",
                    path,
                    "cannot be opened as a labelsync SQLite file: it is not a SQLite database",
                ) from None
            raise
        if not ours and not create:
            raise InvalidInput(
                "path",
                path,
                "is not a labelsync database (it is empty); create one with "
                "'labelsync import' or 'labelsync demo'",
            )
        if read_only:
            current = _schema_version(conn)
            if current != SCHEMA_VERSION:
                raise InvalidInput(
                    "path",
                    path,
                    f"has schema version {current}, not {SCHEMA_VERSION}, and a read-only "
                    "store cannot migrate it; open it for writing once "
                    "(SqliteStore(path), or 'labelsync migrate --db PATH')",
                )
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, path)
    except sqlite3.Error as error:
        conn.close()
        raise storage_error(error, path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _last_position(conn: sqlite3.Connection, tenant_id: str) -> int:
    """The roster position a new User of the tenant must come after.

    The last stored User's, or the end of the current push's roster if that is
    later (its last Users were removed): a User added later is never in that
    roster (R6), even with the id of a removed one (R14).
    """
    (last,) = conn.execute(
        "SELECT max(COALESCE((SELECT MAX(position) FROM user_state WHERE tenant_id = :t), 0),"
        " COALESCE((SELECT j.roster_end FROM tenants AS t JOIN jobs AS j"
        " ON j.id = t.current_job_id WHERE t.id = :t), 0))",
        {"t": tenant_id},
    ).fetchone()
    return int(last)


def _versions(conn: sqlite3.Connection, tenant_id: str, user_ids: Sequence[str]) -> dict[str, int]:
    """The stored version of each of `user_ids` that the tenant has."""
    versions: dict[str, int] = {}
    for start in range(0, len(user_ids), _IDS_PER_QUERY):
        chunk = user_ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id, version FROM user_state WHERE tenant_id = ? AND id IN ({marks})",
            (tenant_id, *chunk),
        )
        versions.update((row["id"], row["version"]) for row in rows)
    return versions


def _compare_and_set(
    conn: sqlite3.Connection,
    tenant_id: str,
    writes: Sequence[tuple[User, int]],
) -> tuple[str, ...]:
    """Store every write if every stored version matches; else store none and name the misfits.

    The common case costs one executemany: its rowcount is the number of rows
    updated, so a shortfall means a conflict. Only then are the versions read,
    after undoing the partial update, to say which Users moved on (or are gone).
    """
    if not writes:
        return ()
    conn.execute("SAVEPOINT compare_and_set")
    params = [(user, expected, *_user_params(user)) for user, expected in writes]
    updated = conn.executemany(
        _CAS_STATE,
        ((*hot, tenant_id, user.id, expected) for user, expected, _, hot in params),
    ).rowcount
    if updated == len(writes):
        conn.executemany(_UPDATE_COLD, ((*cold, tenant_id, user.id) for user, _, cold, _ in params))
        conn.execute("RELEASE compare_and_set")
        return ()
    conn.execute("ROLLBACK TO compare_and_set")
    conn.execute("RELEASE compare_and_set")
    stored = _versions(conn, tenant_id, [user.id for user, _ in writes])
    return tuple(user.id for user, expected in writes if stored.get(user.id) != expected)


class SqliteStore:
    """Tenants, Users and push jobs in one SQLite file; a context manager, `close()` when done.

    Several `SqliteStore`s, in one process or many, may share a file: each write
    waits up to `busy_timeout` seconds for another's write lock. With
    `read_only`, the file is opened read-only (it must exist at the current
    schema) and every write raises `StorageReadOnly`; with ``create=False`` the
    file must already be a labelsync database. Another application's SQLite
    file is refused either way, so labelsync never writes into it. Failures of
    the file after it opened (damaged, read-only, full, locked) raise the
    `labelsync.exceptions.StorageError` subclasses, naming the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        given: object = path
        if not isinstance(given, str | os.PathLike):
            raise InvalidInput("path", path, "must be a file path (str or os.PathLike)")
        fspath: object = os.fspath(path)
        if not isinstance(fspath, str):
            raise InvalidInput("path", path, "must be a text path, not bytes")
        check_text("path", fspath)
        timeout: object = busy_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or not 0 <= timeout <= MAX_BUSY_TIMEOUT
        ):
            raise InvalidInput(
                "busy_timeout",
                busy_timeout,
                f"must be a finite number of seconds from 0 to {MAX_BUSY_TIMEOUT}",
            )
        for name, flag in (("read_only", read_only), ("create", create)):
            if not isinstance(flag, bool):
                raise InvalidInput(name, flag, "must be True or False")
        self._path = fspath
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = _connect(
            self._path, float(busy_timeout), read_only=read_only, create=create and not read_only
        )

    def __repr__(self) -> str:
        state = "" if self._conn is not None else ", closed"
        return f"<SqliteStore {self._path!r}{state}>"

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the connection; closing again does nothing."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LabelSyncError(f"SqliteStore({self._path!r}) is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(begin)
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                    raise  # a bug of labelsync's, not of the storage: keep its traceback
                raise storage_error(error, self._path) from None

    def _reading(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One snapshot for every read of a method (WAL: never waits for a writer)."""
        return self._transaction("BEGIN")

    def _writing(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The write lock taken up front, so the reads that decide a write stay true."""
        return self._transaction("BEGIN IMMEDIATE")

    # -- lookups inside a transaction ---------------------------------------------------

    @staticmethod
    def _tenant_row(conn: sqlite3.Connection, tenant_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = None
        if is_id(tenant_id):
            row = conn.execute("SELECT * FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        if row is None:
            raise UnknownTenant(tenant_id)
        return row

    @staticmethod
    def _job(conn: sqlite3.Connection, job_id: str) -> PushJob:
        row: sqlite3.Row | None = None
        if is_id(job_id):
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UnknownJob(job_id)
        return _job_from_row(row)

    def _job_and_current(self, conn: sqlite3.Connection, job_id: str) -> tuple[PushJob, str | None]:
        """The job and its tenant's current job id, for `labelsync.jobs` to fence on."""
        job = self._job(conn, job_id)
        current: str | None = self._tenant_row(conn, job.tenant_id)["current_job_id"]
        return job, current

    def _save_job(self, conn: sqlite3.Connection, job: PushJob) -> None:
        """Persist what `labelsync.jobs` made of a stored job."""
        conn.execute(_UPDATE_JOB, (*_job_params(job)[len(_JOB_KEY) :], job.id))

    # -- tenants and Users ----------------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        """Store `tenant` with its Users (in roster order); `AlreadyExists` if the id is taken.

        `tenant.last_push` is kept as the tenant's audit record (e.g. from an
        imported snapshot); it names a job this store never ran.
        """
        check_new_users(tenant.users)
        with self._writing() as conn:
            taken = conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant.id,)).fetchone()
            if taken is not None:
                raise AlreadyExists("tenant.id", tenant.id, "is already a stored tenant")
            conn.execute(
                "INSERT INTO tenants"
                " (id, name, defaults_inbox, defaults_sent, onboard_new_users, last_push, locks)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant.id,
                    tenant.name,
                    *_defaults_params(tenant.defaults),
                    tenant.onboard_new_users,
                    None if tenant.last_push is None else _json(record_doc(tenant.last_push)),
                    None if tenant.locks is None else _json(locks_doc(tenant.locks)),
                ),
            )
            _insert_users(conn, tenant.id, list(enumerate(tenant.users, start=1)))

    def tenant_ids(self) -> list[str]:
        """The ids of all stored tenants, sorted."""
        with self._reading() as conn:
            return [row["id"] for row in conn.execute("SELECT id FROM tenants ORDER BY id")]

    def get_tenant(self, tenant_id: str) -> Tenant:
        """The stored tenant, with its Users in roster order."""
        with self._reading() as conn:
            row = self._tenant_row(conn, tenant_id)
            roster = tuple(
                _user_from_row(user_row)
                for user_row in conn.execute(
                    f"{_SELECT_USERS} WHERE u.tenant_id = ? ORDER BY u.position",
                    (tenant_id,),
                )
            )
            return _tenant_from_row(row, roster, _last_push(row))

    def settings(self, tenant_id: str) -> TenantSettings:
        """The stored tenant without its Users: checkboxes, onboarding switch, last push."""
        with self._reading() as conn:
            row = self._tenant_row(conn, tenant_id)
            return TenantSettings(
                id=row["id"],
                name=row["name"],
                defaults=_defaults_from_row(row),
                onboard_new_users=bool(row["onboard_new_users"]),
                last_push=_last_push(row),
                locks=_locks(row),
            )

    def save_defaults(self, tenant_id: str, defaults: Defaults | None) -> None:
        """Store the admin's checkbox settings (R11), leaving every other setting as it is."""
        if defaults is not None and not isinstance(defaults, Defaults):
            raise InvalidInput("defaults", defaults, "is not a Defaults")
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            conn.execute(
                "UPDATE tenants SET defaults_inbox = ?, defaults_sent = ? WHERE id = ?",
                (*_defaults_params(defaults), tenant_id),
            )

    def save_onboarding(self, tenant_id: str, enabled: bool) -> None:
        """Store the onboarding switch (B4), leaving every other setting as it is."""
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled", enabled, "must be True or False")
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            conn.execute(
                "UPDATE tenants SET onboard_new_users = ? WHERE id = ?", (enabled, tenant_id)
            )

    def add_user(self, tenant_id: str, user: User) -> None:
        """Store a new User at the end of the roster; `AlreadyExists` if the id is taken."""
        check_new_users((user,))
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            taken = conn.execute(
                "SELECT 1 FROM users WHERE tenant_id = ? AND id = ?", (tenant_id, user.id)
            ).fetchone()
            if taken is not None:
                raise AlreadyExists(
                    "user.id", user.id, f"is already a User of tenant {tenant_id!r}"
                )
            _insert_users(conn, tenant_id, [(_last_position(conn, tenant_id) + 1, user)])

    def get_user(self, tenant_id: str, user_id: str) -> User:
        """One stored User; `UnknownUser` if the tenant has none with that id."""
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
            row = None
            if is_id(user_id):
                row = conn.execute(
                    f"{_SELECT_USERS} WHERE u.tenant_id = ? AND u.id = ?",
                    (tenant_id, user_id),
                ).fetchone()
            if row is None:
                raise UnknownUser(user_id, tenant_id)
            return _user_from_row(row)

    def get_users(self, tenant_id: str, user_ids: Sequence[str]) -> list[User]:
        """The stored Users with these ids, in the order given; unknown ids are left out."""
        wanted = [i for i in dict.fromkeys(user_ids) if is_id(i)]
        found: dict[str, User] = {}
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    f"{_SELECT_USERS} WHERE u.tenant_id = ? AND u.id IN ({marks})",
                    (tenant_id, *chunk),
                )
                for row in rows:
                    user = _user_from_row(row)
                    found[user.id] = user
        return [found[i] for i in user_ids if i in found]

    def save_users(self, tenant_id: str, writes: Sequence[tuple[User, int]]) -> tuple[str, ...]:
        """Compare-and-set: store each User whose stored version still equals the paired one.

        Returns the ids of the Users it did not store because their version had
        moved on (or because the tenant has no such User); the others are
        stored, in one transaction.
        """
        writes = list(writes)
        check_distinct("writes", writes)
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            conflicts = _compare_and_set(conn, tenant_id, writes)
            if conflicts:
                misfits = set(conflicts)
                rest = [write for write in writes if write[0].id not in misfits]
                # We hold the write lock, so the rest cannot have moved on since.
                _compare_and_set(conn, tenant_id, rest)
            return conflicts

    def add_users(self, tenant_id: str, users: Sequence[User]) -> None:
        """Store new Users at the end of the roster, in order, all or none (`AlreadyExists`)."""
        users = list(users)
        check_added_users("users", users)
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            taken = _versions(conn, tenant_id, [user.id for user in users])
            for index, user in enumerate(users):
                if user.id in taken:
                    raise AlreadyExists(
                        f"users[{index}].id", user.id, f"is already a User of tenant {tenant_id!r}"
                    )
            last = _last_position(conn, tenant_id)
            _insert_users(conn, tenant_id, list(enumerate(users, start=last + 1)))

    def remove_users(self, tenant_id: str, user_ids: Sequence[str]) -> tuple[str, ...]:
        """Remove the Users with these ids (a running push skips them, R14); return those gone."""
        wanted = check_user_ids("user_ids", user_ids)
        with self._writing() as conn:
            current = self._tenant_row(conn, tenant_id)["current_job_id"]
            job = None if current is None else self._job(conn, current)
            found: dict[str, int] = {}
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                where = f"tenant_id = ? AND id IN ({marks})"
                rows = conn.execute(
                    f"SELECT id, position FROM user_state WHERE {where}", (tenant_id, *chunk)
                )
                found.update((row["id"], row["position"]) for row in rows)
                # The hot row first: it refers to the cold one.
                conn.execute(f"DELETE FROM user_state WHERE {where}", (tenant_id, *chunk))
                conn.execute(f"DELETE FROM users WHERE {where}", (tenant_id, *chunk))
            if job is not None and not job.finished:
                ahead = [
                    (user_id, position)
                    for user_id, position in found.items()
                    if job.cursor < position <= job.roster_end
                ]
                if ahead and job.audience.narrowed:  # only the audience's members (R20)
                    members = {
                        row[0]
                        for row in conn.execute(
                            "SELECT position FROM job_members WHERE job_id = ?"
                            f" AND position IN ({', '.join('?' * len(ahead))})",
                            (job.id, *(position for _, position in ahead)),
                        )
                    }
                    ahead = [(u, p) for u, p in ahead if p in members]
                conn.executemany(
                    "INSERT INTO removed_users (tenant_id, position, id, job_id)"
                    " VALUES (?, ?, ?, ?)",
                    ((tenant_id, position, user_id, job.id) for user_id, position in ahead),
                )
            return tuple(i for i in wanted if i in found)

    def user_ids(self, tenant_id: str) -> Iterator[str]:
        """The ids of the tenant's Users in roster order, streamed page by page."""
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
        return self._id_pages(tenant_id)

    def _id_pages(self, tenant_id: str) -> Iterator[str]:
        after = 0
        while True:
            with self._reading() as conn:
                rows = conn.execute(
                    "SELECT position, id FROM user_state WHERE tenant_id = ? AND position > ?"
                    " ORDER BY position LIMIT ?",
                    (tenant_id, after, _PAGE),
                ).fetchall()
            for row in rows:
                yield row["id"]
            if len(rows) < _PAGE:
                return
            after = rows[-1]["position"]

    # -- push jobs ----------------------------------------------------------------------

    def start_job(self, job: PushJob) -> PushJob:
        """Persist a new PENDING job and fix its roster, all at once.

        In one transaction: every unfinished job of the tenant becomes
        SUPERSEDED (with `superseded_by`), the new job becomes the tenant's
        current job, the tenant's checkbox settings become `job.defaults`, and
        the job's `total` and `roster_end` are set from the Users stored now.
        Returns the job as stored.
        """
        with self._writing() as conn:
            self._tenant_row(conn, job.tenant_id)
            taken = conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone()
            if taken is not None:
                raise AlreadyExists("job.id", job.id, "is already a stored push job")
            unfinished = conn.execute(
                "SELECT * FROM jobs WHERE tenant_id = ? AND status IN (?, ?)",
                (job.tenant_id, JobStatus.PENDING.value, JobStatus.RUNNING.value),
            ).fetchall()
            for row in unfinished:
                self._save_job(conn, jobs.superseded(_job_from_row(row), by=job.id))
                # A roster is kept while its push can run: a superseded one never runs again.
                conn.execute("DELETE FROM job_members WHERE job_id = ?", (row["id"],))
            if job.audience.narrowed:
                # The job row first: its members' rows point at it.
                conn.execute(_INSERT_JOB, _job_params(jobs.started(job, total=0, roster_end=0)))
                total, roster_end = self._roster_of(conn, job)
                stored = jobs.started(job, total=total, roster_end=roster_end)
                self._save_job(conn, stored)
            else:
                total, roster_end = conn.execute(
                    "SELECT COUNT(*), COALESCE(MAX(position), 0) FROM user_state"
                    " WHERE tenant_id = ?",
                    (job.tenant_id,),
                ).fetchone()
                stored = jobs.started(job, total=total, roster_end=roster_end)
                conn.execute(_INSERT_JOB, _job_params(stored))
            if job.audience.narrowed:
                # A push to some Users only is not the tenant's checkbox setting (R20).
                conn.execute(
                    "UPDATE tenants SET current_job_id = ? WHERE id = ?", (job.id, job.tenant_id)
                )
            else:
                conn.execute(
                    "UPDATE tenants SET current_job_id = ?, defaults_inbox = ?, defaults_sent = ?"
                    " WHERE id = ?",
                    (job.id, job.defaults.inbox, job.defaults.sent, job.tenant_id),
                )
            # Removed Users were kept only for the jobs superseded above.
            conn.execute("DELETE FROM removed_users WHERE tenant_id = ?", (job.tenant_id,))
            return stored

    @staticmethod
    def _members_params(job: PushJob) -> dict[str, object]:
        audience = job.audience
        names = audience.group_names if audience.kind is AudienceKind.GROUPS else audience.user_ids
        return {"job": job.id, "t": job.tenant_id, "names": _json(sorted(names))}

    def _roster_of(self, conn: sqlite3.Connection, job: PushJob) -> tuple[int, int]:
        """Store a narrowed job's members (R20) as they are now; their count and last position."""
        params = self._members_params(job)
        if job.audience.kind is AudienceKind.GROUPS:
            # The distinct sets of groups that hold one of the audience's, then their Users.
            wanted = job.audience.group_names
            sets: list[str] = []
            after = ""  # before every JSON text ('["a"]' sorts before '[]')
            while row := conn.execute(_NEXT_GROUP_SET, {**params, "after": after}).fetchone():
                after = row[0]
                if not wanted.isdisjoint(json.loads(after)):
                    sets.append(after)
            total = conn.execute(_ROSTER_OF_GROUPS, {**params, "names": _json(sets)}).rowcount
        else:
            total = conn.execute(_ROSTER_OF_USERS, params).rowcount
        # The count is the insert's; the last member is one seek, not a walk over them all.
        (roster_end,) = conn.execute(
            "SELECT COALESCE(MAX(position), 0) FROM job_members WHERE job_id = ?", (job.id,)
        ).fetchone()
        return total, roster_end

    def get_job(self, job_id: str) -> PushJob:
        """One job; `UnknownJob` if there is none."""
        with self._reading() as conn:
            return self._job(conn, job_id)

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        """Jobs (of one tenant, or all), newest (most recently started) first."""
        with self._reading() as conn:
            if tenant_id is not None and not is_id(tenant_id):
                return []
            if tenant_id is None:
                rows = conn.execute("SELECT * FROM jobs ORDER BY seq DESC")
            else:
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE tenant_id = ? ORDER BY seq DESC", (tenant_id,)
                )
            return [_job_from_row(row) for row in rows]

    def run_batch(self, job_id: str, *, after: int, limit: int) -> PushJob | StaleCheckpoint:
        """Push the job's defaults to its next `limit` roster Users after position `after`.

        One write transaction of set-based statements over that range of the
        roster (see `labelsync.ports.PushExecution.run_batch`).
        """
        check_limit(limit)
        with self._writing() as conn:
            job, current = self._job_and_current(conn, job_id)
            jobs.check_writable(job, current)
            if job.cursor != after:
                return StaleCheckpoint(job)
            plan = jobs.job_plan(job)
            inbox, sent = plan.checked
            params: dict[str, object] = {
                "job": job.id,
                "t": job.tenant_id,
                "after": after,
                "end": job.roster_end,
                "limit": limit,
                "i": inbox,
                "s": sent,
                "ki": plan.keep[0],
                "ks": plan.keep[1],
                "ni": plan.new_only[0],
                "ns": plan.new_only[1],
                "at": _time(job.started_at),
            }
            sql = _NARROWED if job.audience.narrowed else _EVERYONE
            removed = 0
            removed_ahead = conn.execute(_REMOVED_AHEAD, params).fetchone()[0]
            if job.audience.narrowed and not removed_ahead:
                sql = self._stretch_of_members(conn, params)
            if removed_ahead:
                # The batch's entries end at the last of its first `limit` roster entries,
                # live or removed; at most `limit` live Users are in that stretch.
                ends = _MEMBERS_END if job.audience.narrowed else _ENTRIES_END
                params["end"] = conn.execute(ends, params).fetchone()[0]
                removed = conn.execute(_REMOVED_AHEAD, params).fetchone()[0]
            counted = conn.execute(sql.range, params).fetchone()
            size, last, changed, flips_inbox, flips_sent, no_mailbox = counted[:6]
            miss_inbox, miss_sent, kept_inbox, kept_sent, uncovered = counted[6:]
            if removed:
                size, last = size + removed, params["end"]
            if not size:
                return job
            params["last"] = last
            # Changes and skips first: they read each User as the batch found it (its
            # version, whether it was covered), which the update then moves on.
            if changed:
                conn.execute(sql.changes, params)
            # Only the kinds of skip the range counted (in `_SKIP_ARMS` order): an arm with
            # nothing to report would still read every row of the batch.
            skipped = (no_mailbox, removed, miss_inbox, kept_inbox, miss_sent, kept_sent)
            if any(skipped):
                conn.execute(sql.skips(tuple(bool(n) for n in skipped)), params)
            if changed or uncovered:
                conn.execute(sql.users, params)
            counts = plan.counts(
                users_changed=changed or 0,
                flips=(flips_inbox or 0, flips_sent or 0),
                no_mailbox=no_mailbox or 0,
                missing=(miss_inbox or 0, miss_sent or 0),
                kept=(kept_inbox or 0, kept_sent or 0),
                removed=removed,
            )
            stored = jobs.after_batch(job, last_position=last, processed=size, counts=counts)
            self._save_job(conn, stored)
            return stored

    @staticmethod
    def _stretch_of_members(conn: sqlite3.Connection, params: dict[str, object]) -> _BatchSql:
        """The statements for a narrowed batch none of whose Users was removed (R14, R20).

        Positions below a job's `roster_end` are never given to a User added
        later, so the Users stored in a stretch of the roster were all there at
        the start: when they are as many as the batch's members in it, they are
        its members, and the batch reads the stretch as a push to everyone does
        (with `params` narrowed to it). Otherwise it looks its members up.
        """
        last, members = conn.execute(_MEMBERS_END, params).fetchone()
        if not members:
            return _NARROWED
        stored = conn.execute(
            _STORED_IN_STRETCH, {**params, "last": last, "limit": members}
        ).fetchone()[0]
        if stored != members:
            return _NARROWED
        params.update(end=last, limit=members)
        return _EVERYONE

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        """Mark the job DONE (`jobs.finished`) and make it the tenant's last push (R11).

        Fenced like `run_batch`; finishing a DONE job again returns it unchanged.
        """
        with self._writing() as conn:
            job, current = self._job_and_current(conn, job_id)
            jobs.check_current(job, current)
            stored = jobs.finished(job, finished_at)
            if stored is job:
                return job
            self._save_job(conn, stored)
            conn.execute(
                "UPDATE tenants SET last_push = ? WHERE id = ?",
                (_json(record_doc(stored.record())), job.tenant_id),
            )
            conn.execute("DELETE FROM removed_users WHERE job_id = ?", (job.id,))
            # The audience and its count stay with the job; its members were for running it.
            conn.execute("DELETE FROM job_members WHERE job_id = ?", (job.id,))
            return stored

    def lease_job(self, job_id: str, *, runner_id: str, until: dt.datetime | None) -> PushJob:
        """Store the job's runner lease as `jobs.leased` makes it (renewed, or released)."""
        with self._writing() as conn:
            job = self._job(conn, job_id)
            stored = jobs.leased(job, runner_id=runner_id, until=until)
            if stored is not job:
                conn.execute(
                    "UPDATE jobs SET runner_id = ?, lease_until = ? WHERE id = ?",
                    (
                        stored.runner_id,
                        None if stored.lease_until is None else _time(stored.lease_until),
                        job_id,
                    ),
                )
            return stored

    def job_changes(self, job_id: str) -> Iterator[StoredChange]:
        """The changes a job wrote, in roster order (those committed when this is called)."""
        return self._stream(job_id, "job_changes", _CHANGES_PAGE, _change_from_row)

    def job_skips(self, job_id: str) -> Iterator[Skip]:
        """The skips a job reported, in roster order (B2; those committed when this is called)."""
        return self._stream(job_id, "job_skips", _SKIPS_PAGE, _skip_from_row)

    def _stream(
        self, job_id: str, table: str, page_sql: str, convert: Callable[[sqlite3.Row], T]
    ) -> Iterator[T]:
        # Checked now, not at the first next(): an unknown job fails at the call.
        with self._reading() as conn:
            self._job(conn, job_id)
            (last,) = conn.execute(
                f"SELECT COALESCE(MAX(seq), 0) FROM {table} WHERE job_id = ?", (job_id,)
            ).fetchone()
        return self._pages(job_id, last, page_sql, convert)

    def _pages(
        self, job_id: str, last: int, page_sql: str, convert: Callable[[sqlite3.Row], T]
    ) -> Iterator[T]:
        # Page by page, each its own short read: no statement stays open between
        # yields, so a caller that stops early holds no snapshot. Rows only ever
        # append, so the rows up to `last` are exactly those at the call.
        after = 0
        while True:
            with self._reading() as conn:
                rows = conn.execute(page_sql, (job_id, after, last, _PAGE)).fetchall()
            for row in rows:
                yield convert(row)
            if len(rows) < _PAGE:
                return
            after = rows[-1]["seq"]

    # -- policy: locks and reverts (R17, R19) ---------------------------------------------

    def save_locks(self, tenant_id: str, locks: Locks | None) -> None:
        """Store the tenant's locks (R17), leaving every other setting as it is."""
        if locks is not None and not isinstance(locks, Locks):
            raise InvalidInput("locks", locks, "is not a Locks")
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            conn.execute(
                "UPDATE tenants SET locks = ? WHERE id = ?",
                (None if locks is None else _json(locks_doc(locks)), tenant_id),
            )

    def start_revert(self, revert: RevertJob) -> RevertJob:
        """Persist a RUNNING revert, or return the push's unfinished one; `AlreadyReverted`."""
        with self._writing() as conn:
            job = self._job(conn, revert.push_job_id)
            if job.tenant_id != revert.tenant_id:
                raise UnknownJob(revert.push_job_id)
            row = conn.execute(
                "SELECT * FROM reverts WHERE push_job_id = ?", (revert.push_job_id,)
            ).fetchone()
            started = jobs.revert_started(revert, None if row is None else _revert_from_row(row))
            if started is revert:
                conn.execute(
                    f"INSERT INTO reverts ({', '.join(_REVERT_COLUMNS)})"
                    f" VALUES ({', '.join('?' * len(_REVERT_COLUMNS))})",
                    _revert_params(revert),
                )
            return started

    def finish_revert(
        self, revert: RevertJob, *, defaults: Defaults | None, last_push: PushRecord | None
    ) -> RevertJob:
        """Store the finished revert; if it restored them, the tenant's defaults and last push."""
        with self._writing() as conn:
            row = conn.execute("SELECT * FROM reverts WHERE id = ?", (revert.id,)).fetchone()
            jobs.check_revert_finishable(
                revert,
                push_job_id=None if row is None else row["push_job_id"],
                status=None if row is None else JobStatus(row["status"]),
            )
            columns = _REVERT_COLUMNS[1:]
            conn.execute(
                f"UPDATE reverts SET ({', '.join(columns)}) = ({', '.join('?' * len(columns))})"
                " WHERE id = ?",
                (*_revert_params(revert)[1:], revert.id),
            )
            if revert.restored_defaults:
                conn.execute(
                    "UPDATE tenants SET defaults_inbox = ?, defaults_sent = ?, last_push = ?"
                    " WHERE id = ?",
                    (
                        *_defaults_params(defaults),
                        None if last_push is None else _json(record_doc(last_push)),
                        revert.tenant_id,
                    ),
                )
            return revert

    def list_reverts(self, tenant_id: str | None = None) -> list[RevertJob]:
        """Reverts (of one tenant, or all), newest first."""
        with self._reading() as conn:
            if tenant_id is None:
                rows = conn.execute("SELECT * FROM reverts ORDER BY seq DESC")
            else:
                rows = conn.execute(
                    "SELECT * FROM reverts WHERE tenant_id = ? ORDER BY seq DESC", (tenant_id,)
                )
            return [_revert_from_row(row) for row in rows]

    # -- presets (R21) ------------------------------------------------------------------

    def get_presets(self, tenant_id: str) -> PresetBook:
        """The tenant's stored presets; an empty book at version 0 if none was saved."""
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
            row = conn.execute(
                "SELECT version, book FROM presets WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
        if row is None:
            return PresetBook()
        return PresetBook.from_doc(json.loads(row["book"]), row["version"])

    def save_presets(self, tenant_id: str, book: PresetBook, event: PresetEvent) -> bool:
        """Compare-and-set on the book's version: store it and its event, or nothing."""
        if not isinstance(book, PresetBook):
            raise InvalidInput("book", book, "is not a PresetBook")
        if not isinstance(event, PresetEvent):
            raise InvalidInput("event", event, "is not a PresetEvent")
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            row = conn.execute(
                "SELECT version FROM presets WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            if (0 if row is None else row["version"]) != book.version - 1:
                return False
            conn.execute(
                "INSERT INTO presets (tenant_id, version, book) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id) DO UPDATE SET version = excluded.version,"
                " book = excluded.book",
                (tenant_id, book.version, _json(book.to_doc())),
            )
            conn.execute(
                "INSERT INTO preset_events (tenant_id, event) VALUES (?, ?)",
                (tenant_id, _json(event_doc(event))),
            )
            return True

    def preset_events(self, tenant_id: str) -> list[PresetEvent]:
        """The tenant's preset changes, oldest first."""
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
            rows = conn.execute(
                "SELECT event FROM preset_events WHERE tenant_id = ? ORDER BY seq", (tenant_id,)
            ).fetchall()
        return [event_from_doc(json.loads(row["event"])) for row in rows]
