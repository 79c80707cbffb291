"""The scenarios of the product article (spec/default-synced-labels.txt), one test each.

Only the pure core: a tenant, `apply_defaults`, and what each User's Email tab shows.
"""

from __future__ import annotations

import pytest

from labelsync import (
    Defaults,
    LabelChange,
    LabelSet,
    Mailbox,
    Permission,
    PermissionDenied,
    Provider,
    Skip,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    email_tab,
)
from labelsync.model import SYNC_ENABLED_NOTE
from labelsync.providers import gmail_label, graph_folder

BOTH = Defaults(inbox=True, sent=True)
NEITHER = Defaults(inbox=False, sent=False)


def gmail(address: str) -> Mailbox:
    return Mailbox(
        provider=Provider.GMAIL,
        address=address,
        labels=(
            gmail_label("INBOX", "Inbox"),
            gmail_label("SENT", "Sent"),
            gmail_label("Label_7", "Project X"),
            gmail_label("Label_9", "Newsletters"),
        ),
    )


def outlook(address: str) -> Mailbox:
    return Mailbox(
        provider=Provider.MICROSOFT,
        address=address,
        labels=(
            graph_folder("AAMk-in", "Posteingang", "inbox"),
            graph_folder("AAMk-sent", "Gesendete Elemente", "sentitems"),
            graph_folder("AAMk-px", "Project X"),
        ),
    )


def person(user_id: str, mailbox: Mailbox | None, *synced: str, tab: bool = True) -> User:
    email = f"{user_id}@acme.io"
    return User(
        id=user_id,
        email=email,
        permissions={Permission.EMAIL_SYNC} if tab else set(),
        mailbox=mailbox,
        synced=LabelSet(synced),
    )


def acme(*users: User) -> Tenant:
    return Tenant(id="acme", name="Acme", users=users)


def test_enabling_inbox_and_sent_syncs_them_for_every_user() -> None:
    """Enabling an automatic email sync: both boxes checked, "Apply to all users"."""
    tenant = acme(
        person("ana", gmail("ana@acme.io")),
        person("bo", outlook("bo@acme.de"), "AAMk-in"),
        person("cy", gmail("cy@acme.io"), "Label_7"),
    )

    after, changes = apply_defaults(tenant, BOTH)

    assert {
        "ana": LabelSet(["INBOX", "SENT"]),
        "bo": LabelSet(["AAMk-in", "AAMk-sent"]),
        "cy": LabelSet(["INBOX", "Label_7", "SENT"]),
    } == {user.id: user.synced for user in after.users}
    assert ("ana", "bo", "cy") == changes.changed_user_ids
    assert () == changes.skipped


def test_disabling_overrides_a_user_who_chose_inbox_even_if_admin_never_checked_it() -> None:
    """Disabling: an unchecked box deselects, overriding the User's own choice (R4)."""
    tenant = acme(person("ana", gmail("ana@acme.io"), "INBOX"))
    assert tenant.defaults is None  # the admin never checked anything

    after, changes = apply_defaults(tenant, NEITHER)

    assert LabelSet() == after.user("ana").synced
    assert (
        LabelChange(user_id="ana", label=SystemLabel.INBOX, label_id="INBOX", selected=False),
    ) == changes.changed


@pytest.mark.parametrize("pushed", [BOTH, NEITHER, Defaults(inbox=True, sent=False)])
def test_a_user_with_project_x_selected_keeps_it_whatever_is_pushed(pushed: Defaults) -> None:
    """Other labels/folders are not affected, enabled or disabled (R5)."""
    tenant = acme(
        person("ana", gmail("ana@acme.io"), "Label_7", "SENT"),
        person("bo", outlook("bo@acme.de"), "AAMk-px"),
    )

    after, changes = apply_defaults(tenant, pushed)

    assert "Label_7" in after.user("ana").synced
    assert "AAMk-px" in after.user("bo").synced
    assert {"INBOX", "SENT", "AAMk-in", "AAMk-sent"} >= {c.label_id for c in changes.changed}


def test_a_newsletters_label_is_not_applicable_and_is_skipped() -> None:
    """The job looks only at the applicable labels (INBOX, SENT) and skips "Newsletters"."""
    subscribed = person("ana", gmail("ana@acme.io"), "Label_9")
    unsubscribed = person("bo", gmail("bo@acme.io"))
    tenant = acme(subscribed, unsubscribed)

    for pushed in (BOTH, NEITHER):
        after, changes = apply_defaults(tenant, pushed)
        assert "Label_9" in after.user("ana").synced
        assert "Label_9" not in after.user("bo").synced
        assert "Label_9" not in {c.label_id for c in changes.changed}
        assert {SystemLabel.INBOX, SystemLabel.SENT} >= {c.label for c in changes.changed}
    # Newsletters cannot even be expressed as a default: the checkboxes are INBOX and SENT.
    assert [SystemLabel.INBOX, SystemLabel.SENT] == [label for label, _ in BOTH.items()]


def test_a_user_added_after_a_push_is_untouched_by_it() -> None:
    """The push applies to the Users at that point in time; a new User waits for the next (R6)."""
    tenant = acme(person("ana", gmail("ana@acme.io")))
    pushed, _ = apply_defaults(tenant, BOTH)

    newcomer = person("new", gmail("new@acme.io"), "Label_7")
    grown = pushed.adding(newcomer)

    assert LabelSet(["Label_7"]) == grown.user("new").synced
    assert newcomer is grown.user("new")
    again, changes = apply_defaults(grown, BOTH)
    assert LabelSet(["INBOX", "Label_7", "SENT"]) == again.user("new").synced
    assert ("new",) == changes.changed_user_ids


def test_email_tab_shows_selected_labels_with_sync_enabled_note() -> None:
    """After the push each User's Email tab shows the defaults selected, with the note (R8)."""
    tenant = acme(person("bo", outlook("bo@acme.de"), "AAMk-px"))
    after, _ = apply_defaults(tenant, Defaults(inbox=True, sent=False))

    tab = email_tab(after.user("bo"))

    assert [
        ("Posteingang", True, SYNC_ENABLED_NOTE),
        ("Gesendete Elemente", False, None),
        ("Project X", True, SYNC_ENABLED_NOTE),
    ] == [(row.label.name, row.selected, row.note) for row in tab.rows]
    assert (
        "bo <bo@acme.de>\n"
        f"  [x] Posteingang  ({SYNC_ENABLED_NOTE})  [Set by your admin]\n"
        "  [ ] Gesendete Elemente\n"
        f"  [x] Project X  ({SYNC_ENABLED_NOTE})"
    ) == str(tab)


def test_users_without_email_sync_permission_cannot_see_the_tab_but_are_still_pushed() -> None:
    """The Email tab needs the "Email sync" permission; the push does not (R8)."""
    tenant = acme(
        person("ana", gmail("ana@acme.io"), tab=False),
        person("bo", None, "INBOX", tab=False),
    )

    after, changes = apply_defaults(tenant, BOTH)

    assert LabelSet(["INBOX", "SENT"]) == after.user("ana").synced
    assert (Skip(user_id="bo", label=None, reason=SkipReason.NO_MAILBOX),) == changes.skipped
    for user in after.users:
        with pytest.raises(PermissionDenied):
            email_tab(user)
