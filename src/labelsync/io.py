"""JSON snapshots of a tenant: a documented, versioned file format read and written with cattrs.

A snapshot is one JSON object with two keys, ``{"format": 1, "tenant": {...}}``:

``format`` is the version of this layout (an integer; this labelsync reads and
writes 1) and ``tenant`` holds every field of a `Tenant`, so that
``loads(dumps(t)) == t``:

- ``tenant``: ``id``, ``name``, ``users`` (a list), ``defaults`` (``{"inbox":
  bool, "sent": bool}`` or null), ``last_push`` (a push record or null) and
  ``onboard_new_users`` (bool, default false).
- a User: ``id``, ``email``, ``permissions`` (a list of ``ADMIN_ACCESS``,
  ``EMAIL_SYNC``), ``mailbox`` (or null when none is connected), ``synced``
  (the selected label ids), ``version`` (a whole number, default 0) and
  ``groups`` (the User's group names, R20; written only when there are any).
- a mailbox: ``provider`` (``GMAIL``, ``MICROSOFT``, ``IMAP``, ``OTHER``),
  ``address`` and ``labels``; a label: ``id``, ``name`` and ``system``
  (``INBOX``, ``SENT`` or null for the User's own labels), and ``guessed`` and
  ``hidden`` (true or false, default false), written only when true so that a
  snapshot without them stays readable by an older labelsync.
- a push record: ``job_id``, ``actor_id``, ``defaults``, ``started_at`` and
  ``finished_at`` (ISO 8601 with a UTC offset), ``roster_size`` and ``counts``
  (``users_changed``, ``selected``, ``deselected``, ``no_mailbox``,
  ``label_missing``, and ``user_choice_kept`` and ``user_removed``, default 0,
  written only when not 0), and ``audience`` (``{"groups": [...]}`` or
  ``{"users": [...]}``), written only for a push to less than everyone (R20).
- written only when they hold something, so older snapshots read as before:
  a User's ``provenance`` (``inbox`` and ``sent``, each ``{"origin": PUSH |
  USER | ONBOARDING | RESET | REVERT, "job_id": ..., "at": ...}``, and
  ``covered``: true once a push or onboarding reached the User; left out:
  unknown, not covered) and the tenant's ``locks`` (``labels``, ``actor_id``,
  ``at``; left out: nothing locked).

Enums are written by name, sets as sorted lists, and every field is written,
defaults included (a label's flags excepted, see above). On reading, fields
with a default may be left out, unknown fields are refused (a typo must not
silently become a default), and every bad value found is reported at once in an
`InvalidSnapshot` with its path, e.g.
``tenant.users[3].mailbox.labels[0].system: 'SNET' is not one of INBOX, SENT``.
The full reference with an example is ``docs/reference/snapshot-format.md``.

Needs the ``json`` extra (cattrs).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import os
import reprlib
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs

from labelsync._provenance import LabelOrigin, Provenance
from labelsync._validate import MAX_ID_LENGTH, MAX_VERSION, text_problem
from labelsync.audience import Audience
from labelsync.exceptions import InvalidInput, MissingExtra
from labelsync.model import Label, LabelSet, PushCounts, PushRecord, Tenant, User, label_id_problem

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "SNAPSHOT_FORMAT",
    "InvalidSnapshot",
    "dump",
    "dumps",
    "from_dict",
    "load",
    "loads",
    "to_dict",
    "users_from_list",
]

SNAPSHOT_FORMAT = 1
"""The version of the snapshot layout this labelsync reads and writes."""

_ROOT = "(top level)"

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxdict = 4
_short.maxlevel = 2


class InvalidSnapshot(InvalidInput):
    """Raised when a JSON snapshot cannot be read; `problems` gives each bad value with its path."""

    problems: tuple[str, ...]
    source: str | None

    def __init__(self, problems: Iterable[str], *, source: str | None = None) -> None:
        self.problems = tuple(problems) or ("(unknown problem)",)
        self.source = source
        self.field = "snapshot"
        self.value = source
        self.problem = "; ".join(self.problems)
        where = f"snapshot {source}" if source else "snapshot"
        if len(self.problems) == 1:
            message = f"{where}: {self.problems[0]}"
        else:
            listed = "".join(f"\n  {problem}" for problem in self.problems)
            message = f"{where} has {len(self.problems)} problems:{listed}"
        # InvalidInput formats one field and value; a snapshot can have many.
        super(InvalidInput, self).__init__(message)


class _Bad(Exception):
    """A value the format refuses; the walker adds the path where it was found."""

    def __init__(self, value: object, problem: str) -> None:
        super().__init__(value, problem)
        self.value = value
        self.problem = problem


# -- writing ---------------------------------------------------------------------------------


def to_dict(tenant: Tenant) -> dict[str, Any]:
    """The snapshot of `tenant` as plain JSON-ready data: ``{"format": 1, "tenant": {...}}``."""
    if not isinstance(tenant, Tenant):
        raise InvalidInput("tenant", tenant, "is not a Tenant")
    return {"format": SNAPSHOT_FORMAT, "tenant": _converter().unstructure(tenant, Tenant)}


def dumps(tenant: Tenant) -> str:
    """The snapshot of `tenant` as JSON text: indented, one label per line, UTF-8 names kept."""
    return _pretty(to_dict(tenant), "") + "\n"


def dump(tenant: Tenant, path: str | os.PathLike[str]) -> None:
    """Write the snapshot of `tenant` to the file at `path` (UTF-8), replacing it."""
    # The whole text is built first, so a tenant that cannot be written leaves the file as it was.
    Path(path).write_text(dumps(tenant), encoding="utf-8")


# One C-encoder call per flat object or list: calling json.dumps per value made
# a 10,000-User snapshot take seconds.
_INLINE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def _pretty(value: object, indent: str) -> str:
    # json.dumps(indent=2) spreads every label over five lines; an object or list
    # holding only plain values reads better on one line, so a User fits on a screen.
    if isinstance(value, dict) and not _flat(value.values()):
        inner = indent + "  "
        body = ",\n".join(
            f"{inner}{_INLINE.encode(key)}: {_pretty(item, inner)}" for key, item in value.items()
        )
        return f"{{\n{body}\n{indent}}}"
    if isinstance(value, list) and not _flat(value):
        inner = indent + "  "
        body = ",\n".join(f"{inner}{_pretty(item, inner)}" for item in value)
        return f"[\n{body}\n{indent}]"
    return _INLINE.encode(value)


def _flat(items: Iterable[object]) -> bool:
    return all(not isinstance(item, dict | list) for item in items)


# -- reading ---------------------------------------------------------------------------------


def from_dict(document: object, *, source: str | None = None) -> Tenant:
    """The `Tenant` in a parsed snapshot; `InvalidSnapshot` lists every bad value with its path."""
    converter = _converter()  # first: MissingExtra before anything else
    import cattrs

    if not isinstance(document, dict):
        raise InvalidSnapshot(
            [f"{_ROOT}: {_short.repr(document)} must be a JSON object with 'format' and 'tenant'"],
            source=source,
        )
    problems = list(_frame_problems(document))
    if problems:
        raise InvalidSnapshot(problems, source=source)
    try:
        tenant: Tenant = converter.structure(document["tenant"], Tenant)
    except (cattrs.BaseValidationError, _Bad, InvalidInput) as error:
        raise InvalidSnapshot(_problems(error, "tenant", None), source=source) from None
    except RecursionError:
        raise InvalidSnapshot([_TOO_DEEP], source=source) from None
    too_big = [
        f"tenant.users[{index}].version: {user.version} must be at most 2**62 ({MAX_VERSION}) "
        "for a new User, so it can grow"
        for index, user in enumerate(tenant.users)
        if user.version > MAX_VERSION
    ]
    if too_big:
        raise InvalidSnapshot(too_big, source=source)
    return tenant


# Nesting is bounded by the JSON parser (Python's recursion limit, about 1,000 levels): deeper
# is refused as bad input, never a RecursionError. Shallower nesting where the format expects a
# plain value is refused as that bad value, shown shortened.
_TOO_DEEP = f"{_ROOT}: is nested too deeply to read (a snapshot nests 7 levels)"


def users_from_list(document: object, *, source: str | None = None) -> list[User]:
    """The Users of a host's roster: a JSON list of Users in the snapshot's User format, or
    ``{"users": [...]}``; `InvalidSnapshot` lists every bad value with its path (``users[3].id``).
    """
    converter = _converter()
    import cattrs

    if isinstance(document, dict) and set(document) == {"users"}:
        document = document["users"]
    if not isinstance(document, list):
        raise InvalidSnapshot(
            [f'{_ROOT}: {_short.repr(document)} must be a list of Users or {{"users": [...]}}'],
            source=source,
        )
    try:
        users: list[User] = converter.structure(document, list[User])
    except (cattrs.BaseValidationError, _Bad, InvalidInput) as error:
        raise InvalidSnapshot(_problems(error, "users", None), source=source) from None
    except RecursionError:
        raise InvalidSnapshot([_TOO_DEEP], source=source) from None
    return users


def loads(text: str | bytes, *, source: str | None = None) -> Tenant:
    """The `Tenant` in snapshot `text`; `source` (a file name) only goes into error messages."""
    if not isinstance(text, str | bytes):
        raise InvalidInput("text", text, "is not a str or bytes")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidSnapshot(
            [f"line {error.lineno}, column {error.colno}: {error.msg} (not valid JSON)"],
            source=source,
        ) from None
    except UnicodeDecodeError as error:
        raise InvalidSnapshot(
            [f"{_ROOT}: is not UTF-8 text ({error.reason})"], source=source
        ) from None
    except RecursionError:
        raise InvalidSnapshot([_TOO_DEEP], source=source) from None
    return from_dict(document, source=source)


def load(path: str | os.PathLike[str]) -> Tenant:
    """The `Tenant` in the snapshot file at `path` (an `OSError` if it cannot be opened)."""
    data = Path(path).read_bytes()
    return loads(data, source=os.fspath(path))


def _frame_problems(document: dict[str, Any]) -> Iterator[str]:
    if "format" not in document:
        yield f'format: is missing; a snapshot is {{"format": {SNAPSHOT_FORMAT}, "tenant": ...}}'
    elif type(document["format"]) is not int or document["format"] != SNAPSHOT_FORMAT:
        yield (
            f"format: {_short.repr(document['format'])} is not a snapshot format this "
            f"labelsync reads (it reads format {SNAPSHOT_FORMAT})"
        )
    if "tenant" not in document:
        yield "tenant: is missing"
    for key in sorted(document.keys() - {"format", "tenant"}, key=str):
        yield f"{key}: is not a key of a snapshot (it has 'format' and 'tenant')"


def _problems(error: BaseException, path: str, cls: type | None) -> Iterator[str]:
    """Every leaf problem in a cattrs validation error, as ``path: value problem``.

    The same walk as `cattrs.transform_error`, but it also turns the
    ``Class.field`` of a labelsync validation error raised while building an
    object into a path below that object (``users[4].id``).
    """
    import cattrs

    if isinstance(error, cattrs.IterableValidationError):
        items, without = error.group_exceptions()
        for sub, item in items:
            yield from _problems(sub, f"{path}[{item.index}]", None)
        for sub in without:
            yield from _problems(sub, path, error.cl)
    elif isinstance(error, cattrs.ClassValidationError):
        fields, others = error.group_exceptions()
        for sub, attribute in fields:
            yield from _problems(sub, f"{path}.{attribute.name}", None)
        for sub in others:
            yield from _problems(sub, path, error.cl)
    elif isinstance(error, cattrs.ForbiddenExtraKeysError):
        known = ", ".join(a.name for a in attrs.fields(error.cl) if a.init)
        for name in sorted(error.extra_fields):
            yield f"{path}.{name}: is not a field of {error.cl.__name__} (it has {known})"
    elif isinstance(error, KeyError):
        yield f"{path}: is missing"
    elif isinstance(error, _Bad):
        yield f"{path}: {_short.repr(error.value)} {error.problem}"
    elif isinstance(error, InvalidInput):
        # Raised by a model validator as "Class.field[...]": a path below `path`.
        owner, dot, below = error.field.partition(".")
        if cls is not None and dot and owner == cls.__name__:
            path = f"{path}.{below}"
        yield f"{path}: {_short.repr(error.value)} {error.problem}"
    else:
        yield f"{path}: {type(error).__name__}: {error}"


# -- the converter ---------------------------------------------------------------------------


@functools.cache
def _converter() -> cattrs.Converter:
    try:
        import cattrs
    except ImportError:
        raise MissingExtra("JSON snapshots", "json", "cattrs") from None
    from cattrs.cols import list_structure_factory
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)

    # JSON has exact types; cattrs' defaults would turn 5 into "5" and "no" into True.
    converter.register_structure_hook(str, _exact(str, "a string"))
    converter.register_structure_hook(bool, _exact(bool, "true or false"))
    converter.register_structure_hook(int, _whole_number)

    converter.register_unstructure_hook_factory(_is_enum, lambda _: _enum_name)
    converter.register_structure_hook_factory(_is_enum, _enum_by_name)

    converter.register_unstructure_hook(dt.datetime, dt.datetime.isoformat)
    converter.register_structure_hook(dt.datetime, _aware_datetime)

    converter.register_unstructure_hook(LabelSet, list)  # iterates in sorted order
    converter.register_unstructure_hook(Label, _label_doc)
    converter.register_unstructure_hook(PushCounts, _counts_doc)
    converter.register_structure_hook(LabelSet, _label_set)

    def unstructure_set(cls: Any) -> Callable[[frozenset[Any]], list[Any]]:
        item = converter.get_unstructure_hook(typing.get_args(cls)[0])
        return lambda items: sorted(map(item, items), key=str)

    def unstructure_tuple(cls: Any) -> Callable[[tuple[Any, ...]], list[Any]]:
        item = converter.get_unstructure_hook(typing.get_args(cls)[0])
        return lambda items: list(map(item, items))

    converter.register_unstructure_hook_factory(_is_frozenset, unstructure_set)
    converter.register_unstructure_hook_factory(_is_tuple, unstructure_tuple)

    def collection(cls: Any) -> Callable[[object, Any], object]:
        build = typing.get_origin(cls)
        item_type = typing.get_args(cls)[0]
        as_list = list_structure_factory(
            cast(type, types.GenericAlias(list, (item_type,))), converter
        )

        def structure(value: object, _: Any) -> object:
            if not isinstance(value, list):
                raise _Bad(value, "must be a list")
            return build(as_list(value, list))

        return structure

    converter.register_structure_hook_factory(
        lambda cls: _is_frozenset(cls) or _is_tuple(cls), collection
    )

    def attrs_object(cls: type[Any]) -> Callable[[object, Any], object]:
        build = make_dict_structure_fn(cls, converter)

        def structure(value: object, _: Any) -> object:
            if not isinstance(value, dict):
                raise _Bad(value, f"must be a JSON object (a {cls.__name__})")
            return build(value, cls)

        return structure

    converter.register_structure_hook_factory(attrs.has, attrs_object)

    # Fields added after format 1 shipped (version 2: provenance, locks, groups, a
    # narrowed push's audience) are written only when they hold something, so a
    # snapshot of a tenant that does not use them stays readable by an older labelsync.
    for value_type in (LabelOrigin, Provenance):
        converter.register_unstructure_hook(
            value_type,
            make_dict_unstructure_fn(value_type, converter, _cattrs_omit_if_default=True),
        )
    converter.register_unstructure_hook(Audience, Audience.to_doc)
    converter.register_structure_hook(Audience, _audience)

    # Inner types first: a hook made for a type uses the hooks its fields have by then.
    added: tuple[tuple[type[Any], tuple[str, ...]], ...] = (
        (User, ("provenance", "groups")),
        (PushRecord, ("audience",)),
        (Tenant, ("locks",)),
    )
    for added_to, names in added:
        overrides: dict[str, Any] = {name: override(omit_if_default=True) for name in names}
        converter.register_unstructure_hook(
            added_to, make_dict_unstructure_fn(added_to, converter, **overrides)
        )
    return converter


def _counts_doc(counts: PushCounts) -> dict[str, object]:
    doc: dict[str, object] = attrs.asdict(counts)
    # Written only when a User's choice was kept (R16) or some User was removed during
    # the push (R14), so that a snapshot of any other push stays readable by an older
    # labelsync.
    for name in ("user_choice_kept", "user_removed"):
        if not doc[name]:
            del doc[name]
    return doc


def _audience(value: object, _: Any) -> Audience:
    if not isinstance(value, dict):
        raise _Bad(value, 'must be {"groups": [...]} or {"users": [...]}')
    return Audience.from_doc(value)


def _label_doc(label: Label) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": label.id,
        "name": label.name,
        "system": None if label.system is None else label.system.name,
    }
    # Written only when set: snapshots of ordinary tenants stay as they were.
    if label.guessed:
        doc["guessed"] = True
    if label.hidden:
        doc["hidden"] = True
    return doc


def _exact(kind: type, what: str) -> Callable[[object, Any], object]:
    def structure(value: object, _: Any) -> object:
        if type(value) is not kind:
            raise _Bad(value, f"must be {what}")
        return value

    return structure


def _whole_number(value: object, _: Any) -> int:
    if type(value) is not int:
        raise _Bad(value, "must be a whole number")
    return value


def _is_enum(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, enum.Enum)


def _enum_name(member: enum.Enum) -> str:
    return member.name


def _enum_by_name(cls: type[enum.Enum]) -> Callable[[object, Any], enum.Enum]:
    names = ", ".join(member.name for member in cls)

    def structure(value: object, _: Any) -> enum.Enum:
        if isinstance(value, str) and value in cls.__members__:
            return cls[value]
        raise _Bad(value, f"is not one of {names}")

    return structure


def _is_frozenset(cls: Any) -> bool:
    return typing.get_origin(cls) is frozenset


def _is_tuple(cls: Any) -> bool:
    args = typing.get_args(cls)
    return typing.get_origin(cls) is tuple and len(args) == 2 and args[1] is Ellipsis


def _aware_datetime(value: object, _: Any) -> dt.datetime:
    problem = (
        "must be an ISO 8601 date and time with a UTC offset, e.g. '2024-05-01T09:30:00+00:00'"
    )
    if not isinstance(value, str):
        raise _Bad(value, problem)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(value, problem) from None
    if moment.utcoffset() is None:
        raise _Bad(value, problem)
    return moment


def _label_set(value: object, _: Any) -> LabelSet:
    import cattrs

    if not isinstance(value, list):
        raise _Bad(value, "must be a list of label ids")
    errors: list[Exception] = []
    for index, item in enumerate(value):
        if text_problem(item, limit=MAX_ID_LENGTH) is not None:
            error = _Bad(item, label_id_problem(item))
            error.add_note(cattrs.IterableValidationNote(f"@ index {index}", index, str))
            errors.append(error)
    if errors:
        raise cattrs.IterableValidationError("While structuring a LabelSet", errors, LabelSet)
    return LabelSet(value)
