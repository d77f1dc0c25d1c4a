"""The publish loop: paced sends, bounded in-flight, stats, and a callback per message.

`on_sent(message, published_at_ms)` runs before the publish call, so a ledger knows when a
transaction left even if its decision comes back before the publish future resolves.
`published_at` (epoch ms, names.ATTR_PUBLISHED_AT) rides as an attribute for end-to-end latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from txguard.contract import names
from txguard.publisher.messages import Outgoing
from txguard.publisher.pacing import Pacer
from txguard.publisher.transport import Transport


@dataclass
class PublishStats:
    attempted: int = 0
    published: int = 0  # confirmed by the transport
    failed: int = 0
    invalid_injected: int = 0
    elapsed_s: float = 0.0  # until every publish was confirmed
    send_seconds: float = 0.0  # until the last message was handed to the transport (the paced part)
    errors: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None:
                self.published += 1
            else:
                self.failed += 1
                key = type(exc).__name__
                self.errors[key] = self.errors.get(key, 0) + 1

    def as_dict(self) -> dict[str, object]:
        rate = self.attempted / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return {
            "attempted": self.attempted,
            "published": self.published,
            "failed": self.failed,
            "invalid_injected": self.invalid_injected,
            "elapsed_s": round(self.elapsed_s, 3),
            "send_seconds": round(self.send_seconds, 3),
            "rate_tps": round(rate, 1),
            "errors": dict(self.errors),
        }


def publish_all(
    messages: Iterable[Outgoing],
    transport: Transport,
    pacer: Pacer | None = None,
    *,
    duration_s: float | None = None,
    max_in_flight: int = 2000,
    on_sent: Callable[[Outgoing, int], None] | None = None,
    on_done: Callable[[Outgoing, BaseException | None], None] | None = None,
    stop: threading.Event | None = None,
    flush_timeout_s: float = 120.0,
) -> PublishStats:
    """Publish every message (until `duration_s` or `stop`), wait for every confirmation, return stats."""
    pacer = pacer or Pacer()
    stats = PublishStats()
    slots = threading.BoundedSemaphore(max_in_flight)
    pending: set[object] = set()
    pending_lock = threading.Lock()
    all_done = threading.Condition(pending_lock)
    started = time.monotonic()

    def done(message: Outgoing, future: object) -> None:
        exc = future.exception()  # type: ignore[attr-defined]
        stats.record(exc)
        if on_done is not None:
            on_done(message, exc)
        slots.release()
        with all_done:
            pending.discard(future)
            all_done.notify_all()

    for index, message in enumerate(messages):
        if stop is not None and stop.is_set():
            break
        if duration_s is not None and time.monotonic() - started >= duration_s:
            break
        pacer.wait(index, message.event_time)
        slots.acquire()
        published_at = int(time.time() * 1000)
        attributes = {names.ATTR_PUBLISHED_AT: str(published_at)}
        if message.transaction_id:
            attributes[names.ATTR_TRANSACTION_ID] = message.transaction_id
        if on_sent is not None:
            on_sent(message, published_at)
        stats.attempted += 1
        # Made invalid on purpose (corrupt); a replayed file's own bad rows are not "injected".
        stats.invalid_injected += 0 if message.expected_valid or message.problem is not None else 1
        try:
            future = transport.publish(message.data, attributes, message.ordering_key)
        except Exception as exc:  # noqa: BLE001 - a refused publish is a counted failure, not a crash
            stats.record(exc)
            slots.release()
            if on_done is not None:
                on_done(message, exc)
            continue
        with pending_lock:
            pending.add(future)
        future.add_done_callback(lambda f, m=message: done(m, f))

    stats.send_seconds = time.monotonic() - started
    deadline = time.monotonic() + flush_timeout_s
    with all_done:
        while pending and time.monotonic() < deadline:
            all_done.wait(timeout=0.2)
    stats.elapsed_s = time.monotonic() - started
    return stats
