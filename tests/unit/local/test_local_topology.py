"""Subscription requests built from shared/txguard/contract/names.py (pure; the emulator test checks the result)."""

from __future__ import annotations

import pytest

from txguard.contract import names
from txguard.local import topology

PROJECT = "p-unit"


def test_push_and_dead_letter_settings_come_from_the_spec() -> None:
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    req = topology.subscription_request(PROJECT, spec, {names.ENRICH_FUNCTION: "http://x/"}, emulator=False)
    assert req["push_config"] == {"push_endpoint": "http://x/"}
    assert req["dead_letter_policy"]["max_delivery_attempts"] == spec.max_delivery_attempts
    assert req["dead_letter_policy"]["dead_letter_topic"].endswith(f"/topics/{spec.dead_letter_topic}")
    assert req["enable_message_ordering"] is True  # per-wallet order in the cloud


def test_pull_subscription_has_no_push_config() -> None:
    spec = names.subscription(names.DECISIONS_SUBSCRIPTION)
    req = topology.subscription_request(PROJECT, spec, {}, emulator=False)
    assert "push_config" not in req
    assert req["enable_message_ordering"] is spec.enable_message_ordering


def test_the_emulator_gets_no_ordering_where_it_would_lose_dead_letters() -> None:
    """Ordering + dead-letter policy breaks the emulator's whole subscription: the bridge orders instead."""
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    on_emulator = topology.subscription_request(PROJECT, spec, {names.ENRICH_FUNCTION: "http://x/"}, emulator=True)
    assert on_emulator["enable_message_ordering"] is False and "dead_letter_policy" in on_emulator
    tail = topology.subscription_request(PROJECT, names.subscription(names.DECISIONS_SUBSCRIPTION), {}, emulator=True)
    assert tail["enable_message_ordering"] is True  # ordering alone is fine there


def test_the_bridge_gets_a_pull_subscription_with_the_push_settings() -> None:
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    req = topology.subscription_request(PROJECT, spec, {}, emulator=True, push=False)
    assert "push_config" not in req
    assert req["dead_letter_policy"]["max_delivery_attempts"] == spec.max_delivery_attempts
    assert req["ack_deadline_seconds"] == spec.ack_deadline_seconds
    # The bridge spaces the redeliveries itself (PushBridge.backoff): the emulator's backoff
    # scheduler, which can stop redelivering for good, is never involved.
    assert "retry_policy" not in req
    assert "retry_policy" in topology.subscription_request(PROJECT, spec, {names.ENRICH_FUNCTION: "http://x/"},
                                                          emulator=True)
    assert "retry_policy" in topology.subscription_request(PROJECT, spec, {}, emulator=False, push=False)
    for route in names.LABEL_ROUTES:
        assert "retry_policy" not in topology.subscription_request(
            PROJECT, names.subscription(route.subscription), {}, emulator=True, push=False)
    tail = topology.subscription_request(PROJECT, names.subscription(names.DECISIONS_SUBSCRIPTION), {},
                                         emulator=True, push=False)
    assert "retry_policy" in tail  # a pull subscription: nobody applies a policy but the emulator


def test_push_subscription_needs_its_endpoint() -> None:
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    with pytest.raises(KeyError):
        topology.subscription_request(PROJECT, spec, {}, emulator=False)


def test_retention_is_capped_only_on_the_emulator() -> None:
    spec = names.subscription(names.INVALID_SUBSCRIPTION)
    assert topology.effective_retention(spec, emulator=False) == spec.retention_seconds
    assert topology.effective_retention(spec, emulator=True) == min(
        spec.retention_seconds, topology.EMULATOR_MAX_SUBSCRIPTION_RETENTION
    )
