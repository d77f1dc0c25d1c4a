"""The review queue in Firestore: one document per transaction in `review_queue`.

A change is one Firestore transaction (read the item, apply the transition, write it back).
Server client libraries lock what a transaction reads, so concurrent claims of one item queue up
on it; the loser re-runs the transition, sees the winner's claim and gets ConsoleConflictError.
Listing needs the composite index (open, outcome, decided_at desc) the Pulumi program declares.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from txguard.console.items import ReviewItem
from txguard.console.queue import Change
from txguard.contract import names
from txguard.contract.errors import ConsoleNotFoundError, ConsoleUnavailableError
from txguard.contract.models import Outcome

# Concurrent claims of one item abort each other at commit; each retry reads the winner's claim.
MAX_ATTEMPTS = 20
_UNAVAILABLE = (gexc.GoogleAPICallError, gexc.RetryError)


class FirestoreReviewQueue:
    def __init__(self, client: firestore.Client | None = None, *, project: str | None = None,
                 database: str = "(default)", collection: str = names.REVIEW_QUEUE_COLLECTION) -> None:
        self.client = client or firestore.Client(project=project, database=database)
        self.items = self.client.collection(collection)

    def add(self, item: ReviewItem) -> bool:
        try:
            self.items.document(item.transaction_id).create(item.to_doc())
        except gexc.AlreadyExists:
            return False
        except _UNAVAILABLE as exc:
            raise ConsoleUnavailableError(f"firestore review queue: {type(exc).__name__}: {exc}") from exc
        return True

    def get(self, transaction_id: str) -> ReviewItem | None:
        try:
            snap = self.items.document(transaction_id).get()
        except _UNAVAILABLE as exc:
            raise ConsoleUnavailableError(f"firestore review queue: {type(exc).__name__}: {exc}") from exc
        return ReviewItem.model_validate(snap.to_dict()) if snap.exists else None

    def open_items(self, outcomes: Iterable[Outcome], limit: int = 100) -> list[ReviewItem]:
        wanted = [Outcome(o).value for o in outcomes]
        if not wanted:
            return []
        query = (self.items.where(filter=FieldFilter("open", "==", True))
                 .where(filter=FieldFilter("outcome", "in", wanted))
                 .order_by("decided_at", direction=firestore.Query.DESCENDING)
                 .limit(int(limit)))
        try:
            return [ReviewItem.model_validate(snap.to_dict()) for snap in query.stream()]
        except _UNAVAILABLE as exc:
            raise ConsoleUnavailableError(f"firestore review queue: {type(exc).__name__}: {exc}") from exc

    def open_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        try:
            for outcome in (Outcome.REVIEW, Outcome.BLOCK):
                query = (self.items.where(filter=FieldFilter("open", "==", True))
                         .where(filter=FieldFilter("outcome", "==", outcome.value)))
                result = query.count().get()
                n = int(result[0][0].value) if result and result[0] else 0
                if n:
                    counts[outcome.value] = n
        except _UNAVAILABLE as exc:
            raise ConsoleUnavailableError(f"firestore review queue: {type(exc).__name__}: {exc}") from exc
        return counts

    def update(self, transaction_id: str, change: Change) -> ReviewItem:
        ref = self.items.document(transaction_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> ReviewItem:
            snap = ref.get(transaction=transaction)
            if not snap.exists:
                raise ConsoleNotFoundError(f"no review item for transaction {transaction_id!r}")
            item = change(ReviewItem.model_validate(snap.to_dict()))
            transaction.set(ref, item.to_doc())
            return item

        try:
            return run(self.client.transaction(max_attempts=MAX_ATTEMPTS))
        except ValueError as exc:  # the library's "failed to commit in N attempts"
            raise ConsoleUnavailableError(f"firestore review queue: {exc}") from exc
        except _UNAVAILABLE as exc:
            raise ConsoleUnavailableError(f"firestore review queue: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.client.close()
