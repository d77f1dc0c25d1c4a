"""Where messages go: google-cloud-pubsub's batching publisher, behind a two-method protocol.

The same client talks to the emulator (PUBSUB_EMULATOR_HOST) or a real project (ADC). Batching
(max messages, max latency), per-call retry deadline and timeout are options: a local demo wants
small latency, a load test wants full batches. Ordering is on: the wallet id is the ordering key,
so one wallet's transactions reach the enrichment function in order (features are per wallet).
A failed ordered publish pauses its key inside the client; it is resumed here so later
transactions of that wallet are not all refused.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Protocol


class Transport(Protocol):
    def publish(self, data: bytes, attributes: dict[str, str], ordering_key: str) -> concurrent.futures.Future: ...

    def close(self) -> None: ...


class PubSubTransport:
    def __init__(
        self,
        project: str,
        topic: str,
        max_messages: int = 100,
        max_latency_s: float = 0.01,
        max_bytes: int = 1_000_000,
        timeout_s: float = 60.0,
        retry_deadline_s: float = 120.0,
        ordering: bool = True,
    ) -> None:
        from google.api_core import retry as gretry
        from google.cloud import pubsub_v1

        self.ordering = ordering
        self.client = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(
                max_messages=max_messages, max_latency=max_latency_s, max_bytes=max_bytes
            ),
            publisher_options=pubsub_v1.types.PublisherOptions(
                enable_message_ordering=ordering,
                retry=gretry.Retry(initial=0.1, maximum=10.0, multiplier=1.5, deadline=retry_deadline_s),
                timeout=timeout_s,
            ),
        )
        self.topic_path = self.client.topic_path(project, topic)

    def publish(self, data: bytes, attributes: dict[str, str], ordering_key: str) -> concurrent.futures.Future:
        key = ordering_key if self.ordering else ""
        future: Any = self.client.publish(self.topic_path, data, ordering_key=key, **attributes)
        if key:
            future.add_done_callback(lambda f: self._resume_on_error(f, key))
        return future

    def _resume_on_error(self, future: concurrent.futures.Future, key: str) -> None:
        if future.exception() is not None:
            self.client.resume_publish(self.topic_path, key)

    def close(self) -> None:
        self.client.stop()  # flushes pending batches
