"""What the shipped stores share: argument checks, the audit record (R11) and a mailbox's
labels as JSON-ready values, and a User's selection split into hot push state and cold ids."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from labelsync._provenance import LabelOrigin, Origin, Provenance
from labelsync._validate import check_batch_size, check_new_version
from labelsync.audience import Audience
from labelsync.exceptions import InvalidInput
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Locks,
    PushCounts,
    PushRecord,
    SystemLabel,
    User,
)

__all__ = [
    "HotState",
    "ProvenanceColumns",
    "check_added_users",
    "check_distinct",
    "check_limit",
    "check_new_users",
    "check_user_ids",
    "hot_state",
    "label_from_row",
    "label_row",
    "locked_from_text",
    "locked_text",
    "locks_doc",
    "locks_from_doc",
    "provenance_columns",
    "provenance_from",
    "record_doc",
    "record_from_doc",
    "selection",
]

_FLAGS = ("guessed", "hidden")


def label_row(label: Label) -> list[object]:
    """`label` as ``[id, name, system or null]``, plus a list of its set flags when it has any.

    Labels without flags keep the three-item form stores wrote before flags
    existed, so stored layouts of ordinary mailboxes do not change.
    """
    row: list[object] = [label.id, label.name, None if label.system is None else label.system.value]
    flags = [name for name in _FLAGS if getattr(label, name)]
    if flags:
        row.append(flags)
    return row


def label_from_row(row: Sequence[Any]) -> Label:
    """The label `label_row` wrote; rows from before flags existed have three items."""
    label_id, name, system, *rest = row
    flags: Sequence[Any] = rest[0] if rest else ()
    unknown = [flag for flag in flags if flag not in _FLAGS]
    if len(rest) > 1 or unknown:
        raise InvalidInput("mailbox label", list(row), "has flags this labelsync does not know")
    return Label(
        id=label_id,
        name=name,
        system=None if system is None else SystemLabel(system),
        guessed="guessed" in flags,
        hidden="hidden" in flags,
    )


def record_doc(record: PushRecord) -> dict[str, object]:
    """`record` as plain JSON values; times keep their UTC offset.

    The audience (R20) is written only when the push was narrowed, so records
    of pushes to everyone stay as earlier labelsyncs wrote and read them.
    """
    doc: dict[str, object] = {
        "job_id": record.job_id,
        "actor_id": record.actor_id,
        "defaults": {"inbox": record.defaults.inbox, "sent": record.defaults.sent},
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat(),
        "roster_size": record.roster_size,
        "counts": attrs.asdict(record.counts),
    }
    audience = record.audience.to_doc()
    if audience is not None:
        doc["audience"] = audience
    return doc


def record_from_doc(doc: Mapping[str, Any] | None) -> PushRecord | None:
    """The record `record_doc` wrote, or None for no record."""
    if doc is None:
        return None
    return PushRecord(
        job_id=doc["job_id"],
        actor_id=doc["actor_id"],
        defaults=Defaults(**doc["defaults"]),
        started_at=dt.datetime.fromisoformat(doc["started_at"]),
        finished_at=dt.datetime.fromisoformat(doc["finished_at"]),
        roster_size=doc["roster_size"],
        counts=PushCounts(**doc["counts"]),
        audience=Audience.from_doc(doc.get("audience")),
    )


def check_distinct(what: str, writes: Sequence[tuple[User, int]]) -> None:
    """Refuse a User written twice in one call (`InvalidInput` naming it): which should win?"""
    seen: set[str] = set()
    for index, write in enumerate(writes):
        user: object = write[0]
        if not isinstance(user, User):
            raise InvalidInput(f"{what}[{index}]", user, "is not a User")
        if user.id in seen:
            raise InvalidInput(f"{what}[{index}].id", user.id, "is written twice in one call")
        seen.add(user.id)


def check_new_users(users: Iterable[User]) -> None:
    """Refuse, before anything is written, a new User whose version could not grow (F4)."""
    for index, user in enumerate(users):
        check_new_version(f"users[{index}].version", user.version)


def check_added_users(what: str, users: Sequence[object]) -> None:
    """Refuse all but Users with distinct ids and versions that can grow (`InvalidInput`)."""
    seen: set[str] = set()
    for index, user in enumerate(users):
        if not isinstance(user, User):
            raise InvalidInput(f"{what}[{index}]", user, "is not a User")
        if user.id in seen:
            raise InvalidInput(f"{what}[{index}].id", user.id, "is added twice in one call")
        check_new_version(f"{what}[{index}].version", user.version)
        seen.add(user.id)


def check_user_ids(what: str, user_ids: object) -> list[str]:
    """`user_ids` as a list without repeats; `InvalidInput` unless a collection of strings."""
    if isinstance(user_ids, str | bytes) or not isinstance(user_ids, Iterable):
        raise InvalidInput(what, user_ids, "must be a collection of user ids, not one string")
    ids = list(dict.fromkeys(user_ids))
    for index, user_id in enumerate(ids):
        if not isinstance(user_id, str):
            raise InvalidInput(f"{what}[{index}]", user_id, "is not a user id")
    return ids


def check_limit(limit: object) -> int:
    """Refuse a batch size that is not a whole number in 1..`_validate.MAX_BATCH_SIZE`."""
    return check_batch_size(limit, "limit")


HotState = tuple[str | None, bool, str | None, bool, list[str]]
"""A User's push state: INBOX's label id and whether it is selected, the same for SENT,
and the other selected ids (sorted). A label the mailbox lacks has id None and False."""


def hot_state(user: User) -> HotState:
    """Split `user`'s selection into the narrow columns a push reads and writes, and the rest.

    The INBOX/SENT ids are the mailbox's role labels; every other selected id
    (custom labels, stale ids) stays cold, so a push never touches it (R5).
    """
    mailbox = user.mailbox
    inbox_id = sent_id = None
    if mailbox is not None:
        inbox_id = mailbox.label_id(SystemLabel.INBOX)
        sent_id = mailbox.label_id(SystemLabel.SENT)
    ids = user.synced.ids
    inbox_on = inbox_id is not None and inbox_id in ids
    sent_on = sent_id is not None and sent_id in ids
    others = sorted(ids.difference((inbox_id, sent_id)) if (inbox_on or sent_on) else ids)
    return inbox_id, inbox_on, sent_id, sent_on, others


def selection(
    others: Iterable[str], inbox_id: str | None, inbox_on: bool, sent_id: str | None, sent_on: bool
) -> LabelSet:
    """The selection `hot_state` split, joined again."""
    ids = set(others)
    if inbox_on and inbox_id is not None:
        ids.add(inbox_id)
    if sent_on and sent_id is not None:
        ids.add(sent_id)
    return LabelSet(ids)


ProvenanceColumns = tuple[
    bool, str | None, str | None, str | None, str | None, str | None, str | None
]
"""A User's provenance as the hot columns keep it: covered, then for INBOX and for SENT the
origin (NULL: unknown), its job id and its time (ISO 8601 text with the UTC offset)."""


def _origin_columns(origin: LabelOrigin) -> tuple[str | None, str | None, str | None]:
    if origin.origin is Origin.UNKNOWN:
        return None, None, None
    at = None if origin.at is None else origin.at.isoformat()
    return origin.origin.value, origin.job_id, at


def provenance_columns(provenance: Provenance) -> ProvenanceColumns:
    """`provenance` as the seven narrow columns the stores keep next to the push state."""
    return (
        provenance.covered,
        *_origin_columns(provenance.inbox),
        *_origin_columns(provenance.sent),
    )


@functools.lru_cache(maxsize=4096)
def _origin_from(origin: str | None, job_id: str | None, at: str | None) -> LabelOrigin:
    if origin is None:
        return LabelOrigin()
    return LabelOrigin(
        origin=Origin(origin),
        job_id=job_id,
        at=None if at is None else dt.datetime.fromisoformat(at),
    )


@functools.lru_cache(maxsize=4096)
def provenance_from(
    covered: object,
    inbox: str | None,
    inbox_job: str | None,
    inbox_at: str | None,
    sent: str | None,
    sent_job: str | None,
    sent_at: str | None,
) -> Provenance:
    """The provenance `provenance_columns` wrote, shared: a push stamps many Users alike."""
    return Provenance(
        inbox=_origin_from(inbox, inbox_job, inbox_at),
        sent=_origin_from(sent, sent_job, sent_at),
        covered=bool(covered),
    )


def locks_doc(locks: Locks | None) -> dict[str, object] | None:
    """`locks` as plain JSON values (None: nothing locked, never set)."""
    if locks is None:
        return None
    return {
        "labels": sorted(label.value for label in locks.labels),
        "actor_id": locks.actor_id,
        "at": locks.at.isoformat(),
    }


def locks_from_doc(doc: Mapping[str, Any] | None) -> Locks | None:
    """The locks `locks_doc` wrote."""
    if doc is None:
        return None
    return Locks(
        labels=frozenset(SystemLabel(x) for x in doc["labels"]),
        actor_id=doc["actor_id"],
        at=dt.datetime.fromisoformat(doc["at"]),
    )


def locked_text(labels: frozenset[SystemLabel]) -> str:
    """A job's locked labels as a short text column: ``"INBOX,SENT"``, ``""`` for none."""
    return ",".join(sorted(label.value for label in labels))


def locked_from_text(text: str | None) -> frozenset[SystemLabel]:
    """The labels `locked_text` wrote."""
    return frozenset(SystemLabel(x) for x in text.split(",") if x) if text else frozenset()
