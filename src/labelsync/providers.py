"""Turn each provider's own response into a `Mailbox` whose roles a push can trust (B3).

Connectors see provider data, not roles: Gmail's system label ids, Microsoft
Graph's well-known folder names, IMAP's ``INBOX`` and RFC 6154 ``\\Sent``. The
``mailbox_from_*`` readers take the provider's response as the host received
it and refuse anything malformed with `InvalidInput` naming the item, so a
parsing mistake can never become a silent LABEL_MISSING skip or a wrong label
selected. The single-label helpers (`gmail_label`, `graph_folder`,
`imap_mailbox`, `imap_role`) serve hosts that already picked the data apart.
See the how-to "From the provider's API to labelsync".
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NoReturn

import attrs

from labelsync.exceptions import InvalidInput
from labelsync.model import Label, Mailbox, Provider, SystemLabel

__all__ = [
    "SENT_NAME_GUESSES",
    "decode_imap_name",
    "encode_imap_name",
    "gmail_label",
    "graph_folder",
    "imap_mailbox",
    "imap_role",
    "mailbox_from_gmail",
    "mailbox_from_graph",
    "mailbox_from_imap",
]

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


# -- shared checks ---------------------------------------------------------------------------


def _text(item: Mapping[str, object], key: str, where: str) -> str:
    """The non-blank string `item[key]`, or `InvalidInput` naming ``where.key``."""
    if key not in item:
        raise InvalidInput(f"{where}.{key}", None, "is missing")
    value = item[key]
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}.{key}", value, "must be a non-empty string")
    return value


def _object(value: object, where: str, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InvalidInput(where, value, f"must be a JSON object ({what})")
    return value


def _claim(
    claims: dict[SystemLabel, tuple[str, str]], role: SystemLabel, label_id: str, where: str
) -> None:
    """Record that the label `label_id` at `where` holds `role`; a second holder is refused."""
    held = claims.get(role)
    if held is not None and held[0] != label_id:
        raise InvalidInput(
            where,
            label_id,
            f"claims the {role.name} role, which {held[1]} (id {held[0]!r}) already holds; "
            "a mailbox has one " + role.title,
        )
    claims.setdefault(role, (label_id, where))


def _no_inbox(where: str, value: object, problem: str) -> NoReturn:
    raise InvalidInput(where, value, f"has no INBOX: {problem}")


# -- Gmail -----------------------------------------------------------------------------------

# Gmail names system labels by their id ("INBOX", "CATEGORY_SOCIAL"); its own
# interface shows these (localised) names instead.
_GMAIL_SYSTEM_NAMES = {
    "INBOX": "Inbox",
    "SENT": "Sent",
    "DRAFT": "Drafts",
    "SPAM": "Spam",
    "TRASH": "Trash",
    "STARRED": "Starred",
    "IMPORTANT": "Important",
    "UNREAD": "Unread",
    "CHAT": "Chat",
    "CATEGORY_PERSONAL": "Personal",
    "CATEGORY_SOCIAL": "Social",
    "CATEGORY_PROMOTIONS": "Promotions",
    "CATEGORY_UPDATES": "Updates",
    "CATEGORY_FORUMS": "Forums",
}
_GMAIL_TYPES = ("system", "user")
_GMAIL_VISIBILITY = ("labelShow", "labelShowIfUnread", "labelHide")


def mailbox_from_gmail(address: str, response: Mapping[str, object]) -> Mailbox:
    """The Gmail mailbox `address` as the JSON object of ``users.labels.list`` describes it.

    Roles come from the reserved system ids ``INBOX`` and ``SENT``, never from
    names, so a user label called "Inbox" stays custom (R9). System labels
    named by their id get Gmail's display name ("CATEGORY_SOCIAL" shows as
    "Social"); a label with ``labelListVisibility: "labelHide"`` is kept with
    ``hidden=True``. A malformed response, a duplicate id or a response without
    the INBOX label raises `InvalidInput` naming the item.
    """
    response = _object(response, "response", "the response of Gmail users.labels.list")
    if "labels" not in response:
        raise InvalidInput("response['labels']", None, "is missing; users.labels.list has it")
    items = response["labels"]
    if not isinstance(items, list):
        raise InvalidInput("response['labels']", items, "must be a list of label objects")
    labels: list[Label] = []
    seen: dict[str, str] = {}
    claims: dict[SystemLabel, tuple[str, str]] = {}
    for index, raw in enumerate(items):
        where = f"response['labels'][{index}]"
        item = _object(raw, where, "a Gmail label")
        label_id = _text(item, "id", where)
        name = _text(item, "name", where)
        kind = item.get("type")
        if kind is not None and kind not in _GMAIL_TYPES:
            raise InvalidInput(f"{where}.type", kind, "is not 'system' or 'user'")
        visibility = item.get("labelListVisibility")
        if visibility is not None and visibility not in _GMAIL_VISIBILITY:
            raise InvalidInput(
                f"{where}.labelListVisibility", visibility, f"is not one of {_GMAIL_VISIBILITY}"
            )
        if label_id in seen:
            raise InvalidInput(f"{where}.id", label_id, f"is also the id of {seen[label_id]}")
        seen[label_id] = where
        role = _GMAIL_IDS.get(label_id)
        if role is not None:
            if kind == "user":
                raise InvalidInput(
                    f"{where}.type", kind, f"must be 'system' for the reserved id {label_id!r}"
                )
            _claim(claims, role, label_id, f"{where}.id")
        if kind != "user" and name == label_id:
            name = _GMAIL_SYSTEM_NAMES.get(label_id, name)
        labels.append(Label(id=label_id, name=name, system=role, hidden=visibility == "labelHide"))
    if SystemLabel.INBOX not in claims:
        _no_inbox(
            "response['labels']",
            f"<{len(labels)} labels>",
            "no label has the reserved id 'INBOX', which every Gmail mailbox has",
        )
    return Mailbox(provider=Provider.GMAIL, address=address, labels=labels)


# -- Microsoft Graph -------------------------------------------------------------------------


@attrs.frozen
class _Folder:
    id: str
    name: str
    hidden: bool
    well_known: str | None
    parent: str | None
    where: str


def _graph_items(folders: object) -> tuple[Sequence[object], str]:
    if isinstance(folders, Mapping):
        if "@odata.nextLink" in folders:
            raise InvalidInput(
                "folders['@odata.nextLink']",
                folders["@odata.nextLink"],
                "means this is one page of the list: follow the link and pass every folder",
            )
        if "value" not in folders:
            raise InvalidInput("folders['value']", None, "is missing; a mailFolders list has it")
        items = folders["value"]
        if not isinstance(items, list):
            raise InvalidInput("folders['value']", items, "must be a list of mailFolder objects")
        return items, "folders['value']"
    if isinstance(folders, str | bytes) or not isinstance(folders, Sequence):
        raise InvalidInput("folders", folders, "must be the mailFolders list or its 'value' items")
    return folders, "folders"


def _walk_graph(
    items: Sequence[object], where: str, parent: str | None, out: list[_Folder]
) -> None:
    for index, raw in enumerate(items):
        at = f"{where}[{index}]"
        item = _object(raw, at, "a Graph mailFolder")
        folder_id = _text(item, "id", at)
        name = _text(item, "displayName", at)
        hidden = item.get("isHidden", False)
        if not isinstance(hidden, bool):
            raise InvalidInput(f"{at}.isHidden", hidden, "must be true or false")
        well_known = item.get("wellKnownName")
        if well_known is not None and not isinstance(well_known, str):
            raise InvalidInput(f"{at}.wellKnownName", well_known, "must be a string or null")
        parent_id = item.get("parentFolderId")
        if parent_id is not None and not isinstance(parent_id, str):
            raise InvalidInput(f"{at}.parentFolderId", parent_id, "must be a string or null")
        if parent is not None:
            parent_id = parent  # nested by $expand=childFolders: the nesting says where it is
        out.append(_Folder(folder_id, name, hidden, well_known, parent_id, at))
        children = item.get("childFolders")
        if children is not None:
            if not isinstance(children, list):
                raise InvalidInput(f"{at}.childFolders", children, "must be a list")
            _walk_graph(children, f"{at}.childFolders", folder_id, out)


def _graph_well_known(well_known: object) -> dict[str, str | None]:
    if not isinstance(well_known, Mapping):
        raise InvalidInput(
            "well_known", well_known, "must map 'inbox' and 'sentitems' to folder ids"
        )
    found: dict[str, str | None] = {}
    for key, value in well_known.items():
        if not isinstance(key, str):
            raise InvalidInput("well_known", key, "has a key that is not a well-known name")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInput(f"well_known[{key!r}]", value, "must be a folder id or None")
        found[key.casefold()] = value
    for name in _GRAPH_NAMES:
        if name not in found:
            raise InvalidInput(
                f"well_known[{name!r}]",
                None,
                f"is missing: read it from /mailFolders/{name} (None when the mailbox has none)",
            )
    return found


def mailbox_from_graph(
    address: str,
    folders: Mapping[str, object] | Sequence[Mapping[str, object]],
    *,
    well_known: Mapping[str, str | None] | None = None,
) -> Mailbox:
    """The Outlook mailbox `address` as Microsoft Graph's ``mailFolders`` list describes it.

    `folders` is the list response or its ``value`` items, with child folders
    nested (``$expand=childFolders``) or listed flat with their
    ``parentFolderId``; a child shows as its path ("Projekte/Kunde A"). Graph
    v1.0 items carry no role, so `well_known` maps ``inbox`` and ``sentitems``
    to the ids the host read from ``/mailFolders/inbox`` and
    ``/mailFolders/sentitems`` (``sentitems: None`` when the mailbox has none).
    Beta items that carry ``wellKnownName`` need no `well_known`; given both,
    they must agree. ``isHidden`` (of the folder or a parent) gives ``hidden=True``.
    """
    items, where = _graph_items(folders)
    found: list[_Folder] = []
    _walk_graph(items, where, None, found)
    by_id: dict[str, _Folder] = {}
    for folder in found:
        if folder.id in by_id:
            raise InvalidInput(
                f"{folder.where}.id", folder.id, f"is also the id of {by_id[folder.id].where}"
            )
        by_id[folder.id] = folder

    claims: dict[SystemLabel, tuple[str, str]] = {}
    if well_known is not None:
        for name, folder_id in _graph_well_known(well_known).items():
            role = _GRAPH_NAMES.get(name)
            if role is None or folder_id is None:
                continue
            if folder_id not in by_id:
                raise InvalidInput(
                    f"well_known[{name!r}]", folder_id, "is not the id of any folder in folders"
                )
            _claim(claims, role, folder_id, f"well_known[{name!r}]")
    for folder in found:
        role = _GRAPH_NAMES.get(folder.well_known.casefold()) if folder.well_known else None
        if role is not None:
            _claim(claims, role, folder.id, f"{folder.where}.wellKnownName")
    if SystemLabel.INBOX not in claims:
        if well_known is None:
            _no_inbox(
                where,
                f"<{len(found)} folders>",
                "no folder carries wellKnownName 'inbox' (v1.0 folders carry none): pass "
                "well_known={'inbox': ..., 'sentitems': ...} read from /mailFolders/inbox "
                "and /mailFolders/sentitems",
            )
        _no_inbox("well_known['inbox']", None, "every Outlook mailbox has an Inbox")
    roles = {folder_id: role for role, (folder_id, _) in claims.items()}

    def path(folder: _Folder, seen: frozenset[str]) -> tuple[str, bool]:
        parent = by_id.get(folder.parent) if folder.parent is not None else None
        if parent is None:
            return folder.name, folder.hidden
        if parent.id in seen:
            raise InvalidInput(
                f"{folder.where}.parentFolderId", folder.parent, "makes the folders a cycle"
            )
        above, hidden = path(parent, seen | {folder.id})
        return f"{above}/{folder.name}", hidden or folder.hidden

    labels = []
    for folder in found:
        name, hidden = path(folder, frozenset({folder.id}))
        labels.append(Label(id=folder.id, name=name, system=roles.get(folder.id), hidden=hidden))
    return Mailbox(provider=Provider.MICROSOFT, address=address, labels=labels)


# -- IMAP: modified UTF-7 (RFC 3501 5.1.3) ---------------------------------------------------


def _printable(char: str) -> bool:
    return "\x20" <= char <= "\x7e"


def encode_imap_name(name: str) -> str:
    """`name` in modified UTF-7 (RFC 3501 5.1.3), the form IMAP servers use for mailbox names.

    The inverse of `decode_imap_name`: ``encode_imap_name("Entwürfe") == "Entw&APw-rfe"``.
    """
    if not isinstance(name, str):
        raise InvalidInput("name", name, "is not a str")
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            try:
                data = "".join(run).encode("utf-16-be")
            except UnicodeEncodeError:
                raise InvalidInput(
                    "name", name, "has a lone surrogate, which is no character"
                ) from None
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if _printable(char):
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


_SHIFTED = re.compile(r"&([A-Za-z0-9+,]*)-")


def decode_imap_name(raw: str) -> str:
    """The Unicode name behind a mailbox name in modified UTF-7: ``"Entw&APw-rfe"`` is "Entwürfe".

    Strict, so that ``encode_imap_name(decode_imap_name(raw)) == raw``: anything
    RFC 3501 5.1.3 does not allow (an unterminated ``&``, bad base64, an encoded
    printable character, two adjacent encoded runs) raises `InvalidInput`.
    """
    if not isinstance(raw, str):
        raise InvalidInput("name", raw, "is not a str")
    out: list[str] = []
    position = 0
    previous_run_end = -1
    while position < len(raw):
        char = raw[position]
        if char != "&":
            if not _printable(char):
                raise InvalidInput("name", raw, "has a character modified UTF-7 must encode")
            out.append(char)
            position += 1
            continue
        match = _SHIFTED.match(raw, position)
        if match is None:
            raise InvalidInput("name", raw, "has an '&' not closed by '-' (modified UTF-7)")
        encoded = match.group(1)
        if not encoded:
            out.append("&")
        else:
            if previous_run_end == position:
                raise InvalidInput("name", raw, "has two adjacent encoded runs (modified UTF-7)")
            out.append(_decode_run(raw, encoded))
            previous_run_end = match.end()
        position = match.end()
    return "".join(out)


def _decode_run(raw: str, encoded: str) -> str:
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
        text = data.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidInput("name", raw, "has an encoded run that is not UTF-16 base64") from None
    # Canonical form only: the shortest base64 with zero padding bits, and no
    # printable ASCII encoded (it must stand for itself).
    if len(data) % 2 or base64.b64encode(data).decode().rstrip("=").replace("/", ",") != encoded:
        raise InvalidInput("name", raw, "has an encoded run that is not canonical base64")
    if any(_printable(char) for char in text):
        raise InvalidInput("name", raw, "encodes printable ASCII (modified UTF-7 forbids it)")
    return text


# -- IMAP: LIST and XLIST responses ----------------------------------------------------------

SENT_NAME_GUESSES = (
    "Sent",
    "Sent Items",
    "Sent Mail",
    "Sent Messages",
    "Gesendet",
    "Gesendete Objekte",
    "Gesendete Elemente",
    "Envoyés",
    "Éléments envoyés",
    "Messages envoyés",
    "Enviados",
    "Elementos enviados",
    "Itens enviados",
    "Inviati",
    "Posta inviata",
    "Elementi inviati",
    "Verzonden",
    "Verzonden items",
    "Skickat",
    "Sendt",
    "Wysłane",
    "Отправленные",
    "送信済み",
    "送信済みアイテム",
    "已发送",
)
"""The folder names `mailbox_from_imap(..., guess_sent=True)` takes for SENT on a server
without SPECIAL-USE: a top-level folder or a direct child of INBOX, compared without
regard to case or Unicode normalisation."""

_GUESSES = frozenset(unicodedata.normalize("NFC", name).casefold() for name in SENT_NAME_GUESSES)
# RFC 6154 use attributes, and the XLIST markers that preceded them: a server
# that sends any of them marks its special folders, so there is nothing to guess.
_SPECIAL_USE = frozenset(
    {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash"}
    | {"\\allmail", "\\spam", "\\starred", "\\important", "\\inbox"}
)
_PREFIX = re.compile(rb"\*[ ]+(X?LIST)[ ]+", re.IGNORECASE)
_FLAG = re.compile(rb"\\?[^\x00-\x20\x7f-\xff(){%*\"\\\]]+")
_ATOM = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\]+")
_LITERAL = re.compile(rb"\{([0-9]{1,9})\+?\}\r\n")


@attrs.frozen
class _Entry:
    flags: frozenset[str]
    delimiter: str | None
    raw: str
    display: str
    where: str


class _Line:
    """One LIST response being read, byte by byte, with errors naming the item."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data = data
        self.at = 0
        self.where = where

    def fail(self, problem: str) -> NoReturn:
        shown = self.data.decode("utf-8", "backslashreplace")
        raise InvalidInput(self.where, shown, f"is not a LIST response line: {problem}")

    def expect(self, token: bytes, what: str) -> None:
        if not self.data.startswith(token, self.at):
            self.fail(f"expected {what} at offset {self.at}")
        self.at += len(token)

    def flags(self) -> list[str]:
        self.expect(b"(", "'(' opening the attributes")
        flags: list[str] = []
        while not self.data.startswith(b")", self.at):
            if flags:
                self.expect(b" ", "a space between attributes")
            match = _FLAG.match(self.data, self.at)
            if match is None:
                self.fail(f"expected an attribute such as \\HasNoChildren at offset {self.at}")
            flags.append(match.group().decode("ascii"))
            self.at = match.end()
        self.at += 1
        return flags

    def delimiter(self) -> str | None:
        if self.data[self.at : self.at + 3].upper() == b"NIL":
            self.at += 3
            return None
        self.expect(b'"', "the quoted hierarchy delimiter or NIL")
        char = self.data[self.at : self.at + 1]
        if char == b"\\":
            self.at += 1
            char = self.data[self.at : self.at + 1]
            if char not in (b'"', b"\\"):
                self.fail("a delimiter may escape only '\"' and '\\'")
        elif char in (b'"', b"") or not 0x20 < char[0] < 0x7F:
            self.fail("the hierarchy delimiter must be one printable character")
        self.at += 1
        self.expect(b'"', "'\"' closing the hierarchy delimiter")
        return char.decode("ascii")

    def name(self) -> bytes:
        data = self.data
        if data.startswith(b'"', self.at):
            out = bytearray()
            self.at += 1
            while True:
                char = data[self.at : self.at + 1]
                if char == b"":
                    self.fail("the quoted mailbox name is not closed")
                self.at += 1
                if char == b'"':
                    return bytes(out)
                if char == b"\\":
                    char = data[self.at : self.at + 1]
                    if char not in (b'"', b"\\"):
                        self.fail("a quoted name may escape only '\"' and '\\'")
                    self.at += 1
                elif char in (b"\r", b"\n", b"\x00"):
                    self.fail("a quoted name cannot hold CR, LF or NUL")
                out += char
        literal = _LITERAL.match(data, self.at)
        if literal is not None:
            size = int(literal.group(1))
            start = literal.end()
            if start + size > len(data):
                self.fail(f"the literal announces {size} octets and fewer follow")
            self.at = start + size
            return data[start : self.at]
        atom = _ATOM.match(data, self.at)
        if atom is None:
            self.fail(f"expected the mailbox name (quoted, literal or atom) at offset {self.at}")
        self.at = atom.end()
        return atom.group()

    def rest(self) -> None:
        # RFC 5258 extended data, e.g. ("CHILDINFO" ("SUBSCRIBED")), is not needed here.
        tail = self.data[self.at :]
        if tail and not (tail.startswith(b" (") and tail.endswith(b")")):
            self.fail("unexpected text after the mailbox name")


