"""The publisher and the decisions tail against the real Pub/Sub emulator."""

from __future__ import annotations

import json

import pytest

from txguard.cli.main import main as cli
from txguard.contract import names
from txguard.local import emulators, topology
from txguard.publisher import Pacer, PubSubTransport, make_stream, publish_all

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
        body = {"transaction_id": f"t{i}", "wallet_id": "w1", "score": 0.9, "outcome": "block",
                "reasons": ["amount_high"], "model_version": "v1", "timings": {}}
        client.publish(topic, json.dumps(body).encode(), **{names.ATTR_PUBLISHED_AT: "1"}).result(timeout=30)
    assert cli(["decisions", "--max", "3", "--timeout", "30"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3
    assert all("BLOCK" in line and "wallet=w1" in line and "e2e=" in line for line in lines)


def _publish_decisions(tag: str, n: int) -> None:
    from google.cloud import pubsub_v1

    client = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    topic = client.topic_path(PROJECT, names.DECISIONS_TOPIC)
    futures = []
    for i in range(n):
        body = {"transaction_id": f"{tag}{i}", "wallet_id": f"w{i % 3}", "score": 0.1, "outcome": "allow",
                "reasons": [], "model_version": "v1", "timings": {}}
        futures.append(client.publish(topic, json.dumps(body).encode(), ordering_key=f"w{i % 3}"))
    for f in futures:
        f.result(timeout=30)


def test_tail_after_the_stack_consumers_sees_every_decision(
    pubsub_env: emulators.Emulator, capsys: pytest.CaptureFixture
) -> None:
    """The stack's consumers must leave no lease behind: decisions-tail is ordered, and a held
    ordering key would hide that wallet's later decisions from `txguard decisions --follow`."""
    import time

    from txguard.local.consumers import PullConsumers
    from txguard.local.router import Router

    router = Router()
    consumers = PullConsumers(PROJECT, router).start()
    try:
        _publish_decisions("first", 9)
        deadline = time.monotonic() + 30
        while router.unmatched.get("decision", 0) < 9 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        consumers.stop()
    assert router.unmatched["decision"] == 9  # consumed (no ledger knows them, hence unmatched)
    capsys.readouterr()
    _publish_decisions("second", 9)
    assert cli(["decisions", "--follow", "--max", "9", "--timeout", "30"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 9 and all("second" in line for line in lines)


def test_publish_command_replays_a_file_at_a_speed(
    pubsub_env: emulators.Emulator, capsys: pytest.CaptureFixture, tmp_path
) -> None:
    from txguard.publisher import simulated

    items = simulated(12, "fraud", seed=21, id_prefix="replay")
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(t.to_json() + "\n" for t in items) + "{broken\n")
    capsys.readouterr()
    # A file with a row the contract rejects is refused whole: the line is named, nothing published.
    assert cli(["publish", "--file", str(path), "--speed", "1000000"]) == 1  # input: nothing published
    out = capsys.readouterr()
    assert f"{path}: line 13: not a JSON object" in out.err
    assert json.loads(out.out.strip().splitlines()[-1])["rejected_lines"] == [13]
    # --skip-invalid publishes every other row, as it is (no injected corruption by default).
    assert cli(["publish", "--file", str(path), "--speed", "1000000", "--skip-invalid"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["published"] == 12 and summary["invalid_injected"] == 0 and summary["rows_skipped"] == 1
    got = _drain("transactions-pull", 12)
    assert len(got) == 12
    assert {json.loads(m.data)["transaction_id"] for m in got} == {t.tx.transaction_id for t in items}
    assert all(b"is_fraud" not in m.data for m in got)
    # --publish-invalid sends the bad row too, on purpose, to exercise the invalid path.
    assert cli(["publish", "--file", str(path), "--speed", "1000000", "--publish-invalid"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["published"] == 13 and summary["rows_rejected_published"] == 1
    assert b"{broken" in {m.data for m in _drain("transactions-pull", 13)}
