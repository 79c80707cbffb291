"""Test helpers for labelsync and the host applications that build on it.

The hypothesis strategies of `labelsync.testing.strategies` are re-exported
here. Needs hypothesis installed.
"""

from __future__ import annotations

from labelsync.testing.strategies import (
    addresses,
    custom_labels,
    defaults,
    label_sets,
    labels,
    mailboxes,
    permissions,
    providers,
    push_counts,
    push_records,
    system_labels,
    tenants,
    user_ids,
    users,
)

__all__ = [
    "addresses",
    "custom_labels",
    "defaults",
    "label_sets",
    "labels",
    "mailboxes",
    "permissions",
    "providers",
    "push_counts",
    "push_records",
    "system_labels",
    "tenants",
    "user_ids",
    "users",
]
