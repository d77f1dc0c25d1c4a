"""Stack configuration, read once from `pulumi.Config` into a typed, validated object.

Every tunable of the deployment is a stack config key with a default here, so `Pulumi.<stack>.yaml`
only lists what differs from the defaults. The defaults are the seed capacity figures explained in
docs/capacity.md ("Deployed defaults"); docs/deploy.md has the table of keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi

from txguard.contract import names, settings

PROJECT_KEY = "txguard"  # config namespace: `pulumi config set txguard:<key> <value>`

# Scoring is CPU-bound (ONNX inference): one thread per gunicorn worker, one worker per CPU.
# Measured by `txguard bench score`; the single source is shared/txguard/contract/settings.py.
DEFAULT_SCORING_WORKERS = settings.SCORING_WORKERS
DEFAULT_SCORING_THREADS = settings.SCORING_THREADS

_CPU_VALUES = ("0.083", "0.167", "0.333", "0.5", "0.583", "1", "2", "4", "6", "8")
_INGRESS = ("ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB")


class ConfigError(ValueError):
    """A stack config value that Cloud Run functions would reject, caught before `pulumi up`."""


@dataclass(frozen=True)
class FunctionConfig:
    """Capacity and runtime knobs of one Cloud Run function (gen2)."""

    concurrency: int
    min_instances: int
    max_instances: int
    cpu: str
    memory: str
    timeout_seconds: int
    ingress: str
    workers: int
    threads: int

    def validate(self, label: str) -> None:
        if self.concurrency < 1 or self.concurrency > 1000:
            raise ConfigError(f"{label}: concurrency must be in 1..1000, got {self.concurrency}")
        if not 0 <= self.min_instances <= self.max_instances:
            raise ConfigError(f"{label}: need 0 <= minInstances <= maxInstances, got "
                              f"{self.min_instances}/{self.max_instances}")
        if self.cpu not in _CPU_VALUES:
            raise ConfigError(f"{label}: cpu must be one of {_CPU_VALUES}, got {self.cpu!r}")
        if self.concurrency > 1 and float(self.cpu) < 1:
            raise ConfigError(f"{label}: concurrency > 1 needs at least 1 CPU, got {self.cpu}")
        if not (self.memory.endswith("Mi") or self.memory.endswith("Gi")):
            raise ConfigError(f"{label}: memory must be like 512Mi or 2Gi, got {self.memory!r}")
        if not 1 <= self.timeout_seconds <= 3600:
            raise ConfigError(f"{label}: timeoutSeconds must be in 1..3600, got {self.timeout_seconds}")
        if self.ingress not in _INGRESS:
            raise ConfigError(f"{label}: ingress must be one of {_INGRESS}, got {self.ingress!r}")
        if self.workers < 1 or self.threads < 1:
            raise ConfigError(f"{label}: workers and threads must be >= 1")


@dataclass(frozen=True)
class DeliveryConfig:
    """Retry and dead-letter policy of the enrichment push subscription."""

    max_delivery_attempts: int
    min_backoff_seconds: int
    max_backoff_seconds: int
    ack_deadline_seconds: int

    def validate(self) -> None:
        if not 5 <= self.max_delivery_attempts <= 100:
            raise ConfigError("maxDeliveryAttempts must be in 5..100 (Pub/Sub limits)")
        if not 0 <= self.min_backoff_seconds <= self.max_backoff_seconds <= 600:
            raise ConfigError("need 0 <= minBackoffSeconds <= maxBackoffSeconds <= 600")
        if not 10 <= self.ack_deadline_seconds <= 600:
            raise ConfigError("ackDeadlineSeconds must be in 10..600")


@dataclass(frozen=True)
class LifecycleConfig:
    """Model lifecycle in the scoring function (docs/lifecycle.md): alias following, shadow, drift."""

    model_poll_seconds: float  # MODEL_POLL_S: promote / rollback reach every instance within about this
    shadow_enabled: bool  # SHADOW_ENABLED: score with `staging` too, after the answer
    shadow_sample_rate: float  # SHADOW_SAMPLE_RATE
    drift_window_seconds: float  # DRIFT_WINDOW_S (0: no drift windows, and the drift alert never fires)
    drift_psi_threshold: float  # alert when the windows' PSI stays above this...
    drift_alert_minutes: int  # ...for this long

    def validate(self) -> None:
        if not 0 <= self.model_poll_seconds <= 300:
            raise ConfigError("modelPollSeconds must be in 0..300 (0: load at cold start only)")
        if not 0 <= self.shadow_sample_rate <= 1:
            raise ConfigError("shadowSampleRate is a fraction in [0, 1]")
        if self.drift_window_seconds < 0:
            raise ConfigError("driftWindowSeconds must be >= 0")
        if self.drift_psi_threshold <= 0:
            raise ConfigError("driftPsiThreshold must be > 0 (0.2 is the usual 'significant shift')")
        if self.drift_alert_minutes * 60 < 2 * self.drift_window_seconds:
            raise ConfigError("driftAlertMinutes must cover at least two drift windows (driftWindowSeconds)")


@dataclass(frozen=True)
class AlertConfig:
    """Thresholds of the alerts beyond errors and scoring latency (infra/alerts.py)."""

    enrich_latency_sla_ms: float = 1000.0  # enrichment p99 request latency (store + scoring + publish)
    oldest_unacked_age_s: int = 300  # the push subscription's oldest unacked message: a stalled pipeline
    invalid_share: float = 0.05  # deliveries parked on `invalid` (malformed or refused) per delivery
    dead_letter_share: float = 0.01  # messages dead-lettered per message acked on the push subscription
    blocked_share: float = 0.05  # blocked decisions per decision (a model or a fraud wave)

    def validate(self) -> None:
        if self.enrich_latency_sla_ms <= 0 or self.oldest_unacked_age_s < 60:
            raise ConfigError("enrichLatencySlaMs must be > 0 and oldestUnackedAgeSeconds >= 60")
        for key, value in (("invalidShare", self.invalid_share), ("deadLetterShare", self.dead_letter_share),
                           ("blockedShare", self.blocked_share)):
            if not 0 < value < 1:
                raise ConfigError(f"{key} is a fraction in (0, 1), got {value}")


@dataclass(frozen=True)
class CounterpartyStoreConfig:
    """The Bigtable instance and table of the counterparty aggregates (infra/counterparty.py).

    One cluster in one zone of the region. A fixed node count (`nodes`) unless autoscaling is asked
    for (`max_nodes` set): then Bigtable keeps CPU near `cpu_target` % between `min_nodes` and
    `max_nodes`. docs/capacity.md sizes it; the dev default, one SSD node, is the smallest there is.
    """

    instance: str  # BIGTABLE_INSTANCE of both functions
    table: str  # COUNTERPARTY_TABLE
    zone: str
    storage_type: str  # SSD (every transaction reads its rows: the latency one) or HDD
    nodes: int
    min_nodes: int | None
    max_nodes: int | None
    cpu_target: int
    shards: int  # COUNTERPARTY_SHARDS: rows a hot counterparty's day is spread over
    index_table: str = "transaction_index"  # TRANSACTION_INDEX_TABLE, in the same instance

    @property
    def autoscaling(self) -> bool:
        return self.max_nodes is not None

    def validate(self, region: str) -> None:
        if not 6 <= len(self.instance) <= 33:
            raise ConfigError(f"bigtableInstance: an instance id has 6 to 33 characters, got {self.instance!r}")
        if not self.zone.startswith(f"{region}-"):
            raise ConfigError(f"bigtableZone: {self.zone!r} is not a zone of the region {region}")
        if self.storage_type not in ("SSD", "HDD"):
            raise ConfigError(f"bigtableStorageType must be SSD or HDD, got {self.storage_type!r}")
        if self.nodes < 1:
            raise ConfigError(f"bigtableNodes must be >= 1, got {self.nodes}")
        if self.autoscaling:
            low = self.min_nodes or 1
            if not 1 <= low <= (self.max_nodes or 0):
                raise ConfigError(f"need 1 <= bigtableMinNodes <= bigtableMaxNodes, got {low}/{self.max_nodes}")
            if not 10 <= self.cpu_target <= 80:
                raise ConfigError(f"bigtableCpuTarget is a percentage in 10..80, got {self.cpu_target}")
        elif self.min_nodes is not None:
            raise ConfigError("bigtableMinNodes needs bigtableMaxNodes (autoscaling); else set bigtableNodes")
        if not 1 <= self.shards <= 64:
            raise ConfigError(f"counterpartyShards must be in 1..64, got {self.shards}")


@dataclass(frozen=True)
class LabelTrustConfig:
    """Who may label and how much (txguard.enrichment.label_checks, label_limits; docs/counterparty.md,
    "Who may label"): the label function's settings, and the alert on one source's fraud labels."""

    unknown_retry_seconds: float
    limit_window_seconds: int
    analyst_source_limit: int
    feed_source_limit: int
    counterparty_fraud_limit: int
    # Alert when one source's fraud labels over 1 h pass this (below the hold: a warning before it bites).
    fraud_alert_per_source: int

    def validate(self) -> None:
        retry = settings.LabelSettings.model_fields["unknown_retry_s"].metadata
        high = next(m.le for m in retry if getattr(m, "le", None) is not None)
        if not 0 <= self.unknown_retry_seconds <= high:
            raise ConfigError(f"labelUnknownRetrySeconds must be in 0..{high} (below the push subscription's "
                              "10 attempts at 1-60 s, so the label is parked with its reason, not dead-lettered)")
        if not 60 <= self.limit_window_seconds <= 86_400:
            raise ConfigError("labelLimitWindowSeconds must be in 60..86400")
        for key, value in (("labelAnalystSourceLimit", self.analyst_source_limit),
                           ("labelFeedSourceLimit", self.feed_source_limit),
                           ("labelCounterpartyFraudLimit", self.counterparty_fraud_limit),
                           ("labelFraudAlertPerSource", self.fraud_alert_per_source)):
            if value < 0:
                raise ConfigError(f"{key} must be >= 0 (0 turns it off), got {value}")


@dataclass(frozen=True)
class BatchConfig:
    """Dataflow runs of `txguard batch run`: their bucket, how long staging/temp files live, who launches."""

    bucket: str
    temp_retention_days: int
    launchers: tuple[str, ...] = ()  # IAM members, e.g. "group:fraud-analysts@example.com"

    def validate(self) -> None:
        if not 1 <= self.temp_retention_days <= 365:
            raise ConfigError("batchTempRetentionDays must be in 1..365")
        for member in self.launchers:
            kind = member.split(":", 1)[0]
            if kind not in ("user", "group", "serviceAccount", "domain") or ":" not in member:
                raise ConfigError(f"batchLaunchers: {member!r} is not an IAM member like user:you@example.com")


@dataclass(frozen=True)
class StackConfig:
    project: str
    region: str
    stack: str
    prefix: str
    scoring: FunctionConfig
    enrich: FunctionConfig
    label: FunctionConfig
    delivery: DeliveryConfig
    counterparty: CounterpartyStoreConfig
    models_bucket: str
    sources_bucket: str
    model_uri: str
    model_rollout: str  # any change rolls the scoring instances, so all load the alias's new target
    python_runtime: str
    log_level: str
    firestore_database: str
    firestore_location: str
    processed_ttl_days: int
    ttl_policy: bool
    model_versions_retention_days: int
    force_destroy: bool
    build_service_account: bool
    enable_apis: bool
    latency_sla_ms: float  # scoring: p99 of Cloud Run's request latency (what enrichment waits)
    error_rate_threshold: float
    lifecycle: LifecycleConfig
    batch: BatchConfig
    label_trust: LabelTrustConfig
    alerts: AlertConfig = field(default_factory=lambda: AlertConfig())
    alert_emails: tuple[str, ...] = field(default_factory=tuple)
    labels: dict[str, str] = field(default_factory=dict)
    # Google group whose members may open the analyst console (through IAP); "" = no console.
    analysts_group: str = ""
    # Who may move `production` from the console (e-mails as IAP names them); none: nobody may.
    production_approvers: tuple[str, ...] = ()
    # Host names the console answers to besides its run.app URL (a custom domain in front of it).
    console_hosts: tuple[str, ...] = ()

    def validate(self) -> None:
        self.scoring.validate("scoring")
        self.enrich.validate("enrich")
        self.label.validate("label")
        self.delivery.validate()
        self.counterparty.validate(self.region)
        self.lifecycle.validate()
        self.batch.validate()
        if self.enrich.timeout_seconds > self.delivery.ack_deadline_seconds:
            # Pub/Sub would redeliver a message the function is still working on.
            raise ConfigError("enrichTimeoutSeconds must not exceed the push ackDeadlineSeconds")
        label_ack = names.subscription(names.LABELS_PUSH_SUBSCRIPTION).ack_deadline_seconds
        if self.label.timeout_seconds > label_ack:
            raise ConfigError(f"labelTimeoutSeconds must not exceed the label push ack deadline ({label_ack} s)")
        if self.scoring.min_instances < 1:
            pulumi.log.warn("scoringMinInstances is 0: the first transaction after idle pays a cold start")
        if not 0 < self.error_rate_threshold < 1:
            raise ConfigError("errorRateThreshold is a fraction in (0, 1)")
        self.alerts.validate()
        self.label_trust.validate()
        for who in self.production_approvers:
            if not re.fullmatch(r"[^@\s:,]+@[^@\s:,]+\.[^@\s:,]+", who):
                raise ConfigError(f"productionApprovers: {who!r} is not an e-mail address (IAP names people by e-mail)")
        if self.analysts_group and not self.production_approvers:
            pulumi.log.warn("productionApprovers is empty: nobody may move production from the console")
        if self.analysts_group and not re.fullmatch(r"[^@\s:]+@[^@\s:]+\.[^@\s:]+", self.analysts_group):
            raise ConfigError(f"analystsGroup is a Google group's e-mail address, got {self.analysts_group!r}")
        if not self.analysts_group:
            pulumi.log.warn("analystsGroup is not set: the analyst console is not deployed")


def _function(cfg: pulumi.Config, prefix: str, *, min_instances: int, timeout: int, ingress: str,
              workers: int, threads: int, max_instances: int = 100, cpu: str = "2",
              memory: str = "2Gi") -> FunctionConfig:
    return FunctionConfig(
        concurrency=cfg.get_int(f"{prefix}Concurrency") or 10,
        min_instances=_int(cfg, f"{prefix}MinInstances", min_instances),
        max_instances=cfg.get_int(f"{prefix}MaxInstances") or max_instances,
        cpu=cfg.get(f"{prefix}Cpu") or cpu,
        memory=cfg.get(f"{prefix}Memory") or memory,
        timeout_seconds=cfg.get_int(f"{prefix}TimeoutSeconds") or timeout,
        ingress=cfg.get(f"{prefix}Ingress") or ingress,
        workers=cfg.get_int(f"{prefix}Workers") or workers,
        threads=cfg.get_int(f"{prefix}Threads") or threads,
    )


def _int(cfg: pulumi.Config, key: str, default: int) -> int:
    """`get_int(...) or default` would turn an explicit 0 into the default."""
    value = cfg.get_int(key)
    return default if value is None else value


def _bool(cfg: pulumi.Config, key: str, default: bool) -> bool:
    value = cfg.get_bool(key)
    return default if value is None else value


def _float(cfg: pulumi.Config, key: str, default: float) -> float:
    value = cfg.get_float(key)
    return default if value is None else value


def _default(field: str, of: type = settings.ScoringSettings):  # noqa: ANN202 - the function's own default
    return of.model_fields[field].default


def _counterparty(cfg: pulumi.Config, region: str) -> CounterpartyStoreConfig:
    """Bigtable for the counterparty aggregates; names default to the functions' own settings defaults."""
    store = settings.CounterpartySettings
    max_nodes = cfg.get_int("bigtableMaxNodes")
    return CounterpartyStoreConfig(
        instance=cfg.get("bigtableInstance") or _default("bigtable_instance", store),
        table=cfg.get("counterpartyTable") or _default("counterparty_table", store),
        zone=cfg.get("bigtableZone") or f"{region}-b",
        storage_type=(cfg.get("bigtableStorageType") or "SSD").upper(),
        nodes=cfg.get_int("bigtableNodes") or 1,
        min_nodes=cfg.get_int("bigtableMinNodes"),
        max_nodes=max_nodes,
        cpu_target=cfg.get_int("bigtableCpuTarget") or 60,
        shards=cfg.get_int("counterpartyShards") or _default("counterparty_shards", store),
        index_table=cfg.get("transactionIndexTable") or _default("transaction_index_table", store),
    )


