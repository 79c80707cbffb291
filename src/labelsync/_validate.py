"""Attrs validators that raise `InvalidInput` naming ``Class.field`` and the bad value."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import Any

import attrs

from labelsync.exceptions import InvalidInput

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def field_name(instance: object, attribute: attrs.Attribute[Any]) -> str:
    """The name an error shows for a field: ``Class.field``."""
    return f"{type(instance).__name__}.{attribute.name}"


def non_empty_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept a string with at least one non-space character."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field_name(instance, attribute), value, "must be a non-empty string")


def strict_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept only True or False (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise InvalidInput(field_name(instance, attribute), value, "must be True or False")


def count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept a whole number >= 0 (bool is refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(field_name(instance, attribute), value, "must be a whole number >= 0")


def aware_datetime(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept a timezone-aware datetime; a naive one is ambiguous and refused."""
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidInput(
            field_name(instance, attribute), value, "must be a timezone-aware datetime"
        )


def member_of(enum_type: type[enum.Enum], *, optional: bool = False) -> Validator:
    """Accept a member of `enum_type` (or None when `optional`)."""
    names = ", ".join(m.name for m in enum_type)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, enum_type):
            raise InvalidInput(field_name(instance, attribute), value, f"is not one of {names}")

    return check


def each_instance_of(cls: type, *, what: str) -> Validator:
    """Accept an iterable whose every item is a `cls`; the error gives the index."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        for index, item in enumerate(value):
            if not isinstance(item, cls):
                raise InvalidInput(
                    f"{field_name(instance, attribute)}[{index}]", item, f"is not {what}"
                )

    return check


def instance_of(cls: type, *, what: str) -> Validator:
    """Accept a `cls`."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, cls):
            raise InvalidInput(field_name(instance, attribute), value, f"is not {what}")

    return check


def optional_instance_of(cls: type, *, what: str) -> Validator:
    """Accept None or a `cls`."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise InvalidInput(field_name(instance, attribute), value, f"is not {what} or None")

    return check


def check_name(where: str, value: object) -> None:
    """Accept a name a host supplies (a User id, a group name): a string with a non-space character.

    The same test as `non_empty_str`, for items of a collection, named `where`.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(where, value, "must be a non-empty string")
