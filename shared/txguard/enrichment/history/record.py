"""The one step every history store runs, and the processed record it keeps per transaction.

A store's only job is to run `step` atomically with the idempotency check: in ONE transaction,
either the transaction id was already processed (reuse its stored features, and its decision if
one was stored) or the wallet state is read, the features computed as of just before the
transaction, the transaction applied and both the state and the processed record written. A
redelivery (scoring down, publish failed, ack lost) therefore never applies a transaction twice.

The processed record also carries the transaction's counterparty features (read from the
counterparty store outside the wallet transaction, while it begins: the counterparty is never
locked by it; `CounterpartySource`) and the
state of its counterparty update: `applied`, or leased to one delivery until `lease_until`. The
delivery that creates the record holds the lease and applies the update; a duplicate that finds
the lease held is retried (`CounterpartyInFlightError`); one that finds it expired takes it over
(the counterparty store's markers make a second application a no-op). `record_decision` marks
the update applied. docs/counterparty.md has the whole argument.

The same step notes whether the transaction is *late* (a later one of its wallet was applied
first); the record keeps it, so a redelivery reports it the same way.

The record also names the entities the transaction's features read (`entities`: the counterparty,
device and wallet keys of txguard.features.counterparty) and its time (`event_time`), so that the
decisions a late counterparty update missed can be found (`HistoryStore.processed_at`,
docs/enrichment.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from txguard.contract.errors import ConflictingTransactionError, CounterpartyInFlightError
from txguard.contract.models import (
    DECISION_ADAPTER,
    CounterpartyFeatures,
    Decision,
    EnrichedTransaction,
    HistoryFeatures,
    Transaction,
)
from txguard.features.counterparty import EntityKeys, marks
from txguard.features.wallet import TxPoint, WalletState, applied_after, apply, history_features

DEFAULT_LEASE_S = 30.0


@dataclass(frozen=True)
class Enrichment:
    enriched: EnrichedTransaction
    decision: Decision | None  # stored by an earlier delivery
    duplicate: bool  # the id was already processed: nothing was applied this time
    counterparty_due: bool = False  # this delivery holds the lease: it must apply the counterparty update
    new_for_cp: bool = False  # the wallet's first transaction with this counterparty (counted once)
    new_for_device: bool = False  # ... with this device
    late: bool = False  # a later transaction of the wallet was applied first (features.wallet.applied_after)
    # The processed record's version as this delivery last wrote or read it (Firestore: its update
    # time), for `record_decision`'s conditional write; None where the store keeps none.
    version: Any = None


CounterpartySource = CounterpartyFeatures | Callable[[], CounterpartyFeatures]
"""The counterparty features a first delivery stores on its record, or a call that waits for them: the
pipeline reads the counterparty snapshot while the history transaction begins and reads, and the store
asks for it only where it writes the record (txguard.enrichment.pipeline)."""


def counterparty_of(source: CounterpartySource) -> CounterpartyFeatures:
    return source() if callable(source) else source


def fingerprint(tx: Transaction) -> str:
    """Content hash of a transaction, to tell a redelivery from an id reused for another payload."""
    return hashlib.blake2b(tx.model_dump_json().encode(), digest_size=12).hexdigest()


def expires_at(ttl_days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) + timedelta(days=ttl_days)


@dataclass(frozen=True)
class Step:
    """What applying one transaction to its wallet produced."""

    features: HistoryFeatures  # as of just before the transaction
    new_for_cp: bool  # the wallet's first transaction with this counterparty / device (features.counterparty.marks)
    new_for_device: bool
    state: dict[str, Any]  # the wallet state document after it
    late: bool = False  # later transactions of the wallet were applied before it


def step(tx: Transaction, state_doc: dict[str, Any] | None) -> Step:
    """Features of `tx` as of just before it, its marks, the wallet state after applying it, and
    whether it is late."""
    state = WalletState.from_dict(state_doc)
    point = TxPoint.of(tx)
    features = history_features(state, tx, point)
    new_for_cp, new_for_device = marks(state, point)
    late = applied_after(state, point.ts) > 0
    apply(state, point)
    return Step(features, new_for_cp, new_for_device, state.to_dict(), late)


def processed_record(tx: Transaction, done: Step, counterparty: CounterpartyFeatures, ttl_days: int,
                     lease_s: float, now: float | None = None) -> dict[str, Any]:
    """The record of a first delivery: it holds the counterparty lease. It keeps the transaction
    itself so that what was decided can be shown later as it was scored (the analyst console's
    review queue), without a second store."""
    return {
        "wallet_id": tx.wallet_id,
        "fingerprint": fingerprint(tx),
        "transaction": tx.model_dump(mode="json"),
        # Every entity its features read (the wallet's inflow and the payee's labels too), so that
        # `processed_at` finds it for a late update at any of them.
        "entities": list(EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).read()),
        "event_time": tx.timestamp.timestamp(),
        "features": done.features.model_dump(mode="json"),
        "late": done.late,
        "counterparty": {
            "features": counterparty.model_dump(mode="json"),
            "marks": [done.new_for_cp, done.new_for_device],
            "applied": False,
            "lease_until": (now if now is not None else time.time()) + lease_s,
        },
        "decision": None,
        "expires_at": expires_at(ttl_days),
    }


def enriched_from_record(record: dict[str, Any] | None) -> EnrichedTransaction | None:
    """The enriched transaction a processed record describes (wallet and counterparty features as
    scored), or None when the record is missing or older than its `transaction` field (such
    records expire with their TTL)."""
    if not record or not record.get("transaction"):
        return None
    cp = record.get("counterparty") or {}
    counterparty = cp.get("features") or dict.fromkeys(CounterpartyFeatures.model_fields, 0.0)
    return EnrichedTransaction.model_validate(
        {**record["transaction"], "features": record["features"], "counterparty": counterparty})


def claim(record: dict[str, Any], lease_s: float, now: float | None = None) -> dict[str, Any] | None:
    """The duplicate path's lease decision: the renewed counterparty state to write when this
    delivery takes the update over, None when there is nothing to do; raises while another
    delivery holds it."""
    cp = record.get("counterparty")
    if not cp or cp.get("applied") or record.get("decision"):
        return None
    now = now if now is not None else time.time()
    if float(cp.get("lease_until") or 0.0) > now:
        raise CounterpartyInFlightError("another delivery of this transaction is applying its counterparty update")
    return {**cp, "lease_until": now + lease_s}


def fresh(tx: Transaction, done: Step, counterparty: CounterpartyFeatures) -> Enrichment:
    """The Enrichment of a first delivery, from the step it applied: the very objects its record
    was dumped from (finite floats, so the record reads back equal), not validated again."""
    enriched = EnrichedTransaction.model_construct(**dict(tx), features=done.features, counterparty=counterparty)
    return Enrichment(enriched, None, duplicate=False, counterparty_due=True,
                      new_for_cp=done.new_for_cp, new_for_device=done.new_for_device, late=done.late)


def reuse(tx: Transaction, record: dict[str, Any]) -> Enrichment:
    """An Enrichment from a stored processed record (the duplicate path). When this delivery then
    takes the counterparty lease over (`claim`), the store marks it with `took_over`."""
    stored = record.get("fingerprint")
    if stored is not None and stored != fingerprint(tx):
        raise ConflictingTransactionError(
            f"transaction_id {tx.transaction_id!r} was already processed with different content"
        )
    return _from_record(tx, record, duplicate=True, due=False)


def took_over(enrichment: Enrichment) -> Enrichment:
    """The same reused Enrichment, now holding the counterparty lease (built once, not read again)."""
    return replace(enrichment, counterparty_due=True)


def _from_record(tx: Transaction, record: dict[str, Any], duplicate: bool, due: bool) -> Enrichment:
    features = HistoryFeatures.model_validate(record["features"])
    # A record written before counterparty features existed reuses its decision; rescored (no
    # decision stored), it gets the features of an unknown counterparty.
    cp = record.get("counterparty") or {}
    counterparty = CounterpartyFeatures.model_validate(
        cp.get("features") or dict.fromkeys(CounterpartyFeatures.model_fields, 0.0))
    new_for_cp, new_for_device = (bool(x) for x in cp.get("marks", (False, False)))
    decision = load_decision(record.get("decision"))
    enriched = EnrichedTransaction.model_construct(**dict(tx), features=features, counterparty=counterparty)
    return Enrichment(enriched, decision, duplicate=duplicate, counterparty_due=due,
                      new_for_cp=new_for_cp, new_for_device=new_for_device, late=bool(record.get("late", False)))


def load_decision(stored: str | dict[str, Any] | None) -> Decision | None:
    """Decisions are stored as their JSON text, so a reused decision is republished byte for byte
    (a Firestore map would come back with its keys reordered)."""
    if not stored:
        return None
    if isinstance(stored, str):
        return DECISION_ADAPTER.validate_json(stored)
    return DECISION_ADAPTER.validate_python(stored)
