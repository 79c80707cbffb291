"""labelsync.adapters.imap against a real Dovecot server the tests start (B3, R9).

The server (scripts/dovecot-test-server.sh) has three accounts: ana ("/"
delimiter, SPECIAL-USE folders with German and non-ASCII names), bo ("."
delimiter, SPECIAL-USE) and carla (no SPECIAL-USE advertised, no folder marked).
Without Dovecot installed these tests are skipped with the install command
named; CI sets LABELSYNC_IMAP_REQUIRED=1 so they fail instead (tests/imap_fixtures.py).
"""

from __future__ import annotations

import imaplib
import shutil
from collections.abc import Iterator

import pytest

from imap_fixtures import REQUIRED_VARIABLE, Dovecot, dovecot_server
from labelsync import (
    Defaults,
    InvalidInput,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    email_tab,
)
from labelsync.adapters.imap import ImapError, ImapReader, Security
from labelsync.model import GUESSED_ROLE_NOTE, SYNC_ENABLED_NOTE
from labelsync.providers import encode_imap_name

pytestmark = pytest.mark.imap

Row = tuple[str, str, SystemLabel | None, bool]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    yield from dovecot_server()


@pytest.fixture
def starttls(dovecot: Dovecot) -> ImapReader:
    return ImapReader(
        dovecot.host, dovecot.port, security=Security.STARTTLS, ssl_context=dovecot.context()
    )


def rows(mailbox: Mailbox) -> set[Row]:
    return {(lb.id, lb.name, lb.system, lb.guessed) for lb in mailbox.labels}


ANA: set[Row] = {
    ("INBOX", "Inbox", SystemLabel.INBOX, False),
    ("Gesendete Objekte", "Gesendete Objekte", SystemLabel.SENT, False),
    ("Entw&APw-rfe", "Entwürfe", None, False),
    ("Gel&APY-schte Elemente", "Gelöschte Elemente", None, False),
    ("Junk", "Junk", None, False),
    ("Projekte/Kunde &AMQ-", "Projekte/Kunde Ä", None, False),
    ("Projects/Inbox", "Projects/Inbox", None, False),
    ("Re&AOc-us 2024", "Reçus 2024", None, False),
    ("&ZeVnLIqe-", "日本語", None, False),
}


def test_special_use_folders_with_localised_names_are_read_over_starttls(
    starttls: ImapReader,
) -> None:
    """B3: INBOX and the \\Sent folder "Gesendete Objekte" hold the roles; names are decoded
    from modified UTF-7 while ids stay raw; the \\Noselect "Projekte" container is left out."""
    mailbox = starttls.read("ana", "secret", address="ana@example.test")

    assert Provider.IMAP is mailbox.provider
    assert "ana@example.test" == mailbox.address
    assert ANA == rows(mailbox)


def test_implicit_tls_reads_the_same_mailbox_as_starttls(
    dovecot: Dovecot, starttls: ImapReader
) -> None:
    implicit = ImapReader(dovecot.host, dovecot.ssl_port, ssl_context=dovecot.context())

    assert starttls.read("ana", "secret") == implicit.read("ana", "secret")


def test_a_dot_delimited_account_shows_its_hierarchy_with_slashes(starttls: ImapReader) -> None:
    """The "." delimiter: ids keep the server's dots, names show the path with "/"; a custom
    folder named Inbox under Clients is no INBOX (R9)."""
    mailbox = starttls.read("bo", "secret")

    assert {
        ("INBOX", "Inbox", SystemLabel.INBOX, False),
        ("Sent", "Sent", SystemLabel.SENT, False),
        ("Drafts", "Drafts", None, False),
        ("Archiv", "Archiv", None, False),
        ("Clients.Inbox", "Clients/Inbox", None, False),
        ("Projekte.Kunde &AMQ-", "Projekte/Kunde Ä", None, False),
    } == rows(mailbox)


def test_a_server_without_special_use_gets_no_sent_role(starttls: ImapReader) -> None:
    """No SPECIAL-USE advertised and no folder marked: "Gesendet" is only a name, so no SENT."""
    mailbox = starttls.read("carla", "secret")

    assert mailbox.label_id(SystemLabel.SENT) is None
    assert "INBOX" == mailbox.label_id(SystemLabel.INBOX)
    assert {"INBOX", "Gesendet", "Rechnungen", "Archiv 2024"} == {lb.id for lb in mailbox.labels}


