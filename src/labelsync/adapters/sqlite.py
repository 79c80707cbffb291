"""A `Store` on one SQLite file: durable, transactional, and shared safely by several processes.

Every method runs in one SQLite transaction: writes take the write lock up
front (``BEGIN IMMEDIATE``), reads see one snapshot. The file is in WAL mode so
readers never block the writer, and a busy timeout makes a second process wait
for the write lock instead of failing. The schema is versioned: opening a file
migrates it to `SCHEMA_VERSION`, and a file from a newer labelsync is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Final, Self, TypeVar

import attrs

from labelsync.adapters._records import label_from_row, label_row, record_doc, record_from_doc
from labelsync.changes import LabelChange, Skip
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    JobSuperseded,
    LabelSyncError,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.model import (
    Defaults,
    LabelSet,
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
from labelsync.ports import BatchWrite, Conflict, JobStatus, PushJob, StaleCheckpoint, StoredChange

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

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

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1,)

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this labelsync writes; files at a lower version are migrated on open."""

_IDS_PER_QUERY: Final = 500  # ids bound in one IN (...): under every SQLite build's limit
_PAGE: Final = 1000  # rows per query when streaming a job's changes or skips

_USER_COLUMNS: Final = "id, email, permissions, provider, address, mailbox_labels, synced, version"

_INSERT_USER: Final = """
    INSERT INTO users (tenant_id, id, position, email, permissions, provider, address,
                       mailbox_labels, synced, version)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# Compare-and-set: the row is written only if it is still at the version it was read at.
_CAS_USER: Final = """
    UPDATE users
    SET email = ?, permissions = ?, provider = ?, address = ?, mailbox_labels = ?,
        synced = ?, version = ?
    WHERE tenant_id = ? AND id = ? AND version = ?
"""

# A push changes a User's selection and version only (R5), so its writes set
# just those; the version check proves nothing else moved since the read.
_CAS_SELECTION: Final = """
    UPDATE users SET synced = ?, version = ?
    WHERE tenant_id = ? AND id = ? AND version = ?
"""

_ROSTER_BATCH: Final = f"""
    SELECT position, {_USER_COLUMNS} FROM users
    WHERE tenant_id = ? AND position > ? AND position <= ?
    ORDER BY position
    LIMIT ?
"""

_INSERT_JOB: Final = """
    INSERT INTO jobs (id, tenant_id, actor_id, defaults_inbox, defaults_sent, status, started_at,
                      finished_at, total, processed, cursor, roster_end, users_changed, selected,
                      deselected, no_mailbox, label_missing, superseded_by)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_UPDATE_JOB_AFTER_BATCH: Final = """
    UPDATE jobs
    SET status = ?, cursor = ?, processed = ?, users_changed = ?, selected = ?,
        deselected = ?, no_mailbox = ?, label_missing = ?
    WHERE id = ?
"""

_INSERT_CHANGE: Final = """
    INSERT INTO job_changes (job_id, tenant_id, user_id, label, label_id, selected, version_after)
    VALUES (?, ?, ?, ?, ?, ?, ?)
"""

_INSERT_SKIP: Final = """
    INSERT INTO job_skips (job_id, tenant_id, user_id, label, reason) VALUES (?, ?, ?, ?, ?)
"""

_CHANGES_PAGE: Final = """
    SELECT seq, user_id, label, label_id, selected, version_after FROM job_changes
    WHERE job_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?
"""

_SKIPS_PAGE: Final = """
    SELECT seq, user_id, label, reason FROM job_skips
    WHERE job_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?
"""


# -- rows <-> values -------------------------------------------------------------

UserParams = tuple[str, str, str | None, str | None, str | None, str, int]


def _role(label: SystemLabel | None) -> str | None:
    return None if label is None else label.value


def _role_from_text(text: str | None) -> SystemLabel | None:
    return None if text is None else SystemLabel(text)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _user_params(user: User) -> UserParams:
    """The stored columns of `user` after its id: email through version."""
    mailbox = user.mailbox
    provider = address = labels = None
    if mailbox is not None:
        provider = mailbox.provider.value
        address = mailbox.address
        labels = _json([label_row(lb) for lb in mailbox.labels])
    return (
        user.email,
        _json(sorted(p.value for p in user.permissions)),
        provider,
        address,
        labels,
        _json(sorted(user.synced.ids)),
        user.version,
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
def _selection_from_text(text: str) -> LabelSet:
    return LabelSet(json.loads(text))


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
        synced=_selection_from_text(row["synced"]),
        version=row["version"],
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
    )


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
        ),
        finished_at=None if finished_at is None else _time_from_text(finished_at),
        superseded_by=row["superseded_by"],
    )


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
        for statements in _MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(statement)
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


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: the module issues no implicit BEGIN/COMMIT; we do.
    # check_same_thread=False: the store's own lock serialises threads instead.
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


