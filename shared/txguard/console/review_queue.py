"""The review queue: where review items live between the decision and the analyst's verdict.

Two stores behind one protocol, like the history (txguard.enrichment.history): Firestore in Google
Cloud and on the emulator (`queue_firestore`), a SQLite file in embedded mode (`queue_sqlite`);
`txguard.console.wiring.create_queue` opens the one the settings name. Each runs every change of an item
through `update`, one store transaction that reads the item, applies a pure transition of
txguard.console.items and writes it back: a claim can only be granted by a transaction that saw
the item free, so concurrent claims of one item have exactly one winner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from txguard.console.items import ReviewItem
from txguard.contract.models import Outcome

Change = Callable[[ReviewItem], ReviewItem]


@runtime_checkable
class ReviewQueue(Protocol):
    """Thread-safe: one per process, shared by the server's threads and the ingest thread."""

    def add(self, item: ReviewItem) -> bool:
        """Store a new item; False (and nothing changed) if the transaction is already queued:
        a redelivered decision never reopens an item an analyst has handled."""
        ...

    def get(self, transaction_id: str) -> ReviewItem | None: ...

    def open_items(self, outcomes: Iterable[Outcome], limit: int = 100) -> list[ReviewItem]:
        """Items still on the queue with one of `outcomes`, newest decision first."""
        ...

    def open_counts(self) -> dict[str, int]:
        """Open items per outcome."""
        ...

    def update(self, transaction_id: str, change: Change) -> ReviewItem:
        """Apply `change` atomically (it may run more than once); ConsoleNotFoundError if unknown."""
        ...

    def close(self) -> None: ...
