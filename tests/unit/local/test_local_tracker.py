"""The outcome tracker behind `txguard local up`'s summary: matching, duplicates, quality, latency."""

from __future__ import annotations

import json
import random

import pytest

from txguard.local import report
from txguard.local.tracker import Tracker, percentile
from txguard.publisher import corrupt, from_labelled, simulated


def _decision(tx_id: str, outcome: str) -> bytes:
    return json.dumps({"transaction_id": tx_id, "wallet_id": "w", "score": 0.5, "outcome": outcome,
                       "model_version": "v1", "timings": {"total_ms": 3.0}}).encode()


@pytest.fixture
def stream():
    items = simulated(40, "burst", seed=5)
    messages = [from_labelled(t) for t in items]
    messages[1] = corrupt(messages[1], random.Random(0))
    return messages


def test_every_outcome_is_matched_and_counted(stream) -> None:
    tracker = Tracker()
    for i, m in enumerate(stream):
        tracker.sent(m, published_at_ms=1000 + i)
        tracker.confirmed(m, None)
    assert not tracker.settled()
    valid = [m for m in stream if m.expected_valid]
    for m in valid[:-1]:
        tracker.on_decision(_decision(m.transaction_id, "block" if m.is_fraud else "allow"), {}, now_ms=2000)
    tracker.on_invalid(stream[1].data, {"error_kind": "schema"}, now_ms=2000)
    tracker.on_dead_letter(valid[-1].data, {}, now_ms=2000)
    tracker.on_decision(_decision(valid[0].transaction_id, "allow"), {}, now_ms=2100)  # redelivered output
    tracker.on_decision(_decision("never-sent", "allow"), {}, now_ms=2100)
    assert tracker.settled()
    s = tracker.summary()
    assert s["published"] == 40 and s["decided"] == 38 and s["invalid"] == 1 and s["dead_lettered"] == 1
    assert s["lost"] == 0 and s["duplicates"] == 1 and s["unmatched"] == {"decision": 1}
    assert s["invalid_kinds"] == {"schema": 1} and s["unexpected_invalid"] == 0 and s["invalid_injected"] == 1
    frauds = sum(1 for m in valid[:-1] if m.is_fraud)
    assert s["true_positives"] == frauds and s["false_positives"] == 0
    assert s["precision"] == (1.0 if frauds else None)
    assert s["e2e_p50_ms"] is not None and s["e2e_p50_ms"] <= s["e2e_p99_ms"] <= s["e2e_max_ms"]
    report.summary_table({**s, "mode": "embedded"})  # renders


def test_missing_outcomes_are_lost_and_failed_publishes_are_not(stream) -> None:
    tracker = Tracker()
    for m in stream[:3]:
        tracker.sent(m, 0)
    tracker.confirmed(stream[0], None)
    tracker.confirmed(stream[1], None)
    tracker.confirmed(stream[2], RuntimeError("refused"))
    s = tracker.summary()
    assert s["published"] == 2 and s["publish_failed"] == 1 and s["lost"] == 2


def test_malformed_decision_is_reported() -> None:
    tracker = Tracker()
    tracker.on_decision(b"{oops", {})
    assert tracker.summary()["unmatched"] == {"malformed_decision": 1}


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
