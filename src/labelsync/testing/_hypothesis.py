"""The hook hypothesis runs at import (its ``hypothesis`` entry point group).

It registers the shipped strategies for labelsync's values, so that
``st.from_type(User)`` and ``@given(tenant=...)`` with ``st.builds`` draw valid
values, as `labelsync.testing.strategies` builds them, wherever
``labelsync[testing]`` is installed.
"""

from __future__ import annotations

__all__ = ["register_strategies"]


def register_strategies() -> None:
    """Register a strategy for each labelsync value type with `st.register_type_strategy`."""
    # Imported here: hypothesis calls this hook while it is being imported itself.
    from hypothesis import strategies as st

    from labelsync.model import (
        Defaults,
        Label,
        LabelSet,
        Mailbox,
        PushCounts,
        PushRecord,
        Tenant,
        User,
    )
    from labelsync.testing import strategies as ls

    st.register_type_strategy(Label, ls.labels())
    st.register_type_strategy(Mailbox, ls.mailboxes())
    st.register_type_strategy(LabelSet, ls.mailboxes().flatmap(ls.label_sets))
    st.register_type_strategy(User, ls.users())
    st.register_type_strategy(Tenant, ls.tenants())
    st.register_type_strategy(Defaults, ls.defaults())
    st.register_type_strategy(PushCounts, ls.push_counts())
    st.register_type_strategy(PushRecord, ls.push_records())
