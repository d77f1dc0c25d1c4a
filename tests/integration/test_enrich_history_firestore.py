"""Firestore history store against the real Firestore emulator: idempotency and contention."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import PROJECT
from tests.enrich_fakes import make_tx, unknown_counterparty
from txguard.contract.errors import CounterpartyInFlightError, StoreUnavailableError
from txguard.contract.models import Decision, Outcome
from txguard.contract.settings import EnrichSettings
from txguard.enrichment.history import create_store
from txguard.enrichment.history.firestore import FirestoreHistoryStore
from txguard.features.wallet import TxPoint, WalletState, apply
from txguard.local import emulators

pytestmark = pytest.mark.emulators


@pytest.fixture
def firestore_env(firestore_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.env_value)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    return firestore_emulator.env_value


def _store(max_attempts: int) -> FirestoreHistoryStore:
    return FirestoreHistoryStore(project=PROJECT, max_attempts=max_attempts)


@pytest.fixture
def store(firestore_env: str) -> Iterator[FirestoreHistoryStore]:
    s = _store(EnrichSettings().firestore_max_attempts)
    yield s
    s.close()


def sequential_state(txs) -> WalletState:
    state = WalletState()
    for tx in sorted(txs, key=lambda t: t.timestamp):
        apply(state, TxPoint.of(tx))
    return state


def test_factory_builds_firestore(firestore_env: str) -> None:
    store = create_store(EnrichSettings(HISTORY_STORE="firestore", GOOGLE_CLOUD_PROJECT=PROJECT))
    assert isinstance(store, FirestoreHistoryStore)
    assert store.max_attempts == EnrichSettings().firestore_max_attempts
    store.close()


def test_enrich_once_is_idempotent_and_keeps_the_decision(store: FirestoreHistoryStore) -> None:
    wallet = f"w-{uuid.uuid4().hex[:8]}"
    tx = make_tx(1, wallet=wallet)
    first = store.enrich_once(tx, unknown_counterparty(tx))
    assert not first.duplicate and first.decision is None
    decision = Decision(transaction_id=tx.transaction_id, wallet_id=wallet, score=0.2,
                        outcome=Outcome.ALLOW, model_version="m1")
    assert first.counterparty_due  # the first delivery holds the counterparty update
    assert store.record_decision(tx.transaction_id, decision) == decision
    assert store.processed(tx.transaction_id)["counterparty"]["applied"] is True
    later = decision.model_copy(update={"score": 0.3})
    assert store.record_decision(tx.transaction_id, later) == decision  # the first decision wins
    again = store.enrich_once(tx, unknown_counterparty(tx))
    assert again.duplicate and again.decision == decision and not again.counterparty_due
    assert again.enriched.features == first.enriched.features
    assert store.wallet_state(wallet) == sequential_state([tx])
    record = store.processed(tx.transaction_id)
    assert record["expires_at"] > first.enriched.timestamp  # a Firestore timestamp, for the TTL policy


def test_the_counterparty_features_are_awaited_inside_the_transaction(store: FirestoreHistoryStore) -> None:
    """The pipeline passes a call that waits for the snapshot still being read: the store calls it after
    its reads, only for a first delivery; its error aborts the transaction with nothing written."""
    wallet = f"w-{uuid.uuid4().hex[:8]}"
    tx = make_tx(1, wallet=wallet)

    def down():  # noqa: ANN202
        raise StoreUnavailableError("bigtable: unavailable")

    with pytest.raises(StoreUnavailableError, match="bigtable"):
        store.enrich_once(tx, down)
    assert store.processed(tx.transaction_id) is None and store.wallet_state(wallet) == WalletState()
    asked: list[str] = []

    def snapshot():  # noqa: ANN202
        asked.append(tx.transaction_id)
        return unknown_counterparty(tx)

    first = store.enrich_once(tx, snapshot)
    assert not first.duplicate and asked == [tx.transaction_id]
    assert store.processed(tx.transaction_id)["counterparty"]["features"] == unknown_counterparty(tx).model_dump()
    store.record_decision(tx.transaction_id, Decision(transaction_id=tx.transaction_id, wallet_id=wallet,
                                                      score=0.1, outcome=Outcome.ALLOW, model_version="m1"))
    assert store.enrich_once(tx, down).duplicate  # a duplicate never asks
    assert store.wallet_state(wallet) == sequential_state([tx])


def _record_rpcs(store: FirestoreHistoryStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Spy on the store client's gapic calls: (method, documents asked or writes sent), a read
    outside a transaction marked so. Each BatchGetDocuments answer is handed back in reverse order
    (get_all promises no order)."""
    api = store.client._firestore_api
    calls: list[tuple[str, int]] = []

    def spy(name: str, size):  # noqa: ANN001
        real = getattr(api, name)

        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            request = kwargs.get("request") or {}
            read_alone = name == "batch_get_documents" and not request.get("transaction")
            calls.append((f"{name} (no transaction)" if read_alone else name, size(request)))
            answer = real(*args, **kwargs)
            return iter(list(answer)[::-1]) if name == "batch_get_documents" else answer

        monkeypatch.setattr(api, name, call)

    spy("begin_transaction", lambda _request: 0)
    spy("batch_get_documents", lambda request: len(request["documents"]))
    spy("commit", lambda request: len(request["writes"]))
    spy("rollback", lambda _request: 0)
    return calls


