"""Streaming-pull consumers of the pipeline's outputs on the emulator, feeding the tracker.

`decisions-tail`, `invalid-inspect` and `transactions-dead-letter-inspect` are the pull
subscriptions production declares for the same purpose (names.SUBSCRIPTIONS).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from scripts.local.tracker import Tracker
from shared import names

Sink = Callable[[bytes, dict[str, str], int], None]


class PullConsumers:
    def __init__(self, project: str, tracker: Tracker, echo: Callable[[bytes, dict[str, str]], None] | None = None):
        self.project = project
        self.tracker = tracker
        self.echo = echo
        self._client: Any = None
        self._futures: list[Any] = []

    def start(self) -> PullConsumers:
        from google.cloud import pubsub_v1  # noqa: PLC0415

        self._client = pubsub_v1.SubscriberClient()
        routes: dict[str, Sink] = {
            names.DECISIONS_SUBSCRIPTION: self._decision,
            names.INVALID_SUBSCRIPTION: self.tracker.on_invalid,
            names.DEAD_LETTER_SUBSCRIPTION: self.tracker.on_dead_letter,
        }
        flow = pubsub_v1.types.FlowControl(max_messages=2000)
        for sub, sink in routes.items():
            path = self._client.subscription_path(self.project, sub)
            self._futures.append(self._client.subscribe(path, callback=self._callback(sink), flow_control=flow))
        return self

    def _decision(self, data: bytes, attributes: dict[str, str], now_ms: int) -> None:
        self.tracker.on_decision(data, attributes, now_ms)
        if self.echo is not None:
            self.echo(data, attributes)

    @staticmethod
    def _callback(sink: Sink) -> Callable[[Any], None]:
        def callback(message: Any) -> None:
            sink(message.data, dict(message.attributes), int(time.time() * 1000))
            message.ack()

        return callback

    def stop(self) -> None:
        for future in self._futures:
            future.cancel()
        for future in self._futures:
            with contextlib.suppress(Exception):
                future.result(timeout=10)
        self._futures.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
