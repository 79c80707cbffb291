"""The example web app without a browser: its HTTP answers, its worker, and a restart mid-push.

Permission checks are labelsync's (R1, R8): these tests post forms a page
would never show and see labelsync's refusal come back as the HTTP status.
The restart test runs the app as a real process, kills it with SIGKILL during
a push, starts it again and sees the push finish exactly as an uninterrupted
one would (R12). Browser tests are in test_webapp_browser.py.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from labelsync import (
    Defaults,
    InvalidInput,
    JobStatus,
    JobSuperseded,
    LabelSet,
    LabelSync,
    Permission,
    PermissionDenied,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.exceptions import UnknownJob
from labelsync.synthetic import synthetic_tenant
from labelsync_webapp import Config, Webapp, status_for
from labelsync_webapp.__main__ import DATABASE_ENV, main
from postgres_fixtures import fresh_schema, postgres_dsn
from webapp_fixtures import ROOT, wait_until

BOTH = Defaults(inbox=True, sent=True)
USERS = 60


def _selections(tenant: Tenant) -> dict[str, frozenset[str]]:
    return {user.id: user.synced.ids for user in tenant.users}


def _member(tenant: Tenant, *, admin: bool = False, sync: bool = True) -> User:
    return next(
        user
        for user in tenant.users
        if user.mailbox is not None
        and user.can(Permission.ADMIN_ACCESS) is admin
        and user.can(Permission.EMAIL_SYNC) is sync
    )


@pytest.fixture
def webapp(tmp_path: Path) -> Iterator[Webapp]:
    """The app on a fresh SQLite file with a small synthetic tenant; its worker is not started."""
    app = Webapp(Config(database=str(tmp_path / "app.db"), batch_size=7, poll_interval=0.05))
    app.ensure_tenant(users=USERS, seed=3)
    try:
        yield app
    finally:
        app.close()


def _client(webapp: Webapp, user_id: str) -> FlaskClient:
    client = webapp.flask.test_client()
    assert 302 == client.post("/signin", data={"user_id": user_id}).status_code
    return client


def test_each_labelsync_error_maps_to_one_http_status() -> None:
    assert [403, 404, 400, 409] == [
        status_for(PermissionDenied("actor_id: 'u1' lacks ADMIN_ACCESS")),
        status_for(UnknownJob("j1")),
        status_for(InvalidInput("batch_size", 0, "must be a whole number >= 1")),
        status_for(JobSuperseded("j1", "j2")),
    ]


def test_a_forged_apply_by_a_non_admin_is_refused_by_labelsync_and_starts_no_job(
    webapp: Webapp,
) -> None:
    tenant = webapp.service.tenant("demo")
    user = _member(tenant)
    response = _client(webapp, user.id).post("/settings/apply", data={"inbox": "on"})
    assert 403 == response.status_code
    assert f"{user.id!r} lacks ADMIN_ACCESS in tenant 'demo'" in html.unescape(response.text)
    assert ([], _selections(tenant)) == (
        webapp.service.jobs("demo"),
        _selections(webapp.service.tenant("demo")),
    )


def test_saving_the_email_tab_without_email_sync_is_refused_and_changes_nothing(
    webapp: Webapp,
) -> None:
    user = _member(webapp.service.tenant("demo"), sync=False)
    assert user.mailbox is not None
    label = user.mailbox.labels[0].id
    response = _client(webapp, user.id).post("/profile/email", data={"label": [label]})
    assert 403 == response.status_code
    assert user.synced == webapp.service.user("demo", user.id).synced


def test_saving_the_email_tab_stores_exactly_the_ticked_labels(webapp: Webapp) -> None:
    user = _member(webapp.service.tenant("demo"))
    assert user.mailbox is not None
    ticked = [label.id for label in user.mailbox.labels[1:3]]
    response = _client(webapp, user.id).post("/profile/email", data={"label": ticked})
    assert 302 == response.status_code
    assert LabelSet(ticked) == webapp.service.user("demo", user.id).synced


def test_ticking_a_label_the_mailbox_does_not_have_is_a_400_naming_it(webapp: Webapp) -> None:
    user = _member(webapp.service.tenant("demo"))
    response = _client(webapp, user.id).post("/profile/email", data={"label": ["Label_404"]})
    assert 400 == response.status_code
    assert "synced: 'Label_404' is not a label" in html.unescape(response.text)
    assert user.synced == webapp.service.user("demo", user.id).synced


def test_signing_in_as_an_unknown_user_is_a_404_naming_the_id(webapp: Webapp) -> None:
    response = webapp.flask.test_client().post("/signin", data={"user_id": "nobody"})
    assert 404 == response.status_code
    assert "user_id: 'nobody' is not a User" in html.unescape(response.text)


def test_pages_other_than_sign_in_send_a_signed_out_visitor_to_sign_in(webapp: Webapp) -> None:
    client = webapp.flask.test_client()
    for path in ("/profile", "/profile/email", "/settings", "/jobs/x"):
        response = client.get(path)
        assert (302, "/signin") == (response.status_code, response.location), path


def test_the_preview_is_the_pure_rule_and_writes_nothing(webapp: Webapp) -> None:
    tenant = webapp.service.tenant("demo")
    counts = apply_defaults(tenant, BOTH)[1].counts()
    response = _client(webapp, "admin").get("/settings?preview=1&inbox=on&sent=on")
    assert 200 == response.status_code
    assert f"<strong>{counts.users_changed}</strong> of {USERS} Users" in response.text
    assert _selections(tenant) == _selections(webapp.service.tenant("demo"))


def test_the_worker_runs_a_push_started_by_the_apply_button_to_done(webapp: Webapp) -> None:
    tenant = webapp.service.tenant("demo")
    webapp.start()
    response = _client(webapp, "admin").post("/settings/apply", data={"sent": "on"})
    assert 303 == response.status_code
    job_id = response.location.rsplit("/", 1)[-1]
    wait_until(lambda: webapp.service.job(job_id).status is JobStatus.DONE, "the push to finish")
    expected = apply_defaults(tenant, Defaults(inbox=False, sent=True))[0]
    assert _selections(expected) == _selections(webapp.service.tenant("demo"))


def test_the_worker_resumes_a_push_left_unfinished_when_the_app_starts(tmp_path: Path) -> None:
    database = str(tmp_path / "app.db")
    with SqliteStore(database) as store:
        service = LabelSync(store=store, clock=SystemClock())
        tenant = synthetic_tenant(USERS, seed=3)
        service.create_tenant(tenant)
        job = service.start_push("demo", actor_id="admin", defaults=BOTH)  # nobody runs it
    app = Webapp(Config(database=database, batch_size=7, poll_interval=0.05))
    try:
        app.start()
        wait_until(lambda: app.service.job(job.id).status is JobStatus.DONE, "the push to finish")
        assert _selections(apply_defaults(tenant, BOTH)[0]) == _selections(
            app.service.tenant("demo")
        )
    finally:
        app.close()


def test_the_command_line_names_its_options_and_where_the_database_comes_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert 0 == exited.value.code
    shown = capsys.readouterr().out
    for option in ("--database", "--port", "--users", "--batch-size", "--batch-delay"):
        assert option in shown
    assert f"${DATABASE_ENV}" in shown


@pytest.mark.postgres
def test_the_app_runs_a_push_on_postgresql_through_the_same_pages() -> None:
    dsn = postgres_dsn()
    with fresh_schema(dsn, "webapp") as schema:
        app = Webapp(Config(database=dsn, postgres_schema=schema, batch_size=7, poll_interval=0.05))
        try:
            app.ensure_tenant(users=USERS, seed=3)
            tenant = app.service.tenant("demo")
            app.start()
            response = _client(app, "admin").post("/settings/apply", data={"inbox": "on"})
            job_id = response.location.rsplit("/", 1)[-1]
            wait_until(lambda: app.service.job(job_id).status is JobStatus.DONE, "the push")
            expected = apply_defaults(tenant, Defaults(inbox=True, sent=False))[0]
            assert _selections(expected) == _selections(app.service.tenant("demo"))
        finally:
            app.close()


# -- the app as a real process, killed mid-push and restarted (R12) ---------------------------

RESTART_USERS = 2_000
RESTART_BATCH = 50


class _Process:
    """`python -m labelsync_webapp` on a free loopback port, and an HTTP client signed in to it."""

    def __init__(self, database: Path, log: Path, *extra: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "examples" / "webapp"))
        command = [sys.executable, "-m", "labelsync_webapp", "--database", str(database)]
        command += ["--port", "0", "--users", str(RESTART_USERS), "--seed", "5"]
        command += ["--batch-size", str(RESTART_BATCH), *extra]
        self.log = log.open("a")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("serving on "):
                self.url = line.removeprefix("serving on ").strip().rstrip("/")
                break
        else:
            pytest.fail(f"the app exited before serving; see {log}")
        self.http = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.post("/signin", user_id="admin")

    def post(self, path: str, **form: str) -> str:
        """POST a form; the URL the answer ended on, after redirects."""
        data = urllib.parse.urlencode(form).encode()
        with self.http.open(self.url + path, data=data, timeout=60) as response:
            url: str = response.geturl()
            return url

    def job(self, job_id: str) -> dict[str, object]:
        with self.http.open(f"{self.url}/jobs/{job_id}.json", timeout=60) as response:
            state: dict[str, object] = json.load(response)
            return state

    def end(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.log.close()
        return code


@pytest.fixture
def processes() -> Iterator[list[_Process]]:
    """App processes a test starts; any still alive at the end is killed."""
    started: list[_Process] = []
    yield started
    for app in started:
        if app.process.poll() is None:
            app.end(signal.SIGKILL)


@pytest.mark.slow
def test_an_app_killed_mid_push_finishes_the_push_after_restart_with_the_exact_end_state(
    tmp_path: Path, processes: list[_Process]
) -> None:
    database, log = tmp_path / "app.db", tmp_path / "app.log"
    # Slowed batches leave time to see the push move and kill the process in the middle.
    first = _Process(database, log, "--batch-delay", "0.25")
    processes.append(first)
    job_id = first.post("/settings/apply", inbox="on", sent="on").rsplit("/", 1)[-1]

    def moved() -> bool:
        processed = first.job(job_id)["processed"]
        return isinstance(processed, int) and processed >= 2 * RESTART_BATCH

    wait_until(moved, "the push to commit two batches")
    assert -signal.SIGKILL == first.end(signal.SIGKILL)
    with SqliteStore(database) as store:
        killed = LabelSync(store=store, clock=SystemClock()).job(job_id)
    assert JobStatus.RUNNING is killed.status
    assert 0 < killed.processed < killed.total == RESTART_USERS

    second = _Process(database, log)  # nothing is clicked: the worker resumes on its own
    processes.append(second)
    wait_until(lambda: second.job(job_id)["status"] == "DONE", "the resumed push to finish")
    assert 0 == second.end(signal.SIGTERM)  # a graceful stop, after the worker's batch

    tenant = synthetic_tenant(RESTART_USERS, seed=5)
    expected_tenant, expected = apply_defaults(tenant, BOTH)
    with SqliteStore(database) as store:
        service = LabelSync(store=store, clock=SystemClock())
        done = service.job(job_id)
        assert (JobStatus.DONE, RESTART_USERS) == (done.status, done.processed)
        assert expected.counts() == done.counts
        assert set(expected.changed) == set(service.changes(job_id).changed)
        assert set(expected.skipped) == set(service.changes(job_id).skipped)
        assert _selections(expected_tenant) == _selections(service.tenant("demo"))
