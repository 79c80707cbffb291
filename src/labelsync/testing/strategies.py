"""Hypothesis strategies for labelsync values, shipped so host applications can reuse them.

The mixes are realistic rather than uniform: Users with and without a mailbox;
Gmail, Microsoft Graph, IMAP and other mailboxes built through the provider
helpers (B3), with localised folder names; custom labels that are *named*
"Inbox" or "Sent" but have no role; labels the provider hides, and IMAP SENT
roles guessed from the name (`Label.hidden`, `Label.guessed`); mailboxes
lacking INBOX or SENT (R7); and selections holding custom labels and stale ids
the mailbox no longer has (R5).
Sizes are small by default and every collection strategy takes a ``max_*``
parameter. Needs hypothesis, which is not a core dependency.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TypeVar

import attrs

from labelsync._provenance import LabelOrigin, Origin, Provenance
from labelsync.audience import Audience
from labelsync.exceptions import MissingExtra
from labelsync.model import (
    Defaults,
    Label,
    LabelSet,
    Locks,
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

_T = TypeVar("_T")

try:
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - only without the test dependencies
    raise MissingExtra("labelsync.testing", "testing", "hypothesis") from error

__all__ = [
    "CUSTOM_NAMES",
    "GROUP_NAMES",
    "INBOX_NAMES",
    "SENT_NAMES",
    "STALE_IDS",
    "addresses",
    "audiences",
    "custom_labels",
    "defaults",
    "groups",
    "host_rosters",
    "label_origins",
    "label_sets",
    "labels",
    "locks",
    "mailboxes",
    "permissions",
    "provenances",
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
_providers = st.sampled_from(Provider)
_custom_names = st.sampled_from(CUSTOM_NAMES)
_role_names = {
    SystemLabel.INBOX: st.sampled_from(INBOX_NAMES),
    SystemLabel.SENT: st.sampled_from(SENT_NAMES),
}
# Opaque ids from disjoint ranges, so a role's label never takes another label's id.
_ID_RANGES = {SystemLabel.INBOX: (0, 99), SystemLabel.SENT: (100, 199), None: (200, 299)}


def _numbered(template: str, role: SystemLabel | None) -> st.SearchStrategy[str]:
    low, high = _ID_RANGES[role]
    return st.integers(low, high).map(template.format)


def _label_id(label: Label) -> str:
    return label.id


# Shrinks towards False: a flag is the exception.
_rarely = st.sampled_from((False, False, False, True))


def _hidden(label: Label, hidden: bool) -> Label:
    return attrs.evolve(label, hidden=True) if hidden else label


def _guessed(label: Label, guessed: bool) -> Label:
    return attrs.evolve(label, guessed=True) if guessed else label


def providers() -> st.SearchStrategy[Provider]:
    """Any mailbox provider."""
    return _providers


def _imap_sent(name_and_delimiter: tuple[str, str], flags: tuple[str, ...]) -> Label:
    name, delimiter = name_and_delimiter
    return imap_mailbox(name, flags, delimiter)


@functools.cache
def _system_label(role: SystemLabel, provider: Provider) -> st.SearchStrategy[Label]:
    # Built once per (role, provider) and reused: hypothesis validates every new
    # strategy object, which would dominate the cost of drawing a tenant.
    names = _role_names[role]
    if provider is Provider.GMAIL:
        return st.builds(gmail_label, st.just(role.value), names)
    if provider is Provider.MICROSOFT:
        well_known = st.sampled_from(_GRAPH_WELL_KNOWN[role])
        return st.builds(graph_folder, _numbered("AAMkAD{:04d}", role), names, well_known)
    if provider is Provider.IMAP:
        if role is SystemLabel.INBOX:
            return st.builds(imap_mailbox, st.sampled_from(("INBOX", "Inbox", "inbox")))
        flags = st.sampled_from((("\\Sent",), ("\\HasNoChildren", "\\Sent"), ("\\sent",)))
        # A server without SPECIAL-USE: the host opted in to guessing SENT by name.
        return st.builds(
            _guessed, st.builds(_imap_sent, st.sampled_from(_IMAP_SENT), flags), _rarely
        )
    return st.builds(Label, id=_numbered("folder-{}", role), name=names, system=st.just(role))


@functools.cache
def _custom_label(provider: Provider) -> st.SearchStrategy[Label]:
    if provider is Provider.GMAIL:
        gmail = st.builds(gmail_label, _numbered("Label_{}", None), _custom_names)
        return st.builds(_hidden, gmail, _rarely)
    if provider is Provider.MICROSOFT:
        well_known = st.none() | st.sampled_from(_GRAPH_OTHER_WELL_KNOWN)
        graph = st.builds(graph_folder, _numbered("AAMkAD{:04d}", None), _custom_names, well_known)
        return st.builds(_hidden, graph, _rarely)
    if provider is Provider.IMAP:
        flags = st.sampled_from(((), ("\\HasNoChildren",), ("\\Archive",)))
        return st.builds(imap_mailbox, st.sampled_from(_IMAP_CUSTOM), flags)
    return st.builds(Label, id=_numbered("folder-{}", None), name=_custom_names)


@functools.cache
def _custom_lists(provider: Provider, max_labels: int) -> st.SearchStrategy[list[Label]]:
    return st.lists(_custom_label(provider), max_size=max_labels, unique_by=_label_id)


def system_labels(role: SystemLabel, provider: Provider | None = None) -> st.SearchStrategy[Label]:
    """The label holding `role`, built the way `provider` marks it (B3), with a localised name."""
    if provider is not None:
        return _system_label(role, provider)
    return st.one_of([_system_label(role, each) for each in Provider])


def custom_labels(provider: Provider | None = None) -> st.SearchStrategy[Label]:
    """A User's own label (system=None), sometimes named like a system label."""
    if provider is not None:
        return _custom_label(provider)
    return st.one_of([_custom_label(each) for each in Provider])