def test_opting_in_guesses_sent_by_name_and_the_email_tab_says_so(starttls: ImapReader) -> None:
    """The host opts in: the one folder named like Sent becomes SENT, marked guessed, a push
    selects it (R3) and the Email tab tells the User the role was guessed (R8)."""
    mailbox = starttls.read("carla", "secret", guess_sent=True)
    assert ("Gesendet", "Gesendet", SystemLabel.SENT, True) in rows(mailbox)

    user = User(
        id="carla",
        email="carla@example.test",
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=mailbox,
    )
    after, _ = apply_defaults(
        Tenant(id="t", name="Acme", users=(user,)), Defaults(inbox=True, sent=True)
    )
    tab = email_tab(after.user("carla"))

    assert LabelSet(["INBOX", "Gesendet"]) == after.user("carla").synced
    sent_row = next(row for row in tab.rows if row.label.id == "Gesendet")
    guessed = GUESSED_ROLE_NOTE.format(role="Sent")
    assert f"{SYNC_ENABLED_NOTE}; {guessed}" == sent_row.note


def test_a_renamed_folder_gets_a_new_id_and_the_old_one_stays_as_a_stale_selection(
    dovecot: Dovecot, starttls: ImapReader
) -> None:
    """What docs/howto/providers.md says about renames, on a real server: the raw name is the
    id, so a rename is a new id; the old id stays in `synced` untouched (R5) until the host
    carries the selection over with `without(old).with_ids(new)`."""
    old, new = "Rechnungen", "Rechnungen für 2025"
    before = starttls.read("carla", "secret")
    synced = LabelSet(["INBOX", old])
    with imaplib.IMAP4(dovecot.host, dovecot.port) as conn:
        conn.starttls(dovecot.context())
        conn.login("carla", "secret")
        assert "OK" == conn.rename(old, f'"{encode_imap_name(new)}"')[0]
        try:
            after = starttls.read("carla", "secret")
        finally:
            conn.rename(f'"{encode_imap_name(new)}"', old)

    renamed = after.get("Rechnungen f&APw-r 2025")
    assert before.get(old) is not None
    assert after.get(old) is None
    assert renamed is not None
    assert new == renamed.name
    user = User(id="carla", email="c@x.io", mailbox=after, synced=synced)
    pushed, _ = apply_defaults(
        Tenant(id="t", name="Acme", users=(user,)), Defaults(inbox=True, sent=False)
    )
    assert old in pushed.user("carla").synced  # stale, kept, never touched by a push
    assert LabelSet(["INBOX", renamed.id]) == synced.without(old).with_ids(renamed.id)


def test_a_wrong_password_raises_imap_error_naming_the_user_and_not_the_password(
    starttls: ImapReader,
) -> None:
    with pytest.raises(ImapError) as raised:
        starttls.read("ana", "not-the-password")

    assert "'ana'" in str(raised.value)
    assert "refused" in str(raised.value)
    assert "not-the-password" not in str(raised.value)


def test_an_untrusted_certificate_is_refused_before_any_password_is_sent(
    dovecot: Dovecot,
) -> None:
    """The default context checks certificates; the test server's is self-signed."""
    with pytest.raises(ImapError) as raised:
        ImapReader(dovecot.host, dovecot.ssl_port).read("ana", "secret")

    assert "certificate is not trusted" in str(raised.value)


def test_a_closed_port_raises_imap_error_naming_the_server(dovecot: Dovecot) -> None:
    reader = ImapReader(dovecot.host, 1, ssl_context=dovecot.context(), timeout=5)

    with pytest.raises(ImapError) as raised:
        reader.read("ana", "secret")

    assert str(raised.value).startswith(f"{dovecot.host}:1: cannot connect")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"host": ""}, "ImapReader.host"),
        ({"host": "h", "port": 0}, "ImapReader.port"),
        ({"host": "h", "port": True}, "ImapReader.port"),
        ({"host": "h", "timeout": 0}, "ImapReader.timeout"),
        ({"host": "h", "security": "ssl"}, "ImapReader.security"),
    ],
)
def test_a_bad_reader_setting_raises_invalid_input_naming_it(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        ImapReader(**kwargs)  # type: ignore[arg-type]

    assert field == raised.value.field


def test_a_blank_username_is_refused_before_connecting() -> None:
    with pytest.raises(InvalidInput) as raised:
        ImapReader("imap.invalid").read(" ", "secret")

    assert "username" == raised.value.field


def test_without_dovecot_a_newcomer_is_told_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LABELSYNC_IMAP_HOST", raising=False)
    monkeypatch.delenv(REQUIRED_VARIABLE, raising=False)
    monkeypatch.setattr(shutil, "which", lambda _: None)

    with pytest.raises(pytest.skip.Exception) as skipped:
        next(dovecot_server())

    assert "apt-get install dovecot-imapd" in str(skipped.value)


def test_without_dovecot_ci_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABELSYNC_IMAP_HOST", raising=False)
    monkeypatch.setenv(REQUIRED_VARIABLE, "1")
    monkeypatch.setattr(shutil, "which", lambda _: None)

    with pytest.raises(pytest.fail.Exception) as failed:
        next(dovecot_server())

    assert REQUIRED_VARIABLE in str(failed.value)
