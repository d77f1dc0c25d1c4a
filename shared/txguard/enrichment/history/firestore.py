"""Firestore history store: one document per wallet, one per processed transaction id.

Both documents are read and written in the SAME transaction, so the idempotency check and the
state update cannot be split by a crash or a concurrent delivery. Server client libraries lock
the documents a transaction reads, so two deliveries of one wallet that overlap deadlock on the
wallet document until one is aborted. Two defences: deliveries of one wallet take turns inside
an instance (`WalletLocks`), and an aborted transaction is retried with jittered exponential
backoff up to `max_attempts` (FIRESTORE_MAX_ATTEMPTS; the library's default of 5 immediate
retries is too few for a burst on one wallet across instances: the racers collide again at
once). Past that the error is `StoreUnavailableError` and Pub/Sub redelivers with backoff.
Sustained rate per wallet document and what a hot wallet does: docs/enrichment.md.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from dataclasses import replace
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from txguard.contract import names
from txguard.contract.errors import StoreUnavailableError
from txguard.contract.models import Decision, EnrichedTransaction, Transaction
from txguard.enrichment.history.record import (
    DEFAULT_LEASE_S,
    CounterpartySource,
    Enrichment,
    claim,
    counterparty_of,
    enriched_from_record,
    fresh,
    load_decision,
    processed_record,
    reuse,
    step,
    took_over,
)
from txguard.features.wallet import WalletState

LOCK_STRIPES = 1024
# Stop retrying an aborted transaction after this long, whatever max_attempts says: the delivery
# must answer well within the push subscription's ack deadline (60 s), and Pub/Sub's redelivery
# backoff spreads a burst better than a request thread that keeps waiting.
TRANSACTION_DEADLINE_S = 20.0


class WalletLocks:
    """Striped in-process locks: deliveries of one wallet in one instance take turns.

    Firestore transactions lock what they read; two transactions that both read a wallet and then
    both want to write it wait on each other until one is aborted (the emulator resolves this
    only by a ~2 s lock timeout). Serialising them in process removes that contention within an
    instance (Cloud Run runs up to `concurrency` requests per instance); across instances the
    transaction retries and Pub/Sub redelivery remain the safety net.
    """

    def __init__(self, stripes: int = LOCK_STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def __call__(self, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]


class _KeepsWriteResults(firestore.Transaction):
    """A transaction that keeps its commit's write results (each write's update time, in the order
    the writes were made): the processed record's version for the decision's conditional write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_results: list[Any] = []

    def _commit(self) -> list[Any]:
        self.write_results = super()._commit()
        return self.write_results


# Errors that say "the store is not answering / too busy", never "this message is bad".
_UNAVAILABLE = (gexc.GoogleAPICallError, gexc.RetryError)


