"""The Flask application: sign-in picker, admin settings, push job view, and each User's Email tab.

Every view is a thin shell over `labelsync.LabelSync`: it reads a form, calls
one use case, and renders the result. Who may do what is labelsync's decision:
`start_push` and `revert_push` raise `PermissionDenied` for a non-admin (R1),
`email_tab` raises it for a User without EMAIL_SYNC (R8), and the error
handler turns every `LabelSyncError` into its HTTP status. Pages only ask
labelsync's `User.can` and `email_tab` what to show.

The ``--8<--`` comments mark the parts that docs/howto/web-app.md shows.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Mapping

import attrs
from flask import Flask, abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from labelsync import (
    Changes,
    Defaults,
    EmailTab,
    InvalidInput,
    JobStatus,
    LabelSet,
    LabelSync,
    LabelSyncError,
    NotFound,
    Permission,
    PermissionDenied,
    PushJob,
    User,
    apply_defaults,
    email_tab,
)
from labelsync.adapters.clock import SystemClock
from labelsync.exceptions import UnknownTenant, UnknownUser
from labelsync.ports import Clock
from labelsync.synthetic import synthetic_tenant
from labelsync_webapp.stores import ClosableStore, open_store
from labelsync_webapp.worker import AfterBatch, PushWorker

__all__ = ["Config", "Webapp", "status_for"]

# How many Users the sign-in picker lists, and how many User ids a skip report shows per reason.
PICKER_SIZE = 25
SKIP_SAMPLE = 10


@attrs.frozen
class Config:
    """What the app runs on: its database, the tenant it serves, and how the worker pushes."""

    database: str
    """A SQLite file path, or a ``postgresql://`` URL."""
    postgres_schema: str = "labelsync"
    """The PostgreSQL schema of labelsync's tables (ignored for SQLite)."""
    tenant_id: str = "demo"
    batch_size: int = 100
    batch_delay: float = 0.0
    """Seconds the worker pauses after each batch, so a person can watch a small push move."""
    poll_interval: float = 1.0
    """Seconds between the worker's looks at the job table when nobody wakes it."""


# --8<-- [start:status]
def status_for(error: LabelSyncError) -> int:
    """The HTTP status of a labelsync error: who may (403), what exists (404), valid input (400)."""
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidInput):
        return 400
    return 409  # JobSuperseded: the request lost a race; the state is consistent


# --8<-- [end:status]


@attrs.frozen
class SkipGroup:
    """The skips of one reason and label, with a few of the Users, for a skip report (R7)."""

    reason: str
    label: str
    count: int
    sample: tuple[str, ...]


@attrs.frozen
class Report:
    """What a push would do (preview) or did (finished job), as the pages show it."""

    changes: Changes
    skip_groups: tuple[SkipGroup, ...]

    @classmethod
    def of(cls, changes: Changes) -> Report:
        counts: Counter[tuple[str, str]] = Counter()
        samples: dict[tuple[str, str], list[str]] = {}
        for skip in changes.skipped:
            key = (skip.reason.name, "whole User" if skip.label is None else skip.label.title)
            counts[key] += 1
            sample = samples.setdefault(key, [])
            if len(sample) < SKIP_SAMPLE:
                sample.append(skip.user_id)
        groups = tuple(
            SkipGroup(reason=reason, label=label, count=count, sample=tuple(samples[reason, label]))
            for (reason, label), count in counts.items()
        )
        return cls(changes=changes, skip_groups=groups)


def defaults_from(form: Mapping[str, str]) -> Defaults:
    """The two checkboxes of a submitted form (an unchecked box is simply absent)."""
    return Defaults(inbox="inbox" in form, sent="sent" in form)


def percent(job: PushJob) -> int:
    """How far a job got, rounded down so that 100 means every roster User was handled."""
    return 100 if job.total == 0 else 100 * job.processed // job.total


