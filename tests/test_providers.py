"""B3: INBOX and SENT recognised the way each provider marks them, never by display name."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Defaults,
    InvalidInput,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    email_tab,
)
from labelsync._validate import text_problem
from labelsync.adapters._records import label_from_row, label_row
from labelsync.adapters.sqlite import SqliteStore
from labelsync.model import HIDDEN_NOTE, SYNC_ENABLED_NOTE
from labelsync.providers import (
    decode_imap_name,
    encode_imap_name,
    gmail_label,
    graph_folder,
    imap_mailbox,
    imap_role,
    mailbox_from_gmail,
    mailbox_from_graph,
    mailbox_from_imap,
)
from labelsync.rules import apply_to_user
from labelsync.testing.strategies import CUSTOM_NAMES, INBOX_NAMES, SENT_NAMES

# Any name the input policy allows (valid Unicode, no NUL, not blank).
ANY_NAME = st.sampled_from(INBOX_NAMES + SENT_NAMES + CUSTOM_NAMES) | st.text(min_size=1).filter(
    lambda name: text_problem(name) is None
)

# Gmail


@pytest.mark.parametrize(
    ("label_id", "name", "role"),
    [
        ("INBOX", "Inbox", SystemLabel.INBOX),
        ("SENT", "Sent", SystemLabel.SENT),
        ("INBOX", "Posteingang", SystemLabel.INBOX),
        ("SENT", "Éléments envoyés", SystemLabel.SENT),
    ],
)
def test_gmail_system_labels_are_recognised_by_their_reserved_id(
    label_id: str, name: str, role: SystemLabel
) -> None:
    assert Label(id=label_id, name=name, system=role) == gmail_label(label_id, name)


@pytest.mark.parametrize(
    ("label_id", "name"),
    [("Label_3", "Inbox"), ("Label_4", "Sent"), ("Label_7", "Project X"), ("inbox", "Inbox")],
)
def test_a_gmail_user_label_is_custom_whatever_its_name(label_id: str, name: str) -> None:
    assert gmail_label(label_id, name).system is None


@given(st.integers(1, 10_000), ANY_NAME)
def test_no_gmail_user_label_name_makes_it_a_system_label(number: int, name: str) -> None:
    """B3/R9: a Gmail user label id (Label_N) never gets a role, whatever it is called."""
    assert gmail_label(f"Label_{number}", name).system is None


# Microsoft Graph


@pytest.mark.parametrize(
    ("well_known", "role"),
    [
        ("inbox", SystemLabel.INBOX),
        ("Inbox", SystemLabel.INBOX),
        ("INBOX", SystemLabel.INBOX),
        ("sentitems", SystemLabel.SENT),
        ("sentItems", SystemLabel.SENT),
        ("SentItems", SystemLabel.SENT),
        ("SENTITEMS", SystemLabel.SENT),
    ],
)
def test_graph_well_known_names_give_the_role_in_any_case(
    well_known: str, role: SystemLabel
) -> None:
    assert role is graph_folder("AAMkAD01", "Whatever", well_known).system


@pytest.mark.parametrize(
    ("display_name", "well_known", "role"),
    [
        ("Posteingang", "inbox", SystemLabel.INBOX),
        ("Boîte de réception", "inbox", SystemLabel.INBOX),
        ("Gesendete Elemente", "sentitems", SystemLabel.SENT),
        ("Éléments envoyés", "sentitems", SystemLabel.SENT),
        ("Sent Items", "sentitems", SystemLabel.SENT),
    ],
)
def test_localised_graph_folders_are_recognised_by_role(
    display_name: str, well_known: str, role: SystemLabel
) -> None:
    assert Label(id="AAMkAD01", name=display_name, system=role) == graph_folder(
        "AAMkAD01", display_name, well_known
    )


@pytest.mark.parametrize(
    ("display_name", "well_known"),
    [
        ("Inbox", None),
        ("Sent Items", None),
        ("Inbox", ""),
        ("Inbox", "drafts"),
        ("Sent", "archive"),
        ("Posteingang", "deleteditems"),
    ],
)
def test_a_graph_folder_without_the_well_known_name_is_custom(
    display_name: str, well_known: str | None
) -> None:
    assert graph_folder("AAMkAD02", display_name, well_known).system is None


@given(ANY_NAME)
def test_no_graph_display_name_makes_a_folder_a_system_label(name: str) -> None:
    """B3/R9: without a well-known name a Graph folder is custom, whatever it is called."""
    assert graph_folder("AAMkAD03", name).system is None


# IMAP


@pytest.mark.parametrize("name", ["INBOX", "Inbox", "inbox", "iNbOx"])
def test_imap_inbox_is_recognised_in_any_case(name: str) -> None:
    """RFC 3501: INBOX is case-insensitive, so every spelling is the one folder with id INBOX."""
    assert Label(id="INBOX", name=name, system=SystemLabel.INBOX) == imap_mailbox(name)
    assert SystemLabel.INBOX is imap_role(name)


@pytest.mark.parametrize(
    ("name", "attributes", "delimiter", "display"),
    [
        ("Sent", ("\\Sent",), "/", "Sent"),
        ("Gesendete Objekte", ("\\HasNoChildren", "\\Sent"), "/", "Gesendete Objekte"),
        ("[Gmail]/Sent Mail", ("\\Sent",), "/", "Sent Mail"),
        ("INBOX.Sent", ("\\Sent",), ".", "Sent"),
        ("Éléments envoyés", ("\\sent",), "/", "Éléments envoyés"),
    ],
)
def test_imap_sent_is_recognised_by_the_rfc_6154_attribute(
    name: str, attributes: tuple[str, ...], delimiter: str, display: str
) -> None:
    assert Label(id=name, name=display, system=SystemLabel.SENT) == imap_mailbox(
        name, attributes, delimiter
    )


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        ("Sent", ()),
        ("Sent Items", ("\\HasNoChildren",)),
        ("Projects/Inbox", ()),
        ("Projects/Sent", ("\\HasNoChildren",)),
        ("INBOX/Receipts", ()),
        ("Archive", ("\\Archive",)),
    ],
)
def test_an_imap_mailbox_without_inbox_name_or_sent_attribute_is_custom(
    name: str, attributes: tuple[str, ...]
) -> None:
    assert imap_mailbox(name, attributes).system is None
    assert imap_role(name, attributes) is None


def test_a_custom_imap_folder_called_inbox_keeps_its_full_name_as_id() -> None:
    assert Label(id="Projects/Inbox", name="Inbox", system=None) == imap_mailbox("Projects/Inbox")


def test_an_imap_mailbox_without_delimiter_shows_its_full_name() -> None:
    assert "INBOX.Sent" == imap_mailbox("INBOX.Sent", ("\\Sent",), None).name


def test_an_empty_imap_mailbox_name_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        imap_mailbox("")
    assert ("name", "") == (caught.value.field, caught.value.value)


# Recognised labels in a push


@pytest.mark.parametrize(
    ("provider", "labels", "inbox_id", "sent_id"),
    [
        pytest.param(
            Provider.GMAIL,
            (
                gmail_label("Label_3", "Inbox"),
                gmail_label("INBOX", "Posteingang"),
                gmail_label("SENT", "Gesendet"),
            ),
            "INBOX",
            "SENT",
            id="gmail",
        ),
        pytest.param(
            Provider.MICROSOFT,
            (
                graph_folder("AAMk-x", "Inbox"),
                graph_folder("AAMk-in", "Boîte de réception", "inbox"),
                graph_folder("AAMk-sent", "Éléments envoyés", "sentitems"),
            ),
            "AAMk-in",
            "AAMk-sent",
            id="graph",
        ),
        pytest.param(
            Provider.IMAP,
            (
                imap_mailbox("Projects/Inbox"),
                imap_mailbox("INBOX"),
                imap_mailbox("Gesendete Objekte", ("\\Sent",)),
            ),
            "INBOX",
            "Gesendete Objekte",
            id="imap",
        ),
    ],
)
def test_a_push_selects_the_provider_system_labels_and_not_a_custom_label_called_inbox(
    provider: Provider, labels: tuple[Label, ...], inbox_id: str, sent_id: str
) -> None:
    """B3/R9/R5: the custom "Inbox" stays unselected; the real INBOX and SENT are selected."""
    custom_id = labels[0].id
    user = User(
        id="u1",
        email="ana@acme.io",
        mailbox=Mailbox(provider=provider, address="ana@acme.io", labels=labels),
    )
    after, _ = apply_defaults(
        Tenant(id="t1", name="Acme", users=(user,)), Defaults(inbox=True, sent=True)
    )
    assert LabelSet([inbox_id, sent_id]) == after.user("u1").synced
    assert custom_id not in after.user("u1").synced


def test_an_inbox_synced_under_another_spelling_is_still_deselected() -> None:
    """R4/B3: a server listing "inbox" and a selection holding "INBOX" name the same folder."""
    mailbox = Mailbox(provider=Provider.IMAP, address="a@x.io", labels=(imap_mailbox("inbox"),))
    user = User(id="u", email="a@x.io", mailbox=mailbox, synced=LabelSet(["INBOX"]))
    outcome = apply_to_user(user, Defaults(inbox=False, sent=False))
    assert LabelSet() == outcome.user.synced


# ---------------------------------------------------------------------------------------------
# Reading real provider data: mailbox_from_gmail, mailbox_from_graph, mailbox_from_imap
# ---------------------------------------------------------------------------------------------

Row = tuple[str, str, SystemLabel | None]


def rows(mailbox: Mailbox) -> list[Row]:
    return [(label.id, label.name, label.system) for label in mailbox.labels]


def roles(mailbox: Mailbox) -> tuple[str | None, str | None]:
    return mailbox.label_id(SystemLabel.INBOX), mailbox.label_id(SystemLabel.SENT)


# Gmail users.labels.list, as the API reference documents the response: system
# labels named by their id, user labels "Label_N", visibility fields optional.
GMAIL_RESPONSE: dict[str, object] = {
    "labels": [
        {
            "id": "CHAT",
            "name": "CHAT",
            "messageListVisibility": "hide",
            "labelListVisibility": "labelHide",
            "type": "system",
        },
        {"id": "SENT", "name": "SENT", "type": "system"},
        {"id": "INBOX", "name": "INBOX", "type": "system"},
        {
            "id": "IMPORTANT",
            "name": "IMPORTANT",
            "messageListVisibility": "hide",
            "labelListVisibility": "labelShow",
            "type": "system",
        },
        {"id": "CATEGORY_SOCIAL", "name": "CATEGORY_SOCIAL", "type": "system"},
        {"id": "DRAFT", "name": "DRAFT", "type": "system"},
        {
            "id": "Label_1",
            "name": "Inbox",
            "messageListVisibility": "show",
            "labelListVisibility": "labelShow",
            "type": "user",
            "color": {"textColor": "#ffffff", "backgroundColor": "#16a766"},
        },
        {"id": "Label_2", "name": "Clients/Acme", "type": "user"},
        {
            "id": "Label_3",
            "name": "Receipts (old)",
            "labelListVisibility": "labelHide",
            "type": "user",
        },
    ]
}


def test_gmail_system_ids_give_the_roles_and_a_user_label_called_inbox_stays_custom() -> None:
    """Held-out scenario "Gmail system ids" (B3, R9): INBOX and SENT by their reserved ids."""
    mailbox = mailbox_from_gmail("ana@gmail.test", GMAIL_RESPONSE)

    assert Provider.GMAIL is mailbox.provider
    assert ("INBOX", "SENT") == roles(mailbox)
    assert [
        ("CHAT", "Chat", None),
        ("SENT", "Sent", SystemLabel.SENT),
        ("INBOX", "Inbox", SystemLabel.INBOX),
        ("IMPORTANT", "Important", None),
        ("CATEGORY_SOCIAL", "Social", None),
        ("DRAFT", "Drafts", None),
        ("Label_1", "Inbox", None),
        ("Label_2", "Clients/Acme", None),
        ("Label_3", "Receipts (old)", None),
    ] == rows(mailbox)


def test_gmail_labels_hidden_from_the_label_list_are_kept_and_marked_hidden() -> None:
    mailbox = mailbox_from_gmail("ana@gmail.test", GMAIL_RESPONSE)

    assert {"CHAT", "Label_3"} == {label.id for label in mailbox.labels if label.hidden}


def test_a_gmail_system_label_with_a_localised_name_keeps_it() -> None:
    response = {
        "labels": [
            {"id": "INBOX", "name": "Posteingang", "type": "system"},
            {"id": "SENT", "name": "Gesendet", "type": "system"},
        ]
    }

    assert [
        ("INBOX", "Posteingang", SystemLabel.INBOX),
        ("SENT", "Gesendet", SystemLabel.SENT),
    ] == rows(mailbox_from_gmail("a@x.io", response))


def test_a_gmail_mailbox_without_sent_has_no_sent_role_and_a_push_reports_it() -> None:
    """R7: the label is missing, so the push skips SENT for this User instead of guessing."""
    mailbox = mailbox_from_gmail("a@x.io", {"labels": [{"id": "INBOX", "name": "INBOX"}]})
    user = User(id="u", email="a@x.io", mailbox=mailbox)

    outcome = apply_to_user(user, Defaults(inbox=True, sent=True))

    assert ("INBOX", None) == roles(mailbox)
    assert [(SystemLabel.SENT, SkipReason.LABEL_MISSING)] == [
        (skip.label, skip.reason) for skip in outcome.skipped
    ]


# Microsoft Graph v1.0 GET /me/mailFolders?$expand=childFolders for a German
# mailbox, shaped as documented: no role on any item, the ids opaque.
_ROOT = "AAMkAGI2-root"
GRAPH_GERMAN: dict[str, object] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('ana')/mailFolders",
    "value": [
        {
            "id": "AAMkAGI2-inbox",
            "displayName": "Posteingang",
            "parentFolderId": _ROOT,
            "childFolderCount": 1,
            "unreadItemCount": 3,
            "totalItemCount": 12,
            "sizeInBytes": 40213,
            "isHidden": False,
            "childFolders": [
                {
                    "id": "AAMkAGI2-kunden",
                    "displayName": "Kunden",
                    "parentFolderId": "AAMkAGI2-inbox",
                    "childFolderCount": 0,
                    "isHidden": False,
                }
            ],
        },
        {
            "id": "AAMkAGI2-sent",
            "displayName": "Gesendete Elemente",
            "parentFolderId": _ROOT,
            "childFolderCount": 0,
            "isHidden": False,
        },
        {
            "id": "AAMkAGI2-custom",
            "displayName": "Inbox",
            "parentFolderId": _ROOT,
            "childFolderCount": 0,
            "isHidden": False,
        },
        {"id": "AAMkAGI2-drafts", "displayName": "Entwürfe", "parentFolderId": _ROOT},
        {
            "id": "AAMkAGI2-sync",
            "displayName": "Synchronisierungsprobleme",
            "parentFolderId": _ROOT,
            "isHidden": True,
        },
    ],
}
GRAPH_WELL_KNOWN = {"inbox": "AAMkAGI2-inbox", "sentitems": "AAMkAGI2-sent"}


def test_graph_in_german_with_a_custom_folder_named_inbox() -> None:
    """Held-out scenario: "Posteingang" is INBOX and "Gesendete Elemente" SENT by the
    well-known lookups; the custom folder "Inbox" stays custom (R9); a child shows its path."""
    mailbox = mailbox_from_graph("jürgen@beispiel.de", GRAPH_GERMAN, well_known=GRAPH_WELL_KNOWN)

    assert Provider.MICROSOFT is mailbox.provider
    assert ("AAMkAGI2-inbox", "AAMkAGI2-sent") == roles(mailbox)
    assert [
        ("AAMkAGI2-inbox", "Posteingang", SystemLabel.INBOX),
        ("AAMkAGI2-kunden", "Posteingang/Kunden", None),
        ("AAMkAGI2-sent", "Gesendete Elemente", SystemLabel.SENT),
        ("AAMkAGI2-custom", "Inbox", None),
        ("AAMkAGI2-drafts", "Entwürfe", None),
        ("AAMkAGI2-sync", "Synchronisierungsprobleme", None),
    ] == rows(mailbox)
    assert ["AAMkAGI2-sync"] == [label.id for label in mailbox.labels if label.hidden]


def test_graph_folders_can_be_passed_as_the_value_items_listed_flat() -> None:
    """Children fetched from /childFolders and listed flat find their parent by parentFolderId."""
    items: list[dict[str, object]] = [
        {"id": "in", "displayName": "Inbox", "parentFolderId": _ROOT},
        {"id": "sent", "displayName": "Sent Items", "parentFolderId": _ROOT},
        {"id": "c", "displayName": "Acme", "parentFolderId": "p"},
        {"id": "p", "displayName": "Clients", "parentFolderId": _ROOT, "isHidden": True},
    ]

    mailbox = mailbox_from_graph("a@x.io", items, well_known={"inbox": "in", "sentitems": "sent"})

    assert "Clients/Acme" == mailbox.labels[2].name
    assert mailbox.labels[2].hidden  # its parent is hidden, so it is too


def test_graph_beta_items_carrying_well_known_name_need_no_lookups() -> None:
    items = [
        {"id": "a1", "displayName": "Boîte de réception", "wellKnownName": "inbox"},
        {"id": "a2", "displayName": "Éléments envoyés", "wellKnownName": "sentitems"},
        {"id": "a3", "displayName": "Brouillons", "wellKnownName": "drafts"},
        {"id": "a4", "displayName": "Inbox", "wellKnownName": None},
    ]

    mailbox = mailbox_from_graph("a@x.io", {"value": items})

    assert ("a1", "a2") == roles(mailbox)


def test_a_graph_mailbox_whose_sent_items_lookup_found_nothing_has_no_sent_role() -> None:
    items = [{"id": "in", "displayName": "Inbox"}]

    mailbox = mailbox_from_graph("a@x.io", items, well_known={"Inbox": "in", "SentItems": None})

    assert ("in", None) == roles(mailbox)


# IMAP LIST responses as servers send them.

IMAP_SPECIAL_USE_UTF7 = [
    b'* LIST (\\HasNoChildren) "/" INBOX',
    b'* LIST (\\HasNoChildren \\Sent) "/" "&AMk-l&AOk-ments envoy&AOk-s"',
    b'* LIST (\\HasNoChildren \\Drafts) "/" Brouillons',
    b'* LIST (\\HasNoChildren \\Trash) "/" "Gel&APY-schte Elemente"',
    b'* LIST (\\HasNoChildren) "/" "Sent"',
    b'* LIST (\\HasChildren) "/" Projekte',
    b'* LIST (\\HasNoChildren) "/" "Projekte/Kunde &AMQ-"',
]


def test_imap_special_use_with_modified_utf7() -> None:
    """Held-out scenario: \\Sent marks SENT whatever the name; names are decoded for display,
    ids stay raw; a folder merely called "Sent" is custom (R9)."""
    mailbox = mailbox_from_imap("a@x.io", IMAP_SPECIAL_USE_UTF7)

    assert ("INBOX", "&AMk-l&AOk-ments envoy&AOk-s") == roles(mailbox)
    assert [
        ("INBOX", "Inbox", SystemLabel.INBOX),
        ("&AMk-l&AOk-ments envoy&AOk-s", "Éléments envoyés", SystemLabel.SENT),
        ("Brouillons", "Brouillons", None),
        ("Gel&APY-schte Elemente", "Gelöschte Elemente", None),
        ("Sent", "Sent", None),
        ("Projekte", "Projekte", None),
        ("Projekte/Kunde &AMQ-", "Projekte/Kunde Ä", None),
    ] == rows(mailbox)


IMAP_GMAIL = [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"',
    '* LIST (\\All \\HasNoChildren) "/" "[Gmail]/All Mail"',
    '* LIST (\\Drafts \\HasNoChildren) "/" "[Gmail]/Drafts"',
    '* LIST (\\HasNoChildren \\Important) "/" "[Gmail]/Important"',
    '* LIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
    '* LIST (\\HasNoChildren \\Junk) "/" "[Gmail]/Spam"',
    '* LIST (\\Flagged \\HasNoChildren) "/" "[Gmail]/Starred"',
    '* LIST (\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"',
    '* LIST (\\HasChildren) "/" "Clients"',
    '* LIST (\\HasNoChildren) "/" "Clients/Inbox"',
]


def test_the_gmail_style_imap_hierarchy() -> None:
    """Held-out scenario: SENT is "[Gmail]/Sent Mail" by \\Sent; the \\Noselect "[Gmail]"
    container holds no mail and is left out; "Clients/Inbox" is custom."""
    mailbox = mailbox_from_imap("ana@gmail.test", IMAP_GMAIL)

    assert ("INBOX", "[Gmail]/Sent Mail") == roles(mailbox)
    assert "[Gmail]" not in {label.id for label in mailbox.labels}
    assert ("Clients/Inbox", "Clients/Inbox", None) in rows(mailbox)
    assert 10 == len(mailbox.labels)


def test_the_legacy_xlist_form_marks_a_localised_inbox_and_sent() -> None:
    """XLIST (Gmail before RFC 6154): \\Inbox names the inbox, whose id is still INBOX."""
    lines = [
        '* XLIST (\\HasNoChildren \\Inbox) "/" "Posteingang"',
        '* XLIST (\\Noselect \\HasChildren) "/" "[Google Mail]"',
        '* XLIST (\\HasNoChildren \\AllMail) "/" "[Google Mail]/Alle Nachrichten"',
        '* XLIST (\\HasNoChildren \\Sent) "/" "[Google Mail]/Gesendet"',
        '* XLIST (\\HasNoChildren \\Spam) "/" "[Google Mail]/Spam"',
    ]

    mailbox = mailbox_from_imap("a@x.io", lines)

    assert ("INBOX", "[Google Mail]/Gesendet") == roles(mailbox)
    assert "Posteingang" == mailbox.labels[0].name


def test_the_dot_delimiter_with_a_lowercase_inbox() -> None:
    """Held-out scenario: "inbox" is INBOX (RFC 3501, any case) with the id INBOX; folders
    below it keep their raw names as ids and show the path with "/"."""
    lines = [
        '* LIST (\\HasChildren) "." "inbox"',
        '* LIST (\\HasNoChildren \\Sent) "." "inbox.Sent Items"',
        '* LIST (\\HasNoChildren) "." "inbox.Projekte"',
        '* LIST (\\HasNoChildren) "." "inbox.Projekte.Inbox"',
    ]

    mailbox = mailbox_from_imap("a@x.io", lines)

    assert [
        ("INBOX", "Inbox", SystemLabel.INBOX),
        ("inbox.Sent Items", "Inbox/Sent Items", SystemLabel.SENT),
        ("inbox.Projekte", "Inbox/Projekte", None),
        ("inbox.Projekte.Inbox", "Inbox/Projekte/Inbox", None),
    ] == rows(mailbox)


IMAP_NO_SPECIAL_USE = [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren) "/" "Sent"',
    '* LIST (\\HasNoChildren) "/" "Drafts"',
    '* LIST (\\HasNoChildren) "/" "Projects/Sent"',
]


def test_no_sent_role_without_special_use() -> None:
    """Held-out scenario (R9): without SPECIAL-USE a folder called "Sent" is only a name."""
    mailbox = mailbox_from_imap("a@x.io", IMAP_NO_SPECIAL_USE)

    assert ("INBOX", None) == roles(mailbox)
    assert not any(label.guessed for label in mailbox.labels)


def test_opting_in_guesses_the_one_sent_name_and_marks_the_guess() -> None:
    mailbox = mailbox_from_imap("a@x.io", IMAP_NO_SPECIAL_USE, guess_sent=True)

    assert ("INBOX", "Sent") == roles(mailbox)
    sent = mailbox.label(SystemLabel.SENT)
    assert sent is not None
    assert sent.guessed
    assert Label(id="Projects/Sent", name="Projects/Sent") == mailbox.get("Projects/Sent")


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (
            ['* LIST () "/" INBOX', '* LIST () "/" Sent', '* LIST () "/" "Sent Items"'],
            "two folders are named like Sent, so which is Sent is not known",
        ),
        (
            ['* LIST () "/" INBOX', '* LIST (\\Drafts) "/" Entw&APw-rfe', '* LIST () "/" Sent'],
            "the server marks its folders (SPECIAL-USE) and marks none \\Sent",
        ),
        (['* LIST () "/" INBOX', '* LIST () "/" Archive'], "no folder is named like Sent"),
    ],
)
def test_opting_in_guesses_nothing_when_the_guess_is_not_safe(lines: list[str], why: str) -> None:
    assert None is mailbox_from_imap("a@x.io", lines, guess_sent=True).label_id(SystemLabel.SENT)


def test_a_guess_follows_a_localised_name_under_inbox() -> None:
    lines = ['* LIST () "." INBOX', '* LIST () "." "INBOX.Gesendete Objekte"']

    mailbox = mailbox_from_imap("a@x.io", lines, guess_sent=True)

    assert "INBOX.Gesendete Objekte" == mailbox.label_id(SystemLabel.SENT)


def test_literal_names_are_read_from_raw_lines_and_from_imaplib_pairs() -> None:
    """A literal ({N} CRLF then N octets) on the wire, and imaplib's (header, literal) pair."""
    wire = [b'* LIST () "/" INBOX', b'* LIST (\\Sent) "/" {9}\r\nGesendet!']
    imaplib_shape: list[bytes | tuple[bytes, bytes]] = [
        b'() "/" INBOX',
        (b'(\\Sent) "/" {9}', b"Gesendet!"),
        b"",
        (b'() "/" {7}', "Entwürfe"[:4].encode() + b"&-x"),
        b"",
    ]

    assert "Gesendet!" == mailbox_from_imap("a@x.io", wire).label_id(SystemLabel.SENT)
    via_imaplib = mailbox_from_imap("a@x.io", imaplib_shape)
    assert ["INBOX", "Gesendet!", "Entw&-x"] == [label.id for label in via_imaplib.labels]
    assert "Entw&x" == via_imaplib.labels[2].name


