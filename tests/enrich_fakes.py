"""In-memory fakes of the enrichment pipeline's outside world (scoring, Pub/Sub), for tests.

Fakes rather than mocks: they behave like the real thing (a deterministic scorer, an outbox that
keeps what was published) and can be told to fail, so tests assert on outcomes, not on calls.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from txguard.contract.errors import PublishError, ScoringRejectedError, ScoringUnavailableError
from txguard.contract.models import (
    CounterpartyFeatures,
    Decision,
    EnrichedTransaction,
    HistoryFeatures,
    Outcome,
    Transaction,
)
from txguard.contract.trace import TraceContext, current
from txguard.enrichment.outbox import decision_attributes, invalid_attributes
from txguard.features.counterparty import Snapshot
from txguard.features.counterparty_windows import counterparty_features
from txguard.features.wallet import vectorize

SUBSCRIPTION = "projects/txguard-test/subscriptions/transactions-enrich-push"


class FakeScorer:
    """Score = a pure function of the features, so a reused enrichment gives the same decision."""

    def __init__(self, model_version: str = "fake-1") -> None:
        self.model_version = model_version
        self.down = False
        self.reject_status: int | None = None
        self.calls = 0
        self.traces: list[TraceContext | None] = []  # the trace current at each call (the HTTP client sends it)
        self._lock = threading.Lock()

    def score(self, tx: EnrichedTransaction) -> Decision:
        with self._lock:
            self.calls += 1
            self.traces.append(current())
        if self.down:
            raise ScoringUnavailableError("fake scoring is down")
        if self.reject_status is not None:
            raise ScoringRejectedError(self.reject_status, "fake rejection")
        score = min(1.0, tx.features.tx_count_24h / 10 + (0.5 if tx.amount > 1000 else 0.0))
        outcome = Outcome.BLOCK if score >= 0.9 else Outcome.REVIEW if score >= 0.5 else Outcome.ALLOW
        return Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=score,
                        outcome=outcome, model_version=self.model_version)


@dataclass
class Published:
    data: bytes
    attributes: dict[str, str]
    ordering_key: str = ""


@dataclass
class FakeOutbox:
    decisions: list[Published] = field(default_factory=list)
    invalid: list[Published] = field(default_factory=list)
    fail: bool = False

    def publish_decision(self, decision: Decision, published_at: str | None = None,
                         trace: TraceContext | None = None) -> str:
        if self.fail:
            raise PublishError("fake publish failure")
        self.decisions.append(Published(decision.model_dump_json().encode(),
                                        decision_attributes(decision, published_at, trace), decision.wallet_id))
        return str(len(self.decisions))

    def publish_invalid(self, raw: bytes, reason: str, kind: str, message_id: str = "",
                        subscription: str | None = None, trace: TraceContext | None = None) -> str:
        if self.fail:
            raise PublishError("fake publish failure")
        self.invalid.append(Published(raw, invalid_attributes(reason, kind, message_id, subscription, trace)))
        return str(len(self.invalid))

    def decided(self) -> list[Decision]:
        return [Decision.model_validate_json(p.data) for p in self.decisions]


def make_tx(i: int, wallet: str = "w-1", start: datetime | None = None, **over: Any) -> Transaction:
    """A valid transaction; `i` spreads timestamps (7 minutes apart) and counterparties."""
    start = start or datetime(2024, 5, 1, tzinfo=UTC)
    fields: dict[str, Any] = {
        "transaction_id": f"{wallet}-tx-{i:05d}",
        "wallet_id": wallet,
        "counterparty_id": f"cp-{i % 7}",
        "amount": round(5 + (i * 37) % 500 + 0.25, 2),
        "currency": "EUR",
        "type": "top_up" if i % 5 == 0 else "payment",
        "channel": "app",
        "country": "FR" if i % 11 else "DE",
        "device_id": f"dev-{i % 3}",
        "timestamp": start + timedelta(minutes=7 * i),
    }
    fields.update(over)
    return Transaction.model_validate(fields)


def unknown_counterparty(tx: Transaction) -> CounterpartyFeatures:
    """The counterparty features of a transaction whose counterparty nothing is known about."""
    return counterparty_features(Snapshot(), tx)


PUBLISHED_LONG_AGO = "2024-05-01T12:00:00Z"


def push_body(payload: bytes, message_id: str = "1", attributes: dict[str, str] | None = None,
              subscription: str | None = SUBSCRIPTION, publish_time: str = PUBLISHED_LONG_AGO) -> dict[str, Any]:
    """A raw Pub/Sub push request body, as the push subscription POSTs it (`publish_time`: long ago unless
    said otherwise, so a label of an unknown transaction is refused at once rather than retried)."""
    body: dict[str, Any] = {"message": {"data": base64.b64encode(payload).decode(), "messageId": message_id,
                                        "publishTime": publish_time, "attributes": attributes or {}}}
    if subscription:
        body["subscription"] = subscription
    return body


def event_data(tx: Transaction, message_id: str = "1", attributes: dict[str, str] | None = None) -> dict:
    """CloudEvent data of a delivery (what the function receives after conversion)."""
    return {"message": push_body(tx.model_dump_json().encode(), message_id, attributes)["message"],
            "subscription": SUBSCRIPTION}


def stored_row(tx: Transaction, record: dict[str, Any]) -> list[float]:
    """The model row of what a processed record stored (the features scoring was sent)."""
    enriched = EnrichedTransaction.model_construct(
        **dict(tx), features=HistoryFeatures.model_validate(record["features"]),
        counterparty=CounterpartyFeatures.model_validate(record["counterparty"]["features"]))
    return vectorize(enriched)


def published_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def label_core(path: Any, outbox: Any = None, limits: Any = None, **kwargs: Any) -> Any:
    """The label function's core on SQLite stores in one file (`path`, shared with the enrichment's
    counterparty store and transaction index); no limits unless given (replays compress months into
    seconds)."""
    from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
    from txguard.enrichment.label_applier import LabelApplier
    from txguard.enrichment.label_limits import Limits
    from txguard.enrichment.label_review.sqlite import SqliteLabelReview
    from txguard.enrichment.transaction_index.sqlite import SqliteTransactionIndex

    return LabelApplier(SqliteCounterpartyStore(path), SqliteTransactionIndex(path), SqliteLabelReview(path),
                        outbox if outbox is not None else FakeOutbox(), limits or Limits.off(), **kwargs)


def deliver_label(applier: Any, label: Any, message_id: str | None = None, attempts: int = 200) -> Any:
    """One label through `applier` on its kind's route, redelivered like Pub/Sub while the answer is
    retry (its transaction still in flight): returns the final status."""
    import time as _time

    from txguard.contract.errors import RetryableError
    from txguard.contract.names import label_route_of_kind

    body = push_body(label.model_dump_json().encode(), message_id=message_id or label.label_id,
                     publish_time=published_now())
    route = label_route_of_kind(label.kind.value)
    for _ in range(attempts - 1):
        try:
            return applier.handle(body, route).status
        except RetryableError:
            _time.sleep(0.05)
    return applier.handle(body, route).status
