"""Monitoring as code: log-based metrics from the functions' JSON logs, alert policies, a dashboard.

The functions log JSON lines (shared/txguard/contract/logs.py) that Cloud Logging parses into `jsonPayload`:
enrichment one line per delivery (`status`, `outcome`, `model_version`, `late`), scoring its
`latency_ms`, enrichment and label functions one `late_update` line per counterparty, device or
wallet-label update applied after reads that should have included it; the metrics below extract
those fields. The alert policies (infra/alerts.py) read
these and Cloud Run's and Pub/Sub's own metrics (request counts and latencies, unacked age,
dead-lettered messages), which also see what our code cannot log (a crash, a queue, a stall).

A log-based metric is not usable by an alert policy at once: for minutes after it is created, the
Monitoring API answers 404 "Cannot find metric(s) ... it could take up to 10 minutes to become
available". An alert policy on a user metric therefore waits for a `pulumiverse_time.Sleep` of
LOG_METRIC_SETTLE after the metrics (the Pulumi time provider; created once, so later `pulumi up`
runs do not wait; it runs again only when a metric is replaced). Alerts on built-in metrics
(Cloud Run requests and latencies, Pub/Sub) do not wait. Charts and alerts are written in the
Monitoring filter grammar (`one_of(...)`, not Logging's `("a" OR "b")`, which Monitoring rejects).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time

from infra import alerts
from infra.alerts import (
    BACKLOG_METRIC,
    DECISIONS_METRIC,
    DELIVERIES_METRIC,
    DRIFT_METRIC,
    FUNCTIONS,
    LABELS_METRIC,
    OLDEST_UNACKED_METRIC,
    REQUEST_LATENCIES_METRIC,
    REQUESTS_METRIC,
    USER_METRIC,
    one_of,
    service_metric_filter,
    subscription_filter,
)
from infra.config import StackConfig
from infra.services import child_options
from txguard.contract import names
from txguard.contract.logs import DRIFT_EVENT, EVENT_KEY, LATE_UPDATE_EVENT, MODEL_REFUSED_EVENT

# txguard.enrichment.pipeline.DeliveryStatus.DECIDED (not imported: it pulls the whole enrichment pipeline in;
# tests/infra checks the two agree).
DECIDED_STATUS = "decided"
# The single-transaction route enrichment calls (shared/txguard/scoring/service.py); the SLA is per transaction,
# so /health, /model and /score/batch requests stay out of the latency distribution.
SCORE_PATH = "/score"
LATENCY_METRIC = "txguard_scoring_latency"
LATE_METRIC = "txguard_late_transactions"
LATE_UPDATES_METRIC = "txguard_late_counterparty_updates"  # by entity (counterparty, device, wallet) and source
ERRORS_METRIC = "txguard_error_logs"
REFUSED_METRIC = "txguard_model_refused"  # versions an alias pointed at and instances refused
# The Monitoring API's own bound for a new log-based metric to become usable (see the docstring).
LOG_METRIC_SETTLE = "10m"


def _service_filter(service: str) -> str:
    return f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}"'


SCORING_LOGS = _service_filter(names.SCORING_FUNCTION)
ENRICH_LOGS = _service_filter(names.ENRICH_FUNCTION)
LABEL_LOGS = _service_filter(names.LABEL_FUNCTION)


@dataclass(frozen=True)
class MetricSpec:
    """One log-based metric: which log lines it counts (or measures) and what it groups them by."""

    resource: str  # the Pulumi resource name (keep it: a new one replaces the metric)
    name: str  # the metric type's name (logging.googleapis.com/user/<name>)
    description: str
    filter: str
    unit: str | None = "1"
    labels: dict[str, str] = field(default_factory=dict)  # label -> the jsonPayload field it extracts
    value: str | None = None  # a DISTRIBUTION of this jsonPayload field (else an INT64 count of lines)
    buckets: tuple[int, float, float] | None = None  # exponential: finite buckets, growth factor, scale


METRICS: tuple[MetricSpec, ...] = (
    # Counted where a decision is published: one enrichment log line per decided transaction
    # (redeliveries of an already decided one log status "duplicate" and are not counted).
    MetricSpec("decisions", DECISIONS_METRIC, "Decided transactions by outcome and model version",
               f'{ENRICH_LOGS} AND jsonPayload.status="{DECIDED_STATUS}"',
               labels={"outcome": "outcome", "model_version": "model_version"}),
    MetricSpec("enrich-deliveries", DELIVERIES_METRIC,
               "Enrichment deliveries by status (decided, duplicate, invalid, rejected, retry, error)",
               f"{ENRICH_LOGS} AND jsonPayload.status:*", labels={"status": "status"}),
    # Decided although a later transaction of the same wallet was decided first: that later one was
    # scored without it (training/serving skew). Ordered delivery keeps it at zero except for
    # redriven dead letters and publishers that send a wallet out of order (docs/enrichment.md).
    MetricSpec("late-transactions", LATE_METRIC,
               "Transactions decided after a later transaction of their wallet (decision flagged late)",
               f'{ENRICH_LOGS} AND jsonPayload.status="{DECIDED_STATUS}" AND jsonPayload.late=true',
               labels={"model_version": "model_version"}),
    # Nothing orders other wallets' updates of a counterparty: one held back by a failure lands after reads
    # that should have included it (counterparty features scored without it). One line per entity
    # (txguard.enrichment.counterparty.lateness); a handful while nothing fails, more when failures hold
    # updates back (docs/enrichment.md).
    MetricSpec("late-counterparty-updates", LATE_UPDATES_METRIC,
               "Counterparty, device and wallet-label updates applied after reads that should have included them, "
               "by entity and source (transaction or label)",
               (f'resource.type="cloud_run_revision" AND resource.labels.service_name=("{names.ENRICH_FUNCTION}" '
                f'OR "{names.LABEL_FUNCTION}") AND jsonPayload.{EVENT_KEY}="{LATE_UPDATE_EVENT}"'),
               labels={"entity": "entity", "source": "source"}),
    # 1 ms * 1.25^k up to ~20 s: fine resolution around the 150 ms SLA.
    MetricSpec("scoring-latency", LATENCY_METRIC, "Scoring latency (ms) of POST /score as logged by the scoring function",
               f'{SCORING_LOGS} AND jsonPayload.path="{SCORE_PATH}" AND jsonPayload.latency_ms:*', unit="ms",
               labels={"model_version": "model_version"}, value="latency_ms", buckets=(45, 1.25, 1)),
    MetricSpec("error-logs", ERRORS_METRIC, "ERROR (or worse) log lines of the txguard functions",
               ('resource.type="cloud_run_revision" AND severity>=ERROR AND resource.labels.service_name=('
                + " OR ".join(f'"{fn}"' for fn in FUNCTIONS) + ")"), unit=None),
    # One value per drift window per worker: the largest PSI over the features and the score;
    # 0.01 .. ~10 in steps of x1.25: fine around the 0.1 / 0.2 reading thresholds.
    MetricSpec("drift-psi", DRIFT_METRIC, "Largest PSI of a drift window against the model version's training reference",
               f'{SCORING_LOGS} AND jsonPayload.{EVENT_KEY}="{DRIFT_EVENT}"',
               labels={"model_version": "model_version", "feature": "feature_max"}, value="psi_max",
               buckets=(32, 1.25, 0.01)),
    MetricSpec("model-refused", REFUSED_METRIC,
               "Model versions refused by scoring instances (checksum, compatibility, parity)",
               f'{SCORING_LOGS} AND jsonPayload.{EVENT_KEY}="{MODEL_REFUSED_EVENT}"',
               labels={"version": "refused_version"}),
    # One label function line per delivery (txguard.enrichment.label_applier): applied, unchanged, duplicate,
    # held, invalid, rejected, retry, error; by route (who published), source (which analyst or feed: tens to
    # hundreds of values, fine for a metric label; counterparties, millions, are not, so their limit shows as
    # `hold`), verdict (fraud, legit, reversal) and hold (the limit a held label went past). "Applied" changed
    # the counters; the dashboard charts them per minute, the label-volume alert reads held and fraud ones.
    MetricSpec("label-deliveries", LABELS_METRIC,
               "Label deliveries by status (applied, unchanged, duplicate, held, invalid, rejected, retry, error), "
               "route, source, verdict and hold",
               f"{LABEL_LOGS} AND jsonPayload.status:*",
               labels={"status": "status", "route": "route", "source": "source", "verdict": "verdict",
                       "hold": "hold"}),
)


def log_metric(spec: MetricSpec, project: str, opts: pulumi.ResourceOptions) -> gcp.logging.Metric:
    descriptor: dict = {"metric_kind": "DELTA", "value_type": "DISTRIBUTION" if spec.value else "INT64"}
    if spec.unit is not None:
        descriptor["unit"] = spec.unit
    if spec.labels:
        descriptor["labels"] = [gcp.logging.MetricMetricDescriptorLabelArgs(key=key, value_type="STRING")
                                for key in spec.labels]
    extra: dict = {}
    if spec.labels:
        extra["label_extractors"] = {key: f"EXTRACT(jsonPayload.{source})" for key, source in spec.labels.items()}
    if spec.value:
        extra["value_extractor"] = f"EXTRACT(jsonPayload.{spec.value})"
    if spec.buckets:
        count, growth, scale = spec.buckets
        extra["bucket_options"] = gcp.logging.MetricBucketOptionsArgs(
            exponential_buckets=gcp.logging.MetricBucketOptionsExponentialBucketsArgs(
                num_finite_buckets=count, growth_factor=growth, scale=scale))
    return gcp.logging.Metric(spec.resource, name=spec.name, project=project, description=spec.description,
                              filter=spec.filter, metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(**descriptor),
                              opts=opts, **extra)


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, depends_on: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:Monitoring", name, None, opts)
        child = child_options(self, depends_on)
        self.metrics = {spec.resource: log_metric(spec, cfg.project, child) for spec in METRICS}
        metrics = list(self.metrics.values())
        after_metrics = pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *metrics])
        self.metrics_settled = pulumiverse_time.Sleep(
            "log-metrics-settled", create_duration=LOG_METRIC_SETTLE,
            triggers={m.pulumi_resource_name: m.id for m in metrics},  # a replaced metric waits again
            opts=after_metrics)
        after_settled = pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, self.metrics_settled])
        self.channels = [
            gcp.monitoring.NotificationChannel(
                f"email-{i}", project=cfg.project, type="email", display_name=f"txguard alerts ({email})",
                labels={"email_address": email}, opts=child)
            for i, email in enumerate(cfg.alert_emails)
        ]
        channel_ids = [channel.id for channel in self.channels]
        self.alerts = alerts.all_policies(cfg, channel_ids, built_in=child, log_based=after_settled)
        self.dashboard = gcp.monitoring.Dashboard(
            "dashboard", project=cfg.project, dashboard_json=json.dumps(dashboard(cfg)), opts=after_metrics)
        self.register_outputs({"dashboard": self.dashboard.id})


def _chart(title: str, filter_: str, aligner: str, reducer: str | None = None,
           group_by: Sequence[str] = (), plot: str = "LINE") -> dict:
    aggregation: dict = {"alignmentPeriod": "60s", "perSeriesAligner": aligner}
    if reducer:
        aggregation |= {"crossSeriesReducer": reducer, "groupByFields": list(group_by)}
    return {
        "title": title,
        "xyChart": {"dataSets": [{
            "timeSeriesQuery": {"timeSeriesFilter": {"filter": filter_, "aggregation": aggregation}},
            "plotType": plot,
        }]},
    }


def dashboard(cfg: StackConfig) -> dict:
    """The dashboard as the Monitoring API's JSON (mosaic layout, two tiles per row)."""
    latency = f'metric.type="{USER_METRIC}{LATENCY_METRIC}" AND resource.type="cloud_run_revision"'
    charts = [
        _chart("Decisions per second by decision", f'metric.type="{USER_METRIC}{DECISIONS_METRIC}"',
               "ALIGN_RATE", "REDUCE_SUM", ["metric.label.outcome"], "STACKED_AREA"),
        _chart("Decisions per second by model version", f'metric.type="{USER_METRIC}{DECISIONS_METRIC}"',
               "ALIGN_RATE", "REDUCE_SUM", ["metric.label.model_version"]),
        _chart("Enrichment deliveries per second by status", f'metric.type="{USER_METRIC}{DELIVERIES_METRIC}"',
               "ALIGN_RATE", "REDUCE_SUM", ["metric.label.status"], "STACKED_AREA"),
        *[_chart(f"Scoring handler latency p{p} (ms, logged)", latency, "ALIGN_DELTA",
                 f"REDUCE_PERCENTILE_{p}") for p in (50, 95, 99)],
        *[_chart(f"{service} requests/s by response class",
                 f'metric.type="{REQUESTS_METRIC}" AND resource.label.service_name="{service}"',
                 "ALIGN_RATE", "REDUCE_SUM", ["metric.label.response_code_class"], "STACKED_BAR")
          for service in FUNCTIONS],
        _chart("Instances", 'metric.type="run.googleapis.com/container/instance_count" AND '
               f"resource.label.service_name={one_of(*FUNCTIONS)}",
               "ALIGN_MAX", "REDUCE_SUM", ["resource.label.service_name"]),
        *[_chart(f"{service} request latency p99 (ms, Cloud Run; alert at "
                 f"{cfg.latency_sla_ms if service == names.SCORING_FUNCTION else cfg.alerts.enrich_latency_sla_ms:g})",
                 service_metric_filter(REQUEST_LATENCIES_METRIC, service), "ALIGN_DELTA", "REDUCE_PERCENTILE_99",
                 ["resource.label.service_name"])
          for service in (names.SCORING_FUNCTION, names.ENRICH_FUNCTION)],
        _chart("Oldest unacked transaction (s)",
               subscription_filter(OLDEST_UNACKED_METRIC, names.ENRICH_PUSH_SUBSCRIPTION), "ALIGN_MAX"),
        _chart("Transactions waiting (push subscription backlog)",
               subscription_filter(BACKLOG_METRIC, names.ENRICH_PUSH_SUBSCRIPTION), "ALIGN_MAX"),
        _chart("Dead-lettered transactions (backlog)",
               subscription_filter(BACKLOG_METRIC, names.DEAD_LETTER_SUBSCRIPTION), "ALIGN_MAX"),
        _chart("Error log lines/s", f'metric.type="{USER_METRIC}{ERRORS_METRIC}"', "ALIGN_RATE", "REDUCE_SUM"),
        _chart("Late transactions/s (decided after a later one of their wallet)",
               f'metric.type="{USER_METRIC}{LATE_METRIC}"', "ALIGN_RATE", "REDUCE_SUM"),
        _chart("Late counterparty updates per minute by entity (applied after reads that missed them)",
               f'metric.type="{USER_METRIC}{LATE_UPDATES_METRIC}"', "ALIGN_DELTA", "REDUCE_SUM",
               ["metric.label.entity"], "STACKED_BAR"),
        _chart(f"Drift: median PSI of the windows by model version (alert > {cfg.lifecycle.drift_psi_threshold:g})",
               f'metric.type="{USER_METRIC}{DRIFT_METRIC}"', "ALIGN_PERCENTILE_50", "REDUCE_MAX",
               ["metric.label.model_version"]),
        # ALIGN_DELTA over 60 s: the count of each minute.
        _chart("Labels per minute by status (applied: the counterparty counters changed)",
               f'metric.type="{USER_METRIC}{LABELS_METRIC}"', "ALIGN_DELTA", "REDUCE_SUM", ["metric.label.status"],
               "STACKED_BAR"),
        _chart("Fraud labels per minute by source (held ones too: the label-volume alert's)",
               f'metric.type="{USER_METRIC}{LABELS_METRIC}" AND metric.label.verdict="fraud"', "ALIGN_DELTA",
               "REDUCE_SUM", ["metric.label.route", "metric.label.source"], "STACKED_BAR"),
        _chart("Labels waiting (label push subscriptions' backlog, per route)",
               f'metric.type="{BACKLOG_METRIC}" AND resource.type="pubsub_subscription" AND '
               f"resource.label.subscription_id={one_of(*(r.subscription for r in names.LABEL_ROUTES))}",
               "ALIGN_MAX", "REDUCE_SUM", ["resource.label.subscription_id"]),
        _chart("Dead-lettered labels (backlog)",
               subscription_filter(BACKLOG_METRIC, names.LABELS_DEAD_LETTER_SUBSCRIPTION), "ALIGN_MAX"),
        _chart("Refused model versions per second", f'metric.type="{USER_METRIC}{REFUSED_METRIC}"', "ALIGN_RATE",
               "REDUCE_SUM", ["metric.label.version"], "STACKED_BAR"),
    ]
    width, height = 6, 4
    tiles = [{"xPos": (i % 2) * width, "yPos": (i // 2) * height, "width": width, "height": height, "widget": chart}
             for i, chart in enumerate(charts)]
    return {"displayName": f"txguard ({cfg.stack})", "mosaicLayout": {"columns": 12, "tiles": tiles}}