def labels(provider: Provider | None = None) -> st.SearchStrategy[Label]:
    """Any single label of `provider` (any provider if None): INBOX, SENT or custom."""
    return st.one_of(
        custom_labels(provider),
        system_labels(SystemLabel.INBOX, provider),
        system_labels(SystemLabel.SENT, provider),
    )


_addresses = st.builds(
    "{}{}@{}".format,
    st.sampled_from(("ana", "bo", "chen", "dée", "eva")),
    st.integers(0, 9),
    st.sampled_from(("acme.io", "example.com", "exemple.fr")),
)
_permissions = st.frozensets(st.sampled_from(Permission))
_user_ids = st.integers(1, 999).map("u{}".format)
_versions = st.integers(0, 10_000)
_defaults = st.builds(Defaults, inbox=st.booleans(), sent=st.booleans())
_small = st.integers(0, 50)
_push_counts = st.builds(
    PushCounts,
    users_changed=_small,
    selected=_small,
    deselected=_small,
    no_mailbox=_small,
    label_missing=_small,
)
_zones = st.sampled_from((dt.UTC, dt.timezone(dt.timedelta(hours=2))))
_instants = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=_zones
)
_maybe_defaults = st.none() | _defaults
_tenant_names = st.sampled_from(("Acme", "Globex", "Initech", "Société Générale"))


@functools.cache
def _stale_lists(max_stale: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(STALE_IDS), max_size=max_stale, unique=True)


@functools.cache
def _user_id_lists(max_users: int) -> st.SearchStrategy[list[str]]:
    return st.lists(_user_ids, max_size=max_users, unique=True)


def addresses() -> st.SearchStrategy[str]:
    """A plausible mail address (not necessarily unique)."""
    return _addresses


def _shuffled(draw: st.DrawFn, items: list[_T]) -> list[_T]:
    # Fisher-Yates over cached integer strategies: st.permutations(items) would
    # build (and validate) a new strategy per mailbox. Shrinks to the given order.
    for last in range(len(items) - 1, 0, -1):
        pick = last - draw(st.integers(0, last))
        items[pick], items[last] = items[last], items[pick]
    return items


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
    provider = draw(_providers) if provider is None else provider
    found: list[Label] = []
    for role, wanted in ((SystemLabel.INBOX, inbox), (SystemLabel.SENT, sent)):
        if draw(_mostly) if wanted is None else wanted:
            found.append(draw(_system_label(role, provider)))
    taken = {label.id for label in found}
    own = draw(_custom_lists(provider, max_labels))
    found.extend(label for label in own if label.id not in taken)
    return Mailbox(provider=provider, address=draw(_addresses), labels=_shuffled(draw, found))


@st.composite
def label_sets(draw: st.DrawFn, mailbox: Mailbox | None, *, max_stale: int = 2) -> LabelSet:
    """A selection over `mailbox`: any of its labels plus up to `max_stale` ids it lacks."""
    own = [] if mailbox is None else [label.id for label in mailbox.labels]
    chosen = [label_id for label_id in own if draw(st.booleans())]
    stale = [label_id for label_id in draw(_stale_lists(max_stale)) if label_id not in own]
    return LabelSet([*chosen, *stale])


def permissions() -> st.SearchStrategy[frozenset[Permission]]:
    """Any set of permissions, the empty one included."""
    return _permissions


GROUP_NAMES = ("sales", "support", "Vertrieb", "team 7", "ops/eu")
"""Group names the strategies draw from: few, so audiences and Users overlap often."""

_group_sets = st.frozensets(st.sampled_from(GROUP_NAMES), max_size=2)


def groups() -> st.SearchStrategy[frozenset[str]]:
    """A User's groups (R20): none, one or two of `GROUP_NAMES`."""
    return _group_sets


@st.composite
def audiences(draw: st.DrawFn, user_ids: tuple[str, ...] = ()) -> Audience:
    """Any audience (R20): everyone, one or more of `GROUP_NAMES`, or some of `user_ids`."""
    kinds = ["everyone", "groups"] + (["users"] if user_ids else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "groups":
        return Audience.groups(draw(st.frozensets(st.sampled_from(GROUP_NAMES), min_size=1)))
    if kind == "users":
        return Audience.users(draw(st.frozensets(st.sampled_from(user_ids), min_size=1)))
    return Audience.everyone()


def user_ids() -> st.SearchStrategy[str]:
    """A User id."""
    return _user_ids


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
        id=draw(_user_ids) if user_id is None else user_id,
        email=box.address if box is not None else draw(_addresses),
        permissions=draw(_permissions),
        mailbox=box,
        synced=draw(label_sets(box, max_stale=max_stale)),
        version=draw(_versions),
        provenance=draw(provenances()),
        groups=draw(_group_sets),
    )


