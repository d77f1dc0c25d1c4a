"""Firestore history store: one document per wallet, one per processed transaction id.

Both documents are read and written in the SAME transaction, so the idempotency check and the
state update cannot be split by a crash or a concurrent delivery. Server client libraries lock
the documents a transaction reads, so concurrent deliveries of one wallet queue on the wallet
document's lock; a transaction that loses (Aborted at commit or at read) is retried up to
`max_attempts` times, sized for contention (the library's default of 5 is too few for a burst of
one hot wallet). Past that the error is `StoreUnavailableError` and Pub/Sub redelivers with
backoff, which spreads the burst out. Sustained rate per wallet document: see docs/enrichment.md.
"""

from __future__ import annotations

import random
import time
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import names
from shared.contract import Decision, Transaction
from shared.exceptions import StoreUnavailableError
from shared.features import WalletState
from shared.history.protocol import Enrichment, fresh, processed_record, reuse, step

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
        wallets_collection: str = names.WALLETS_COLLECTION,
        processed_collection: str = names.PROCESSED_COLLECTION,
    ) -> None:
        self.client = client or firestore.Client(project=project, database=database)
        self.ttl_days = ttl_days
        self.max_attempts = max_attempts
        self.wallets = self.client.collection(wallets_collection)
        self.processed_ref = self.client.collection(processed_collection)

    def enrich_once(self, tx: Transaction) -> Enrichment:
        wallet_ref = self.wallets.document(tx.wallet_id)
        proc_ref = self.processed_ref.document(tx.transaction_id)
        ttl_days = self.ttl_days

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Enrichment:
            snap = proc_ref.get(transaction=transaction)
            if snap.exists:
                return reuse(tx, snap.to_dict() or {})
            wallet = wallet_ref.get(transaction=transaction)
            features, state = step(tx, wallet.to_dict() if wallet.exists else None)
            transaction.set(wallet_ref, state)
            transaction.create(proc_ref, processed_record(tx, features, ttl_days))
            return fresh(tx, features)

        # The library retries an Aborted *commit* itself (keeping its place in the lock queue);
        # an Aborted *read* (lock wait timed out under contention) surfaces here: retry it too,
        # within the same attempt budget, with a short jittered pause.
        attempts_left = self.max_attempts
        while True:
            try:
                return run(self.client.transaction(max_attempts=attempts_left))
            except gexc.Aborted as exc:
                attempts_left -= 1
                if attempts_left <= 0:
                    raise StoreUnavailableError(f"firestore: transaction aborted: {exc}") from exc
                time.sleep(random.uniform(0.005, 0.05))
            except ValueError as exc:  # "Failed to commit transaction in N attempts."
                if isinstance(exc.__cause__, gexc.Aborted) or "attempts" in str(exc):
                    raise StoreUnavailableError(f"firestore: {exc} (contention on {tx.wallet_id})") from exc
                raise
            except _UNAVAILABLE as exc:
                raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc

    def record_decision(self, transaction_id: str, decision: Decision) -> None:
        try:
            self.processed_ref.document(transaction_id).update({"decision": decision.model_dump(mode="json")})
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"firestore: {type(exc).__name__}: {exc}") from exc

    def wallet_state(self, wallet_id: str) -> WalletState:
        snap = self.wallets.document(wallet_id).get()
        return WalletState.from_dict(snap.to_dict() if snap.exists else None)

    def processed(self, transaction_id: str) -> dict[str, Any] | None:
        snap = self.processed_ref.document(transaction_id).get()
        return snap.to_dict() if snap.exists else None

    def close(self) -> None:
        self.client.close()
