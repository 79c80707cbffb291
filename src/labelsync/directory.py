"""The directory: how a host keeps labelsync's Users true to its own (R13, R14).

Pure functions over values, no I/O and no clock. One function per directory
change (`updated`, `connect_mailbox`, `disconnect_mailbox`, `refresh_labels`,
`remove_user`) and `reconcile`, which brings a whole tenant in step with the
host's roster and reports what it did. `LabelSync.update_user`,
`remove_user` and `sync_directory` run these same functions over the stored
Users, batch by batch, so `reconcile` is also the preview of a sync.

Who owns which field: the host owns everything a User is *given* (email,
permissions, the mailbox and its labels, and any field added later); labelsync
owns `synced` and `version`. A directory change therefore never resets a
User's selection, with one exception, decided here once: when a mailbox's label
list is refreshed, the selected ids of labels the provider deleted (the old
mailbox had them, the new one has not) are dropped, because a provider may hand
the same id to a new label later (IMAP folder names are ids) and it must not
start syncing unasked. Disconnecting a mailbox keeps the selection as it is, so
reconnecting brings it back. The other exception is onboarding (R21): with
onboarding on, a User whose groups change so that the preset of its first
matching group changes gets that preset's defaults in the same write
(`regrouped`); one that leaves every preset gets what a new User without a
preset gets, the last push's defaults (B4), or nothing if there was no push.
Every change moves `version` on by one, so a
writer that read the old User (a push, an edit) notices (R12); a change that
changes nothing is no change and keeps the same object.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from labelsync._provenance import LabelOrigin
from labelsync.exceptions import InvalidInput
from labelsync.model import Defaults, Label, LabelSet, Mailbox, PushRecord, Tenant, User
from labelsync.presets import PresetBook
from labelsync.rules import PREVIEW_STAMP, apply_rows, onboarding_stamp

__all__ = [
    "LABELSYNC_OWNED",
    "DirectoryBatch",
    "DirectoryReport",
    "check_flag",
    "check_roster",
    "connect_mailbox",
    "disconnect_mailbox",
    "host_fields",
    "kept_selection",
    "onboarded",
    "onboarding",
    "plan_batch",
    "reconcile",
    "refresh_labels",
    "regrouped",
    "remove_user",
    "updated",
]

LABELSYNC_OWNED = frozenset({"synced", "version", "provenance"})
"""The `User` fields labelsync owns; every other field is the host's (R13)."""


_host_fields = operator.attrgetter(
    *(a.name for a in attrs.fields(User) if a.name not in LABELSYNC_OWNED)
)


def host_fields(user: User) -> tuple[Any, ...]:
    """The values of the host-owned fields of `user`, to tell whether a directory change is one."""
    values: tuple[Any, ...] = _host_fields(user)
    return values


def _label_ids(mailbox: Mailbox) -> frozenset[str]:
    return frozenset(label.id for label in mailbox.labels)


def kept_selection(current: User, mailbox: Mailbox | None) -> LabelSet:
    """`current`'s selection once its mailbox becomes `mailbox` (R13).

    Kept whole, except that a refreshed label list drops the selected ids of the
    labels the provider deleted. Disconnecting (`mailbox` None) keeps it all.
    """
    if current.mailbox is None or mailbox is None:
        return current.synced
    deleted = _label_ids(current.mailbox) - _label_ids(mailbox)
    if deleted.isdisjoint(current.synced.ids):
        return current.synced
    return LabelSet(current.synced.ids - deleted)


def _check_user(where: str, user: object) -> User:
    if not isinstance(user, User):
        raise InvalidInput(where, user, "is not a User")
    return user


def updated(current: User, host: User) -> User:
    """`current` with every host-owned field taken from `host`; labelsync's fields are kept.

    `host.synced` and `host.version` are ignored: the selection is `current`'s
    (`kept_selection`), and the version moves on by one. Returns `current`
    itself when no host-owned field differs.
    """
    _check_user("current", current)
    _check_user("user", host)
    if host.id != current.id:
        raise InvalidInput(
            "user.id", host.id, f"is not the id of the User updated ({current.id!r})"
        )
    if host_fields(host) == host_fields(current):
        return current
    return attrs.evolve(
        host,
        synced=kept_selection(current, host.mailbox),
        version=current.version + 1,
        provenance=current.provenance,
    )


