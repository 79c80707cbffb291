"""Exists only to be type-checked: the public API, used as a host application would."""

from __future__ import annotations

import datetime as dt

import labelsync
from labelsync import (
    Changes,
    Defaults,
    EmailTab,
    JobStatus,
    Label,
    LabelChange,
    LabelSet,
    LabelSync,
    Mailbox,
    Permission,
    Provider,
    PushJob,
    PushReport,
    Skip,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    email_tab,
)
from labelsync.adapters.clock import FixedClock, SystemClock
from labelsync.adapters.imap import ImapError, ImapReader, Security
from labelsync.adapters.memory import InMemoryStore
from labelsync.ports import Clock, Store
from labelsync.providers import mailbox_from_gmail, mailbox_from_graph, mailbox_from_imap

label = Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX)
mailbox = Mailbox(provider=Provider.GMAIL, address="a@x.io", labels=(label,))
user = User(
    id="u1",
    email="a@x.io",
    permissions=frozenset({Permission.EMAIL_SYNC, Permission.ADMIN_ACCESS}),
    mailbox=mailbox,
    synced=LabelSet(["INBOX"]),
)
tenant = Tenant(id="t1", name="Acme", users=(user,))
new_tenant, changes = apply_defaults(tenant, Defaults(inbox=True, sent=False))
typed_changes: Changes = changes
changed: tuple[LabelChange, ...] = changes.changed
skipped: tuple[Skip, ...] = changes.skipped
reasons: list[SkipReason] = [skip.reason for skip in skipped]
tab: EmailTab = email_tab(new_tenant.user("u1"))

store: Store = InMemoryStore()
clock: Clock = FixedClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
wall: Clock = SystemClock()
svc = LabelSync(store=store, clock=clock)
svc.create_tenant(tenant)
job: PushJob = svc.start_push("t1", actor_id="u1", defaults=Defaults(inbox=True, sent=True))
status: JobStatus = job.status
report: PushReport = svc.run_push(job.id, batch_size=100, progress=lambda j: print(j.processed))
error: type[labelsync.LabelSyncError] = labelsync.InvalidInput

# Reading real provider data (B3).
gmail: Mailbox = mailbox_from_gmail("a@x.io", {"labels": [{"id": "INBOX", "name": "INBOX"}]})
graph: Mailbox = mailbox_from_graph(
    "a@x.io",
    [{"id": "a", "displayName": "Inbox"}],
    well_known={"inbox": "a", "sentitems": None},
)
imap: Mailbox = mailbox_from_imap("a@x.io", [b'* LIST () "/" INBOX'], guess_sent=True)
guessed: bool = Label(id="S", name="Sent", system=SystemLabel.SENT, guessed=True).guessed
reader = ImapReader("imap.example.com", 143, security=Security.STARTTLS, timeout=10.0)
imap_error: type[labelsync.LabelSyncError] = ImapError

# What a host imports from the modules, since they left the top level.
from labelsync.cli import EXIT_CODES, ExitCode  # noqa: E402
from labelsync.exceptions import MissingExtra, UnknownTenant  # noqa: E402
from labelsync.providers import gmail_label  # noqa: E402
from labelsync.whatif import Comparison, ComparisonRow, compare  # noqa: E402

inbox: Label = gmail_label("INBOX", "Inbox")
comparison: Comparison = compare(tenant, {"both": Defaults(inbox=True, sent=True)})
first_row: ComparisonRow = comparison.rows[0]
changed_by_candidate: int = first_row.users_changed
codes: tuple[ExitCode, ...] = EXIT_CODES
lookup_errors: tuple[type[labelsync.LabelSyncError], ...] = (UnknownTenant, MissingExtra)
html_or_none: str | None = changes._repr_html_()

# Version 2: audiences (R20), presets (R21), coverage (R22).
from labelsync import Audience, Preset, coverage  # noqa: E402
from labelsync.coverage import Coverage, CoverageStatus  # noqa: E402
from labelsync.presets import PresetBook  # noqa: E402

grouped = User(id="u2", email="b@x.io", groups=frozenset({"sales"}))
sales: Audience = Audience.groups({"sales"})
listed: Audience = Audience.users(["u1"])
narrowed_job: PushJob = svc.start_push(
    "t1", actor_id="u1", defaults=Defaults(inbox=True, sent=True), audience=sales
)
per_group: Comparison = compare(tenant, {"both": Defaults(inbox=True, sent=True)}, audience=sales)
preset = Preset(name="Sales", defaults=Defaults(inbox=True, sent=True))
book: PresetBook = svc.create_preset("t1", actor_id="u1", preset=preset)
seen: Coverage = coverage(tenant, book)
covered: int = seen.counts()[CoverageStatus.COVERED]
