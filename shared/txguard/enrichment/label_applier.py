"""The label function's core: one `labels` delivery -> validate -> ledger and counterparty counters.

`LabelApplier.handle` runs each delivery through the push handlers' one ladder, as the enrichment
pipeline does (txguard.enrichment.delivery): returning acks (the label was applied, was a duplicate, or can never be applied and its
original bytes are on `invalid` with the reason); raising a `RetryableError` (store or publish
unavailable) makes the entry point answer 503 so Pub/Sub redelivers with backoff, then
dead-letters. A label is applied exactly once per label id (features.label_ledger, counterparty/protocol).
A label applied after reads that should have counted it (it became known before transactions that
were scored without it) is logged as one `late_update` line per entity (counterparty/lateness.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from logging import Logger
from typing import Any

from txguard.contract import names
from txguard.contract.errors import ConflictingLabelError
from txguard.contract.logs import get_logger
from txguard.contract.process import ProcessWide
from txguard.contract.settings import LabelSettings, label_settings
from txguard.enrichment.counterparty import CounterpartyStore, create_counterparty_store
from txguard.enrichment.counterparty.lateness import log_late
from txguard.enrichment.delivery import Progress, PushHandler, ms_since
from txguard.enrichment.envelope import decode, parse_envelope, parse_label, undecoded
from txguard.enrichment.outbox import InvalidOutbox, PubSubOutbox


class LabelStatus(StrEnum):
    """What became of one label delivery (its log line's `status`)."""

    APPLIED = "applied"  # acked: the counters changed (a new verdict, or one withdrawn)
    UNCHANGED = "unchanged"  # acked: recorded, but the verdict did not change (a second fraud label)
    DUPLICATE = "duplicate"  # acked: this label id was applied before; nothing counted twice
    INVALID = "invalid"  # acked: malformed, parked on `invalid`
    REJECTED = "rejected"  # acked: label id reused for other content, parked on `invalid`
    RETRY = "retry"  # not acked: the store or Pub/Sub is unavailable
    ERROR = "error"  # not acked: a bug; retried then dead-lettered


@dataclass
class LabelResult:
    status: LabelStatus = LabelStatus.ERROR
    label_id: str | None = None
    transaction_id: str | None = None
    increments: int = 0
    late_updates: int = 0  # entities read past it before it was applied (each logged on its own line)
    reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class LabelApplier(PushHandler[LabelResult]):
    INVALID, REJECTED, RETRY, ERROR = LabelStatus.INVALID, LabelStatus.REJECTED, LabelStatus.RETRY, LabelStatus.ERROR
    LEVELS = {LabelStatus.APPLIED: logging.INFO, LabelStatus.UNCHANGED: logging.INFO, LabelStatus.DUPLICATE: logging.INFO,
              LabelStatus.INVALID: logging.WARNING, LabelStatus.REJECTED: logging.WARNING,
              LabelStatus.RETRY: logging.ERROR, LabelStatus.ERROR: logging.CRITICAL}
    PARKED = ((ConflictingLabelError, "conflict"),)
    PARK_SUBSCRIPTION = names.LABELS_PUSH_SUBSCRIPTION

    def __init__(self, store: CounterpartyStore, outbox: InvalidOutbox, logger: Logger | None = None) -> None:
        super().__init__(outbox, logger or get_logger("label"))
        self.store = store

    def handle(self, event_data: Any) -> LabelResult:
        """Process one delivery. Returning means ack; raising means retry."""
        return self.run(event_data, Progress(LabelResult()), self._apply)

    def _apply(self, event_data: Any, progress: Progress[LabelResult]) -> None:
        result = progress.result
        envelope = parse_envelope(event_data)
        progress.delivery = undecoded(envelope)  # until the data decodes, its text is the original
        delivery = progress.delivery = decode(envelope)
        label = parse_label(delivery.raw)
        result.label_id, result.transaction_id = label.label_id, label.transaction_id
        t = time.perf_counter()
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
            "increments": result.increments, "late_updates": result.late_updates, "reason": result.reason,
            "timings": result.timings,
        }


def build_applier(settings: LabelSettings) -> LabelApplier:
    # The outbox's decisions topic is never published to by labels; invalid labels name their push
    # subscription when the delivery does not.
    outbox = PubSubOutbox(settings.google_cloud_project, names.DECISIONS_TOPIC, settings.invalid_topic,
                          settings.publish_timeout_s, default_subscription=names.LABELS_PUSH_SUBSCRIPTION)
    return LabelApplier(create_counterparty_store(settings), outbox, get_logger("label", settings.log_level))


# Built after gunicorn forks, so gRPC is fork-safe.
_applier: ProcessWide[LabelApplier] = ProcessWide(lambda: build_applier(label_settings()))


def default_applier() -> LabelApplier:
    return _applier.get()


def install(applier: LabelApplier | None) -> None:
    """Replace the process-wide applier (functional tests wire in-memory fakes this way)."""
    _applier.install(applier)