def test_str_and_bytes_lines_and_extended_list_data_read_the_same() -> None:
    as_str = ['* LIST (\\HasNoChildren) "/" INBOX', '* LIST (\\Sent) "/" "Sent Items"']
    as_bytes = [line.encode() + b"\r\n" for line in as_str]
    extended = [
        '* LIST (\\HasNoChildren) "/" INBOX ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\Sent) "/" "Sent Items"',
    ]

    expected = mailbox_from_imap("a@x.io", as_str)
    assert expected == mailbox_from_imap("a@x.io", as_bytes)
    assert expected == mailbox_from_imap("a@x.io", extended)


def test_a_utf8_name_from_a_utf8_accept_server_is_kept_as_it_is() -> None:
    """RFC 6855: after ENABLE UTF8=ACCEPT names arrive in UTF-8, not modified UTF-7."""
    lines = ['* LIST () "/" INBOX', '* LIST (\\Sent) "/" "Éléments envoyés"']

    mailbox = mailbox_from_imap("a@x.io", lines)

    assert ("Éléments envoyés", "Éléments envoyés", SystemLabel.SENT) == rows(mailbox)[1]


def test_a_name_that_is_not_modified_utf7_is_shown_as_the_server_sent_it() -> None:
    lines = ['* LIST () "/" INBOX', '* LIST () "/" "AT&T"']

    assert ("AT&T", "AT&T", None) == rows(mailbox_from_imap("a@x.io", lines))[1]


