"""Recognise INBOX and SENT the way each provider marks them, whatever the display name (B3).

Connectors see provider data, not roles: Gmail's system label ids, Microsoft
Graph's well-known folder names, IMAP's ``INBOX`` and RFC 6154 ``\\Sent``. These
helpers turn that into `Label`s whose `system` role a push can trust, so
"Gesendete Elemente" is SENT and a custom folder called "Inbox" is not INBOX.
"""

from __future__ import annotations

from collections.abc import Iterable

from labelsync.exceptions import InvalidInput
from labelsync.model import Label, SystemLabel

__all__ = ["gmail_label", "graph_folder", "imap_mailbox", "imap_role"]

# Gmail's reserved label ids; user labels get ids like "Label_7".
_GMAIL_IDS = {"INBOX": SystemLabel.INBOX, "SENT": SystemLabel.SENT}
# Microsoft Graph mailFolder well-known names (case-insensitive in Graph).
_GRAPH_NAMES = {"inbox": SystemLabel.INBOX, "sentitems": SystemLabel.SENT}


def gmail_label(label_id: str, name: str) -> Label:
    """A Gmail label; its role comes from the reserved id (``INBOX``, ``SENT``), never the name."""
    return Label(id=label_id, name=name, system=_GMAIL_IDS.get(label_id))


def graph_folder(folder_id: str, display_name: str, well_known_name: str | None = None) -> Label:
    """A Microsoft Graph mail folder; `well_known_name` (``inbox``, ``sentitems``) gives it."""
    role = _GRAPH_NAMES.get(well_known_name.casefold()) if well_known_name else None
    return Label(id=folder_id, name=display_name, system=role)


def imap_role(name: str, attributes: Iterable[str] = ()) -> SystemLabel | None:
    """An IMAP mailbox's role: ``INBOX`` in any case (RFC 3501) or ``\\Sent`` (RFC 6154)."""
    if name.casefold() == "inbox":
        return SystemLabel.INBOX
    if any(attribute.casefold() == "\\sent" for attribute in attributes):
        return SystemLabel.SENT
    return None


def imap_mailbox(name: str, attributes: Iterable[str] = (), delimiter: str | None = "/") -> Label:
    """An IMAP mailbox as a `Label`: the full name is the id (``INBOX`` for the inbox in any case),
    the last path segment the display name."""
    if not name:
        raise InvalidInput("name", name, "must be a non-empty IMAP mailbox name")
    role = imap_role(name, attributes)
    if role is SystemLabel.INBOX:
        # RFC 3501: INBOX is case-insensitive, so "inbox" and "INBOX" are one
        # folder; one id keeps a stored selection from missing it after a rename.
        return Label(id="INBOX", name=name, system=role)
    display = name.rsplit(delimiter, 1)[-1] if delimiter else name
    return Label(id=name, name=display or name, system=role)
