"""The push bridge against the real Pub/Sub emulator: ack on 2xx, nack otherwise, the emulator's
redelivery and dead-letter counting, one message in flight per ordering key, the window of
outstanding messages, leases of held messages, and the emulator's ordering + dead-letter trap
that makes the bridge order by key itself.

Each test has a project of its own on the session emulator, and a loopback endpoint whose answer
per delivery is decided by the test.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from txguard.contract import names
from txguard.local import emulators, topology
from txguard.local.bridge import PushBridge

pytestmark = pytest.mark.emulators

_projects = itertools.count()


@dataclass
class Push:
    data: str
    key: str
    attempt: int
    at: float
    body: dict


@dataclass
class Endpoint:
    """Answers each push with `rule(data, attempt)` (an HTTP status) after `delay_s`."""

    rule: Callable[[str, int], int] = lambda _data, _attempt: 204
    delay_s: float = 0.0
    pushes: list[Push] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: dict) -> int:
        data = base64.b64decode(body["message"]["data"]).decode()
        with self.lock:
            self.pushes.append(Push(data, body["message"].get("orderingKey", ""), body.get("deliveryAttempt", 0),
                                    time.monotonic(), body))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            return self.rule(data, body.get("deliveryAttempt", 0))
        finally:
            with self.lock:
                self.in_flight -= 1

    def of(self, key: str) -> list[Push]:
        with self.lock:
            return [p for p in self.pushes if p.key == key]


@pytest.fixture
def serve() -> Iterator[Callable[[Endpoint], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(endpoint: Endpoint) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(endpoint.handle(body))
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class Topic:
    project: str
    spec: names.SubscriptionSpec
    publisher: object
    subscriber: object

    def publish(self, items: list[tuple[str, str]]) -> None:
        """(data, ordering key) in order; the publisher orders per key, as txguard's does."""
        topic = f"projects/{self.project}/topics/{self.spec.topic}"
        futures = [self.publisher.publish(topic, data.encode(), ordering_key=key, source="test")  # type: ignore[attr-defined]
                   for data, key in items]
        for f in futures:
            f.result(timeout=30)

    def dead_letters(self, want: int, timeout_s: float = 30.0) -> list[tuple[str, dict[str, str]]]:
        path = f"projects/{self.project}/subscriptions/{self.spec.name}-dl"
        out: list[tuple[str, dict[str, str]]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            from google.api_core import exceptions as gexc

            try:
                resp = self.subscriber.pull(request={"subscription": path, "max_messages": 50}, timeout=2)  # type: ignore[attr-defined]
            except gexc.DeadlineExceeded:
                continue
            out += [(rm.message.data.decode(), dict(rm.message.attributes)) for rm in resp.received_messages]
            if resp.received_messages:
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": [  # type: ignore[attr-defined]
                    rm.ack_id for rm in resp.received_messages]})
        return out


@pytest.fixture
def make_topic(pubsub_emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Topic]]:
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.env_value)
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    subscriber = pubsub_v1.SubscriberClient()

    def make(emulator_ordering: bool = False, **settings: object) -> Topic:
        """A topic, its dead-letter topic and subscription, and a subscription like the push one."""
        project = f"txguard-bridge-{next(_projects)}"
        spec = names.SubscriptionSpec(
            "deliveries", "incoming", push_to="fn", dead_letter_topic="incoming-dl", enable_message_ordering=True,
            **{"max_delivery_attempts": 5, "min_backoff_seconds": 1, "max_backoff_seconds": 1, **settings})
        for topic in (spec.topic, spec.dead_letter_topic):
            publisher.create_topic(name=f"projects/{project}/topics/{topic}")
        subscriber.create_subscription(request={"name": f"projects/{project}/subscriptions/{spec.name}-dl",
                                                "topic": f"projects/{project}/topics/{spec.dead_letter_topic}"})
        request = topology.subscription_request(project, spec, {}, emulator=True, push=False)
        request["enable_message_ordering"] = emulator_ordering or request["enable_message_ordering"]
        subscriber.create_subscription(request=request)
        return Topic(project, spec, publisher, subscriber)

    yield make
    publisher.stop()
    subscriber.close()


def _bridge(topic: Topic, url: str, **kwargs: object) -> PushBridge:
    return PushBridge(topic.project, topic.spec, url, **kwargs).start()  # type: ignore[arg-type]


