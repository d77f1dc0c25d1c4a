"""Embedded mode's Pub/Sub, for machines without gcloud: Publish over gRPC plus a push loop.

`EmbeddedPubSub` answers the one RPC publishers use (`google.pubsub.v1.Publisher/Publish`) on a
loopback port, so the unchanged google-cloud-pubsub clients -- the `txguard publish` transport
and the enrichment function's outbox -- reach it through PUBSUB_EMULATOR_HOST. Each topic's
messages go to a handler: `transactions` to the `Pusher`, the others to the stack's ledgers.
It also keeps the pull subscriptions given as `pulls` (`decisions-tail`: `txguard decisions` in
another shell) as bounded buffers behind synchronous `Pull` and `Acknowledge`: a pulled message
is leased for the ack deadline and handed out again if not acked by then.

`Pusher` does what a Pub/Sub push subscription does: POST the push body (txguard.local.push,
with `deliveryAttempt` and `orderingKey`) to the endpoint, one message per ordering key at a time
when the subscription orders; a 2xx acks; anything else (or no answer within the ack deadline) is
redelivered after an exponential backoff between the subscription's min and max backoff, and
after `max_delivery_attempts` the message is forwarded to the dead-letter topic. Settings come
from the same `SubscriptionSpec` the emulator and Pulumi use.
"""

from __future__ import annotations

import collections
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


class PullBuffer:
    """One pull subscription: the newest `capacity` messages, leased on pull until acked."""

    def __init__(self, capacity: int = 10_000, ack_deadline_s: float = 60.0) -> None:
        self.ack_deadline_s = ack_deadline_s
        self.dropped = 0  # oldest messages pushed out of a full buffer
        self._ready: collections.deque[Message] = collections.deque(maxlen=capacity)
        self._leased: dict[str, tuple[Message, float]] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()

    def add(self, message: Message) -> None:
        with self._cond:
            if len(self._ready) == self._ready.maxlen:
                self.dropped += 1
            self._ready.append(message)
            self._cond.notify_all()

    def pull(self, max_messages: int, wait_s: float = 1.0) -> list[tuple[str, Message]]:
        with self._cond:
            now = time.monotonic()
            for ack_id, (message, deadline) in list(self._leased.items()):
                if deadline <= now:  # not acked in time: handed out again
                    del self._leased[ack_id]
                    self._ready.appendleft(message)
            if not self._ready:
                self._cond.wait(wait_s)
            out = []
            while self._ready and len(out) < max_messages:
                message = self._ready.popleft()
                ack_id = str(next(self._ids))
                self._leased[ack_id] = (message, time.monotonic() + self.ack_deadline_s)
                out.append((ack_id, message))
            return out

    def ack(self, ack_ids: list[str]) -> None:
        with self._cond:
            for ack_id in ack_ids:
                self._leased.pop(ack_id, None)


class EmbeddedPubSub:
    """Publish (every topic, to its handler) and synchronous Pull (the `pulls` subscriptions) on
    127.0.0.1:port."""

    def __init__(self, project: str, handlers: Mapping[str, Handler], port: int = 0, workers: int = 16,
                 pulls: Mapping[str, str] | None = None) -> None:
        """`pulls`: subscription -> topic, each kept as a PullBuffer of that topic's messages."""
        self.project = project
        self.handlers = dict(handlers)
        self.pulls = {name: (topic, PullBuffer()) for name, topic in (pulls or {}).items()}
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
        message = Message(name, data, dict(attributes), message_id, stamp, ordering_key)
        handler(message)
        for topic, buffer in self.pulls.values():
            if topic == name:
                buffer.add(message)
        return message_id

    def _buffer(self, subscription: str, context) -> PullBuffer:  # noqa: ANN001 - grpc's context
        import grpc

        name = subscription.rsplit("/", 1)[-1]
        if name not in self.pulls:
            context.abort(grpc.StatusCode.NOT_FOUND, f"subscription {name!r} not found (embedded Pub/Sub keeps "
                          f"{sorted(self.pulls) or 'none'})")
        return self.pulls[name][1]

    def _pull_rpc(self, request, context):  # noqa: ANN001 - grpc's signature
        from google.protobuf.timestamp_pb2 import Timestamp
        from google.pubsub_v1.types import PubsubMessage, PullResponse, ReceivedMessage

        received = []
        for ack_id, m in self._buffer(request.subscription, context).pull(max(1, request.max_messages)):
            stamp = Timestamp()
            stamp.FromJsonString(m.publish_time)
            received.append(ReceivedMessage(ack_id=ack_id, message=PubsubMessage(
                data=m.data, attributes=m.attributes, message_id=m.message_id, publish_time=stamp,
                ordering_key=m.ordering_key)))
        return PullResponse(received_messages=received)

    def _ack_rpc(self, request, context):  # noqa: ANN001 - grpc's signature
        from google.protobuf.empty_pb2 import Empty

        self._buffer(request.subscription, context).ack(list(request.ack_ids))
        return Empty()

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
        from google.protobuf.empty_pb2 import Empty
        from google.pubsub_v1.types import AcknowledgeRequest, PullRequest, PullResponse

        subscriber = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Subscriber",
            {
                "Pull": grpc.unary_unary_rpc_method_handler(
                    self._pull_rpc, request_deserializer=PullRequest.deserialize,
                    response_serializer=PullResponse.serialize),
                "Acknowledge": grpc.unary_unary_rpc_method_handler(
                    self._ack_rpc, request_deserializer=AcknowledgeRequest.deserialize,
                    response_serializer=Empty.SerializeToString),
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers))
        self._server.add_generic_rpc_handlers((handler, subscriber))
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
