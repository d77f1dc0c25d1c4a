"""Settings from the environment, in one place: one pydantic-settings class per deployable.

Every variable is documented in the README's configuration table. Read once at cold start
(`scoring_settings()` / `enrich_settings()` / `label_settings()` are cached).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import PurePath
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from txguard.contract import names
from txguard.contract.models import MAX_BATCH

DEFAULT_LOCAL_REGISTRY = "models/registry"

# gunicorn serving of the scoring function (functions-framework reads WORKERS and THREADS from the
# environment; the infra sets them from these). CPU-bound scoring: one thread per worker, one
# worker per CPU. Measured with `txguard bench score --sweep`; see docs/scoring.md.
SCORING_WORKERS = 2
SCORING_THREADS = 1


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    google_cloud_project: str = Field("txguard-local", alias="GOOGLE_CLOUD_PROJECT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")


class ScoringSettings(CommonSettings):
    # Registry location and reference: gs://bucket/prefix@production, models/registry@v3, ...
    model_uri: str = Field(f"{DEFAULT_LOCAL_REGISTRY}@production", alias="MODEL_URI")
    max_batch: int = Field(MAX_BATCH, alias="MAX_BATCH", ge=1, le=MAX_BATCH)
    max_body_bytes: int = Field(4 * 1024 * 1024, alias="MAX_BODY_BYTES", ge=1024)
    inference_threads: int = Field(1, alias="INFERENCE_THREADS", ge=1)
    # POST /score and /score/batch answered at the WSGI layer of functions-framework's app instead of
    # through Flask's per-request machinery (txguard.scoring.wsgi; same bytes, docs/scoring.md).
    fast_routes: bool = Field(True, alias="FAST_ROUTES")
    # Model lifecycle (docs/lifecycle.md). Seconds between conditional reads of the alias; 0: load
    # once at cold start and never follow (the behaviour before promotion without redeploy).
    model_poll_s: float = Field(10.0, alias="MODEL_POLL_S", ge=0)
    model_load_attempts: int = Field(3, alias="MODEL_LOAD_ATTEMPTS", ge=1, le=10)
    shadow_enabled: bool = Field(False, alias="SHADOW_ENABLED")
    # Shares of transactions the observer thread looks at (txguard.scoring.observer says why a sample).
    shadow_sample_rate: float = Field(0.1, alias="SHADOW_SAMPLE_RATE", ge=0.0, le=1.0)
    drift_sample_rate: float = Field(0.1, alias="DRIFT_SAMPLE_RATE", ge=0.0, le=1.0)
    # Drift windows: closed after this many seconds or sampled rows, whichever first; DRIFT_WINDOW_S=0: no drift.
    drift_window_s: float = Field(300.0, alias="DRIFT_WINDOW_S", ge=0)
    drift_window_rows: int = Field(20_000, alias="DRIFT_WINDOW_ROWS", ge=500)
    # Rules beside the model (docs/rules.md): the rule set alias applied after the model, read from
    # MODEL_URI's registry and followed like the model alias; "" applies none.
    rules_alias: str = Field("production", alias="RULES_ALIAS", pattern=r"^([a-z][a-z0-9_-]{0,39})?$")
    # Share of transactions the `staging` rule set sees in shadow (after the answer, logged, never returned).
    rules_shadow_rate: float = Field(1.0, alias="RULES_SHADOW_RATE", ge=0.0, le=1.0)


class CounterpartySettings(CommonSettings):
    """Where the counterparty aggregates live: read and written by enrichment, written by labels."""

    counterparty_store: Literal["bigtable", "sqlite"] = Field("sqlite", alias="COUNTERPARTY_STORE")
    # The SQLite file is shared with the history store in embedded mode (SQLITE_PATH).
    sqlite_path: str = Field(".txguard/history.sqlite3", alias="SQLITE_PATH")
    bigtable_instance: str = Field(names.BIGTABLE_INSTANCE, alias="BIGTABLE_INSTANCE")
    counterparty_table: str = Field(names.COUNTERPARTY_TABLE, alias="COUNTERPARTY_TABLE")
    # Rows per (entity, day) that concurrent updates spread over (docs/counterparty.md: a hot
    # counterparty's writes are spread, reads scan them all in one range).
    counterparty_shards: int = Field(4, alias="COUNTERPARTY_SHARDS", ge=1, le=64)
    # What every label is checked against (written by enrichment, read by the label function; Bigtable
    # next to the counterparty table, or the SQLite file): names.TRANSACTION_INDEX_TABLE.
    transaction_index_table: str = Field(names.TRANSACTION_INDEX_TABLE, alias="TRANSACTION_INDEX_TABLE")
    invalid_topic: str = Field(names.INVALID_TOPIC, alias="INVALID_TOPIC")
    # How long to wait for Pub/Sub to confirm a publish before failing the delivery (retryable).
    publish_timeout_s: float = Field(30.0, alias="PUBLISH_TIMEOUT_S", gt=0)


class EnrichSettings(CounterpartySettings):
    scoring_url: str = Field("http://127.0.0.1:8081", alias="SCORING_URL")
    scoring_timeout_s: float = Field(5.0, alias="SCORING_TIMEOUT_S", gt=0)
    # "auto": fetch an ID token for SCORING_URL's audience when running in Google Cloud.
    scoring_auth: Literal["auto", "none", "id_token"] = Field("auto", alias="SCORING_AUTH")
    history_store: Literal["firestore", "sqlite"] = Field("sqlite", alias="HISTORY_STORE")
    firestore_database: str = Field("(default)", alias="FIRESTORE_DATABASE")
    firestore_max_attempts: int = Field(30, alias="FIRESTORE_MAX_ATTEMPTS", ge=1)
    processed_ttl_days: int = Field(7, alias="PROCESSED_TTL_DAYS", ge=1)
    # A delivery that claims a transaction's counterparty update holds it this long; a duplicate
    # arriving meanwhile is retried instead of racing it (docs/counterparty.md, exactly once).
    counterparty_lease_s: float = Field(30.0, alias="COUNTERPARTY_LEASE_S", gt=0)
    decisions_topic: str = Field(names.DECISIONS_TOPIC, alias="DECISIONS_TOPIC")


class ConsoleSettings(CounterpartySettings):
    """The analyst console (docs/console.md): the same store, scoring and registry variables as the
    functions it looks into (it reads the history and counterparty stores, never writes them), plus
    its own."""

    history_store: Literal["firestore", "sqlite"] = Field("sqlite", alias="HISTORY_STORE")
    firestore_database: str = Field("(default)", alias="FIRESTORE_DATABASE")
    # The review queue: in Firestore next to the history, or this SQLite file when the history is SQLite;
    # unset, `console.sqlite3` in SQLITE_PATH's folder (a stack's work folder, not wherever it was started).
    queue_path: str = Field("", alias="CONSOLE_QUEUE_PATH")
    scoring_url: str = Field("http://127.0.0.1:8081", alias="SCORING_URL")
    scoring_timeout_s: float = Field(5.0, alias="SCORING_TIMEOUT_S", gt=0)
    scoring_auth: Literal["auto", "none", "id_token"] = Field("auto", alias="SCORING_AUTH")
    registry: str = Field(DEFAULT_LOCAL_REGISTRY, alias="TXGUARD_REGISTRY")
    # How long a claimed review item stays with its analyst before anyone may take it.
    claim_ttl_s: int = Field(300, alias="CLAIM_TTL_S", ge=5, le=86_400)
    # Set in Google Cloud: every request must carry an IAP assertion for this audience.
    iap_audience: str = Field("", alias="IAP_AUDIENCE")
    # Who may move `production` (promote, roll back): identities as the console names analysts (IAP
    # e-mails in Google Cloud, the local name otherwise), comma-separated; empty: nobody may.
    approvers: str = Field("", alias="CONSOLE_APPROVERS")
    # Pull the console's subscriptions in the background (off when the local stack feeds it directly).
    ingest: bool = Field(True, alias="CONSOLE_INGEST")
    # Where the models page reads the scoring function's drift windows: "" (nowhere), "cloud-logging"
    # (the project's logs), "cloud-logging:<log view>" (only that view, what infra sets), or
    # "file:<path>" (a local scoring function's log); and the PSI it marks as drift.
    drift_source: str = Field("", alias="DRIFT_SOURCE",
                              pattern=r"^(|cloud-logging|cloud-logging:projects/[^/]+/locations/[^/]+/buckets/[^/]+"
                                      r"/views/[^/]+|file:.+)$")
    drift_psi_threshold: float = Field(0.2, alias="DRIFT_PSI_THRESHOLD", gt=0)
    # Where the item page reads what the label function did with a verdict's label: "" (it cannot
    # tell), "cloud-logging" (the project's logs) or "file:<path>" (a local label function's log).
    label_source: str = Field("", alias="LABEL_SOURCE", pattern=r"^(|cloud-logging|cloud-logging:projects/.+|file:.+)$")

    # The backtest sample the Rules page replays (`txguard rules backtest --save-sample`; local up passes its own).
    backtest_sample: str = Field("", alias="BACKTEST_SAMPLE")

    # Live-view streams (SSE) served at once: each holds a server thread for its whole life, so past
    # this many a page polls instead (the console has CONCURRENCY threads for everyone).
    live_streams: int = Field(8, alias="CONSOLE_LIVE_STREAMS", ge=0, le=64)
    # Host names the console answers to (comma-separated; a leading dot admits subdomains): any other
    # Host header is refused, which defeats DNS rebinding. Infra sets the service's run.app host.
    trusted_hosts: str = Field("127.0.0.1,localhost,::1", alias="CONSOLE_TRUSTED_HOSTS")
    # Set by Cloud Run on every service: the console refuses to start there without IAP_AUDIENCE.
    cloud_run_service: str = Field("", alias="K_SERVICE")

    @model_validator(mode="after")
    def _queue_next_to_the_history(self) -> ConsoleSettings:
        if not self.queue_path:
            self.queue_path = str(PurePath(self.sqlite_path).parent / "console.sqlite3")
        return self

    @model_validator(mode="after")
    def _iap_on_cloud_run(self) -> ConsoleSettings:
        if self.cloud_run_service and not self.iap_audience:
            raise ValueError(f"IAP_AUDIENCE is required on Cloud Run (K_SERVICE={self.cloud_run_service}): "
                             "without it every request would be served without checking who sent it")
        return self

    def trusted_host_list(self) -> list[str]:
        return [h.strip() for h in self.trusted_hosts.replace(" ", ",").split(",") if h.strip()]


@lru_cache(maxsize=1)
def scoring_settings() -> ScoringSettings:
    return ScoringSettings()


class LabelSettings(CounterpartySettings):
    """The label function: checks each label against its route and the transaction index, holds what
    exceeds the limits, applies the rest to the counterparty store (docs/counterparty.md, "Who may label")."""

    # A label whose transaction is not in the index is retried (503) this long after it was published,
    # then parked on `invalid`: it may precede its transaction (a replay, a test, a transaction held up in
    # a backlog). Below the push subscription's 10 attempts at 1-60 s (about 4 minutes), so it is parked
    # with its reason instead of dead-lettered.
    unknown_retry_s: float = Field(180.0, alias="LABEL_UNKNOWN_RETRY_S", ge=0, le=230)
    # The limits (txguard.enrichment.label_limits): over a sliding window, labels per source (an analyst's,
    # a feed's) and fraud labels per counterparty; beyond them a label is held for review, not applied.
    limit_window_s: int = Field(3600, alias="LABEL_LIMIT_WINDOW_S", ge=60, le=86_400)
    analyst_source_limit: int = Field(120, alias="LABEL_ANALYST_SOURCE_LIMIT", ge=0)
    feed_source_limit: int = Field(5000, alias="LABEL_FEED_SOURCE_LIMIT", ge=0)
    counterparty_fraud_limit: int = Field(50, alias="LABEL_COUNTERPARTY_FRAUD_LIMIT", ge=0)


@lru_cache(maxsize=1)
def enrich_settings() -> EnrichSettings:
    return EnrichSettings()


@lru_cache(maxsize=1)
def label_settings() -> LabelSettings:
    return LabelSettings()


@lru_cache(maxsize=1)
def console_settings() -> ConsoleSettings:
    return ConsoleSettings()
