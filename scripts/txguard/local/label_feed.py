"""Labels during the demo stream: the simulator's delayed labels of the stream's own transactions.

Each transaction of the stream gets the labels real life would send later
(txguard.simulator.late_labels, the same draws as `txguard label --simulate`): an analyst verdict
within hours for 30 % of the frauds, a chargeback after days to weeks (median 7 days) for the
others, and a few disputes of legitimate transactions, most of them reversed later.

The demo lasts a minute or two, so it compresses the delays: a label is published
`seconds_per_day` (default 0.5 s) per day of its delay after its transaction was published (a
7-day chargeback 3.5 s later, a 12-hour analyst verdict 0.25 s later, the longest, 45 days,
22.5 s later), and says it became known when it is published (`known_at` = now, never before its
transaction's time). Every label is recorded in the stream's ledger (txguard.local.label_book)
before it is published, so nothing published goes unaccounted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from txguard.contract import names
from txguard.local.ledger import Ledger
from txguard.publisher import Outgoing
from txguard.publisher.label_sources import from_label, label_topic
from txguard.simulator.late_labels import LabelDraft, Labelled, drafts_of

DEMO_SECONDS_PER_DAY = 0.5


def demo_labels(messages: Sequence[Outgoing], seed: int, seconds_per_day: float = DEMO_SECONDS_PER_DAY,
                ) -> list[tuple[float, LabelDraft]]:
    """(seconds after its transaction is published, label draft) for the stream's valid transactions."""
    items = []
    for m in messages:
        if not m.expected_valid or m.transaction_id is None or m.is_fraud is None:
            continue
        doc = json.loads(m.data)
        # The transaction's time floored to the millisecond, as the transaction index keeps it: the
        # stream is shifted to end now, so its times carry microseconds a label would round up.
        ms_time = round(m.event_time * 1e6) // 1000 / 1000
        items.append(Labelled(m.transaction_id, doc["wallet_id"], doc["counterparty_id"], doc.get("device_id"),
                              ms_time, bool(m.is_fraud)))
    return sorted(((draft.delay_s / 86400 * seconds_per_day, draft) for draft in drafts_of(items, seed)),
                  key=lambda pair: (pair[0], pair[1].label_id))


class LabelFeed:
    """Publishes each label `delay` seconds after its transaction was sent (the ledger says when)."""

    def __init__(self, project: str, ledger: Ledger, plan: list[tuple[float, LabelDraft]],
                 interval_s: float = 0.05) -> None:
        self.project = project
        self.ledger = ledger
        self.plan = plan
        self.interval_s = interval_s
        self.published = 0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Every label of the plan is published (or the feed stopped)."""
        return self._done.is_set()

    @property
    def last_delay_s(self) -> float:
        return max((delay for delay, _ in self.plan), default=0.0)

    def start(self) -> LabelFeed:
        self._thread = threading.Thread(target=self._run, name="label-feed", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from txguard.publisher import PubSubTransport

        transports = {route.topic: PubSubTransport(self.project, route.topic, ordering=False)
                      for route in names.LABEL_ROUTES}
        pending = list(self.plan)
        try:
            while pending and not self._stop.is_set():
                now_ms = time.time() * 1000
                due, later = [], []
                for delay, label in pending:
                    sent = self.ledger.sent_at_ms(label.item.transaction_id)
                    (due if sent is not None and sent + delay * 1000 <= now_ms else later).append((delay, label))
                for _delay, label in due:
                    self._publish(transports, label)
                pending = later
                self._stop.wait(self.interval_s)
        except BaseException as exc:  # noqa: BLE001 - reported by wait()
            self.error = exc
        finally:
            for transport in transports.values():
                transport.close()  # flushes what was published
            self._done.set()

    def _publish(self, transports: dict[str, Any], draft: LabelDraft) -> None:
        # Known now: never before its transaction (the stream's timestamps are in the past).
        label = draft.event(known_at=max(datetime.now(UTC), datetime.fromtimestamp(round(draft.item.ts, 3), UTC)))
        message = from_label(label)
        self.ledger.labels.sent(message)
        transport = transports[label_topic(message.data)]  # its source's topic
        future = transport.publish(message.data, {names.ATTR_TRANSACTION_ID: label.transaction_id}, "")
        future.add_done_callback(lambda f: self.ledger.labels.confirmed(message, f.exception()))
        self.published += 1

    def wait(self, timeout_s: float) -> bool:
        """Until every label is published (True), or `timeout_s` (then the rest is not sent)."""
        finished = self._done.wait(timeout_s)
        self.stop()
        if self.error is not None:
            raise self.error
        return finished

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def publish_now(project: str, ledger: Ledger, messages: Sequence[Outgoing], timeout_s: float = 60.0,
                topic: str | None = None) -> int:
    """Publish label messages at once, in order, each on its source's topic (`label_topic`) and recorded in
    the ledger first; returns how many Pub/Sub confirmed (a failed publish is recorded as such, never
    silently dropped). `topic`: all of them there instead (a test of labels on the wrong route)."""
    from txguard.publisher import PubSubTransport

    transports = {route.topic: PubSubTransport(project, route.topic, ordering=False) for route in names.LABEL_ROUTES}
    confirmed = 0
    try:
        futures = []
        for message in messages:
            ledger.labels.sent(message)
            futures.append((message, transports[topic or label_topic(message.data)].publish(message.data, {}, "")))
        for message, future in futures:
            try:
                future.result(timeout=timeout_s)
            except Exception as exc:  # noqa: BLE001 - the ledger counts it as a failed publish
                ledger.labels.confirmed(message, exc)
                continue
            ledger.labels.confirmed(message, None)
            confirmed += 1
    finally:
        for transport in transports.values():
            transport.close()
    return confirmed