class _Rollback(Exception):
    """Raised inside a write transaction to undo all of it and return `result` instead."""

    def __init__(self, result: Conflict | StaleCheckpoint) -> None:
        super().__init__(result)
        self.result = result


def _versions(conn: sqlite3.Connection, tenant_id: str, user_ids: Sequence[str]) -> dict[str, int]:
    """The stored version of each of `user_ids` that the tenant has."""
    versions: dict[str, int] = {}
    for start in range(0, len(user_ids), _IDS_PER_QUERY):
        chunk = user_ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id, version FROM users WHERE tenant_id = ? AND id IN ({marks})",
            (tenant_id, *chunk),
        )
        versions.update((row["id"], row["version"]) for row in rows)
    return versions


def _check_distinct(what: str, writes: Sequence[tuple[User, int]]) -> None:
    seen: set[str] = set()
    for index, (user, _) in enumerate(writes):
        if user.id in seen:
            raise InvalidInput(f"{what}[{index}].id", user.id, "is written twice in one call")
        seen.add(user.id)


def _compare_and_set(
    conn: sqlite3.Connection,
    tenant_id: str,
    writes: Sequence[tuple[User, int]],
    *,
    selection_only: bool = False,
) -> tuple[str, ...]:
    """Store every write if every stored version matches; else store none and name the misfits.

    The common case costs one executemany: its rowcount is the number of rows
    updated, so a shortfall means a conflict. Only then are the versions read,
    after undoing the partial update, to say which Users moved on (or are gone).
    """
    if not writes:
        return ()
    conn.execute("SAVEPOINT compare_and_set")
    if selection_only:
        updated = conn.executemany(
            _CAS_SELECTION,
            (
                (_json(sorted(user.synced.ids)), user.version, tenant_id, user.id, expected)
                for user, expected in writes
            ),
        ).rowcount
    else:
        updated = conn.executemany(
            _CAS_USER,
            ((*_user_params(user), tenant_id, user.id, expected) for user, expected in writes),
        ).rowcount
    if updated == len(writes):
        conn.execute("RELEASE compare_and_set")
        return ()
    conn.execute("ROLLBACK TO compare_and_set")
    conn.execute("RELEASE compare_and_set")
    stored = _versions(conn, tenant_id, [user.id for user, _ in writes])
    return tuple(user.id for user, expected in writes if stored.get(user.id) != expected)


