"""The values labelsync reasons about: labels, mailboxes, Users, tenants and defaults.

Every value is an immutable, slotted attrs class validated at construction, so
a value that exists is a valid one; a new state is a new value.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import attrs
from attrs import field, frozen

from labelsync import _validate as v
from labelsync._provenance import COVERED, UNKNOWN, Provenance
from labelsync.audience import Audience, name_set
from labelsync.exceptions import InvalidInput, UnknownUser

__all__ = [
    "GUESSED_ROLE_NOTE",
    "HIDDEN_NOTE",
    "MANAGED_NOTE",
    "SYNC_ENABLED_NOTE",
    "Defaults",
    "EmailTab",
    "EmailTabRow",
    "Label",
    "LabelSet",
    "Locks",
    "Mailbox",
    "Permission",
    "Provider",
    "PushCounts",
    "PushRecord",
    "SkipReason",
    "SystemLabel",
    "Tenant",
    "User",
]


class SystemLabel(enum.Enum):
    """A label every mailbox has, recognised by its role and never by its display name (R2, R9)."""

    INBOX = "INBOX"
    SENT = "SENT"

    @property
    def title(self) -> str:
        """The English name the admin's checkbox shows."""
        return self.name.title()


class Permission(enum.Enum):
    """A workflow permission of a User's role."""

    ADMIN_ACCESS = "ADMIN_ACCESS"
    """May push defaults to every User (R1)."""
    EMAIL_SYNC = "EMAIL_SYNC"
    """May see their own Email tab (R8)."""


class Provider(enum.Enum):
    """Where a mailbox lives; decides how system labels are recognised (B3)."""

    GMAIL = "GMAIL"
    MICROSOFT = "MICROSOFT"
    IMAP = "IMAP"
    OTHER = "OTHER"


class SkipReason(enum.Enum):
    """Why a push could not cover a User or one of their labels (R7)."""

    NO_MAILBOX = "NO_MAILBOX"
    """The User has no connected mailbox; the whole User is skipped."""
    LABEL_MISSING = "LABEL_MISSING"
    """The mailbox has no label with that system role; only that label is skipped."""
    USER_CHOICE_KEPT = "USER_CHOICE_KEPT"
    """A KEEP_USER_CHOICES push left a label the User set themself (R16); only that label."""
    USER_REMOVED = "USER_REMOVED"
    """The User was removed while the push ran; nothing was written for them (R14)."""