def _as_bytes(item: object, where: str) -> bytes:
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str):
        try:
            return item.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(where, item, "is not encodable text") from None
    raise InvalidInput(where, item, "is not a LIST response line (str or bytes)")


def _responses(lines: object) -> Iterator[tuple[bytes, str]]:
    """Each whole LIST response with where it starts; joins imaplib's (header, literal) pairs.

    imaplib returns a response holding a literal as ``(b'() "/" {5}', b'Sales')``
    followed by the rest of the line as the next item.
    """
    if isinstance(lines, str | bytes) or not isinstance(lines, Iterable):
        raise InvalidInput("lines", lines, "must be a collection of LIST response lines")
    pending: bytes | None = None
    start = ""
    for index, item in enumerate(lines):
        where = f"lines[{index}]"
        if item is None:
            continue  # imaplib's answer when the server sent no line at all: [None]
        if isinstance(item, tuple):
            if len(item) != 2:
                raise InvalidInput(where, item, "is not a (line, literal) pair as imaplib gives")
            head, literal = _as_bytes(item[0], where), _as_bytes(item[1], where)
            if pending is None:
                pending, start = b"", where
            pending += head + b"\r\n" + literal
            continue
        data = _as_bytes(item, where)
        if pending is not None:
            yield pending + data, start
            pending = None
            continue
        yield data.removesuffix(b"\r\n"), where
    if pending is not None:
        yield pending, start


