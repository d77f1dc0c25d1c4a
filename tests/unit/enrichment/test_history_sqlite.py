"""SQLite history store: idempotency, TTL purge, and concurrent deliveries of one wallet."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.enrich_fakes import make_tx, unknown_counterparty
from txguard.contract.errors import CounterpartyInFlightError
from txguard.contract.models import Decision, Outcome
from txguard.contract.settings import EnrichSettings
from txguard.enrichment.history import create_store
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.features.wallet import TxPoint, WalletState, apply


def sequential_state(txs) -> WalletState:
    state = WalletState()
    for tx in sorted(txs, key=lambda t: t.timestamp):
        apply(state, TxPoint.of(tx))
    return state


def test_concurrent_deliveries_of_one_wallet_equal_sequential_replay(tmp_path: Path) -> None:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    txs = [make_tx(i) for i in range(40)]
    deliveries = txs + random.Random(7).sample(txs, 15)  # with redeliveries mixed in
    random.Random(3).shuffle(deliveries)

    def deliver(tx):  # noqa: ANN001, ANN202
        try:
            return store.enrich_once(tx, unknown_counterparty(tx))
        except CounterpartyInFlightError:  # a duplicate while the first holds the counterparty lease
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(deliver, deliveries))
    done = [r for r in results if r is not None]
    assert sum(not r.duplicate for r in done) == len(txs)
    assert sum(r.counterparty_due for r in done) == len(txs)  # one delivery per id holds the update
    assert store.wallet_state("w-1") == sequential_state(txs)
    store.close()


def test_state_survives_reopen_and_decision_is_reused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = SqliteHistoryStore(path)
    tx = make_tx(1)
    first = store.enrich_once(tx, unknown_counterparty(tx))
    decision = Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=0.1,
                        outcome=Outcome.ALLOW, model_version="m1")
    store.record_decision(tx.transaction_id, decision)
    store.close()
    again = SqliteHistoryStore(path).enrich_once(tx, unknown_counterparty(tx))
    assert again.duplicate and again.decision == decision
    assert again.enriched.features == first.enriched.features


def test_purge_expired(tmp_path: Path) -> None:
    store = SqliteHistoryStore(tmp_path / "h.sqlite3", ttl_days=1)
    store.enrich_once(make_tx(1), unknown_counterparty(make_tx(1)))
    assert store.purge_expired(datetime.now(UTC)) == 0
    assert store.purge_expired(datetime.now(UTC) + timedelta(days=2)) == 1
    assert store.processed(make_tx(1).transaction_id) is None
    # The wallet state is kept: only the idempotency record expires.
    assert len(store.wallet_state("w-1").ts) == 1


def test_factory_builds_sqlite_from_settings(tmp_path: Path) -> None:
    settings = EnrichSettings(HISTORY_STORE="sqlite", SQLITE_PATH=str(tmp_path / "x" / "h.sqlite3"))
    store = create_store(settings)
    assert isinstance(store, SqliteHistoryStore)
    assert (tmp_path / "x" / "h.sqlite3").exists()
    store.close()


def test_first_recorded_decision_wins(tmp_path: Path) -> None:
    """Two concurrent deliveries may both score; every copy published must be the first decision."""
    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    tx = make_tx(1)
    store.enrich_once(tx, unknown_counterparty(tx))
    first, second = (Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=s,
                              outcome=Outcome.ALLOW, model_version="m1", timings={"t_ms": s})
                     for s in (0.1, 0.2))
    assert store.record_decision(tx.transaction_id, first) == first
    assert store.record_decision(tx.transaction_id, second) == first
    assert store.enrich_once(tx, unknown_counterparty(tx)).decision == first
    store.close()


def test_a_file_from_before_the_late_flag_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE wallets (wallet_id TEXT PRIMARY KEY, state TEXT NOT NULL);
        CREATE TABLE processed (transaction_id TEXT PRIMARY KEY, wallet_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
                                features TEXT NOT NULL, decision TEXT, expires_at TEXT NOT NULL);
    """)
    conn.close()
    store = SqliteHistoryStore(path)
    later, early = make_tx(2), make_tx(1)
    assert store.enrich_once(later, unknown_counterparty(later)).late is False
    assert store.enrich_once(early, unknown_counterparty(early)).late is True
    store.counterparty_applied(early.transaction_id)  # the first delivery is done with its update
    assert store.enrich_once(early, unknown_counterparty(early)).late is True  # the duplicate path reads it back
    assert store.processed(early.transaction_id)["late"] is True
    store.close()


def test_a_first_delivery_enriches_as_its_record_reads_back(tmp_path: Path) -> None:
    """`fresh` builds the first delivery's Enrichment from the step itself, not from its record read
    back: the two must be equal, field for field and in the JSON sent to scoring."""
    from txguard.enrichment.history.record import reuse

    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    for i in range(30):
        tx = make_tx(i)
        first = store.enrich_once(tx, unknown_counterparty(tx))
        again = reuse(tx, store.processed(tx.transaction_id))
        assert first.enriched == again.enriched
        assert first.enriched.model_dump_json() == again.enriched.model_dump_json()
        assert (first.new_for_cp, first.new_for_device, first.late) == (again.new_for_cp, again.new_for_device,
                                                                         again.late)
        assert first.counterparty_due and not first.duplicate and again.duplicate and not again.counterparty_due


def test_processed_at_finds_a_decision_by_every_entity_its_features_read(tmp_path: Path) -> None:
    """A late update at the wallet's inflow or at the payee's labels lists the decisions that read
    them (`txguard late-updates decisions`), not only those at its counterparty, device and wallet."""
    from txguard.features.counterparty import Entity, entity_key

    store = SqliteHistoryStore(tmp_path / "h.sqlite3")
    tx = make_tx(1, wallet="alice", counterparty_id="bob")
    store.enrich_once(tx, unknown_counterparty(tx))
    t = tx.timestamp.timestamp()
    for entity in (entity_key(Entity.COUNTERPARTY, "bob"), entity_key(Entity.WALLET, "alice"),
                   entity_key(Entity.COUNTERPARTY, "alice"), entity_key(Entity.WALLET, "bob")):
        assert [r["transaction_id"] for r in store.processed_at(entity, t - 1, t + 1)] == [tx.transaction_id]
    assert store.processed_at(entity_key(Entity.WALLET, "carol"), t - 1, t + 1) == []
    store.close()
