"""Feeding the console: its own subscriptions -> live counts and the review queue.

`Intake` turns one message into state: every decision counts in the live view, and a `review` or
`block` decision becomes a review item together with the transaction and features it was decided
on (the enrichment's processed record, read only). `SubscriptionReader` pulls the console's three
subscriptions (names.py) and acks a message only once `Intake` has handled it; a message whose
handling failed (queue store down) is left unacked and Pub/Sub redelivers it after the ack deadline.
Synchronous pull, as txguard.local's consumers and for the same reason: nothing stays leased when
the console stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging import Logger
from typing import Any

from pydantic import ValidationError

from txguard.console.items import QUEUED_OUTCOMES, ReviewItem
from txguard.console.live_stats import LiveStats
from txguard.console.review_queue import ReviewQueue
from txguard.contract import names
from txguard.contract.logs import get_logger
from txguard.contract.models import DECISION_ADAPTER
from txguard.enrichment.history import HistoryStore

Handler = Callable[[bytes, dict[str, str], float], None]
PULL_TIMEOUT_S = 2.0
MAX_MESSAGES = 200
FAILING_AFTER_S = 30.0  # pulls failing this long in a row: /healthz answers 503 (the console sees nothing new)


class Intake:
    def __init__(self, queue: ReviewQueue, history: HistoryStore, stats: LiveStats, log: Logger | None = None) -> None:
        self.queue = queue
        self.history = history
        self.stats = stats
        self.log = log or get_logger("console")
        self.queued = 0
        self.malformed = 0

    def on_decision(self, data: bytes, attributes: dict[str, str], published_s: float) -> None:
        """One message of `decisions`; raises (so it is not acked) only if the queue or history is down."""
        try:
            decision = DECISION_ADAPTER.validate_json(data)
        except ValidationError as exc:
            # Our own pipeline wrote it: a bug to look at, not something a redelivery fixes.
            self.malformed += 1
            self.log.error("malformed decision ignored: %s", exc.errors()[0].get("msg"),
                           extra={"data": data[:500].decode("utf-8", "replace")})
            return
        if decision.outcome in QUEUED_OUTCOMES:
            enriched = self.history.enriched(decision.transaction_id)
            item = ReviewItem.of(decision, datetime.fromtimestamp(published_s, UTC), enriched)
            if self.queue.add(item):
                self.queued += 1
                self.log.info("queued %s", decision.transaction_id, extra={
                    "transaction_id": decision.transaction_id, "outcome": decision.outcome.value,
                    "model_version": decision.model_version, "details": enriched is not None})
        self.stats.decision(decision.outcome.value, published_s, latency_ms(attributes, published_s))

    def on_invalid(self, data: bytes, attributes: dict[str, str], published_s: float) -> None:
        del data, attributes
        self.stats.invalid(published_s)

    def on_dead_letter(self, data: bytes, attributes: dict[str, str], published_s: float) -> None:
        del data, attributes
        self.stats.dead_letter(published_s)

    def handlers(self) -> dict[str, Handler]:
        """The console's subscriptions and what handles each."""
        return {
            names.DECISIONS_CONSOLE_SUBSCRIPTION: self.on_decision,
            names.INVALID_CONSOLE_SUBSCRIPTION: self.on_invalid,
            names.DEAD_LETTER_CONSOLE_SUBSCRIPTION: self.on_dead_letter,
        }


def latency_ms(attributes: dict[str, str], published_s: float) -> float | None:
    """End to end: the decision's publish time minus the publisher's `published_at` (epoch ms)."""
    raw = attributes.get(names.ATTR_PUBLISHED_AT)
    try:
        return published_s * 1000.0 - float(raw) if raw else None
    except ValueError:
        return None


class SubscriptionReader:
    """One thread per subscription: pull, hand each message to its handler, ack what was handled."""

    def __init__(self, project: str, handlers: dict[str, Handler], log: Logger | None = None,
                 max_messages: int = MAX_MESSAGES, thread_prefix: str = "console") -> None:
        self.project = project
        self.handlers = handlers
        self.max_messages = max_messages
        self.thread_prefix = thread_prefix
        self.log = log or get_logger("console")
        self.errors: dict[str, int] = {}
        self.failing_since: dict[str, float] = {}  # subscription -> monotonic time of its first failed pull in a row
        self.last_error: dict[str, str] = {}
        self._client: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> SubscriptionReader:
        from google.cloud import pubsub_v1

        self._client = pubsub_v1.SubscriberClient()
        for subscription, handler in self.handlers.items():
            path = self._client.subscription_path(self.project, subscription)
            thread = threading.Thread(target=self._loop, args=(path, handler), daemon=True,
                                      name=f"{self.thread_prefix}-{subscription}")
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _loop(self, path: str, handler: Handler) -> None:
        from google.api_core import exceptions as gexc

        while not self._stop.is_set():
            try:
                resp = self._client.pull(request={"subscription": path, "max_messages": self.max_messages},
                                         timeout=PULL_TIMEOUT_S)
            except gexc.DeadlineExceeded:
                self.failing_since.pop(path, None)
                continue  # an empty long poll
            except Exception as exc:  # noqa: BLE001 - keep reading; /healthz reports the errors
                self._count(type(exc).__name__)
                self.failing_since.setdefault(path, time.monotonic())
                self.last_error[path] = " ".join(str(getattr(exc, "message", None) or exc).split())[:200]
                self._stop.wait(1.0)
                continue
            self.failing_since.pop(path, None)
            done = []
            for rm in resp.received_messages:
                message = rm.message
                try:
                    handler(bytes(message.data), dict(message.attributes), message.publish_time.timestamp())
                except Exception as exc:  # noqa: BLE001 - left unacked: redelivered after the ack deadline
                    self._count(type(exc).__name__)
                    self.log.warning("not handled, will be redelivered: %s: %s", type(exc).__name__, exc,
                                     extra={"subscription": path, "message_id": message.message_id})
                    continue
                done.append(rm.ack_id)
            if done:
                try:
                    self._client.acknowledge(request={"subscription": path, "ack_ids": done})
                except Exception as exc:  # noqa: BLE001 - redelivered; the queue ignores a known item
                    self._count(type(exc).__name__)

    def failing(self, after_s: float = FAILING_AFTER_S) -> dict[str, str]:
        """Subscriptions whose pulls have failed for `after_s` or more in a row, with the last error."""
        now = time.monotonic()
        return {path.rsplit("/", 1)[-1]: self.last_error.get(path, "")
                for path, since in list(self.failing_since.items()) if now - since >= after_s}

    def _count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PULL_TIMEOUT_S + 5)
        self._threads.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
