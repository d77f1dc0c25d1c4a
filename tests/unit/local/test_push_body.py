"""The push body the local delivery paths post, and the fault plan (pure parts of txguard.local.push)."""

from __future__ import annotations

import base64
from collections import Counter

import pytest

from txguard.enrichment.envelope import decode, parse_envelope, parse_transaction
from txguard.local.push import ANSWER_LOST, REFUSED, Delivery, FaultPlan, push_body
from txguard.publisher import make_stream


def test_the_body_is_pubsub_push_with_attempt_and_ordering_key() -> None:
    m = make_stream(1, "fraud", seed=1, id_prefix="pb")[0]
    d = Delivery(m.data, {"published_at": "1"}, "42", "2024-05-01T10:00:00.123Z", m.ordering_key, attempt=3)
    body = push_body(d, "projects/p/subscriptions/s", dead_letter_policy=True)
    assert body["subscription"] == "projects/p/subscriptions/s" and body["deliveryAttempt"] == 3
    msg = body["message"]
    assert base64.b64decode(msg["data"]) == m.data
    assert msg["messageId"] == msg["message_id"] == "42"
    assert msg["publishTime"] == msg["publish_time"] == "2024-05-01T10:00:00.123Z"
    assert msg["orderingKey"] == m.ordering_key and msg["attributes"] == {"published_at": "1"}
    # what the enrichment function reads from it
    envelope = parse_envelope(body)
    assert envelope.message.ordering_key == m.ordering_key
    assert parse_transaction(decode(envelope).raw).transaction_id == m.transaction_id


def test_attempt_only_with_a_dead_letter_policy_and_key_only_when_set() -> None:
    body = push_body(Delivery(b"x", {}, "1", "t"), "s", dead_letter_policy=False)
    assert "deliveryAttempt" not in body and "orderingKey" not in body["message"]


def test_the_fault_plan_fails_about_its_share_both_ways_reproducibly() -> None:
    plan = FaultPlan(0.2, seed=4)
    draws = [plan.draw() for _ in range(5000)]
    counts = Counter(draws)
    assert 0.17 < (counts[REFUSED] + counts[ANSWER_LOST]) / 5000 < 0.23
    assert counts[REFUSED] > 300 and counts[ANSWER_LOST] > 300
    again = FaultPlan(0.2, seed=4)
    assert [again.draw() for _ in range(5000)] == draws
    assert {FaultPlan(0.0).draw() for _ in range(100)} == {None}
    with pytest.raises(ValueError):
        FaultPlan(1.0)
