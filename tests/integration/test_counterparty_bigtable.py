"""The Bigtable counterparty store on the real emulator: the book's cells, exactly once under races.

Each test gets its own table on the session's emulator. What the emulator proves: AddToCell on an
aggregate family sums, CheckAndMutateRow applies a row's increments and marker atomically, the
ledger's version check serialises concurrent labels of one transaction.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.enrich_fakes import make_tx
from txguard.contract.models import LabelEvent
from txguard.enrichment.counterparty.bigtable import BigtableCounterpartyStore
from txguard.enrichment.counterparty.protocol import by_row
from txguard.features.counterparty import (
    CounterpartyBook,
    EntityKeys,
    marks,
    read_days,
    transaction_increments,
)
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
            assert store.apply_label(lb).outcome == apply_label(book, lb)
        t = tx.timestamp.timestamp()
        got, want = store.snapshot(tx), book.snapshot(tx)
        assert {d: dict(c) for d, c in got.counterparty.items()} == expected_view(want.counterparty, t)
        assert counterparty_values(got, tx.amount, t) == counterparty_values(want, tx.amount, t)
        state = wallets.setdefault(tx.wallet_id, WalletState())
        new_cp, new_device = marks(state, TxPoint.of(tx))
        apply(state, TxPoint.of(tx))
        book.add(transaction_increments(tx, new_cp, new_device))
        assert store.apply_transaction(tx, new_cp, new_device).added
        assert not store.apply_transaction(tx, new_cp, new_device).added  # redelivered before settled
        store.settle_transaction(tx)
        assert store.pending_markers(tx) == 0
    assert any(lb.kind.value == "reversal" for lb in labels) or len(labels) > 5
    for entity in {e for tx in txs for e in EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).all()}:
        assert store.entity_cells(entity) == book.cells.get(entity, {})


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
    assert sum(a.added for a in applied) == len(txs)
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
        outcomes = [applied.outcome for applied in pool.map(store.apply_label, labels)]
    # Whatever the arrival order, one transaction counts once (moved to its earliest label if a
    # later-known one arrived first: several outcomes may change the counters, the sum is 1).
    assert sum(o.changed for o in outcomes) >= 1 and not any(o.duplicate for o in outcomes)
    probe = make_tx(2, counterparty_id="shop", timestamp=tx.timestamp + timedelta(days=4))
    frauds = sum(c.get("df", 0) for c in store.snapshot(probe).counterparty.values())
    assert frauds == 1


def test_late_updates_are_reported_as_the_sqlite_store_reports_them(store: BigtableCounterpartyStore) -> None:
    """The same cases as tests/unit/enrichment/test_late_updates.py, on the emulator's read marks."""
    from txguard.enrichment.counterparty.lateness import EntityKind

    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

    def tx_at(minutes: float, wallet: str, counterparty: str = "shop") -> object:
        return make_tx(0, wallet=wallet, counterparty_id=counterparty, device_id="dev-1",
                       timestamp=t0 + timedelta(minutes=minutes), transaction_id=f"{wallet}-{minutes}")

    early = tx_at(2, "w-a")
    store.read_before(tx_at(4.9, "w-b"))  # its own slot: cannot include it
    store.snapshot(tx_at(60, "w-probe"))  # inspection records nothing
    assert store.apply_transaction(early, True, True).late == ()
    second = tx_at(3, "w-c")
    for minutes in (7, 7.5, 8, 12):  # several reads, two slots, one row: the latest slot counts
        store.read_before(tx_at(minutes, f"w-r{minutes}"))
    applied = store.apply_transaction(second, True, True)
    assert applied.added
    assert {(u.kind, u.entity_id, u.read_through) for u in applied.late} == {
        (kind, ident, (t0 + timedelta(minutes=15)).timestamp())
        for kind, ident in ((EntityKind.COUNTERPARTY, "shop"), (EntityKind.DEVICE, "dev-1"))}
    assert {u.visible_from for u in applied.late} == {(t0 + timedelta(minutes=5)).timestamp()}
    again = store.apply_transaction(second, True, True)
    assert not again.added and again.late == applied.late
    label = LabelEvent(label_id="cb", transaction_id=second.transaction_id, wallet_id=second.wallet_id,
                       counterparty_id="shop", device_id="dev-1", transaction_time=second.timestamp,
                       known_at=t0 + timedelta(minutes=20), kind="chargeback", is_fraud=True)
    assert store.apply_label(label).late == ()  # counts from 11:00: nobody read that far yet
    store.read_before(tx_at(65, "w-d", counterparty="elsewhere"))
    reversal = LabelEvent.model_validate({**label.model_dump(), "label_id": "rv", "kind": "reversal", "is_fraud": None,
                                          "reverses": "cb", "known_at": t0 + timedelta(minutes=25)})
    (late,) = store.apply_label(reversal).late  # withdrawn from 11:00 on: only the device was read past it
    assert (late.kind, late.label_id) == (EntityKind.DEVICE, "rv")
    store.read_before(tx_at(66, "w-c", counterparty="elsewhere"))
    again_cb = LabelEvent.model_validate({**label.model_dump(), "label_id": "cb2", "known_at": t0 + timedelta(minutes=30)})
    late = store.apply_label(again_cb).late
    assert {(u.kind, u.entity_id) for u in late} == {(EntityKind.DEVICE, "dev-1"), (EntityKind.WALLET, "w-c")}


