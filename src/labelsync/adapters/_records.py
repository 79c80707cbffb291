"""The audit record (R11) and a mailbox's labels as JSON-ready values, shared by the SQL stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from labelsync.exceptions import InvalidInput
from labelsync.model import Defaults, Label, PushCounts, PushRecord, SystemLabel

__all__ = ["label_from_row", "label_row", "record_doc", "record_from_doc"]

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
    """`record` as plain JSON values; times keep their UTC offset."""
    return {
        "job_id": record.job_id,
        "actor_id": record.actor_id,
        "defaults": {"inbox": record.defaults.inbox, "sent": record.defaults.sent},
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat(),
        "roster_size": record.roster_size,
        "counts": attrs.asdict(record.counts),
    }


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
    )
