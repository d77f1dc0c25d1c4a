"""SQLite counterparty store: the in-memory book's cells, exactly once per transaction and label."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from txguard.contract.settings import EnrichSettings
from txguard.enrichment.counterparty import create_counterparty_store
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.features.counterparty import (
    CounterpartyBook,
    EntityKeys,
    marks,
    read_days,
    transaction_increments,
)
from txguard.features.label_ledger import apply_label
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.simulator.core import Simulation


def test_same_cells_as_the_book_and_exactly_once(tmp_path: Path) -> None:
    sim = Simulation(days=6, wallets=120, seed=4)
    txs = [r.tx for r in sim]
    labels = list(sim.label_events())
    store, book = SqliteCounterpartyStore(tmp_path / "cp.sqlite3"), CounterpartyBook()
    wallets: dict[str, WalletState] = {}
    for tx in txs:
        state = wallets.setdefault(tx.wallet_id, WalletState())
        new_cp, new_device = marks(state, TxPoint.of(tx))
        apply(state, TxPoint.of(tx))
        book.add(transaction_increments(tx, new_cp, new_device))
        assert store.apply_transaction(tx, new_cp, new_device).added
    # Redeliveries before their markers are settled change nothing (eight threads racing).
    with ThreadPoolExecutor(max_workers=8) as pool:
        again = list(pool.map(lambda tx: store.apply_transaction(tx, True, True), txs[:300]))
    assert not any(a.added for a in again)
    for lb in labels:
        assert store.apply_label(lb).outcome == apply_label(book, lb)
        assert store.apply_label(lb).outcome.duplicate
    for tx in txs[:: max(1, len(txs) // 400)]:
        snap = store.snapshot(tx)
        want = book.snapshot(tx)
        days = read_days(tx.timestamp.timestamp())
        for got_view, want_view in ((snap.counterparty, want.counterparty), (snap.device, want.device),
                                    (snap.wallet, want.wallet)):
            assert {d: dict(c) for d, c in got_view.items()} == {d: dict(c) for d, c in want_view.items() if d in days}
    assert store.pending_markers() == len(txs)
    for tx in txs:
        store.settle_transaction(tx)
    assert store.pending_markers() == 0
    for entity in {e for tx in txs for e in EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).all()}:
        assert store.entity_cells(entity) == book.cells.get(entity, {})
    store.close()


def test_factory_builds_sqlite_from_settings(tmp_path: Path) -> None:
    store = create_counterparty_store(EnrichSettings(SQLITE_PATH=str(tmp_path / "x" / "h.sqlite3")))
    assert isinstance(store, SqliteCounterpartyStore)
    store.close()
