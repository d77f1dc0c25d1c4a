"""Topics and subscriptions on the Pub/Sub emulator, from the same specs Pulumi declares.

`txguard.contract.names.TOPICS` / `SUBSCRIPTIONS` are the single source: retention, ack deadline, push
endpoint, dead-letter policy, retry policy and ordering are copied field by field, so the local
pipeline redelivers, backs off and dead-letters the way production does. Idempotent: an
existing topic or subscription is left as it is (AlreadyExists is fine), so `ensure_topology`
can run against a stack that is already up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from txguard.contract import names

# The Pub/Sub emulator still caps subscription retention at the old 7-day limit ("out of
# bounds"); the cloud accepts up to 31 days (names.py asks 31 for the inspection subscriptions).
EMULATOR_MAX_SUBSCRIPTION_RETENTION = 7 * 24 * 3600


def _on_emulator() -> bool:
    import os

    return bool(os.environ.get("PUBSUB_EMULATOR_HOST"))


def effective_retention(spec: names.SubscriptionSpec, emulator: bool | None = None) -> int:
    """The subscription retention actually requested: the spec's, capped on the emulator."""
    emulator = _on_emulator() if emulator is None else emulator
    return min(spec.retention_seconds, EMULATOR_MAX_SUBSCRIPTION_RETENTION) if emulator else spec.retention_seconds


def _duration(seconds: int) -> Any:
    from google.protobuf import duration_pb2

    return duration_pb2.Duration(seconds=int(seconds))


def push_endpoint(function_url: str, spec: names.SubscriptionSpec) -> str:
    """Where a push subscription posts: its function's URL, plus its path when it has one (a label route)."""
    return function_url.rstrip("/") + spec.push_path if spec.push_path else function_url


def subscription_request(
    project: str, spec: names.SubscriptionSpec, push_endpoints: Mapping[str, str], emulator: bool | None = None,
    retry_policy: bool = True, push: bool = True,
) -> dict[str, Any]:
    """The `create_subscription` request for one spec (pure: unit-testable without an emulator).

    `push=False` creates a push subscription as a pull one (no endpoint): the push bridge
    (txguard.local.bridge) delivers it, and applies the spec's retry policy itself (it sends each
    nack after production's backoff), so the emulator's subscription carries none: with one, the
    emulator parks every nack after the first attempt in its own backoff scheduler, whose periodic
    task dies for good on a message parked twice (docs/reliability.md), and adds its backoff to the
    bridge's. `retry_policy=False` leaves the spec's retry policy out of any subscription (Pub/Sub
    then redelivers as soon as a delivery fails): the emulator's own push needs that, for the same
    scheduler (docs/reliability.md).

    On the emulator, a subscription with both ordering and a dead-letter policy is created
    without ordering: the emulator loses the first message it should dead-letter and then
    delivers nothing more on that subscription (tests/integration/test_push_bridge.py shows it).
    Whoever delivers it must order by key: the bridge does; the emulator's own push cannot."""
    emulator = _on_emulator() if emulator is None else emulator
    ordering = spec.enable_message_ordering and not (emulator and spec.dead_letter_topic is not None)
    request: dict[str, Any] = {
        "name": f"projects/{project}/subscriptions/{spec.name}",
        "topic": f"projects/{project}/topics/{spec.topic}",
        "ack_deadline_seconds": spec.ack_deadline_seconds,
        "message_retention_duration": _duration(effective_retention(spec, emulator)),
        "retry_policy": {
            "minimum_backoff": _duration(spec.min_backoff_seconds),
            "maximum_backoff": _duration(spec.max_backoff_seconds),
        },
        "enable_message_ordering": ordering,
    }
    bridged = spec.push_to is not None and not push
    if not retry_policy or (emulator and bridged):
        del request["retry_policy"]
    if spec.push_to is not None and push:
        if spec.push_to not in push_endpoints:
            raise KeyError(f"subscription {spec.name} pushes to {spec.push_to!r}: no endpoint given")
        request["push_config"] = {"push_endpoint": push_endpoint(push_endpoints[spec.push_to], spec)}
    if spec.dead_letter_topic is not None:
        request["dead_letter_policy"] = {
            "dead_letter_topic": f"projects/{project}/topics/{spec.dead_letter_topic}",
            "max_delivery_attempts": spec.max_delivery_attempts,
        }
    return request


def ensure_topology(
    project: str,
    push_endpoints: Mapping[str, str] | None = None,
    topics: tuple[names.TopicSpec, ...] = names.TOPICS,
    subscriptions: tuple[names.SubscriptionSpec, ...] = names.SUBSCRIPTIONS,
    retry_policy: bool = True,
    push: bool = True,
) -> dict[str, list[str]]:
    """Create every topic and subscription (PUBSUB_EMULATOR_HOST or ADC); returns what was created.

    `push_endpoints` maps a function name (`names.ENRICH_FUNCTION`) to its URL; the enrichment
    function is a CloudEvent function served by functions-framework at its root URL. `push=False`:
    push subscriptions are created as pull ones, for the push bridge.
    """
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    push_endpoints = push_endpoints or {}
    created: dict[str, list[str]] = {"topics": [], "subscriptions": []}
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic in topics:
            try:
                publisher.create_topic(
                    request={
                        "name": publisher.topic_path(project, topic.name),
                        "message_retention_duration": _duration(topic.retention_seconds),
                    }
                )
                created["topics"].append(topic.name)
            except gexc.AlreadyExists:
                pass
        for spec in subscriptions:
            try:
                subscriber.create_subscription(
                    request=subscription_request(project, spec, push_endpoints, retry_policy=retry_policy, push=push))
                created["subscriptions"].append(spec.name)
            except gexc.AlreadyExists:
                pass
    finally:
        subscriber.close()
        publisher.transport.close()
    return created


def delete_topology(project: str) -> None:
    """Remove every subscription then topic (tests, or a clean `local up` on a kept emulator)."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for spec in names.SUBSCRIPTIONS:
            with contextlib.suppress(gexc.NotFound):
                subscriber.delete_subscription(request={"subscription": subscriber.subscription_path(project, spec.name)})
        for topic in names.TOPICS:
            with contextlib.suppress(gexc.NotFound):
                publisher.delete_topic(request={"topic": publisher.topic_path(project, topic.name)})
    finally:
        subscriber.close()
        publisher.transport.close()
