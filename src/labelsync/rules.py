"""The rules, and only the rules: what a push does to one User, and to a whole roster.

Pure functions over values: no I/O, no clock. `apply_defaults` is its own
preview (B1), and the push job runs the same per-User rule batch by batch.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import attrs
from attrs import frozen

from labelsync._provenance import LabelOrigin, Origin, Provenance
from labelsync.audience import Audience
from labelsync.changes import ChangeRow, Changes, LabelChange, Skip, SkipRow
from labelsync.exceptions import InvalidInput, PermissionDenied
from labelsync.model import (
    GUESSED_ROLE_NOTE,
    HIDDEN_NOTE,
    SYNC_ENABLED_NOTE,
    Defaults,
    EmailTab,
    EmailTabRow,
    Label,
    LabelSet,
    Permission,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.policy import PushMode

__all__ = [
    "PREVIEW_STAMP",
    "UserOutcome",
    "apply_defaults",
    "apply_to_user",
    "check_uncovered",
    "email_tab",
    "onboard",
    "onboarding_stamp",
]


def _checked(defaults: Defaults) -> tuple[bool, bool]:
    if not isinstance(defaults, Defaults):
        raise InvalidInput("defaults", defaults, "is not a Defaults")
    return defaults.inbox, defaults.sent


_INBOX, _SENT = SystemLabel.INBOX, SystemLabel.SENT
_NO_MAILBOX, _LABEL_MISSING = SkipReason.NO_MAILBOX, SkipReason.LABEL_MISSING
_KEPT = SkipReason.USER_CHOICE_KEPT

PREVIEW_STAMP = LabelOrigin(origin=Origin.PUSH)
"""The origin a what-if push gives the labels it flips: a push, without a job id or time."""


@frozen
class UserOutcome:
    """One User after a push, and what the push did to them."""

    user: User
    changed: tuple[LabelChange, ...]
    skipped: tuple[Skip, ...]


def apply_to_user(
    user: User,
    defaults: Defaults,
    *,
    mode: PushMode = PushMode.OVERRIDE,
    stamp: LabelOrigin = PREVIEW_STAMP,
    locked: frozenset[SystemLabel] = frozenset(),
) -> UserOutcome:
    """Push `defaults` to one User: checked labels selected, unchecked deselected, rest kept."""
    if not isinstance(user, User):
        raise InvalidInput("user", user, "is not a User")
    after, changes, skips = apply_rows((user,), defaults, mode=mode, stamp=stamp, locked=locked)
    return UserOutcome(
        user=after[0],
        changed=tuple(LabelChange(*row) for row in changes),
        skipped=tuple(Skip(*row) for row in skips),
    )


def _check_policy(
    mode: object, stamp: object, locked: object
) -> tuple[PushMode, LabelOrigin, frozenset[SystemLabel]]:
    if not isinstance(mode, PushMode):
        raise InvalidInput("mode", mode, f"is not one of {', '.join(m.name for m in PushMode)}")
    if not isinstance(stamp, LabelOrigin):
        raise InvalidInput("stamp", stamp, "is not a LabelOrigin")
    if not isinstance(locked, frozenset) or not all(isinstance(x, SystemLabel) for x in locked):
        raise InvalidInput("locked", locked, "must be a frozenset of SystemLabels")
    return mode, stamp, locked


def apply_rows(
    users: Iterable[User],
    defaults: Defaults,
    *,
    mode: PushMode = PushMode.OVERRIDE,
    stamp: LabelOrigin = PREVIEW_STAMP,
    locked: frozenset[SystemLabel] = frozenset(),
) -> tuple[list[User], list[ChangeRow], list[SkipRow]]:
    """The rule (R3-R5, R7, R15-R17) mapped over `users`: the Users after, and the rows.

    The one place the rule is written: `apply_defaults` runs it over a whole
    roster, the push job over one batch, `apply_to_user` over one User. A User
    the push does not change (selection, provenance) is returned as the same
    object; the rows are tuples, so a million Users cost no per-User result objects.

    Each label a push flips gets `stamp` as its origin (R15); a label it finds
    already as checked keeps its origin. Every User with a mailbox ends up
    covered. `mode` (R16) narrows what a push may flip, except for `locked`
    labels, which every mode applies as OVERRIDE does (R17).
    """
    inbox_on, sent_on = _checked(defaults)
    mode, stamp, locked = _check_policy(mode, stamp, locked)
    if mode is PushMode.OVERRIDE and not locked:
        return _override_rows(users, inbox_on, sent_on, stamp)
    keep_inbox = mode is PushMode.KEEP_USER_CHOICES and _INBOX not in locked
    keep_sent = mode is PushMode.KEEP_USER_CHOICES and _SENT not in locked
    new_only_inbox = mode is PushMode.NEW_USERS_ONLY and _INBOX not in locked
    new_only_sent = mode is PushMode.NEW_USERS_ONLY and _SENT not in locked
    after: list[User] = []
    changes: list[ChangeRow] = []
    skips: list[SkipRow] = []
    flips: dict[tuple[frozenset[str], tuple[str, ...]], LabelSet] = {}
    for user in users:
        provenance = user.provenance
        covered = provenance.covered
        skip_inbox = new_only_inbox and covered
        skip_sent = new_only_sent and covered
        mailbox = user.mailbox
        if mailbox is None:
            if not (skip_inbox and skip_sent):
                skips.append((user.id, None, _NO_MAILBOX))
            after.append(user)
            continue
        inbox_id, sent_id = mailbox._roles
        synced = user.synced.ids
        flipped: tuple[str, ...] = ()
        if not skip_inbox:
            if inbox_id is None:
                skips.append((user.id, _INBOX, _LABEL_MISSING))
            elif (inbox_id in synced) is not inbox_on:
                if keep_inbox and provenance.inbox.origin is Origin.USER:
                    skips.append((user.id, _INBOX, _KEPT))
                else:
                    changes.append((user.id, _INBOX, inbox_id, inbox_on))
                    flipped = (inbox_id,)
                    provenance = attrs.evolve(provenance, inbox=stamp)
        if not skip_sent:
            if sent_id is None:
                skips.append((user.id, _SENT, _LABEL_MISSING))
            elif (sent_id in synced) is not sent_on:
                if keep_sent and provenance.sent.origin is Origin.USER:
                    skips.append((user.id, _SENT, _KEPT))
                else:
                    changes.append((user.id, _SENT, sent_id, sent_on))
                    flipped = (*flipped, sent_id)
                    provenance = attrs.evolve(provenance, sent=stamp)
        if flipped:
            provenance = attrs.evolve(provenance, covered=True)
            key = (synced, flipped)
            selection = flips.get(key)
            if selection is None:
                selection = flips[key] = user.synced._flipped(flipped)
            after.append(user._with_state(selection, provenance, bump=True))
        else:
            after.append(user._covered())
    return after, changes, skips


def _override_rows(
    users: Iterable[User], inbox_on: bool, sent_on: bool, stamp: LabelOrigin
) -> tuple[list[User], list[ChangeRow], list[SkipRow]]:
    """`apply_rows` of an OVERRIDE push without locks: version 1's hot loop, plus provenance."""
    after: list[User] = []
    changes: list[ChangeRow] = []
    skips: list[SkipRow] = []
    keep, change, skip = after.append, changes.append, skips.append
    flips: dict[tuple[frozenset[str], tuple[str, ...]], LabelSet] = {}
    stamped: dict[tuple[Provenance, int], Provenance] = {}
    # Written out for INBOX and SENT rather than looped over `defaults.items()`:
    # this loop is the whole cost of a what-if, and a loop per User doubles it.
    for user in users:
        mailbox = user.mailbox
        if mailbox is None:
            skip((user.id, None, _NO_MAILBOX))
            keep(user)
            continue
        inbox_id, sent_id = mailbox._roles
        selection = user.synced
        synced = selection.ids
        flipped: tuple[str, ...] = ()
        which = 0
        if inbox_id is None:
            skip((user.id, _INBOX, _LABEL_MISSING))
        elif (inbox_id in synced) is not inbox_on:
            change((user.id, _INBOX, inbox_id, inbox_on))
            flipped = (inbox_id,)
            which = 1
        if sent_id is None:
            skip((user.id, _SENT, _LABEL_MISSING))
        elif (sent_id in synced) is not sent_on:
            change((user.id, _SENT, sent_id, sent_on))
            flipped = (*flipped, sent_id)
            which |= 2
        if flipped:
            # Users who had the same selection and flip the same ids share the
            # new selection (and provenance): fewer objects to build and to hold.
            key = (synced, flipped)
            after_selection = flips.get(key)
            if after_selection is None:
                after_selection = flips[key] = selection._flipped(flipped)
            pkey = (user.provenance, which)
            provenance = stamped.get(pkey)
            if provenance is None:
                provenance = stamped[pkey] = _stamped(user.provenance, which, stamp)
            keep(user._with_state(after_selection, provenance, bump=True))
        else:
            keep(user._covered())
    return after, changes, skips


