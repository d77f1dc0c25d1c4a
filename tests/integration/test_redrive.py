"""`txguard.ops.redrive` on the Pub/Sub emulator: dead-letter inspection subscription -> `transactions`,
attributes kept (minus Pub/Sub's dead-letter ones), acked after the publish: the subscription is
empty afterwards and a second redrive moves nothing."""

from __future__ import annotations

import pytest

from txguard.contract import names
from txguard.local import emulators, topology
from txguard.ops.redrive import redrive

pytestmark = pytest.mark.emulators

PROJECT = "txguard-redrive-test"
CHECK_SUB = "transactions-redrive-check"


def test_redrive_moves_dead_letters_back_to_transactions(
    pubsub_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    pull_only = tuple(s for s in names.SUBSCRIPTIONS if s.push_to is None)
    topology.ensure_topology(PROJECT, {}, subscriptions=pull_only)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    check_path = subscriber.subscription_path(PROJECT, CHECK_SUB)
    subscriber.create_subscription(request={"name": check_path,
                                            "topic": publisher.topic_path(PROJECT, names.TRANSACTIONS_TOPIC)})
    try:
        dead = publisher.topic_path(PROJECT, names.DEAD_LETTER_TOPIC)
        for i in range(5):
            publisher.publish(dead, f'{{"n": {i}}}'.encode(), **{
                names.ATTR_TRANSACTION_ID: f"t{i}", names.ATTR_PUBLISHED_AT: "1714564800000",
                "CloudPubSubDeadLetterSourceDeliveryCount": "10"}).result(timeout=30)
        seen: list[bytes] = []
        stats = redrive(PROJECT, pull_timeout_s=2.0, on_message=lambda data, _a: seen.append(data))
        assert (stats.pulled, stats.republished, stats.failed) == (5, 5, 0)
        assert sorted(seen) == sorted(f'{{"n": {i}}}'.encode() for i in range(5))
        got = []
        for _ in range(10):
            resp = subscriber.pull(request={"subscription": check_path, "max_messages": 10}, timeout=5)
            got += list(resp.received_messages)
            if len(got) >= 5:
                break
        assert len(got) == 5
        for rm in got:
            attrs = dict(rm.message.attributes)
            assert attrs[names.ATTR_PUBLISHED_AT] == "1714564800000"
            assert attrs[names.ATTR_TRANSACTION_ID].startswith("t")
            assert not any(k.startswith("CloudPubSubDeadLetter") for k in attrs)
        assert redrive(PROJECT, pull_timeout_s=2.0).pulled == 0  # acked: nothing left
    finally:
        subscriber.delete_subscription(request={"subscription": check_path})
        subscriber.close()
        publisher.transport.close()
