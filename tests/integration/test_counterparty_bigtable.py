"""The Bigtable counterparty store on the real emulator: the book's cells, exactly once under races.

Each test gets its own table on the session's emulator. What the emulator proves: AddToCell on an
aggregate family sums, CheckAndMutateRow applies a row's increments and marker atomically, the
ledger's version check serialises concurrent labels of one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.enrich_fakes import make_tx
from txguard.contract.models import LabelEvent
from txguard.enrichment.counterparty.bigtable import BigtableCounterpartyStore
from txguard.features.counterparty import CounterpartyBook, marks, read_days, transaction_increments
from txguard.features.counterparty_windows import counterparty_values
from txguard.features.label_ledger import apply_label
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.local import emulators
from txguard.local.bigtable import drop_counterparty_table, ensure_counterparty_table
from txguard.simulator.core import Simulation

pytestmark = pytest.mark.emulators
PROJECT = "txguard-test"


@pytest.fixture
def store(bigtable_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[BigtableCounterpartyStore]:
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", bigtable_emulator.env_value)
    table = f"cp-{uuid.uuid4().hex[:8]}"
    ensure_counterparty_table(PROJECT, table=table)
    s = BigtableCounterpartyStore(project=PROJECT, table=table, shards=4)
    yield s
    s.close()
    drop_counterparty_table(PROJECT, table=table)


def test_snapshots_equal_the_book_and_updates_apply_once(store: BigtableCounterpartyStore) -> None:
    sim = Simulation(days=8, wallets=60, seed=1)
    txs = [r.tx for r in sim]
    labels = list(sim.label_events())
    book, wallets = CounterpartyBook(), {}
    pending = sorted(labels, key=lambda lb: lb.known_at)
    for tx in txs:
        while pending and pending[0].known_at <= tx.timestamp:
            lb = pending.pop(0)
            assert store.apply_label(lb) == apply_label(book, lb)
        t = tx.timestamp.timestamp()
        got, want = store.snapshot(tx), book.snapshot(tx)
        assert {d: dict(c) for d, c in got.counterparty.items()} == expected_view(want.counterparty, t)
        assert counterparty_values(got, tx.amount, t) == counterparty_values(want, tx.amount, t)
        state = wallets.setdefault(tx.wallet_id, WalletState())
        new_cp, new_device = marks(state, TxPoint.of(tx))
        apply(state, TxPoint.of(tx))
        book.add(transaction_increments(tx, new_cp, new_device))
        assert store.apply_transaction(tx, new_cp, new_device)
        assert not store.apply_transaction(tx, new_cp, new_device)  # redelivered before settled
        store.settle_transaction(tx)
        assert store.pending_markers(tx) == 0
    assert any(lb.kind.value == "reversal" for lb in labels) or len(labels) > 5


def expected_view(view, t: float) -> dict:  # noqa: ANN001
    """What the store reads of the book's cells: day totals (and wallet slots) of older days, all of the last two."""
    days = read_days(t)
    return {d: {col: v for col, v in c.items() if d >= days.stop - 2 or col[0] in "dg"}
            for d, c in view.items() if d in days}


def test_a_hot_counterparty_counts_every_transaction_once_under_concurrent_duplicates(
    store: BigtableCounterpartyStore,
) -> None:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    txs = [make_tx(i, wallet=f"w-{i % 50}", start=start, counterparty_id="hot-shop",
                   timestamp=start + timedelta(seconds=i)) for i in range(400)]
    deliveries = txs + txs[::3]  # a third delivered twice, concurrently
    with ThreadPoolExecutor(max_workers=16) as pool:
        applied = list(pool.map(lambda tx: store.apply_transaction(tx, True, False), deliveries))
    assert sum(applied) == len(txs)
    probe = make_tx(999, start=start, counterparty_id="hot-shop", timestamp=start + timedelta(days=1))
    snap = store.snapshot(probe)
    day = int(start.timestamp() // 86400)
    assert snap.counterparty[day]["dn"] == len(txs)
    assert snap.counterparty[day]["dw"] == len(txs)
    assert snap.counterparty[day]["da"] == sum(round(tx.amount * 100) for tx in txs)


def test_concurrent_labels_of_one_transaction_are_serialised_by_the_ledger(store: BigtableCounterpartyStore) -> None:
    tx = make_tx(1, counterparty_id="shop")
    base = {"transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id, "counterparty_id": tx.counterparty_id,
            "device_id": tx.device_id, "transaction_time": tx.timestamp}
    labels = [LabelEvent(**base, label_id=f"cb-{i}", kind="chargeback", is_fraud=True,
                         known_at=tx.timestamp + timedelta(days=2, minutes=i)) for i in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(store.apply_label, labels))
    # Whatever the arrival order, one transaction counts once (moved to its earliest label if a
    # later-known one arrived first: several outcomes may change the counters, the sum is 1).
    assert sum(o.changed for o in outcomes) >= 1 and not any(o.duplicate for o in outcomes)
    probe = make_tx(2, counterparty_id="shop", timestamp=tx.timestamp + timedelta(days=4))
    frauds = sum(c.get("df", 0) for c in store.snapshot(probe).counterparty.values())
    assert frauds == 1
