"""What an installed labelsync declares: its license, and the hypothesis plugin."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from labelsync import Defaults, Label, LabelSet, Mailbox, Tenant, User
from labelsync.testing._hypothesis import register_strategies

ROOT = Path(__file__).parent.parent


def test_the_license_file_is_mit_as_the_metadata_says() -> None:
    assert "MIT" == importlib.metadata.metadata("labelsync")["License-Expression"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository() -> None:
    # labelsync has no hosted site: the README links its own files, which work
    # in a clone, in an sdist and on any forge (a dead invented URL would not).
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text(encoding="utf-8"))

    assert links
    assert [] == [link for link in links if "://" in link or not (ROOT / link).exists()]


def test_the_hypothesis_entry_point_names_the_registering_hook() -> None:
    [entry] = [
        entry
        for entry in importlib.metadata.entry_points(group="hypothesis")
        if entry.name == "labelsync"
    ]

    assert register_strategies is entry.load()


@given(
    user=st.from_type(User),
    tenant=st.from_type(Tenant),
    mailbox=st.from_type(Mailbox),
    label=st.from_type(Label),
    selection=st.from_type(LabelSet),
    defaults=st.from_type(Defaults),
)
def test_from_type_draws_valid_values_once_hypothesis_loaded_the_plugin(
    user: User,
    tenant: Tenant,
    mailbox: Mailbox,
    label: Label,
    selection: LabelSet,
    defaults: Defaults,
) -> None:
    # Without the plugin, from_type would fail on these attrs classes' validated fields;
    # with it, each is drawn by the shipped strategy, so the values have its shape.
    assert (User, Tenant, Mailbox, Label, LabelSet, Defaults) == tuple(
        map(type, (user, tenant, mailbox, label, selection, defaults))
    )
    assert len({u.id for u in tenant.users}) == len(tenant.users)
    assert len({lb.id for lb in mailbox.labels}) == len(mailbox.labels)