def _good_id(value: object) -> bool:
    """Whether `value` is an id under the input policy (`_validate.is_id`); inlined for speed."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= v.MAX_ID_LENGTH
        and "\x00" not in value
        and (value.isascii() or v.is_id(value))
        and not value.isspace()
    )


def _check_label_id(label_id: object) -> None:
    if not _good_id(label_id):
        raise InvalidInput("LabelSet.ids", label_id, label_id_problem(label_id))


def label_id_problem(label_id: object) -> str:
    """Why `label_id` cannot be a label id (under the input policy)."""
    problem = v.text_problem(label_id, limit=v.MAX_ID_LENGTH) or "is not a label id"
    return "must be a non-empty string label id" if problem.startswith("must be a non") else problem


def _label_ids(value: object) -> frozenset[str]:
    if isinstance(value, str | bytes):
        # A lone string would silently become a set of its characters.
        raise InvalidInput(
            "LabelSet.ids", value, "must be a collection of label ids, not one string"
        )
    if isinstance(value, frozenset) and all(_good_id(i) for i in value):
        return value  # already a valid frozenset of ids: no copy
    try:
        ids: frozenset[object] = frozenset(value)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidInput("LabelSet.ids", value, "must be a collection of label ids") from None
    for label_id in ids:
        _check_label_id(label_id)
    return cast(frozenset[str], ids)


@frozen(repr=False)
class LabelSet:
    """The ids of the labels a User has selected for sync.

    Ids, not names: a label is the same label after the provider renames it.
    Ids that the User's mailbox no longer has are allowed and kept (see `User`).
    """

    ids: frozenset[str] = field(default=frozenset(), converter=_label_ids)

    @classmethod
    def _trusted(cls, ids: frozenset[str]) -> LabelSet:
        """`LabelSet(ids)` without attrs' `__init__`: for stores that read many selections.

        It checks the ids exactly as the validated path does (the same
        converter), so it refuses everything `LabelSet(ids)` refuses.
        """
        new = _new(cls)
        _set_label_set_ids(new, _label_ids(ids))
        return new

    def _flipped(self, label_ids: tuple[str, ...]) -> LabelSet:
        """This selection with each of `label_ids` added if absent and removed if present.

        The rule's hot path: only the flipped ids are new, and they are checked
        as `LabelSet(...)` checks ids, so the result is one the validated path accepts.
        """
        for label_id in label_ids:
            _check_label_id(label_id)
        new = _new(LabelSet)
        _set_label_set_ids(new, self.ids.symmetric_difference(label_ids))
        return new

    def __contains__(self, label_id: object) -> bool:
        return label_id in self.ids

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"LabelSet({sorted(self.ids)!r})"

    def with_ids(self, *label_ids: str) -> LabelSet:
        """This selection plus `label_ids`."""
        return LabelSet(self.ids.union(label_ids))

    def without(self, *label_ids: str) -> LabelSet:
        """This selection minus `label_ids`."""
        return LabelSet(self.ids.difference(label_ids))


def _collection(field: str, value: object, what: str) -> Iterable[Any]:
    # Converters run before validators, so they must refuse bad input themselves.
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput(field, value, f"must be a collection of {what}")
    return value


# Validated label tuples by value, so that Mailboxes with equal labels share one
# tuple (and its Labels): a tenant loaded from outside data builds a fresh tuple
# of fresh Labels per User, and most mailboxes of a provider look alike.
# Bounded: cleared when full, which costs sharing, never correctness.
_LAYOUTS: dict[tuple[Label, ...], tuple[Label, ...]] = {}
_LAYOUTS_MAX = 4096


def _labels_tuple(labels: Iterable[Label]) -> tuple[Label, ...]:
    labels = tuple(_collection("Mailbox.labels", labels, "Label"))
    # Checked here, not in a validator: the role index is built before validators run.
    for index, label in enumerate(labels):
        if not isinstance(label, Label):
            raise InvalidInput(f"Mailbox.labels[{index}]", label, "is not a Label")
    shared = _LAYOUTS.get(labels)
    if shared is not None:
        return shared  # equal to a tuple already validated below
    _distinct_labels(labels)
    if len(_LAYOUTS) >= _LAYOUTS_MAX:
        _LAYOUTS.clear()
    return _LAYOUTS.setdefault(labels, labels)


def _permission_set(permissions: Iterable[Permission]) -> frozenset[Permission]:
    shared = _PERMISSION_SETS.get(permissions) if type(permissions) is frozenset else None
    if shared is not None:
        return shared  # a valid set already (the keys hold only Permissions): no copy
    try:
        permissions = frozenset(_collection("User.permissions", permissions, "Permission"))
    except TypeError:  # an unhashable item cannot be a Permission
        raise InvalidInput("User.permissions", permissions, "must be a set of Permission") from None
    # Few sets of Permissions exist: Users share them instead of one each.
    return _PERMISSION_SETS.get(permissions, permissions)


# Few distinct sets of groups exist in a tenant: Users share one frozenset each.
_GROUP_SETS: dict[frozenset[str], frozenset[str]] = {}


def _group_set(groups: object) -> frozenset[str]:
    if groups == frozenset():
        return frozenset()
    names = name_set("User.groups", groups, "group names")
    shared = _GROUP_SETS.get(names)
    if shared is not None:
        return shared
    if len(_GROUP_SETS) >= _LAYOUTS_MAX:
        _GROUP_SETS.clear()
    return _GROUP_SETS.setdefault(names, names)


def _users_tuple(users: Iterable[User]) -> tuple[User, ...]:
    return tuple(_collection("Tenant.users", users, "User"))


@frozen(repr=False)
class Label:
    """A label (Gmail) or folder (Outlook, IMAP) of one mailbox.

    `system` is the role for INBOX/SENT and None for the User's own labels; the
    role, not `name`, is what a push goes by. `guessed` marks a role a host
    opted to guess from the name because the server does not mark it (IMAP
    without SPECIAL-USE), so the guess stays visible; `hidden` marks a label the
    provider hides from its own label list (Gmail ``labelHide``, Graph ``isHidden``).
    """

    id: str = field(validator=v.an_id)
    name: str = field(validator=v.non_empty_str)
    system: SystemLabel | None = field(
        default=None, validator=v.member_of(SystemLabel, optional=True)
    )
    guessed: bool = field(default=False, kw_only=True)
    hidden: bool = field(default=False, validator=v.strict_bool, kw_only=True)

    @guessed.validator
    def _guess_needs_a_role(self, attribute: attrs.Attribute[bool], value: object) -> None:
        # One validator, not two: stores build a Label per stored label.
        if value is False:
            return
        v.strict_bool(self, attribute, value)
        if self.system is None:
            raise InvalidInput(
                "Label.guessed", value, f"needs a system role, and label {self.id!r} has none"
            )

    @property
    def is_system(self) -> bool:
        """True for INBOX and SENT."""
        return self.system is not None

    def __repr__(self) -> str:
        # The flags are shown only when set: most labels have neither.
        flags = "".join(f", {name}=True" for name in ("guessed", "hidden") if getattr(self, name))
        return f"Label(id={self.id!r}, name={self.name!r}, system={self.system!r}{flags})"


def _distinct_labels(labels: tuple[Label, ...]) -> None:
    seen_ids: set[str] = set()
    seen_roles: set[SystemLabel] = set()
    for index, label in enumerate(labels):
        where = f"Mailbox.labels[{index}]"
        if label.id in seen_ids:
            raise InvalidInput(f"{where}.id", label.id, "is a duplicate label id in this mailbox")
        if label.system is not None and label.system in seen_roles:
            raise InvalidInput(
                f"{where}.system",
                label.system.name,
                "is held by another label of this mailbox; a role belongs to one label",
            )
        seen_ids.add(label.id)
        if label.system is not None:
            seen_roles.add(label.system)


_ROLE_PAIRS: dict[tuple[str | None, str | None], tuple[str | None, str | None]] = {}


def _role_ids(mailbox: Mailbox) -> tuple[str | None, str | None]:
    inbox = sent = None
    for label in mailbox.labels:
        if label.system is SystemLabel.INBOX:
            inbox = label.id
        elif label.system is SystemLabel.SENT:
            sent = label.id
    pair = (inbox, sent)
    if len(_ROLE_PAIRS) >= _LAYOUTS_MAX:
        _ROLE_PAIRS.clear()
    return _ROLE_PAIRS.setdefault(pair, pair)


@frozen
class Mailbox:
    """A User's connected mail account with its labels/folders."""

    provider: Provider = field(validator=v.member_of(Provider))
    address: str = field(validator=v.non_empty_str)
    labels: tuple[Label, ...] = field(default=(), converter=_labels_tuple)
    # Role -> label id, computed once: a push asks it twice per User.
    _roles: tuple[str | None, str | None] = field(
        init=False, repr=False, eq=False, default=attrs.Factory(_role_ids, takes_self=True)
    )

    def _at(self, address: str) -> Mailbox:
        """This mailbox's provider and labels at another address, validating only the address.

        Stores read thousands of mailboxes that share one layout: they validate
        the layout once and copy it per row. The address is checked as
        `Mailbox(...)` checks it, so a blank one is refused here too.
        """
        v.check_text("Mailbox.address", address)
        new = _new(Mailbox)
        _set_mailbox_provider(new, self.provider)
        _set_mailbox_address(new, address)
        _set_mailbox_labels(new, self.labels)
        _set_mailbox_roles(new, self._roles)
        return new

    def label_id(self, role: SystemLabel) -> str | None:
        """The id of the label with `role`, or None when this mailbox lacks it."""
        return self._roles[0] if role is SystemLabel.INBOX else self._roles[1]

    def label(self, role: SystemLabel) -> Label | None:
        """The label with `role`, or None when this mailbox lacks it."""
        return next((lb for lb in self.labels if lb.system is role), None)

    def get(self, label_id: str) -> Label | None:
        """The label with `label_id`, or None."""
        return next((lb for lb in self.labels if lb.id == label_id), None)


