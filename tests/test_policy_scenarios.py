"""The held-out admin-policy scenarios of issue 13 (R15-R19), one named test each, on every store.

Each scenario runs through `LabelSync` over the in-memory store, a SQLite file
and (when one can be had) PostgreSQL, with time from a `FixedClock`.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from labelsync import (
    Defaults,
    LabelLocked,
    LabelSet,
    LabelSync,
    Mailbox,
    Origin,
    Permission,
    PermissionDenied,
    Provider,
    PushMode,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.adapters.clock import FixedClock
from labelsync.exceptions import AlreadyReverted
from labelsync.policy import DriftReason
from labelsync.ports import Store
from labelsync.providers import gmail_label

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
BOTH = Defaults(inbox=True, sent=True)
INBOX_ONLY = Defaults(inbox=True, sent=False)
NEITHER = Defaults(inbox=False, sent=False)
INBOX, SENT = SystemLabel.INBOX, SystemLabel.SENT
ADMIN = "admin"


def gmail(address: str) -> Mailbox:
    return Mailbox(
        provider=Provider.GMAIL,
        address=address,
        labels=(
            gmail_label("INBOX", "Inbox"),
            gmail_label("SENT", "Sent"),
            gmail_label("Label_7", "Project X"),
        ),
    )


def person(user_id: str, *synced: str, admin: bool = False, mailbox: bool = True) -> User:
    address = f"{user_id}@acme.io"
    permissions = {Permission.EMAIL_SYNC} | ({Permission.ADMIN_ACCESS} if admin else set())
    return User(
        id=user_id,
        email=address,
        permissions=frozenset(permissions),
        mailbox=gmail(address) if mailbox else None,
        synced=LabelSet(synced),
    )


def acme() -> Tenant:
    return Tenant(
        id="acme",
        name="Acme",
        users=(
            person(ADMIN, admin=True),
            person("ana"),
            person("ben", "Label_7"),
            person("cy", "SENT"),
        ),
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def svc(store: Store, clock: FixedClock) -> LabelSync:
    counter = itertools.count(1)
    service = LabelSync(store=store, clock=clock, new_id=lambda: f"job-{next(counter)}")
    service.create_tenant(acme())
    return service


def later(clock: FixedClock, hours: int = 1) -> None:
    clock.advance(dt.timedelta(hours=hours))


def synced(svc: LabelSync, user_id: str) -> frozenset[str]:
    return svc.user("acme", user_id).synced.ids


# -- the seven held-out scenarios ------------------------------------------------------------


def test_keep_mode_skips_the_users_own_choice_and_then_override_applies_it(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R16: KEEP_USER_CHOICES leaves ana's own SENT (USER_CHOICE_KEPT); OVERRIDE then sets it."""
    first = svc.push("acme", actor_id=ADMIN, defaults=BOTH)
    later(clock)
    svc.set_selection("acme", "ana", LabelSet(["INBOX"]))  # ana turns SENT off herself
    later(clock)

    kept = svc.push("acme", actor_id=ADMIN, defaults=BOTH, mode=PushMode.KEEP_USER_CHOICES)

    assert frozenset({"INBOX"}) == synced(svc, "ana")
    assert PushMode.KEEP_USER_CHOICES is kept.job.mode
    assert 1 == kept.counts.user_choice_kept
    assert 0 == kept.counts.changes
    assert [("ana", SENT, SkipReason.USER_CHOICE_KEPT)] == [
        (s.user_id, s.label, s.reason)
        for s in svc.changes(kept.job.id).skipped
        if s.reason is SkipReason.USER_CHOICE_KEPT
    ]
    ana = svc.user("acme", "ana")
    assert (Origin.PUSH, first.job.id) == (ana.provenance.inbox.origin, ana.provenance.inbox.job_id)
    assert Origin.USER is ana.provenance.sent.origin
    later(clock)

    override = svc.push("acme", actor_id=ADMIN, defaults=BOTH)

    assert frozenset({"INBOX", "SENT"}) == synced(svc, "ana")
    assert (1, 1) == (override.counts.users_changed, override.counts.selected)
    sent = svc.user("acme", "ana").provenance.sent
    assert (Origin.PUSH, override.job.id, override.job.started_at) == (
        sent.origin,
        sent.job_id,
        sent.at,
    )


