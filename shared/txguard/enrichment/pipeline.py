"""The enrichment pipeline: one Pub/Sub delivery -> validate -> counterparty + history -> scoring -> decision.

`Enricher.handle` runs each delivery through the push handlers' one ladder (txguard.enrichment.delivery):
- returns normally (the entry point answers 2xx, Pub/Sub acks): the message was decided, or it
  can never be (malformed, scoring refused it, id reused for other content) and its original
  bytes are on the `invalid` topic with a reason;
- raises a `RetryableError` (store or scoring unavailable, publish not confirmed) or any
  unexpected error (the entry point answers 503 or 500): Pub/Sub redelivers with backoff and,
  after `max_delivery_attempts`, moves the message to the dead-letter topic. Nothing unprocessed
  is ever acked.
A redelivery never applies a transaction twice: the store's processed record carries the
features (and, once scored, the decision) that the first delivery computed, and the state of its
counterparty update (leased to one delivery, applied with a marker, then settled; see
history/record.py and counterparty/protocol.py). The delivery that holds the update also records
the transaction in the transaction index, which every label of it is checked against for months
after the processed record expired (txguard.enrichment.transaction_index; idempotent, so a takeover
rewrites the same bytes).

A transaction that arrives after a later one of its wallet was applied is decided as usual, its
decision flagged `late` and its log line too (`"late": true`, counted by a log-based metric):
the later one was scored without it, a training/serving skew made visible instead of silent.
With the transactions subscription ordered by wallet this only happens to a redriven dead letter
or a publisher that sent a wallet's transactions out of order (docs/enrichment.md).

Nothing orders other wallets' updates of a counterparty (or device): the counterparty store's apply
step reports an update that lands after reads that should have included it, and each is logged as
one `late_update` line (counterparty/lateness.py); the delivery's own line counts them
(`late_updates`).

Each delivery runs in its trace (the push request's, or a new one): every line it logs carries
it, the scoring call and the decision's (or the parked message's) attributes pass it on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from logging import Logger
from typing import Any

from txguard.contract import names
from txguard.contract.errors import (
    ConflictingTransactionError,
    PermanentError,
    RetryableError,
    ScoringRejectedError,
)
from txguard.contract.logs import get_logger, log_context
from txguard.contract.models import CounterpartyFeatures, Decision, Transaction
from txguard.contract.process import ProcessWide
from txguard.contract.settings import EnrichSettings, enrich_settings
from txguard.contract.trace import TraceContext, bind
from txguard.enrichment.counterparty import CounterpartyStore, create_counterparty_store
from txguard.enrichment.counterparty.lateness import log_late
from txguard.enrichment.delivery import Progress, PushHandler, ms_since
from txguard.enrichment.envelope import decode, parse_envelope, parse_transaction, undecoded
from txguard.enrichment.history import HistoryStore, create_store
from txguard.enrichment.history.record import Enrichment
from txguard.enrichment.outbox import Outbox, PubSubOutbox
from txguard.enrichment.overlap import Outcome, Overlap, outcome_of
from txguard.enrichment.scoring_client import ScoringBackend, ScoringClient
from txguard.enrichment.transaction_index import TransactionIndex, create_transaction_index
from txguard.features.counterparty_windows import counterparty_features


class DeliveryStatus(StrEnum):
    """What became of one delivery (its log line's `status`); a decision's own outcome is allow/review/block."""

    DECIDED = "decided"  # acked
    DUPLICATE = "duplicate"  # acked: already processed, the stored features/decision were reused
    INVALID = "invalid"  # acked: malformed, parked on `invalid`
    REJECTED = "rejected"  # acked: valid but scoring refused it (or id conflict), parked on `invalid`
    RETRY = "retry"  # not acked: a dependency is unavailable
    ERROR = "error"  # not acked: a bug; retried then dead-lettered


ACKED = frozenset({DeliveryStatus.DECIDED, DeliveryStatus.DUPLICATE, DeliveryStatus.INVALID, DeliveryStatus.REJECTED})


@dataclass
class Result:
    status: DeliveryStatus
    transaction_id: str | None = None
    wallet_id: str | None = None
    decision: Decision | None = None
    reason: str | None = None
    late: bool = False
    late_updates: int = 0  # of this transaction's counterparty/device update (each logged on its own line)
    timings: dict[str, float] = field(default_factory=dict)


class Enricher(PushHandler[Result]):
    INVALID, REJECTED = DeliveryStatus.INVALID, DeliveryStatus.REJECTED
    RETRY, ERROR = DeliveryStatus.RETRY, DeliveryStatus.ERROR
    LEVELS = {DeliveryStatus.DECIDED: logging.INFO, DeliveryStatus.DUPLICATE: logging.INFO,
              DeliveryStatus.INVALID: logging.WARNING, DeliveryStatus.REJECTED: logging.WARNING,
              DeliveryStatus.RETRY: logging.ERROR, DeliveryStatus.ERROR: logging.CRITICAL}
    PARKED = ((ConflictingTransactionError, "conflict"), (ScoringRejectedError, "rejected"),
              (PermanentError, "permanent"))

    def __init__(self, store: HistoryStore, scorer: ScoringBackend, outbox: Outbox,
                 counterparties: CounterpartyStore, index: TransactionIndex, logger: Logger | None = None,
                 project: str = "txguard-local") -> None:
        super().__init__(outbox, logger or get_logger("enrich"))
        self.outbox: Outbox = outbox
        self.store = store
        self.scorer = scorer
        self.counterparties = counterparties
        self.index = index
        self.project = project  # Cloud Logging names a trace `projects/<project>/traces/<id>`
        self.overlap = Overlap()  # independent calls of a delivery at the same time (overlap.py)

    def handle(self, event_data: Any, trace: TraceContext | None = None) -> Result:
        """Process one delivery. Returning means ack; raising means retry (see module docstring).

        `trace` is the push request's; the delivery's own span is a child of it (a new trace
        without one): current while it runs (the scoring call sends it), on every line logged
        meanwhile and on what it publishes.
        """
        own = trace.child() if trace is not None else TraceContext.new()
        with bind(own), log_context(own.log_fields(self.project)):
            return self.run(event_data, Progress(Result(DeliveryStatus.ERROR), own), self._process)

    # the happy path --------------------------------------------------------------------------
    def _process(self, event_data: Any, progress: Progress[Result]) -> None:
        result = progress.result
        t = time.perf_counter()
        envelope = parse_envelope(event_data)
        progress.delivery = undecoded(envelope)  # until the data decodes, its text is the original
        delivery = progress.delivery = decode(envelope)
        tx = parse_transaction(delivery.raw)
        result.timings["validation_us"] = round((time.perf_counter() - t) * 1e6, 1)
        result.transaction_id, result.wallet_id = tx.transaction_id, tx.wallet_id

        # The counterparty snapshot is read outside the wallet transaction (a wallet's transaction never
        # locks its counterparty, docs/counterparty.md) and at the same time as its begin and reads:
        # the store awaits it only where it writes the processed record. It is done before going on,
        # whatever the transaction did (a duplicate does not need it).
        snapshot = self.overlap.start(lambda: self._snapshot(tx))
        t = time.perf_counter()
        try:
            enrichment = self.store.enrich_once(tx, lambda: snapshot.wait().get()[0])
        finally:
            read = snapshot.wait()
        result.timings["store_ms"] = ms_since(t)
        result.timings["counterparty_ms"] = read.value[1] if read.error is None else 0.0
        result.late = enrichment.late
        decision = enrichment.decision
        if decision is None:
            decision = self._score(tx, enrichment, result)
        elif enrichment.counterparty_due:  # a lease next to a stored decision: not written today (`claim`)
            try:
                result.timings["counterparty_ms"] += self._start_update(tx, enrichment, result)().get()
            except RetryableError:
                self._hand_back(tx)
                raise
        result.decision = decision

        # The decision is recorded: publishing it and dropping the counterparty markers (best effort)
        # do not depend on each other. Both are done before the delivery answers.
        attributes = delivery.attributes.get(names.ATTR_PUBLISHED_AT)
        published, settled = self.overlap(
            lambda: self._publish(decision, attributes, progress.trace),
            (lambda: self._settle(tx)) if enrichment.counterparty_due else None)
        result.timings["publish_ms"] = published.get()
        result.timings["counterparty_ms"] += settled.get() or 0.0
        result.status = DeliveryStatus.DUPLICATE if enrichment.duplicate else DeliveryStatus.DECIDED

    def _snapshot(self, tx: Transaction) -> tuple[CounterpartyFeatures, float]:
        """The counterparty features as of just before `tx` (read marks first, docs/counterparty.md), and
        the milliseconds it took."""
        t = time.perf_counter()
        return counterparty_features(self.counterparties.read_before(tx), tx), ms_since(t)

    def _score(self, tx: Transaction, enrichment: Enrichment, result: Result) -> Decision:
        """Score, with this delivery's counterparty update (when it holds the lease) at the same time:
        the score does not depend on it (the features were read before), the decision's record does
        (it marks the update applied), so the record waits for both."""
        due = enrichment.counterparty_due
        update = self._start_update(tx, enrichment, result) if due else None
        scored = outcome_of(lambda: self._call_scoring(enrichment))
        applied = update() if update is not None else Outcome(0.0)
        if applied.error is not None:
            if isinstance(applied.error, RetryableError):
                # Maybe partly applied: hand the lease back so the redelivery retries at once (the
                # markers make the rows already done no-ops) instead of waiting for it to expire.
                self._hand_back(tx)
            raise applied.error
        result.timings["counterparty_ms"] += applied.get()
        try:
            decision, result.timings["scoring_ms"] = scored.get()
            if enrichment.late:
                decision = decision.model_copy(update={"late": True})
            t = time.perf_counter()
            # first one wins; applied. One conditional write when the record is as this delivery left it
            decision = self.store.record_decision(tx.transaction_id, decision, enrichment.version)
            result.timings["store_ms"] += ms_since(t)
        except Exception:
            if due:  # applied: say so now, so the redelivery need not wait
                self._release(tx, result)
            raise
        return decision

    def _call_scoring(self, enrichment: Enrichment) -> tuple[Decision, float]:
        t = time.perf_counter()
        decision = self.scorer.score(enrichment.enriched)  # the HTTP client sends the bound trace
        return decision, ms_since(t)

    def _start_update(self, tx: Transaction, enrichment: Enrichment, result: Result) -> Callable[[], Outcome[float]]:
        """This delivery holds the lease: begin its counterparty update, exactly once (markers), and the
        transaction's entry in the transaction index, at the same time on the pool; the call returned
        waits for both, logs each entity already read past the update as a late update and gives the
        milliseconds it took, or the first error (the update is then maybe partly applied: the lease
        is handed back and the redelivery redoes both, the markers making what landed a no-op and the
        index entry the same bytes). A label that comes while the counters have moved and the index
        entry is still on its way is answered "not seen yet" and retried (txguard.enrichment.label_checks)."""
        t = time.perf_counter()
        indexing = self.overlap.start(lambda: self.index.record(tx))
        counting = self.overlap.start(
            lambda: self.counterparties.apply_transaction(tx, enrichment.new_for_cp, enrichment.new_for_device))

        def done() -> Outcome[float]:
            counted, indexed = counting.wait(), indexing.wait()
            error = counted.error or indexed.error
            if error is not None:
                return Outcome(error=error)
            applied = counted.get()
            log_late(self.log, applied.late)
            result.late_updates = len(applied.late)
            return Outcome(ms_since(t))

        return done

    def _publish(self, decision: Decision, published_at: str | None, trace: TraceContext | None) -> float:
        t = time.perf_counter()
        self.outbox.publish_decision(decision, published_at, trace=trace)
        return ms_since(t)

    def _hand_back(self, tx: Transaction) -> None:
        with contextlib.suppress(RetryableError):  # best effort: else the lease expires
            self.store.release_counterparty(tx.transaction_id)

    def _release(self, tx: Transaction, result: Result) -> None:
        """The delivery fails after its counterparty update: record it applied and drop the markers,
        so that the redelivery is not held back by the lease (best effort: else the lease expires)."""
        try:
            self.store.counterparty_applied(tx.transaction_id)
        except RetryableError:
            return
        result.timings["counterparty_ms"] += self._settle(tx)

    def _settle(self, tx: Transaction) -> float:
        """Drop the counterparty markers; the milliseconds it took. Best effort: the record already
        says applied, so a marker left behind (store down) only takes space until the table's
        garbage collection."""
        t = time.perf_counter()
        try:
            self.counterparties.settle_transaction(tx)
        except RetryableError as exc:
            self.log.warning(f"counterparty markers of {tx.transaction_id} left to garbage collection: {exc}",
                             extra={"transaction_id": tx.transaction_id, "wallet_id": tx.wallet_id})
        return ms_since(t)

    # the log line -------------------------------------------------------------------------------
    def count_more(self, result: Result) -> None:
        if result.late and result.status is DeliveryStatus.DECIDED:
            self.counts["late"] += 1

    def log_line(self, result: Result, count: int) -> tuple[str, dict[str, Any]]:
        return f"{result.status.value} {result.transaction_id or '-'}", {
            "transaction_id": result.transaction_id,
            "wallet_id": result.wallet_id,
            "status": result.status.value,
            "status_count": count,
            "outcome": result.decision.outcome.value if result.decision else None,
            "model_version": result.decision.model_version if result.decision else None,
            "reason": result.reason,
            "late": result.late,
            "late_updates": result.late_updates,
            "timings": result.timings,
        }


def build_enricher(settings: EnrichSettings) -> Enricher:
    log = get_logger("enrich", settings.log_level)
    if settings.history_store == "firestore" and settings.counterparty_store == "sqlite":
        # Shared wallet history but per-instance counterparty aggregates: each instance would see
        # only its own share of a counterparty's traffic and labels. Say so once, at cold start.
        log.warning("COUNTERPARTY_STORE=sqlite next to HISTORY_STORE=firestore: counterparty aggregates are "
                    "per instance (set COUNTERPARTY_STORE=bigtable; docs/counterparty.md)")
    counterparties = create_counterparty_store(settings)
    return Enricher(
        create_store(settings),
        ScoringClient.from_settings(settings),
        PubSubOutbox.from_settings(settings),
        counterparties,
        create_transaction_index(settings, getattr(counterparties, "client", None)),  # one Bigtable client
        log,
        project=settings.google_cloud_project,
    )


# Built after gunicorn forks, so gRPC is fork-safe.
_enricher: ProcessWide[Enricher] = ProcessWide(lambda: build_enricher(enrich_settings()))


def default_enricher() -> Enricher:
    return _enricher.get()


def install(enricher: Enricher | None) -> None:
    """Replace the process-wide enricher (functional tests wire in-memory fakes this way)."""
    _enricher.install(enricher)