@frozen
class User:
    """A person in the tenant, their connected mailbox and what they sync.

    `synced` may name ids the mailbox does not have (a label deleted at the
    provider, or a mailbox since disconnected): such stale ids are kept as they
    are and never touched by a push (R5). `version` grows by one on every change
    of `synced`, so stores can detect a concurrent edit. `groups` are the
    host's team or role names of the User (R20): an audience picks Users by them.
    """

    id: str = field(validator=v.an_id)
    email: str = field(validator=v.non_empty_str)
    permissions: frozenset[Permission] = field(
        default=frozenset(),
        converter=_permission_set,
        validator=v.each_instance_of(Permission, what="a Permission"),
    )
    mailbox: Mailbox | None = field(
        default=None, validator=v.optional_instance_of(Mailbox, what="a Mailbox")
    )
    synced: LabelSet = field(
        default=LabelSet(), validator=v.instance_of(LabelSet, what="a LabelSet")
    )
    version: int = field(default=0, validator=v.version)
    provenance: Provenance = field(
        default=UNKNOWN, validator=v.instance_of(Provenance, what="a Provenance")
    )
    """Who set INBOX and SENT last, and whether a push or onboarding ever covered them (R15)."""
    groups: frozenset[str] = field(default=frozenset(), converter=_group_set)

    def can(self, permission: Permission) -> bool:
        """Whether this User's role holds `permission`."""
        return permission in self.permissions

    def _with_selection(self, synced: LabelSet) -> User:
        """`with_selection` without `__init__`: every other field is copied from this valid User.

        `synced` is checked as `User(...)` checks it (a `LabelSet` is valid by
        construction), so this refuses everything the validated path refuses.
        """
        if not isinstance(synced, LabelSet):
            raise InvalidInput("User.synced", synced, "is not a LabelSet")
        new = _new(User)
        _set_user_id(new, self.id)
        _set_user_email(new, self.email)
        _set_user_permissions(new, self.permissions)
        _set_user_mailbox(new, self.mailbox)
        _set_user_synced(new, synced)
        _set_user_version(new, self.version + 1)
        _set_user_provenance(new, self.provenance)
        _set_user_groups(new, self.groups)
        return new

    def _with_state(self, synced: LabelSet, provenance: Provenance, *, bump: bool) -> User:
        """This User with a new selection and provenance; the version moves on if `bump`.

        Only marking a User covered leaves the version alone: their selection did not change.
        """
        new = self._with_selection(synced)
        if not bump:
            _set_user_version(new, self.version)
        _set_user_provenance(new, provenance)
        return new

    def _covered(self) -> User:
        """This User marked covered by a push or onboarding, nothing else changed."""
        if self.provenance.covered:
            return self
        provenance = (
            COVERED if self.provenance is UNKNOWN else attrs.evolve(self.provenance, covered=True)
        )
        return self._with_state(self.synced, provenance, bump=False)

    def with_selection(self, synced: LabelSet) -> User:
        """This User after they (or a push) set `synced`; the version moves on."""
        return self._with_selection(synced)


