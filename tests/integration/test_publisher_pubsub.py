"""The publisher and the decisions tail against the real Pub/Sub emulator."""

from __future__ import annotations

import json

import pytest

from scripts import emulators
from scripts.cli import main as cli
from scripts.local import topology
from shared import names
from shared.publisher import Pacer, PubSubTransport, make_stream, publish_all

pytestmark = pytest.mark.emulators

PROJECT = "txguard-publisher-test"


@pytest.fixture
def pubsub_env(pubsub_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> emulators.Emulator:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    # Pull subscriptions only: nothing pushes anywhere in this test.
    subs = tuple(s for s in names.SUBSCRIPTIONS if s.push_to is None) + (
        names.SubscriptionSpec("transactions-pull", names.TRANSACTIONS_TOPIC),
    )
    topology.ensure_topology(PROJECT, {}, subscriptions=subs)
    return pubsub_emulator


def _drain(subscription: str, expected: int) -> list:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(PROJECT, subscription)
    got = []
    try:
        for _ in range(50):
            resp = subscriber.pull(request={"subscription": path, "max_messages": 500}, timeout=10)
            got.extend(rm.message for rm in resp.received_messages)
            if resp.received_messages:
                subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [rm.ack_id for rm in resp.received_messages]}
                )
            if len(got) >= expected:
                break
    finally:
        subscriber.close()
    return got


def test_published_messages_arrive_keyed_and_stamped(pubsub_env: emulators.Emulator) -> None:
    messages = make_stream(60, "burst", seed=11, invalid_fraction=0.1, id_prefix="pubtest")
    transport = PubSubTransport(PROJECT, names.TRANSACTIONS_TOPIC, max_messages=10, max_latency_s=0.005)
    try:
        stats = publish_all(messages, transport, Pacer(rate=500))
    finally:
        transport.close()
    assert stats.published == 60 and stats.failed == 0
    got = _drain("transactions-pull", 60)
    assert sorted(m.data for m in got) == sorted(m.data for m in messages)
    by_data = {m.data: m for m in messages}
    for received in got:
        sent = by_data[received.data]
        assert received.ordering_key == sent.ordering_key
        assert int(received.attributes[names.ATTR_PUBLISHED_AT]) > 0
        assert received.attributes.get(names.ATTR_TRANSACTION_ID) == sent.transaction_id


def test_publish_command_and_decisions_tail(pubsub_env: emulators.Emulator, capsys: pytest.CaptureFixture) -> None:
    assert cli(["publish", "--count", "25", "--rate", "1000", "--scenario", "fraud", "--invalid-fraction", "0"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["published"] == 25 and summary["failed"] == 0
    assert len(_drain("transactions-pull", 25)) == 25

    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient()
    topic = client.topic_path(PROJECT, names.DECISIONS_TOPIC)
    for i in range(3):
        body = {"transaction_id": f"t{i}", "wallet_id": "w1", "score": 0.9, "decision": "block",
                "reasons": ["amount_high"], "model_version": "v1", "timings": {}}
        client.publish(topic, json.dumps(body).encode(), **{names.ATTR_PUBLISHED_AT: "1"}).result(timeout=30)
    assert cli(["decisions", "--max", "3", "--timeout", "30"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3
    assert all("BLOCK" in line and "wallet=w1" in line and "e2e=" in line for line in lines)