def _stamped(provenance: Provenance, which: int, stamp: LabelOrigin) -> Provenance:
    return Provenance(
        inbox=stamp if which & 1 else provenance.inbox,
        sent=stamp if which & 2 else provenance.sent,
        covered=True,
    )


# From this roster size on, `apply_defaults` pauses the cyclic collector. Below
# it a collection finds a small heap and costs little; above it, left on, the
# collector rescans the growing roster again and again and a million-User
# what-if takes half as long again per User (docs/performance.md).
PAUSE_COLLECTOR_FROM = 50_000

_pause_lock = threading.Lock()
_pausers = 0
_resume = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the process-wide cyclic collector while any caller is inside, then restore it.

    Counted under a lock, so overlapping pauses in several threads end with
    the collector as the first one found it, and none is cut short by another.
    """
    global _pausers, _resume
    with _pause_lock:
        if _pausers == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0 and _resume:
                gc.enable()


def _apply_many(
    users: Sequence[User],
    defaults: Defaults,
    *,
    mode: PushMode = PushMode.OVERRIDE,
    stamp: LabelOrigin = PREVIEW_STAMP,
    locked: frozenset[SystemLabel] = frozenset(),
) -> tuple[list[User], Changes]:
    policy = {"mode": mode, "stamp": stamp, "locked": locked}
    if len(users) >= PAUSE_COLLECTOR_FROM:
        # The loop builds only immutable, acyclic values: the collector has
        # nothing to find in them.
        with _collector_paused():
            after, changes, skips = apply_rows(users, defaults, **policy)  # type: ignore[arg-type]
    else:
        after, changes, skips = apply_rows(users, defaults, **policy)  # type: ignore[arg-type]
    return after, Changes(change_rows=tuple(changes), skip_rows=tuple(skips), users=len(after))


def apply_defaults(
    tenant: Tenant,
    defaults: Defaults,
    *,
    mode: PushMode = PushMode.OVERRIDE,
    stamp: LabelOrigin = PREVIEW_STAMP,
    audience: Audience | None = None,
) -> tuple[Tenant, Changes]:
    """Push `defaults` to every User of `tenant` (R6) in `mode` (R16); the new tenant and the diff.

    Pure, so it is also the what-if preview (B1). Users the push does not
    change are the same objects in the new tenant, and the tenant's checkbox
    settings become `defaults`. The tenant's locked labels are applied in every
    mode (R17). Flipped labels get `stamp` as their origin (R15): a push with
    no job id or time unless a caller (the push job, a test) passes its own.
    With an `audience` (R20) only its members are the roster: every other User
    stays as it is (not even marked covered), and `Changes.users` counts the members.
    """
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    audience = _audience(audience)
    locked = tenant.locked
    if not audience.narrowed:
        after, changes = _apply_many(tenant.users, defaults, mode=mode, stamp=stamp, locked=locked)
        return tenant._with_pushed(after, defaults), changes
    positions = [i for i, user in enumerate(tenant.users) if audience.includes(user)]
    members_after, changes = _apply_many(
        [tenant.users[i] for i in positions], defaults, mode=mode, stamp=stamp, locked=locked
    )
    users = list(tenant.users)
    for position, user in zip(positions, members_after, strict=True):
        users[position] = user
    return tenant._with_pushed(users, defaults), changes


def _audience(audience: object) -> Audience:
    if audience is None:
        return Audience.everyone()
    if not isinstance(audience, Audience):
        raise InvalidInput("audience", audience, "is not an Audience")
    return audience


def onboard(tenant: Tenant, user_id: str, *, force: bool = False) -> tuple[Tenant, Changes]:
    """Give one User the defaults of the tenant's last finished push (B4), origin ONBOARDING.

    Only a User no push or onboarding has covered yet, unless `force`:
    onboarding a covered User again would undo their own changes.
    """
    if tenant.last_push is None:
        raise InvalidInput(
            "Tenant.last_push",
            None,
            f"means tenant {tenant.id!r} has no finished push to onboard with",
        )
    user = tenant.user(user_id)
    check_uncovered(user, force=force)
    after, changes = _apply_many(
        (user,), tenant.last_push.defaults, stamp=onboarding_stamp(tenant.last_push.job_id)
    )
    if after[0] is user:
        return tenant, changes
    return tenant._replacing(after[0]), changes


def onboarding_stamp(job_id: str | None, at: dt.datetime | None = None) -> LabelOrigin:
    """The origin onboarding gives a label: the push whose defaults it applied (None for a
    preset's, R21), and when."""
    return LabelOrigin(origin=Origin.ONBOARDING, job_id=job_id, at=at)


def check_uncovered(user: User, *, force: bool) -> None:
    """Refuse to onboard a User a push or onboarding already covered, unless `force`."""
    if not isinstance(force, bool):
        raise InvalidInput("force", force, "must be True or False")
    if user.provenance.covered and not force:
        raise InvalidInput(
            "user_id",
            user.id,
            "was already covered by a push or onboarding; onboarding again would undo "
            "their own changes (an admin may pass force=True)",
        )


def _tab_order(row: EmailTabRow) -> tuple[int, str]:
    system = row.label.system
    rank = {SystemLabel.INBOX: 0, SystemLabel.SENT: 1}.get(system, 2) if system else 2
    return rank, row.label.name.casefold()


def _note(label: Label, synced: LabelSet) -> str | None:
    parts = []
    if label.id in synced:
        parts.append(SYNC_ENABLED_NOTE)
    if label.guessed and label.system is not None:
        parts.append(GUESSED_ROLE_NOTE.format(role=label.system.title))
    if label.hidden:
        parts.append(HIDDEN_NOTE)
    return "; ".join(parts) or None


def email_tab(user: User, *, locked: frozenset[SystemLabel] = frozenset()) -> EmailTab:
    """What `user` sees on their Email tab (R8): INBOX, SENT, then their labels, each marked.

    INBOX and SENT say who set them last (R15), and the `locked` ones that
    they are managed by the admin (R17). Only a User holding EMAIL_SYNC can
    see the tab; anyone else gets `PermissionDenied`.
    """
    if not isinstance(user, User):
        raise InvalidInput("user", user, "is not a User")
    _check_policy(PushMode.OVERRIDE, PREVIEW_STAMP, locked)
    if not user.can(Permission.EMAIL_SYNC):
        raise PermissionDenied(
            f"user_id: {user.id!r} lacks {Permission.EMAIL_SYNC.name} and cannot see the Email tab"
        )
    if user.mailbox is None:
        return EmailTab(user_id=user.id, address=None, rows=())
    rows = [
        EmailTabRow(
            label=label,
            selected=label.id in user.synced,
            note=_note(label, user.synced),
            set_by=None if label.system is None else user.provenance.of(label.system).describe(),
            managed=label.system is not None and label.system in locked,
        )
        for label in user.mailbox.labels
        # A label the provider hides is listed only when it syncs (or holds a
        # role the admin pushes), so the tab never hides what is synced.
        if not label.hidden or label.id in user.synced or label.system is not None
    ]
    return EmailTab(
        user_id=user.id, address=user.mailbox.address, rows=tuple(sorted(rows, key=_tab_order))
    )