def _slot_setter(cls: type, name: str) -> Callable[[object, Any], None]:
    setter: Callable[[object, Any], None] = getattr(cls, name).__set__
    return setter


# The slots' own setters, fetched once. Calling a slot descriptor's __set__ is
# about half the cost of object.__setattr__, and a push may build a million Users.
_new = object.__new__
_set_label_set_ids = _slot_setter(LabelSet, "ids")
_set_mailbox_provider = _slot_setter(Mailbox, "provider")
_set_mailbox_address = _slot_setter(Mailbox, "address")
_set_mailbox_labels = _slot_setter(Mailbox, "labels")
_set_mailbox_roles = _slot_setter(Mailbox, "_roles")
_set_user_id = _slot_setter(User, "id")
_set_user_email = _slot_setter(User, "email")
_set_user_permissions = _slot_setter(User, "permissions")
_set_user_mailbox = _slot_setter(User, "mailbox")
_set_user_synced = _slot_setter(User, "synced")
_set_user_version = _slot_setter(User, "version")
_set_user_provenance = _slot_setter(User, "provenance")
_set_user_groups = _slot_setter(User, "groups")

# Every set of Permissions, each once: `User.permissions` holds one of these.
_PERMISSION_SETS: dict[frozenset[Permission], frozenset[Permission]] = {
    frozenset(chosen): frozenset(chosen)
    for chosen in (
        [p for p, on in zip(Permission, mask, strict=True) if on]
        for mask in itertools.product((False, True), repeat=len(Permission))
    )
}


