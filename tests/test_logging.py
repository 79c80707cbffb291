"""labelsync logs through `logging` and is silent until the host configures it."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys

import attrs
import pytest

from labelsync import Defaults, LabelSync, Tenant
from labelsync.adapters.clock import FixedClock
from labelsync.adapters.memory import InMemoryStore
from labelsync.policy import Provenance
from labelsync.synthetic import ADMIN_ID, synthetic_tenant

AT = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def svc() -> LabelSync:
    service = LabelSync(store=InMemoryStore(), clock=FixedClock(AT))
    tenant: Tenant = synthetic_tenant(40, seed=2, tenant_id="acme", name="Acme")
    service.create_tenant(tenant)
    return service


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return [
        (r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name == "labelsync.service"
    ]


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("labelsync").handlers

    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_a_warning_without_logging_configured_prints_nothing() -> None:
    # Without the NullHandler, logging's last resort would print the warning to stderr.
    code = "import labelsync, logging; logging.getLogger('labelsync.push').warning('conflict')"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert (0, "", "") == (result.returncode, result.stdout, result.stderr)


def test_saving_settings_and_onboarding_are_logged_with_the_tenant_and_actor(
    svc: LabelSync, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="labelsync")

    svc.save_defaults("acme", actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=False))
    svc.set_onboarding("acme", actor_id=ADMIN_ID, enabled=True)

    saved = "defaults saved for tenant acme by admin: Inbox on, Sent off"
    onboarding = "onboarding of new Users turned on for tenant acme by admin"
    assert [
        ("labelsync.service", logging.INFO, saved),
        ("labelsync.service", logging.INFO, onboarding),
    ] == messages(caplog)


def test_a_revert_is_logged_with_its_job_tenant_actor_and_counts(
    svc: LabelSync, caplog: pytest.LogCaptureFixture
) -> None:
    report = svc.push("acme", actor_id=ADMIN_ID, defaults=Defaults(inbox=False, sent=False))
    caplog.set_level(logging.INFO, logger="labelsync")

    reverted = svc.revert_push(report.job.id, actor_id=ADMIN_ID)

    assert [
        f"revert of push {report.job.id} (tenant acme) started by admin",
        (
            f"revert of push {report.job.id} (tenant acme) by admin: "
            f"{len(reverted.reverted)} Users restored, 0 left alone"
        ),
    ] == [message for _, _, message in messages(caplog)]


def test_onboarding_a_user_is_logged_with_the_push_it_applied(
    svc: LabelSync, caplog: pytest.LogCaptureFixture
) -> None:
    report = svc.push("acme", actor_id=ADMIN_ID, defaults=Defaults(inbox=True, sent=True))
    # Onboarding covers a User no push covered yet: one added after the push.
    user = attrs.evolve(svc.tenant("acme").users[5], id="newcomer", provenance=Provenance())
    svc.add_user("acme", user)
    caplog.set_level(logging.INFO, logger="labelsync")

    svc.onboard("acme", user.id)

    [(_, level, message)] = messages(caplog)
    assert logging.INFO == level
    assert message.startswith(
        f"User {user.id} of tenant acme onboarded with the defaults of push {report.job.id}: "
    )
