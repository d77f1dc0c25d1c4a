"""The one ledger behind `local up`, `bench e2e` and `reliability`: matching, accounting, quality, latency,
the router between streams, and the drain that watches it."""

from __future__ import annotations

import json
import random

import pytest

from txguard.contract import names
from txguard.local import feed, report
from txguard.local.ledger import Ledger, percentile
from txguard.local.router import Router
from txguard.publisher import corrupt, from_labelled, make_stream, simulated
from txguard.reliability import poison


def _decision(tx_id: str, outcome: str = "allow", late: bool = False) -> bytes:
    doc = {"transaction_id": tx_id, "wallet_id": "w", "score": 0.5, "outcome": outcome,
           "model_version": "v1", "timings": {"total_ms": 3.0}}
    if late:
        doc["late"] = True
    return json.dumps(doc).encode()


@pytest.fixture
def stream() -> list:
    messages = [from_labelled(t) for t in simulated(40, "burst", seed=5)]
    messages[1] = corrupt(messages[1], random.Random(0))
    return messages


def test_every_outcome_is_matched_and_counted(stream: list) -> None:
    ledger = Ledger("demo")
    for i, m in enumerate(stream):
        ledger.sent(m, published_at_ms=1000 + i)
        ledger.confirmed(m, None)
    assert not ledger.settled()
    valid = [m for m in stream if m.expected_valid]
    for m in valid[:-1]:
        assert ledger.on_decision(_decision(m.transaction_id, "block" if m.is_fraud else "allow"), {}, now_ms=2000)
    assert ledger.on_invalid(stream[1].data, {names.ATTR_ERROR_KIND: "schema", names.ATTR_REASON: "x"}, now_ms=2000)
    assert ledger.on_dead_letter(valid[-1].data, {}, now_ms=2000)
    assert ledger.on_decision(_decision(valid[0].transaction_id), {}, now_ms=2100)  # a redelivered output
    assert not ledger.on_decision(_decision("never-sent"), {}, now_ms=2100)
    assert ledger.settled()
    s = ledger.summary()
    assert (s["sent"], s["published"], s["decided"], s["invalid"], s["dead_lettered"]) == (40, 40, 38, 1, 1)
    assert s["lost"] == 0 and s["duplicates"] == 1 and s["decision_copies"] == 39
    assert s["invalid_kinds"] == {"schema": 1} and s["valid_on_invalid"] == 0 and s["poison"] == 1
    assert s["rejected_kinds"] == {stream[1].corruption: 1} and s["invalid_without_reason"] == 0
    frauds = sum(1 for m in valid[:-1] if m.is_fraud)
    assert s["true_positives"] == frauds and s["false_positives"] == 0
    assert s["precision"] == (1.0 if frauds else None)
    assert s["e2e_p50_ms"] is not None and s["e2e_p50_ms"] <= s["e2e_p99_ms"] <= s["e2e_max_ms"] <= 1000
    report.summary_table({**s, "mode": "embedded", "unmatched": {}})  # renders


def test_missing_outcomes_are_lost_and_failed_publishes_are_not(stream: list) -> None:
    ledger = Ledger("demo")
    for m in stream[:3]:
        ledger.sent(m, 0)
    ledger.confirmed(stream[0], None)
    ledger.confirmed(stream[1], None)
    ledger.confirmed(stream[2], RuntimeError("refused"))
    s = ledger.summary()
    assert s["published"] == 2 and s["publish_failed"] == 1 and s["lost"] == 2


def test_counts_transactions_not_messages_and_compares_decision_copies() -> None:
    m = make_stream(1, "fraud", seed=5, id_prefix="dup")[0]
    ledger = Ledger("dup")
    for _ in range(2):
        ledger.sent(m)
        ledger.confirmed(m, None)
    assert ledger.pending() == 1
    assert ledger.on_decision(_decision(m.transaction_id), {}) and ledger.on_decision(_decision(m.transaction_id), {})
    s = ledger.summary()
    assert (s["sent"], s["transactions"], s["decided"], s["decision_copies"], s["lost"]) == (2, 1, 1, 2, 0)
    assert s["inconsistent_decisions"] == 0
    ledger.on_decision(_decision(m.transaction_id, "block"), {})
    assert ledger.summary()["inconsistent_decisions"] == 1