class Webapp:
    """The whole host application: the labelsync service, the push worker, and the Flask app.

    Build it once per process, `start()` the worker, serve `flask`, and
    `close()` at shutdown. The request threads share one store (a
    `SqliteStore` serialises its connection with a lock); the worker opens its
    own.
    """

    # --8<-- [start:wiring]
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        after_batch: AfterBatch | None = None,
        secret_key: bytes | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.store = open_store(config.database, postgres_schema=config.postgres_schema)
        self.service = LabelSync(store=self.store, clock=self.clock)
        self._after_batch = after_batch
        self.worker = PushWorker(
            open_service=self._open_worker_service,
            tenant_id=config.tenant_id,
            batch_size=config.batch_size,
            after_batch=self._after_each_batch,
            poll_interval=config.poll_interval,
        )
        self.flask = self._build_flask(secret_key or secrets.token_bytes(32))

    # --8<-- [end:wiring]

    # -- lifetime -------------------------------------------------------------------

    def ensure_tenant(self, *, users: int, seed: int) -> bool:
        """Create a synthetic tenant of `users` Users unless the database has the tenant already."""
        try:
            self.service.tenant(self.config.tenant_id)
        except UnknownTenant:
            tenant = synthetic_tenant(users, seed=seed, tenant_id=self.config.tenant_id)
            self.service.create_tenant(tenant)
            return True
        return False

    def start(self) -> None:
        """Start the push worker, which first resumes any push left unfinished by a previous run."""
        self.worker.start()

    def close(self) -> None:
        """Stop the worker after its current batch, then close the request threads' store."""
        self.worker.stop()
        self.store.close()

    # --8<-- [start:worker-store]
    def _open_worker_service(self) -> tuple[LabelSync, ClosableStore]:
        """The worker's own store: another connection, so pages never queue behind a batch."""
        store = open_store(self.config.database, postgres_schema=self.config.postgres_schema)
        return LabelSync(store=store, clock=self.clock), store

    # --8<-- [end:worker-store]

    def _after_each_batch(self, job: PushJob) -> None:
        if self.config.batch_delay > 0:
            time.sleep(self.config.batch_delay)
        if self._after_batch is not None:
            self._after_batch(job)

    # -- the Flask app ----------------------------------------------------------------

    def _build_flask(self, secret_key: bytes) -> Flask:
        app = Flask(__name__)
        app.secret_key = secret_key
        # A cross-site form cannot post with the session cookie; a real app adds CSRF tokens.
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
        app.add_url_rule("/", "home", self.home)
        app.add_url_rule("/signin", "signin", self.signin_page)
        app.add_url_rule("/signin", "signin_post", self.signin, methods=["POST"])
        app.add_url_rule("/signout", "signout", self.signout, methods=["POST"])
        app.add_url_rule("/profile", "profile", self.profile)
        app.add_url_rule("/profile/email", "email_tab", self.email_tab_page)
        app.add_url_rule("/profile/email", "save_email_tab", self.save_email_tab, methods=["POST"])
        app.add_url_rule("/settings", "settings", self.settings)
        app.add_url_rule("/settings/apply", "apply", self.apply, methods=["POST"])
        app.add_url_rule("/jobs/<job_id>", "job", self.job_page)
        app.add_url_rule("/jobs/<job_id>.json", "job_json", self.job_json)
        app.add_url_rule("/jobs/<job_id>/revert", "revert", self.revert, methods=["POST"])
        app.register_error_handler(LabelSyncError, self.labelsync_error)
        return app

    # --8<-- [start:errors]
    def labelsync_error(self, error: LabelSyncError) -> ResponseReturnValue:
        """Every refusal labelsync makes, shown with its own message and HTTP status."""
        status = status_for(error)
        return self._error_page(status, str(error))

    # --8<-- [end:errors]

    def _error_page(self, status: int, message: str) -> ResponseReturnValue:
        user = self._signed_in()
        return self._render("error.html", user, status=status, message=message), status

    # -- who is signed in ---------------------------------------------------------------

    def _signed_in(self) -> User | None:
        user_id = session.get("user_id")
        if not isinstance(user_id, str):
            return None
        try:
            return self.service.user(self.config.tenant_id, user_id)
        except UnknownUser:
            session.pop("user_id", None)
            return None

    def _require_user(self) -> User:
        user = self._signed_in()
        if user is None:
            abort(redirect(url_for("signin")))
        return user

    def _require_admin(self) -> User:
        """The signed-in User if labelsync's `User.can` says they are an admin; else a 403 page."""
        user = self._require_user()
        if not user.can(Permission.ADMIN_ACCESS):
            message = (
                f"{user.id} lacks {Permission.ADMIN_ACCESS.name}: "
                "only an administrator sees the default synced labels settings"
            )
            page = self._render("error.html", user, status=403, message=message)
            abort(Response(page, status=403, mimetype="text/html"))
        return user

    def _render(self, template: str, user: User | None, **context: object) -> str:
        """A page with the navigation this User may see: Settings for admins, Email tab (R8)."""
        has_email_tab = False
        if user is not None:
            try:
                email_tab(user)  # labelsync decides (R8); the pure rule needs no second read
                has_email_tab = True
            except PermissionDenied:
                pass
        return render_template(
            template,
            user=user,
            is_admin=user is not None and user.can(Permission.ADMIN_ACCESS),
            has_email_tab=has_email_tab,
            tenant_id=self.config.tenant_id,
            **context,
        )

    # -- sign-in: a User picker, no passwords (it is an example) --------------------------

    def home(self) -> ResponseReturnValue:
        return redirect(url_for("profile" if self._signed_in() else "signin"))

    def signin_page(self) -> ResponseReturnValue:
        tenant = self.service.tenant(self.config.tenant_id)
        return self._render(
            "signin.html",
            self._signed_in(),
            tenant=tenant,
            users=tenant.users[:PICKER_SIZE],
            Permission=Permission,
        )

    def signin(self) -> ResponseReturnValue:
        user_id = request.form.get("user_id", "").strip()
        user = self.service.user(self.config.tenant_id, user_id)  # UnknownUser: 404 page
        session["user_id"] = user.id
        return redirect(url_for("profile"))

    def signout(self) -> ResponseReturnValue:
        session.pop("user_id", None)
        return redirect(url_for("signin"))

    # -- a User's profile and Email tab (R8) ----------------------------------------------

    def profile(self) -> ResponseReturnValue:
        user = self._require_user()
        return self._render("profile.html", user, tab="overview")

    # --8<-- [start:email-tab]
    def email_tab_page(self) -> ResponseReturnValue:
        user = self._require_user()
        tab: EmailTab = self.service.email_tab(self.config.tenant_id, user.id)  # R8
        return self._render("email.html", user, tab="email", email=tab)

    def save_email_tab(self) -> ResponseReturnValue:
        user = self._require_user()
        self.service.email_tab(
            self.config.tenant_id, user.id
        )  # only who sees the tab edits it (R8)
        selected = LabelSet(request.form.getlist("label"))
        self.service.set_selection(self.config.tenant_id, user.id, selected)
        flash("Your synced labels are saved.")
        return redirect(url_for("email_tab"))

    # --8<-- [end:email-tab]

    # -- the admin's settings: preview and "Apply to all users" (R1) --------------------------

    # --8<-- [start:settings]
    def settings(self) -> ResponseReturnValue:
        user = self._require_admin()
        tenant = self.service.tenant(self.config.tenant_id)
        if "preview" in request.args:
            defaults = defaults_from(request.args)
        else:
            defaults = tenant.defaults or Defaults(inbox=False, sent=False)
        # apply_defaults is pure: the preview is the push itself, minus the writing (B1).
        _, changes = apply_defaults(tenant, defaults)
        return self._render(
            "settings.html",
            user,
            tenant=tenant,
            defaults=defaults,
            preview=Report.of(changes),
            jobs=self.service.jobs(self.config.tenant_id)[:10],
            percent=percent,
        )

    # --8<-- [end:settings]

    # --8<-- [start:apply]
    def apply(self) -> ResponseReturnValue:
        user = self._require_user()
        defaults = defaults_from(request.form)
        # labelsync checks the admin (R1), fixes the roster (R6) and supersedes
        # an unfinished push (R10); the worker runs the job outside this request.
        job = self.service.start_push(self.config.tenant_id, actor_id=user.id, defaults=defaults)
        self.worker.wake()
        return redirect(url_for("job", job_id=job.id), code=303)

    # --8<-- [end:apply]

    # -- a push job: progress, report, revert (B5) -------------------------------------------

    def _job(self, job_id: str) -> PushJob:
        job = self.service.job(job_id)  # UnknownJob: 404 page
        if job.tenant_id != self.config.tenant_id:
            abort(404)
        return job

    def job_page(self, job_id: str) -> ResponseReturnValue:
        user = self._require_admin()
        job = self._job(job_id)
        report = Report.of(self.service.changes(job.id)) if job.status is JobStatus.DONE else None
        latest = self.service.jobs(self.config.tenant_id)[0]
        return self._render(
            "job.html",
            user,
            job=job,
            report=report,
            percent=percent(job),
            can_revert=job.status is JobStatus.DONE and latest.id == job.id,
        )

    # --8<-- [start:job-json]
    def job_json(self, job_id: str) -> ResponseReturnValue:
        self._require_admin()
        job = self._job(job_id)
        return jsonify(
            id=job.id,
            status=job.status.name,
            processed=job.processed,
            total=job.total,
            percent=percent(job),
            finished=job.finished,
            superseded_by=job.superseded_by,
        )

    # --8<-- [end:job-json]

    def revert(self, job_id: str) -> ResponseReturnValue:
        user = self._require_user()
        job = self._job(job_id)
        try:
            report = self.service.revert_push(job.id, actor_id=user.id)  # admins only (R1)
        except InvalidInput as error:  # not the latest push, or not DONE: say so on the page
            flash(str(error), "error")
        else:
            flash(
                f"Reverted: {len(report.reverted)} Users restored, "
                f"{len(report.changed_since)} left as they are (they changed since the push)."
            )
        return redirect(url_for("job", job_id=job.id), code=303)
