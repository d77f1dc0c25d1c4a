"""Dead-lettered messages are counted as dead-lettered, not lost, by the local stack's consumers
(real Pub/Sub emulator, the production topology's dead-letter inspection subscription).

The message is forwarded to the dead-letter topic here, as Pub/Sub forwards it (same data and
attributes), instead of waiting for the emulator to give up on a push: the emulator's redelivery
timing is erratic (it sometimes pauses a failing push for minutes after 3-4 attempts), which
would make a bounded test flaky. The push side of dead-lettering is tested on the embedded
pusher (tests/integration/test_embedded_pubsub.py).
"""

from __future__ import annotations

import time

import pytest

from txguard.contract import names
from txguard.local import emulators, topology
from txguard.local.consumers import PullConsumers
from txguard.local.ledger import Ledger
from txguard.local.router import Router
from txguard.publisher import PubSubTransport, make_stream, publish_all

pytestmark = pytest.mark.emulators

PROJECT = "txguard-deadletter-test"


def test_dead_lettered_messages_are_accounted_not_lost(
    pubsub_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    pull_only = tuple(s for s in names.SUBSCRIPTIONS if s.push_to is None)
    topology.ensure_topology(PROJECT, {}, subscriptions=pull_only)

    router = Router()
    ledger = router.add(Ledger("dead-letters"))
    consumers = PullConsumers(PROJECT, router).start()
    messages = make_stream(4, "fraud", seed=3, id_prefix="dl")
    to_transactions = PubSubTransport(PROJECT, names.TRANSACTIONS_TOPIC, max_latency_s=0.005)
    forward = PubSubTransport(PROJECT, names.DEAD_LETTER_TOPIC, max_latency_s=0.005, ordering=False)
    try:
        publish_all(messages, to_transactions, on_sent=ledger.sent, on_done=ledger.confirmed)
        for m in messages[:3]:  # what Pub/Sub does after max_delivery_attempts failed pushes
            forward.publish(m.data, {names.ATTR_TRANSACTION_ID: m.transaction_id or ""}, "").result(timeout=30)
        deadline = time.monotonic() + 60
        while ledger.counts()["dead_lettered"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        to_transactions.close()
        forward.close()
        consumers.stop()
    summary = ledger.summary()
    assert summary["published"] == 4
    assert summary["dead_lettered"] == 3
    assert summary["lost"] == 1  # the fourth has no outcome at all
    assert summary["decided"] == 0 and router.unmatched == {}
