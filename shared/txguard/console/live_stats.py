"""What the live view shows: decisions per second by outcome, the end-to-end latency histogram,
invalid and dead-lettered counts, over a sliding window of one-second buckets.

Events are bucketed by when they happened (the decision's publish time), not when the console
received them: a backlog drained after a restart lands in its own seconds (or only in the totals
if older than the window) instead of a spike at "now". End-to-end latency is the decision's
publish time minus the publisher's `published_at` attribute: the pipeline, not the console's pull.

Totals count every event the console received (a backlog drained after a restart included), or,
once `start_totals` set a mark (the local stack does after its warm-up, so the page counts the
stream it shows), only events from the mark on: earlier ones are left out of the totals and the
charts alike.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from txguard.contract.models import Outcome

# Upper edges (ms) of the latency histogram; the last bucket is everything above.
LATENCY_EDGES_MS: tuple[float, ...] = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
RATE_SECONDS = 10  # "now" rates average the last complete seconds


class _Second:
    __slots__ = ("decisions", "dead_lettered", "invalid", "latency")

    def __init__(self) -> None:
        self.decisions = dict.fromkeys(OUTCOMES, 0)
        self.latency = [0] * (len(LATENCY_EDGES_MS) + 1)
        self.invalid = 0
        self.dead_lettered = 0


def latency_bucket(ms: float) -> int:
    for i, edge in enumerate(LATENCY_EDGES_MS):
        if ms <= edge:
            return i
    return len(LATENCY_EDGES_MS)


def percentile_ms(counts: list[int], q: float) -> float | None:
    """Upper edge of the bucket holding the q-quantile (None without data; inf above the last edge)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else math.inf
    return math.inf


class LiveStats:
    """Thread-safe counters; `snapshot()` is what the page draws."""

    def __init__(self, window_s: int = 120, clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self.clock = clock
        self._seconds: dict[int, _Second] = {}
        self._lock = threading.Lock()
        self.started = clock()
        self.since: float | None = None
        self.totals: dict[str, int] = {**dict.fromkeys(OUTCOMES, 0), "invalid": 0, "dead_lettered": 0}

    def start_totals(self, at: float | None = None) -> None:
        """Count from `at` (default now): totals and charts start over, earlier events are left out."""
        with self._lock:
            self.since = self.clock() if at is None else at
            self.totals = dict.fromkeys(self.totals, 0)
            self._seconds = {s: b for s, b in self._seconds.items() if s > int(self.since)}

    def _second(self, at: float) -> _Second | None:
        now = int(self.clock())
        second = int(at)
        if second <= now - self.window_s or second > now + 5:
            return None  # outside the window (old backlog, or a clock far ahead): totals only
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = _Second()
            for old in [s for s in self._seconds if s <= now - self.window_s]:
                del self._seconds[old]
        return bucket

    def decision(self, outcome: str, at: float, latency_ms: float | None) -> None:
        with self._lock:
            if self.since is not None and at < self.since:
                return
            self.totals[outcome] += 1
            bucket = self._second(at)
            if bucket is not None:
                bucket.decisions[outcome] += 1
                if latency_ms is not None and latency_ms >= 0:
                    bucket.latency[latency_bucket(latency_ms)] += 1

    def invalid(self, at: float) -> None:
        with self._lock:
            if self.since is not None and at < self.since:
                return
            self.totals["invalid"] += 1
            bucket = self._second(at)
            if bucket is not None:
                bucket.invalid += 1

    def dead_letter(self, at: float) -> None:
        with self._lock:
            if self.since is not None and at < self.since:
                return
            self.totals["dead_lettered"] += 1
            bucket = self._second(at)
            if bucket is not None:
                bucket.dead_lettered += 1

    def snapshot(self) -> dict[str, Any]:
        now = int(self.clock())
        seconds = list(range(now - self.window_s + 1, now + 1))
        with self._lock:
            buckets = [self._seconds.get(s) for s in seconds]
            totals = dict(self.totals)
            since = self.since
        empty = _Second()
        filled = [b or empty for b in buckets]
        per_second = {o: [b.decisions[o] for b in filled] for o in OUTCOMES}
        latency = [sum(b.latency[i] for b in filled) for i in range(len(LATENCY_EDGES_MS) + 1)]
        recent = filled[-RATE_SECONDS - 1:-1]  # complete seconds only
        rate = {o: round(sum(b.decisions[o] for b in recent) / RATE_SECONDS, 2) for o in OUTCOMES}

        def finite(v: float | None) -> float | str | None:
            return "inf" if v == math.inf else v

        return {
            "now": now,
            "since": since,  # None: totals of everything received since `started`
            "started": round(self.started, 3),
            "window_s": self.window_s,
            "per_second": per_second,
            "invalid_per_second": [b.invalid for b in filled],
            "dead_lettered_per_second": [b.dead_lettered for b in filled],
            "rate": rate,
            "latency": {
                "edges_ms": list(LATENCY_EDGES_MS),
                "counts": latency,
                "p50_ms": finite(percentile_ms(latency, 0.50)),
                "p95_ms": finite(percentile_ms(latency, 0.95)),
                "p99_ms": finite(percentile_ms(latency, 0.99)),
            },
            "window": {
                "decided": sum(sum(v) for v in per_second.values()),
                "invalid": sum(b.invalid for b in filled),
                "dead_lettered": sum(b.dead_lettered for b in filled),
            },
            "totals": totals,
        }


class StreamSlots:
    """At most `limit` live-view streams at once. A stream holds one server thread for its whole life
    (up to pages.live.SSE_MAX_S), and the console's threads serve everyone's claims and verdicts too:
    past the limit a page gets a refusal and polls `/api/live` instead."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        return self._open

    def take(self) -> bool:
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)
