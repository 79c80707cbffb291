"""The top-level API: the names a host imports every day, and where the others went."""

from __future__ import annotations

import importlib

import pytest

import labelsync

PINNED = {
    # Version 1 of the design contract: these stay importable from `labelsync`.
    "SystemLabel", "Permission", "Provider", "Label", "Mailbox", "LabelSet", "User", "Tenant",
    "Defaults", "LabelChange", "Skip", "SkipReason", "Changes", "apply_defaults", "email_tab",
    "LabelSyncError", "InvalidInput", "PermissionDenied", "LabelSync", "PushJob", "JobStatus",
}  # fmt: skip


def test_every_pinned_name_is_exported_from_the_top_level() -> None:
    assert set() == PINNED - set(labelsync.__all__)


def test_the_top_level_keeps_about_forty_names_sorted() -> None:
    # Version 1's daily names and version 2's pinned ones (DESIGN.md), no more.
    assert 25 <= len(labelsync.__all__) <= 45
    assert sorted(labelsync.__all__) == labelsync.__all__


def test_every_exported_name_exists() -> None:
    assert [] == [name for name in labelsync.__all__ if not hasattr(labelsync, name)]


@pytest.mark.parametrize("name", sorted(labelsync._MOVED))
def test_a_moved_name_still_works_for_now_and_says_where_it_went(name: str) -> None:
    module = labelsync._MOVED[name]

    with pytest.warns(DeprecationWarning, match=rf"import it from {module} "):
        value = getattr(labelsync, name)

    assert getattr(importlib.import_module(module), name) is value
    assert name not in labelsync.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'frobnicate'"):
        labelsync.frobnicate  # noqa: B018
