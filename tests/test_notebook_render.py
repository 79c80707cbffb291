"""Notebook rendering: HTML tables with the right counts, escaped and truncated; DataFrames (B1)."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

from labelsync import (
    Changes,
    Defaults,
    Label,
    LabelSet,
    Mailbox,
    Permission,
    Provider,
    PushCounts,
    PushRecord,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
    io,
)
from labelsync._display import MAX_ROWS, changes_html, tenant_html
from labelsync._repr import html
from labelsync.exceptions import MissingExtra

ACME = Path(__file__).parent.parent / "examples" / "acme.json"
BOTH = Defaults(inbox=True, sent=True)


def gmail_user(user_id: str, *, synced: tuple[str, ...] = (), custom: str = "Project X") -> User:
    mailbox = Mailbox(
        provider=Provider.GMAIL,
        address=f"{user_id}@acme.example",
        labels=(
            Label(id="INBOX", name="Inbox", system=SystemLabel.INBOX),
            Label(id="SENT", name="Sent", system=SystemLabel.SENT),
            Label(id="Label_1", name=custom),
        ),
    )
    return User(
        id=user_id,
        email=f"{user_id}@acme.example",
        permissions=frozenset({Permission.EMAIL_SYNC}),
        mailbox=mailbox,
        synced=LabelSet(synced),
    )


def roster(size: int) -> Tenant:
    """`size` Gmail Users with nothing selected: pushing BOTH changes each of them twice."""
    return Tenant(id="t", name="T", users=[gmail_user(f"u{n:02d}") for n in range(size)])


def rows_of(page: str) -> int:
    return page.count("<tr><td>")


@pytest.fixture(scope="module")
def acme() -> Tenant:
    return io.load(ACME)


# -- Changes ---------------------------------------------------------------------------------


def test_the_changes_html_opens_with_the_counts(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    assert (
        "<p><b>8 Users</b>: 4 changed (+5 selected, &minus;0 deselected); "
        "skipped: 1 no mailbox, 1 label missing</p>"
    ) in changes_html(changes)


def test_the_changes_html_counts_each_label(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    page = changes_html(changes)

    assert "<tr><td>Inbox</td><td>2</td><td>0</td><td>5</td><td>1</td><td>0</td></tr>" in page
    assert "<tr><td>Sent</td><td>3</td><td>0</td><td>3</td><td>1</td><td>1</td></tr>" in page


def test_the_changes_html_lists_each_change_and_skip_by_user(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, Defaults(inbox=True, sent=False))

    page = changes_html(changes)

    assert "<tr><td>u-bruno</td><td>Sent</td><td>AAMkADbk0002</td><td>deselected</td></tr>" in page
    assert "<tr><td>u-eve</td><td>(all)</td><td>NO_MAILBOX</td></tr>" in page
    assert "<tr><td>u-farid</td><td>Sent</td><td>LABEL_MISSING</td></tr>" in page
    assert "<p><b>Changes</b> (5)</p>" in page
    assert "<p><b>Skipped</b> (2)</p>" in page


def test_the_changes_repr_html_is_changes_html(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    assert changes_html(changes) == changes._repr_html_()


def test_no_changes_says_so_instead_of_an_empty_table() -> None:
    tenant = Tenant(id="t", name="T", users=[gmail_user("u1", synced=("INBOX", "SENT"))])
    _, changes = apply_defaults(tenant, BOTH)

    page = changes_html(changes)

    assert "<p>No User's selection changes.</p>" in page
    assert "<b>Skipped</b>" not in page


def test_a_long_change_list_stops_after_max_rows_and_says_how_many_more() -> None:
    _, changes = apply_defaults(roster(15), BOTH)  # 30 changes

    page = changes_html(changes)

    assert f'<tr><td colspan="4"><i>… and {30 - MAX_ROWS} more</i></td></tr>' in page
    assert 2 + MAX_ROWS == rows_of(page)  # two label rows, then the change rows shown


def test_user_ids_are_escaped_in_the_changes_html() -> None:
    tenant = Tenant(id="t", name="T", users=[gmail_user("<b>bob</b>")])
    _, changes = apply_defaults(tenant, BOTH)

    page = changes_html(changes)

    assert "<b>bob</b>" not in page
    assert "<td>&lt;b&gt;bob&lt;/b&gt;</td>" in page


# -- Tenant ----------------------------------------------------------------------------------


def test_the_tenant_html_has_one_row_per_user_with_inbox_and_sent_marks(acme: Tenant) -> None:
    page = tenant_html(acme)

    assert 8 == rows_of(page)
    assert (
        "<tr><td>u-ada</td><td>ada@acme.example</td><td>GMAIL</td><td>✓</td><td>·</td>"
        "<td>Project X</td><td>ADMIN_ACCESS, EMAIL_SYNC</td><td>? / ?</td></tr>"
    ) in page
    assert "<td>u-farid</td><td>farid@acme.example</td><td>IMAP</td><td>✓</td><td>&ndash;</td>" in (
        page
    )
    assert "<td>u-eve</td><td>eve@acme.example</td><td><i>no mailbox</i></td>" in page


def test_the_tenant_html_opens_with_its_settings_and_last_push() -> None:
    at = dt.datetime(2024, 5, 1, 9, 30, 15, 500, tzinfo=dt.UTC)
    tenant = Tenant(
        id="acme",
        name="Acme & Co",
        users=[gmail_user("u1")],
        defaults=Defaults(inbox=True, sent=False),
        last_push=PushRecord(
            job_id="job-7",
            actor_id="u-ada",
            defaults=Defaults(inbox=True, sent=False),
            started_at=at,
            finished_at=at,
            roster_size=1,
            counts=PushCounts(users_changed=1, selected=1),
        ),
        onboard_new_users=True,
    )

    page = tenant_html(tenant)

    assert (
        "<p><b>Acme &amp; Co</b> (acme): 1 Users; defaults: Inbox on, Sent off; "
        "onboard new Users: on<br>last push job-7 by u-ada at 2024-05-01T09:30:15+00:00 "
        "(Inbox on, Sent off): 1 of 1 Users changed</p>"
    ) in page


def test_a_script_in_a_label_name_is_escaped_not_run() -> None:
    user = gmail_user("u1", synced=("Label_1",), custom="<script>alert(1)</script>")
    tenant = Tenant(id="t", name="T", users=[user])

    page = tenant_html(tenant)

    assert "<script>" not in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page


def test_a_long_roster_stops_after_max_rows_and_says_how_many_more() -> None:
    page = tenant_html(roster(MAX_ROWS + 5))

    assert MAX_ROWS == rows_of(page)
    assert '<tr><td colspan="8"><i>… and 5 more</i></td></tr>' in page
    assert f"u{MAX_ROWS - 1:02d}" in page
    assert f"u{MAX_ROWS:02d}" not in page


def test_the_tenant_repr_html_is_tenant_html(acme: Tenant) -> None:
    assert tenant_html(acme) == acme._repr_html_()


def test_every_tag_the_html_opens_it_closes(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    for page in (tenant_html(acme), changes_html(changes)):
        for tag in ("div", "table", "tr", "td", "th", "p", "b", "i"):
            opened = len(re.findall(rf"<{tag}[ >]", page))
            assert opened == page.count(f"</{tag}>"), tag


# -- DataFrames ------------------------------------------------------------------------------


def test_the_changed_frame_has_a_typed_row_per_change(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    frame = changes.changed_frame()

    assert ["user_id", "label", "label_id", "selected"] == list(frame.columns)
    assert ["string", "category", "string", "bool"] == [str(t) for t in frame.dtypes]
    assert ["Inbox", "Sent"] == list(frame["label"].cat.categories)
    assert [(c.user_id, c.label.title, c.label_id, c.selected) for c in changes.changed] == list(
        frame.itertuples(index=False, name=None)
    )


def test_the_skipped_frame_has_a_typed_row_per_skip(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    frame = changes.skipped_frame()

    assert ["user_id", "label", "reason"] == list(frame.columns)
    assert ["string", "category", "category"] == [str(t) for t in frame.dtypes]
    assert [r.name for r in SkipReason] == list(frame["reason"].cat.categories)
    assert [(s.user_id, s.reason.name) for s in changes.skipped] == list(
        zip(frame["user_id"], frame["reason"], strict=True)
    )
    assert [None if s.label is None else s.label.title for s in changes.skipped] == [
        None if isinstance(label, float) else label for label in frame["label"]
    ]


def test_the_frames_name_labels_as_the_html_does(acme: Tenant) -> None:
    _, changes = apply_defaults(acme, BOTH)

    page = changes_html(changes)
    labels = set(changes.changed_frame()["label"]) | set(changes.skipped_frame()["label"].dropna())

    assert {"Inbox", "Sent"} >= labels
    for label in labels:
        assert f"<td>{label}</td>" in page


def test_the_frames_of_no_changes_still_have_their_columns_and_types() -> None:
    changes = Changes.of((), (), users=0)

    changed, skipped = changes.changed_frame(), changes.skipped_frame()

    assert (0, ["string", "category", "string", "bool"]) == (
        len(changed),
        [str(t) for t in changed.dtypes],
    )
    assert (0, ["string", "category", "category"]) == (
        len(skipped),
        [str(t) for t in skipped.dtypes],
    )


@pytest.mark.parametrize("frame", ["changed_frame", "skipped_frame"])
def test_without_pandas_a_frame_names_the_notebook_extra(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch, frame: str
) -> None:
    _, changes = apply_defaults(acme, BOTH)
    monkeypatch.setitem(sys.modules, "pandas", None)

    with pytest.raises(MissingExtra) as raised:
        getattr(changes, frame)()

    assert (
        f"Changes.{frame} needs 'pandas', which is not installed; "
        "install the extra: pip install 'labelsync[notebook]'"
    ) == str(raised.value)
    assert isinstance(raised.value, ImportError)


def test_a_type_without_a_renderer_has_no_html() -> None:
    assert None is html(object())


def test_without_pandas_the_html_still_renders(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, changes = apply_defaults(acme, BOTH)
    monkeypatch.setitem(sys.modules, "pandas", None)

    assert changes_html(changes).startswith('<div class="labelsync">')
