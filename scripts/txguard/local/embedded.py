"""Embedded mode's Pub/Sub, for machines without gcloud: Publish over gRPC plus a push loop.

`EmbeddedPubSub` answers the one RPC publishers use (`google.pubsub.v1.Publisher/Publish`) on a
loopback port, so the unchanged google-cloud-pubsub clients -- the `txguard publish` transport
and the enrichment function's outbox -- reach it through PUBSUB_EMULATOR_HOST. Each topic's
messages go to a handler: `transactions` to the `Pusher`, the others to the stack's ledgers.

`Pusher` does what a Pub/Sub push subscription does: POST the push body (txguard.local.push,
with `deliveryAttempt` and `orderingKey`) to the endpoint, one message per ordering key at a time
when the subscription orders; a 2xx acks; anything else (or no answer within the ack deadline) is
redelivered after an exponential backoff between the subscription's min and max backoff, and
after `max_delivery_attempts` the message is forwarded to the dead-letter topic. Settings come
from the same `SubscriptionSpec` the emulator and Pulumi use.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from txguard.contract import names
from txguard.local.push import Delivery, Dispatcher, PushStats


@dataclass(frozen=True)
class Message:
    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str  # RFC 3339, as Pub/Sub renders it
    ordering_key: str = ""


Handler = Callable[[Message], None]


class EmbeddedPubSub:
    """A Publish-only Pub/Sub on 127.0.0.1:port that hands every message to its topic's handler."""

    def __init__(self, project: str, handlers: Mapping[str, Handler], port: int = 0, workers: int = 16) -> None:
        self.project = project
        self.handlers = dict(handlers)
        self.port = port
        self.workers = workers
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._server = None
        self.counts: dict[str, int] = {}

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str = "") -> str:
        """Route one message (what the Publish RPC does for each message of a request)."""
        name = topic.rsplit("/", 1)[-1]
        handler = self.handlers.get(name)
        if handler is None:
            raise KeyError(f"topic {name!r} not found")
        with self._ids_lock:
            message_id = str(next(self._ids))
            self.counts[name] = self.counts.get(name, 0) + 1
        stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        handler(Message(name, data, dict(attributes), message_id, stamp, ordering_key))
        return message_id

    def _publish_rpc(self, request, context):  # noqa: ANN001 - grpc's signature
        import grpc
        from google.pubsub_v1.types import PublishResponse

        try:
            ids = [self.publish(request.topic, m.data, dict(m.attributes), m.ordering_key) for m in request.messages]
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return PublishResponse(message_ids=ids)

    def start(self) -> EmbeddedPubSub:
        import grpc
        from google.pubsub_v1.types import PublishRequest, PublishResponse

        handler = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self._publish_rpc,
                    request_deserializer=PublishRequest.deserialize,
                    response_serializer=PublishResponse.serialize,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait(5)
            self._server = None


class Pusher:
    """A push subscription: concurrent POSTs (one per ordering key when the spec orders),
    redelivery with backoff, dead-lettering (txguard.local.push does the POSTing)."""

    def __init__(
        self,
        endpoint: str,
        project: str,
        spec: names.SubscriptionSpec,
        dead_letter: Callable[[Message, int], None],
        concurrency: int = 8,
        backoff_scale: float = 1.0,
        ordering: bool | None = None,
    ) -> None:
        self.spec = spec
        self.subscription = f"projects/{project}/subscriptions/{spec.name}"
        self.dead_letter = dead_letter
        self.backoff_scale = backoff_scale
        self.dispatcher = Dispatcher(
            endpoint, self.subscription, self._done, connections=concurrency,
            max_attempts=spec.max_delivery_attempts if spec.dead_letter_topic else None,
            ordering=spec.enable_message_ordering if ordering is None else ordering,
            timeout_s=spec.ack_deadline_seconds)
        self.dead_lettered = 0
        self._lock = threading.Lock()
        self._delayed: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._outstanding = 0
        self._stopping = threading.Event()
        self._scheduler = threading.Thread(target=self._schedule, daemon=True, name="push-scheduler")
        self._scheduler.start()

    @property
    def stats(self) -> PushStats:
        return self.dispatcher.stats

    def submit(self, message: Message) -> None:
        with self._lock:
            self._outstanding += 1
        self.dispatcher.submit(Delivery(message.data, message.attributes, message.message_id, message.publish_time,
                                        message.ordering_key, attempt=1, token=message))

    def outstanding(self) -> int:
        """Messages not yet acked nor dead-lettered (queued, in flight, or waiting to be retried)."""
        with self._lock:
            return self._outstanding

    def backoff(self, attempt: int) -> float:
        """Seconds before delivery `attempt + 1`: doubling from min_backoff, capped at max_backoff."""
        delay = min(self.spec.max_backoff_seconds, self.spec.min_backoff_seconds * 2 ** (attempt - 1))
        return delay * self.backoff_scale

    def _done(self, d: Delivery, ok: bool, final: bool) -> None:
        if ok:
            with self._lock:
                self._outstanding -= 1
            return
        if final:
            self.dead_letter(d.token, d.attempt)  # type: ignore[arg-type]
            with self._lock:
                self.dead_lettered += 1
                self._outstanding -= 1
            return
        with self._wake:
            due = time.monotonic() + self.backoff(d.attempt)
            heapq.heappush(self._delayed, (due, next(self._seq), replace(d, attempt=d.attempt + 1)))
            self._wake.notify()

    def _schedule(self) -> None:
        with self._wake:
            while not self._stopping.is_set():
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, d = heapq.heappop(self._delayed)
                    self.dispatcher.submit(d)
                timeout = self._delayed[0][0] - now if self._delayed else 0.5
                self._wake.wait(timeout=min(0.5, max(0.0, timeout)))

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        self._scheduler.join(timeout=5)
        self.dispatcher.stop()
