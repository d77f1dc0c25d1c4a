"""Attributes of what enrichment publishes (Pub/Sub caps attribute values at 1024 bytes)."""

from __future__ import annotations

from txguard.contract import names
from txguard.contract.models import Decision, Outcome
from txguard.enrichment.outbox import MAX_REASON_CHARS, decision_attributes, invalid_attributes, truncate


def test_reason_is_truncated_by_utf8_bytes() -> None:
    text = "é" * 2000
    out = truncate(text)
    assert len(out.encode()) <= MAX_REASON_CHARS and out.endswith("...")
    assert truncate("short") == "short"


def test_invalid_attributes_fall_back_to_the_push_subscription() -> None:
    attrs = invalid_attributes("x" * 5000, "json", "", None)
    assert attrs[names.ATTR_SOURCE_SUBSCRIPTION] == names.ENRICH_PUSH_SUBSCRIPTION
    assert attrs[names.ATTR_SOURCE_MESSAGE_ID] == "unknown"
    assert len(attrs[names.ATTR_REASON]) <= MAX_REASON_CHARS
    assert all(len(v.encode()) <= 1024 for v in attrs.values())


def test_decision_attributes_pass_published_at_through_only_when_present() -> None:
    d = Decision(transaction_id="t1", wallet_id="w1", score=0.7, outcome=Outcome.REVIEW, model_version="v3")
    assert decision_attributes(d, None) == {names.ATTR_OUTCOME: "review", names.ATTR_MODEL_VERSION: "v3",
                                            names.ATTR_TRANSACTION_ID: "t1"}
    assert decision_attributes(d, "17")[names.ATTR_PUBLISHED_AT] == "17"