def test_a_decision_flagged_late_is_counted() -> None:
    a, b = make_stream(2, "fraud", seed=6, id_prefix="late")
    ledger = Ledger("late")
    for m in (a, b):
        ledger.sent(m)
    ledger.on_decision(_decision(a.transaction_id, late=True), {})
    ledger.on_decision(_decision(b.transaction_id), {})
    assert ledger.summary()["late"] == 1 and ledger.late_ids() == {a.transaction_id}


def test_poison_is_matched_by_content_and_needs_a_reason() -> None:
    base = make_stream(2, "fraud", seed=5, id_prefix="poi")[1]
    bad = poison.make_poison(base, "nan_amount", 7)
    ledger = Ledger("poison")
    ledger.sent(bad)
    ledger.confirmed(bad, None)
    assert not ledger.on_invalid(b"something else", {names.ATTR_REASON: "x"})
    assert ledger.on_invalid(bad.data, {})
    s = ledger.summary()
    assert (s["poison"], s["invalid"], s["invalid_without_reason"], s["lost"]) == (1, 1, 1, 0)
    assert s["rejected_kinds"] == {"nan_amount": 1}


def test_parked_is_not_lost_and_redriven_is_pending_again() -> None:
    a, b, c = make_stream(3, "fraud", seed=8, id_prefix="out")
    ledger = Ledger("outage")
    for m in (a, b, c):
        ledger.sent(m)
        ledger.confirmed(m, None)
    ledger.on_decision(_decision(a.transaction_id), {})
    ledger.on_dead_letter(b.data, {})  # parked: accounted for, not lost
    s = ledger.summary()
    assert (s["decided"], s["dead_lettered"], s["still_dead_lettered"], s["lost"]) == (1, 1, 1, 1)
    ledger.on_redriven(b.data)
    assert ledger.pending() == 2
    ledger.on_decision(_decision(b.transaction_id), {})
    s = ledger.summary()
    assert (s["decided"], s["redriven"], s["still_dead_lettered"], s["lost"]) == (2, 1, 0, 1)


def test_router_routes_to_the_owning_ledger_newest_first_and_counts_the_rest() -> None:
    m = make_stream(2, "fraud", seed=9, id_prefix="rt")
    router = Router()
    first, second = router.add(Ledger("one")), router.add(Ledger("two"))
    first.sent(m[0])
    second.sent(m[1])
    router.on_decision(_decision(m[0].transaction_id), {})
    router.on_decision(_decision("nobody"), {})
    router.on_decision(b"{oops", {})
    router.on_redriven(m[1].data, {})
    assert first.summary()["decided"] == 1 and second.summary()["redriven"] == 1
    assert router.unmatched == {"decision": 2}
    router.on_dead_letter(m[0].data, {})
    assert router.take_dead_letters() == [(m[0].data, {})] and router.take_dead_letters() == []
    router.redriven(m[0].data)
    assert first.summary()["redriven"] == 1


def test_drain_ends_when_settled_gives_up_when_idle_and_acts_when_stuck() -> None:
    a, b = make_stream(2, "fraud", seed=10, id_prefix="dr")
    ledger = Ledger("drain")
    for m in (a, b):
        ledger.sent(m)
        ledger.confirmed(m, None)
    ledger.on_decision(_decision(a.transaction_id), {})
    gave_up = feed.drain(ledger, idle_s=0.3, interval_s=0.05)
    assert gave_up.gave_up and not gave_up.settled and ledger.summary()["lost"] == 1

    def redrive() -> int:  # what a dead-letter redrive does: the missing one comes back, decided
        ledger.on_decision(_decision(b.transaction_id), {})
        return 1

    done = feed.drain(ledger, idle_s=5, act_after_s=0.1, on_idle=redrive, interval_s=0.05)
    assert done.settled and done.actions == 1 and done.moved == 1 and not done.gave_up


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
