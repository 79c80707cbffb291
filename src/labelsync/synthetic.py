"""Deterministic, realistic synthetic tenants for benchmarks, demos and what-if notebooks.

`synthetic_tenant(10_000, seed=1)` is the same tenant on every machine and
every run. What a roster holds, by design (proportions are expectations, each
User is drawn independently from a `random.Random(seed)`):

- the first User, ``admin``, holds ADMIN_ACCESS and EMAIL_SYNC and has a Gmail
  mailbox; of the others ~85% hold EMAIL_SYNC and the rest no permission;
- ~10% have no connected mailbox (``mailbox=None``; a push skips them with
  NO_MAILBOX), a fifth of whom still carry a stale ``INBOX`` id in `synced`;
- of the connected mailboxes ~45% are Gmail (``INBOX``/``SENT`` label ids),
  ~35% Microsoft Graph (well-known ``inbox``/``sentitems`` folders with English,
  German, French or Spanish display names such as "Posteingang" and
  "Gesendete Elemente") and ~20% IMAP (``INBOX`` and a ``\\Sent`` folder);
  roles always come from `gmail_label`, `graph_folder` and `imap_mailbox` (B3);
- each mailbox has 5 to 30 labels, including a few role-less provider folders
  (Drafts, Trash...) and custom labels ("Project X", "Receipts"...);
- ~2% of mailboxes lack a SENT folder (a push skips that label, LABEL_MISSING);
- ~40% already have INBOX selected, ~30% SENT, ~25% one to three custom labels.

Values are immutable, so the few distinct label tuples, mailboxes and
selections are built (and validated) once and shared by every User that draws
them: a million Users cost a few hundred `Label`s, and one `User` plus one
`Mailbox` copy each.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import cache

from labelsync.exceptions import InvalidInput
from labelsync.model import Label, LabelSet, Mailbox, Permission, Provider, Tenant, User
from labelsync.providers import gmail_label, graph_folder, imap_mailbox

__all__ = ["ADMIN_ID", "synthetic_tenant", "synthetic_users"]

ADMIN_ID = "admin"
"""The id of the first User of every synthetic roster, the one who may push (R1)."""

_DOMAIN = "example.com"

# Expected shares, each drawn per User (see the module docstring).
_NOT_CONNECTED = 0.10
_STALE_WHEN_NOT_CONNECTED = 0.20
_EMAIL_SYNC = 0.85
_GMAIL, _MICROSOFT = 0.45, 0.35  # IMAP takes the rest
_LACKS_SENT = 0.02
_INBOX_SELECTED = 0.40
_SENT_SELECTED = 0.30
_CUSTOM_SELECTED = 0.25

_MIN_LABELS, _MAX_LABELS = 5, 30

# Microsoft Graph display names per mailbox language: inbox, sent items, drafts, deleted items.
_GRAPH_LOCALES = (
    ("Inbox", "Sent Items", "Drafts", "Deleted Items"),
    ("Posteingang", "Gesendete Elemente", "Entwürfe", "Gelöschte Elemente"),
    ("Boîte de réception", "Éléments envoyés", "Brouillons", "Éléments supprimés"),
    ("Bandeja de entrada", "Elementos enviados", "Borradores", "Elementos eliminados"),
)

_CUSTOM_NAMES = (
    "Project X",
    "Newsletters",
    "Receipts",
    "Travel",
    "Clients/Acme",
    "Clients/Globex",
    "Invoices",
    "Recruiting",
    "Board",
    "Legal",
    "Support",
    "Vendors",
    "Family",
    "Conferences",
    "Follow up",
    "Waiting for",
    "Reading list",
    "Archive 2023",
    "Archive 2024",
    "Hiring/Backend",
    "Hiring/Design",
    "Ops",
    "Security",
    "Finance",
    "Marketing",
    "Sales",
    "Partners",
    "Press",
    "Events",
    "Misc",
)

_ADMIN_PERMISSIONS = frozenset({Permission.ADMIN_ACCESS, Permission.EMAIL_SYNC})
_SYNC_PERMISSIONS = frozenset({Permission.EMAIL_SYNC})
_NO_PERMISSIONS: frozenset[Permission] = frozenset()
_EMPTY = LabelSet()
_STALE = LabelSet(["INBOX"])

# A label tuple is keyed by (provider, Graph locale index, number of labels, has SENT).
_LabelsKey = tuple[Provider, int, int, bool]


@cache
def _labels(key: _LabelsKey) -> tuple[tuple[Label, ...], tuple[str, ...]]:
    """The labels of a mailbox of this kind, and the ids of its custom labels (cached)."""
    provider, locale, count, has_sent = key
    labels: list[Label]
    if provider is Provider.GMAIL:
        labels = [gmail_label("INBOX", "Inbox")]
        if has_sent:
            labels.append(gmail_label("SENT", "Sent"))
        labels += [gmail_label("DRAFT", "Drafts"), gmail_label("TRASH", "Trash")]
        custom = [gmail_label(f"Label_{n}", name) for n, name in enumerate(_CUSTOM_NAMES, 1)]
    elif provider is Provider.MICROSOFT:
        inbox, sent, drafts, deleted = _GRAPH_LOCALES[locale]
        labels = [graph_folder("AAMkAGI2AAA=", inbox, "inbox")]
        if has_sent:
            labels.append(graph_folder("AAMkAGI2AAB=", sent, "sentitems"))
        labels += [
            graph_folder("AAMkAGI2AAC=", drafts, "drafts"),
            graph_folder("AAMkAGI2AAD=", deleted, "deleteditems"),
        ]
        custom = [
            graph_folder(f"AAMkAGI2{n:03d}=", name) for n, name in enumerate(_CUSTOM_NAMES, 1)
        ]
    else:
        labels = [imap_mailbox("INBOX")]
        if has_sent:
            labels.append(imap_mailbox("Sent", ["\\HasNoChildren", "\\Sent"]))
        labels += [imap_mailbox("Drafts", ["\\Drafts"]), imap_mailbox("Trash", ["\\Trash"])]
        custom = [imap_mailbox(name) for name in _CUSTOM_NAMES]
    labels += custom[: count - len(labels)]
    return tuple(labels), tuple(label.id for label in labels if label.system is None)[2:]


@cache
def _mailbox(key: _LabelsKey) -> Mailbox:
    """A validated mailbox of kind `key` (cached), copied to each User's address with `_at`."""
    return Mailbox(provider=key[0], address=f"template@{_DOMAIN}", labels=_labels(key)[0])


