"""Production-like push from the Pub/Sub emulator: pull with flow control, POST the push body, ack or nack.

The emulator's own push has two synchronous loops per subscription (~45 tx/s at 44 ms per
message), omits `deliveryAttempt` and `orderingKey` from the body, stalls for good with a retry
policy when several pushes fail at once, and stops delivering the whole subscription after the
first dead letter when ordering is on. Production's push opens a window of thousands of
outstanding messages. The bridge does what production does, on the emulator's pull API:

- pulls the subscription (created without a push endpoint) while fewer than `window` messages are
  outstanding (pulled, not yet acked or nacked): flow control, like production's push window;
- POSTs each message to the function as the push body, `connections` requests at a time, one per
  ordering key when the subscription orders (txguard.local.push.Dispatcher);
- acks on 2xx; otherwise nacks (ack deadline 0), so the emulator's redelivery, its
  `deliveryAttempt` count and its dead-letter policy still decide what happens next. The nack is
  sent after the subscription's backoff for that attempt (min_backoff doubling up to
  max_backoff, as production's retry policy spaces redeliveries). The emulator's subscription
  carries no retry policy (txguard.local.topology), so it redelivers a nacked message at once.
  With one, the emulator parks each nack after the first attempt in its backoff scheduler: about a
  second at first whatever production's policy says (10 attempts of 50 messages nacked together
  were all dead-lettered within ~30 s instead of ~4 minutes), added to the bridge's backoff; and a
  message parked twice (its lease lapsing while it waits beside another under the same due time)
  makes that scheduler's periodic task fail for good, after which no parked message of the
  subscription is redelivered again: a wallet's key then stays blocked behind it
  (docs/reliability.md);
- extends the lease of every outstanding message (the client libraries' lease management): a
  message waiting behind its key has not been pushed yet and must not expire meanwhile.

Ordering on the emulator: a subscription with both ordering and a dead-letter policy loses its
dead letters and then delivers nothing more (measured; txguard.local.topology), so the emulator
subscription is created without ordering and the bridge orders by key itself: a failed message
blocks its key until the emulator redelivers it (and it succeeds) or dead-letters it.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Any

from txguard.contract import names
from txguard.local.push import Delivery, Dispatcher, Faults

PULL_TIMEOUT_S = 2.0
FLUSH_EVERY_S = 0.02


class PushBridge:
    def __init__(self, project: str, spec: names.SubscriptionSpec, endpoint: str, *, window: int = 1000,
                 connections: int = 64, ordering: bool | None = None, pull_batch: int = 500) -> None:
        self.spec = spec
        self.path = f"projects/{project}/subscriptions/{spec.name}"
        self.window = window
        self.pull_batch = pull_batch
        self.dispatcher = Dispatcher(
            endpoint, self.path, self._done, connections=connections,
            max_attempts=spec.max_delivery_attempts if spec.dead_letter_topic else None,
            ordering=spec.enable_message_ordering if ordering is None else ordering,
            timeout_s=spec.ack_deadline_seconds)
        self.stats: dict[str, Any] = {"pulled": 0, "acked": 0, "nacked": 0, "lease_extensions": 0, "errors": {}}
        self._client: Any = None
        self._lock = threading.Condition()
        self._outstanding: set[str] = set()  # ack ids pulled and not yet acked or nacked
        self._acks: list[str] = []
        self._nacks: list[str] = []
        self._backing_off: list[tuple[float, str]] = []  # (due, ack id): failed, nacked when due
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def ordering(self) -> bool:
        return self.dispatcher.ordering

    @property
    def faults(self) -> Faults | None:
        return self.dispatcher.faults

    @faults.setter
    def faults(self, plan: Faults | None) -> None:
        self.dispatcher.faults = plan

    def start(self) -> PushBridge:
        from google.cloud import pubsub_v1

        self._client = pubsub_v1.SubscriberClient()
        for target, name in ((self._pull_loop, "pull"), (self._flush_loop, "acks"), (self._lease_loop, "leases")):
            thread = threading.Thread(target=target, daemon=True, name=f"bridge-{name}")
            thread.start()
            self._threads.append(thread)
        return self

    def outstanding(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def summary(self) -> dict[str, Any]:
        return {**self.dispatcher.stats.as_dict(), **self.stats, "window": self.window, "ordering": self.ordering}

    # pulling -----------------------------------------------------------------------------------
    def _pull_loop(self) -> None:
        from google.api_core import exceptions as gexc

        while not self._stop.is_set():
            with self._lock:
                while len(self._outstanding) >= self.window and not self._stop.is_set():
                    self._lock.wait(0.5)
                free = self.window - len(self._outstanding)
            if self._stop.is_set():
                return
            try:
                resp = self._client.pull(request={"subscription": self.path,
                                                  "max_messages": max(1, min(free, self.pull_batch))},
                                         timeout=PULL_TIMEOUT_S)
            except gexc.DeadlineExceeded:
                continue  # an empty long poll
            except Exception as exc:  # noqa: BLE001 - keep pulling; the summary counts it
                self._count(type(exc).__name__)
                time.sleep(0.2)
                continue
            with self._lock:
                self._outstanding.update(rm.ack_id for rm in resp.received_messages)
                self.stats["pulled"] += len(resp.received_messages)
            for rm in resp.received_messages:
                m = rm.message
                self.dispatcher.submit(Delivery(
                    bytes(m.data), dict(m.attributes), m.message_id, m.publish_time.rfc3339(), m.ordering_key,
                    attempt=rm.delivery_attempt or 1, token=rm.ack_id))

    def backoff(self, attempt: int) -> float:
        """Seconds between failed delivery `attempt` and the next: production's retry policy."""
        return float(min(self.spec.max_backoff_seconds, self.spec.min_backoff_seconds * 2 ** (attempt - 1)))

    def _done(self, d: Delivery, ok: bool, final: bool) -> None:
        with self._lock:
            if ok:
                self._acks.append(str(d.token))
            elif final:  # nacked at once: the emulator dead-letters it
                self._nacks.append(str(d.token))
            else:  # leased meanwhile like any outstanding message
                heapq.heappush(self._backing_off, (time.monotonic() + self.backoff(d.attempt), str(d.token)))

    # acks, nacks, leases -----------------------------------------------------------------------
    def _flush(self, everything: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            while self._backing_off and (everything or self._backing_off[0][0] <= now):
                self._nacks.append(heapq.heappop(self._backing_off)[1])
            acks, self._acks = self._acks, []
            nacks, self._nacks = self._nacks, []
        # Separately: a failed ack must not drop the nacks. Either way an unanswered message is
        # redelivered once its lease lapses (it is no longer extended).
        if acks:
            self._call(self._client.acknowledge, {"subscription": self.path, "ack_ids": acks})
        if nacks:
            self._call(self._client.modify_ack_deadline, {"subscription": self.path, "ack_ids": nacks,
                                                          "ack_deadline_seconds": 0})
        with self._lock:
            self.stats["acked"] += len(acks)
            self.stats["nacked"] += len(nacks)
            self._outstanding.difference_update(acks)
            self._outstanding.difference_update(nacks)
            self._lock.notify_all()

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            self._flush()

    def _lease_loop(self) -> None:
        period = max(1.0, self.spec.ack_deadline_seconds / 3)
        while not self._stop.wait(period):
            with self._lock:
                ack_ids = list(self._outstanding)
            for i in range(0, len(ack_ids), 1000):
                try:
                    self._client.modify_ack_deadline(request={
                        "subscription": self.path, "ack_ids": ack_ids[i:i + 1000],
                        "ack_deadline_seconds": self.spec.ack_deadline_seconds})
                    self.stats["lease_extensions"] += len(ack_ids[i:i + 1000])
                except Exception as exc:  # noqa: BLE001 - the next period tries again
                    self._count(type(exc).__name__)

    def _call(self, method: Any, request: dict[str, Any]) -> None:
        try:
            method(request=request)
        except Exception as exc:  # noqa: BLE001 - counted in the summary; see _flush
            self._count(type(exc).__name__)

    def _count(self, kind: str) -> None:
        errors = self.stats["errors"]
        errors[kind] = errors.get(kind, 0) + 1

    def stop(self) -> None:
        """Stop pulling, finish the requests in flight, and hand back what is still held (nack)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=PULL_TIMEOUT_S + 5)
        self.dispatcher.stop()
        with self._lock:
            self._nacks.extend(str(t) for t in self.dispatcher.held_tokens())
        if self._client is not None:
            self._flush(everything=True)
            self._client.close()
            self._client = None
