"""The label function's core: one `labels` delivery -> validate -> ledger and counterparty counters.

`LabelApplier.handle` is the one place where errors become ack or retry, as in the enrichment
pipeline: returning acks (the label was applied, was a duplicate, or can never be applied and its
original bytes are on `invalid` with the reason); raising a `RetryableError` (store or publish
unavailable) makes the entry point answer 503 so Pub/Sub redelivers with backoff, then
dead-letters. A label is applied exactly once per label id (features.labels, counterparty/protocol).
A label applied after reads that should have counted it (it became known before transactions that
were scored without it) is logged as one `late_update` line per entity (counterparty/lateness.py).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from logging import Logger
from typing import Any

from txguard.contract import names
from txguard.contract.errors import ConflictingLabelError, InvalidEventError, RetryableError
from txguard.contract.logs import get_logger
from txguard.contract.process import ProcessWide
from txguard.contract.settings import LabelSettings, label_settings
from txguard.enrichment.counterparty import CounterpartyStore, create_counterparty_store
from txguard.enrichment.counterparty.lateness import log_late
from txguard.enrichment.envelope import (
    Delivery,
    decode,
    original_bytes,
    parse_envelope,
    parse_label,
    undecoded,
)
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


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class LabelApplier:
    def __init__(self, store: CounterpartyStore, outbox: InvalidOutbox, logger: Logger | None = None) -> None:
        self.store = store
        self.outbox = outbox
        self.log = logger or get_logger("label")
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle(self, event_data: Any) -> LabelResult:
        """Process one delivery. Returning means ack; raising means retry."""
        start = time.perf_counter()
        result = LabelResult()
        delivery: Delivery | None = None
        try:
            try:
                envelope = parse_envelope(event_data)
                delivery = undecoded(envelope)  # until the data decodes, its text is the original
                delivery = decode(envelope)
                label = parse_label(delivery.raw)
                result.label_id, result.transaction_id = label.label_id, label.transaction_id
                t = time.perf_counter()
                applied = self.store.apply_label(label)
                outcome = applied.outcome
                result.timings["store_ms"] = _ms(t)
                log_late(self.log, applied.late)
                result.late_updates = len(applied.late)
                result.increments = len(outcome.increments)
                result.status = (LabelStatus.DUPLICATE if outcome.duplicate
                                 else LabelStatus.APPLIED if outcome.changed else LabelStatus.UNCHANGED)
            except InvalidEventError as exc:
                self._park(event_data, delivery, result, LabelStatus.INVALID, exc.reason, exc.kind)
            except ConflictingLabelError as exc:
                self._park(event_data, delivery, result, LabelStatus.REJECTED, str(exc), "conflict")
        except RetryableError as exc:  # the store, or parking on `invalid`
            self._finish(result, LabelStatus.RETRY, start, f"{type(exc).__name__}: {exc}")
            raise
        except Exception as exc:
            self._finish(result, LabelStatus.ERROR, start, f"{type(exc).__name__}: {exc}", exc_info=True)
            raise
        return self._finish(result, result.status, start)

    def _park(self, event_data: Any, delivery: Delivery | None, result: LabelResult, status: LabelStatus,
              reason: str, kind: str) -> None:
        """Publish the original bytes to `invalid` (a failure here is retryable: not acked)."""
        raw = delivery.raw if delivery is not None else original_bytes(event_data)
        t = time.perf_counter()
        self.outbox.publish_invalid(raw, reason, kind, delivery.message_id if delivery else "",
                                    (delivery.subscription if delivery else None) or names.LABELS_PUSH_SUBSCRIPTION)
        result.timings["publish_ms"] = _ms(t)
        result.status = status
        result.reason = f"{kind}: {reason}"

    def _finish(self, result: LabelResult, status: LabelStatus, start: float, reason: str | None = None,
                exc_info: bool = False) -> LabelResult:
        result.status = status
        if reason is not None:
            result.reason = reason
        result.timings["total_ms"] = _ms(start)
        with self._lock:
            self.counts[status.value] += 1
        level = {LabelStatus.INVALID: 30, LabelStatus.REJECTED: 30, LabelStatus.RETRY: 40,
                 LabelStatus.ERROR: 50}.get(status, 20)
        self.log.log(level, f"{status.value} {result.label_id or '-'}", extra={
            "label_id": result.label_id, "transaction_id": result.transaction_id, "status": status.value,
            "increments": result.increments, "late_updates": result.late_updates, "reason": result.reason,
            "timings": result.timings,
        }, exc_info=exc_info)
        return result


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
