"""A review item and what may happen to it: claimed (with an expiry), labelled, published.

The transitions are pure functions of an item, an analyst and a time, so the Firestore and the
SQLite queues run the same rules inside their own transactions (a transaction may re-run them
after a conflict) and the tests can drive them with a fixed clock.

An item moves: open -> claimed by one analyst until `claim_expires_at` (anyone may take an expired
claim) -> labelled (the verdict is fixed and gets a label id: a retry publishes the same label) ->
published (off the queue). Two analysts can never both hold one claim: a claim is granted only
inside a store transaction that saw the item unclaimed, expired or already theirs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from txguard.contract.errors import ConsoleConflictError
from txguard.contract.models import Decision, EnrichedTransaction, Outcome, RuleHit, Verdict

QUEUED_OUTCOMES = (Outcome.REVIEW, Outcome.BLOCK)
RETENTION = timedelta(days=90)  # labelled items are kept this long (Firestore TTL on expires_at)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ReviewItem(BaseModel):
    """One decision an analyst should look at, with what it was decided on."""

    model_config = ConfigDict(extra="ignore")

    transaction_id: str
    wallet_id: str
    outcome: Outcome
    score: float
    reasons: list[str] = Field(default_factory=list)
    model_version: str
    rules: list[RuleHit] = Field(default_factory=list)  # the rules that fired (docs/rules.md)
    rule_set: str | None = None
    decided_at: datetime  # when the decision was published
    # The transaction and its features as scored (None if the history no longer had them).
    enriched: EnrichedTransaction | None = None
    open: bool = True  # on the queue (False once its label is published)
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    verdict: Verdict | None = None
    note: str = ""
    label_id: str | None = None
    labelled_by: str | None = None
    labelled_at: datetime | None = None
    label_message_id: str | None = None
    expires_at: datetime

    @classmethod
    def of(cls, decision: Decision, decided_at: datetime, enriched: EnrichedTransaction | None) -> ReviewItem:
        return cls(
            transaction_id=decision.transaction_id, wallet_id=decision.wallet_id, outcome=decision.outcome,
            score=decision.score, reasons=list(decision.reasons), model_version=decision.model_version,
            rules=list(decision.rules), rule_set=decision.rule_set, decided_at=decided_at, enriched=enriched, expires_at=decided_at + RETENTION,
        )

    def claim_holder(self, now: datetime) -> str | None:
        """Who holds the claim now (None if nobody or it expired)."""
        if self.claimed_by and self.claim_expires_at and self.claim_expires_at > now:
            return self.claimed_by
        return None

    @property
    def published(self) -> bool:
        return self.label_message_id is not None

    def to_doc(self) -> dict[str, Any]:
        """What a store writes (datetimes stay datetimes: Firestore orders and expires on them)."""
        doc = self.model_dump(mode="python", exclude={"enriched"})
        doc["outcome"] = self.outcome.value
        doc["verdict"] = self.verdict.value if self.verdict else None
        doc["rules"] = [hit.model_dump(mode="json") for hit in self.rules]
        doc["enriched"] = self.enriched.model_dump(mode="json") if self.enriched else None
        return doc


def claimed(item: ReviewItem, analyst: str, now: datetime, ttl_s: int) -> ReviewItem:
    """`item` claimed by `analyst` until now + ttl; refuses if someone else holds it or it is done."""
    if item.published:
        raise ConsoleConflictError(f"{item.transaction_id} was already labelled {item.verdict} by {item.labelled_by}")
    holder = item.claim_holder(now)
    if holder is not None and holder != analyst:
        raise ConsoleConflictError(
            f"{item.transaction_id} is claimed by {holder} until {item.claim_expires_at:%H:%M:%S} UTC")
    return item.model_copy(update={"claimed_by": analyst, "claim_expires_at": now + timedelta(seconds=ttl_s)})


def released(item: ReviewItem, analyst: str, now: datetime) -> ReviewItem:
    if item.claim_holder(now) != analyst:
        raise ConsoleConflictError(f"{item.transaction_id} is not claimed by {analyst}")
    if item.label_id is not None:
        raise ConsoleConflictError(f"{item.transaction_id} has a verdict waiting to be published")
    return item.model_copy(update={"claimed_by": None, "claim_expires_at": None})


def labelled(item: ReviewItem, analyst: str, verdict: Verdict, note: str, now: datetime) -> ReviewItem:
    """The verdict fixed on the item, before it is published.

    The analyst must hold the claim. A verdict already fixed but not yet published (its publish
    failed) is kept as it is, whoever retries: the same label id is published again, so the label
    consumer sees one label however many times it is sent.
    """
    if item.published:
        raise ConsoleConflictError(f"{item.transaction_id} was already labelled {item.verdict} by {item.labelled_by}")
    if item.label_id is not None:
        return item
    holder = item.claim_holder(now)
    if holder != analyst:
        who = f"claimed by {holder}" if holder else "not claimed (or the claim expired): claim it first"
        raise ConsoleConflictError(f"{item.transaction_id} is {who}")
    if item.enriched is None:
        raise ConsoleConflictError(
            f"{item.transaction_id}: the transaction is no longer in the history store; it cannot be labelled here")
    return item.model_copy(update={
        "verdict": verdict, "note": note, "label_id": f"analyst-{uuid.uuid4().hex}",
        "labelled_by": analyst, "labelled_at": now,
    })


def published(item: ReviewItem, message_id: str) -> ReviewItem:
    return item.model_copy(update={"label_message_id": message_id, "open": False,
                                   "claimed_by": None, "claim_expires_at": None})
