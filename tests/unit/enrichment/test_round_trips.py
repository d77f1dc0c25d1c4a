"""The sequential round trips of one delivery, counted, and the failures of the calls that now overlap.

In Google Cloud every store, scoring and Pub/Sub call of a delivery is a network round trip. A
recording wrapper over the real SQLite stores, the scorer and the outbox gives every call a fixed
latency (a round trip) and notes when it started and ended; a call's depth is one more than the
deepest call that had ended before it started. The deepest call is the number of sequential round
trips: what production latency multiplies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.enrich_fakes import FakeOutbox, FakeScorer, event_data, make_tx
from txguard.contract.errors import StoreUnavailableError
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.pipeline import DeliveryStatus, Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex

ROUND_TRIP_S = 0.1  # each call's latency: far above a thread hop, so overlapping calls overlap for sure


@dataclass
class Calls:
    """The calls of the deliveries under test: (name, start, end), in the order they ended."""

    done: list[tuple[str, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.done.clear()

    def depths(self) -> dict[str, int]:
        """Each call's depth on the critical path (1: nothing had ended before it started)."""
        depth: dict[int, int] = {}
        ordered = sorted(range(len(self.done)), key=lambda i: self.done[i][1])
        for i in ordered:
            start = self.done[i][1]
            before = [depth[j] for j in depth if self.done[j][2] <= start]
            depth[i] = 1 + max(before, default=0)
        return {self.done[i][0]: d for i, d in depth.items()}

    def sequential(self) -> int:
        return max(self.depths().values(), default=0)


class Recorded:
    """`target` with the named methods timed as round trips; everything else passed through."""

    def __init__(self, target: Any, calls: Calls, prefix: str, methods: tuple[str, ...]) -> None:
        self._target, self._calls = target, calls
        for name in methods:
            setattr(self, name, self._wrap(f"{prefix}.{name}", getattr(target, name)))

    def _wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            time.sleep(ROUND_TRIP_S)  # the request on its way; the store answers at once
            try:
                return fn(*args, **kwargs)
            finally:
                with self._calls.lock:
                    self._calls.done.append((label, start, time.monotonic()))

        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@pytest.fixture
def recorded(tmp_path: Path):
    calls = Calls()
    db = tmp_path / "h.sqlite3"
    store, counterparties, index = SqliteHistoryStore(db), SqliteCounterpartyStore(db), SqliteTransactionIndex(db)
    outbox = FakeOutbox()
    enricher = Enricher(
        Recorded(store, calls, "history", ("enrich_once", "record_decision")),
        Recorded(FakeScorer(), calls, "scoring", ("score",)),
        Recorded(outbox, calls, "pubsub", ("publish_decision",)),
        Recorded(counterparties, calls, "counterparty", ("read_before", "apply_transaction", "settle_transaction")),
        Recorded(index, calls, "index", ("record",)),
    )
    yield enricher, calls, store, counterparties, index, outbox
    store.close()
    counterparties.close()


def test_a_first_delivery_makes_four_sequential_round_trips(recorded) -> None:
    enricher, calls, store, counterparties, index, outbox = recorded
    tx = make_tx(1)
    assert enricher.handle(event_data(tx)).status is DeliveryStatus.DECIDED
    assert calls.depths() == {
        "counterparty.read_before": 1, "history.enrich_once": 1,  # the snapshot beside the transaction
        "scoring.score": 2, "counterparty.apply_transaction": 2, "index.record": 2,  # the update beside the score
        "history.record_decision": 3,  # the decision's record waits for both
        "pubsub.publish_decision": 4, "counterparty.settle_transaction": 4,  # the markers' drop beside the publish
    }
    assert calls.sequential() == 4
    # Every guarantee's state: recorded, applied once, indexed, settled, published once.
    record = store.processed(tx.transaction_id)
    assert record["decision"] is not None and record["counterparty"]["applied"] is True
    assert index.lookup(tx.transaction_id) is not None and counterparties.pending_markers() == 0
    assert len(outbox.decisions) == 1


def test_a_duplicate_makes_two(recorded) -> None:
    enricher, calls, *_ = recorded
    tx = make_tx(2)
    enricher.handle(event_data(tx, "a"))
    calls.clear()
    assert enricher.handle(event_data(tx, "b")).status is DeliveryStatus.DUPLICATE
    assert calls.depths() == {"counterparty.read_before": 1, "history.enrich_once": 1, "pubsub.publish_decision": 2}


def test_a_failed_snapshot_writes_nothing_and_the_redelivery_decides(recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot is awaited inside the history step: its error leaves no processed record and no
    wallet state behind, so the redelivery is a first delivery, applied once."""
    enricher, _, store, counterparties, index, outbox = recorded
    tx = make_tx(3)

    def down(t):  # noqa: ANN001, ANN202
        raise StoreUnavailableError("bigtable: unavailable")

    real = enricher.counterparties.read_before
    monkeypatch.setattr(enricher.counterparties, "read_before", down)
    with pytest.raises(StoreUnavailableError):
        enricher.handle(event_data(tx, "a"))
    assert store.processed(tx.transaction_id) is None
    assert len(store.wallet_state(tx.wallet_id).ts) == 0 and not outbox.decisions
    monkeypatch.setattr(enricher.counterparties, "read_before", real)
    assert enricher.handle(event_data(tx, "b")).status is DeliveryStatus.DECIDED
    assert len(store.wallet_state(tx.wallet_id).ts) == 1 and len(outbox.decisions) == 1


def test_a_duplicate_does_not_wait_on_a_failed_snapshot(recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    enricher, _, _, counterparties, _, outbox = recorded
    tx = make_tx(4)
    enricher.handle(event_data(tx, "a"))

    def down(t):  # noqa: ANN001, ANN202
        raise StoreUnavailableError("bigtable: unavailable")

    monkeypatch.setattr(enricher.counterparties, "read_before", down)
    assert enricher.handle(event_data(tx, "b")).status is DeliveryStatus.DUPLICATE
    assert outbox.decided()[0] == outbox.decided()[1]


def test_the_index_entry_failing_beside_a_landed_update_is_redone_and_counted_once(
        recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index entry and the counters are written at the same time: the counters land, the index
    write fails. The lease is handed back, nothing is decided, and the redelivery writes the index
    entry and leaves the counters as they are (markers)."""
    enricher, _, store, counterparties, index, outbox = recorded
    tx = make_tx(5, device_id=None)
    real = enricher.index.record

    def down(t):  # noqa: ANN001, ANN202
        raise StoreUnavailableError("bigtable: unavailable")

    monkeypatch.setattr(enricher.index, "record", down)
    with pytest.raises(StoreUnavailableError):
        enricher.handle(event_data(tx, "a"))
    assert index.lookup(tx.transaction_id) is None and not outbox.decisions
    assert store.processed(tx.transaction_id)["decision"] is None
    monkeypatch.setattr(enricher.index, "record", real)
    assert enricher.handle(event_data(tx, "b")).status is DeliveryStatus.DUPLICATE  # not held back by the lease
    assert index.lookup(tx.transaction_id) is not None
    probe = make_tx(5, timestamp=tx.timestamp + timedelta(days=1))
    assert counterparties.snapshot(probe).counterparty[int(tx.timestamp.timestamp() // 86400)]["dn"] == 1
    assert len(outbox.decisions) == 1 and counterparties.pending_markers() == 0
