"""The audit record (R11) as a JSON-ready document, shared by the SQL stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from labelsync.model import Defaults, PushCounts, PushRecord

__all__ = ["record_doc", "record_from_doc"]


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
