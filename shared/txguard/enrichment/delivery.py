"""One Pub/Sub push delivery -> ack or retry: the rules every push handler follows, written once.

The enrichment pipeline (`transactions`) and the label applier (`labels`) run each delivery through
`PushHandler.run`, the one place where errors become ack or retry:

- returning acks (the entry point answers 2xx): the work was done (the handler's own statuses), or
  it never can be and the message's original bytes are on `invalid` with the reason: malformed
  (`InvalidEventError`: status `invalid`) or valid but refused for good (the handler's `PARKED`
  errors: status `rejected`);
- a `RetryableError` (a store, scoring or Pub/Sub unavailable, parking on `invalid` included) is
  logged as `retry` and raised again: the entry point answers 503, Pub/Sub redelivers with backoff
  and dead-letters what keeps failing. Nothing unprocessed is ever acked;
- anything else is a bug: logged as `error` with its stack and raised again (500), retried the
  same way.

Each handler keeps its own statuses (a `StrEnum` with at least `invalid`, `rejected`, `retry` and
`error`), their log levels, its counters (`counts`, per status) and the fields of its one log line
per delivery; `DeliveryStatus` and `LabelStatus` are what the log-based metrics count.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from logging import Logger
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from txguard.contract.errors import InvalidEventError, RetryableError
from txguard.contract.trace import TraceContext
from txguard.enrichment.envelope import Delivery, original_bytes
from txguard.enrichment.outbox import InvalidOutbox


class DeliveryResult(Protocol):
    """What the ladder reads and writes of a handler's result (its log line adds the rest)."""

    status: Any  # the handler's StrEnum member
    reason: str | None
    timings: dict[str, float]


R = TypeVar("R", bound=DeliveryResult)


@dataclass
class Progress(Generic[R]):
    """How far a delivery got: what parking and the log line need when it stops early."""

    result: R
    trace: TraceContext | None = None  # the delivery's span: parked messages carry it on
    delivery: Delivery | None = None  # the decoded message, once the envelope parsed


def ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class PushHandler(ABC, Generic[R]):
    # The handler's statuses for the outcomes the ladder decides, and the levels of all of them.
    INVALID: ClassVar[Any]
    REJECTED: ClassVar[Any]
    RETRY: ClassVar[Any]
    ERROR: ClassVar[Any]
    LEVELS: ClassVar[Mapping[Any, int]]
    # Valid messages refused for good, parked as `rejected`: (error type, `kind` on invalid), the first match wins.
    PARKED: ClassVar[tuple[tuple[type[Exception], str], ...]] = ()
    # Where a parked message came from when the delivery does not say (None: the outbox's default).
    PARK_SUBSCRIPTION: ClassVar[str | None] = None

    def __init__(self, outbox: InvalidOutbox, log: Logger) -> None:
        self.outbox = outbox
        self.log = log
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._parked = tuple(error for error, _kind in self.PARKED)

    def run(self, event_data: Any, progress: Progress[R], work: Callable[[Any, Progress[R]], None]) -> R:
        """`work` does the delivery and sets the result's status; returning means ack, raising retry."""
        start = time.perf_counter()
        try:
            try:
                work(event_data, progress)
            except InvalidEventError as exc:
                self._park(event_data, progress, self.INVALID, exc.reason, exc.kind)
            except self._parked as exc:
                self._park(event_data, progress, self.REJECTED, str(exc), self._kind(exc))
        except RetryableError as exc:  # the work, or parking on `invalid`
            self._finish(progress.result, self.RETRY, start, f"{type(exc).__name__}: {exc}")
            raise
        except Exception as exc:
            self._finish(progress.result, self.ERROR, start, f"{type(exc).__name__}: {exc}", exc_info=True)
            raise
        return self._finish(progress.result, progress.result.status, start)

    def _kind(self, exc: Exception) -> str:
        """The error's own `kind` when it carries one (txguard.contract.errors.LabelRefusedError), else its row."""
        own = getattr(exc, "kind", None)
        return own if isinstance(own, str) else next(kind for error, kind in self.PARKED if isinstance(exc, error))

    def _park(self, event_data: Any, progress: Progress[R], status: StrEnum, reason: str, kind: str) -> None:
        """Publish the original bytes to `invalid` (a failure here is retryable: not acked)."""
        delivery = progress.delivery
        raw = delivery.raw if delivery is not None else original_bytes(event_data)
        subscription = (delivery.subscription if delivery else None) or self.PARK_SUBSCRIPTION
        t = time.perf_counter()
        self.outbox.publish_invalid(raw, reason, kind, delivery.message_id if delivery else "", subscription,
                                    trace=progress.trace)
        progress.result.timings["publish_ms"] = ms_since(t)
        progress.result.status = status
        progress.result.reason = f"{kind}: {reason}"

    def _finish(self, result: R, status: StrEnum, start: float, reason: str | None = None,
                exc_info: bool = False) -> R:
        result.status = status
        if reason is not None:
            result.reason = reason
        result.timings["total_ms"] = ms_since(start)
        with self._lock:
            self.counts[status.value] += 1
            count = self.counts[status.value]
            self.count_more(result)
        message, fields = self.log_line(result, count)
        self.log.log(self.LEVELS[status], message, extra=fields, exc_info=exc_info)
        return result

    # What each handler says ----------------------------------------------------------------------
    def count_more(self, result: R) -> None:
        """Counters beyond one per status (under the handler's lock)."""

    @abstractmethod
    def log_line(self, result: R, count: int) -> tuple[str, dict[str, Any]]:
        """The delivery's one log line: message and fields; `count`: deliveries with this status so far."""
