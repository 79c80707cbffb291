"""Write examples/globex.json: a 40-User tenant one month after an "Inbox only" push.

Deterministic (a seeded random.Random), so running it again writes the same
file. The push is made with `labelsync.apply_defaults` itself, then a few Users
change their own selection afterwards, as real Users do. Run from the
repository root: ``python examples/make_globex.py``.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from labelsync import (
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushRecord,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    io,
)
from labelsync.providers import gmail_label, graph_folder, imap_mailbox

USERS = 40
SEED = 20240501
OUT = Path(__file__).with_name("globex.json")

FIRST_NAMES = (
    "ana", "bjorn", "chiara", "dev", "elif", "femi", "gus", "hana", "ines", "jonas",
    "kemal", "lea", "mateo", "nadia", "oskar", "priya", "quentin", "rosa", "sven", "tomoko",
)  # fmt: skip
# Microsoft Graph display names by mailbox language; the role comes from the well-known name.
GRAPH_NAMES = {
    "en": ("Inbox", "Sent Items"),
    "de": ("Posteingang", "Gesendete Elemente"),
    "fr": ("Boîte de réception", "Éléments envoyés"),
    "es": ("Bandeja de entrada", "Elementos enviados"),
}
CUSTOM = ("Project X", "Newsletters", "Receipts", "Clients/Initech", "Travel")


def mailbox(rng: random.Random, address: str, number: int) -> Mailbox:
    """A mailbox of a random provider, with some custom labels; 1 in 8 IMAP ones lacks \\Sent."""
    provider = rng.choices((Provider.GMAIL, Provider.MICROSOFT, Provider.IMAP), weights=(5, 4, 2))[
        0
    ]
    own = rng.sample(CUSTOM, rng.randint(0, 3))
    labels: list[Label]
    if provider is Provider.GMAIL:
        labels = [gmail_label("INBOX", "Inbox"), gmail_label("SENT", "Sent")]
        labels += [gmail_label(f"Label_{10 + i}", name) for i, name in enumerate(own)]
    elif provider is Provider.MICROSOFT:
        inbox, sent = GRAPH_NAMES[rng.choice(tuple(GRAPH_NAMES))]
        prefix = f"AAMkAD{number:03d}"
        labels = [
            graph_folder(f"{prefix}01", inbox, "inbox"),
            graph_folder(f"{prefix}02", sent, "sentitems"),
        ]
        labels += [graph_folder(f"{prefix}{10 + i}", name) for i, name in enumerate(own)]
    else:
        # Older servers do not flag their sent folder with RFC 6154 \Sent.
        sent_flags = ["\\HasNoChildren"] if rng.random() < 0.35 else ["\\HasNoChildren", "\\Sent"]
        labels = [imap_mailbox("INBOX"), imap_mailbox("Sent", sent_flags)]
        labels += [imap_mailbox(name.replace("/", " - ")) for name in own]
    return Mailbox(provider=provider, address=address, labels=labels)


def user(rng: random.Random, number: int) -> User:
    """User `number`: 1 in 10 has no mailbox, most have EMAIL_SYNC, u001 is the admin."""
    name = f"{FIRST_NAMES[number % len(FIRST_NAMES)]}{number // len(FIRST_NAMES) or ''}"
    address = f"{name}@globex.example"
    box = None if rng.random() < 0.1 else mailbox(rng, address, number)
    permissions = {Permission.EMAIL_SYNC} if rng.random() < 0.85 else set()
    if number == 1:
        permissions |= {Permission.ADMIN_ACCESS, Permission.EMAIL_SYNC}
    ids = [label.id for label in box.labels] if box else []
    synced = rng.sample(ids, rng.randint(0, len(ids))) if ids else []
    return User(
        id=f"u{number:03d}",
        email=address,
        permissions=frozenset(permissions),
        mailbox=box,
        synced=LabelSet(synced),
        version=rng.randint(0, 6),
    )


def globex() -> Tenant:
    """The tenant: pushed "Inbox only" on 2024-04-02, then five Users changed their selection."""
    rng = random.Random(SEED)
    before = Tenant(
        id="globex", name="Globex Corporation", users=[user(rng, n) for n in range(1, USERS + 1)]
    )
    defaults = Defaults(inbox=True, sent=False)
    pushed, changes = apply_defaults(before, defaults)
    started = dt.datetime(2024, 4, 2, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    record = PushRecord(
        job_id="job-0001",
        actor_id="u001",
        defaults=defaults,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=3, microseconds=250_000),
        roster_size=len(before.users),
        counts=changes.counts(),
    )
    tenant = Tenant(
        id=pushed.id,
        name=pushed.name,
        users=pushed.users,
        defaults=defaults,
        last_push=record,
        onboard_new_users=True,
    )
    # Since the push, some Users turned their Sent folder back on themselves.
    for user_ in rng.sample([u for u in tenant.users if u.mailbox], 5):
        assert user_.mailbox is not None
        sent = [label.id for label in user_.mailbox.labels if label.system is SystemLabel.SENT]
        tenant = tenant.with_users(
            u.with_selection(u.synced.with_ids(*sent)) if u.id == user_.id else u
            for u in tenant.users
        )
    return tenant


if __name__ == "__main__":
    io.dump(globex(), OUT)
    print(f"wrote {OUT}")
