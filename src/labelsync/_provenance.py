"""Who set a User's INBOX and SENT selection last (R15): values only, imported by the model.

Public through `labelsync.policy`; kept apart so that `labelsync.model` can hold
them on `User` without importing the policy rules.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs
from attrs import field, frozen

from labelsync import _validate as v
from labelsync.exceptions import InvalidInput

__all__ = ["LabelOrigin", "Origin", "Provenance"]


class Origin(enum.Enum):
    """Who made the last change of a label's selection (R15)."""

    UNKNOWN = "UNKNOWN"
    """Not recorded: imported, or stored before labelsync kept provenance."""
    PUSH = "PUSH"
    """An admin's push (its job id and start time are kept)."""
    USER = "USER"
    """The User, on their own Email tab."""
    ONBOARDING = "ONBOARDING"
    """Onboarding gave the User the last push's defaults (B4)."""
    RESET = "RESET"
    """The User reset their labels to the tenant's defaults (R18)."""
    REVERT = "REVERT"
    """An admin reverted the push that had set it (R19)."""


def _day(at: dt.datetime) -> str:
    return f"{at.day} {at:%b %Y}"


@frozen
class LabelOrigin:
    """One label's provenance: who set it last, the job (push, onboarding's push, revert), when."""

    origin: Origin = field(default=Origin.UNKNOWN, validator=v.member_of(Origin))
    job_id: str | None = field(default=None, validator=attrs.validators.optional(v.non_empty_str))
    at: dt.datetime | None = field(
        default=None, validator=attrs.validators.optional(v.aware_datetime)
    )

    @property
    def by_user(self) -> bool:
        """True when the User themself set it (what KEEP_USER_CHOICES keeps, R16)."""
        return self.origin is Origin.USER

    def describe(self) -> str | None:
        """What the Email tab says, e.g. "Set by your admin on 1 Dec 2026"; None if unknown."""
        on = "" if self.at is None else f" on {_day(self.at)}"
        match self.origin:
            case Origin.PUSH:
                return f"Set by your admin{on}"
            case Origin.USER:
                return f"Set by you{on}"
            case Origin.ONBOARDING:
                return f"Set for you when you joined{on}"
            case Origin.RESET:
                return f"Reset by you to your admin's defaults{on}"
            case Origin.REVERT:
                return f"Restored by your admin{on}"
        return None


UNKNOWN_ORIGIN = LabelOrigin()


@frozen
class Provenance:
    """A User's provenance: the origin of INBOX and of SENT, and whether they were ever covered.

    `covered` turns True once a push or onboarding reached the User's mailbox;
    a `PushMode.NEW_USERS_ONLY` push leaves covered Users alone (R16).
    """

    inbox: LabelOrigin = field(
        default=UNKNOWN_ORIGIN, validator=v.instance_of(LabelOrigin, what="a LabelOrigin")
    )
    sent: LabelOrigin = field(
        default=UNKNOWN_ORIGIN, validator=v.instance_of(LabelOrigin, what="a LabelOrigin")
    )
    covered: bool = field(default=False, validator=v.strict_bool)

    def of(self, label: object) -> LabelOrigin:
        """The origin of `label` (a `SystemLabel`)."""
        name = getattr(label, "value", None)
        if name == "INBOX":
            return self.inbox
        if name == "SENT":
            return self.sent
        raise InvalidInput("label", label, "is not INBOX or SENT")

    def setting(self, label: object, origin: LabelOrigin) -> Provenance:
        """This provenance with `label`'s origin replaced."""
        if getattr(label, "value", None) == "INBOX":
            return attrs.evolve(self, inbox=origin)
        self.of(label)
        return attrs.evolve(self, sent=origin)


UNKNOWN = Provenance()
COVERED = Provenance(covered=True)
