"""The console against the real emulators: the Firestore review queue (claims that race, expiry,
ordering), the label event arriving on `labels`, and the console's own subscriptions feeding the
queue and the live counts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import make_tx
from txguard.console import items
from txguard.console.ingest import Intake, SubscriptionReader
from txguard.console.items import ReviewItem
from txguard.console.label_publisher import PubSubLabelPublisher
from txguard.console.live_stats import LiveStats
from txguard.console.queue_firestore import FirestoreReviewQueue
from txguard.console.review import Reviews
from txguard.contract import names
from txguard.contract.errors import ConsoleConflictError
from txguard.contract.models import (
    LABEL_ADAPTER,
    CounterpartyFeatures,
    Decision,
    EnrichedTransaction,
    Outcome,
)
from txguard.enrichment.history.firestore import FirestoreHistoryStore
from txguard.features.wallet import WalletState, history_features
from txguard.local import emulators, topology

pytestmark = pytest.mark.emulators

NO_COUNTERPARTY = dict.fromkeys(CounterpartyFeatures.model_fields, 0.0)
PROJECT = "txguard-console-test"  # a project of its own on the shared session emulators


@pytest.fixture
def env(pubsub_emulator: emulators.Emulator, firestore_emulator: emulators.Emulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.env_value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    # Every topic, and the subscriptions that push nowhere (no function runs here): the console's.
    topology.ensure_topology(PROJECT, subscriptions=tuple(s for s in names.SUBSCRIPTIONS if s.push_to is None))


@pytest.fixture
def queue(env: None) -> Iterator[FirestoreReviewQueue]:
    q = FirestoreReviewQueue(project=PROJECT, collection=f"review_queue_{uuid.uuid4().hex[:8]}")
    yield q
    q.close()


def item_for(i: int, outcome: Outcome = Outcome.REVIEW, decided: datetime | None = None) -> ReviewItem:
    tx = make_tx(i, wallet=f"w-{uuid.uuid4().hex[:6]}")
    enriched = EnrichedTransaction.model_validate({**tx.model_dump(), "features": history_features(WalletState(), tx), "counterparty": NO_COUNTERPARTY})
    decision = Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=0.7, outcome=outcome,
                        reasons=["new device"], model_version="v3")
    return ReviewItem.of(decision, decided or datetime.now(UTC), enriched)


def test_firestore_queue_lists_newest_first_and_counts(queue: FirestoreReviewQueue) -> None:
    t0 = datetime.now(UTC)
    a, b, c = (item_for(1, decided=t0), item_for(2, Outcome.BLOCK, t0 + timedelta(seconds=1)),
               item_for(3, decided=t0 + timedelta(seconds=2)))
    assert [queue.add(x) for x in (a, b, c, a)] == [True, True, True, False]
    assert [i.transaction_id for i in queue.open_items(items.QUEUED_OUTCOMES)] == [
        c.transaction_id, b.transaction_id, a.transaction_id]
    assert [i.transaction_id for i in queue.open_items([Outcome.BLOCK])] == [b.transaction_id]
    assert queue.open_counts() == {"review": 2, "block": 1}
    stored = queue.get(a.transaction_id)
    assert stored.enriched == a.enriched and stored.decided_at == a.decided_at


def test_concurrent_claims_on_the_emulator_have_exactly_one_winner(queue: FirestoreReviewQueue) -> None:
    """Eight analysts, each with their own Firestore client, claim one item at the same moment."""
    item = item_for(4)
    queue.add(item)
    collection = queue.items.id

    def attempt(analyst: str) -> str:
        own = FirestoreReviewQueue(project=PROJECT, collection=collection)
        try:
            return Reviews(own, None, claim_ttl_s=120).claim(item.transaction_id, analyst).claimed_by  # type: ignore[arg-type]
        except ConsoleConflictError:
            return "conflict"
        finally:
            own.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, [f"analyst-{i}" for i in range(8)]))
    winners = [r for r in results if r != "conflict"]
    assert len(winners) == 1, results
    assert results.count("conflict") == 7
    assert queue.get(item.transaction_id).claimed_by == winners[0]


def test_an_expired_claim_can_be_taken(queue: FirestoreReviewQueue) -> None:
    item = item_for(5)
    queue.add(item)
    now = [datetime.now(UTC)]
    reviews = Reviews(queue, None, claim_ttl_s=30, clock=lambda: now[0])  # type: ignore[arg-type]
    reviews.claim(item.transaction_id, "alice")
    with pytest.raises(ConsoleConflictError):
        reviews.claim(item.transaction_id, "bob")
    now[0] += timedelta(seconds=31)
    assert reviews.claim(item.transaction_id, "bob").claimed_by == "bob"


def _pull_labels(subscription: str, want: int, timeout_s: float = 20.0) -> list:
    from google.cloud import pubsub_v1

    client = pubsub_v1.SubscriberClient()
    found = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            resp = client.pull(request={"subscription": subscription, "max_messages": 10}, timeout=5)
            for rm in resp.received_messages:
                found.append(rm.message)
            if resp.received_messages:
                client.acknowledge(request={"subscription": subscription,
                                            "ack_ids": [rm.ack_id for rm in resp.received_messages]})
    finally:
        client.close()
    return found


def test_a_verdict_arrives_on_labels(queue: FirestoreReviewQueue) -> None:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    watch = subscriber.subscription_path(PROJECT, f"labels-watch-{uuid.uuid4().hex[:6]}")
    subscriber.create_subscription(request={"name": watch,
                                            "topic": f"projects/{PROJECT}/topics/{names.ANALYST_LABELS_TOPIC}"})
    subscriber.close()
    item = item_for(6, Outcome.BLOCK)
    queue.add(item)
    publisher = PubSubLabelPublisher(PROJECT, timeout_s=20)
    reviews = Reviews(queue, publisher, claim_ttl_s=120)
    reviews.claim(item.transaction_id, "alice@example.com")
    done = reviews.review(item.transaction_id, "alice@example.com",
                          json.dumps({"verdict": "fraud", "note": "confirmed by the cardholder"}).encode())
    publisher.close()
    messages = _pull_labels(watch, 1)
    assert len(messages) == 1
    event = LABEL_ADAPTER.validate_json(messages[0].data)
    assert event.label_id == done["label"]["label_id"] and event.is_fraud is True
    assert event.transaction_id == item.transaction_id and event.counterparty_id == item.enriched.counterparty_id
    assert messages[0].attributes[names.ATTR_TRANSACTION_ID] == item.transaction_id
    assert messages[0].message_id == done["message_id"]
    assert queue.open_items(items.QUEUED_OUTCOMES) == [] and not queue.get(item.transaction_id).open


def test_the_console_subscriptions_feed_the_queue_and_the_live_view(env: None, tmp_path: Path) -> None:
    from google.cloud import pubsub_v1

    history = FirestoreHistoryStore(project=PROJECT)
    queue = FirestoreReviewQueue(project=PROJECT, collection=f"review_queue_{uuid.uuid4().hex[:8]}")
    stats = LiveStats()
    intake = Intake(queue, history, stats)
    wallet = f"w-{uuid.uuid4().hex[:6]}"
    txs = [make_tx(i, wallet=wallet, start=datetime.now(UTC) - timedelta(days=1)) for i in range(3)]
    outcomes = [Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK]
    publisher = pubsub_v1.PublisherClient()
    sent_at_ms = int(time.time() * 1000)
    for tx, outcome in zip(txs, outcomes, strict=True):
        history.enrich_once(tx, CounterpartyFeatures.model_validate(NO_COUNTERPARTY))  # as enrichment did
        decision = Decision(transaction_id=tx.transaction_id, wallet_id=wallet, score=0.5, outcome=outcome,
                            model_version="v1")
        history.record_decision(tx.transaction_id, decision)
        publisher.publish(publisher.topic_path(PROJECT, names.DECISIONS_TOPIC), decision.model_dump_json().encode(),
                          **{names.ATTR_OUTCOME: outcome.value, names.ATTR_PUBLISHED_AT: str(sent_at_ms)}).result(10)
    publisher.publish(publisher.topic_path(PROJECT, names.INVALID_TOPIC), b"{not json", reason="not JSON").result(10)
    publisher.publish(publisher.topic_path(PROJECT, names.DEAD_LETTER_TOPIC), b"{}").result(10)
    reader = SubscriptionReader(PROJECT, intake.handlers()).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (sum(stats.totals.values()) < 5):
            time.sleep(0.2)
    finally:
        reader.stop()
    assert stats.totals == {"allow": 1, "review": 1, "block": 1, "invalid": 1, "dead_lettered": 1}
    queued = queue.open_items(items.QUEUED_OUTCOMES)
    assert sorted(i.transaction_id for i in queued) == sorted(t.transaction_id for t in txs[1:])
    assert all(i.enriched is not None and i.enriched.counterparty_id for i in queued)
    snap = stats.snapshot()
    assert sum(snap["latency"]["counts"]) == 3 and reader.errors == {}
    queue.close()
    history.close()