def test_the_history_transaction_reads_both_documents_in_one_call(
        store: FirestoreHistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """BeginTransaction, ONE BatchGetDocuments (record and wallet), Commit per first delivery, the
    same with nothing written for a duplicate; the answers, reversed, are matched by path."""
    wallet = f"w-{uuid.uuid4().hex[:8]}"
    first, second = make_tx(1, wallet=wallet), make_tx(2, wallet=wallet)
    calls = _record_rpcs(store, monkeypatch)
    assert not store.enrich_once(first, unknown_counterparty(first)).duplicate
    assert calls == [("begin_transaction", 0), ("batch_get_documents", 2), ("commit", 2)]
    calls.clear()
    # The wallet document exists now: read by position, the reversed answers would pass it off as the record.
    fresh_one = store.enrich_once(second, unknown_counterparty(second))
    assert not fresh_one.duplicate and fresh_one.counterparty_due
    assert calls == [("begin_transaction", 0), ("batch_get_documents", 2), ("commit", 2)]
    decision = Decision(transaction_id=second.transaction_id, wallet_id=wallet, score=0.1,
                        outcome=Outcome.ALLOW, model_version="m1")
    store.record_decision(second.transaction_id, decision)
    calls.clear()
    again = store.enrich_once(second, unknown_counterparty(second))
    assert again.duplicate and again.decision == decision and not again.counterparty_due
    assert again.enriched.features == fresh_one.enriched.features
    assert calls == [("begin_transaction", 0), ("batch_get_documents", 2), ("commit", 0)]
    assert store.wallet_state(wallet) == sequential_state([first, second])


def test_concurrent_deliveries_in_one_instance_equal_sequential_replay(store: FirestoreHistoryStore) -> None:
    """Ten threads of one instance (Cloud Run concurrency) on one wallet, with redeliveries."""
    wallet = f"hot-{uuid.uuid4().hex[:8]}"
    txs = [make_tx(i, wallet=wallet) for i in range(30)]
    deliveries = txs + random.Random(1).sample(txs, 10)
    random.Random(2).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda tx: _deliver(store, tx), deliveries))
    results = [r for r in results if r is not None]
    assert sum(not r.duplicate for r in results) == len(txs)
    assert sum(r.counterparty_due for r in results) == len(txs)
    assert store.wallet_state(wallet) == sequential_state(txs)


def _deliver(store: FirestoreHistoryStore, tx):  # noqa: ANN001, ANN202
    """One delivery; None when a duplicate finds the counterparty update leased (it would be retried)."""
    try:
        return store.enrich_once(tx, unknown_counterparty(tx))
    except CounterpartyInFlightError:
        return None


def _across_instances(stores: list[FirestoreHistoryStore], txs, swallow: bool) -> list:
    """Deliver `txs` round-robin over `stores` (separate clients and locks: separate instances)."""

    def deliver(item):
        i, tx = item
        try:
            return _deliver(stores[i % len(stores)], tx)
        except StoreUnavailableError:
            if not swallow:
                raise
            return None

    with ThreadPoolExecutor(max_workers=2 * len(stores)) as pool:
        return list(pool.map(deliver, enumerate(txs)))


def test_contention_across_instances_with_configured_attempts(firestore_env: str) -> None:
    """Two instances racing on one wallet deadlock on its document until one is aborted; the
    configured attempts (with backoff) get every delivery through, each applied once."""
    wallet = f"hot2-{uuid.uuid4().hex[:8]}"
    txs = [make_tx(i, wallet=wallet) for i in range(8)]
    stores = [_store(EnrichSettings().firestore_max_attempts) for _ in range(2)]
    results = _across_instances(stores, txs + txs[:2], swallow=False)
    assert sum(not r.duplicate for r in results if r is not None) == len(txs)
    assert stores[0].wallet_state(wallet) == sequential_state(txs)
    for s in stores:
        s.close()


def test_one_attempt_fails_under_contention_as_retryable(firestore_env: str) -> None:
    """With max_attempts=1 a burst across instances cannot all commit: the losers raise
    StoreUnavailableError (retryable) and are never half-applied; redelivery completes the state."""
    wallet = f"hot1-{uuid.uuid4().hex[:8]}"
    txs = [make_tx(i, wallet=wallet) for i in range(8)]
    tight = [_store(max_attempts=1) for _ in range(2)]
    results = _across_instances(tight, txs, swallow=True)
    failed = [tx for tx, r in zip(txs, results, strict=True) if r is None]
    applied = [tx for tx, r in zip(txs, results, strict=True) if r is not None]
    assert failed, "expected at least one aborted transaction under contention"
    assert tight[0].wallet_state(wallet) == sequential_state(applied)
    patient = _store(max_attempts=EnrichSettings().firestore_max_attempts)
    for tx in failed:  # the redeliveries
        assert not patient.enrich_once(tx, unknown_counterparty(tx)).duplicate
    assert patient.wallet_state(wallet) == sequential_state(txs)
    for s in [*tight, patient]:
        s.close()


