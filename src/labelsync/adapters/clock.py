"""Clocks: the real one, and one that stands still until told to move (tests, notebooks)."""

from __future__ import annotations

import datetime as dt

from labelsync.exceptions import InvalidInput

__all__ = ["FixedClock", "SystemClock"]


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


def _aware(field: str, value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise InvalidInput(field, value, "must be a timezone-aware datetime")
    return value


class FixedClock:
    """A clock that shows `at` until `set` or `advance` moves it; for tests and notebooks."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = _aware("at", at)

    def now(self) -> dt.datetime:
        """The time this clock is set to."""
        return self._at

    def set(self, at: dt.datetime) -> None:
        """Move the clock to `at` (aware)."""
        self._at = _aware("at", at)

    def advance(self, by: dt.timedelta) -> dt.datetime:
        """Move the clock forward by `by` and return the new time."""
        checked: object = by
        if not isinstance(checked, dt.timedelta) or checked < dt.timedelta(0):
            raise InvalidInput("by", by, "must be a timedelta >= 0")
        try:
            self._at += by
        except OverflowError:
            raise InvalidInput(
                "by", by, f"moves the clock past the year 9999 (it shows {self._at.isoformat()})"
            ) from None
        return self._at

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"