@frozen
class Defaults:
    """The admin's two checkboxes: each system label checked or not; both are pushed (R2)."""

    inbox: bool = field(validator=v.strict_bool)
    sent: bool = field(validator=v.strict_bool)

    def checked(self, label: SystemLabel) -> bool:
        """Whether the checkbox of `label` is checked."""
        return self.inbox if label is SystemLabel.INBOX else self.sent

    def items(self) -> tuple[tuple[SystemLabel, bool], ...]:
        """Each system label with its checkbox, INBOX first."""
        return ((SystemLabel.INBOX, self.inbox), (SystemLabel.SENT, self.sent))

    def describe(self) -> str:
        """A short human phrase, e.g. ``Inbox on, Sent off``."""
        return ", ".join(f"{label.title} {'on' if on else 'off'}" for label, on in self.items())


@frozen(repr=False)
class PushCounts:
    """What a push did, counted: Users changed, labels flipped, skips by reason (R7, R11)."""

    users_changed: int = field(default=0, validator=v.count)
    selected: int = field(default=0, validator=v.count)
    deselected: int = field(default=0, validator=v.count)
    no_mailbox: int = field(default=0, validator=v.count)
    label_missing: int = field(default=0, validator=v.count)
    user_choice_kept: int = field(default=0, validator=v.count)
    user_removed: int = field(default=0, validator=v.count)
    """Roster Users removed from the directory before the push reached them (R14)."""

    def __repr__(self) -> str:
        # A count that only some pushes can have is shown when it is not 0, so the
        # repr of every other push reads as before.
        shown = (
            f"{a.name}={getattr(self, a.name)!r}"
            for a in attrs.fields(PushCounts)
            if a.name not in _SHOWN_WHEN_SET or getattr(self, a.name)
        )
        return f"PushCounts({', '.join(shown)})"

    def __add__(self, other: PushCounts) -> PushCounts:
        if not isinstance(other, PushCounts):
            return NotImplemented
        return PushCounts(
            users_changed=self.users_changed + other.users_changed,
            selected=self.selected + other.selected,
            deselected=self.deselected + other.deselected,
            no_mailbox=self.no_mailbox + other.no_mailbox,
            label_missing=self.label_missing + other.label_missing,
            user_choice_kept=self.user_choice_kept + other.user_choice_kept,
            user_removed=self.user_removed + other.user_removed,
        )

    @property
    def changes(self) -> int:
        """Label changes in all: selections plus deselections."""
        return self.selected + self.deselected

    @property
    def skipped(self) -> int:
        """Skips in all, whatever the reason."""
        return self.no_mailbox + self.label_missing + self.user_choice_kept + self.user_removed

    def skipped_by_reason(self) -> Mapping[SkipReason, int]:
        """Skips counted per reason (B2); USER_REMOVED only when the push met a removed User."""
        counted = {
            SkipReason.NO_MAILBOX: self.no_mailbox,
            SkipReason.LABEL_MISSING: self.label_missing,
            SkipReason.USER_CHOICE_KEPT: self.user_choice_kept,
        }
        if self.user_removed:
            counted[SkipReason.USER_REMOVED] = self.user_removed
        return counted


