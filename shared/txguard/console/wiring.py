"""The console's parts, built once from ConsoleSettings (or handed in by the local stack and tests).

`ConsoleParts.start_ingest()` starts pulling the console's subscriptions; it is called on the
first request (functions-framework imports the entry point in gunicorn's arbiter before it forks
the worker, so threads and gRPC channels must wait for the worker: the Cloud Run startup probe on
/healthz is that first request).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from logging import Logger
from typing import Any

from flask import current_app

from txguard.console.approvers import Approvers
from txguard.console.drift import DriftWindows, NoDriftWindows, drift_source
from txguard.console.identity import Identity
from txguard.console.ingest import Intake, SubscriptionReader
from txguard.console.label_outcomes import LabelOutcomes, label_source
from txguard.console.label_publisher import LabelPublisher
from txguard.console.live_stats import LiveStats, StreamSlots
from txguard.console.review import Reviews
from txguard.console.review_queue import ReviewQueue
from txguard.contract.logs import get_logger
from txguard.contract.settings import ConsoleSettings
from txguard.enrichment.counterparty import CounterpartyStore, create_counterparty_store
from txguard.enrichment.history import HistoryStore
from txguard.enrichment.scoring_client import ScoringBackend, ScoringClient
from txguard.registry import Registry, open_registry


@dataclass
class ConsoleParts:
    settings: ConsoleSettings
    queue: ReviewQueue
    history: HistoryStore
    counterparties: CounterpartyStore
    scorer: ScoringBackend
    registry: Registry
    publisher: LabelPublisher
    identity: Identity
    stats: LiveStats = field(default_factory=LiveStats)
    drift: DriftWindows = field(default_factory=NoDriftWindows)
    labels: LabelOutcomes | None = None  # what the label function did with a label (LABEL_SOURCE)
    log: Logger = field(default_factory=lambda: get_logger("console"))
    reader: SubscriptionReader | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.approvers = Approvers.parse(self.settings.approvers)  # who may move production
        self.streams = StreamSlots(self.settings.live_streams)  # live-view streams served at once
        self.intake = Intake(self.queue, self.history, self.stats, self.log)
        self.reviews = Reviews(self.queue, self.publisher, self.settings.claim_ttl_s, log=self.log)

    def start_ingest(self) -> None:
        """Pull the console's subscriptions (idempotent; a no-op when CONSOLE_INGEST is off)."""
        if not self.settings.ingest or self.reader is not None:
            return
        with self._lock:
            if self.reader is None:
                self.reader = SubscriptionReader(self.settings.google_cloud_project, self.intake.handlers(),
                                                 self.log).start()

    def health(self) -> dict[str, Any]:
        """`status` "failing" (the console's /healthz answers 503) when a subscription's pulls have kept
        failing (FAILING_AFTER_S): the queue and the live view would silently stop moving."""
        failing = self.reader.failing() if self.reader else {}
        return {
            "status": "failing" if failing else "ok",
            "failing_subscriptions": failing,
            "ingest": "off" if not self.settings.ingest else ("running" if self.reader and self.reader.running
                                                               else "starting"),
            "ingest_errors": dict(self.reader.errors) if self.reader else {},
            "queued": self.intake.queued,
            "malformed_decisions": self.intake.malformed,
        }

    def close(self) -> None:
        if self.reader is not None:
            self.reader.stop()
            self.reader = None
        for part in (self.queue, self.history, self.counterparties, self.publisher):
            close = getattr(part, "close", None)
            if close is not None:
                close()
        scorer_close = getattr(self.scorer, "close", None)
        if scorer_close is not None:
            scorer_close()


def current_parts() -> ConsoleParts:
    """The parts of the console app serving this request (its pages and hooks read them here)."""
    return current_app.config["parts"]


def create_queue(settings: ConsoleSettings) -> ReviewQueue:
    """Firestore when the history is in Firestore (cloud, emulators), else the SQLite file."""
    if settings.history_store == "firestore":
        from txguard.console.queue_firestore import FirestoreReviewQueue

        return FirestoreReviewQueue(project=settings.google_cloud_project, database=settings.firestore_database)
    from txguard.console.queue_sqlite import SqliteReviewQueue

    return SqliteReviewQueue(settings.queue_path)


def history_store(settings: ConsoleSettings) -> HistoryStore:
    """The enrichment's history store, opened only to read (wallet states, processed records)."""
    if settings.history_store == "firestore":
        from txguard.enrichment.history.firestore import FirestoreHistoryStore

        return FirestoreHistoryStore(project=settings.google_cloud_project, database=settings.firestore_database)
    from txguard.enrichment.history.sqlite import SqliteHistoryStore

    return SqliteHistoryStore(settings.sqlite_path)


def build_console(settings: ConsoleSettings, scorer: ScoringBackend | None = None,
                  publisher: LabelPublisher | None = None) -> ConsoleParts:

    if publisher is None:
        from txguard.console.label_publisher import PubSubLabelPublisher

        publisher = PubSubLabelPublisher(settings.google_cloud_project, timeout_s=settings.publish_timeout_s)
    return ConsoleParts(
        settings=settings,
        queue=create_queue(settings),
        history=history_store(settings),
        counterparties=create_counterparty_store(settings),  # read only: snapshots for manual scoring
        scorer=scorer or ScoringClient(settings.scoring_url, settings.scoring_timeout_s, settings.scoring_auth),
        registry=open_registry(settings.registry),
        publisher=publisher,
        identity=Identity(settings.iap_audience),
        drift=drift_source(settings.drift_source, settings.google_cloud_project),
        labels=label_source(settings.label_source, settings.google_cloud_project),
        log=get_logger("console", settings.log_level),
    )
