"""The rules, and only the rules: what a push does to one User, and to a whole roster.

Pure functions over values: no I/O, no clock. `apply_defaults` is its own
preview (B1), and the push job runs the same per-User rule batch by batch.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

from attrs import frozen

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

Plan = tuple[tuple[SystemLabel, bool], ...]


def _plan(defaults: Defaults) -> Plan:
    if not isinstance(defaults, Defaults):
        raise InvalidInput("defaults", defaults, "is not a Defaults")
    return defaults.items()


def _apply(user: User, plan: Plan, changes: list[ChangeRow], skips: list[SkipRow]) -> User:
    """R3, R4, R5, R7 for one User: returns the User after the push (the same object if unchanged).

    Appends what it did to `changes` and `skips`, so a roster of a million Users
    costs no per-User result objects.
    """
    mailbox = user.mailbox
    if mailbox is None:
        skips.append((user.id, None, SkipReason.NO_MAILBOX))
        return user
    synced = user.synced.ids
    flipped: list[str] | None = None
    for (label, checked), label_id in zip(plan, mailbox._roles, strict=True):
        if label_id is None:
            skips.append((user.id, label, SkipReason.LABEL_MISSING))
        elif (label_id in synced) is not checked:
            changes.append((user.id, label, label_id, checked))
            if flipped is None:
                flipped = [label_id]
            else:
                flipped.append(label_id)
    if flipped is None:
        return user
    # Each flipped id was selected and is now not, or the reverse: exactly a
    # symmetric difference, built as one new frozenset.
    return user._with_selection(LabelSet._trusted(synced.symmetric_difference(flipped)))


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
    changes: list[ChangeRow] = []
    skips: list[SkipRow] = []
    after = _apply(user, _plan(defaults), changes, skips)
    return UserOutcome(
        user=after,
        changed=tuple(LabelChange(*row) for row in changes),
        skipped=tuple(Skip(*row) for row in skips),
    )


def apply_rows(
    users: Iterable[User], defaults: Defaults
) -> tuple[list[User], list[ChangeRow], list[SkipRow]]:
    """The per-User rule mapped over `users`: the Users after, and the change and skip rows.

    `apply_defaults` runs it over a whole roster, the push job over one batch.
    """
    plan = _plan(defaults)
    changes: list[ChangeRow] = []
    skips: list[SkipRow] = []
    # The loop builds only immutable, acyclic values, so the cyclic collector
    # has nothing to find; left on, it rescans the growing roster again and
    # again and a million-User what-if takes twice as long per User.
    collecting = gc.isenabled()
    gc.disable()
    try:
        after = [_apply(user, plan, changes, skips) for user in users]
    finally:
        if collecting:
            gc.enable()
    return after, changes, skips


def _apply_many(users: Iterable[User], defaults: Defaults) -> tuple[list[User], Changes]:
    after, changes, skips = apply_rows(users, defaults)
    return after, Changes(change_rows=tuple(changes), skip_rows=tuple(skips), users=len(after))


def apply_defaults(tenant: Tenant, defaults: Defaults) -> tuple[Tenant, Changes]:
    """Push `defaults` to every User of `tenant` (R6); return the new tenant and the diff.

    Pure, so it is also the what-if preview (B1). Users whose selection does not
    change are the same objects in the new tenant, and the tenant's checkbox
    settings become `defaults`.
    """
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    after, changes = _apply_many(tenant.users, defaults)
    return tenant._with_pushed(after, defaults), changes


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
