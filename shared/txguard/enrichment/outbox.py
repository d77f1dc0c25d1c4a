"""Publishing what enrichment produces: decisions (ordered per wallet) and invalid messages (the
label function publishes only the latter).

One `PublisherClient` per process (created at cold start, thread-safe, its batches shared by the
server's threads). Every publish is awaited (bounded by `PUBLISH_TIMEOUT_S`) before the incoming
message is acked: a failure raises `PublishError` (retryable), so Pub/Sub redelivers it.
Decisions carry `ordering_key=wallet_id`; an ordered publish that fails pauses its key in the
client library until `resume_publish`, which is called here so the key is usable on redelivery.
"""

from __future__ import annotations

import concurrent.futures
from typing import Protocol

from txguard.contract import names
from txguard.contract.errors import PublishError
from txguard.contract.models import Decision
from txguard.contract.settings import EnrichSettings
from txguard.contract.trace import TraceContext

MAX_REASON_CHARS = 1000
# Small batching window: each publish is awaited on the request path, so latency beats batch size.
BATCH_MAX_LATENCY_S = 0.002


class InvalidOutbox(Protocol):
    """Where a message that can never be processed goes (the label function needs only this)."""

    def publish_invalid(
        self, raw: bytes, reason: str, kind: str, message_id: str = "", subscription: str | None = None,
        trace: TraceContext | None = None,
    ) -> str: ...


class Outbox(InvalidOutbox, Protocol):
    """Where enrichment results go (Pub/Sub in production; an in-memory fake in functional tests)."""

    def publish_decision(self, decision: Decision, published_at: str | None = None,
                         trace: TraceContext | None = None) -> str: ...


def decision_attributes(decision: Decision, published_at: str | None,
                        trace: TraceContext | None = None) -> dict[str, str]:
    attrs = {
        names.ATTR_OUTCOME: decision.outcome.value,
        names.ATTR_MODEL_VERSION: decision.model_version,
        names.ATTR_TRANSACTION_ID: decision.transaction_id,
    }
    if published_at:
        attrs[names.ATTR_PUBLISHED_AT] = published_at
    if trace is not None:  # a consumer of decisions continues the transaction's trace
        attrs[names.ATTR_TRACEPARENT] = trace.traceparent
    return attrs


def invalid_attributes(reason: str, kind: str, message_id: str, subscription: str | None,
                       trace: TraceContext | None = None,
                       default_subscription: str = names.ENRICH_PUSH_SUBSCRIPTION) -> dict[str, str]:
    """`default_subscription`: where the message came from when the delivery did not say (a raw
    push body converted by functions-framework carries no subscription)."""
    attrs = {
        names.ATTR_REASON: truncate(reason),
        names.ATTR_ERROR_KIND: kind,
        names.ATTR_SOURCE_MESSAGE_ID: message_id or "unknown",
        names.ATTR_SOURCE_SUBSCRIPTION: subscription or default_subscription,
    }
    if trace is not None:
        attrs[names.ATTR_TRACEPARENT] = trace.traceparent
    return attrs


def truncate(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """At most `limit` UTF-8 bytes (Pub/Sub caps an attribute value at 1024 bytes, not characters)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


class PubSubOutbox:
    def __init__(self, project: str, decisions_topic: str, invalid_topic: str, timeout_s: float = 30.0,
                 default_subscription: str = names.ENRICH_PUSH_SUBSCRIPTION) -> None:
        from google.cloud import pubsub_v1

        self.client = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=BATCH_MAX_LATENCY_S),
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
        )
        self.decisions_topic = self.client.topic_path(project, decisions_topic)
        self.invalid_topic = self.client.topic_path(project, invalid_topic)
        self.timeout_s = timeout_s
        self.default_subscription = default_subscription

    @classmethod
    def from_settings(cls, settings: EnrichSettings) -> PubSubOutbox:
        return cls(settings.google_cloud_project, settings.decisions_topic, settings.invalid_topic,
                   settings.publish_timeout_s)

    def publish_decision(self, decision: Decision, published_at: str | None = None,
                         trace: TraceContext | None = None) -> str:
        key = decision.wallet_id
        future = self.client.publish(
            self.decisions_topic, decision.model_dump_json().encode(), ordering_key=key,
            **decision_attributes(decision, published_at, trace),
        )
        try:
            return self._wait(future, self.decisions_topic)
        except PublishError:
            self.client.resume_publish(self.decisions_topic, key)
            raise

    def publish_invalid(
        self, raw: bytes, reason: str, kind: str, message_id: str = "", subscription: str | None = None,
        trace: TraceContext | None = None,
    ) -> str:
        future = self.client.publish(self.invalid_topic, raw, **invalid_attributes(
            reason, kind, message_id, subscription, trace, self.default_subscription))
        return self._wait(future, self.invalid_topic)

    def _wait(self, future: concurrent.futures.Future, topic: str) -> str:
        try:
            return str(future.result(timeout=self.timeout_s))
        except concurrent.futures.TimeoutError as exc:
            raise PublishError(f"publish to {topic} not confirmed within {self.timeout_s}s") from exc
        except Exception as exc:  # noqa: BLE001 - any publish failure is retryable for the delivery
            raise PublishError(f"publish to {topic} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.client.stop()