_SHOWN_WHEN_SET = frozenset({"user_removed"})
"""`PushCounts` fields its repr leaves out while they are 0."""


@frozen
class PushRecord:
    """The audit record of a finished push (R11); `audience` says who it went to (R20)."""

    job_id: str = field(validator=v.an_id)
    actor_id: str = field(validator=v.an_id)
    defaults: Defaults = field(validator=v.instance_of(Defaults, what="a Defaults"))
    started_at: dt.datetime = field(validator=v.aware_datetime)
    finished_at: dt.datetime = field(validator=v.aware_datetime)
    roster_size: int = field(validator=v.count)
    counts: PushCounts = field(validator=v.instance_of(PushCounts, what="a PushCounts"))
    audience: Audience = field(
        default=Audience.everyone(), validator=v.instance_of(Audience, what="an Audience")
    )


def _locked_set(value: object) -> frozenset[SystemLabel]:
    items = _collection("Locks.labels", value, "SystemLabels")
    labels = frozenset(items)
    for label in labels:
        if not isinstance(label, SystemLabel):
            raise InvalidInput("Locks.labels", label, "is not a SystemLabel (INBOX or SENT)")
    return labels


@frozen
class Locks:
    """The labels an admin locked for a tenant (R17), who set the locks and when (audit)."""

    labels: frozenset[SystemLabel] = field(converter=_locked_set)
    actor_id: str = field(validator=v.non_empty_str)
    at: dt.datetime = field(validator=v.aware_datetime)

    def __contains__(self, label: object) -> bool:
        return label in self.labels


