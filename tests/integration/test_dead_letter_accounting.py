"""A message the enrichment endpoint never accepts ends on the dead-letter topic, and the local
stack's consumers count it as dead-lettered (not lost): real Pub/Sub emulator, real push."""

from __future__ import annotations

import time

import pytest

from scripts import emulators
from scripts.local import topology
from scripts.local.consumers import PullConsumers
from scripts.local.tracker import Tracker
from shared import names
from shared.publisher import PubSubTransport, make_stream, publish_all

pytestmark = pytest.mark.emulators

PROJECT = "txguard-deadletter-test"


def test_undeliverable_messages_are_dead_lettered_and_accounted(
    pubsub_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    push = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    # Production's push subscription, made quick: fewest attempts Pub/Sub allows, no backoff.
    fast = names.SubscriptionSpec(push.name, push.topic, push_to=push.push_to,
                                  dead_letter_topic=push.dead_letter_topic, max_delivery_attempts=5,
                                  min_backoff_seconds=0, max_backoff_seconds=1)
    subs = tuple(fast if s.name == push.name else s for s in names.SUBSCRIPTIONS)
    # Nothing listens on port 9 of the loopback: every push fails.
    topology.ensure_topology(PROJECT, {names.ENRICH_FUNCTION: "http://127.0.0.1:9/"}, subscriptions=subs)

    tracker = Tracker()
    consumers = PullConsumers(PROJECT, tracker).start()
    transport = PubSubTransport(PROJECT, names.TRANSACTIONS_TOPIC, max_latency_s=0.005)
    try:
        messages = make_stream(3, "fraud", seed=3, id_prefix="dl")
        publish_all(messages, transport, on_sent=tracker.sent, on_done=tracker.confirmed)
        deadline = time.monotonic() + 120
        while not tracker.settled() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        transport.close()
        consumers.stop()
    summary = tracker.summary()
    assert summary["published"] == 3
    assert summary["dead_lettered"] == 3
    assert summary["lost"] == 0 and summary["decided"] == 0
