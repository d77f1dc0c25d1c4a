"""Live view counters: one-second buckets by event time, a sliding window, latency percentiles."""

from __future__ import annotations

import math

from txguard.console.ingest import latency_ms
from txguard.console.live_stats import LATENCY_EDGES_MS, LiveStats, latency_bucket, percentile_ms
from txguard.contract import names


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_rates_by_outcome_over_complete_seconds() -> None:
    clock = Clock(1000.5)
    stats = LiveStats(window_s=60, clock=clock)
    for second in range(990, 1000):  # ten complete seconds: 3 allow, 1 review each
        for _ in range(3):
            stats.decision("allow", second + 0.2, 40.0)
        stats.decision("review", second + 0.7, 250.0)
    stats.decision("block", 1000.1, 9.0)  # the current second is not in the rate yet
    snap = stats.snapshot()
    assert snap["rate"] == {"allow": 3.0, "review": 1.0, "block": 0.0}
    assert snap["per_second"]["allow"][-11:] == [3] * 10 + [0]
    assert snap["per_second"]["block"][-1] == 1
    assert snap["totals"] == {"allow": 30, "review": 10, "block": 1, "invalid": 0, "dead_lettered": 0}
    assert sum(snap["latency"]["counts"]) == 41
    assert snap["latency"]["p50_ms"] == 50 and snap["latency"]["p99_ms"] == 500


def test_old_events_count_in_totals_only_and_the_window_slides() -> None:
    clock = Clock(5000.0)
    stats = LiveStats(window_s=30, clock=clock)
    stats.decision("allow", 4000.0, 10.0)  # a backlog drained after a restart
    stats.invalid(4999.5)
    stats.dead_letter(4999.5)
    snap = stats.snapshot()
    assert snap["totals"]["allow"] == 1 and sum(snap["per_second"]["allow"]) == 0
    assert snap["window"] == {"decided": 0, "invalid": 1, "dead_lettered": 1}
    clock.t = 5100.0
    snap = stats.snapshot()
    assert snap["window"] == {"decided": 0, "invalid": 0, "dead_lettered": 0}
    assert snap["totals"]["invalid"] == 1 and len(snap["per_second"]["allow"]) == 30


def test_latency_buckets_and_percentiles() -> None:
    assert latency_bucket(0) == 0 and latency_bucket(10) == 0 and latency_bucket(10.1) == 1
    assert latency_bucket(1e9) == len(LATENCY_EDGES_MS)
    buckets = len(LATENCY_EDGES_MS) + 1
    assert percentile_ms([0] * buckets, 0.5) is None
    counts = [0] * buckets
    counts[-1] = 1
    assert percentile_ms(counts, 0.5) == math.inf
    assert LiveStats().snapshot()["latency"]["p50_ms"] is None


def test_latency_from_the_publisher_attribute() -> None:
    assert latency_ms({names.ATTR_PUBLISHED_AT: "1000000"}, 1000.25) == 250.0
    assert latency_ms({}, 1000.0) is None
    assert latency_ms({names.ATTR_PUBLISHED_AT: "soon"}, 1000.0) is None
