"""The rules, and only the rules: what a push does to one User, and to a whole roster.

Pure functions over values: no I/O, no clock. `apply_defaults` is its own
preview (B1), and the push job runs the same per-User rule batch by batch.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from attrs import frozen

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

__all__ = ["UserOutcome", "apply_defaults", "apply_to_user", "email_tab", "onboard"]


def _checked(defaults: Defaults) -> tuple[bool, bool]:
    if not isinstance(defaults, Defaults):
        raise InvalidInput("defaults", defaults, "is not a Defaults")
    return defaults.inbox, defaults.sent


_INBOX, _SENT = SystemLabel.INBOX, SystemLabel.SENT
_NO_MAILBOX, _LABEL_MISSING = SkipReason.NO_MAILBOX, SkipReason.LABEL_MISSING


@frozen
class UserOutcome:
    """One User after a push, and what the push did to them."""

    user: User
    changed: tuple[LabelChange, ...]
    skipped: tuple[Skip, ...]


def apply_to_user(user: User, defaults: Defaults) -> UserOutcome:
    """Push `defaults` to one User: checked labels selected, unchecked deselected, rest kept."""
    if not isinstance(user, User):
        raise InvalidInput("user", user, "is not a User")
    after, changes, skips = apply_rows((user,), defaults)
    return UserOutcome(
        user=after[0],
        changed=tuple(LabelChange(*row) for row in changes),
        skipped=tuple(Skip(*row) for row in skips),
    )


def apply_rows(
    users: Iterable[User], defaults: Defaults
) -> tuple[list[User], list[ChangeRow], list[SkipRow]]:
    """The rule (R3, R4, R5, R7) mapped over `users`: the Users after, and the change and skip rows.

    The one place the rule is written: `apply_defaults` runs it over a whole
    roster, the push job over one batch, `apply_to_user` over one User. A User
    whose selection does not change is returned as the same object; the rows
    are tuples, so a million Users cost no per-User result objects.
    """
    inbox_on, sent_on = _checked(defaults)
    after: list[User] = []
    changes: list[ChangeRow] = []
    skips: list[SkipRow] = []
    keep, change, skip = after.append, changes.append, skips.append
    flips: dict[tuple[frozenset[str], tuple[str, ...]], LabelSet] = {}
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
        if inbox_id is None:
            skip((user.id, _INBOX, _LABEL_MISSING))
        elif (inbox_id in synced) is not inbox_on:
            change((user.id, _INBOX, inbox_id, inbox_on))
            flipped = (inbox_id,)
        if sent_id is None:
            skip((user.id, _SENT, _LABEL_MISSING))
        elif (sent_id in synced) is not sent_on:
            change((user.id, _SENT, sent_id, sent_on))
            flipped = (*flipped, sent_id)
        if flipped:
            # Users who had the same selection and flip the same ids share the
            # new selection: fewer objects to build here and to hold after.
            key = (synced, flipped)
            after_selection = flips.get(key)
            if after_selection is None:
                after_selection = flips[key] = selection._flipped(flipped)
            keep(user._with_selection(after_selection))
        else:
            keep(user)
    return after, changes, skips


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


def _apply_many(users: Sequence[User], defaults: Defaults) -> tuple[list[User], Changes]:
    if len(users) >= PAUSE_COLLECTOR_FROM:
        # The loop builds only immutable, acyclic values: the collector has
        # nothing to find in them.
        with _collector_paused():
            after, changes, skips = apply_rows(users, defaults)
    else:
        after, changes, skips = apply_rows(users, defaults)
    return after, Changes(change_rows=tuple(changes), skip_rows=tuple(skips), users=len(after))


def apply_defaults(
    tenant: Tenant, defaults: Defaults, *, audience: Audience | None = None
) -> tuple[Tenant, Changes]:
    """Push `defaults` to every User of `tenant` (R6); return the new tenant and the diff.

    Pure, so it is also the what-if preview (B1). Users whose selection does not
    change are the same objects in the new tenant, and the tenant's checkbox
    settings become `defaults`. With an `audience` (R20) only its members are
    the roster: every other User stays as it is, and `Changes.users` counts the members.
    """
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    audience = _audience(audience)
    if not audience.narrowed:
        after, changes = _apply_many(tenant.users, defaults)
        return tenant._with_pushed(after, defaults), changes
    positions = [i for i, user in enumerate(tenant.users) if audience.includes(user)]
    members_after, changes = _apply_many([tenant.users[i] for i in positions], defaults)
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


def onboard(tenant: Tenant, user_id: str) -> tuple[Tenant, Changes]:
    """Give one User the defaults of the tenant's last finished push (B4)."""
    if tenant.last_push is None:
        raise InvalidInput(
            "Tenant.last_push",
            None,
            f"means tenant {tenant.id!r} has no finished push to onboard with",
        )
    user = tenant.user(user_id)
    after, changes = _apply_many((user,), tenant.last_push.defaults)
    if after[0] is user:
        return tenant, changes
    return tenant._replacing(after[0]), changes


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


def email_tab(user: User) -> EmailTab:
    """What `user` sees on their Email tab (R8): INBOX, SENT, then their labels, each marked.

    Only a User holding EMAIL_SYNC can see the tab; anyone else gets `PermissionDenied`.
    """
    if not isinstance(user, User):
        raise InvalidInput("user", user, "is not a User")
    if not user.can(Permission.EMAIL_SYNC):
        raise PermissionDenied(
            f"user_id: {user.id!r} lacks {Permission.EMAIL_SYNC.name} and cannot see the Email tab"
        )
    if user.mailbox is None:
        return EmailTab(user_id=user.id, address=None, rows=())
    rows = [
        EmailTabRow(label=label, selected=label.id in user.synced, note=_note(label, user.synced))
        for label in user.mailbox.labels
        # A label the provider hides is listed only when it syncs (or holds a
        # role the admin pushes), so the tab never hides what is synced.
        if not label.hidden or label.id in user.synced or label.system is not None
    ]
    return EmailTab(
        user_id=user.id, address=user.mailbox.address, rows=tuple(sorted(rows, key=_tab_order))
    )
