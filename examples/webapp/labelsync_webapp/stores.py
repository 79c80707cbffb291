"""Open labelsync's store for the app: a SQLite file, or PostgreSQL when given a connection URL."""

from __future__ import annotations

from typing import Protocol

from labelsync.adapters.sqlite import SqliteStore
from labelsync.ports import Store

__all__ = ["ClosableStore", "open_store"]


class ClosableStore(Store, Protocol):
    """A labelsync `Store` the app owns, so it closes it at shutdown."""

    def close(self) -> None:
        """Release the store's connection."""


def open_store(database: str, *, postgres_schema: str = "labelsync") -> ClosableStore:
    """`SqliteStore(database)`, or a `PostgresStore` in `postgres_schema` for a PostgreSQL URL.

    Each call opens a store of its own (one connection): the app opens one for
    its request threads and one for its worker thread.
    """
    if database.startswith(("postgresql://", "postgres://")):
        # Imported here: PostgreSQL is optional (the `postgres` extra).
        from labelsync.adapters.postgres import PostgresStore

        return PostgresStore(database, schema=postgres_schema)
    return SqliteStore(database)