class FirestoreHistoryStore:
    def __init__(
        self,
        client: firestore.Client | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        ttl_days: int = 7,
        max_attempts: int = 30,
        deadline_s: float = TRANSACTION_DEADLINE_S,
        wallets_collection: str = names.WALLETS_COLLECTION,
        processed_collection: str = names.PROCESSED_COLLECTION,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.client = client or firestore.Client(project=project, database=database)
        self.ttl_days = ttl_days
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.deadline_s = deadline_s
        self.locks = WalletLocks()
        self.wallets = self.client.collection(wallets_collection)
        self.processed_ref = self.client.collection(processed_collection)

    def enrich_once(self, tx: Transaction, counterparty: CounterpartySource) -> Enrichment:
        with self.locks(tx.wallet_id):
            return self._enrich_once(tx, counterparty)

    def _enrich_once(self, tx: Transaction, counterparty: CounterpartySource) -> Enrichment:
        wallet_ref = self.wallets.document(tx.wallet_id)
        proc_ref = self.processed_ref.document(tx.transaction_id)
        ttl_days, lease_s = self.ttl_days, self.lease_s  # read once: the closure runs per attempt

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Enrichment:
            # Both documents in one BatchGetDocuments (one round trip, not two). The answers may come
            # in any order: each snapshot is matched to its document by path.
            snaps = {snap.reference.path: snap for snap in transaction.get_all([proc_ref, wallet_ref])}
            snap, wallet = snaps[proc_ref.path], snaps[wallet_ref.path]
            if snap.exists:
                enrichment = self._duplicate(transaction, proc_ref, tx, snap.to_dict() or {})
                # the record's version: the takeover's write (its first), else the one read
                return replace(enrichment, version=None if enrichment.counterparty_due else snap.update_time)
            done = step(tx, wallet.to_dict() if wallet.exists else None)
            # Awaited here, after the transaction's begin and reads: the snapshot was read meanwhile.
            # Its error aborts the transaction (nothing written); a retried attempt gets the same value.
            features = counterparty_of(counterparty)
            record = processed_record(tx, done, features, ttl_days, lease_s)
            transaction.create(proc_ref, record)  # the first write: its result is the record's version
            transaction.set(wallet_ref, done.state)
            return fresh(tx, done, features)

        # One library attempt per loop: an abort (at commit, or a lock wait timing out at read)
        # is retried here after a jittered, growing pause so that the racers fall out of step.
        # Measured on the emulator: half the aborts of the library's immediate retries.
        deadline = time.monotonic() + self.deadline_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                transaction = _KeepsWriteResults(self.client, max_attempts=1)
                enrichment = run(transaction)
                if enrichment.version is None and transaction.write_results:  # it wrote the record first
                    enrichment = replace(enrichment, version=transaction.write_results[0].update_time)
                return enrichment
            except (gexc.Aborted, ValueError) as exc:
                aborted = isinstance(exc, gexc.Aborted) or isinstance(exc.__cause__, gexc.Aborted)
                if not aborted:
                    raise
                if attempt == self.max_attempts or time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"firestore: transaction aborted {attempt} times (contention on {tx.wallet_id})"
                    ) from exc
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
            except _UNAVAILABLE as exc:
                raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def record_decision(self, transaction_id: str, decision: Decision, version: Any = None) -> Decision:
        # Two copies of one transaction (duplicate deliveries) both reach here; in one instance
        # they take turns like enrich_once, instead of deadlocking on the processed record until
        # the emulator's ~2 s lock timeout (measured by `txguard reliability`, duplicates).
        with self.locks(decision.wallet_id):
            if version is not None and self._record_decision_at(transaction_id, decision, version):
                return decision
            return self._record_decision(transaction_id, decision)

    def _record_decision_at(self, transaction_id: str, decision: Decision, version: Any) -> bool:
        """One Commit, on the precondition that the record is still at `version` (as this delivery's
        history transaction wrote or read it): then no decision can have been stored since, and the
        transaction's begin and read are not needed. False when another delivery changed the record
        meanwhile (a duplicate's decision, a lease taken over): the transaction decides."""
        ref = self.processed_ref.document(transaction_id)
        try:
            ref.update(self._decided(decision), option=self.client.write_option(last_update_time=version))
        except gexc.FailedPrecondition:
            return False
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc
        return True

    @staticmethod
    def _decided(decision: Decision) -> dict[str, Any]:
        """The decision's fields of the processed record: the decision is recorded after the
        counterparty update, so the record now says applied."""
        return {"decision": decision.model_dump_json(), "counterparty.applied": True}

    def _record_decision(self, transaction_id: str, decision: Decision) -> Decision:
        ref = self.processed_ref.document(transaction_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Decision:
            stored = load_decision((ref.get(transaction=transaction).to_dict() or {}).get("decision"))
            if stored is not None:
                return stored
            transaction.update(ref, self._decided(decision))
            return decision

        try:
            return run(self.client.transaction(max_attempts=self.max_attempts))
        except ValueError as exc:  # aborted max_attempts times: only duplicates race here
            raise StoreUnavailableError(f"firestore: {exc}") from exc
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc

    def counterparty_applied(self, transaction_id: str) -> None:
        try:
            self.processed_ref.document(transaction_id).update({"counterparty.applied": True})
        except gexc.NotFound:
            return
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc

    def release_counterparty(self, transaction_id: str) -> None:
        try:
            self.processed_ref.document(transaction_id).update({"counterparty.lease_until": 0.0})
        except gexc.NotFound:
            return
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc

    def wallet_state(self, wallet_id: str) -> WalletState:
        snap = self.wallets.document(wallet_id).get()
        return WalletState.from_dict(snap.to_dict() if snap.exists else None)

    def processed(self, transaction_id: str) -> dict[str, Any] | None:
        try:
            snap = self.processed_ref.document(transaction_id).get()
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc
        return snap.to_dict() if snap.exists else None

    def processed_at(self, entity: str, start: float, end: float, limit: int = 1000) -> list[dict[str, Any]]:
        # The composite index (entities array-contains, event_time) is declared in infra/history.py.
        query = (self.processed_ref.where(filter=FieldFilter("entities", "array_contains", entity))
                 .where(filter=FieldFilter("event_time", ">=", start)).where(filter=FieldFilter("event_time", "<", end))
                 .order_by("event_time").limit(limit))
        try:
            return [{**(snap.to_dict() or {}), "transaction_id": snap.id} for snap in query.stream()]
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc

    def enriched(self, transaction_id: str) -> EnrichedTransaction | None:
        return enriched_from_record(self.processed(transaction_id))

    def close(self) -> None:
        self.client.close()

    def _duplicate(self, transaction: firestore.Transaction, ref: Any, tx: Transaction,
                   record: dict[str, Any]) -> Enrichment:
        """The duplicate path of enrich_once: reuse the record, taking an expired counterparty lease over."""
        enrichment = reuse(tx, record)  # checks the fingerprint before anything is claimed
        renewed = claim(record, self.lease_s)
        if renewed is None:
            return enrichment
        transaction.update(ref, {"counterparty": renewed})
        return took_over(enrichment)
