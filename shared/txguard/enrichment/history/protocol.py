"""What the enrichment pipeline (and the console, read only) needs from a history store.

Every store runs the same step and keeps the same processed record (txguard.enrichment.history.record);
a store only makes that step atomic with the idempotency check, in its own kind of transaction.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from txguard.contract.models import Decision, EnrichedTransaction, Transaction
from txguard.enrichment.history.record import CounterpartySource, Enrichment
from txguard.features.wallet import WalletState


@runtime_checkable
class HistoryStore(Protocol):
    """Thread-safe: one instance per process, shared by the server's threads."""

    def enrich_once(self, tx: Transaction, counterparty: CounterpartySource) -> Enrichment:
        """Idempotent enrichment (txguard.enrichment.history.record); `counterparty` is stored with the
        record of a first delivery. When it is a call (the snapshot still being read), a store whose
        transaction is a network round trip calls it after its reads, so the two overlap; its error
        aborts the transaction (nothing written). A duplicate never calls it.
        Raises StoreUnavailableError, CounterpartyInFlightError and what the call raises."""
        ...

    def record_decision(self, transaction_id: str, decision: Decision, version: Any = None) -> Decision:
        """Store the decision on the processed record so duplicates reuse it, and mark the
        counterparty update applied; the first stored decision wins (two concurrent deliveries
        may both score) and is returned, so every copy published for one transaction id is the
        same decision. `version` is the delivery's `Enrichment.version`: a store may write at once
        when the record is still at that version (nothing else can have stored a decision since)."""
        ...

    def counterparty_applied(self, transaction_id: str) -> None:
        """Mark the counterparty update applied without a decision (the delivery failed after it)."""
        ...

    def release_counterparty(self, transaction_id: str) -> None:
        """End the lease of an update not (or not wholly) applied: the next delivery takes it over."""
        ...

    def wallet_state(self, wallet_id: str) -> WalletState:
        """The stored state of a wallet (empty when unknown), read without a transaction and never
        written: inspection and the console's manual scoring (features as of now, nothing applied)."""
        ...

    def enriched(self, transaction_id: str) -> EnrichedTransaction | None:
        """The transaction as it was scored (its features as of just before it), read only;
        None when unknown or expired."""
        ...

    def processed(self, transaction_id: str) -> dict[str, Any] | None:
        """The processed record of a transaction (`features`, `late`, `counterparty`, `decision`),
        None when unknown: for tests and inspection (online features against the offline replay)."""
        ...

    def processed_at(self, entity: str, start: float, end: float, limit: int = 1000) -> list[dict[str, Any]]:
        """The processed records of the transactions that read `entity` (a key of
        txguard.features.counterparty) with an event time in [start, end), oldest first, at most
        `limit`, each with its `transaction_id`: the decisions a late update there may have missed."""
        ...

    def close(self) -> None: ...