@frozen(repr=False)
class Tenant:
    """One organisation: its Users, the admin's checkbox settings and the last push.

    User ids are unique within a tenant; `user(id)` finds one in O(1).
    """

    id: str = field(validator=v.an_id)
    name: str = field(validator=v.non_empty_str)
    users: tuple[User, ...] = field(
        default=(), converter=_users_tuple, validator=v.each_instance_of(User, what="a User")
    )
    defaults: Defaults | None = field(
        default=None, validator=v.optional_instance_of(Defaults, what="a Defaults")
    )
    last_push: PushRecord | None = field(
        default=None, validator=v.optional_instance_of(PushRecord, what="a PushRecord")
    )
    onboard_new_users: bool = field(default=False, validator=v.strict_bool)
    locks: Locks | None = field(
        default=None, validator=v.optional_instance_of(Locks, what="a Locks")
    )
    """The labels Users may not change themselves (R17), with who locked them and when."""
    _index: Mapping[str, int] = field(init=False, eq=False, factory=dict)

    @property
    def locked(self) -> frozenset[SystemLabel]:
        """The locked system labels; empty when nothing is locked."""
        return frozenset() if self.locks is None else self.locks.labels

    def __attrs_post_init__(self) -> None:
        index = {user.id: position for position, user in enumerate(self.users)}
        if len(index) != len(self.users):
            seen: set[str] = set()
            for position, user in enumerate(self.users):
                if user.id in seen:
                    raise InvalidInput(
                        f"Tenant.users[{position}].id", user.id, "is a duplicate user id"
                    )
                seen.add(user.id)
        object.__setattr__(self, "_index", index)

    def __repr__(self) -> str:
        return (
            f"Tenant(id={self.id!r}, name={self.name!r}, users=<{len(self.users)} Users>, "
            f"defaults={self.defaults!r}, onboard_new_users={self.onboard_new_users!r}, "
            f"last_push={self.last_push!r})"
        )

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._index

    def _repr_html_(self) -> str | None:
        from labelsync._repr import html  # rendered by the display layer, registered by type

        return html(self)

    def user(self, user_id: str) -> User:
        """The User with `user_id`; `UnknownUser` if there is none."""
        try:
            return self.users[self._index[user_id]]
        except (KeyError, TypeError):
            raise UnknownUser(user_id, self.id) from None

    def _copy(self, **changes: Any) -> Tenant:
        # For rosters whose ids and order are unchanged: validating and indexing
        # a million Users again would cost more than the push itself.
        new = object.__new__(Tenant)
        for attribute in attrs.fields(Tenant):
            value = changes.get(attribute.name, getattr(self, attribute.name))
            object.__setattr__(new, attribute.name, value)
        return new

    def _with_pushed(self, users: list[User], defaults: Defaults) -> Tenant:
        """This tenant after a push: `users` is the roster position by position, ids unchanged."""
        return self._copy(users=tuple(users), defaults=defaults)

    def _replacing(self, user: User) -> Tenant:
        """This tenant with the User of the same id replaced by `user`."""
        users = list(self.users)
        users[self._index[user.id]] = user
        return self._copy(users=tuple(users))

    def with_users(self, users: Iterable[User]) -> Tenant:
        """This tenant with its roster replaced by `users` (validated again)."""
        return attrs.evolve(self, users=tuple(users))

    def adding(self, user: User) -> Tenant:
        """This tenant with `user` added at the end of the roster."""
        return attrs.evolve(self, users=(*self.users, user))


@frozen
class EmailTabRow:
    """One line of a User's Email tab: a label, whether it syncs, and the note shown beside it.

    The note joins, with "; ", that sync is enabled, that the label's role was
    guessed from its name, and that the provider hides it; None when none applies.
    """

    label: Label
    selected: bool
    note: str | None
    set_by: str | None = None
    """Who set INBOX/SENT last, e.g. "Set by your admin on 1 Dec 2026" (R15); None if unknown."""
    managed: bool = False
    """True when the admin locked this label: the User cannot change it (R17)."""

    def remarks(self) -> str:
        """The note, who set it and the lock, as the text tab shows them after the label."""
        parts = [f"({self.note})"] if self.note else []
        extra = [text for text in (MANAGED_NOTE if self.managed else None, self.set_by) if text]
        if extra:
            parts.append(f"[{'; '.join(extra)}]")
        return "  ".join(parts)


SYNC_ENABLED_NOTE = "Sync is enabled for this label"
MANAGED_NOTE = "Managed by your admin"
"""Shown beside a label the admin locked (R17)."""
GUESSED_ROLE_NOTE = "Recognised as {role} by its name: your mail server does not mark it"
"""The note beside a label whose role was guessed from its name (`Label.guessed`)."""
HIDDEN_NOTE = "Hidden in your mail app"
"""The note beside a label the provider hides (`Label.hidden`), shown only when it syncs."""


@frozen
class EmailTab:
    """What a User sees on the Email tab of their profile (R8)."""

    user_id: str
    address: str | None
    rows: tuple[EmailTabRow, ...]

    @property
    def selected(self) -> tuple[Label, ...]:
        """The labels shown as selected, in display order."""
        return tuple(row.label for row in self.rows if row.selected)

    def __str__(self) -> str:
        if self.address is None:
            return f"{self.user_id}: no mailbox connected"
        lines = [f"{self.user_id} <{self.address}>"]
        for row in self.rows:
            mark = "[x]" if row.selected else "[ ]"
            remarks = row.remarks()
            lines.append(f"  {mark} {row.label.name}{'  ' + remarks if remarks else ''}")
        return "\n".join(lines)
