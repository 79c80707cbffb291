"""Reaching the PostgreSQL server the Postgres tests run against, and throwaway schemas on it.

The server is named by LABELSYNC_POSTGRES_DSN (``scripts/postgres-test-server.sh
start`` prints it). Without it, or when it does not answer, every Postgres test
is skipped with the reason; with LABELSYNC_POSTGRES_REQUIRED=1 (CI) it fails
instead, so a broken server can never pass as skipped tests.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DSN_VARIABLE = "LABELSYNC_POSTGRES_DSN"
REQUIRED_VARIABLE = "LABELSYNC_POSTGRES_REQUIRED"
HOW = (
    "install PostgreSQL (apt-get install postgresql) and the tests start a throwaway server, "
    f'or set {DSN_VARIABLE} (eval "$(bash scripts/postgres-test-server.sh start)")'
)


def _where(dsn: str) -> str:
    """host:port/dbname of `dsn`, without the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # a malformed DSN is reported by connect() below
        return "?"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


@functools.cache
def _problem() -> tuple[str, str | None]:
    """(dsn, None) when the server answers, else (dsn, why not); asked once per test run."""
    dsn = os.environ.get(DSN_VARIABLE, "")
    if not dsn:
        return dsn, f"PostgreSQL not reachable: {DSN_VARIABLE} is not set; {HOW}"
    try:
        import psycopg
    except ImportError:
        return dsn, "PostgreSQL tests need psycopg: pip install 'labelsync[postgres]'"
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as error:
        return dsn, f"PostgreSQL not reachable at {_where(dsn)}: {error}; {HOW}"
    return dsn, None


def postgres_dsn() -> str:
    """The DSN of a server that answers; skips the calling test otherwise (fails if required)."""
    dsn, problem = _problem()
    if problem is not None:
        if os.environ.get(REQUIRED_VARIABLE):
            pytest.fail(f"{problem} ({REQUIRED_VARIABLE} is set)")
        pytest.skip(problem)
    return dsn


def new_schema_name(prefix: str = "test") -> str:
    """A schema name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def drop_schema(dsn: str, schema: str) -> None:
    """Remove `schema` and everything in it."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_schema(dsn: str, prefix: str = "test") -> Iterator[str]:
    """A new schema name for one test; the schema is dropped afterwards, whatever happened."""
    schema = new_schema_name(prefix)
    try:
        yield schema
    finally:
        drop_schema(dsn, schema)
