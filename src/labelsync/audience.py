"""Who a push goes to (R20): everyone, the members of some groups, or listed Users.

A pure value. The roster of a push is the audience's members at the instant
the push starts (R6): `Audience.members` picks them from a tenant's Users in
roster order, and the stores select the same Users in the store
(`labelsync.ports.PushExecution.start_job`).
"""

from __future__ import annotations

import enum
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from attrs import field, frozen

from labelsync import _validate as v
from labelsync.exceptions import InvalidInput

if TYPE_CHECKING:
    from labelsync.model import User

__all__ = ["EVERYONE", "Audience", "AudienceKind", "name_set"]


def name_set(where: str, value: object, what: str) -> frozenset[str]:
    """`value` as a frozenset of names (group names, User ids), each checked like an id.

    A lone string is refused (it would become a set of its characters), and so
    is any item that is not a non-empty string; the error names `where[i]`.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput(where, value, f"must be a collection of {what}, not one string")
    items = list(value)
    for index, item in enumerate(items):
        v.check_name(f"{where}[{index}]", item)
    return frozenset(items)


class AudienceKind(enum.Enum):
    """The three kinds of audience (R20)."""

    EVERYONE = "EVERYONE"
    """Every User of the tenant: version 1's behaviour and the default."""
    GROUPS = "GROUPS"
    """The Users holding at least one of the named groups."""
    USERS = "USERS"
    """The listed User ids."""


def _groups(value: object) -> frozenset[str]:
    return name_set("Audience.group_names", value, "group names")


def _users(value: object) -> frozenset[str]:
    return name_set("Audience.user_ids", value, "User ids")


@frozen(repr=False)
class Audience:
    """Who a push goes to (R20); build one with `everyone()`, `groups(...)` or `users(...)`."""

    kind: AudienceKind = field(default=AudienceKind.EVERYONE, validator=v.member_of(AudienceKind))
    group_names: frozenset[str] = field(default=frozenset(), converter=_groups)
    user_ids: frozenset[str] = field(default=frozenset(), converter=_users)

    def __attrs_post_init__(self) -> None:
        # Exactly the names the kind uses, and at least one: an empty narrowing is a mistake.
        if self.kind is AudienceKind.GROUPS and not self.group_names:
            raise InvalidInput("Audience.group_names", [], "must name at least one group")
        if self.kind is AudienceKind.USERS and not self.user_ids:
            raise InvalidInput("Audience.user_ids", [], "must name at least one User id")
        if self.kind is not AudienceKind.GROUPS and self.group_names:
            raise InvalidInput(
                "Audience.group_names", sorted(self.group_names), f"is unused by {self.kind.name}"
            )
        if self.kind is not AudienceKind.USERS and self.user_ids:
            raise InvalidInput(
                "Audience.user_ids", sorted(self.user_ids), f"is unused by {self.kind.name}"
            )

    @classmethod
    def everyone(cls) -> Audience:
        """Every User of the tenant (the default): a push behaves exactly as in version 1."""
        return _EVERYONE

    @classmethod
    def groups(cls, names: Iterable[str]) -> Audience:
        """The Users holding at least one of `names` in `User.groups`."""
        return cls(kind=AudienceKind.GROUPS, group_names=names)

    @classmethod
    def users(cls, user_ids: Iterable[str]) -> Audience:
        """The Users with these ids."""
        return cls(kind=AudienceKind.USERS, user_ids=user_ids)

    @property
    def narrowed(self) -> bool:
        """True unless this is everyone."""
        return self.kind is not AudienceKind.EVERYONE

    def includes(self, user: User) -> bool:
        """Whether `user` is a member of this audience."""
        if self.kind is AudienceKind.EVERYONE:
            return True
        if self.kind is AudienceKind.GROUPS:
            return not self.group_names.isdisjoint(user.groups)
        return user.id in self.user_ids

    def members(self, users: Sequence[User]) -> list[User]:
        """The members among `users`, in their order."""
        if self.kind is AudienceKind.EVERYONE:
            return list(users)
        return [user for user in users if self.includes(user)]

    def check_users_known(self, tenant_id: str, known: Container[str]) -> None:
        """Refuse listed User ids that are not Users of the tenant: `InvalidInput` naming the
        first (sorted). `known` holds the tenant's User ids, or a `Tenant`."""
        for user_id in sorted(self.user_ids):
            if user_id not in known:
                raise InvalidInput(
                    "audience.user_ids", user_id, f"is not a User of tenant {tenant_id!r}"
                )

    def describe(self) -> str:
        """A short phrase for reports: ``everyone``, ``groups sales, support``, ``Users u1, u2``."""
        if self.kind is AudienceKind.EVERYONE:
            return "everyone"
        if self.kind is AudienceKind.GROUPS:
            noun = "group" if len(self.group_names) == 1 else "groups"
            return f"{noun} {', '.join(sorted(self.group_names))}"
        count = len(self.user_ids)
        if count <= 3:
            return f"Users {', '.join(sorted(self.user_ids))}"
        return f"{count} listed Users"

    def __repr__(self) -> str:
        if self.kind is AudienceKind.EVERYONE:
            return "Audience.everyone()"
        if self.kind is AudienceKind.GROUPS:
            return f"Audience.groups({sorted(self.group_names)!r})"
        return f"Audience.users({sorted(self.user_ids)!r})"

    def to_doc(self) -> dict[str, list[str]] | None:
        """This audience as JSON-ready data: None for everyone, else ``{"groups": [...]}`` or
        ``{"users": [...]}``."""
        if self.kind is AudienceKind.EVERYONE:
            return None
        if self.kind is AudienceKind.GROUPS:
            return {"groups": sorted(self.group_names)}
        return {"users": sorted(self.user_ids)}

    @classmethod
    def from_doc(cls, doc: object) -> Audience:
        """The audience `to_doc` wrote; `InvalidInput` naming the key for anything else."""
        if doc is None:
            return _EVERYONE
        if not isinstance(doc, Mapping) or len(doc) != 1:
            raise InvalidInput(
                "audience", doc, 'must be null, {"groups": [...]} or {"users": [...]}'
            )
        ((key, names),) = doc.items()
        if key == "groups":
            return cls.groups(names)
        if key == "users":
            return cls.users(names)
        raise InvalidInput("audience", doc, 'must be null, {"groups": [...]} or {"users": [...]}')


_EVERYONE = Audience()
EVERYONE = _EVERYONE
"""`Audience.everyone()`, for use as a field default."""
