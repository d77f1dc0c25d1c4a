"""Push deliveries the way Pub/Sub makes them: the push body, one message in flight per ordering key.

Both local delivery paths use this: the bridge from the Pub/Sub emulator (txguard.local.bridge)
and embedded mode's broker (txguard.local.embedded). A `Dispatcher` POSTs each `Delivery` to the
endpoint as exactly the body Pub/Sub push sends (`push_body`: `deliveryAttempt` when the
subscription has a dead-letter policy, `orderingKey` when the message has one, both spellings of
the message id and publish time), with at most `connections` requests in flight. A 2xx (or 102)
is a success; any other status, a connection error or no answer within the ack deadline is a
failure, and the source decides what a failure means (nack and redeliver, or dead-letter).

With `ordering`, messages of one ordering key go out one at a time, as Pub/Sub delivers an
ordered subscription: the next one is sent when the previous one succeeded, or when it failed
for the last time (`final`: it goes to the dead-letter topic and releases its key). A failure
that will be retried blocks its key until that message comes back (`submit` again with the same
message id); later messages of the key wait meanwhile (`held`), however long the backoff.

`FaultPlan` fails a share of deliveries on purpose, two ways a real delivery fails: refused before
reaching the function (a 503 from the front end) or processed and its answer lost (the function
acted, Pub/Sub never heard back); `FailFirst` refuses the first attempts of chosen messages.
`txguard reliability` and `txguard bench ordering` use them; they are off otherwise.
"""

from __future__ import annotations

import base64
import queue
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

REFUSED = "refused"  # never posted: answered as a 503 would be
ANSWER_LOST = "answer_lost"  # posted and processed, the answer dropped


