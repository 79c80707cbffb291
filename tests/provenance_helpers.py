"""For tests that compare two runs of the same push under different job ids (R15).

Two pushes of the same defaults over equal rosters leave equal Users except
for the job id and time each flipped label records as its origin. `comparable`
drops exactly those two, keeping who set each label and whether it was covered.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from labelsync import Origin, User
from labelsync.policy import LabelOrigin

__all__ = ["comparable"]


def _anonymous(origin: LabelOrigin) -> LabelOrigin:
    if origin.origin is Origin.PUSH:
        return LabelOrigin(origin=Origin.PUSH)
    return origin


def comparable(users: Iterable[User]) -> list[User]:
    """`users` with every push origin's job id and time left out."""
    return [
        attrs.evolve(
            user,
            provenance=attrs.evolve(
                user.provenance,
                inbox=_anonymous(user.provenance.inbox),
                sent=_anonymous(user.provenance.sent),
            ),
        )
        for user in users
    ]