def _parse(data: bytes, where: str) -> _Entry:
    line = _Line(data, where)
    prefix = _PREFIX.match(data)
    if prefix is not None:
        line.at = prefix.end()
    elif not data.startswith(b"("):
        line.fail("expected '* LIST', '* XLIST' or the attributes")
    flags = line.flags()
    line.expect(b" ", "a space after the attributes")
    delimiter = line.delimiter()
    line.expect(b" ", "a space after the hierarchy delimiter")
    name = line.name()
    line.rest()
    if not name.strip():
        line.fail("the mailbox name is empty")
    if name.isascii():
        raw = name.decode("ascii")
        try:
            segments = [decode_imap_name(part) for part in _split(raw, delimiter)]
        except InvalidInput:
            # Not modified UTF-7 (written by a careless client): shown as sent;
            # the id is the raw name either way, so the folder is still found.
            segments = _split(raw, delimiter)
    else:
        # RFC 6855 (UTF8=ACCEPT): the server sends UTF-8 names as they are.
        try:
            raw = name.decode("utf-8")
        except UnicodeDecodeError:
            line.fail("the mailbox name is neither modified UTF-7 nor UTF-8")
        segments = _split(raw, delimiter)
    if segments[0].casefold() == "inbox":
        segments[0] = "Inbox"
    display = "/".join(segments)
    return _Entry(frozenset(f.casefold() for f in flags), delimiter, raw, display or raw, where)


