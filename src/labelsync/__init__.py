"""labelsync: push an administrator's default synced mail labels to every User, exactly.

The pure core (`apply_defaults`, `email_tab`) answers "what would a push do?";
`LabelSync` runs the push as a resumable background job over a `Store`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from labelsync.changes import Changes, LabelChange, LabelSummary, Skip, Summary
from labelsync.exceptions import (
    AlreadyExists,
    InvalidInput,
    JobSuperseded,
    LabelSyncError,
    MissingExtra,
    NotFound,
    PermissionDenied,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.io import InvalidSnapshot
from labelsync.model import (
    Defaults,
    EmailTab,
    EmailTabRow,
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
from labelsync.ports import Clock, JobStatus, PushJob, Store
from labelsync.providers import gmail_label, graph_folder, imap_mailbox, imap_role
from labelsync.push import PushReport
from labelsync.rules import UserOutcome, apply_defaults, apply_to_user, email_tab, onboard
from labelsync.service import LabelSync, RevertReport
from labelsync.whatif import Comparison, ComparisonRow, compare

try:
    __version__ = version("labelsync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AlreadyExists",
    "Changes",
    "Clock",
    "Comparison",
    "ComparisonRow",
    "Defaults",
    "EmailTab",
    "EmailTabRow",
    "InvalidInput",
    "InvalidSnapshot",
    "JobStatus",
    "JobSuperseded",
    "Label",
    "LabelChange",
    "LabelSet",
    "LabelSummary",
    "LabelSync",
    "LabelSyncError",
    "Mailbox",
    "MissingExtra",
    "NotFound",
    "Permission",
    "PermissionDenied",
    "Provider",
    "PushCounts",
    "PushJob",
    "PushRecord",
    "PushReport",
    "RevertReport",
    "Skip",
    "SkipReason",
    "Store",
    "Summary",
    "SystemLabel",
    "Tenant",
    "UnknownJob",
    "UnknownTenant",
    "UnknownUser",
    "User",
    "UserOutcome",
    "__version__",
    "apply_defaults",
    "apply_to_user",
    "compare",
    "email_tab",
    "gmail_label",
    "graph_folder",
    "imap_mailbox",
    "imap_role",
    "onboard",
]
