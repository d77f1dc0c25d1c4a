"""Claim with expiry, verdicts and their publication on the SQLite review queue (fixed clock)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.console_fixtures import MemoryLabelPublisher
from tests.enrich_fakes import make_tx
from txguard.console import items
from txguard.console.items import ReviewItem
from txguard.console.label_publisher import label_event, source_of
from txguard.console.queue_sqlite import SqliteReviewQueue
from txguard.console.review import Reviews
from txguard.contract.errors import (
    ConsoleConflictError,
    ConsoleInputError,
    ConsoleNotFoundError,
    ConsoleUnavailableError,
)
from txguard.contract.models import (
    CounterpartyFeatures,
    Decision,
    EnrichedTransaction,
    LabelKind,
    Outcome,
    Verdict,
)
from txguard.features.wallet import WalletState, history_features

NO_COUNTERPARTY = dict.fromkeys(CounterpartyFeatures.model_fields, 0.0)

T0 = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def item_for(i: int, outcome: Outcome = Outcome.REVIEW, decided: datetime = T0, details: bool = True) -> ReviewItem:
    tx = make_tx(i)
    enriched = EnrichedTransaction.model_validate(
        {**tx.model_dump(), "features": history_features(WalletState(), tx), "counterparty": NO_COUNTERPARTY}) if details else None
    decision = Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=0.6, outcome=outcome,
                        reasons=["6 new counterparties in 24h"], model_version="v2")
    return ReviewItem.of(decision, decided, enriched)


@pytest.fixture
def queue(tmp_path: Path) -> SqliteReviewQueue:
    q = SqliteReviewQueue(tmp_path / "q.sqlite3")
    yield q
    q.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def publisher() -> MemoryLabelPublisher:
    return MemoryLabelPublisher()


@pytest.fixture
def reviews(queue: SqliteReviewQueue, publisher: MemoryLabelPublisher, clock: Clock) -> Reviews:
    return Reviews(queue, publisher, claim_ttl_s=300, clock=clock)


def verdict(v: str = "fraud", note: str = "") -> bytes:
    return json.dumps({"verdict": v, "note": note}).encode()


def test_add_is_idempotent_and_lists_newest_first_by_outcome(queue: SqliteReviewQueue) -> None:
    a = item_for(1, decided=T0)
    b = item_for(2, Outcome.BLOCK, decided=T0 + timedelta(seconds=5))
    c = item_for(3, decided=T0 + timedelta(seconds=9))
    assert [queue.add(x) for x in (a, b, c)] == [True, True, True]
    assert queue.add(a) is False  # a redelivered decision
    assert [i.transaction_id for i in queue.open_items(items.QUEUED_OUTCOMES)] == [
        c.transaction_id, b.transaction_id, a.transaction_id]
    assert [i.transaction_id for i in queue.open_items([Outcome.BLOCK])] == [b.transaction_id]
    assert queue.open_counts() == {"review": 2, "block": 1}
    assert queue.get(a.transaction_id) == a


def test_a_claim_is_exclusive_until_it_expires(reviews: Reviews, queue: SqliteReviewQueue, clock: Clock) -> None:
    item = item_for(1)
    queue.add(item)
    claimed = reviews.claim(item.transaction_id, "alice")
    assert claimed.claimed_by == "alice" and claimed.claim_expires_at == T0 + timedelta(seconds=300)
    with pytest.raises(ConsoleConflictError, match="claimed by alice"):
        reviews.claim(item.transaction_id, "bob")
    assert reviews.claim(item.transaction_id, "alice").claimed_by == "alice"  # renewing is fine
    clock.now = T0 + timedelta(seconds=301)
    assert reviews.claim(item.transaction_id, "bob").claimed_by == "bob"  # alice's claim expired
    with pytest.raises(ConsoleConflictError):
        reviews.review(item.transaction_id, "alice", verdict())


def test_concurrent_claims_have_one_winner(tmp_path: Path) -> None:
    """Eight analysts, eight connections, one item: exactly one claim succeeds."""
    path = tmp_path / "q.sqlite3"
    item = item_for(1)
    SqliteReviewQueue(path).add(item)
    clock = Clock()

    def attempt(analyst: str) -> str:
        queue = SqliteReviewQueue(path)
        try:
            return Reviews(queue, MemoryLabelPublisher(), 300, clock=clock).claim(item.transaction_id, analyst).claimed_by
        except ConsoleConflictError:
            return "conflict"
        finally:
            queue.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, [f"analyst-{i}" for i in range(8)]))
    winners = [r for r in results if r != "conflict"]
    assert len(winners) == 1 and results.count("conflict") == 7
    assert SqliteReviewQueue(path).get(item.transaction_id).claimed_by == winners[0]


def test_a_verdict_publishes_one_analyst_label_and_leaves_the_queue(
        reviews: Reviews, queue: SqliteReviewQueue, publisher: MemoryLabelPublisher, clock: Clock) -> None:
    item = item_for(4)
    queue.add(item)
    with pytest.raises(ConsoleConflictError, match="claim it first"):
        reviews.review(item.transaction_id, "alice", verdict())
    reviews.claim(item.transaction_id, "alice@example.com")
    clock.now = T0 + timedelta(seconds=40)
    done = reviews.review(item.transaction_id, "alice@example.com", verdict("fraud", "  card testing  "))
    assert len(publisher.events) == 1
    event = publisher.events[0]
    tx = item.enriched
    assert (event.kind, event.is_fraud, event.transaction_id) == (LabelKind.ANALYST, True, tx.transaction_id)
    assert (event.wallet_id, event.counterparty_id, event.device_id) == (tx.wallet_id, tx.counterparty_id, tx.device_id)
    assert event.transaction_time == tx.timestamp and event.known_at == clock.now
    assert event.source == "analyst:alice.at.example.com" and event.note == "card testing"
    assert done["message_id"] == "m1" and done["label"]["label_id"] == event.label_id
    stored = queue.get(item.transaction_id)
    assert not stored.open and stored.verdict is Verdict.FRAUD and stored.label_message_id == "m1"
    assert queue.open_items(items.QUEUED_OUTCOMES) == []
    with pytest.raises(ConsoleConflictError, match="already labelled"):
        reviews.claim(item.transaction_id, "bob")


def test_a_failed_publish_keeps_the_verdict_and_a_retry_sends_the_same_label(
        reviews: Reviews, queue: SqliteReviewQueue, publisher: MemoryLabelPublisher) -> None:
    item = item_for(5)
    queue.add(item)
    reviews.claim(item.transaction_id, "alice")
    publisher.fail = True
    with pytest.raises(ConsoleUnavailableError, match="verdict is kept"):
        reviews.review(item.transaction_id, "alice", verdict("legitimate"))
    pending = queue.get(item.transaction_id)
    assert pending.open and pending.label_id and pending.verdict is Verdict.LEGITIMATE
    publisher.fail = False
    reviews.review(item.transaction_id, "alice", verdict("fraud"))  # the fixed verdict wins
    assert [e.label_id for e in publisher.events] == [pending.label_id]
    assert publisher.events[0].is_fraud is False


@pytest.mark.parametrize(("body", "field"), [
    (b'{"verdict": "maybe"}', "verdict"),
    (b'{"note": "no verdict"}', "verdict"),
    (json.dumps({"verdict": "fraud", "note": "x" * 501}).encode(), "note"),
    (b'{"verdict": "fraud", "extra": 1}', "extra"),
    (b"not json", None),
])
def test_a_bad_verdict_names_the_field_and_changes_nothing(
        reviews: Reviews, queue: SqliteReviewQueue, publisher: MemoryLabelPublisher, body: bytes, field: str | None) -> None:
    item = item_for(6)
    queue.add(item)
    claimed = reviews.claim(item.transaction_id, "alice")
    with pytest.raises(ConsoleInputError) as info:
        reviews.review(item.transaction_id, "alice", body)
    if field:
        assert field in [e["loc"][0] for e in info.value.errors]
    assert queue.get(item.transaction_id) == claimed and publisher.events == []


def test_unknown_items_and_items_without_details(reviews: Reviews, queue: SqliteReviewQueue) -> None:
    with pytest.raises(ConsoleNotFoundError):
        reviews.claim("nope", "alice")
    bare = item_for(7, details=False)
    queue.add(bare)
    reviews.claim(bare.transaction_id, "alice")
    with pytest.raises(ConsoleConflictError, match="no longer in the history"):
        reviews.review(bare.transaction_id, "alice", verdict())


def test_release_frees_the_item_for_others(reviews: Reviews, queue: SqliteReviewQueue) -> None:
    item = item_for(8)
    queue.add(item)
    reviews.claim(item.transaction_id, "alice")
    with pytest.raises(ConsoleConflictError):
        reviews.release(item.transaction_id, "bob")
    assert reviews.release(item.transaction_id, "alice").claimed_by is None
    assert reviews.claim(item.transaction_id, "bob").claimed_by == "bob"


def test_label_known_at_is_never_before_the_transaction() -> None:
    future = make_tx(0, start=datetime.now(UTC) + timedelta(minutes=5))  # within the allowed clock skew
    enriched = EnrichedTransaction.model_validate(
        {**future.model_dump(), "features": history_features(WalletState(), future), "counterparty": NO_COUNTERPARTY})
    decision = Decision(transaction_id=future.transaction_id, wallet_id=future.wallet_id, score=0.9,
                        outcome=Outcome.BLOCK, model_version="v1")
    item = items.labelled(items.claimed(ReviewItem.of(decision, T0, enriched), "a", datetime.now(UTC), 60),
                          "a", Verdict.FRAUD, "", datetime.now(UTC))
    assert label_event(item).known_at == future.timestamp
    assert source_of("x" * 100).startswith("analyst:") and len(source_of("x" * 100)) == 64