def test_processed_at_finds_the_decisions_at_an_entity_within_a_window(store: FirestoreHistoryStore) -> None:
    """The query `txguard late-updates decisions` runs (the composite index of infra/history.py in the cloud)."""
    from datetime import timedelta

    from txguard.features.counterparty import Entity, entity_key

    shop, device = f"shop-{uuid.uuid4().hex[:8]}", f"dev-{uuid.uuid4().hex[:8]}"
    base = make_tx(0)
    txs = [make_tx(i, wallet=f"w-{uuid.uuid4().hex[:6]}", counterparty_id=shop if i % 2 else "other",
                   device_id=device, timestamp=base.timestamp + timedelta(minutes=i)) for i in range(10)]
    for tx in txs:
        store.enrich_once(tx, unknown_counterparty(tx))
    start, end = (base.timestamp + timedelta(minutes=3)).timestamp(), (base.timestamp + timedelta(minutes=8)).timestamp()
    at_shop = store.processed_at(entity_key(Entity.COUNTERPARTY, shop), start, end)
    assert [r["transaction_id"] for r in at_shop] == [txs[i].transaction_id for i in (3, 5, 7)]
    assert all(r["transaction"]["counterparty_id"] == shop and r["counterparty"]["applied"] is False for r in at_shop)
    at_device = store.processed_at(entity_key(Entity.DEVICE, device), start, end, limit=2)
    assert [r["transaction_id"] for r in at_device] == [txs[i].transaction_id for i in (3, 4)]


def _decision(tx, score: float) -> Decision:  # noqa: ANN001
    return Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=score,
                    outcome=Outcome.ALLOW, model_version="m1")


def test_a_first_deliverys_decision_is_one_conditional_commit(
        store: FirestoreHistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is as the delivery's own transaction wrote it: one Commit with an update-time
    precondition, no BeginTransaction nor read; the record then says decided and applied."""
    tx = make_tx(1, wallet=f"w-{uuid.uuid4().hex[:8]}")
    enrichment = store.enrich_once(tx, unknown_counterparty(tx))
    assert enrichment.version is not None
    calls = _record_rpcs(store, monkeypatch)
    assert store.record_decision(tx.transaction_id, _decision(tx, 0.1), enrichment.version) == _decision(tx, 0.1)
    assert calls == [("commit", 1)]
    record = store.processed(tx.transaction_id)
    assert record is not None and record["counterparty"]["applied"] is True
    again = store.enrich_once(tx, unknown_counterparty(tx))
    assert again.duplicate and again.decision == _decision(tx, 0.1)


def test_a_record_changed_since_goes_through_the_transaction_and_the_first_decision_wins(
        store: FirestoreHistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    tx = make_tx(1, wallet=f"w-{uuid.uuid4().hex[:8]}")
    version = store.enrich_once(tx, unknown_counterparty(tx)).version
    first = store.record_decision(tx.transaction_id, _decision(tx, 0.1))  # another copy decided meanwhile
    calls = _record_rpcs(store, monkeypatch)
    assert store.record_decision(tx.transaction_id, _decision(tx, 0.9), version) == first == _decision(tx, 0.1)
    # the conditional write was refused (the record moved on); the transaction read the stored decision
    assert [name for name, _ in calls] == ["commit", "begin_transaction", "batch_get_documents", "commit"]
    assert store.enrich_once(tx, unknown_counterparty(tx)).decision == first


def test_a_duplicate_that_took_the_lease_over_decides_at_its_own_writes_version(
        firestore_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FirestoreHistoryStore(project=PROJECT, lease_s=0.0)  # every lease has expired at once
    tx = make_tx(1, wallet=f"w-{uuid.uuid4().hex[:8]}")
    stale = store.enrich_once(tx, unknown_counterparty(tx)).version
    taken = store.enrich_once(tx, unknown_counterparty(tx))  # the first delivery's lease is over: taken
    assert taken.duplicate and taken.counterparty_due and taken.version not in (None, stale)
    calls = _record_rpcs(store, monkeypatch)
    assert store.record_decision(tx.transaction_id, _decision(tx, 0.2), taken.version) == _decision(tx, 0.2)
    assert calls == [("commit", 1)]
    # the first delivery, slower, comes back with the version its own write left: refused, and told
    calls.clear()
    assert store.record_decision(tx.transaction_id, _decision(tx, 0.7), stale) == _decision(tx, 0.2)
    assert calls[0] == ("commit", 1) and ("begin_transaction", 0) in calls
    store.close()
