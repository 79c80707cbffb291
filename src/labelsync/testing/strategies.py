"""Hypothesis strategies for labelsync values, shipped so host applications can reuse them.

The mixes are realistic rather than uniform: Users with and without a mailbox;
Gmail, Microsoft Graph, IMAP and other mailboxes built through the provider
helpers (B3), with localised folder names; custom labels that are *named*
"Inbox" or "Sent" but have no role; mailboxes lacking INBOX or SENT (R7); and
selections holding custom labels and stale ids the mailbox no longer has (R5).
Sizes are small by default and every collection strategy takes a ``max_*``
parameter. Needs hypothesis, which is not a core dependency.
"""

from __future__ import annotations

import datetime as dt

from labelsync.exceptions import MissingExtra
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
)
from labelsync.providers import gmail_label, graph_folder, imap_mailbox

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - only without the test dependencies
    raise MissingExtra("labelsync.testing", "testing", "hypothesis") from error

__all__ = [
    "CUSTOM_NAMES",
    "INBOX_NAMES",
    "SENT_NAMES",
    "STALE_IDS",
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

INBOX_NAMES = ("Inbox", "Posteingang", "Boîte de réception", "Bandeja de entrada", "受信トレイ")
"""Display names an INBOX has across languages; none of them decides the role."""

SENT_NAMES = (
    "Sent",
    "Sent Items",
    "Gesendete Elemente",
    "Éléments envoyés",
    "Elementos enviados",
    "送信済みアイテム",
)
"""Display names a SENT folder has across languages; none of them decides the role."""

CUSTOM_NAMES = (
    "Inbox",
    "Sent",
    "Sent Items",
    "Posteingang",
    "Project X",
    "Newsletters",
    "Receipts",
    "Clients/Acme",
)
"""Names Users give their own labels, including names that look like system labels."""

STALE_IDS = ("INBOX", "SENT", "Label_404", "AAMkGONE0001", "Archive/2019", "folder-gone")
"""Ids a selection may keep after the label was deleted or the mailbox disconnected."""

# IMAP mailboxes a User creates; none is INBOX in any case, none carries \Sent.
_IMAP_CUSTOM = ("Projects/Inbox", "Projects/Sent", "INBOX/Receipts", "Project X", "Newsletters")
_IMAP_SENT = (("Sent", "/"), ("Sent Items", "/"), ("Gesendete Elemente", "/"), ("INBOX.Sent", "."))
# Graph well-known names in the spellings Graph accepts (it ignores case).
_GRAPH_WELL_KNOWN = {
    SystemLabel.INBOX: ("inbox", "Inbox", "INBOX"),
    SystemLabel.SENT: ("sentitems", "SentItems", "sentItems", "SENTITEMS"),
}
# Well-known Graph folders that are not INBOX/SENT, so they are custom labels here.
_GRAPH_OTHER_WELL_KNOWN = ("drafts", "archive", "deleteditems", "junkemail")

# Shrinks towards True: most mailboxes have INBOX and SENT, most Users a mailbox.
_mostly = st.sampled_from((True, True, True, False))


def providers() -> st.SearchStrategy[Provider]:
    """Any mailbox provider."""
    return st.sampled_from(Provider)


def _graph_ids() -> st.SearchStrategy[str]:
    return st.integers(0, 99).map(lambda n: f"AAMkAD{n:04d}")


def _other_ids() -> st.SearchStrategy[str]:
    return st.integers(0, 99).map(lambda n: f"folder-{n}")


@st.composite
def system_labels(draw: st.DrawFn, role: SystemLabel, provider: Provider | None = None) -> Label:
    """The label holding `role`, built the way `provider` marks it (B3), with a localised name."""
    provider = draw(providers()) if provider is None else provider
    names = INBOX_NAMES if role is SystemLabel.INBOX else SENT_NAMES
    if provider is Provider.GMAIL:
        return gmail_label(role.value, draw(st.sampled_from(names)))
    if provider is Provider.MICROSOFT:
        well_known = draw(st.sampled_from(_GRAPH_WELL_KNOWN[role]))
        return graph_folder(draw(_graph_ids()), draw(st.sampled_from(names)), well_known)
    if provider is Provider.IMAP:
        if role is SystemLabel.INBOX:
            return imap_mailbox(draw(st.sampled_from(("INBOX", "Inbox", "inbox"))))
        name, delimiter = draw(st.sampled_from(_IMAP_SENT))
        flags = draw(st.sampled_from((("\\Sent",), ("\\HasNoChildren", "\\Sent"), ("\\sent",))))
        return imap_mailbox(name, flags, delimiter)
    return Label(id=draw(_other_ids()), name=draw(st.sampled_from(names)), system=role)


@st.composite
def custom_labels(draw: st.DrawFn, provider: Provider | None = None) -> Label:
    """A User's own label (system=None), sometimes named like a system label."""
    provider = draw(providers()) if provider is None else provider
    name = draw(st.sampled_from(CUSTOM_NAMES))
    if provider is Provider.GMAIL:
        return gmail_label(f"Label_{draw(st.integers(1, 99))}", name)
    if provider is Provider.MICROSOFT:
        well_known = draw(st.none() | st.sampled_from(_GRAPH_OTHER_WELL_KNOWN))
        return graph_folder(draw(_graph_ids()), name, well_known)
    if provider is Provider.IMAP:
        flags = draw(st.sampled_from(((), ("\\HasNoChildren",), ("\\Archive",))))
        return imap_mailbox(draw(st.sampled_from(_IMAP_CUSTOM)), flags)
    return Label(id=draw(_other_ids()), name=name)


def labels(provider: Provider | None = None) -> st.SearchStrategy[Label]:
    """Any single label of `provider` (any provider if None): INBOX, SENT or custom."""
    return st.one_of(
        custom_labels(provider),
        system_labels(SystemLabel.INBOX, provider),
        system_labels(SystemLabel.SENT, provider),
    )


def addresses() -> st.SearchStrategy[str]:
    """A plausible mail address (not necessarily unique)."""
    return st.builds(
        "{}{}@{}".format,
        st.sampled_from(("ana", "bo", "chen", "dée", "eva")),
        st.integers(0, 9),
        st.sampled_from(("acme.io", "example.com", "exemple.fr")),
    )


@st.composite
def mailboxes(
    draw: st.DrawFn,
    *,
    provider: Provider | None = None,
    max_labels: int = 4,
    inbox: bool | None = None,
    sent: bool | None = None,
) -> Mailbox:
    """A mailbox with up to `max_labels` custom labels, in any order.

    `inbox`/`sent` force the system label present (True) or absent (False);
    None draws it, present most of the time.
    """
    provider = draw(providers()) if provider is None else provider
    found: list[Label] = []
    for role, wanted in ((SystemLabel.INBOX, inbox), (SystemLabel.SENT, sent)):
        if draw(_mostly) if wanted is None else wanted:
            found.append(draw(system_labels(role, provider)))
    taken = {label.id for label in found}
    own = draw(st.lists(custom_labels(provider), max_size=max_labels, unique_by=lambda lb: lb.id))
    found.extend(label for label in own if label.id not in taken)
    ordered = draw(st.permutations(found))
    return Mailbox(provider=provider, address=draw(addresses()), labels=ordered)


@st.composite
def label_sets(draw: st.DrawFn, mailbox: Mailbox | None, *, max_stale: int = 2) -> LabelSet:
    """A selection over `mailbox`: any of its labels plus up to `max_stale` ids it lacks."""
    own = [] if mailbox is None else [label.id for label in mailbox.labels]
    chosen = draw(st.lists(st.sampled_from(own), unique=True)) if own else []
    stale = draw(st.lists(st.sampled_from(STALE_IDS), max_size=max_stale, unique=True))
    return LabelSet([*chosen, *(label_id for label_id in stale if label_id not in own)])


def permissions() -> st.SearchStrategy[frozenset[Permission]]:
    """Any set of permissions, the empty one included."""
    return st.frozensets(st.sampled_from(Permission))


def user_ids() -> st.SearchStrategy[str]:
    """A User id."""
    return st.integers(1, 999).map(lambda n: f"u{n}")


@st.composite
def users(
    draw: st.DrawFn,
    *,
    user_id: str | None = None,
    max_labels: int = 4,
    max_stale: int = 2,
    mailbox: bool | None = None,
) -> User:
    """A User, with a mailbox most of the time (`mailbox` True/False forces it), any version."""
    has_mailbox = draw(_mostly) if mailbox is None else mailbox
    box = draw(mailboxes(max_labels=max_labels)) if has_mailbox else None
    return User(
        id=draw(user_ids()) if user_id is None else user_id,
        email=box.address if box is not None else draw(addresses()),
        permissions=draw(permissions()),
        mailbox=box,
        synced=draw(label_sets(box, max_stale=max_stale)),
        version=draw(st.integers(0, 10_000)),
    )


def defaults() -> st.SearchStrategy[Defaults]:
    """Any setting of the admin's two checkboxes."""
    return st.builds(Defaults, inbox=st.booleans(), sent=st.booleans())


def push_counts() -> st.SearchStrategy[PushCounts]:
    """Any push counts (not tied to a roster)."""
    small = st.integers(0, 50)
    return st.builds(
        PushCounts,
        users_changed=small,
        selected=small,
        deselected=small,
        no_mailbox=small,
        label_missing=small,
    )


@st.composite
def push_records(draw: st.DrawFn, *, roster_size: int | None = None) -> PushRecord:
    """The audit record of a finished push, with aware times, finished after started."""
    zone = draw(st.sampled_from((dt.UTC, dt.timezone(dt.timedelta(hours=2)))))
    started = draw(
        st.datetimes(
            min_value=dt.datetime(2020, 1, 1),
            max_value=dt.datetime(2040, 1, 1),
            timezones=st.just(zone),
        )
    )
    return PushRecord(
        job_id=f"job-{draw(st.integers(1, 999))}",
        actor_id=draw(user_ids()),
        defaults=draw(defaults()),
        started_at=started,
        finished_at=started + dt.timedelta(seconds=draw(st.integers(0, 86_400))),
        roster_size=draw(st.integers(0, 50)) if roster_size is None else roster_size,
        counts=draw(push_counts()),
    )


@st.composite
def tenants(
    draw: st.DrawFn,
    *,
    max_users: int = 6,
    max_labels: int = 4,
    max_stale: int = 2,
    last_push: bool | None = None,
) -> Tenant:
    """A tenant of up to `max_users` Users with unique ids.

    `last_push` True/False forces a finished push on record or none; None draws it.
    """
    ids = draw(st.lists(user_ids(), max_size=max_users, unique=True))
    roster = [
        draw(users(user_id=user_id, max_labels=max_labels, max_stale=max_stale)) for user_id in ids
    ]
    pushed = draw(st.booleans()) if last_push is None else last_push
    return Tenant(
        id=f"t{draw(st.integers(1, 99))}",
        name=draw(st.sampled_from(("Acme", "Globex", "Initech", "Société Générale"))),
        users=roster,
        defaults=draw(st.none() | defaults()),
        last_push=draw(push_records(roster_size=len(roster))) if pushed else None,
        onboard_new_users=draw(st.booleans()),
    )
