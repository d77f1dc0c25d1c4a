"""The label function's core: one label delivery -> checks -> limits -> ledger and counterparty counters.

`LabelApplier.handle(event_data, route)` runs each delivery through the push handlers' one ladder, as
the enrichment pipeline does (txguard.enrichment.delivery). `route` is how it came (the push request's
path: txguard.contract.names.LabelRoute), which says who published it. Returning acks:

- `applied` / `unchanged` / `duplicate`: the label passed every check and was within the limits; it is
  applied exactly once per label id (features.label_ledger, counterparty/protocol);
- `held`: it passed the checks but its source or its counterparty is over a limit
  (txguard.enrichment.label_limits): kept whole for review, no counter changed;
- `invalid` / `rejected`: malformed, or refused for good, its original bytes on `invalid` with the
  reason: a kind or source its route does not carry (`source`), a transaction txguard never applied
  (`unknown_transaction`), fields that disagree with the transaction's record (`mismatch`), a label id
  reused for other content (`conflict`) (txguard.enrichment.label_checks).

Raising a `RetryableError` makes the entry point answer 503 so Pub/Sub redelivers with backoff, then
dead-letters: a store or Pub/Sub unavailable, or a label whose transaction is not in the index yet,
for `LABEL_UNKNOWN_RETRY_S` after it was published. `release` and `discard` end a held label's review
(`txguard labels held`).

A label applied after reads that should have counted it (it became known before transactions that
were scored without it) is logged as one `late_update` line per entity (counterparty/lateness.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from logging import Logger
from typing import Any

from txguard.contract import names
from txguard.contract.errors import ConflictingLabelError, LabelRefusedError
from txguard.contract.logs import get_logger
from txguard.contract.models import LabelEvent
from txguard.contract.names import LabelRoute
from txguard.contract.process import ProcessWide
from txguard.contract.settings import LabelSettings, label_settings
from txguard.enrichment.counterparty import CounterpartyStore, create_counterparty_store
from txguard.enrichment.counterparty.lateness import log_late
from txguard.enrichment.delivery import Progress, PushHandler, ms_since
from txguard.enrichment.envelope import decode, parse_envelope, parse_label, undecoded
from txguard.enrichment.label_checks import (
    KIND_UNKNOWN,
    check_record,
    check_route,
    rfc3339_seconds,
    verified_record,
)
from txguard.enrichment.label_limits import Limits, admit, source_of
from txguard.enrichment.label_review import HeldLabel, LabelReviewStore, create_label_review
from txguard.enrichment.outbox import InvalidOutbox, PubSubOutbox
from txguard.enrichment.transaction_index import TransactionIndex, create_transaction_index
from txguard.features.label_ledger import LabelOutcome


class LabelStatus(StrEnum):
    """What became of one label delivery (its log line's `status`)."""

    APPLIED = "applied"  # acked: the counters changed (a new verdict, or one withdrawn)
    UNCHANGED = "unchanged"  # acked: recorded, but the verdict did not change (a second fraud label)
    DUPLICATE = "duplicate"  # acked: this label id was applied before; nothing counted twice
    HELD = "held"  # acked: over a limit, kept for review (txguard labels held); nothing counted
    INVALID = "invalid"  # acked: malformed, parked on `invalid`
    REJECTED = "rejected"  # acked: refused (route, unknown transaction, mismatch, conflict), parked on `invalid`
    RETRY = "retry"  # not acked: the store or Pub/Sub is unavailable, or the transaction may still come
    ERROR = "error"  # not acked: a bug; retried then dead-lettered


def verdict(label: LabelEvent) -> str:
    """fraud, legit or reversal: what a label says (a metric label; the limits count them all)."""
    return "reversal" if label.is_fraud is None else "fraud" if label.is_fraud else "legit"


@dataclass
class LabelResult:
    status: LabelStatus = LabelStatus.ERROR
    route: str | None = None
    label_id: str | None = None
    transaction_id: str | None = None
    source: str | None = None
    verdict: str | None = None
    increments: int = 0
    hold: str | None = None  # the limits a held label went past ("source", "counterparty", both comma-joined)
    late_updates: int = 0  # entities read past it before it was applied (each logged on its own line)
    reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class LabelApplier(PushHandler[LabelResult]):
    INVALID, REJECTED, RETRY, ERROR = LabelStatus.INVALID, LabelStatus.REJECTED, LabelStatus.RETRY, LabelStatus.ERROR
    LEVELS = {LabelStatus.APPLIED: logging.INFO, LabelStatus.UNCHANGED: logging.INFO, LabelStatus.DUPLICATE: logging.INFO,
              LabelStatus.HELD: logging.WARNING, LabelStatus.INVALID: logging.WARNING,
              LabelStatus.REJECTED: logging.WARNING, LabelStatus.RETRY: logging.ERROR,
              LabelStatus.ERROR: logging.CRITICAL}
    # LabelRefusedError carries its own kind (source, unknown_transaction, mismatch).
    PARKED = ((ConflictingLabelError, "conflict"), (LabelRefusedError, "refused"))
    PARK_SUBSCRIPTION = names.LABELS_PUSH_SUBSCRIPTION

    def __init__(self, store: CounterpartyStore, index: TransactionIndex, review: LabelReviewStore,
                 outbox: InvalidOutbox, limits: Limits | None = None, logger: Logger | None = None,
                 unknown_retry_s: float = 180.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(outbox, logger or get_logger("label"))
        self.store = store
        self.index = index
        self.review = review
        self.limits = limits or Limits()
        self.unknown_retry_s = unknown_retry_s
        self.clock = clock

    def handle(self, event_data: Any, route: LabelRoute) -> LabelResult:
        """Process one delivery that came by `route`. Returning means ack; raising means retry."""
        result = LabelResult(route=route.name)
        return self.run(event_data, Progress(result), lambda data, progress: self._apply(data, progress, route))

    def _apply(self, event_data: Any, progress: Progress[LabelResult], route: LabelRoute) -> None:
        result = progress.result
        envelope = parse_envelope(event_data)
        progress.delivery = undecoded(envelope)  # until the data decodes, its text is the original
        delivery = progress.delivery = decode(envelope)
        label = parse_label(delivery.raw)
        result.label_id, result.transaction_id = label.label_id, label.transaction_id
        result.source, result.verdict = source_of(label, route), verdict(label)
        t = time.perf_counter()
        check_route(label, route)
        now = self.clock()
        verified_record(label, self.index, rfc3339_seconds(delivery.publish_time), now, self.unknown_retry_s)
        result.timings["checks_ms"] = ms_since(t)
        t = time.perf_counter()
        if not self.store.knows_label(label):  # a label seen before is not counted against the limits again
            hold = admit(label, route, self.review, self.limits, now)
            if hold is not None:
                self.review.hold(HeldLabel(label, route.name, hold.reason, now))
                result.timings["store_ms"] = ms_since(t)
                result.status, result.hold, result.reason = LabelStatus.HELD, ",".join(hold.kinds), hold.reason
                return
        applied = self.store.apply_label(label)
        outcome = applied.outcome
        result.timings["store_ms"] = ms_since(t)
        log_late(self.log, applied.late)
        result.late_updates = len(applied.late)
        result.increments = len(outcome.increments)
        result.status = (LabelStatus.DUPLICATE if outcome.duplicate
                         else LabelStatus.APPLIED if outcome.changed else LabelStatus.UNCHANGED)

    def log_line(self, result: LabelResult, count: int) -> tuple[str, dict[str, Any]]:
        return f"{result.status.value} {result.label_id or '-'}", {
            "label_id": result.label_id, "transaction_id": result.transaction_id, "status": result.status.value,
            "route": result.route, "source": result.source, "verdict": result.verdict, "hold": result.hold,
            "increments": result.increments, "late_updates": result.late_updates,
            "reason": result.reason, "timings": result.timings,
        }


# Review of held labels (txguard labels held) --------------------------------------------------------
def release(held: HeldLabel, store: CounterpartyStore, index: TransactionIndex, review: LabelReviewStore,
            log: Logger | None = None, by: str = "unknown") -> LabelOutcome:
    """Apply a held label after review: its route and record are checked again (they held when it was
    held; a record may have expired since), the limits are not. Exactly once: the ledger makes a second
    release a duplicate, and the hold is forgotten only once the label is applied."""
    route = names.label_route(held.route)
    check_route(held.label, route)
    record = index.lookup(held.label.transaction_id)
    if record is None:
        raise LabelRefusedError(f"transaction {held.label.transaction_id} is no longer in the transaction index",
                                KIND_UNKNOWN)
    check_record(held.label, record)
    applied = store.apply_label(held.label)
    outcome = applied.outcome
    review.drop(held.label.label_id)
    log_late(log or get_logger("label"), applied.late)
    (log or get_logger("label")).info(
        f"released {held.label.label_id}", extra={
            "label_id": held.label.label_id, "transaction_id": held.label.transaction_id, "status": "released",
            "route": held.route, "source": held.label.source or held.route, "verdict": verdict(held.label),
            "increments": len(outcome.increments), "duplicate": outcome.duplicate, "by": by, "held_for": held.reason})
    return outcome


def discard(held: HeldLabel, review: LabelReviewStore, log: Logger | None = None, by: str = "unknown",
            why: str = "") -> None:
    """Forget a held label after review without applying it (logged with who and why)."""
    review.drop(held.label.label_id)
    (log or get_logger("label")).warning(
        f"discarded {held.label.label_id}", extra={
            "label_id": held.label.label_id, "transaction_id": held.label.transaction_id, "status": "discarded",
            "route": held.route, "source": held.label.source or held.route, "verdict": verdict(held.label),
            "by": by, "why": why, "held_for": held.reason})


def build_applier(settings: LabelSettings) -> LabelApplier:
    # The outbox's decisions topic is never published to by labels; invalid labels name their push
    # subscription when the delivery does not.
    outbox = PubSubOutbox(settings.google_cloud_project, names.DECISIONS_TOPIC, settings.invalid_topic,
                          settings.publish_timeout_s, default_subscription=names.LABELS_PUSH_SUBSCRIPTION)
    store = create_counterparty_store(settings)
    client = getattr(store, "client", None)  # one Bigtable client for the three (None: SQLite)
    return LabelApplier(store, create_transaction_index(settings, client), create_label_review(settings, client),
                        outbox, Limits.from_settings(settings), get_logger("label", settings.log_level),
                        unknown_retry_s=settings.unknown_retry_s)


# Built after gunicorn forks, so gRPC is fork-safe.
_applier: ProcessWide[LabelApplier] = ProcessWide(lambda: build_applier(label_settings()))


def default_applier() -> LabelApplier:
    return _applier.get()


def install(applier: LabelApplier | None) -> None:
    """Replace the process-wide applier (functional tests wire in-memory fakes this way)."""
    _applier.install(applier)