# Five (and more) malformed inputs, each refused with InvalidInput naming the item.


def refusal(call: Callable[[], object]) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        call()
    return raised.value


def test_five_malformed_inputs_are_refused_naming_the_item() -> None:
    """Held-out scenario: malformed responses, two folders claiming one role and no INBOX
    raise InvalidInput whose field names the item, so the host can log what was wrong."""
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: mailbox_from_gmail("a@x.io", {"label": []}), "response['labels']"),
        (
            lambda: mailbox_from_gmail(
                "a@x.io", {"labels": [{"id": "INBOX", "name": "INBOX"}, {"name": "Orphan"}]}
            ),
            "response['labels'][1].id",
        ),
        (
            lambda: mailbox_from_graph(
                "a@x.io", GRAPH_GERMAN, well_known={"inbox": "AAMk-gone", "sentitems": None}
            ),
            "well_known['inbox']",
        ),
        (
            lambda: mailbox_from_imap("a@x.io", ['* LIST () "/" INBOX', '* LIST () "/" "Sent']),
            "lines[1]",
        ),
        (
            lambda: mailbox_from_imap(
                "a@x.io",
                ['* LIST () "/" INBOX', '* LIST (\\Sent) "/" Sent', '* LIST (\\Sent) "/" Outbox'],
            ),
            "lines[2]",
        ),
        (lambda: mailbox_from_imap("a@x.io", ['* LIST (\\Sent) "/" Sent']), "lines"),
    ]
    assert [field for _, field in cases] == [refusal(call).field for call, _ in cases]


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        pytest.param(
            lambda: mailbox_from_gmail("a@x.io", {"labels": "INBOX"}),
            "response['labels']",
            "must be a list",
            id="gmail-labels-not-a-list",
        ),
        pytest.param(
            lambda: mailbox_from_gmail("a@x.io", {"labels": [{"id": "Label_1", "name": "X"}]}),
            "response['labels']",
            "has no INBOX",
            id="gmail-no-inbox",
        ),
        pytest.param(
            lambda: mailbox_from_gmail(
                "a@x.io", {"labels": [{"id": "INBOX", "name": "Inbox", "type": "user"}]}
            ),
            "response['labels'][0].type",
            "must be 'system'",
            id="gmail-reserved-id-as-user-label",
        ),
        pytest.param(
            lambda: mailbox_from_gmail(
                "a@x.io",
                {"labels": [{"id": "INBOX", "name": "INBOX"}, {"id": "INBOX", "name": "B"}]},
            ),
            "response['labels'][1].id",
            "also the id of response['labels'][0]",
            id="gmail-duplicate-id",
        ),
        pytest.param(
            lambda: mailbox_from_graph("a@x.io", GRAPH_GERMAN["value"]),  # type: ignore[arg-type]
            "folders",
            "pass well_known",
            id="graph-v1-without-lookups",
        ),
        pytest.param(
            lambda: mailbox_from_graph(
                "a@x.io", GRAPH_GERMAN, well_known={"inbox": "AAMkAGI2-inbox"}
            ),
            "well_known['sentitems']",
            "is missing",
            id="graph-forgotten-sentitems-lookup",
        ),
        pytest.param(
            lambda: mailbox_from_graph(
                "a@x.io",
                [
                    {"id": "a", "displayName": "Inbox", "wellKnownName": "inbox"},
                    {"id": "b", "displayName": "Posteingang", "wellKnownName": "inbox"},
                ],
            ),
            "folders[1].wellKnownName",
            "already holds",
            id="graph-two-inboxes",
        ),
        pytest.param(
            lambda: mailbox_from_graph(
                "a@x.io",
                {"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/next"},
                well_known=GRAPH_WELL_KNOWN,
            ),
            "folders['@odata.nextLink']",
            "one page",
            id="graph-one-page-of-many",
        ),
        pytest.param(
            lambda: mailbox_from_graph(
                "a@x.io",
                [{"id": "a", "displayName": ""}],
                well_known={"inbox": "a", "sentitems": None},
            ),
            "folders[0].displayName",
            "non-empty",
            id="graph-blank-name",
        ),
        pytest.param(
            lambda: mailbox_from_graph(
                "a@x.io",
                [
                    {"id": "a", "displayName": "A", "parentFolderId": "b"},
                    {"id": "b", "displayName": "B", "parentFolderId": "a"},
                ],
                well_known={"inbox": "a", "sentitems": None},
            ),
            "folders[1].parentFolderId",
            "cycle",
            id="graph-parent-cycle",
        ),
        pytest.param(
            lambda: mailbox_from_imap("a@x.io", [b'* LIST () "/" {20}\r\nshort']),
            "lines[0]",
            "fewer follow",
            id="imap-short-literal",
        ),
        pytest.param(
            lambda: mailbox_from_imap("a@x.io", ['* LIST () "/" INBOX', '* LIST () "/" inbox']),
            "lines[1]",
            "again",
            id="imap-inbox-twice",
        ),
        pytest.param(
            lambda: mailbox_from_imap("a@x.io", ["* STATUS INBOX (MESSAGES 3)"]),
            "lines[0]",
            "expected '* LIST'",
            id="imap-not-a-list-response",
        ),
        pytest.param(
            lambda: mailbox_from_imap("a@x.io", ['* LIST () "//" INBOX']),
            "lines[0]",
            "closing the hierarchy delimiter",
            id="imap-two-char-delimiter",
        ),
        pytest.param(
            lambda: mailbox_from_imap("a@x.io", '* LIST () "/" INBOX'),
            "lines",
            "collection",
            id="imap-one-string-not-a-list",
        ),
        pytest.param(
            lambda: mailbox_from_imap("a@x.io", [b'* LIST () "/" "\xff\xfe"']),
            "lines[0]",
            "neither modified UTF-7 nor UTF-8",
            id="imap-undecodable-name",
        ),
    ],
)
def test_a_malformed_response_is_refused_naming_the_item(
    call: Callable[[], object], field: str, words: str
) -> None:
    error = refusal(call)

    assert field == error.field
    assert words in str(error)


