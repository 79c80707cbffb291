"""Presets (R21): named admin policies (defaults, locks, mode), assigned one per group.

Pure values and edits. A tenant's `PresetBook` holds its presets and the
assignments of groups to them in precedence order: a User gets the preset of
the *first* assignment whose group it holds (`PresetBook.for_user`). Every
edit returns a new book one version on, and what changed as a `PresetEvent`
for the audit trail; `labelsync.service.LabelSync` checks who may edit and
stores the book with compare-and-set on its version.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import field, frozen

from labelsync import _validate as v
from labelsync.audience import Audience
from labelsync.exceptions import AlreadyExists, InvalidInput, NotFound
from labelsync.model import Defaults, SystemLabel, User
from labelsync.policy import PushMode

__all__ = [
    "Assignment",
    "Preset",
    "PresetAction",
    "PresetBook",
    "PresetEvent",
    "event_doc",
    "event_from_doc",
]


def _locks(value: object) -> frozenset[SystemLabel]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput("Preset.locks", value, "must be a collection of SystemLabel")
    locks = frozenset(value)
    for label in locks:
        if not isinstance(label, SystemLabel):
            raise InvalidInput("Preset.locks", label, "is not one of INBOX, SENT")
    return locks


@frozen
class Preset:
    """A named admin policy (R21): defaults to push, labels to lock (R17), the push mode (R16)."""

    name: str = field(validator=v.non_empty_str)
    defaults: Defaults = field(validator=v.instance_of(Defaults, what="a Defaults"))
    locks: frozenset[SystemLabel] = field(default=frozenset(), converter=_locks)
    mode: PushMode = field(default=PushMode.OVERRIDE, validator=v.member_of(PushMode))

    def describe(self) -> str:
        """A short phrase, e.g. ``Inbox on, Sent off; locked: Sent; OVERRIDE``."""
        locked = ", ".join(label.title for label in SystemLabel if label in self.locks)
        return f"{self.defaults.describe()}; locked: {locked or 'none'}; {self.mode.name}"


@frozen
class Assignment:
    """Group `group` gets preset `preset` (by name)."""

    group: str = field(validator=v.non_empty_str)
    preset: str = field(validator=v.non_empty_str)


class PresetAction(enum.Enum):
    """What an admin did to a tenant's presets; each is one audited `PresetEvent`."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    RENAMED = "RENAMED"
    DELETED = "DELETED"
    ASSIGNED = "ASSIGNED"
    UNASSIGNED = "UNASSIGNED"
    APPLIED = "APPLIED"
    """The preset was pushed to its groups now (the event names the push job)."""


@frozen
class PresetEvent:
    """One audited change of a tenant's presets: who, when, what, and the book version after."""

    action: PresetAction = field(validator=v.member_of(PresetAction))
    actor_id: str = field(validator=v.non_empty_str)
    at: dt.datetime = field(validator=v.aware_datetime)
    preset: str = field(validator=v.non_empty_str)
    detail: str = ""
    version: int = field(default=0, validator=v.count)

    def __str__(self) -> str:
        when = self.at.isoformat(timespec="seconds")
        detail = f": {self.detail}" if self.detail else ""
        return f"{when} {self.actor_id} {self.action.name.lower()} {self.preset!r}{detail}"


