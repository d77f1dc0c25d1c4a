"""Training/serving parity: the online path (the enrichment and label cores on the real SQLite stores)
equals the offline replay that training runs, exactly, on > 10k transactions with delayed labels:
the reference replay (`timeline.replay`) and the columnar twin datasets are built with.

Two worlds: the simulator's, and a peer-to-peer mobile-money world (devices shared by many wallets
within minutes, wallets paid by other wallets). The emulator version of this test (Firestore + Bigtable, through the functions' cores) is
tests/integration/test_counterparty_parity.py.
"""

from __future__ import annotations

import heapq
from pathlib import Path

from tests.enrich_fakes import FakeOutbox, FakeScorer, deliver_label, event_data, label_core, stored_row
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.enrichment.label_applier import LabelStatus
from txguard.enrichment.pipeline import DeliveryStatus, Enricher
from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex
from txguard.evaluation.p2p_data import P2PConfig, generate, online_inputs
from txguard.evaluation.p2p_fraud import FraudRates
from txguard.features.timeline import replay
from txguard.features.timeline_columns import TxColumns, replay_columns
from txguard.features.wallet import FEATURE_NAMES
from txguard.simulator.core import Simulation
from txguard.training.dataset import feature_rows

BUSY = FraudRates(takeover=1 / 500, scam=1 / 150, testing=1 / 2000)


def timeline(txs, labels):  # noqa: ANN001, ANN201
    """Transactions at their time and labels when they became known, merged in time order."""
    return heapq.merge(((tx.timestamp, 1, i, tx) for i, tx in enumerate(txs)),
                       ((lb.known_at, 0, i, lb) for i, lb in enumerate(labels)))


def online_rows(txs: list, labels: list, db: Path) -> list[list[float]]:
    """Each message through the function cores on the SQLite stores, in the order the events happen."""
    history, counterparties = SqliteHistoryStore(db), SqliteCounterpartyStore(db)
    enricher = Enricher(history, FakeScorer(), FakeOutbox(), counterparties, SqliteTransactionIndex(db))
    applier = label_core(db)  # every label checked against the index (the enrichment wrote it), no limits
    for n, (_, is_tx, _, event) in enumerate(timeline(txs, labels)):
        if is_tx:
            assert enricher.handle(event_data(event, message_id=str(n))).status is DeliveryStatus.DECIDED
        else:
            assert deliver_label(applier, event, message_id=str(n)) in (LabelStatus.APPLIED, LabelStatus.UNCHANGED)
    online = [stored_row(tx, history.processed(tx.transaction_id)) for tx in txs]
    history.close()
    counterparties.close()
    return online


def assert_offline_equals(online: list[list[float]], txs: list, labels: list) -> None:
    """The reference replay (per row) and its columnar twin, that datasets are built with, = online."""
    training = [list(row) for row, *_ in feature_rows(((tx, 0, float("nan"), "") for tx in txs), labels)]
    replayed = [list(row) for _, row in replay(txs, labels)]
    columns = replay_columns(TxColumns.of(txs), labels).tolist()
    assert len(online) == len(training) == len(replayed) == len(columns)
    mismatches = [i for i, (a, b) in enumerate(zip(online, training, strict=True)) if a != b]
    assert not mismatches, f"{len(mismatches)} rows differ, first at {mismatches[0]}"
    assert online == replayed
    assert online == columns


def test_online_path_equals_offline_replay_exactly(tmp_path: Path) -> None:
    sim = Simulation(days=10, wallets=500, seed=11)
    txs = [r.tx for r in sim]
    labels = [lb for lb in sim.label_events() if lb.known_at <= txs[-1].timestamp]
    assert len(txs) >= 10_000 and len(labels) >= 30
    online = online_rows(txs, labels, tmp_path / "online.sqlite3")
    assert_offline_equals(online, txs, labels)
    # The labels did reach the features (known frauds at counterparties and wallets).
    ix = {name: i for i, name in enumerate(FEATURE_NAMES)}
    assert sum(row[ix["cp_fraud_30d"]] > 0 for row in online) >= 10, "no counterparty saw a known fraud"
    assert sum(row[ix["wallet_fraud_30d"]] > 0 for row in online) >= 3, "no wallet saw its own known fraud"


def test_online_path_equals_offline_replay_on_a_peer_to_peer_world(tmp_path: Path) -> None:
    """Devices many wallets use within minutes (agents, credential testing), wallets paid by others
    (their inflow view), known frauds on the wallets mules are: the features of issue 32, exact."""
    txs, labels = online_inputs(generate(P2PConfig(users=400, days=20, seed=13, rates=BUSY)))
    assert len(txs) >= 8_000 and len(labels) >= 50
    online = online_rows(txs, labels, tmp_path / "p2p.sqlite3")
    assert_offline_equals(online, txs, labels)
    ix = {name: i for i, name in enumerate(FEATURE_NAMES)}
    for name in ("device_new_wallets_1h", "device_tx_1h", "is_new_device", "in_tx_24h", "in_new_payers_24h",
                 "in_fraud_30d", "cp_wallet_fraud_30d"):
        assert sum(row[ix[name]] > 0 for row in online) >= 10, name
