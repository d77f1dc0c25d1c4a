"""The review queue in Firestore: one document per transaction in `review_queue`.

A change reads the item, applies the transition and writes it back on condition that the
document was not updated since the read (a precondition on its update time). No lock is taken:
server-library transactions lock what they read, and claims racing on one item then abort each
other for seconds (the emulator's lock timeouts), whereas with a precondition exactly one write
wins at once. A loser re-reads after a short jittered pause, sees the winner's claim and gets
ConsoleConflictError.
Listing needs the composite index (open, outcome, decided_at desc) the Pulumi program declares.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from txguard.console.items import ReviewItem
from txguard.console.review_queue import Change
from txguard.contract import names
from txguard.contract.errors import ConsoleNotFoundError, ConsoleUnavailableError
from txguard.contract.models import Outcome

# A lost race costs one re-read, which sees the winner's claim; more attempts only help when
# writes keep landing on one item (several analysts and the ingest at once).
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
        try:
            for attempt in range(MAX_ATTEMPTS):
                snap = ref.get()
                if not snap.exists:
                    raise ConsoleNotFoundError(f"no review item for transaction {transaction_id!r}")
                item = change(ReviewItem.model_validate(snap.to_dict()))
                unchanged = self.client.write_option(last_update_time=snap.update_time)
                try:
                    ref.update(item.to_doc(), option=unchanged)
                except gexc.FailedPrecondition:  # written since our read: re-read and re-decide
                    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                    continue
                return item
        except _UNAVAILABLE as exc:
            raise ConsoleUnavailableError(f"firestore review queue: {type(exc).__name__}: {exc}") from exc
        raise ConsoleUnavailableError(
            f"firestore review queue: {transaction_id!r} changed under {MAX_ATTEMPTS} attempts in a row")

    def close(self) -> None:
        self.client.close()
