"""Real console parts on temporary stores, for the console's unit, functional and browser tests.

SQLite history, counterparty and queue files, a local registry holding the tiny model, the real in-process scorer
(txguard.scoring, which the console runtime itself never imports) and an in-memory label publisher
that keeps what it was given (Pub/Sub is exercised against the emulator in tests/integration).
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.scoring_fixtures import publish_tiny
from txguard.console.drift import drift_source
from txguard.console.identity import Identity
from txguard.console.label_outcomes import label_source
from txguard.console.live_stats import LiveStats
from txguard.console.queue_sqlite import SqliteReviewQueue
from txguard.console.wiring import ConsoleParts
from txguard.contract import names
from txguard.contract.errors import ConsoleUnavailableError
from txguard.contract.models import Decision, LabelEvent, Outcome, Transaction
from txguard.contract.settings import ConsoleSettings
from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore
from txguard.enrichment.history.sqlite import SqliteHistoryStore
from txguard.features.counterparty_windows import counterparty_features
from txguard.registry import open_registry


class MemoryLabelPublisher:
    """Keeps published label events; `fail` makes the next publishes fail like an unconfirmed publish."""

    def __init__(self) -> None:
        self.events: list[LabelEvent] = []
        self.fail = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def publish(self, event: LabelEvent) -> str:
        if self.fail:
            raise ConsoleUnavailableError("label not published (test failure); the verdict is kept, try again")
        with self._lock:
            self.events.append(event)
            return f"m{next(self._ids)}"


def in_process_scorer(registry: str) -> Any:
    from txguard.scoring.loading import open_scorer

    return open_scorer(f"{registry}@production")


def console_parts(tmp_path: Path, **settings: Any) -> ConsoleParts:
    registry = tmp_path / "registry"
    if not (registry / "aliases" / "production.json").exists():
        publish_tiny(registry)
    config = ConsoleSettings(**{
        "HISTORY_STORE": "sqlite", "SQLITE_PATH": str(tmp_path / "history.sqlite3"),
        "CONSOLE_QUEUE_PATH": str(tmp_path / "console.sqlite3"), "TXGUARD_REGISTRY": str(registry),
        "CONSOLE_INGEST": "false", **settings})
    return ConsoleParts(
        settings=config,
        queue=SqliteReviewQueue(config.queue_path),
        history=SqliteHistoryStore(config.sqlite_path),
        counterparties=SqliteCounterpartyStore(config.sqlite_path),
        scorer=in_process_scorer(str(registry)),
        registry=open_registry(str(registry)),
        publisher=MemoryLabelPublisher(),
        identity=Identity(config.iap_audience),
        stats=LiveStats(),
        drift=drift_source(config.drift_source, config.google_cloud_project),
        labels=label_source(config.label_source, config.google_cloud_project),
    )


def decide(parts: ConsoleParts, tx: Transaction, outcome: Outcome = Outcome.REVIEW, score: float = 0.5,
           published_at_ms: float | None = None, rules: list[dict[str, str]] | None = None) -> Decision:
    """What the pipeline does for `tx` (history applied, decision recorded and published), then the
    console receives the decision like from its subscription."""
    counterparty = counterparty_features(parts.counterparties.snapshot(tx), tx)
    enrichment = parts.history.enrich_once(tx, counterparty)
    decision = Decision(transaction_id=tx.transaction_id, wallet_id=tx.wallet_id, score=score, outcome=outcome,
                        reasons=["amount 7.4x the wallet's 30-day mean"], model_version="v1",
                        rules=rules or [], rule_set="r1" if rules else None)
    parts.history.record_decision(tx.transaction_id, decision)
    now = datetime.now(UTC).timestamp()
    attributes = {names.ATTR_OUTCOME: outcome.value}
    if published_at_ms is not None:
        attributes[names.ATTR_PUBLISHED_AT] = str(int(published_at_ms))
    parts.intake.on_decision(decision.model_dump_json().encode(), attributes, now)
    assert enrichment.enriched.features is not None
    return decision


def backtest_sample(path: Path, n: int = 3000, seed: int = 4) -> Path:
    """A small backtest sample (.npz) of made-up rows over 6 days: amounts, new counterparties, labels."""
    import numpy as np

    from txguard.features.wallet import FEATURE_NAMES
    from txguard.rules.backtest import BacktestSample

    rng = np.random.default_rng(seed)
    x = np.zeros((n, len(FEATURE_NAMES)))
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    x[:, col["amount"]] = rng.lognormal(3.5, 1.0, n)
    x[:, col["is_new_counterparty"]] = rng.random(n) < 0.2
    x[:, col["cp_age_days"]] = rng.exponential(10, n)
    fraud = (x[:, col["amount"]] > 100) & (x[:, col["is_new_counterparty"]] == 1) & (rng.random(n) < 0.5)
    scores = np.clip(rng.random(n) * 0.01 + fraud * rng.random(n) * 0.5, 0, 1)
    start = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    types = np.where(rng.random(n) < 0.7, "payment", "transfer")
    sample = BacktestSample(
        x=x, ts=np.sort(start + rng.random(n) * 6 * 86400), is_fraud=fraud.astype(np.int8),
        label_time=np.full(n, np.nan), scores=scores, review=0.05, block=0.4, model_version="v1",
        texts={"type": types, "wallet_id": np.array([f"w{i % 50}" for i in range(n)]),
               "counterparty_id": np.array([f"m{i % 300}" for i in range(n)])},
        scenario=np.where(fraud, "fake_shop", "legit"), source="made up for tests")
    out = path / "sample.npz"
    sample.save(out)
    return out
