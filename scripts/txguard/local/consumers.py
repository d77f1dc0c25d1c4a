"""Pull consumers of the pipeline's outputs on the emulator, feeding the stack's ledgers.

`decisions-tail`, `invalid-inspect`, `transactions-dead-letter-inspect` and
`labels-dead-letter-inspect` are the pull subscriptions production declares for the same purpose
(names.SUBSCRIPTIONS). Dead-lettered labels are always pulled (nothing redrives them locally).

Synchronous pull, acknowledged before the next pull, rather than streaming pull: `decisions-tail`
has message ordering, and a streaming pull cancelled with leases or acks still in flight holds
those wallets' ordering keys until the ack deadline, so `txguard decisions --follow` started
after `local up --keep` would see nothing for a minute. Here nothing is ever left leased.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from txguard.contract import names
from txguard.local.router import Router

Sink = Callable[[bytes, dict[str, str], int], None]
PULL_TIMEOUT_S = 2.0


class PullConsumers:
    def __init__(self, project: str, ledgers: Router, max_messages: int = 500, dead_letter: bool = True) -> None:
        self.project = project
        self.dead_letter = dead_letter  # False: leave the dead-letter subscription to a redrive
        self.ledgers = ledgers
        self.max_messages = max_messages
        self._client: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: dict[str, int] = {}

    def start(self) -> PullConsumers:
        from google.cloud import pubsub_v1

        self._client = pubsub_v1.SubscriberClient()
        routes: dict[str, Sink] = {
            names.DECISIONS_SUBSCRIPTION: self.ledgers.on_decision,
            names.INVALID_SUBSCRIPTION: self.ledgers.on_invalid,
            names.DEAD_LETTER_SUBSCRIPTION: self.ledgers.on_dead_letter,
            names.LABELS_DEAD_LETTER_SUBSCRIPTION: self.ledgers.on_label_dead_letter,
        }
        if not self.dead_letter:
            del routes[names.DEAD_LETTER_SUBSCRIPTION]
        for sub, sink in routes.items():
            path = self._client.subscription_path(self.project, sub)
            thread = threading.Thread(target=self._loop, args=(path, sink), daemon=True, name=f"pull-{sub}")
            thread.start()
            self._threads.append(thread)
        return self

    def _loop(self, path: str, sink: Sink) -> None:
        from google.api_core import exceptions as gexc

        while not self._stop.is_set():
            try:
                resp = self._client.pull(request={"subscription": path, "max_messages": self.max_messages},
                                         timeout=PULL_TIMEOUT_S)
            except (gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.Cancelled) as exc:
                self._count(type(exc).__name__)
                continue
            except Exception as exc:  # noqa: BLE001 - keep consuming; the summary reports it
                self._count(type(exc).__name__)
                time.sleep(0.2)
                continue
            if not resp.received_messages:
                continue
            now_ms = int(time.time() * 1000)
            for rm in resp.received_messages:
                sink(rm.message.data, dict(rm.message.attributes), now_ms)
            self._client.acknowledge(
                request={"subscription": path, "ack_ids": [rm.ack_id for rm in resp.received_messages]}
            )

    def _count(self, kind: str) -> None:
        if kind != "DeadlineExceeded":  # an empty long poll, not an error
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PULL_TIMEOUT_S + 5)
        self._threads.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