def connect_mailbox(user: User, mailbox: Mailbox) -> User:
    """`user` with `mailbox` connected (or reconnected, or replaced by another account)."""
    if not isinstance(mailbox, Mailbox):
        raise InvalidInput("mailbox", mailbox, "is not a Mailbox")
    return updated(user, attrs.evolve(user, mailbox=mailbox))


def disconnect_mailbox(user: User) -> User:
    """`user` without a mailbox; the selection is kept, so a reconnect restores it."""
    return updated(user, attrs.evolve(user, mailbox=None))


def refresh_labels(user: User, labels: Iterable[Label]) -> User:
    """`user` after the provider's label list was read again: renamed, added, deleted labels.

    Selected ids of deleted labels are dropped (`kept_selection`). A User
    without a mailbox has no labels to refresh (`InvalidInput`).
    """
    _check_user("user", user)
    if user.mailbox is None:
        raise InvalidInput("user.mailbox", None, f"means User {user.id!r} has no labels to refresh")
    mailbox = Mailbox(provider=user.mailbox.provider, address=user.mailbox.address, labels=labels)
    return updated(user, attrs.evolve(user, mailbox=mailbox))


def remove_user(tenant: Tenant, user_id: str) -> Tenant:
    """`tenant` without the User `user_id` (`UnknownUser` if it has none)."""
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    tenant.user(user_id)
    return attrs.evolve(tenant, users=tuple(u for u in tenant.users if u.id != user_id))


def onboarding(
    onboard_new_users: bool, last_push: PushRecord | None, defaults: Defaults | None = None
) -> Defaults | None:
    """The defaults a new User gets (B4) when the tenant onboards, else None: the last push's,
    or the tenant's checkboxes `defaults` if that push went to some Users only (R20).

    A User with groups first gets the preset of its first group that has one
    (R21); presets are not part of a `Tenant` value, so `reconcile` takes them
    as its `presets` argument.
    """
    if not onboard_new_users or last_push is None:
        return None
    return defaults if last_push.audience.narrowed else last_push.defaults


def _preset_name(presets: PresetBook, user: User) -> str | None:
    preset = presets.for_user(user) if user.groups else None
    return None if preset is None else preset.name


def regrouped(
    current: User,
    new: User,
    *,
    presets: PresetBook | None,
    onboard_with: Defaults | None,
    stamp: LabelOrigin = PREVIEW_STAMP,
) -> User:
    """`new` (a directory change of `current`) with its new preset's defaults applied (R21).

    `presets` is the tenant's book when the tenant onboards new Users, else None
    (nothing but the host's fields change). When the groups of `new` give it a
    different first-matching preset than `current` had, the defaults of the new
    preset are applied to its selection; when they give it none any more,
    `onboard_with` is (what a new User without a preset gets: the last push's
    defaults, B4), and None keeps the selection. The version is `new`'s: the
    directory change and the preset are one write, one version on. A change that
    keeps the preset (same groups, or groups whose first match is the same
    preset) keeps the selection: the User's own choices since then stay.
    Flipped labels get `stamp` as their origin, without its push for a preset's
    defaults (R15: onboarding, as `add_user` stamps it).
    """
    if presets is None or new is current or new.groups == current.groups:
        return new
    before, after = _preset_name(presets, current), _preset_name(presets, new)
    if before == after:
        return new
    if after is not None:
        defaults: Defaults | None = presets.preset(after).defaults
        stamp = onboarding_stamp(None, stamp.at)
    else:
        defaults = onboard_with
    if defaults is None:
        return new
    # The rule moves the version on when it changes the selection: apply it at the
    # version read, so the directory change and the preset are one step on, not two.
    base = attrs.evolve(new, version=current.version)
    applied = apply_rows((base,), defaults, stamp=stamp)[0][0]
    return new if applied is base else applied