# Modified UTF-7 (RFC 3501 5.1.3)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Entw&APw-rfe", "Entwürfe"),
        ("&AMk-l&AOk-ments envoy&AOk-s", "Éléments envoyés"),
        ("&ZeVnLIqe-", "日本語"),
        ("&U,BTF2XlZyyKng-", "台北日本語"),
        ("A&-B", "A&B"),
        ("&2D3eAA-", "😀"),
        ("Sent Items", "Sent Items"),
    ],
)
def test_modified_utf7_names_decode_as_rfc_3501_shows(raw: str, name: str) -> None:
    assert name == decode_imap_name(raw)
    assert raw == encode_imap_name(name)


@pytest.mark.parametrize(
    "raw",
    ["AT&T", "&AMk", "&Jjo!-", "&AGE-", "&AOQ-&APY-", "&AOQ", "caf\u00e9", "&A-", "&AOQA-"],
)
def test_a_name_that_breaks_modified_utf7_raises_invalid_input(raw: str) -> None:
    assert "name" == refusal(lambda: decode_imap_name(raw)).field


@given(st.text())
def test_modified_utf7_round_trips_any_unicode_name(name: str) -> None:
    """RFC 3501 5.1.3: decoding the encoding gives the name back, and the encoding is
    printable ASCII only, so any server can carry it."""
    encoded = encode_imap_name(name)
    assert name == decode_imap_name(encoded)
    assert all(" " <= char <= "~" for char in encoded)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_modified_utf7_decoding_is_strict_so_a_valid_name_re_encodes_to_itself(raw: str) -> None:
    """A raw name either decodes and encodes back to exactly itself, or is refused typed."""
    try:
        decoded = decode_imap_name(raw)
    except InvalidInput:
        return
    assert raw == encode_imap_name(decoded)


