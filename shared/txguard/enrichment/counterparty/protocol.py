"""What enrichment and the label function need from a counterparty store.

Counters only ever change by `Increment`s (features.counterparty) and each transaction or label
must change them exactly once although Pub/Sub delivers at least once:

- a transaction's increments are applied together with a *marker* (its id) in one atomic step
  per row: a second application finds the marker and changes nothing. Once the history store's
  processed record says the transaction is applied, the marker is no longer needed and
  `settle_transaction` removes it (rows stay small); the enrichment pipeline leases the update
  to one delivery at a time so that no duplicate can race the removal (docs/counterparty.md);
- a label goes through its transaction's ledger (features.label_ledger.transition), then its
  increments are applied with a marker (the label id) that is kept: a redelivered label re-applies
  its stored increments and the markers make that a no-op.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from txguard.contract.models import LabelEvent, Transaction
from txguard.features.counterparty import Increment, Snapshot
from txguard.features.label_ledger import LabelOutcome


def transaction_marker(transaction_id: str) -> str:
    return f"t:{transaction_id}"


def label_marker(label_id: str) -> str:
    return f"l:{label_id}"


def by_row(increments: Iterable[Increment]) -> dict[tuple[str, int], dict[str, int]]:
    """Increments grouped per (entity, day) row and summed per column (one atomic write per row)."""
    rows: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    for inc in increments:
        cells = rows[(inc.entity, inc.day)]
        cells[inc.column] = cells.get(inc.column, 0) + inc.value
    return {key: {c: v for c, v in cells.items() if v} for key, cells in rows.items()}


@runtime_checkable
class CounterpartyStore(Protocol):
    """Thread-safe: one instance per process, shared by the server's threads."""

    def snapshot(self, tx: Transaction) -> Snapshot:
        """The cells the features of `tx` read (its counterparty, device and wallet; the last 31 days)."""
        ...

    def apply_transaction(self, tx: Transaction, new_for_cp: bool, new_for_device: bool) -> bool:
        """Add the transaction's increments unless its marker is there; True if added now."""
        ...

    def settle_transaction(self, tx: Transaction) -> None:
        """Drop the transaction's markers (its processed record now says applied)."""
        ...

    def apply_label(self, label: LabelEvent) -> LabelOutcome:
        """Record the label in its transaction's ledger and apply what it changes, exactly once."""
        ...

    def knows_label(self, label: LabelEvent) -> bool:
        """Whether the label's id is in its transaction's ledger already (a redelivery, or a reuse of the
        id that `apply_label` refuses): such a label is not counted against the limits again."""
        ...

    def close(self) -> None: ...
