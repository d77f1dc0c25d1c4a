"""The analyst's actions on the review queue: claim, release, and give a verdict.

A verdict is three steps, each safe to repeat: fix it on the item (one queue transaction that
checks the claim), publish its label event and wait for Pub/Sub, then take the item off the queue.
If the publish fails the verdict stays fixed on the item (same label id) and the next attempt
publishes it again, so nothing is lost and the label consumer sees one label.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from logging import Logger
from typing import Any

from pydantic import ValidationError

from txguard.console import items
from txguard.console.items import ReviewItem
from txguard.console.label_publisher import LabelPublisher, label_event
from txguard.console.manual import field_errors
from txguard.console.review_queue import ReviewQueue
from txguard.contract.errors import ConsoleInputError
from txguard.contract.logs import get_logger
from txguard.contract.models import ReviewRequest


class Reviews:
    def __init__(self, queue: ReviewQueue, publisher: LabelPublisher, claim_ttl_s: int,
                 clock: Callable[[], datetime] = items.utcnow, log: Logger | None = None) -> None:
        self.queue = queue
        self.publisher = publisher
        self.claim_ttl_s = claim_ttl_s
        self.clock = clock
        self.log = log or get_logger("console")

    def claim(self, transaction_id: str, analyst: str) -> ReviewItem:
        item = self.queue.update(transaction_id, lambda it: items.claimed(it, analyst, self.clock(), self.claim_ttl_s))
        self.log.info("claimed %s", transaction_id, extra={"transaction_id": transaction_id, "analyst": analyst})
        return item

    def release(self, transaction_id: str, analyst: str) -> ReviewItem:
        return self.queue.update(transaction_id, lambda it: items.released(it, analyst, self.clock()))

    def review(self, transaction_id: str, analyst: str, body: bytes) -> dict[str, Any]:
        try:
            request = ReviewRequest.model_validate_json(body)
        except ValidationError as exc:
            raise ConsoleInputError("the verdict is not valid: fix the fields named below", field_errors(exc)) from exc
        item = self.queue.update(
            transaction_id, lambda it: items.labelled(it, analyst, request.verdict, request.note, self.clock()))
        event = label_event(item)
        message_id = self.publisher.publish(event)
        item = self.queue.update(transaction_id, lambda it: items.published(it, message_id))
        self.log.info("labelled %s %s", transaction_id, item.verdict, extra={
            "transaction_id": transaction_id, "model_version": item.model_version, "analyst": analyst,
            "label_id": event.label_id, "message_id": message_id})
        return {"item": item.model_dump(mode="json"), "label": event.model_dump(mode="json"),
                "message_id": message_id}
