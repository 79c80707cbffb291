"""labelsync: push an administrator's default synced mail labels to every User, exactly.

The pure core (`apply_defaults`, `email_tab`) answers "what would a push do?";
`LabelSync` runs the push as a resumable background job over a `Store`.

The names here are what a host imports every day. Ports, adapters, providers,
what-if, JSON snapshots and the full set of exceptions live in their modules
(`labelsync.ports`, `labelsync.adapters.*`, `labelsync.providers`,
`labelsync.whatif`, `labelsync.io`, `labelsync.exceptions`). labelsync logs
through `logging.getLogger("labelsync")` and is silent until the host
configures logging.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from labelsync import _display  # noqa: F401  # registers the notebook renderers by type
from labelsync.audience import Audience
from labelsync.changes import Changes, LabelChange, Skip, Summary
from labelsync.coverage import coverage
from labelsync.directory import DirectoryReport
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    JobSuperseded,
    LabelLocked,
    LabelSyncError,
    NotFound,
    PermissionDenied,
)
from labelsync.model import (
    Defaults,
    EmailTab,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.policy import Origin, PushMode, drift
from labelsync.ports import JobStatus, PushJob
from labelsync.presets import Preset
from labelsync.push import PushReport
from labelsync.rules import apply_defaults, email_tab, onboard
from labelsync.service import LabelSync, RevertReport

# A library's records go nowhere until the host configures logging (no "No handlers" output).
logging.getLogger(__name__).addHandler(logging.NullHandler())

try:
    __version__ = version("labelsync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AlreadyExists",
    "Audience",
    "Changes",
    "Defaults",
    "DirectoryReport",
    "EmailTab",
    "InvalidInput",
    "JobStatus",
    "JobSuperseded",
    "Label",
    "LabelChange",
    "LabelLocked",
    "LabelSet",
    "LabelSync",
    "LabelSyncError",
    "Mailbox",
    "NotFound",
    "Origin",
    "Permission",
    "PermissionDenied",
    "Preset",
    "Provider",
    "PushCounts",
    "PushJob",
    "PushMode",
    "PushRecord",
    "PushReport",
    "RevertReport",
    "Skip",
    "SkipReason",
    "Summary",
    "SystemLabel",
    "Tenant",
    "User",
    "__version__",
    "apply_defaults",
    "coverage",
    "drift",
    "email_tab",
    "onboard",
]

_MOVED = {
    "Clock": "labelsync.ports",
    "Store": "labelsync.ports",
    "Comparison": "labelsync.whatif",
    "ComparisonRow": "labelsync.whatif",
    "compare": "labelsync.whatif",
    "InvalidSnapshot": "labelsync.io",
    "gmail_label": "labelsync.providers",
    "graph_folder": "labelsync.providers",
    "imap_mailbox": "labelsync.providers",
    "imap_role": "labelsync.providers",
    "MissingExtra": "labelsync.exceptions",
    "UnknownJob": "labelsync.exceptions",
    "UnknownTenant": "labelsync.exceptions",
    "UnknownUser": "labelsync.exceptions",
    "EmailTabRow": "labelsync.model",
    "LabelSummary": "labelsync.changes",
    "UserOutcome": "labelsync.rules",
    "apply_to_user": "labelsync.rules",
}
"""Names that left the top level after 0.1.0, and the module each is imported from now."""


def __getattr__(name: str) -> Any:
    # The moved names keep working for one release, with a warning saying where they went.
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"labelsync.{name} moved: import it from {module} (from {module} import {name})",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
