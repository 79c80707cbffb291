"""Developer tasks: `nox -s tests`, `typecheck`, `lint`, `docs`, `bench`, `demo`."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "typecheck", "lint", "docs"]
nox.options.reuse_existing_virtualenvs = True

ALL_EXTRAS = ".[cli,notebook,postgres]"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: unit, property, SQLite and PostgreSQL integration, CLI, notebook, docs."""
    session.install("-e", ALL_EXTRAS, "--group", "test")
    session.run("pytest", *session.posargs, env={"HYPOTHESIS_PROFILE": "ci"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests and benchmarks."""
    session.install("-e", ALL_EXTRAS, "--group", "typecheck")
    session.run("mypy", "--strict", "src", "tests", "benchmarks", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; --strict turns a broken link or reference into a failure."""
    session.install("-e", ALL_EXTRAS, "--group", "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against a plain-Python and a raw-sqlite3 floor; writes docs/performance.md."""
    session.install("-e", ALL_EXTRAS, "--group", "bench")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: `labelsync demo` on a synthetic 10,000-User tenant in SQLite."""
    session.install("-e", ".[cli]")
    session.run("labelsync", "demo", *session.posargs)