def onboarded(user: User, defaults: Defaults | None, stamp: LabelOrigin = PREVIEW_STAMP) -> User:
    """A new User as it is stored: with `defaults` pushed to it when onboarding is on (B4).

    `defaults` is the last finished push's when the tenant onboards new Users,
    else None (R6: the User gets defaults only from a later push). Flipped labels
    get `stamp` as their origin (R15: `rules.onboarding_stamp` of that push).
    """
    if defaults is None:
        return user
    return apply_rows((user,), defaults, stamp=stamp)[0][0]


def check_flag(name: str, value: object) -> bool:
    """Refuse anything but True or False for the argument `name` (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise InvalidInput(name, value, "must be True or False")
    return value


def check_roster(users: Iterable[User]) -> list[User]:
    """The host's roster as a list; `InvalidInput` naming ``users[i]`` unless every item is a
    User and no id appears twice (which of two should win is not labelsync's to guess)."""
    if isinstance(users, str | bytes | Mapping) or not isinstance(users, Iterable):
        raise InvalidInput("users", users, "must be a collection of Users")
    roster = users if isinstance(users, list) else list(users)
    seen: set[str] = set()
    for index, user in enumerate(roster):
        _check_user(f"users[{index}]", user)
        if user.id in seen:
            raise InvalidInput(f"users[{index}].id", user.id, "appears twice in the roster")
        seen.add(user.id)
    return roster


@frozen
class DirectoryBatch:
    """What reconciling a stretch of the host's roster writes (`plan_batch`).

    `adds` are the new Users as stored (onboarded), in the host's order;
    `writes` the updated Users, each with the version it was read at (for
    compare-and-set); `updated` and `unchanged` the ids, in the host's order.
    """

    adds: tuple[User, ...]
    writes: tuple[tuple[User, int], ...]
    unchanged: tuple[str, ...]

    @property
    def added(self) -> tuple[str, ...]:
        """The ids of the new Users."""
        return tuple(user.id for user in self.adds)

    @property
    def updated(self) -> tuple[str, ...]:
        """The ids of the Users whose host-owned fields changed."""
        return tuple(user.id for user, _ in self.writes)


def plan_batch(
    stored: Mapping[str, User],
    users: Sequence[User],
    *,
    onboard_with: Defaults | None,
    onboard_stamp: LabelOrigin = PREVIEW_STAMP,
    presets: PresetBook | None = None,
) -> DirectoryBatch:
    """Reconcile `users` (the host's) with the `stored` Users of the same ids (R13).

    A User not stored is added, onboarded (B4) with the preset of its first
    matching group in `presets`, else with `onboard_with`, its flips stamped
    `onboard_stamp` (R15; a preset's without the push); a stored one is
    `updated`, and `regrouped` when its groups change its preset (R21); one whose
    host-owned fields are equal is unchanged. `presets` is the tenant's book when
    it onboards new Users, else None.
    """
    adds: list[User] = []
    writes: list[tuple[User, int]] = []
    unchanged: list[str] = []
    for user in users:
        current = stored.get(user.id)
        if current is None:
            preset = presets.for_user(user) if presets is not None and user.groups else None
            if preset is None:
                adds.append(onboarded(user, onboard_with, onboard_stamp))
            else:
                adds.append(
                    onboarded(user, preset.defaults, onboarding_stamp(None, onboard_stamp.at))
                )
            continue
        new = regrouped(
            current,
            updated(current, user),
            presets=presets,
            onboard_with=onboard_with,
            stamp=onboard_stamp,
        )
        if new is current:
            unchanged.append(user.id)
        else:
            writes.append((new, current.version))
    return DirectoryBatch(adds=tuple(adds), writes=tuple(writes), unchanged=tuple(unchanged))


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class DirectoryReport:
    """What a directory sync did: the ids of the Users added, updated, removed and unchanged."""

    added: tuple[str, ...] = field(default=(), converter=_ids)
    updated: tuple[str, ...] = field(default=(), converter=_ids)
    removed: tuple[str, ...] = field(default=(), converter=_ids)
    unchanged: tuple[str, ...] = field(default=(), converter=_ids)

    def __add__(self, other: DirectoryReport) -> DirectoryReport:
        if not isinstance(other, DirectoryReport):
            return NotImplemented
        return DirectoryReport(
            added=self.added + other.added,
            updated=self.updated + other.updated,
            removed=self.removed + other.removed,
            unchanged=self.unchanged + other.unchanged,
        )

    @property
    def changed(self) -> bool:
        """Whether the sync added, updated or removed anybody."""
        return bool(self.added or self.updated or self.removed)

    def counts(self) -> dict[str, int]:
        """How many Users each outcome had."""
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
        }

    def to_dict(self) -> dict[str, object]:
        """The report as plain JSON values: the counts and the ids of each outcome."""
        return {
            "counts": self.counts(),
            "added": list(self.added),
            "updated": list(self.updated),
            "removed": list(self.removed),
            "unchanged": list(self.unchanged),
        }

    def __str__(self) -> str:
        c = self.counts()
        return (
            f"directory sync: {c['added']} added, {c['updated']} updated, "
            f"{c['removed']} removed, {c['unchanged']} unchanged"
        )

    def __repr__(self) -> str:
        return f"<DirectoryReport: {self}>"