# Random inputs: a typed refusal or a valid Mailbox, never anything else.

_FLAGS = st.sampled_from(
    ["\\HasNoChildren", "\\HasChildren", "\\Sent", "\\Noselect", "\\Drafts", "\\Inbox", "X"]
)
_NAMES = st.one_of(
    st.sampled_from(["INBOX", "inbox", "Sent", "[Gmail]/Sent Mail", "INBOX.Sent", ""]),
    st.text(max_size=12).map(encode_imap_name),
    st.text(max_size=12),
)


@st.composite
def list_lines(draw: st.DrawFn) -> bytes:
    """A LIST line built from real parts, sometimes broken by random bytes."""
    flags = " ".join(draw(st.lists(_FLAGS, max_size=3)))
    delimiter = draw(st.sampled_from(['"/"', '"."', "NIL", '"\\\\"', '"', '""']))
    name = draw(_NAMES).encode("utf-8", "surrogatepass")
    form = draw(st.sampled_from(["quoted", "atom", "literal"]))
    if form == "quoted":
        encoded = b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    elif form == "literal":
        encoded = b"{%d}\r\n" % len(name) + name
    else:
        encoded = name
    prefix = draw(st.sampled_from([b"* LIST ", b"* XLIST ", b""]))
    line = prefix + b"(" + flags.encode() + b") " + delimiter.encode() + b" " + encoded
    if draw(st.booleans()):
        return line
    cut = draw(st.integers(0, len(line)))
    return line[:cut] + draw(st.binary(max_size=4)) + line[cut:]