def test_new_users_only_covers_only_users_no_push_or_onboarding_covered(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R16: NEW_USERS_ONLY sets the defaults for the newcomer and leaves covered Users alone."""
    svc.push("acme", actor_id=ADMIN, defaults=INBOX_ONLY)
    later(clock)
    svc.add_user("acme", person("dee"))
    before = {u.id: u for u in svc.tenant("acme").users if u.id != "dee"}
    later(clock)

    report = svc.push("acme", actor_id=ADMIN, defaults=BOTH, mode=PushMode.NEW_USERS_ONLY)

    assert frozenset({"INBOX", "SENT"}) == synced(svc, "dee")
    assert svc.user("acme", "dee").provenance.covered
    assert before == {u.id: u for u in svc.tenant("acme").users if u.id != "dee"}
    assert (1, 2) == (report.counts.users_changed, report.counts.selected)
    assert ["dee"] == list(svc.changes(report.job.id).changed_user_ids)
    assert BOTH == svc.tenant("acme").defaults


def test_a_locked_label_is_refused_and_unlocked_labels_stay_free(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R17: ana may not change the locked INBOX (nothing written); SENT and her labels are free."""
    svc.push("acme", actor_id=ADMIN, defaults=INBOX_ONLY)
    later(clock)
    locks = svc.set_locks("acme", actor_id=ADMIN, locked=frozenset({INBOX}))
    before = svc.user("acme", "ana")

    with pytest.raises(LabelLocked) as caught:
        svc.set_selection("acme", "ana", LabelSet(["SENT"]))  # drops the locked INBOX

    assert isinstance(caught.value, PermissionDenied)
    assert "INBOX" in str(caught.value)
    assert before == svc.user("acme", "ana")
    freed = svc.set_selection("acme", "ana", LabelSet(["INBOX", "SENT", "Label_7"]))
    assert frozenset({"INBOX", "SENT", "Label_7"}) == freed.synced.ids
    assert Origin.USER is freed.provenance.sent.origin
    assert locks is not None
    assert (frozenset({INBOX}), ADMIN, T0 + dt.timedelta(hours=1)) == (
        locks.labels,
        locks.actor_id,
        locks.at,
    )
    assert locks == svc.tenant("acme").locks
    rows = {row.label.name: row for row in svc.email_tab("acme", "ana").rows}
    assert (True, False) == (rows["Inbox"].managed, rows["Sent"].managed)
    assert "Managed by your admin" in str(svc.email_tab("acme", "ana"))


def test_reset_gives_the_user_the_tenants_defaults_with_origin_reset(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R18: after her own change, ana resets to the defaults; both labels' origin is RESET."""
    svc.push("acme", actor_id=ADMIN, defaults=INBOX_ONLY)
    later(clock)
    svc.set_selection("acme", "ana", LabelSet(["SENT", "Label_7"]))
    later(clock)

    reset = svc.reset_to_defaults("acme", "ana")

    assert frozenset({"INBOX", "Label_7"}) == reset.synced.ids
    assert reset == svc.user("acme", "ana")
    at = T0 + dt.timedelta(hours=2)
    assert (Origin.RESET, at) == (reset.provenance.inbox.origin, reset.provenance.inbox.at)
    assert (Origin.RESET, at) == (reset.provenance.sent.origin, reset.provenance.sent.at)
    assert not svc.drift("acme").user_ids or "ana" not in svc.drift("acme").user_ids
    with pytest.raises(PermissionDenied):
        svc.reset_to_defaults("acme", "ben", actor_id="ana")  # not ana's to reset


def test_drift_lists_who_differs_from_the_defaults_and_why(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R18: the User's change, never covered, no mailbox, label missing, each with its reason."""
    svc.push("acme", actor_id=ADMIN, defaults=BOTH)
    later(clock)
    svc.set_selection("acme", "ana", LabelSet(["INBOX"]))
    svc.add_user("acme", person("dee"))
    svc.add_user("acme", person("eve", mailbox=False))
    svc.add_user(
        "acme",
        User(
            id="fay",
            email="fay@acme.io",
            mailbox=Mailbox(
                provider=Provider.GMAIL,
                address="fay@acme.io",
                labels=(gmail_label("INBOX", "Inbox"),),
            ),
            synced=LabelSet(["INBOX"]),
        ),
    )

    drifted = svc.drift("acme")

    assert [
        ("ana", SENT, DriftReason.USER_CHANGE),
        ("dee", INBOX, DriftReason.NEVER_COVERED),
        ("dee", SENT, DriftReason.NEVER_COVERED),
        ("eve", None, DriftReason.NO_MAILBOX),
        ("fay", SENT, DriftReason.LABEL_MISSING),
    ] == [(row.user_id, row.label, row.reason) for row in drifted]
    assert ("ana", "dee", "eve", "fay") == drifted.user_ids
    assert "USER_CHANGE" == drifted.to_records()[0]["reason"]
    html = drifted._repr_html_()
    assert html is not None
    assert "NEVER_COVERED" in html
    assert "dee" in html


def test_reverting_an_older_push_restores_only_the_labels_it_still_owns(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R19: reverting push 1 under push 2 restores what only push 1 set; defaults stay push 2's."""
    # Push 1: INBOX on for everyone, and cy's SENT off. Push 2: SENT on for everyone.
    first = svc.push("acme", actor_id=ADMIN, defaults=INBOX_ONLY)
    later(clock)
    second = svc.push("acme", actor_id=ADMIN, defaults=BOTH)
    later(clock)

    report = svc.revert_push(first.job.id, actor_id=ADMIN)

    # INBOX was set by push 1 and nobody since: back off. SENT belongs to push 2: kept,
    # also cy's, which push 1 had turned off (so cy is listed as changed since).
    assert frozenset({"SENT"}) == synced(svc, "ana")
    assert frozenset({"SENT", "Label_7"}) == synced(svc, "ben")
    assert frozenset({"SENT"}) == synced(svc, "cy")
    assert ("admin", "ana", "ben", "cy") == report.reverted
    assert not report.restored_defaults
    tenant = svc.tenant("acme")
    assert (BOTH, second.job.id) == (tenant.defaults, tenant.last_push and tenant.last_push.job_id)
    inbox = svc.user("acme", "ana").provenance.inbox
    assert report.revert is not None
    assert (Origin.REVERT, report.revert.id) == (inbox.origin, inbox.job_id)
    assert ("cy",) == report.changed_since
    assert (4, 4, 1) == (
        report.revert.users_restored,
        report.revert.labels_restored,
        report.revert.users_left_alone,
    )
    with pytest.raises(AlreadyReverted):
        svc.revert_push(first.job.id, actor_id=ADMIN)


def test_reverting_the_latest_push_restores_the_previous_defaults(
    svc: LabelSync, clock: FixedClock
) -> None:
    """R19: after reverting push 2, defaults, last push and onboarding are push 1's again."""
    first = svc.push("acme", actor_id=ADMIN, defaults=BOTH)
    later(clock)
    svc.set_onboarding("acme", actor_id=ADMIN, enabled=True)
    second = svc.push("acme", actor_id=ADMIN, defaults=NEITHER)
    later(clock)
    svc.set_selection("acme", "ben", LabelSet(["INBOX", "Label_7"]))  # ben's own INBOX
    later(clock)

    report = svc.revert_push(second.job.id, actor_id=ADMIN)

    tenant = svc.tenant("acme")
    assert BOTH == tenant.defaults
    assert tenant.last_push is not None
    assert first.job.id == tenant.last_push.job_id
    assert report.restored_defaults
    assert frozenset({"INBOX", "SENT"}) == synced(svc, "ana")
    # ben's own INBOX is left as he set it; his SENT, still push 2's, is restored.
    assert frozenset({"INBOX", "SENT", "Label_7"}) == synced(svc, "ben")
    assert Origin.USER is svc.user("acme", "ben").provenance.inbox.origin
    assert ("ben",) == report.changed_since
    assert ("admin", "ana", "ben", "cy") == report.reverted
    onboarded = svc.add_user("acme", person("dee"))
    assert frozenset({"INBOX", "SENT"}) == onboarded.synced.ids  # push 1's defaults again
    assert Origin.ONBOARDING is svc.user("acme", "dee").provenance.inbox.origin
    with pytest.raises(AlreadyReverted) as caught:
        svc.revert_push(second.job.id, actor_id=ADMIN)
    assert "already reverted" in str(caught.value)
