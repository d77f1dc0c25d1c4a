"""An analyst's verdict as a label event on `labels-analyst` (txguard.contract.models.LabelEvent).

The console's identity is the only one that may publish there, and the label function believes
analyst labels from that topic only (txguard.contract.names.LabelRoute).

The event carries what the label consumer needs without looking the transaction up (wallet,
counterparty, device, transaction time), `kind=analyst`, `known_at` = when the verdict was given
(features count it only from then on) and `source` = the analyst. Publishing waits for Pub/Sub to
confirm (bounded by PUBLISH_TIMEOUT_S) before the item leaves the queue: a verdict is never lost
between the click and the topic.
"""

from __future__ import annotations

import concurrent.futures
import re
from typing import Protocol

from txguard.console.items import ReviewItem
from txguard.contract import names
from txguard.contract.errors import ConsoleUnavailableError
from txguard.contract.models import LabelEvent, LabelKind, Verdict

_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_.:\-]")


class LabelPublisher(Protocol):
    def publish(self, event: LabelEvent) -> str:
        """Publish and wait for the message id; ConsoleUnavailableError if not confirmed."""
        ...


def source_of(analyst: str) -> str:
    """`analyst:<id>` within the contract's Identifier rules (an e-mail's `@` becomes `.at.`)."""
    return ("analyst:" + _NOT_IDENTIFIER.sub("_", analyst.replace("@", ".at.")))[:64]


def label_event(item: ReviewItem) -> LabelEvent:
    """The event for an item whose verdict is fixed (items.labelled)."""
    tx = item.enriched
    if tx is None or item.label_id is None or item.verdict is None or item.labelled_at is None:
        raise ValueError(f"{item.transaction_id} has no fixed verdict to publish")
    return LabelEvent(
        label_id=item.label_id,
        transaction_id=item.transaction_id,
        wallet_id=item.wallet_id,
        counterparty_id=tx.counterparty_id,
        device_id=tx.device_id,
        transaction_time=tx.timestamp,
        # A transaction may be stamped a little ahead of our clock (the contract allows skew).
        known_at=max(item.labelled_at, tx.timestamp),
        kind=LabelKind.ANALYST,
        is_fraud=item.verdict is Verdict.FRAUD,
        source=source_of(item.labelled_by or "unknown"),
        note=item.note or None,
    )


class PubSubLabelPublisher:
    """One PublisherClient per process (PUBSUB_EMULATOR_HOST locally)."""

    def __init__(self, project: str, topic: str = names.ANALYST_LABELS_TOPIC, timeout_s: float = 30.0) -> None:
        from google.cloud import pubsub_v1

        self.client = pubsub_v1.PublisherClient()
        self.topic = self.client.topic_path(project, topic)
        self.timeout_s = timeout_s

    def publish(self, event: LabelEvent) -> str:
        future = self.client.publish(self.topic, event.model_dump_json().encode(),
                                     **{names.ATTR_TRANSACTION_ID: event.transaction_id})
        try:
            return str(future.result(timeout=self.timeout_s))
        except concurrent.futures.TimeoutError as exc:
            raise ConsoleUnavailableError(
                f"label not confirmed by Pub/Sub within {self.timeout_s}s; the verdict is kept, try again") from exc
        except Exception as exc:  # noqa: BLE001 - any publish failure: the verdict stays pending
            raise ConsoleUnavailableError(
                f"label not published ({type(exc).__name__}: {exc}); the verdict is kept, try again") from exc

    def close(self) -> None:
        self.client.stop()
