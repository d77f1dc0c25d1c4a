"""Settings from the environment, in one place: one pydantic-settings class per deployable.

Every variable is documented in the README's configuration table. Read once at cold start
(`scoring_settings()` / `enrich_settings()` / `label_settings()` are cached).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
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
    # The review queue: in Firestore next to the history, or this SQLite file when the history is SQLite.
    queue_path: str = Field(".txguard/console.sqlite3", alias="CONSOLE_QUEUE_PATH")
    scoring_url: str = Field("http://127.0.0.1:8081", alias="SCORING_URL")
    scoring_timeout_s: float = Field(5.0, alias="SCORING_TIMEOUT_S", gt=0)
    scoring_auth: Literal["auto", "none", "id_token"] = Field("auto", alias="SCORING_AUTH")
    registry: str = Field(DEFAULT_LOCAL_REGISTRY, alias="TXGUARD_REGISTRY")
    # How long a claimed review item stays with its analyst before anyone may take it.
    claim_ttl_s: int = Field(300, alias="CLAIM_TTL_S", ge=5, le=86_400)
    # Set in Google Cloud: every request must carry an IAP assertion for this audience.
    iap_audience: str = Field("", alias="IAP_AUDIENCE")
    # Pull the console's subscriptions in the background (off when the local stack feeds it directly).
    ingest: bool = Field(True, alias="CONSOLE_INGEST")
    # Where the models page reads the scoring function's drift windows: "" (nowhere), "cloud-logging"
    # (the project's logs), "cloud-logging:<log view>" (only that view, what infra sets), or
    # "file:<path>" (a local scoring function's log); and the PSI it marks as drift.
    drift_source: str = Field("", alias="DRIFT_SOURCE",
                              pattern=r"^(|cloud-logging|cloud-logging:projects/[^/]+/locations/[^/]+/buckets/[^/]+"
                                      r"/views/[^/]+|file:.+)$")
    drift_psi_threshold: float = Field(0.2, alias="DRIFT_PSI_THRESHOLD", gt=0)
    # Who may move production from the console (identities, comma-separated; empty: nobody, the CLI does).
    approvers: str = Field("", alias="CONSOLE_APPROVERS")
    # The backtest sample the Rules page replays (`txguard rules backtest --save-sample`; local up passes its own).
    backtest_sample: str = Field("", alias="BACKTEST_SAMPLE")


@lru_cache(maxsize=1)
def scoring_settings() -> ScoringSettings:
    return ScoringSettings()


class LabelSettings(CounterpartySettings):
    """The label function: applies label events to the counterparty store (no other dependency)."""


@lru_cache(maxsize=1)
def enrich_settings() -> EnrichSettings:
    return EnrichSettings()


@lru_cache(maxsize=1)
def label_settings() -> LabelSettings:
    return LabelSettings()


@lru_cache(maxsize=1)
def console_settings() -> ConsoleSettings:
    return ConsoleSettings()
