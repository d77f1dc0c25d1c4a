"""Embedded mode's Pub/Sub: the real google-cloud-pubsub client publishes to it; the pusher
delivers push bodies over HTTP, retries with backoff and dead-letters after max attempts."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from txguard.contract import names
from txguard.local.embedded import EmbeddedPubSub, Message, Pusher
from txguard.publisher import PubSubTransport, make_stream, publish_all

PROJECT = "txguard-embedded-test"


class Endpoint:
    """A push endpoint that fails the first `fail_first` deliveries of each message id, or always."""

    def __init__(self, fail_first: int = 0, always_fail: frozenset[str] = frozenset()) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.bodies: list[dict] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def handle(self, body: dict) -> int:
        with self.lock:
            self.bodies.append(body)
            mid = body["message"]["messageId"]
            self.seen[mid] = self.seen.get(mid, 0) + 1
            data = base64.b64decode(body["message"]["data"])
            if data in self.always_fail or self.seen[mid] <= self.fail_first:
                return 500
            return 204


@pytest.fixture
def endpoint_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, Endpoint]]:
    endpoint: Endpoint = request.param

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(endpoint.handle(body))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", endpoint
    server.shutdown()
    server.server_close()


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("endpoint_server", [Endpoint(fail_first=1)], indirect=True)
def test_client_publishes_and_pusher_redelivers(endpoint_server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, endpoint = endpoint_server
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    dead: list[Message] = []
    pusher = Pusher(url, PROJECT, spec, lambda m, n: dead.append(m), concurrency=4, backoff_scale=0.01)
    broker = EmbeddedPubSub(PROJECT, {names.TRANSACTIONS_TOPIC: pusher.submit}).start()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", broker.host)
    messages = make_stream(40, "fraud", seed=2, id_prefix="emb")
    transport = PubSubTransport(PROJECT, names.TRANSACTIONS_TOPIC, max_latency_s=0.005)
    try:
        stats = publish_all(messages, transport)
        _wait(lambda: pusher.outstanding() == 0)
    finally:
        transport.close()
        pusher.stop()
        broker.stop()
    assert stats.published == 40
    assert pusher.stats.delivered == 40 and pusher.stats.failures == 40 and not dead
    assert all(count == 2 for count in endpoint.seen.values())
    first = endpoint.bodies[0]
    assert first["subscription"] == f"projects/{PROJECT}/subscriptions/{spec.name}"
    assert {"data", "attributes", "messageId", "publishTime", "orderingKey"} <= set(first["message"])
    assert {b["deliveryAttempt"] for b in endpoint.bodies} == {1, 2}
    received = {base64.b64decode(b["message"]["data"]) for b in endpoint.bodies}
    assert received == {m.data for m in messages}


@pytest.mark.parametrize("endpoint_server", [Endpoint(always_fail=frozenset({b"poison"}))], indirect=True)
def test_poison_message_is_dead_lettered_after_max_attempts(endpoint_server) -> None:
    url, endpoint = endpoint_server
    spec = names.SubscriptionSpec("s", "t", dead_letter_topic="dl", max_delivery_attempts=5, min_backoff_seconds=1,
                                  max_backoff_seconds=4)
    dead: list[tuple[Message, int]] = []
    pusher = Pusher(url, PROJECT, spec, lambda m, n: dead.append((m, n)), concurrency=2, backoff_scale=0.01)
    assert [pusher.backoff(a) for a in range(1, 5)] == pytest.approx([0.01, 0.02, 0.04, 0.04])
    broker = EmbeddedPubSub(PROJECT, {"t": pusher.submit})
    broker.publish("projects/p/topics/t", b"poison", {})
    broker.publish("projects/p/topics/t", b"fine", {})
    try:
        _wait(lambda: pusher.outstanding() == 0)
    finally:
        pusher.stop()
    assert [(m.data, n) for m, n in dead] == [(b"poison", 5)]
    assert pusher.stats.delivered == 1 and pusher.dead_lettered == 1
    assert sum(endpoint.seen.values()) == 6


@pytest.mark.parametrize("endpoint_server", [Endpoint()], indirect=True)
def test_ordered_subscription_pushes_one_message_per_key_and_waits_for_a_retry(endpoint_server) -> None:
    url, endpoint = endpoint_server
    spec = names.SubscriptionSpec("s", "t", dead_letter_topic="dl", max_delivery_attempts=5, min_backoff_seconds=1,
                                  max_backoff_seconds=1, enable_message_ordering=True)
    endpoint.fail_first = 0
    endpoint.always_fail = frozenset()
    first_of_a: list[str] = []

    def submit(message: Message) -> None:
        if message.data == b"a0":
            first_of_a.append(message.message_id)
        pusher.submit(message)

    pusher = Pusher(url, PROJECT, spec, lambda m, n: None, concurrency=4, backoff_scale=0.2)
    broker = EmbeddedPubSub(PROJECT, {"t": submit})
    original = endpoint.handle

    def handle(body: dict) -> int:  # a0 fails twice
        status = original(body)
        return 503 if body["message"]["messageId"] in first_of_a and endpoint.seen[first_of_a[0]] <= 2 else status

    endpoint.handle = handle  # type: ignore[method-assign]
    try:
        for i in range(4):
            broker.publish("projects/p/topics/t", f"a{i}".encode(), {}, ordering_key="A")
            broker.publish("projects/p/topics/t", f"b{i}".encode(), {}, ordering_key="B")
        _wait(lambda: pusher.outstanding() == 0)
    finally:
        pusher.stop()
    order = [base64.b64decode(b["message"]["data"]).decode() for b in endpoint.bodies]
    assert [d for d in order if d.startswith("a")] == ["a0", "a0", "a0", "a1", "a2", "a3"]
    assert [d for d in order if d.startswith("b")] == ["b0", "b1", "b2", "b3"]
    assert order.index("b3") < order.index("a1")  # B is not held back by A's retries
    assert pusher.dispatcher.stats.held_max >= 3


def test_unknown_topic_is_refused() -> None:
    broker = EmbeddedPubSub(PROJECT, {})
    with pytest.raises(KeyError):
        broker.publish("projects/p/topics/nope", b"x", {})


def test_a_pull_subscription_hands_out_leases_and_takes_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`txguard decisions --follow` against `local up --embedded`: the real SubscriberClient pulls
    `decisions-tail`, acks what it printed, and an unacked message comes back after its lease."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    broker = EmbeddedPubSub(PROJECT, {names.DECISIONS_TOPIC: lambda m: None},
                            pulls={"decisions-tail": names.DECISIONS_TOPIC}).start()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", broker.host)
    _, buffer = broker.pulls["decisions-tail"]
    buffer.ack_deadline_s = 0.3
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(PROJECT, "decisions-tail")
    try:
        for i in range(5):
            broker.publish(f"projects/{PROJECT}/topics/{names.DECISIONS_TOPIC}", f"d{i}".encode(), {"k": str(i)})
        first = subscriber.pull(request={"subscription": path, "max_messages": 3}, timeout=10).received_messages
        assert [m.message.data for m in first] == [b"d0", b"d1", b"d2"] and first[0].message.attributes["k"] == "0"
        subscriber.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in first[:2]]})
        rest = subscriber.pull(request={"subscription": path, "max_messages": 10}, timeout=10).received_messages
        assert [m.message.data for m in rest] == [b"d3", b"d4"]
        subscriber.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in rest]})
        time.sleep(0.5)  # d2's lease ran out without an ack: it is handed out again
        again = subscriber.pull(request={"subscription": path, "max_messages": 10}, timeout=10).received_messages
        assert [m.message.data for m in again] == [b"d2"]
        with pytest.raises(gexc.NotFound):
            subscriber.pull(request={"subscription": subscriber.subscription_path(PROJECT, "nope"),
                                     "max_messages": 1}, timeout=10)
    finally:
        subscriber.close()
        broker.stop()