def load() -> StackConfig:
    """Read the whole stack config once; the components receive this object, never `pulumi.Config`."""
    cfg = pulumi.Config(PROJECT_KEY)
    gcp = pulumi.Config("gcp")
    project = cfg.get("project") or gcp.require("project")
    region = cfg.get("region") or gcp.get("region") or "europe-west1"
    stack = pulumi.get_stack()
    prefix = cfg.get("prefix") or "txguard"
    push = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    enrich_concurrency = cfg.get_int("enrichConcurrency") or 10
    label_concurrency = cfg.get_int("labelConcurrency") or 10
    models_bucket = cfg.get("modelsBucket") or f"{project}-{prefix}-models"
    model_alias = cfg.get("modelAlias") or "production"
    ack_deadline = cfg.get_int("ackDeadlineSeconds") or push.ack_deadline_seconds
    label_fn = settings.LabelSettings  # the label function's own defaults
    config = StackConfig(
        project=project,
        region=region,
        stack=stack,
        prefix=prefix,
        scoring=_function(cfg, "scoring", min_instances=1, timeout=30, ingress="ALLOW_ALL",
                          workers=DEFAULT_SCORING_WORKERS, threads=DEFAULT_SCORING_THREADS),
        # I/O-bound: one worker, as many threads as concurrent requests, so none waits in a queue.
        enrich=_function(cfg, "enrich", min_instances=0, timeout=ack_deadline,
                         ingress="ALLOW_INTERNAL_ONLY", workers=1, threads=enrich_concurrency),
        # Labels are a few percent of transactions, each a ledger read-modify-write and a few row
        # writes: one vCPU, I/O-bound like enrichment (threads = concurrency).
        label=_function(cfg, "label", min_instances=0, timeout=names.subscription(
            names.LABELS_PUSH_SUBSCRIPTION).ack_deadline_seconds, ingress="ALLOW_INTERNAL_ONLY", workers=1,
            threads=label_concurrency, max_instances=20, cpu="1", memory="1Gi"),
        delivery=DeliveryConfig(
            max_delivery_attempts=cfg.get_int("maxDeliveryAttempts") or push.max_delivery_attempts,
            min_backoff_seconds=_int(cfg, "minBackoffSeconds", push.min_backoff_seconds),
            max_backoff_seconds=cfg.get_int("maxBackoffSeconds") or push.max_backoff_seconds,
            ack_deadline_seconds=ack_deadline,
        ),
        counterparty=_counterparty(cfg, region),
        models_bucket=models_bucket,
        sources_bucket=cfg.get("sourcesBucket") or f"{project}-{prefix}-sources",
        model_uri=cfg.get("modelUri") or f"gs://{models_bucket}/registry@{model_alias}",
        model_rollout=cfg.get("modelRollout") or "",
        python_runtime=cfg.get("pythonRuntime") or "python311",
        log_level=cfg.get("logLevel") or "INFO",
        firestore_database=cfg.get("firestoreDatabase") or "(default)",
        firestore_location=cfg.get("firestoreLocation") or region,
        processed_ttl_days=cfg.get_int("processedTtlDays") or 7,
        ttl_policy=_bool(cfg, "firestoreTtlPolicy", True),
        model_versions_retention_days=cfg.get_int("modelVersionsRetentionDays") or 90,
        force_destroy=_bool(cfg, "forceDestroy", False),
        build_service_account=_bool(cfg, "buildServiceAccount", True),
        enable_apis=_bool(cfg, "enableApis", True),
        latency_sla_ms=cfg.get_float("latencySlaMs") or 150.0,
        error_rate_threshold=cfg.get_float("errorRateThreshold") or 0.01,
        lifecycle=LifecycleConfig(
            model_poll_seconds=_float(cfg, "modelPollSeconds", _default("model_poll_s")),
            shadow_enabled=_bool(cfg, "shadowEnabled", _default("shadow_enabled")),
            shadow_sample_rate=_float(cfg, "shadowSampleRate", _default("shadow_sample_rate")),
            drift_window_seconds=_float(cfg, "driftWindowSeconds", _default("drift_window_s")),
            drift_psi_threshold=cfg.get_float("driftPsiThreshold") or 0.2,
            drift_alert_minutes=cfg.get_int("driftAlertMinutes") or 30,
        ),
        alerts=AlertConfig(
            enrich_latency_sla_ms=cfg.get_float("enrichLatencySlaMs") or AlertConfig.enrich_latency_sla_ms,
            oldest_unacked_age_s=cfg.get_int("oldestUnackedAgeSeconds") or AlertConfig.oldest_unacked_age_s,
            invalid_share=cfg.get_float("invalidShare") or AlertConfig.invalid_share,
            dead_letter_share=cfg.get_float("deadLetterShare") or AlertConfig.dead_letter_share,
            blocked_share=cfg.get_float("blockedShare") or AlertConfig.blocked_share,
        ),
        batch=BatchConfig(
            bucket=cfg.get("batchBucket") or f"{project}-{prefix}-batch",
            temp_retention_days=cfg.get_int("batchTempRetentionDays") or 7,
            launchers=tuple(cfg.get_object("batchLaunchers") or ()),
        ),
        label_trust=LabelTrustConfig(
            unknown_retry_seconds=_float(cfg, "labelUnknownRetrySeconds", _default("unknown_retry_s", label_fn)),
            limit_window_seconds=_int(cfg, "labelLimitWindowSeconds", _default("limit_window_s", label_fn)),
            analyst_source_limit=_int(cfg, "labelAnalystSourceLimit", _default("analyst_source_limit", label_fn)),
            feed_source_limit=_int(cfg, "labelFeedSourceLimit", _default("feed_source_limit", label_fn)),
            counterparty_fraud_limit=_int(cfg, "labelCounterpartyFraudLimit",
                                          _default("counterparty_fraud_limit", label_fn)),
            fraud_alert_per_source=_int(cfg, "labelFraudAlertPerSource", 100),
        ),
        alert_emails=tuple(cfg.get_object("alertEmails") or ()),
        labels={"app": "txguard", "stack": stack.lower()},
        analysts_group=(cfg.get("analystsGroup") or "").strip(),
        production_approvers=tuple(str(a).strip() for a in cfg.get_object("productionApprovers") or ()),
        console_hosts=tuple(str(h).strip() for h in cfg.get_object("consoleHosts") or ()),
    )
    config.validate()
    return config
