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

Late updates (lateness.py): the read a transaction's features come from (`read_before`) records how
far the entity has been read, and every apply step reports the updates that came after such reads
(`Applied.late`), for the caller to log. `snapshot` reads without recording (inspection, the
console's manual scoring).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from txguard.contract.models import LabelEvent, Transaction
from txguard.enrichment.counterparty.lateness import LateUpdate
from txguard.features.counterparty import Increment, Snapshot, View
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


@dataclass(frozen=True)
class Applied:
    """What one transaction's apply step did: `added` its increments now (False: its markers were
    there, an earlier delivery had), and the late updates among them."""

    added: bool
    late: tuple[LateUpdate, ...] = ()


@dataclass(frozen=True)
class LabelApplied:
    """What one label's apply step did (`outcome`: features.label_ledger), and the late updates among it."""

    outcome: LabelOutcome
    late: tuple[LateUpdate, ...] = ()


@runtime_checkable
class CounterpartyStore(Protocol):
    """Thread-safe: one instance per process, shared by the server's threads."""

    def snapshot(self, tx: Transaction) -> Snapshot:
        """The cells the features of `tx` read (its counterparty, device and wallet; the last 31 days),
        read only: inspection and the console's manual scoring."""
        ...

    def read_before(self, tx: Transaction) -> Snapshot:
        """`snapshot(tx)` for scoring `tx`: first records that its entities were read through its
        time, so an update that lands afterwards and should have been in it is reported late."""
        ...

    def apply_transaction(self, tx: Transaction, new_for_cp: bool, new_for_device: bool) -> Applied:
        """Add the transaction's increments unless its marker is there; report whether they were
        added now and which of its entities had been read past it already (every call: an earlier
        delivery may have added them and died before it could report)."""
        ...

    def settle_transaction(self, tx: Transaction) -> None:
        """Drop the transaction's markers (its processed record now says applied)."""
        ...

    def apply_label(self, label: LabelEvent) -> LabelApplied:
        """Record the label in its transaction's ledger and apply what it changes, exactly once; the
        late updates among it (not for a duplicate whose increments were all there already)."""
        ...

    def entity_cells(self, entity: str) -> View:
        """Every stored counter of one entity key, all days (inspection: the reliability checks, tests)."""
        ...

    def knows_label(self, label: LabelEvent) -> bool:
        """Whether the label's id is in its transaction's ledger already (a redelivery, or a reuse of the
        id that `apply_label` refuses): such a label is not counted against the limits again."""
        ...

    def close(self) -> None: ...