def test_reads_of_one_slot_keep_one_version_per_row(store: BigtableCounterpartyStore) -> None:
    from google.cloud.bigtable.data import ReadRowsQuery, RowRange
    from google.cloud.bigtable.data import row_filters as rf

    from txguard.contract import names

    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    for i in range(40):  # 40 reads within two 5-minute slots, all of one shard's row at most 4 rows
        store.read_before(make_tx(i, wallet=f"w-{i}", counterparty_id="hot", device_id=None,
                                  timestamp=t0 + timedelta(seconds=15 * i)))
    key = EntityKeys.of("w-0", "hot", None).counterparty
    rows = store.table.read_rows(ReadRowsQuery(row_ranges=[RowRange(f"{key}#".encode(), f"{key}$".encode())],
                                               row_filter=rf.FamilyNameRegexFilter(names.COUNTERPARTY_READS_FAMILY)))
    versions = [len(list(row)) for row in rows]
    assert versions and all(v <= 2 for v in versions)  # at most one version per slot, whatever the reads


class _Together:
    """The store's table, but each call of `method` waits on a barrier until `parties` calls are under
    way at once: calls sent one after another break it (BrokenBarrierError after 5 s)."""

    def __init__(self, table: object, method: str, parties: int) -> None:
        self._table, self._method = table, method
        self.barrier = threading.Barrier(parties, timeout=5)
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._table, name)
        if name != self._method:
            return attr

        def together(*args: object, **kwargs: object) -> object:
            self.calls += 1
            self.barrier.wait()
            return attr(*args, **kwargs)

        return together


def test_the_snapshots_reads_and_an_updates_row_mutations_are_each_sent_at_once(
    store: BigtableCounterpartyStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, tx = make_tx(1, wallet="w-once"), make_tx(2, wallet="w-once")
    assert store.apply_transaction(first, True, True).added
    rows = [key for key, cells in by_row(transaction_increments(tx, True, True)).items() if cells]
    assert len(rows) == 2  # the counterparty's and the device's day rows (a payment to a merchant)
    table = store.table
    want = store.snapshot(tx)

    reads = _Together(table, "read_rows", 2)  # older days' totals and the last two days' counters
    monkeypatch.setattr(store, "table", reads)
    assert store.snapshot(tx) == want and reads.calls == 2

    mutations = _Together(table, "check_and_mutate_row", len(rows))
    monkeypatch.setattr(store, "table", mutations)
    assert store.apply_transaction(tx, True, True).added and mutations.calls == len(rows)
    mutations.barrier.reset()
    mutations.calls = 0
    assert not store.apply_transaction(tx, True, True).added and mutations.calls == len(rows)  # markers there
    monkeypatch.setattr(store, "table", table)
    book = CounterpartyBook()
    book.add(transaction_increments(first, True, True))
    book.add(transaction_increments(tx, True, True))
    for entity in EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).all():
        assert store.entity_cells(entity) == book.cells.get(entity, {})