def _presets(value: object) -> tuple[Preset, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput("PresetBook.presets", value, "must be a collection of Preset")
    return tuple(value)


def _assignments(value: object) -> tuple[Assignment, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput("PresetBook.assignments", value, "must be a collection of Assignment")
    return tuple(value)


@frozen
class PresetBook:
    """A tenant's presets and group assignments (R21); `version` moves on with every edit.

    Preset names are unique; a group has at most one assignment, and every
    assignment names a preset of the book. `assignments` is the precedence order.
    """

    presets: tuple[Preset, ...] = field(
        default=(),
        converter=_presets,
        validator=v.each_instance_of(Preset, what="a Preset"),
    )
    assignments: tuple[Assignment, ...] = field(
        default=(),
        converter=_assignments,
        validator=v.each_instance_of(Assignment, what="an Assignment"),
    )
    version: int = field(default=0, validator=v.count)

    def __attrs_post_init__(self) -> None:
        names: set[str] = set()
        for index, preset in enumerate(self.presets):
            if preset.name in names:
                raise InvalidInput(
                    f"PresetBook.presets[{index}].name", preset.name, "is a duplicate preset name"
                )
            names.add(preset.name)
        groups: set[str] = set()
        for index, assignment in enumerate(self.assignments):
            where = f"PresetBook.assignments[{index}]"
            if assignment.group in groups:
                raise InvalidInput(
                    f"{where}.group", assignment.group, "already has a preset; one per group"
                )
            if assignment.preset not in names:
                raise InvalidInput(f"{where}.preset", assignment.preset, "is not a preset")
            groups.add(assignment.group)

    # -- reading ----------------------------------------------------------------------

    def preset(self, name: str) -> Preset:
        """The preset called `name`; `NotFound` if there is none."""
        for preset in self.presets:
            if preset.name == name:
                return preset
        raise NotFound("preset", name, "is not a preset of this tenant")

    def groups_of(self, name: str) -> tuple[str, ...]:
        """The groups assigned preset `name`, in precedence order."""
        self.preset(name)
        return tuple(a.group for a in self.assignments if a.preset == name)

    def for_groups(self, groups: Iterable[str]) -> Preset | None:
        """The preset of the first assignment whose group is in `groups`, or None (R21)."""
        held = frozenset(groups)
        for assignment in self.assignments:
            if assignment.group in held:
                return self.preset(assignment.preset)
        return None

    def for_user(self, user: User) -> Preset | None:
        """The preset `user` gets: that of its first matching group, or None."""
        return self.for_groups(user.groups)

    def audience(self, name: str) -> Audience:
        """The audience of preset `name`: the members of its groups; `InvalidInput` if none."""
        groups = self.groups_of(name)
        if not groups:
            raise InvalidInput("preset", name, "is assigned to no group; assign it first")
        return Audience.groups(groups)

    # -- edits: each returns the book one version on -------------------------------------

    def _next(self, **changes: object) -> PresetBook:
        return attrs.evolve(self, version=self.version + 1, **changes)

    def recorded(self, name: str) -> PresetBook:
        """This book one version on, unchanged: for an audited event that edits nothing."""
        self.preset(name)
        return self._next()

    def creating(self, preset: Preset) -> PresetBook:
        """This book with `preset` added; `AlreadyExists` if its name is taken."""
        if not isinstance(preset, Preset):
            raise InvalidInput("preset", preset, "is not a Preset")
        if any(p.name == preset.name for p in self.presets):
            raise AlreadyExists("preset.name", preset.name, "is already a preset of this tenant")
        return self._next(presets=(*self.presets, preset))

    def replacing(self, preset: Preset) -> PresetBook:
        """This book with the preset of the same name replaced by `preset` (new defaults etc.)."""
        if not isinstance(preset, Preset):
            raise InvalidInput("preset", preset, "is not a Preset")
        self.preset(preset.name)
        return self._next(
            presets=tuple(preset if p.name == preset.name else p for p in self.presets)
        )

    def renaming(self, name: str, new_name: str) -> PresetBook:
        """This book with preset `name` called `new_name`, its assignments following it."""
        old = self.preset(name)
        v.check_name("new_name", new_name)
        if new_name != name and any(p.name == new_name for p in self.presets):
            raise AlreadyExists("new_name", new_name, "is already a preset of this tenant")
        renamed = attrs.evolve(old, name=new_name)
        return self._next(
            presets=tuple(renamed if p.name == name else p for p in self.presets),
            assignments=tuple(
                attrs.evolve(a, preset=new_name) if a.preset == name else a
                for a in self.assignments
            ),
        )

    def deleting(self, name: str) -> PresetBook:
        """This book without preset `name` and without its assignments."""
        self.preset(name)
        return self._next(
            presets=tuple(p for p in self.presets if p.name != name),
            assignments=tuple(a for a in self.assignments if a.preset != name),
        )

    def assigning(self, group: str, name: str, *, position: object = None) -> PresetBook:
        """This book with `group` assigned preset `name` at `position` of the precedence order.

        A group already assigned is moved (one preset per group); `position`
        None puts it last, 0 first.
        """
        v.check_name("group", group)
        self.preset(name)
        if position is not None and (
            isinstance(position, bool) or not isinstance(position, int) or position < 0
        ):
            raise InvalidInput("position", position, "must be a whole number >= 0 or None")
        rest = [a for a in self.assignments if a.group != group]
        at = len(rest) if not isinstance(position, int) else min(position, len(rest))
        rest.insert(at, Assignment(group=group, preset=name))
        return self._next(assignments=tuple(rest))

    def unassigning(self, group: str) -> PresetBook:
        """This book with `group` assigned no preset; `NotFound` if it had none."""
        if not any(a.group == group for a in self.assignments):
            raise NotFound("group", group, "is assigned no preset")
        return self._next(assignments=tuple(a for a in self.assignments if a.group != group))

    def to_doc(self) -> dict[str, object]:
        """This book (without its version) as JSON-ready data, as the stores keep it."""
        return {
            "presets": [
                {
                    "name": p.name,
                    "defaults": {"inbox": p.defaults.inbox, "sent": p.defaults.sent},
                    "locks": sorted(label.value for label in p.locks),
                    "mode": p.mode.value,
                }
                for p in self.presets
            ],
            "assignments": [{"group": a.group, "preset": a.preset} for a in self.assignments],
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], version: int) -> PresetBook:
        """The book `to_doc` wrote, at `version`."""
        return cls(
            presets=[
                Preset(
                    name=p["name"],
                    defaults=Defaults(**p["defaults"]),
                    locks=frozenset(SystemLabel(label) for label in p["locks"]),
                    mode=PushMode(p["mode"]),
                )
                for p in doc["presets"]
            ],
            assignments=[
                Assignment(group=a["group"], preset=a["preset"]) for a in doc["assignments"]
            ],
            version=version,
        )


def event_doc(event: PresetEvent) -> dict[str, object]:
    """`event` as JSON-ready data, as the stores keep it."""
    return {
        "action": event.action.value,
        "actor_id": event.actor_id,
        "at": event.at.isoformat(),
        "preset": event.preset,
        "detail": event.detail,
        "version": event.version,
    }


def event_from_doc(doc: Mapping[str, Any]) -> PresetEvent:
    """The event `event_doc` wrote."""
    return PresetEvent(
        action=PresetAction(doc["action"]),
        actor_id=doc["actor_id"],
        at=dt.datetime.fromisoformat(doc["at"]),
        preset=doc["preset"],
        detail=doc["detail"],
        version=doc["version"],
    )