@st.composite
def label_origins(draw: st.DrawFn) -> LabelOrigin:
    """Who set a label last (R15): any origin, with a job id where one belongs and a time."""
    origin = draw(st.sampled_from(Origin))
    if origin is Origin.UNKNOWN:
        return LabelOrigin()
    job_id = None
    if origin in (Origin.PUSH, Origin.ONBOARDING, Origin.REVERT):
        job_id = f"job-{draw(st.integers(1, 99))}"
    return LabelOrigin(origin=origin, job_id=job_id, at=draw(_instants))


@st.composite
def provenances(draw: st.DrawFn) -> Provenance:
    """A User's provenance (R15): each label's origin and covered; unknown a third of the time."""
    if draw(st.integers(0, 2)) == 0:
        return Provenance()
    return Provenance(
        inbox=draw(label_origins()), sent=draw(label_origins()), covered=draw(st.booleans())
    )


@st.composite
def locks(draw: st.DrawFn) -> Locks | None:
    """The tenant's locks (R17): None most often, else a set of labels with who and when."""
    if draw(st.integers(0, 2)) != 0:
        return None
    return Locks(
        labels=draw(st.frozensets(st.sampled_from(SystemLabel))),
        actor_id=draw(_user_ids),
        at=draw(_instants),
    )


def defaults() -> st.SearchStrategy[Defaults]:
    """Any setting of the admin's two checkboxes."""
    return _defaults


def push_counts() -> st.SearchStrategy[PushCounts]:
    """Any push counts (not tied to a roster)."""
    return _push_counts


@st.composite
def push_records(draw: st.DrawFn, *, roster_size: int | None = None) -> PushRecord:
    """The audit record of a finished push, with aware times, finished after started."""
    started = draw(_instants)
    return PushRecord(
        job_id=f"job-{draw(st.integers(1, 999))}",
        actor_id=draw(_user_ids),
        defaults=draw(_defaults),
        started_at=started,
        finished_at=started + dt.timedelta(seconds=draw(st.integers(0, 86_400))),
        roster_size=draw(_small) if roster_size is None else roster_size,
        counts=draw(_push_counts),
        audience=draw(audiences()),
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
    roster = [
        draw(users(user_id=user_id, max_labels=max_labels, max_stale=max_stale))
        for user_id in draw(_user_id_lists(max_users))
    ]
    pushed = draw(st.booleans()) if last_push is None else last_push
    return Tenant(
        id=f"t{draw(st.integers(1, 99))}",
        name=draw(_tenant_names),
        users=roster,
        defaults=draw(_maybe_defaults),
        last_push=draw(push_records(roster_size=len(roster))) if pushed else None,
        onboard_new_users=draw(st.booleans()),
        locks=draw(locks()),
    )


@st.composite
def host_rosters(draw: st.DrawFn, tenant: Tenant, *, max_new: int = 3) -> list[User]:
    """What a host's directory says of `tenant`'s Users now, in any order (R13).

    Each stored User is listed as it is, with new host-owned fields (email,
    permissions), with its mailbox disconnected, replaced or its labels
    refreshed (some deleted, some added), or not at all (left the company);
    up to `max_new` new Users join. Its `synced` and `version` are whatever the
    host happens to send, which a sync ignores for stored Users.
    """
    listed: list[User] = []
    for user in tenant.users:
        change = draw(
            st.sampled_from(("same", "fields", "disconnect", "mailbox", "refresh", "gone"))
        )
        if change == "gone":
            continue
        if change == "fields":
            user = attrs.evolve(user, email=draw(_addresses), permissions=draw(_permissions))
        elif change == "disconnect":
            user = attrs.evolve(user, mailbox=None)
        elif change == "mailbox" or (change == "refresh" and user.mailbox is None):
            user = attrs.evolve(user, mailbox=draw(mailboxes(max_labels=3)))
        elif change == "refresh" and user.mailbox is not None:
            kept = [label for label in user.mailbox.labels if draw(st.booleans())]
            taken = {label.id for label in kept}
            added = draw(_custom_lists(user.mailbox.provider, 2))
            labels = kept + [label for label in added if label.id not in taken]
            user = attrs.evolve(user, mailbox=attrs.evolve(user.mailbox, labels=labels))
        user = attrs.evolve(
            user, synced=draw(label_sets(user.mailbox, max_stale=1)), version=draw(_versions)
        )
        listed.append(user)
    known = {user.id for user in tenant.users}
    fresh = [i for i in draw(_user_id_lists(max_new)) if i not in known]
    listed += [draw(users(user_id=user_id, max_labels=3, max_stale=1)) for user_id in fresh]
    return _shuffled(draw, listed)
