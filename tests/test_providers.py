"""B3: INBOX and SENT recognised the way each provider marks them, never by display name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import (
    Defaults,
    InvalidInput,
    Label,
    LabelSet,
    Mailbox,
    Provider,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.providers import gmail_label, graph_folder, imap_mailbox, imap_role
from labelsync.rules import apply_to_user
from labelsync.testing.strategies import CUSTOM_NAMES, INBOX_NAMES, SENT_NAMES

ANY_NAME = st.sampled_from(INBOX_NAMES + SENT_NAMES + CUSTOM_NAMES) | st.text(min_size=1).filter(
    str.strip
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
