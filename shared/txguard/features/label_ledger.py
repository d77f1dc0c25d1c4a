"""What a label event counts: the per-transaction label ledger and its transitions.

Every store keeps, per labelled transaction, a small *ledger* document: the labels received
(by label id), what the transaction currently counts as (`counted`: known fraud since a time,
for some entities, or nothing), and the increments each label produced. `transition` is the one
rule, shared online and offline:

- the verdict is that of the latest label (by `known_at`, then label id) that no reversal withdrew;
- a fraud verdict counts once per transaction (a chargeback after an analyst's verdict does not
  count it twice), from the earliest fraud label since the last legitimate verdict;
- a change of verdict subtracts the old count from the buckets where it was added and adds the new
  one, so the counters always equal "transactions known as fraud", bucketed by when that became
  known, and a reversal never drives a counter below what was added.

The final ledger depends only on the SET of labels received, not on their arrival order; a label
id received again returns its stored increments (`duplicate`), so a store can re-apply them
idempotently after a crash, and a label id reused for other content is a `ConflictingLabelError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from txguard.contract.errors import ConflictingLabelError
from txguard.contract.models import LabelEvent, LabelKind
from txguard.features.counterparty import CounterpartyBook, EntityKeys, Increment, fraud_increments


@dataclass(frozen=True)
class LabelOutcome:
    """What applying one label did: `increments` (possibly none) and whether it was seen before."""

    label_id: str
    transaction_id: str
    increments: tuple[Increment, ...]
    duplicate: bool

    @property
    def changed(self) -> bool:
        return bool(self.increments)


def label_fingerprint(label: LabelEvent) -> str:
    return hashlib.blake2b(label.model_dump_json().encode(), digest_size=12).hexdigest()


def _entry(label: LabelEvent) -> dict[str, Any]:
    keys = EntityKeys.of(label.wallet_id, label.counterparty_id, label.device_id)
    return {
        "known_at": label.known_at.timestamp(),
        "kind": label.kind.value,
        "is_fraud": label.is_fraud,
        "reverses": label.reverses,
        "entities": list(keys.all()),
        "fingerprint": label_fingerprint(label),
    }


def counted(labels: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """What the labels make of the transaction: {"at", "entities"} when known fraud, else None."""
    withdrawn = {e["reverses"] for e in labels.values() if e["kind"] == LabelKind.REVERSAL.value}
    active = sorted(
        (e["known_at"], label_id, e) for label_id, e in labels.items()
        if e["kind"] != LabelKind.REVERSAL.value and label_id not in withdrawn
    )
    if not active or not active[-1][2]["is_fraud"]:
        return None
    # The fraud run since the last legitimate verdict: the earliest of it is when it became known.
    start = len(active) - 1
    while start > 0 and active[start - 1][2]["is_fraud"]:
        start -= 1
    at, _, first = active[start]
    return {"at": at, "entities": list(first["entities"])}


def _increments(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Increment]:
    if old == new:
        return []
    out: list[Increment] = []
    if old is not None:
        out += fraud_increments(old["entities"], old["at"], -1)
    if new is not None:
        out += fraud_increments(new["entities"], new["at"], +1)
    return out


def encode(increments: tuple[Increment, ...] | list[Increment]) -> list[list[Any]]:
    return [[i.entity, i.day, i.column, i.value] for i in increments]


def decode(rows: list[list[Any]]) -> tuple[Increment, ...]:
    return tuple(Increment(str(e), int(d), str(c), int(v)) for e, d, c, v in rows)


def transition(ledger: dict[str, Any] | None, label: LabelEvent) -> tuple[dict[str, Any], LabelOutcome]:
    """The ledger after `label`, and what it adds to the counters (nothing for a duplicate)."""
    ledger = ledger or {"labels": {}, "counted": None, "increments": {}}
    seen = ledger["labels"].get(label.label_id)
    if seen is not None:
        if seen["fingerprint"] != label_fingerprint(label):
            raise ConflictingLabelError(f"label_id {label.label_id!r} was already applied with different content")
        stored = decode(ledger["increments"].get(label.label_id, []))
        return ledger, LabelOutcome(label.label_id, label.transaction_id, stored, duplicate=True)
    labels = {**ledger["labels"], label.label_id: _entry(label)}
    now = counted(labels)
    increments = _increments(ledger["counted"], now)
    new = {
        "labels": labels,
        "counted": now,
        "increments": {**ledger["increments"], label.label_id: encode(increments)},
    }
    return new, LabelOutcome(label.label_id, label.transaction_id, tuple(increments), duplicate=False)


def apply_label(book: CounterpartyBook, label: LabelEvent) -> LabelOutcome:
    """The offline path: ledger and counters of an in-memory book, in one step."""
    ledger, outcome = transition(book.ledger.get(label.transaction_id), label)
    if not outcome.duplicate:
        book.ledger[label.transaction_id] = ledger
        book.add(outcome.increments)
    return outcome
