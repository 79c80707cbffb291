"""Admin policy beyond "override everyone": how a push treats a User's own choices (R16).

Pure values; the rules that use them live in `labelsync.rules` and the push engine.
"""

from __future__ import annotations

import enum

__all__ = ["PushMode"]


class PushMode(enum.Enum):
    """How a push treats INBOX/SENT selections (R16); OVERRIDE is version 1's behaviour."""

    OVERRIDE = "OVERRIDE"
    """Every covered User gets the defaults, whoever set the label last (R3, R4)."""
    KEEP_USER_CHOICES = "KEEP_USER_CHOICES"
    """A label whose origin is the User is left as they set it (skip `USER_CHOICE_KEPT`)."""
    NEW_USERS_ONLY = "NEW_USERS_ONLY"
    """Only Users that no earlier push or onboarding ever covered get the defaults."""