@cache
def _selection(key: _LabelsKey, inbox: bool, sent: bool, customs: int) -> LabelSet:
    """A selection in a mailbox of kind `key` (cached): INBOX, SENT, the first `customs` customs."""
    labels, custom_ids = _labels(key)
    ids = [label.id for label in labels[:2] if label.system is not None]
    chosen = [ids[0]] if inbox else []
    if sent and key[3]:
        chosen.append(ids[1])
    chosen += custom_ids[:customs]
    return LabelSet(chosen)


def _check(users: object, seed: object) -> None:
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise InvalidInput("users", users, "must be a whole number >= 1 (the admin is one)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput("seed", seed, "must be a whole number")


def synthetic_users(users: int, *, seed: int) -> Iterator[User]:
    """Yield `users` synthetic Users, ``admin`` first, the same ones for the same `seed`.

    Streaming, so a million Users can be written to a store without a `Tenant`
    holding them all; `synthetic_tenant` is exactly these Users.
    """
    _check(users, seed)
    return _generate(users, seed)


def _generate(users: int, seed: int) -> Iterator[User]:
    rng = random.Random(seed)
    draw, pick = rng.random, rng.randrange
    key: _LabelsKey = (Provider.GMAIL, 0, 12, True)
    yield User(
        id=ADMIN_ID,
        email=f"{ADMIN_ID}@{_DOMAIN}",
        permissions=_ADMIN_PERMISSIONS,
        mailbox=Mailbox(
            provider=Provider.GMAIL, address=f"{ADMIN_ID}@{_DOMAIN}", labels=_labels(key)[0]
        ),
        synced=_selection(key, True, True, 0),
    )
    width = max(7, len(str(users)))
    for n in range(1, users):
        user_id = f"user-{n:0{width}d}"
        email = f"{user_id}@{_DOMAIN}"
        permissions = _SYNC_PERMISSIONS if draw() < _EMAIL_SYNC else _NO_PERMISSIONS
        if draw() < _NOT_CONNECTED:
            synced = _STALE if draw() < _STALE_WHEN_NOT_CONNECTED else _EMPTY
            yield User(id=user_id, email=email, permissions=permissions, synced=synced)
            continue
        kind = draw()
        if kind < _GMAIL:
            provider = Provider.GMAIL
        elif kind < _GMAIL + _MICROSOFT:
            provider = Provider.MICROSOFT
        else:
            provider = Provider.IMAP
        locale = pick(len(_GRAPH_LOCALES)) if provider is Provider.MICROSOFT else 0
        key = (provider, locale, pick(_MIN_LABELS, _MAX_LABELS + 1), draw() >= _LACKS_SENT)
        customs = 1 + pick(3) if draw() < _CUSTOM_SELECTED else 0
        synced = _selection(key, draw() < _INBOX_SELECTED, draw() < _SENT_SELECTED, customs)
        yield User(
            id=user_id,
            email=email,
            permissions=permissions,
            mailbox=_mailbox(key)._at(email),
            synced=synced,
        )


def synthetic_tenant(
    users: int = 10_000, *, seed: int = 0, tenant_id: str = "demo", name: str = "Demo Corp"
) -> Tenant:
    """A tenant of `users` synthetic Users (see the module docstring); equal for an equal seed."""
    return Tenant(id=tenant_id, name=name, users=tuple(synthetic_users(users, seed=seed)))
