"""Pull consumers of the pipeline's outputs on the emulator, feeding the stack's ledgers.

`decisions-tail`, `invalid-inspect`, `transactions-dead-letter-inspect` and
`labels-dead-letter-inspect` are the pull subscriptions production declares for the same purpose
(names.SUBSCRIPTIONS). Dead-lettered labels are always pulled (nothing redrives them locally).

Synchronous pull, acknowledged before the next pull, rather than streaming pull: `decisions-tail`
has message ordering, and a streaming pull cancelled with leases or acks still in flight holds
those wallets' ordering keys until the ack deadline, so `txguard decisions --follow` started
after `local up --keep` would see nothing for a minute. Here nothing is left leased (a message whose
sink raised is not acked, and comes back after its ack deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from txguard.console.ingest import Handler, SubscriptionReader
from txguard.contract import names
from txguard.local.router import Router

Sink = Callable[[bytes, dict[str, str], int], None]


class PullConsumers:
    """The ledgers' sinks on the output subscriptions, read by the console's SubscriptionReader (a
    message is acked once its sink took it; one that raised is redelivered)."""

    def __init__(self, project: str, ledgers: Router, max_messages: int = 500, dead_letter: bool = True) -> None:
        self.project = project
        self.dead_letter = dead_letter  # False: leave the dead-letter subscription to a redrive
        self.ledgers = ledgers
        self.max_messages = max_messages
        self._reader: SubscriptionReader | None = None

    @property
    def errors(self) -> dict[str, int]:
        return self._reader.errors if self._reader is not None else {}

    def start(self) -> PullConsumers:
        routes: dict[str, Sink] = {
            names.DECISIONS_SUBSCRIPTION: self.ledgers.on_decision,
            names.INVALID_SUBSCRIPTION: self.ledgers.on_invalid,
            names.DEAD_LETTER_SUBSCRIPTION: self.ledgers.on_dead_letter,
            names.LABELS_DEAD_LETTER_SUBSCRIPTION: self.ledgers.on_label_dead_letter,
        }
        if not self.dead_letter:
            del routes[names.DEAD_LETTER_SUBSCRIPTION]
        handlers = {sub: _at_pull_time(sink) for sub, sink in routes.items()}
        self._reader = SubscriptionReader(self.project, handlers, max_messages=self.max_messages,
                                          thread_prefix="pull").start()
        return self

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.stop()


def _at_pull_time(sink: Sink) -> Handler:
    """The ledgers count latency to when a message was pulled (ms), not to its publish time."""
    return lambda data, attributes, _published: sink(data, attributes, int(time.time() * 1000))
