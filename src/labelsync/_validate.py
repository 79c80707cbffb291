"""Attrs validators that raise `InvalidInput` naming ``Class.field`` and the bad value."""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable
from typing import Any, Final, cast

import attrs

from labelsync.exceptions import InvalidInput

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def field_name(instance: object, attribute: attrs.Attribute[Any]) -> str:
    """The name an error shows for a field: ``Class.field``."""
    return f"{type(instance).__name__}.{attribute.name}"


def non_empty_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept a string with at least one non-space character, under the input policy (`text`)."""
    text(instance, attribute, value)


def strict_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept only True or False (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise InvalidInput(field_name(instance, attribute), value, "must be True or False")


def count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept a whole number in 0..`MAX_INT64` (bool is refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(field_name(instance, attribute), value, "must be a whole number >= 0")
    if value > MAX_INT64:
        raise InvalidInput(
            field_name(instance, attribute), value, "must fit a signed 64-bit number (< 2**63)"
        )


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


# -- the input policy: one set of limits for every value, service argument and store ------------

MAX_ID_LENGTH: Final = 255
"""Longest id (tenant, User, label, job, actor): fits PostgreSQL's index rows on every store."""
MAX_TEXT_LENGTH: Final = 4096
"""Longest other text (a name, an email address, a mailbox address)."""
MAX_INT64: Final = 2**63 - 1
"""Largest whole number stored: a signed 64-bit column."""
MAX_VERSION: Final = 2**62
"""Largest `User.version` a value may be created with, so it can still grow for ever after."""
MAX_BATCH_SIZE: Final = 100_000
"""Most Users per committed batch."""
MAX_LEASE_SECONDS: Final = 7 * 24 * 3600
"""Longest lease a runner or worker may take: a week."""


def text_problem(value: object, *, limit: int = MAX_TEXT_LENGTH) -> str | None:
    """Why `value` is not acceptable text (None if it is).

    Text is a non-blank `str` of valid Unicode (no lone surrogates), without
    NUL, of at most `limit` characters: what every store can hold the same way.
    """
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit} are allowed"
    if "\x00" in value:
        return "contains a NUL character, which no store keeps"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (it holds a lone surrogate)"
    return None


def check_text(field: str, value: object, *, limit: int = MAX_TEXT_LENGTH) -> str:
    """`value` if it is acceptable text, else `InvalidInput` naming `field`."""
    problem = text_problem(value, limit=limit)
    if problem is not None:
        raise InvalidInput(field, value, problem)
    return cast(str, value)


def check_id(field: str, value: object) -> str:
    """`value` if it is an acceptable id (text of at most `MAX_ID_LENGTH`), else `InvalidInput`."""
    return check_text(field, value, limit=MAX_ID_LENGTH)


def is_id(value: object) -> bool:
    """Whether `value` could name something stored: stores answer "unknown" for anything else."""
    return text_problem(value, limit=MAX_ID_LENGTH) is None


def check_count(field: str, value: object, *, maximum: int = MAX_INT64, minimum: int = 0) -> int:
    """A whole number in ``minimum..maximum`` (bool refused), else `InvalidInput`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(field, value, f"must be a whole number >= {minimum}")
    if value > maximum:
        raise InvalidInput(field, value, f"must be at most {maximum}")
    return value


def check_batch_size(value: object, field: str = "batch_size") -> int:
    """A batch size: a whole number in 1..`MAX_BATCH_SIZE`."""
    return check_count(field, value, minimum=1, maximum=MAX_BATCH_SIZE)


def check_seconds(field: str, value: object, *, maximum: float) -> float:
    """A finite number of seconds > 0 and at most `maximum`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInput(field, value, "must be a finite number of seconds > 0")
    if value > maximum:
        raise InvalidInput(field, value, f"must be at most {maximum:g} seconds")
    return float(value)


def check_lease(value: object, field: str = "lease_seconds") -> float:
    """A lease: finite, > 0 and at most `MAX_LEASE_SECONDS` (a week)."""
    return check_seconds(field, value, maximum=MAX_LEASE_SECONDS)


def text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept text under the input policy (`text_problem`), at most `MAX_TEXT_LENGTH`."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(field_name(instance, attribute), value, problem)


def an_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept an id under the input policy: text of at most `MAX_ID_LENGTH` characters."""
    problem = text_problem(value, limit=MAX_ID_LENGTH)
    if problem is not None:
        raise InvalidInput(field_name(instance, attribute), value, problem)


def version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Accept a version a store can hold: a whole number in 0..`MAX_INT64`.

    A new User is held to `MAX_VERSION` where it enters a store (`check_new_version`),
    so the versions its edits and pushes add always fit.
    """
    count(instance, attribute, value)


def check_new_version(field: str, value: int) -> None:
    """Refuse a version a new User cannot start at: above `MAX_VERSION` (2**62)."""
    if value > MAX_VERSION:
        raise InvalidInput(
            field, value, f"must be at most 2**62 ({MAX_VERSION}) for a new User, so it can grow"
        )


def check_name(where: str, value: object) -> None:
    """Accept a name a host supplies for a collection item (a group name, a listed User id):
    checked as an id (`check_id`), the error naming `where`."""
    check_id(where, value)