@given(st.lists(list_lines(), max_size=6), st.booleans())
def test_random_list_lines_give_a_typed_refusal_or_a_valid_mailbox(
    lines: list[bytes], guess_sent: bool
) -> None:
    """Any LIST response: InvalidInput, or a Mailbox with exactly one INBOX whose id is INBOX,
    at most one SENT, and a guessed role only when the host opted in (R9)."""
    try:
        mailbox = mailbox_from_imap("a@x.io", lines, guess_sent=guess_sent)
    except InvalidInput:
        return
    assert "INBOX" == mailbox.label_id(SystemLabel.INBOX)
    assert 1 == sum(label.system is SystemLabel.SENT for label in mailbox.labels) or (
        mailbox.label_id(SystemLabel.SENT) is None
    )
    assert guess_sent or not any(label.guessed for label in mailbox.labels)


@given(st.lists(st.sampled_from(["Sent", "Sent Items", "Gesendet", "Outbox", "Inbox"]), max_size=4))
def test_without_special_use_and_without_opting_in_no_name_makes_a_folder_sent(
    names: list[str],
) -> None:
    """R9: on a server that marks nothing, no folder name ever yields SENT by itself."""
    lines = ['* LIST () "/" INBOX'] + [f'* LIST () "/" "X{i}/{n}"' for i, n in enumerate(names)]

    assert None is mailbox_from_imap("a@x.io", lines).label_id(SystemLabel.SENT)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_GMAIL_ITEM = st.fixed_dictionaries(
    {"id": st.sampled_from(["INBOX", "SENT", "Label_1", "", 7]), "name": _JSON},
    optional={
        "type": st.sampled_from(["system", "user", "other"]),
        "labelListVisibility": st.sampled_from(["labelHide", "labelShow", "x"]),
    },
)
_GRAPH_ITEM = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c", ""]), "displayName": st.sampled_from(["X", "", 1])},
    optional={
        "isHidden": _JSON,
        "wellKnownName": st.sampled_from(["inbox", "sentitems", "drafts", None, 3]),
        "parentFolderId": st.sampled_from(["a", "b", "root", None]),
        "childFolders": _JSON,
    },
)


