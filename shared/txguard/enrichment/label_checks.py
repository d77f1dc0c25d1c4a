"""Is this label believable? Who sent it (its route), and does it describe a transaction txguard saw?

A label is applied only if all of this holds (docs/counterparty.md, "Who may label"):

- **route**: it came on a route that carries its `kind` (chargebacks and reversals from the processor
  feed, analyst verdicts from the console), and its `source` is in the route's namespace: `analyst` or
  `analyst:<id>` on the console's route and only there. The route is the push request's path, which
  only the route's own push subscription posts to (txguard.contract.names.LabelRoute says why that
  vouches for the publisher). A label refused here is parked `source`.
- **record**: its transaction is in the transaction index, and the wallet, counterparty, device and
  transaction time it names are the record's (parked `mismatch`, naming the fields). A transaction not
  in the index may still be on its way (a replay, a test, a backlog): the label is retried until
  `unknown_retry_s` after it was published, then parked `unknown_transaction`.

Nothing here writes anything: a refused label changes no counter.
"""

from __future__ import annotations

from datetime import datetime

from txguard.contract.errors import LabelRefusedError, TransactionNotSeenYetError
from txguard.contract.models import LabelEvent
from txguard.contract.names import LabelRoute
from txguard.enrichment.transaction_index import IndexedTransaction, TransactionIndex

ANALYST_SOURCE = "analyst"

# `error_kind` of the labels parked on `invalid` by these checks
KIND_SOURCE = "source"
KIND_UNKNOWN = "unknown_transaction"
KIND_MISMATCH = "mismatch"


def is_analyst_source(source: str | None) -> bool:
    return source is not None and (source == ANALYST_SOURCE or source.startswith(ANALYST_SOURCE + ":"))


def check_route(label: LabelEvent, route: LabelRoute) -> None:
    """Refuse a label whose kind or source the route does not carry."""
    if label.kind.value not in route.kinds:
        raise LabelRefusedError(
            f"kind {label.kind.value} does not come from the {route.name} route (topic {route.topic} carries "
            f"{', '.join(route.kinds)})", KIND_SOURCE)
    if route.analyst_sources and not is_analyst_source(label.source):
        raise LabelRefusedError(
            f"source {label.source!r} is not an analyst: labels on {route.topic} are the console's, source "
            f"analyst:<id>", KIND_SOURCE)
    if not route.analyst_sources and is_analyst_source(label.source):
        raise LabelRefusedError(
            f"source {label.source} names an analyst, but the label came from the {route.name} route "
            f"(topic {route.topic}); analysts' verdicts come from the console only", KIND_SOURCE)


def check_record(label: LabelEvent, record: IndexedTransaction) -> None:
    """Refuse a label that does not describe the transaction txguard saw under its id."""
    fields = record.disagreements(label)
    if fields:
        raise LabelRefusedError(
            f"{', '.join(fields)} of the label disagree{'s' if len(fields) == 1 else ''} with what txguard saw of "
            f"transaction {label.transaction_id}", KIND_MISMATCH)


def verified_record(label: LabelEvent, index: TransactionIndex, published_at: float | None, now: float,
                    unknown_retry_s: float) -> IndexedTransaction:
    """The transaction's record, once the label agrees with it; retries or refuses a label of an unknown one.

    `published_at`: when Pub/Sub accepted the label (the push body's publishTime: set by Pub/Sub, kept
    across redeliveries); None when the delivery does not say, which is never retried (no bound)."""
    record = index.lookup(label.transaction_id)
    if record is None:
        waited = None if published_at is None else now - published_at
        if waited is not None and waited < unknown_retry_s:
            raise TransactionNotSeenYetError(
                f"transaction {label.transaction_id} is not in the transaction index yet (label published "
                f"{waited:.0f} s ago, retried until {unknown_retry_s:.0f} s)")
        after = "" if waited is None else f" {waited:.0f} s after the label was published"
        raise LabelRefusedError(
            f"transaction {label.transaction_id} is unknown: txguard never applied it (not in the transaction "
            f"index{after})", KIND_UNKNOWN)
    check_record(label, record)
    return record


def rfc3339_seconds(text: str | None) -> float | None:
    """Epoch seconds of a push body's publishTime (None when absent or unreadable)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
