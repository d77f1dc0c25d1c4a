"""The transaction index and the label review state on the Bigtable emulator, against their SQLite twins.

Both twins get the same operations and must give the same answers: every lookup (known, unknown, no
device), every disagreement of a label with its record, every windowed count (concurrent increments
included) and the held labels. The label ledger's cells are stamped with the time of their write (a
cell stamped 0 would be older than the family's garbage-collection age at once).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from tests.enrich_fakes import make_tx
from txguard.contract import names
from txguard.contract.models import LabelEvent
from txguard.enrichment.counterparty.bigtable import LEDGER, BigtableCounterpartyStore, ledger_key
from txguard.enrichment.label_review import HeldLabel
from txguard.enrichment.label_review.bigtable import BigtableLabelReview
from txguard.enrichment.label_review.sqlite import SqliteLabelReview
from txguard.enrichment.transaction_index import IndexedTransaction
from txguard.enrichment.transaction_index.bigtable import BigtableTransactionIndex
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.local import emulators
from txguard.local.bigtable import drop_tables, ensure_tables

pytestmark = pytest.mark.emulators


@pytest.fixture
def project(bigtable_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", bigtable_emulator.env_value)
    name = f"txg-{uuid.uuid4().hex[:8]}"
    ensure_tables(name)
    yield name
    drop_tables(name)


def transactions() -> list:
    txs = [make_tx(i, wallet=f"w-{i % 5}") for i in range(40)]
    txs += [make_tx(i, wallet="w-nodev", device_id=None) for i in range(40, 45)]
    txs += [make_tx(45, wallet="w-x", transaction_id=f"{'a' * 64}")]  # the longest id the contract allows
    return txs


def test_the_index_twins_answer_every_lookup_the_same(project: str, tmp_path: Path) -> None:
    txs = transactions()
    big, small = BigtableTransactionIndex(project=project), SqliteTransactionIndex(tmp_path / "i.sqlite3")
    with ThreadPoolExecutor(8) as pool:  # as enrichment instances write it, redeliveries included
        list(pool.map(big.record, txs + txs[::4]))
    for tx in txs + txs[::4]:
        small.record(tx)
    for tx in txs:
        got = big.lookup(tx.transaction_id)
        assert got == small.lookup(tx.transaction_id) == IndexedTransaction.of(tx)
        assert len(got.encode()) == 33 and (got.device is None) == (tx.device_id is None)
    assert big.lookup("never-seen") is None and small.lookup("never-seen") is None
    # The same label, the same verdict from both: a label made to disagree in each field in turn.
    tx = txs[3]
    base = {"label_id": "cb", "transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id,
            "counterparty_id": tx.counterparty_id, "device_id": tx.device_id, "transaction_time": tx.timestamp,
            "known_at": tx.timestamp + timedelta(days=3), "kind": "chargeback", "is_fraud": True}
    for over, fields in (({}, []), ({"counterparty_id": "m00042"}, ["counterparty_id"]),
                         ({"wallet_id": "w-9"}, ["wallet_id"]), ({"device_id": None}, ["device_id"]),
                         ({"transaction_time": tx.timestamp - timedelta(seconds=1)}, ["transaction_time"])):
        label = LabelEvent(**{**base, **over})
        assert big.lookup(tx.transaction_id).disagreements(label) == fields
        assert small.lookup(tx.transaction_id).disagreements(label) == fields
    big.close()
    small.close()


def test_the_review_twins_count_and_hold_the_same(project: str, tmp_path: Path) -> None:
    big, small = BigtableLabelReview(project=project), SqliteLabelReview(tmp_path / "r.sqlite3")
    minute = int(time.time() // 60)
    plan = [("s:chargeback:a", minute - 70), ("s:chargeback:a", minute - 30), ("s:chargeback:a", minute - 1),
            ("s:chargeback:a", minute), ("s:chargeback:b", minute), ("s:chargeback:a", minute)]
    for key, at in plan:
        assert big.count(key, at, 60) == small.count(key, at, 60), (key, at)
    assert small.count("s:chargeback:a", minute, 60) == 5  # minute-70 is out of the window
    # Concurrent labels of one key in one minute: each sees its own total, none lost.
    with ThreadPoolExecutor(12) as pool:
        totals = sorted(pool.map(lambda _: big.count("c:hot", minute, 60), range(30)))
    assert totals == list(range(1, 31))
    tx = make_tx(1)
    label = LabelEvent(label_id="an-1", transaction_id=tx.transaction_id, wallet_id=tx.wallet_id,
                       counterparty_id=tx.counterparty_id, transaction_time=tx.timestamp,
                       known_at=tx.timestamp + timedelta(hours=2), kind="analyst", is_fraud=True, source="analyst:m")
    held = [HeldLabel(label, "analyst", "over the limit", 1000.0),
            HeldLabel(label.model_copy(update={"label_id": "an-2"}), "analyst", "over the limit", 1001.0)]
    for store in (big, small):
        for h in held + held[:1]:  # held twice: kept once
            store.hold(h)
        assert store.held() == held
        store.drop("an-1")
        assert store.held() == held[1:]
    big.close()
    small.close()


def test_ledger_cells_are_stamped_with_their_write(project: str) -> None:
    store = BigtableCounterpartyStore(project=project)
    tx = make_tx(1)
    base = {"transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id, "counterparty_id": tx.counterparty_id,
            "device_id": tx.device_id, "transaction_time": tx.timestamp, "kind": "chargeback", "is_fraud": True}
    before = time.time() * 1e6
    for i in range(3):
        store.apply_label(LabelEvent(**base, label_id=f"cb-{i}", known_at=tx.timestamp + timedelta(days=i + 1)))
    row = store.table.read_row(ledger_key(tx.transaction_id))
    stamps = [c.timestamp_micros for c in row if c.family == LEDGER]
    assert stamps and min(stamps) >= before - 5e6  # never 0: the family's max age counts from the write
    assert store.knows_label(LabelEvent(**base, label_id="cb-2", known_at=tx.timestamp + timedelta(days=3)))
    assert not store.knows_label(LabelEvent(**base, label_id="cb-9", known_at=tx.timestamp + timedelta(days=3)))
    assert names.LABEL_LEDGER_RETENTION_DAYS >= names.TRANSACTION_INDEX_RETENTION_DAYS
    store.close()