@given(_JSON | st.fixed_dictionaries({"labels": st.lists(_GMAIL_ITEM | _JSON, max_size=4)}))
def test_random_gmail_json_gives_a_typed_refusal_or_a_valid_mailbox(response: object) -> None:
    try:
        mailbox = mailbox_from_gmail("a@x.io", response)  # type: ignore[arg-type]
    except InvalidInput:
        return
    assert "INBOX" == mailbox.label_id(SystemLabel.INBOX)


@given(
    _JSON | st.lists(_GRAPH_ITEM, max_size=4),
    st.none() | st.fixed_dictionaries({"inbox": _JSON, "sentitems": _JSON}),
)
def test_random_graph_json_gives_a_typed_refusal_or_a_valid_mailbox(
    folders: object, well_known: object
) -> None:
    try:
        mailbox = mailbox_from_graph("a@x.io", folders, well_known=well_known)  # type: ignore[arg-type]
    except InvalidInput:
        return
    assert mailbox.label_id(SystemLabel.INBOX) is not None


# The model and the stores carry the flags.


def test_a_guessed_flag_without_a_role_is_refused() -> None:
    assert "Label.guessed" == refusal(lambda: Label(id="x", name="x", guessed=True)).field


def test_label_flags_must_be_true_or_false() -> None:
    assert "Label.hidden" == refusal(lambda: Label(id="x", name="x", hidden=1)).field  # type: ignore[arg-type]