class SqliteStore:
    """Tenants, Users and push jobs in one SQLite file; a context manager, `close()` when done.

    Several `SqliteStore`s, in one process or many, may share a file: each write
    waits up to `busy_timeout` seconds for another's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise InvalidInput("busy_timeout", busy_timeout, "must be a number of seconds >= 0")
        if busy_timeout < 0:
            raise InvalidInput("busy_timeout", busy_timeout, "must be a number of seconds >= 0")
        self._path = os.fspath(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = _connect(self._path, float(busy_timeout))

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
            conn.execute(begin)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

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
        if isinstance(tenant_id, str):
            row = conn.execute("SELECT * FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        if row is None:
            raise UnknownTenant(tenant_id)
        return row

    @staticmethod
    def _job(conn: sqlite3.Connection, job_id: str) -> PushJob:
        row: sqlite3.Row | None = None
        if isinstance(job_id, str):
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise UnknownJob(job_id)
        return _job_from_row(row)

    def _fenced(self, conn: sqlite3.Connection, job_id: str) -> PushJob:
        """The job, if it is still its tenant's current job and not superseded."""
        job = self._job(conn, job_id)
        current = self._tenant_row(conn, job.tenant_id)["current_job_id"]
        if job.status is JobStatus.SUPERSEDED or current != job_id:
            raise JobSuperseded(job_id, job.superseded_by or current)
        return job

    # -- tenants and Users ----------------------------------------------------------------

    def add_tenant(self, tenant: Tenant) -> None:
        """Store `tenant` with its Users (in roster order); `AlreadyExists` if the id is taken.

        `tenant.last_push` is kept as the tenant's audit record (e.g. from an
        imported snapshot); it names a job this store never ran.
        """
        with self._writing() as conn:
            taken = conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant.id,)).fetchone()
            if taken is not None:
                raise AlreadyExists("tenant.id", tenant.id, "is already a stored tenant")
            conn.execute(
                "INSERT INTO tenants"
                " (id, name, defaults_inbox, defaults_sent, onboard_new_users, last_push)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant.id,
                    tenant.name,
                    *_defaults_params(tenant.defaults),
                    tenant.onboard_new_users,
                    None if tenant.last_push is None else _json(record_doc(tenant.last_push)),
                ),
            )
            conn.executemany(
                _INSERT_USER,
                (
                    (tenant.id, user.id, position, *_user_params(user))
                    for position, user in enumerate(tenant.users, start=1)
                ),
            )

    def tenant_ids(self) -> list[str]:
        """The ids of all stored tenants, sorted."""
        with self._reading() as conn:
            return [row["id"] for row in conn.execute("SELECT id FROM tenants ORDER BY id")]

    def get_tenant(self, tenant_id: str, *, users: bool = True) -> Tenant:
        """The stored tenant, with its Users in roster order (none if `users` is False)."""
        with self._reading() as conn:
            row = self._tenant_row(conn, tenant_id)
            roster: tuple[User, ...] = ()
            if users:
                roster = tuple(
                    _user_from_row(user_row)
                    for user_row in conn.execute(
                        f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = ? ORDER BY position",
                        (tenant_id,),
                    )
                )
            last_push = None
            if row["last_push"] is not None:
                last_push = record_from_doc(json.loads(row["last_push"]))
            return _tenant_from_row(row, roster, last_push)

    def save_settings(
        self, tenant_id: str, *, defaults: Defaults | None, onboard_new_users: bool
    ) -> None:
        """Store the admin's checkbox settings and the onboarding switch (R11, B4)."""
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            conn.execute(
                "UPDATE tenants SET defaults_inbox = ?, defaults_sent = ?, onboard_new_users = ?"
                " WHERE id = ?",
                (
                    *_defaults_params(defaults),
                    onboard_new_users,
                    tenant_id,
                ),
            )

    def add_user(self, tenant_id: str, user: User) -> None:
        """Store a new User at the end of the roster; `AlreadyExists` if the id is taken."""
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            taken = conn.execute(
                "SELECT 1 FROM users WHERE tenant_id = ? AND id = ?", (tenant_id, user.id)
            ).fetchone()
            if taken is not None:
                raise AlreadyExists(
                    "user.id", user.id, f"is already a User of tenant {tenant_id!r}"
                )
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(position), 0) FROM users WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            conn.execute(_INSERT_USER, (tenant_id, user.id, last + 1, *_user_params(user)))

    def get_user(self, tenant_id: str, user_id: str) -> User:
        """One stored User; `UnknownUser` if the tenant has none with that id."""
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
            row = None
            if isinstance(user_id, str):
                row = conn.execute(
                    f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = ? AND id = ?",
                    (tenant_id, user_id),
                ).fetchone()
            if row is None:
                raise UnknownUser(user_id, tenant_id)
            return _user_from_row(row)

    def get_users(self, tenant_id: str, user_ids: Sequence[str]) -> list[User]:
        """The stored Users with these ids, in the order given; unknown ids are left out."""
        wanted = list(dict.fromkeys(user_ids))
        found: dict[str, User] = {}
        with self._reading() as conn:
            self._tenant_row(conn, tenant_id)
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT {_USER_COLUMNS} FROM users WHERE tenant_id = ? AND id IN ({marks})",
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
        _check_distinct("writes", writes)
        with self._writing() as conn:
            self._tenant_row(conn, tenant_id)
            conflicts = _compare_and_set(conn, tenant_id, writes)
            if conflicts:
                misfits = set(conflicts)
                rest = [write for write in writes if write[0].id not in misfits]
                # We hold the write lock, so the rest cannot have moved on since.
                _compare_and_set(conn, tenant_id, rest)
            return conflicts

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
            conn.execute(
                "UPDATE jobs SET status = ?, superseded_by = ?"
                " WHERE tenant_id = ? AND status IN (?, ?)",
                (
                    JobStatus.SUPERSEDED.value,
                    job.id,
                    job.tenant_id,
                    JobStatus.PENDING.value,
                    JobStatus.RUNNING.value,
                ),
            )
            total, roster_end = conn.execute(
                "SELECT COUNT(*), COALESCE(MAX(position), 0) FROM users WHERE tenant_id = ?",
                (job.tenant_id,),
            ).fetchone()
            stored = attrs.evolve(job, status=JobStatus.PENDING, total=total, roster_end=roster_end)
            conn.execute(_INSERT_JOB, _job_params(stored))
            conn.execute(
                "UPDATE tenants SET current_job_id = ?, defaults_inbox = ?, defaults_sent = ?"
                " WHERE id = ?",
                (job.id, job.defaults.inbox, job.defaults.sent, job.tenant_id),
            )
            return stored

    def get_job(self, job_id: str) -> PushJob:
        """One job; `UnknownJob` if there is none."""
        with self._reading() as conn:
            return self._job(conn, job_id)

    def list_jobs(self, tenant_id: str | None = None) -> list[PushJob]:
        """Jobs (of one tenant, or all), newest (most recently started) first."""
        with self._reading() as conn:
            if tenant_id is None:
                rows = conn.execute("SELECT * FROM jobs ORDER BY seq DESC")
            else:
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE tenant_id = ? ORDER BY seq DESC", (tenant_id,)
                )
            return [_job_from_row(row) for row in rows]

    def roster_batch(self, job_id: str, after: int, limit: int) -> list[tuple[int, User]]:
        """Up to `limit` roster Users of the job with position > `after`, by position."""
        with self._reading() as conn:
            job = self._job(conn, job_id)
            if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
                return []
            rows = conn.execute(_ROSTER_BATCH, (job.tenant_id, after, job.roster_end, limit))
            return [(row["position"], _user_from_row(row)) for row in rows]

    def commit_batch(self, batch: BatchWrite) -> PushJob | Conflict | StaleCheckpoint:
        """Write one batch of a push in one transaction, fenced on the tenant's current job.

        Raises `JobSuperseded` (writing nothing) unless the job is the tenant's
        current, unfinished job. Returns `StaleCheckpoint` (writing nothing) if
        the job's cursor is not `batch.cursor_before`, and `Conflict` (writing
        nothing) if any User's stored version differs from the one paired with it.
        Otherwise stores the Users (version as given), the changes and skips,
        moves the cursor, adds `processed` and `counts`, marks the job RUNNING,
        and returns the job as stored.
        """
        _check_distinct("BatchWrite.writes", batch.writes)
        version_after = {user.id: user.version for user, _ in batch.writes}
        for index, (user_id, *_) in enumerate(batch.changes):
            if user_id not in version_after:
                raise InvalidInput(
                    f"BatchWrite.changes[{index}].user_id", user_id, "has no write in this batch"
                )
        try:
            with self._writing() as conn:
                return self._commit_batch(conn, batch, version_after)
        except _Rollback as rollback:
            return rollback.result

    def _commit_batch(
        self, conn: sqlite3.Connection, batch: BatchWrite, version_after: dict[str, int]
    ) -> PushJob:
        job = self._fenced(conn, batch.job_id)
        if job.status is JobStatus.DONE:
            raise JobSuperseded(batch.job_id, None)
        if job.cursor != batch.cursor_before:
            raise _Rollback(StaleCheckpoint(job))
        conflicts = _compare_and_set(conn, job.tenant_id, batch.writes, selection_only=True)
        if conflicts:
            raise _Rollback(Conflict(conflicts))
        conn.executemany(
            _INSERT_CHANGE,
            (
                (
                    job.id,
                    job.tenant_id,
                    user_id,
                    label.value,
                    label_id,
                    selected,
                    version_after[user_id],
                )
                for user_id, label, label_id, selected in batch.changes
            ),
        )
        try:
            conn.executemany(
                _INSERT_SKIP,
                (
                    (job.id, job.tenant_id, user_id, _role(label), reason.value)
                    for user_id, label, reason in batch.skips
                ),
            )
        except sqlite3.IntegrityError:
            self._raise_for_unknown_skips(conn, job.tenant_id, batch)
            raise
        stored = attrs.evolve(
            job,
            status=JobStatus.RUNNING,
            cursor=batch.cursor_after,
            processed=job.processed + batch.processed,
            counts=job.counts + batch.counts,
        )
        counts = stored.counts
        conn.execute(
            _UPDATE_JOB_AFTER_BATCH,
            (
                stored.status.value,
                stored.cursor,
                stored.processed,
                counts.users_changed,
                counts.selected,
                counts.deselected,
                counts.no_mailbox,
                counts.label_missing,
                job.id,
            ),
        )
        return stored

    @staticmethod
    def _raise_for_unknown_skips(
        conn: sqlite3.Connection, tenant_id: str, batch: BatchWrite
    ) -> None:
        """Turn the foreign-key failure of a skip for no User of the tenant into `UnknownUser`."""
        user_ids = list(dict.fromkeys(user_id for user_id, _, _ in batch.skips))
        known = _versions(conn, tenant_id, user_ids)
        for user_id in user_ids:
            if user_id not in known:
                raise UnknownUser(user_id, tenant_id)

    def finish_job(self, job_id: str, finished_at: dt.datetime) -> PushJob:
        """Mark a fully processed job DONE and make it the tenant's last push (R11).

        Fenced like `commit_batch`; finishing a DONE job again returns it unchanged.
        """
        # PushJob does not validate finished_at, and a naive one stored here would
        # make every later get_tenant fail building the PushRecord.
        if finished_at.utcoffset() is None:
            raise InvalidInput("finished_at", finished_at, "must be a timezone-aware datetime")
        with self._writing() as conn:
            job = self._fenced(conn, job_id)
            if job.status is JobStatus.DONE:
                return job
            stored = attrs.evolve(job, status=JobStatus.DONE, finished_at=finished_at)
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?",
                (stored.status.value, _time(finished_at), job_id),
            )
            conn.execute(
                "UPDATE tenants SET last_push = ? WHERE id = ?",
                (_json(record_doc(stored.record())), job.tenant_id),
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
