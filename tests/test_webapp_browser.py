"""The example web app driven end to end in a real headless Chromium (examples/webapp).

A person's steps: an admin ticks the boxes, previews, clicks "Apply to all
users" and watches the progress bar; a User opens the Email tab; a second
click supersedes the first; a revert. Expected values come from labelsync's
pure core (`apply_defaults`) on the tenant as it was, never from the app.
Needs Chromium and ChromeDriver: see tests/webapp_fixtures.py.
"""

from __future__ import annotations

import pytest

from labelsync import (
    Defaults,
    JobStatus,
    Permission,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from webapp_fixtures import BATCH, USERS, Browser, LiveApp, browser, live_app, wait_until

__all__ = ["browser", "live_app"]  # the fixtures, imported so pytest finds them here

pytestmark = pytest.mark.slow

BOTH = Defaults(inbox=True, sent=True)
NOTE = "Sync is enabled for this label"


def _selections(tenant: Tenant) -> dict[str, frozenset[str]]:
    return {user.id: user.synced.ids for user in tenant.users}


def _role_ids(user: User) -> dict[SystemLabel, str]:
    assert user.mailbox is not None
    return {label.system: label.id for label in user.mailbox.labels if label.system is not None}


def _email_user(tenant: Tenant, *, sync: bool, start: int = 1) -> User:
    """A non-admin User with a mailbox that has Inbox and Sent, with or without EMAIL_SYNC.

    The first one at roster position `start` or later (the admin is at 0).
    """
    return next(
        user
        for user in tenant.users[start:]
        if user.mailbox is not None
        and len(_role_ids(user)) == 2
        and user.can(Permission.EMAIL_SYNC) is sync
    )


def _job_id(browser: Browser) -> str:
    """The id of the job whose page the browser shows, once it shows one."""

    def job_page() -> str | None:
        url: str = browser.driver.current_url
        return url if "/jobs/" in url else None

    return wait_until(job_page, "the job page").rsplit("/", 1)[-1]


def test_an_admin_ticks_both_boxes_previews_applies_and_watches_progress_reach_100_percent(
    live_app: LiveApp, browser: Browser
) -> None:
    expected_tenant, expected = apply_defaults(live_app.tenant, BOTH)
    counts = expected.counts()
    browser.sign_in("admin")
    browser.click("#nav-settings")
    browser.set_checkbox("#inbox", True)
    browser.set_checkbox("#sent", True)
    browser.click("#preview-button")
    browser.wait_for_text("#preview h2", "Preview: Inbox on, Sent on")
    assert (
        f"{counts.users_changed} of {USERS} Users would change: +{counts.selected} labels "
        f"selected, \u2212{counts.deselected} deselected; {counts.skipped} skips."
    ) == browser.text("#preview-counts")
    for reason, count in expected.skipped_by_reason().items():
        if reason.name == "USER_CHOICE_KEPT":
            assert 0 == count  # an OVERRIDE preview keeps no User's choice (R16)
            continue
        assert str(count) == browser.text(f'#preview-skips tr[data-reason="{reason.name}"] .count')
    browser.screenshot("webapp-settings")

    live_app.gate.arm()
    browser.click("#apply")
    job_id = _job_id(browser)
    held = live_app.gate.wait_held()
    assert (job_id, BATCH) == (held.id, held.processed)
    # The page polls while the worker is held after its first batch: a partial bar.
    browser.wait_for_text("#percent", f"{100 * BATCH // USERS}%")
    assert ("RUNNING", str(BATCH)) == (
        browser.text("#status"),
        browser.find("#progress").get_attribute("value"),
    )
    browser.screenshot("webapp-job-running")

    live_app.gate.release()
    browser.wait_for_finished_job("DONE")
    assert ("100%", f"{USERS} of {USERS} Users") == (
        browser.text("#percent"),
        browser.text("#count"),
    )
    assert browser.text("#report-counts").startswith(
        f"{counts.users_changed} of {USERS} Users changed: +{counts.selected} labels selected"
    )
    browser.screenshot("webapp-job-done")
    # R3, R4, R5: the store now holds exactly what the pure rule says.
    assert _selections(expected_tenant) == _selections(live_app.webapp.service.tenant("demo"))


def test_the_email_tab_shows_the_pushed_labels_selected_with_the_note_and_keeps_a_users_edit(
    live_app: LiveApp, browser: Browser
) -> None:
    user = _email_user(live_app.tenant, sync=True)
    roles = _role_ids(user)
    live_app.push(BOTH)
    browser.sign_in(user.id)
    browser.click("#tab-email")
    for role in SystemLabel:  # R8: each pushed label selected, with the note
        row = f'li[data-label-id="{roles[role]}"]'
        assert browser.find(f"{row} input").is_selected()
        assert NOTE == browser.text(f"{row} .note")
    pushed = live_app.webapp.service.user("demo", user.id)
    for label in user.mailbox.labels if user.mailbox else ():
        row = f'li[data-label-id="{label.id}"]'
        assert (label.id in pushed.synced.ids) is browser.find(f"{row} input").is_selected()
        assert (label.id in pushed.synced.ids) is browser.has(f"{row} .note")
    browser.screenshot("webapp-email-tab")

    # The User unticks Sent and saves: their own choice, kept (R12), other labels untouched (R5).
    browser.set_checkbox(f'li[data-label-id="{roles[SystemLabel.SENT]}"] input', False)
    browser.click("#save")
    browser.wait_for_text(".flash", "Your synced labels are saved.")
    assert not browser.has(f'li[data-label-id="{roles[SystemLabel.SENT]}"] .note')
    assert pushed.synced.ids - {roles[SystemLabel.SENT]} == (
        live_app.webapp.service.user("demo", user.id).synced.ids
    )


def test_users_edits_made_while_the_push_runs_are_kept(live_app: LiveApp, browser: Browser) -> None:
    early = _email_user(live_app.tenant, sync=True)  # in the first batch
    late = _email_user(live_app.tenant, sync=True, start=3 * BATCH)  # in a later one
    assert live_app.tenant.users.index(early) < BATCH
    early_roles, late_roles = _role_ids(early), _role_ids(late)
    assert late.mailbox is not None
    custom = next(label.id for label in late.mailbox.labels if label.system is None)
    browser.sign_in("admin")
    browser.open("/settings")
    browser.set_checkbox("#inbox", True)
    browser.set_checkbox("#sent", True)
    live_app.gate.arm()
    browser.click("#apply")
    job_id = _job_id(browser)
    live_app.gate.wait_held()

    # While the push is held after its first batch, both Users edit their Email tab.
    browser.sign_in(early.id)  # already pushed: unticks Sent
    browser.open("/profile/email")
    browser.set_checkbox(f'li[data-label-id="{early_roles[SystemLabel.SENT]}"] input', False)
    browser.click("#save")
    browser.wait_for_text(".flash", "Your synced labels are saved.")
    browser.sign_in(late.id)  # not pushed yet: ticks a label of their own, unticks Inbox
    browser.open("/profile/email")
    browser.set_checkbox(f'li[data-label-id="{custom}"] input', True)
    browser.set_checkbox(f'li[data-label-id="{late_roles[SystemLabel.INBOX]}"] input', False)
    browser.click("#save")
    browser.wait_for_text(".flash", "Your synced labels are saved.")
    live_app.gate.release()
    wait_until(lambda: live_app.webapp.service.job(job_id).finished, "the push to end")

    service = live_app.webapp.service
    # R12: the edit made after the push passed the User stays; the push owns only Inbox and
    # Sent of the User it reaches later, so their own label stays and Inbox is selected again.
    pushed_early = apply_defaults(live_app.tenant, BOTH)[0].user(early.id).synced.ids
    assert (
        pushed_early - {early_roles[SystemLabel.SENT]} == service.user("demo", early.id).synced.ids
    )
    assert (
        late.synced.ids | {custom, *late_roles.values()} == service.user("demo", late.id).synced.ids
    )
    assert JobStatus.DONE is service.job(job_id).status


def test_a_user_without_email_sync_has_no_email_tab(live_app: LiveApp, browser: Browser) -> None:
    user = _email_user(live_app.tenant, sync=False)
    browser.sign_in(user.id)
    assert not browser.has("#tab-email")
    assert browser.has("#no-email-tab")
    browser.screenshot("webapp-no-email-tab")
    browser.open("/profile/email")  # typed by hand: labelsync refuses (R8)
    assert f"'{user.id}' lacks EMAIL_SYNC" in browser.text("#error-message")


def test_a_non_admin_gets_no_settings_page_and_cannot_start_a_push(
    live_app: LiveApp, browser: Browser
) -> None:
    user = _email_user(live_app.tenant, sync=True)
    browser.sign_in(user.id)
    assert not browser.has("#nav-settings")
    browser.open("/settings")
    assert "lacks ADMIN_ACCESS" in browser.text("#error-message")
    # A forged form post reaches start_push, which refuses it (R1): no job exists.
    status = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch("/settings/apply", {method: "POST", body: new URLSearchParams("inbox=on")})
            .then((response) => done(response.status));
        """
    )
    assert 403 == status
    assert [] == live_app.webapp.service.jobs("demo")


def test_a_second_push_started_during_the_first_marks_the_first_superseded(
    live_app: LiveApp, browser: Browser
) -> None:
    first, second = Defaults(inbox=True, sent=False), Defaults(inbox=False, sent=True)
    browser.sign_in("admin")
    browser.open("/settings")
    browser.set_checkbox("#inbox", True)
    live_app.gate.arm()
    browser.click("#apply")
    first_id = _job_id(browser)
    assert first_id == live_app.gate.wait_held().id

    # While the worker is held after the first push's first batch, the admin clicks again.
    browser.open("/settings")
    browser.set_checkbox("#inbox", False)
    browser.set_checkbox("#sent", True)
    browser.click("#apply")
    wait_until(lambda: first_id not in browser.driver.current_url, "the second job's page")
    second_id = _job_id(browser)
    live_app.gate.release()
    browser.wait_for_finished_job("DONE")

    browser.open(f"/jobs/{first_id}")
    assert "SUPERSEDED" == browser.text("#status")
    assert f"{live_app.url}/jobs/{second_id}" == browser.find("#superseded-by").get_attribute(
        "href"
    )
    browser.screenshot("webapp-job-superseded")
    stopped = live_app.webapp.service.job(first_id)
    assert (JobStatus.SUPERSEDED, BATCH) == (stopped.status, stopped.processed)
    # R10: the last push wins, as if the first had never run.
    assert _selections(apply_defaults(live_app.tenant, second)[0]) == _selections(
        live_app.webapp.service.tenant("demo")
    )
    assert first != second


def test_reverting_a_push_from_its_page_restores_every_user(
    live_app: LiveApp, browser: Browser
) -> None:
    job = live_app.push(BOTH)
    browser.sign_in("admin")
    browser.open(f"/jobs/{job.id}")
    browser.click("#revert")
    browser.wait_for_text(
        ".flash",
        f"Reverted: {job.counts.users_changed} Users restored, "
        "0 left as they are (they changed since the push).",
    )
    assert _selections(live_app.tenant) == _selections(live_app.webapp.service.tenant("demo"))
