"""Developer tasks: `nox -s tests`, `typecheck`, `lint`, `docs`, `bench`, `demo`, `webapp`."""

from __future__ import annotations

import os

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


WEBAPP = "examples/webapp"


@nox.session
def webapp(session: nox.Session) -> None:
    """The example web application (examples/webapp) on http://127.0.0.1:8000, synthetic tenant."""
    session.install("-e", ".", "--group", "webapp")
    # Kept between runs, so a push left running by a stopped server resumes on the next start.
    database = os.path.join(session.create_tmp(), "webapp.db")
    session.run(
        "python",
        "-m",
        "labelsync_webapp",
        *("--database", database, "--users", "5000", "--batch-size", "250", "--batch-delay", "0.2"),
        *session.posargs,  # argparse keeps the last value: `nox -s webapp -- --port 8080`
        env={"PYTHONPATH": WEBAPP},
    )


@nox.session(name="webapp-screenshots")
def webapp_screenshots(session: nox.Session) -> None:
    """Retake the web-app how-to's screenshots (docs/img/webapp-*.png) in headless Chromium."""
    session.install("-e", ALL_EXTRAS, "--group", "test")
    session.run(
        "pytest",
        "-q",
        "tests/test_webapp_browser.py",
        env={"LABELSYNC_WEBAPP_SCREENSHOTS": "docs/img", "LABELSYNC_BROWSER_REQUIRED": "1"},
    )