def test_a_label_repr_shows_only_the_flags_that_are_set() -> None:
    assert "Label(id='x', name='X', system=None)" == repr(Label(id="x", name="X"))
    assert "Label(id='x', name='X', system=None, hidden=True)" == repr(
        Label(id="x", name="X", hidden=True)
    )


def test_a_label_without_flags_is_stored_in_the_three_item_form_of_older_rows() -> None:
    """Stores keep reading rows written before flags existed: those rows are this form."""
    plain = Label(id="SENT", name="Sent", system=SystemLabel.SENT)
    flagged = Label(id="S", name="Sent", system=SystemLabel.SENT, guessed=True, hidden=True)

    assert ["SENT", "Sent", "SENT"] == label_row(plain)
    assert ["S", "Sent", "SENT", ["guessed", "hidden"]] == label_row(flagged)
    assert plain == label_from_row(["SENT", "Sent", "SENT"])
    assert flagged == label_from_row(label_row(flagged))


def test_a_sqlite_row_written_before_flags_existed_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    user = User(id="u", email="a@x.io", mailbox=mailbox_from_imap("a@x.io", IMAP_GMAIL))
    with SqliteStore(path) as store:
        store.add_tenant(Tenant(id="t", name="Acme", users=(user,)))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE users SET mailbox_labels = ?",
            ('[["INBOX","INBOX","INBOX"],["Sent","Sent","SENT"]]',),
        )

    with SqliteStore(path) as store:
        loaded = store.get_user("t", "u").mailbox

    assert loaded is not None
    assert [("INBOX", "INBOX", SystemLabel.INBOX), ("Sent", "Sent", SystemLabel.SENT)] == rows(
        loaded
    )


def test_the_email_tab_lists_a_hidden_label_only_while_it_syncs() -> None:
    """R8: a label the provider hides is not offered, but what syncs is always shown."""
    mailbox = mailbox_from_gmail("a@x.io", GMAIL_RESPONSE)
    user = User(
        id="u", email="a@x.io", permissions=frozenset({Permission.EMAIL_SYNC}), mailbox=mailbox
    )

    assert "CHAT" not in {row.label.id for row in email_tab(user).rows}
    row = next(
        r for r in email_tab(user.with_selection(LabelSet(["CHAT"]))).rows if r.label.id == "CHAT"
    )
    assert f"{SYNC_ENABLED_NOTE}; {HIDDEN_NOTE}" == row.note


def test_imaplibs_empty_answer_is_refused_as_a_listing_without_inbox() -> None:
    """imaplib returns [None] when the server sent no LIST line: that is no INBOX, not a crash."""
    error = refusal(lambda: mailbox_from_imap("a@x.io", [None]))

    assert ("lines", "has no INBOX") == (error.field, error.problem[: len("has no INBOX")])
