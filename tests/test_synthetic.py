"""The synthetic tenant generator: deterministic, realistic in its proportions, valid throughout."""

from __future__ import annotations

import attrs
import pytest

from labelsync import (
    Defaults,
    InvalidInput,
    Permission,
    Provider,
    SkipReason,
    SystemLabel,
    Tenant,
    User,
    apply_defaults,
)
from labelsync.synthetic import ADMIN_ID, synthetic_tenant, synthetic_users

SIZE = 5_000


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return synthetic_tenant(SIZE, seed=7)


def connected(tenant: Tenant) -> list[User]:
    return [user for user in tenant.users if user.mailbox is not None]


def share(part: int, whole: int) -> float:
    return part / whole


def test_the_same_seed_gives_an_equal_tenant() -> None:
    assert synthetic_tenant(500, seed=3) == synthetic_tenant(500, seed=3)


def test_another_seed_gives_another_tenant() -> None:
    assert synthetic_tenant(500, seed=3) != synthetic_tenant(500, seed=4)


def test_the_streaming_users_are_the_users_of_the_tenant() -> None:
    assert synthetic_tenant(300, seed=5).users == tuple(synthetic_users(300, seed=5))


def test_the_tenant_takes_its_id_name_and_size() -> None:
    tenant = synthetic_tenant(42, seed=1, tenant_id="acme", name="Acme")

    assert ("acme", "Acme", 42) == (tenant.id, tenant.name, len(tenant.users))


def test_the_first_user_is_the_only_admin_and_may_sync(tenant: Tenant) -> None:
    admins = [user.id for user in tenant.users if user.can(Permission.ADMIN_ACCESS)]

    assert [ADMIN_ID] == admins
    assert ADMIN_ID == tenant.users[0].id
    assert tenant.user(ADMIN_ID).can(Permission.EMAIL_SYNC)
    assert tenant.user(ADMIN_ID).mailbox is not None


def test_a_single_user_tenant_is_the_admin() -> None:
    assert [ADMIN_ID] == [user.id for user in synthetic_tenant(1).users]


def test_about_a_tenth_of_users_have_no_mailbox(tenant: Tenant) -> None:
    not_connected = SIZE - len(connected(tenant))

    assert 0.10 == pytest.approx(share(not_connected, SIZE), abs=0.02)


def test_about_85_percent_hold_email_sync(tenant: Tenant) -> None:
    syncing = sum(user.can(Permission.EMAIL_SYNC) for user in tenant.users)

    assert 0.85 == pytest.approx(share(syncing, SIZE), abs=0.02)


@pytest.mark.parametrize(
    ("provider", "expected"),
    [(Provider.GMAIL, 0.45), (Provider.MICROSOFT, 0.35), (Provider.IMAP, 0.20)],
)
def test_connected_mailboxes_mix_providers(
    tenant: Tenant, provider: Provider, expected: float
) -> None:
    users = connected(tenant)
    count = sum(user.mailbox is not None and user.mailbox.provider is provider for user in users)

    assert expected == pytest.approx(share(count, len(users)), abs=0.03)


def test_microsoft_folders_carry_localised_names_with_their_roles(tenant: Tenant) -> None:
    names = {
        (label.system, label.name)
        for user in connected(tenant)
        if user.mailbox is not None and user.mailbox.provider is Provider.MICROSOFT
        for label in user.mailbox.labels
        if label.system is not None
    }

    assert {
        (SystemLabel.INBOX, "Posteingang"),
        (SystemLabel.SENT, "Gesendete Elemente"),
        (SystemLabel.INBOX, "Boîte de réception"),
        (SystemLabel.SENT, "Éléments envoyés"),
        (SystemLabel.INBOX, "Bandeja de entrada"),
        (SystemLabel.SENT, "Elementos enviados"),
    } <= names


def test_imap_sent_folders_are_recognised_by_their_attribute(tenant: Tenant) -> None:
    sent_ids = {
        user.mailbox.label_id(SystemLabel.SENT)
        for user in connected(tenant)
        if user.mailbox is not None and user.mailbox.provider is Provider.IMAP
    }

    assert {"Sent", None} == sent_ids


def test_every_mailbox_has_5_to_30_labels_and_an_inbox(tenant: Tenant) -> None:
    sizes = {len(user.mailbox.labels) for user in connected(tenant) if user.mailbox is not None}
    inboxes = {
        user.mailbox.label_id(SystemLabel.INBOX) is not None
        for user in connected(tenant)
        if user.mailbox is not None
    }

    assert set(range(5, 31)) == sizes
    assert {True} == inboxes


def test_about_2_percent_of_mailboxes_lack_sent(tenant: Tenant) -> None:
    users = connected(tenant)
    lacking = sum(
        user.mailbox is not None and user.mailbox.label_id(SystemLabel.SENT) is None
        for user in users
    )

    assert 0.02 == pytest.approx(share(lacking, len(users)), abs=0.01)


def test_about_40_percent_already_sync_their_inbox(tenant: Tenant) -> None:
    users = connected(tenant)
    selected = sum(
        user.mailbox is not None and user.mailbox.label_id(SystemLabel.INBOX) in user.synced
        for user in users
    )

    assert 0.40 == pytest.approx(share(selected, len(users)), abs=0.03)


def test_about_a_quarter_sync_custom_labels(tenant: Tenant) -> None:
    users = connected(tenant)
    with_custom = sum(
        user.mailbox is not None
        and any(label.system is None and label.id in user.synced for label in user.mailbox.labels)
        for user in users
    )

    assert 0.25 == pytest.approx(share(with_custom, len(users)), abs=0.03)


def test_connected_users_sync_only_labels_of_their_mailbox(tenant: Tenant) -> None:
    strays = [
        user.id
        for user in connected(tenant)
        if user.mailbox is not None
        and not user.synced.ids <= {label.id for label in user.mailbox.labels}
    ]

    assert [] == strays


def test_every_user_survives_validation_again(tenant: Tenant) -> None:
    """Every generated User is one `User.__init__` accepts: rebuilding it validates every field."""
    rebuilt = tuple(attrs.evolve(user) for user in tenant.users)

    assert tenant.users == rebuilt
    assert len(tenant.users) == len({user.id for user in tenant.users})


def test_users_of_the_same_kind_share_one_label_tuple(tenant: Tenant) -> None:
    label_tuples = {id(user.mailbox.labels) for user in connected(tenant) if user.mailbox}

    assert len(label_tuples) < 500


def test_a_push_covers_the_tenant_with_both_kinds_of_skip(tenant: Tenant) -> None:
    """R7 on a realistic roster: Users without a mailbox and mailboxes without SENT are reported."""
    _, changes = apply_defaults(tenant, Defaults(inbox=True, sent=True))
    reasons = changes.skipped_by_reason()

    assert SIZE - len(connected(tenant)) == reasons[SkipReason.NO_MAILBOX]
    assert reasons[SkipReason.LABEL_MISSING] > 0
    assert changes.counts().users_changed > 0


@pytest.mark.parametrize("users", [0, -1, True, 2.5, "10"])
def test_a_bad_size_is_refused_naming_users(users: object) -> None:
    with pytest.raises(InvalidInput, match="users"):
        synthetic_users(users, seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [None, "1", 1.5])
def test_a_bad_seed_is_refused_naming_seed(seed: object) -> None:
    with pytest.raises(InvalidInput, match="seed"):
        synthetic_tenant(10, seed=seed)  # type: ignore[arg-type]