def _split(name: str, delimiter: str | None) -> list[str]:
    return name.split(delimiter) if delimiter else [name]


def _role(entry: _Entry) -> SystemLabel | None:
    inbox = entry.raw.casefold() == "inbox" or "\\inbox" in entry.flags
    sent = "\\sent" in entry.flags
    if inbox and sent:
        raise InvalidInput(entry.where, entry.raw, "is marked both INBOX and \\Sent")
    if inbox:
        return SystemLabel.INBOX
    return SystemLabel.SENT if sent else None


def _guess_key(entry: _Entry) -> str:
    name = entry.display
    if entry.delimiter and name.startswith("Inbox/"):
        name = name[len("Inbox/") :]
    return unicodedata.normalize("NFC", name).casefold()


def mailbox_from_imap(
    address: str,
    lines: Iterable[str | bytes | tuple[bytes, bytes] | None],
    *,
    guess_sent: bool = False,
) -> Mailbox:
    """The IMAP mailbox `address` as the server's ``LIST`` (or ``XLIST``) response lists it.

    `lines` are the response lines, str or bytes, with or without the leading
    ``* LIST``, quoted, atom or literal names, as imaplib's ``IMAP4.list()``
    returns them too. INBOX (in any case, or XLIST's ``\\Inbox``) gets the id
    ``INBOX``; RFC 6154 ``\\Sent`` (or XLIST's) marks SENT. Every other id is
    the raw name, so the server finds it again; the display name is its path
    decoded from modified UTF-7 with ``/`` between levels. ``\\Noselect`` and
    ``\\NonExistent`` containers hold no mail and are left out.

    A server that marks no folder at all (no SPECIAL-USE) gets no SENT role,
    unless `guess_sent` opts in: then the one folder named as in
    `SENT_NAME_GUESSES` becomes SENT with ``guessed=True``; none or several such
    names, no guess. Malformed lines, two folders claiming one role, or no
    INBOX raise `InvalidInput` naming the line.
    """
    if not isinstance(guess_sent, bool):
        raise InvalidInput("guess_sent", guess_sent, "must be True or False")
    entries = [_parse(data, where) for data, where in _responses(lines)]
    marked = any(entry.flags & _SPECIAL_USE for entry in entries)
    labels: list[Label] = []
    seen: dict[str, str] = {}
    claims: dict[SystemLabel, tuple[str, str]] = {}
    candidates: list[int] = []
    for entry in entries:
        role = _role(entry)
        if entry.flags & {"\\noselect", "\\nonexistent"}:
            if role is not None:
                raise InvalidInput(entry.where, entry.raw, f"is \\Noselect yet holds {role.name}")
            continue
        label_id = "INBOX" if role is SystemLabel.INBOX else entry.raw
        if label_id in seen:
            raise InvalidInput(
                entry.where, entry.raw, f"lists the mailbox of {seen[label_id]} again"
            )
        seen[label_id] = entry.where
        if role is not None:
            _claim(claims, role, label_id, entry.where)
        elif guess_sent and not marked and _guess_key(entry) in _GUESSES:
            candidates.append(len(labels))
        labels.append(Label(id=label_id, name=entry.display, system=role))
    if SystemLabel.INBOX not in claims:
        _no_inbox("lines", f"<{len(entries)} lines>", "every IMAP server lists INBOX")
    if len(candidates) == 1:
        guessed = labels[candidates[0]]
        labels[candidates[0]] = attrs.evolve(guessed, system=SystemLabel.SENT, guessed=True)
    return Mailbox(provider=Provider.IMAP, address=address, labels=labels)