def _wait(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_acks_on_2xx_with_the_production_push_body(make_topic, serve) -> None:
    topic = make_topic()
    endpoint = Endpoint()
    bridge = _bridge(topic, serve(endpoint))
    try:
        topic.publish([(f"m{i}", f"w{i % 3}") for i in range(12)])
        _wait(lambda: bridge.stats["acked"] == 12)
        time.sleep(1.5)  # nothing comes back
    finally:
        bridge.stop()
    assert sorted(p.data for p in endpoint.pushes) == sorted(f"m{i}" for i in range(12))  # each once
    body = endpoint.pushes[0].body
    assert body["subscription"] == f"projects/{topic.project}/subscriptions/{topic.spec.name}"
    assert body["deliveryAttempt"] == 1
    message = body["message"]
    assert message["messageId"] == message["message_id"] and message["publishTime"] == message["publish_time"]
    assert message["orderingKey"].startswith("w") and message["attributes"] == {"source": "test"}
    assert bridge.outstanding() == 0 and bridge.stats["nacked"] == 0


def test_nacks_otherwise_and_the_emulator_redelivers_with_the_next_attempt(make_topic, serve) -> None:
    topic = make_topic(max_backoff_seconds=2)
    endpoint = Endpoint(rule=lambda data, attempt: 503 if data == "flaky" and attempt < 3 else 204)
    bridge = _bridge(topic, serve(endpoint))
    try:
        topic.publish([("flaky", "w1"), ("fine", "w2")])
        _wait(lambda: bridge.stats["acked"] == 2)
    finally:
        bridge.stop()
    assert [p.attempt for p in endpoint.of("w1")] == [1, 2, 3]  # the emulator's count, in the push body
    assert bridge.dispatcher.stats.failures == 2 and bridge.stats["nacked"] == 2
    gaps = [b.at - a.at for a, b in itertools.pairwise(endpoint.of("w1"))]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # the bridge's backoff: 1 s, then 2 s (min_backoff doubling)


def test_one_message_per_key_in_flight_and_a_retry_holds_its_key_back(make_topic, serve) -> None:
    topic = make_topic(max_backoff_seconds=4)
    endpoint = Endpoint(rule=lambda data, attempt: 503 if data == "a0" and attempt < 3 else 204, delay_s=0.05)
    bridge = _bridge(topic, serve(endpoint))
    try:
        topic.publish([(f"a{i}", "A") for i in range(5)] + [(f"b{i}", "B") for i in range(5)])
        _wait(lambda: bridge.stats["acked"] == 10)
    finally:
        bridge.stop()
    a = endpoint.of("A")
    assert [p.data for p in a] == ["a0", "a0", "a0", "a1", "a2", "a3", "a4"]  # in order, nothing overtook a0
    assert all(q.at - p.at >= 0.05 for p, q in itertools.pairwise(a))  # one at a time
    assert [p.data for p in endpoint.of("B")] == [f"b{i}" for i in range(5)]
    assert endpoint.of("B")[-1].at < a[1].at  # B was not held back by A's retries
    assert all(p.attempt == 1 for p in a[3:])  # held, not redelivered: leases kept them
    assert bridge.dispatcher.stats.held_max >= 4


def test_a_dead_letter_releases_its_key_with_ordering_and_dead_lettering_together(make_topic, serve) -> None:
    topic = make_topic()
    endpoint = Endpoint(rule=lambda data, _attempt: 500 if data == "a0" else 204)
    bridge = _bridge(topic, serve(endpoint))
    try:
        topic.publish([("a0", "A"), ("a1", "A"), ("a2", "A"), ("b0", "B")])
        _wait(lambda: bridge.stats["acked"] == 3, timeout_s=60)
        dead = topic.dead_letters(1)
        topic.publish([("a3", "A"), ("b1", "B")])  # the subscription still delivers after a dead letter
        _wait(lambda: bridge.stats["acked"] == 5)
    finally:
        bridge.stop()
    assert [p.data for p in endpoint.of("A")] == ["a0"] * 5 + ["a1", "a2", "a3"]
    assert [p.attempt for p in endpoint.of("A")[:5]] == [1, 2, 3, 4, 5]
    assert [d for d, _ in dead] == ["a0"]
    assert dead[0][1]["source"] == "test" and dead[0][1]["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert [p.data for p in endpoint.of("B")] == ["b0", "b1"]


def test_held_messages_keep_their_lease_beyond_the_ack_deadline(make_topic, serve) -> None:
    topic = make_topic(ack_deadline_seconds=10, min_backoff_seconds=12, max_backoff_seconds=12)
    endpoint = Endpoint(rule=lambda data, attempt: 503 if data == "a0" and attempt == 1 else 204)
    bridge = _bridge(topic, serve(endpoint))
    try:
        topic.publish([("a0", "A"), ("a1", "A")])
        _wait(lambda: bridge.stats["acked"] == 2, timeout_s=40)
    finally:
        bridge.stop()
    a = endpoint.of("A")
    assert [(p.data, p.attempt) for p in a] == [("a0", 1), ("a0", 2), ("a1", 1)]
    assert a[1].at - a[0].at >= 11.5  # production's backoff, longer than the ack deadline
    assert bridge.stats["lease_extensions"] > 0


def test_the_window_bounds_outstanding_messages(make_topic, serve) -> None:
    topic = make_topic()
    endpoint = Endpoint(delay_s=0.2)
    bridge = _bridge(topic, serve(endpoint), window=4)
    seen: list[int] = []
    try:
        topic.publish([(f"m{i}", f"w{i}") for i in range(20)])
        deadline = time.monotonic() + 30
        while bridge.stats["acked"] < 20 and time.monotonic() < deadline:
            seen.append(bridge.outstanding())
            time.sleep(0.02)
    finally:
        bridge.stop()
    assert bridge.stats["acked"] == 20
    assert max(seen) <= 4 and endpoint.max_in_flight <= 4
    assert endpoint.max_in_flight >= 2  # concurrent across keys


def test_the_emulator_itself_breaks_with_ordering_and_dead_lettering(make_topic, serve) -> None:
    """Why the bridge orders by key: with ordering on the emulator's subscription, the message
    that should be dead-lettered is lost and nothing is delivered afterwards, on any key."""
    topic = make_topic(emulator_ordering=True)
    endpoint = Endpoint(rule=lambda data, _attempt: 500 if data == "a0" else 204)
    bridge = _bridge(topic, serve(endpoint), ordering=False)  # only the emulator orders here
    try:
        topic.publish([("a0", "A"), ("b0", "B")])
        _wait(lambda: len([p for p in endpoint.of("A") if p.data == "a0"]) >= 5, timeout_s=60)
        time.sleep(3)
        topic.publish([("c0", "C")])
        dead = topic.dead_letters(1, timeout_s=10)
        time.sleep(3)
    finally:
        bridge.stop()
    assert dead == []  # lost, not dead-lettered
    assert "c0" not in {p.data for p in endpoint.pushes}  # and the subscription delivers nothing more