@dataclass
class Delivery:
    """One delivery attempt of one message."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str  # RFC 3339, as Pub/Sub renders it
    ordering_key: str = ""
    attempt: int = 1  # deliveryAttempt: 1 on the first delivery
    token: object = None  # the source's handle on it (an ack id, an embedded message)


def push_body(d: Delivery, subscription: str, dead_letter_policy: bool) -> dict[str, object]:
    """The JSON body of a Pub/Sub push request (docs: "Receive messages using push")."""
    message: dict[str, object] = {
        "data": base64.b64encode(d.data).decode(),
        "attributes": d.attributes,
        "messageId": d.message_id,
        "message_id": d.message_id,
        "publishTime": d.publish_time,
        "publish_time": d.publish_time,
    }
    if d.ordering_key:
        message["orderingKey"] = d.ordering_key
    body: dict[str, object] = {"message": message, "subscription": subscription}
    if dead_letter_policy:
        body["deliveryAttempt"] = d.attempt
    return body


class Faults(Protocol):
    def draw(self, d: Delivery) -> str | None:
        """None to deliver normally, or how this delivery fails (REFUSED, ANSWER_LOST)."""
        ...


@dataclass
class FaultPlan:
    """Fail `share` of the deliveries at random, half refused, half with their answer lost."""

    share: float
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ValueError(f"fault share must be in [0, 1), got {self.share}")
        self._rng = random.Random(self.seed)

    def draw(self, d: Delivery | None = None) -> str | None:
        del d  # any delivery, at random
        with self._lock:
            if self._rng.random() >= self.share:
                return None
            return REFUSED if self._rng.random() < 0.5 else ANSWER_LOST


@dataclass
class FailFirst:
    """Refuse the first `attempts` delivery attempts of the messages `chosen` picks."""

    chosen: Callable[[Delivery], bool]
    attempts: int

    def draw(self, d: Delivery) -> str | None:
        return REFUSED if d.attempt <= self.attempts and self.chosen(d) else None


@dataclass
class PushStats:
    attempts: int = 0
    delivered: int = 0
    failures: int = 0
    injected: int = 0
    held_max: int = 0  # most messages ever waiting behind their key
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"attempts": self.attempts, "delivered": self.delivered, "failures": self.failures,
                "injected": self.injected, "held_max": self.held_max, "statuses": dict(self.statuses)}


@dataclass
class _Key:
    active: str | None = None  # message id in flight
    blocked_on: str | None = None  # failed, will be redelivered: the key waits for it
    held: deque[Delivery] = field(default_factory=deque)


Done = Callable[[Delivery, bool, bool], None]  # (delivery, succeeded, final failure)


class Dispatcher:
    def __init__(self, endpoint: str, subscription: str, on_done: Done, *, max_attempts: int | None,
                 connections: int = 64, ordering: bool = True, timeout_s: float = 60.0,
                 faults: Faults | None = None) -> None:
        """`max_attempts`: the dead-letter policy's (None: no policy, no deliveryAttempt, never final)."""
        self.endpoint = endpoint
        self.subscription = subscription
        self.on_done = on_done
        self.max_attempts = max_attempts
        self.ordering = ordering
        self.timeout_s = timeout_s
        self.faults = faults
        self.stats = PushStats()
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._held = 0
        self._stopping = threading.Event()
        self._abandoned: list[Delivery] = []  # taken from the queue after stop(): never posted
        self._ready: queue.Queue[Delivery | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"push-{i}")
                         for i in range(connections)]
        for t in self._threads:
            t.start()

    # what the source calls ---------------------------------------------------------------------
    def submit(self, d: Delivery) -> None:
        """A message to deliver: new, or a redelivery of one that failed (same message id)."""
        if not self.ordering or not d.ordering_key:
            self._ready.put(d)
            return
        with self._lock:
            key = self._keys.setdefault(d.ordering_key, _Key())
            if key.active is None and key.blocked_on in (None, d.message_id):
                key.blocked_on, key.active = None, d.message_id
                self._ready.put(d)
                return
            for i, waiting in enumerate(key.held):  # redelivered while waiting: keep the newest handle
                if waiting.message_id == d.message_id:
                    key.held[i] = d
                    return
            if d.message_id == key.active:  # redelivered while in flight: it goes first
                key.held.appendleft(d)
            else:
                key.held.append(d)
            self._held += 1
            self.stats.held_max = max(self.stats.held_max, self._held)

    def held(self) -> int:
        with self._lock:
            return self._held

    def held_tokens(self) -> list[object]:
        """The source's handles on every message waiting (behind its key, or never posted after stop)."""
        with self._lock:
            return [d.token for key in self._keys.values() for d in key.held] + [d.token for d in self._abandoned]

    def stop(self) -> None:
        """Finish the requests in flight; what is still queued is not posted (see held_tokens)."""
        self._stopping.set()
        for _ in self._threads:
            self._ready.put(None)
        for t in self._threads:
            t.join(timeout=self.timeout_s + 5)

    # delivering --------------------------------------------------------------------------------
    def _work(self) -> None:
        import requests

        session = requests.Session()
        while True:
            d = self._ready.get()
            if d is None:
                session.close()
                return
            if self._stopping.is_set():
                with self._lock:
                    self._abandoned.append(d)
                continue
            fault = self.faults.draw(d) if self.faults is not None else None
            status, ok = self._post(session, d) if fault != REFUSED else ("503", False)
            if fault is not None:
                status, ok = f"injected {fault} ({status})", False
            final = not ok and self.max_attempts is not None and d.attempt >= self.max_attempts
            with self._lock:
                s = self.stats
                s.attempts += 1
                s.statuses[status] = s.statuses.get(status, 0) + 1
                s.delivered += ok
                s.failures += not ok
                s.injected += fault is not None
                self._next(d, ok, final)  # before on_done: a nack must not overtake the key's state
            self.on_done(d, ok, final)

    def _post(self, session: object, d: Delivery) -> tuple[str, bool]:
        import requests

        body = push_body(d, self.subscription, self.max_attempts is not None)
        try:
            resp = session.post(self.endpoint, json=body, timeout=self.timeout_s)  # type: ignore[attr-defined]
        except requests.RequestException as exc:
            return type(exc).__name__, False
        except Exception as exc:  # noqa: BLE001 - a failed delivery, never a dead worker holding its key
            return f"unexpected {type(exc).__name__}", False
        return str(resp.status_code), 200 <= resp.status_code < 300 or resp.status_code == 102

    def _next(self, d: Delivery, ok: bool, final: bool) -> None:
        """Under the lock: the key's next message, unless this one failed and will come back."""
        if not self.ordering or not d.ordering_key:
            return
        key = self._keys.get(d.ordering_key)
        if key is None or key.active != d.message_id:
            return
        key.active = None
        if not ok and not final:
            for i, again in enumerate(key.held):  # already redelivered (its deadline passed in flight)
                if again.message_id == d.message_id:
                    del key.held[i]
                    self._held -= 1
                    key.active = again.message_id
                    self._ready.put(again)
                    return
            key.blocked_on = d.message_id
            return
        if key.held:
            nxt = key.held.popleft()
            self._held -= 1
            key.active = nxt.message_id
            self._ready.put(nxt)
        else:
            del self._keys[d.ordering_key]
