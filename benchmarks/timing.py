"""Wall-clock and CPU timing of one call, and medians of repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from attrs import frozen

T = TypeVar("T")


@frozen
class Timing:
    """One run: wall-clock seconds and CPU seconds of this process."""

    wall: float
    cpu: float


def timed(call: Callable[[], T]) -> tuple[T, Timing]:
    """Run `call` once; its result is returned so that freeing it is not timed."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, Timing(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)


@frozen
class Runs:
    """The timings of repeated runs of one thing, summarised by medians."""

    timings: tuple[Timing, ...]

    @property
    def wall(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(t.wall for t in self.timings)

    @property
    def cpu(self) -> float:
        """Median CPU seconds."""
        return statistics.median(t.cpu for t in self.timings)

    def __len__(self) -> int:
        return len(self.timings)


def runs(timings: Sequence[Timing]) -> Runs:
    """Bundle timings."""
    return Runs(tuple(timings))
