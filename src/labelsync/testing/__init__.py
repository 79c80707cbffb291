"""Test helpers for labelsync and the host applications that build on it.

- `labelsync.testing.strategies`: hypothesis strategies for every value
  (re-exported here; needs hypothesis: ``pip install 'labelsync[testing]'``).
  Installed, they are also registered with hypothesis through its entry
  point, so ``st.from_type(User)`` (or ``Tenant``, ``Mailbox``, ...) draws valid values.
- `labelsync.testing.conformance.StoreContract`: the `Store` conformance suite;
  subclass it and give it a ``store`` fixture (needs pytest).
- `labelsync.testing.faults.FaultyStore`: a `Store` proxy that fails on cue,
  for crash-and-resume tests.

Each is imported on first use, so the conformance suite works without hypothesis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labelsync.testing.faults import STORE_METHODS, FaultyStore, InjectedFault, StoreProxy
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

_FAULTS = ("STORE_METHODS", "FaultyStore", "InjectedFault", "StoreProxy")

__all__ = [
    "STORE_METHODS",
    "FaultyStore",
    "InjectedFault",
    "StoreProxy",
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


def __getattr__(name: str) -> Any:
    if name in _FAULTS:
        return getattr(importlib.import_module("labelsync.testing.faults"), name)
    if name in __all__:
        return getattr(importlib.import_module("labelsync.testing.strategies"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
