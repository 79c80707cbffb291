"""Shared test setup: hypothesis profiles, and a throwaway PostgreSQL server when one can be had.

Profiles are chosen with HYPOTHESIS_PROFILE (default, ci, dev). When no
LABELSYNC_POSTGRES_DSN is set but PostgreSQL's server binaries are installed,
the run starts its own server on loopback (``scripts/postgres-test-server.sh``)
and removes it at the end, so a newcomer's ``nox -s tests`` exercises the
PostgreSQL store too. LABELSYNC_POSTGRES_AUTOSTART=0 turns that off.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from labelsync.adapters.memory import InMemoryStore
from labelsync.adapters.sqlite import SqliteStore
from labelsync.ports import Store
from postgres_fixtures import DSN_VARIABLE, fresh_schema, postgres_dsn

settings.register_profile("default", settings())
settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres-test-server.sh"
_started_dir: str | None = None


def _postgres_installed() -> bool:
    """True when the server binaries (initdb) are on PATH or in Debian's versioned directory."""
    return shutil.which("initdb") is not None or bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def pytest_configure(config: pytest.Config) -> None:
    """Start a throwaway PostgreSQL for this run if none is named and one is installed."""
    global _started_dir
    if os.environ.get(DSN_VARIABLE) or os.environ.get("LABELSYNC_POSTGRES_AUTOSTART") == "0":
        return
    if not _postgres_installed() or shutil.which("bash") is None:
        return
    base = f"/tmp/labelsync-pytest-postgres-{os.getpid()}"
    env = {**os.environ, "LABELSYNC_PG_DIR": base}
    result = subprocess.run(
        ["bash", str(_SCRIPT), "start"], env=env, capture_output=True, text=True, check=False
    )
    prefix = f"export {DSN_VARIABLE}="
    lines = [line for line in result.stdout.splitlines() if line.startswith(prefix)]
    if result.returncode != 0 or not lines:
        # The Postgres tests then skip (or fail when required) naming why.
        print(f"could not start a throwaway PostgreSQL: {result.stderr.strip()[-500:]}")
        return
    _started_dir = base
    os.environ[DSN_VARIABLE] = lines[-1][len(prefix) :]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server `pytest_configure` started, and delete its data."""
    if _started_dir is not None:
        env = {**os.environ, "LABELSYNC_PG_DIR": _started_dir}
        subprocess.run(["bash", str(_SCRIPT), "stop"], env=env, capture_output=True, check=False)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each kind a host runs: in memory, a SQLite file, a PostgreSQL schema.

    A test module that needs fewer kinds defines its own `store`, which wins over this one.
    """
    if request.param == "memory":
        yield InMemoryStore()
    elif request.param == "sqlite":
        with SqliteStore(tmp_path / "labelsync.db") as opened:
            yield opened
    else:
        from labelsync.adapters.postgres import PostgresStore

        dsn = postgres_dsn()
        with fresh_schema(dsn) as schema, PostgresStore(dsn, schema=schema) as opened:
            yield opened
