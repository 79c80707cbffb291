"""What-if comparisons: the numbers are apply_defaults' own; they print, render and plot (B1)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelsync import Defaults, InvalidInput, NotFound, Tenant, apply_defaults, io
from labelsync.exceptions import MissingExtra
from labelsync.testing import defaults, tenants
from labelsync.whatif import COMPARISON_COLUMNS, Comparison, compare

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the headless backend

ACME = Path(__file__).parent.parent / "examples" / "acme.json"

THREE = {
    "Inbox + Sent": Defaults(inbox=True, sent=True),
    "Inbox only": Defaults(inbox=True, sent=False),
    "Nothing": Defaults(inbox=False, sent=False),
}


@pytest.fixture(scope="module")
def acme() -> Tenant:
    return io.load(ACME)


@pytest.fixture
def figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_each_row_counts_what_apply_defaults_reports_for_that_candidate(acme: Tenant) -> None:
    comparison = compare(acme, THREE)

    for row, (name, candidate) in zip(comparison.rows, THREE.items(), strict=True):
        _, changes = apply_defaults(acme, candidate)
        counts = changes.counts()
        assert (
            name,
            candidate,
            changes.users,
            counts.users_changed,
            counts.selected,
            counts.deselected,
            counts.no_mailbox,
            counts.label_missing,
        ) == (
            row.candidate,
            row.defaults,
            row.users,
            row.users_changed,
            row.selected,
            row.deselected,
            row.no_mailbox,
            row.label_missing,
        )


def test_the_acme_numbers_are_the_ones_the_notebook_shows(acme: Tenant) -> None:
    comparison = compare(acme, THREE)

    assert [
        ("Inbox + Sent", 8, 4, 5, 0, 1, 1),
        ("Inbox only", 8, 4, 2, 3, 1, 1),
        ("Nothing", 8, 6, 0, 8, 1, 1),
    ] == [
        (
            r.candidate,
            r.users,
            r.users_changed,
            r.selected,
            r.deselected,
            r.no_mailbox,
            r.label_missing,
        )
        for r in comparison.rows
    ]


@given(tenants(), st.lists(defaults(), min_size=1, max_size=4))
def test_compare_agrees_with_apply_defaults_on_any_tenant(
    tenant: Tenant, candidates: list[Defaults]
) -> None:
    named = {f"candidate {i}": d for i, d in enumerate(candidates)}

    comparison = compare(tenant, named)

    for row, candidate in zip(comparison.rows, candidates, strict=True):
        assert apply_defaults(tenant, candidate)[1].counts() == row.changes.counts()
        assert row.changes.counts().users_changed == row.users_changed


@given(tenants())
def test_r2_every_candidate_skips_the_same_users_and_labels(tenant: Tenant) -> None:
    rows = compare(tenant, THREE).rows

    assert {(rows[0].no_mailbox, rows[0].label_missing)} == {
        (row.no_mailbox, row.label_missing) for row in rows
    }


def test_comparing_changes_nothing_in_the_tenant(acme: Tenant) -> None:
    before = io.dumps(acme)

    compare(acme, THREE)

    assert before == io.dumps(acme)


def test_rows_keep_the_order_the_candidates_were_given(acme: Tenant) -> None:
    reordered = dict(reversed(THREE.items()))

    assert list(reordered) == [row.candidate for row in compare(acme, reordered).rows]


def test_a_row_is_found_by_its_candidate_name(acme: Tenant) -> None:
    comparison = compare(acme, THREE)

    assert 3 == comparison.row("Inbox only").deselected


def test_an_unknown_candidate_name_is_not_found(acme: Tenant) -> None:
    with pytest.raises(NotFound, match=r"^candidate: 'Sent only' is not one of the compared"):
        compare(acme, THREE).row("Sent only")


def test_records_have_one_dict_per_candidate_with_every_count(acme: Tenant) -> None:
    records = compare(acme, THREE).to_records()

    assert {
        "candidate": "Inbox only",
        "inbox": True,
        "sent": False,
        "users": 8,
        "users_changed": 4,
        "selected": 2,
        "deselected": 3,
        "no_mailbox": 1,
        "label_missing": 1,
        "mode": "OVERRIDE",
        "user_choice_kept": 0,
    } == records[1]
    assert [list(COMPARISON_COLUMNS)] * 3 == [list(record) for record in records]


def test_the_dataframe_has_a_row_per_candidate_and_the_record_columns(acme: Tenant) -> None:
    frame = compare(acme, THREE).to_dataframe()

    assert list(COMPARISON_COLUMNS) == list(frame.columns)
    assert list(THREE) == list(frame["candidate"])
    assert [5, 2, 0] == list(frame["selected"])
    expected_types = ["string", "bool", "bool"] + ["int64"] * (len(COMPARISON_COLUMNS) - 5)
    expected_types += ["string", "int64"]  # mode, user_choice_kept (R16)
    assert expected_types == [str(t) for t in frame.dtypes]


def test_a_comparison_row_no_longer_has_the_overridden_alias_of_users_changed(
    acme: Tenant,
) -> None:
    row = compare(acme, THREE).rows[0]

    assert not hasattr(row, "overridden")
    assert "overridden" not in COMPARISON_COLUMNS


def test_the_text_table_lines_up_one_row_per_candidate(acme: Tenant) -> None:
    assert (
        "What-if for tenant acme (8 Users)\n"
        "candidate     inbox  sent  changed  selected  deselected  no mailbox  label missing\n"
        "Inbox + Sent  on     on          4         5           0           1              1\n"
        "Inbox only    on     off         4         2           3           1              1\n"
        "Nothing       off    off         6         0           8           1              1"
    ) == str(compare(acme, THREE))


def test_the_html_has_a_row_per_candidate_with_its_counts(acme: Tenant) -> None:
    page = compare(acme, {"Inbox <only>": THREE["Inbox only"]})._repr_html_()

    assert page is not None
    assert (
        "<tr><td>Inbox &lt;only&gt;</td><td>on</td><td>off</td>"
        "<td>4</td><td>2</td><td>3</td><td>1</td><td>1</td></tr>"
    ) in page


@pytest.mark.usefixtures("figures")
def test_the_plot_has_one_bar_group_per_candidate(acme: Tenant) -> None:
    ax = compare(acme, THREE).plot()

    assert list(THREE) == [tick.get_text() for tick in ax.get_xticklabels()]
    legend = ax.get_legend()
    assert legend is not None
    assert ["Users changed", "labels selected", "labels deselected"] == [
        text.get_text() for text in legend.get_texts()
    ]
    heights = [[bar.get_height() for bar in bars] for bars in ax.containers]
    assert [[4, 4, 6], [5, 2, 0], [0, 3, 8]] == heights


@pytest.mark.usefixtures("figures")
def test_the_plot_draws_on_the_axes_it_is_given(acme: Tenant) -> None:
    _, ax = plt.subplots()

    assert ax is compare(acme, THREE).plot(ax=ax)


def test_without_matplotlib_the_plot_names_the_notebook_extra(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    comparison = compare(acme, THREE)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)

    with pytest.raises(MissingExtra) as raised:
        comparison.plot()

    assert (
        "Comparison.plot needs 'matplotlib', which is not installed; "
        "install the extra: pip install 'labelsync[notebook]'"
    ) == str(raised.value)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ({}, "candidates: {} is empty; name at least one Defaults"),
        ([("Inbox", THREE["Inbox only"])], "candidates: [('Inbox', Defaults("),
        ({"Inbox": (True, False)}, "candidates['Inbox']: (True, False) is not a Defaults"),
        ({3: THREE["Nothing"]}, "candidates: 3 is not a candidate name (a non-empty string)"),
        ({" ": THREE["Nothing"]}, "candidates: ' ' is not a candidate name (a non-empty string)"),
    ],
    ids=["empty", "not-a-mapping", "not-defaults", "name-not-str", "name-blank"],
)
def test_bad_candidates_are_invalid_input_naming_the_field(
    acme: Tenant, candidates: Any, message: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        compare(acme, candidates)

    assert str(raised.value).startswith(message)


def test_comparing_what_is_not_a_tenant_names_the_argument() -> None:
    with pytest.raises(InvalidInput, match=r"^tenant: 'acme' is not a Tenant$"):
        compare("acme", THREE)  # type: ignore[arg-type]


def test_a_comparison_is_a_frozen_value(acme: Tenant) -> None:
    comparison = compare(acme, THREE)

    assert comparison == compare(acme, THREE)
    assert isinstance(comparison, Comparison)
    with pytest.raises(AttributeError):
        comparison.rows = ()  # type: ignore[misc]
