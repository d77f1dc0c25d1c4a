"""When to send message i: a fixed rate, or the events' own spacing sped up (seed 002's multiplier).

Targets are computed from the start (not from the previous send), so a slow publish does not
lower the average rate: the loop catches up instead of drifting.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(
        self,
        rate: float | None = None,
        speed: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and speed is not None:
            raise ValueError("give a rate or a speed multiplier, not both")
        if (rate is not None and rate <= 0) or (speed is not None and speed <= 0):
            raise ValueError("rate and speed must be > 0")
        self.rate = rate
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self.started: float | None = None
        self.first_event: float | None = None

    def target(self, index: int, event_time: float) -> float:
        """Seconds after the start at which message `index` (at `event_time`) is due."""
        if self.rate is not None:
            return index / self.rate
        if self.speed is not None:
            if self.first_event is None:
                self.first_event = event_time
            return max(0.0, event_time - self.first_event) / self.speed
        return 0.0

    def wait(self, index: int, event_time: float) -> None:
        now = self.clock()
        if self.started is None:
            self.started = now
        delay = self.started + self.target(index, event_time) - now
        if delay > 0:
            self.sleep(delay)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started
