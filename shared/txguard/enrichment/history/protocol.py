"""What the enrichment pipeline needs from a history store, and the one step every store runs.

A store's only job is to run `step` atomically with the idempotency check: in ONE transaction,
either the transaction id was already processed (reuse its stored features, and its decision if
one was stored) or the wallet state is read, the features computed as of just before the
transaction, the transaction applied and both the state and the processed record written. A
redelivery (scoring down, publish failed, ack lost) therefore never applies a transaction twice.
The same step notes whether the transaction is *late* (a later one of its wallet was applied
first); the record keeps it, so a redelivery reports it the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from txguard.contract.errors import ConflictingTransactionError
from txguard.contract.models import (
    DECISION_ADAPTER,
    Decision,
    EnrichedTransaction,
    HistoryFeatures,
    Transaction,
)
from txguard.features.wallet import TxPoint, WalletState, applied_after, apply, history_features


@dataclass(frozen=True)
class Enrichment:
    enriched: EnrichedTransaction
    decision: Decision | None  # stored by an earlier delivery
    duplicate: bool  # the id was already processed: nothing was applied this time
    late: bool = False  # a later transaction of the wallet was applied first (features.wallet.applied_after)


def fingerprint(tx: Transaction) -> str:
    """Content hash of a transaction, to tell a redelivery from an id reused for another payload."""
    return hashlib.blake2b(tx.model_dump_json().encode(), digest_size=12).hexdigest()


def expires_at(ttl_days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) + timedelta(days=ttl_days)


@dataclass(frozen=True)
class Step:
    """What applying one transaction to its wallet produced."""

    features: HistoryFeatures  # as of just before the transaction
    state: dict[str, Any]  # the wallet state document after it
    late: bool  # later transactions of the wallet were applied before it


def step(tx: Transaction, state_doc: dict[str, Any] | None) -> Step:
    """Features of `tx` as of just before it, the wallet state after applying it, and whether it is late."""
    state = WalletState.from_dict(state_doc)
    features = history_features(state, tx)
    point = TxPoint.of(tx)
    late = applied_after(state, point.ts) > 0
    apply(state, point)
    return Step(features, state.to_dict(), late)


def processed_record(tx: Transaction, applied: Step, ttl_days: int) -> dict[str, Any]:
    """The processed marker. It keeps the transaction itself so that what was decided can be shown
    later as it was scored (the analyst console's review queue), without a second store."""
    return {
        "wallet_id": tx.wallet_id,
        "fingerprint": fingerprint(tx),
        "transaction": tx.model_dump(mode="json"),
        "features": applied.features.model_dump(mode="json"),
        "late": applied.late,
        "decision": None,
        "expires_at": expires_at(ttl_days),
    }


def enriched_from_record(record: dict[str, Any] | None) -> EnrichedTransaction | None:
    """The enriched transaction a processed record describes, or None when the record is missing
    or older than the `transaction` field (such records expire with their TTL)."""
    if not record or not record.get("transaction"):
        return None
    return EnrichedTransaction.model_validate({**record["transaction"], "features": record["features"]})


def reuse(tx: Transaction, record: dict[str, Any]) -> Enrichment:
    """An Enrichment from a stored processed record (the duplicate path)."""
    stored = record.get("fingerprint")
    if stored is not None and stored != fingerprint(tx):
        raise ConflictingTransactionError(
            f"transaction_id {tx.transaction_id!r} was already processed with different content"
        )
    features = HistoryFeatures.model_validate(record["features"])
    decision = load_decision(record.get("decision"))
    return Enrichment(_enriched(tx, features), decision, duplicate=True, late=bool(record.get("late", False)))


def load_decision(stored: str | dict[str, Any] | None) -> Decision | None:
    """Decisions are stored as their JSON text, so a reused decision is republished byte for byte
    (a Firestore map would come back with its keys reordered)."""
    if not stored:
        return None
    if isinstance(stored, str):
        return DECISION_ADAPTER.validate_json(stored)
    return DECISION_ADAPTER.validate_python(stored)


def fresh(tx: Transaction, applied: Step) -> Enrichment:
    return Enrichment(_enriched(tx, applied.features), None, duplicate=False, late=applied.late)


def _enriched(tx: Transaction, features: HistoryFeatures) -> EnrichedTransaction:
    return EnrichedTransaction.model_construct(**dict(tx), features=features)


@runtime_checkable
class HistoryStore(Protocol):
    """Thread-safe: one instance per process, shared by the server's threads."""

    def enrich_once(self, tx: Transaction) -> Enrichment:
        """Idempotent enrichment (see the module docstring); raises StoreUnavailableError."""
        ...

    def record_decision(self, transaction_id: str, decision: Decision) -> Decision:
        """Store the decision on the processed record so duplicates reuse it; the first stored
        decision wins (two concurrent deliveries may both score) and is returned, so every copy
        published for one transaction id is the same decision."""
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
        """The processed record of a transaction (`features`, `late`, `decision`), None when unknown:
        for tests and inspection (online features against the offline replay)."""
        ...

    def close(self) -> None: ...