def reconcile(
    tenant: Tenant,
    users: Iterable[User],
    *,
    remove_missing: bool = False,
    at: dt.datetime | None = None,
    presets: PresetBook | None = None,
) -> tuple[Tenant, DirectoryReport]:
    """`tenant` brought in step with the host's roster `users`, and what that did (R13).

    New ids are added at the end of the roster in the host's order, onboarded
    as `add_user` would (B4; their labels' origin is ONBOARDING by the last push,
    `at` that time, R15); stored ones get the host-owned fields (`updated`);
    with `remove_missing`, stored Users the host no longer lists are removed.
    Pure, so it previews `LabelSync.sync_directory` (given the service clock's time).

    Presets are not part of a `Tenant` value: pass the tenant's book
    (`LabelSync.presets(tenant_id)`) as `presets` and, with onboarding on, new
    Users get their group's preset and Users whose groups change their preset
    get the new one (`regrouped`, R21), exactly as the sync does. Without it the
    preview knows no presets: it onboards with the last push's defaults only.
    """
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    check_flag("remove_missing", remove_missing)
    if presets is not None and not isinstance(presets, PresetBook):
        raise InvalidInput("presets", presets, "is not a PresetBook")
    roster = check_roster(users)
    onboard_with = onboarding(tenant.onboard_new_users, tenant.last_push, tenant.defaults)
    given: object = at  # as passed, not as typed
    if given is not None and (not isinstance(given, dt.datetime) or given.utcoffset() is None):
        raise InvalidInput("at", given, "must be a datetime with a UTC offset")
    last_push = tenant.last_push
    stamp = PREVIEW_STAMP if last_push is None else onboarding_stamp(last_push.job_id, at)
    stored = {user.id: user for user in tenant.users}
    batch = plan_batch(
        stored,
        roster,
        onboard_with=onboard_with,
        onboard_stamp=stamp,
        presets=presets if tenant.onboard_new_users else None,
    )
    listed = {user.id for user in roster} if remove_missing else set()
    replaced = {user.id: user for user, _ in batch.writes}
    kept: list[User] = []
    removed: list[str] = []
    for user in tenant.users:
        if remove_missing and user.id not in listed:
            removed.append(user.id)
        else:
            kept.append(replaced.get(user.id, user))
    report = DirectoryReport(
        added=batch.added, updated=batch.updated, removed=removed, unchanged=batch.unchanged
    )
    if not report.changed:
        return tenant, report
    return attrs.evolve(tenant, users=(*kept, *batch.adds)), report
