"""Alert policies: what callers feel, a stalled pipeline, and shares of transactions that went wrong.

- errors: Cloud Run's 5xx ratio per function, the label function's included (a crashed request
  writes none of our logs);
- latency: p99 of Cloud Run's own request latency per function (`run.googleapis.com/request_latencies`),
  which includes what the handler cannot see (gunicorn queueing, a cold start, the response
  write), against the scoring SLA and the enrichment budget;
- stalled pipeline: age of the push subscription's oldest unacked message (a backlog that is
  not drained, whatever its size), and the dead-letter inspection backlogs (transactions, and
  labels: a label that is never applied leaves its counterparty's fraud rate low);
- shares: transactions parked as invalid (of deliveries), dead-lettered (of acked messages) and
  blocked (of decisions), each a ratio over 5 minutes, so a spike in traffic does not alert and a
  small stream that is all bad does;
- drift: the scoring traffic's PSI against the answering model's training reference, sustained
  (docs/lifecycle.md);
- label volume: labels held for review (a source or a counterparty past its limit), and one source's
  fraud labels over an hour above a warning threshold (docs/counterparty.md, "Who may label").
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from txguard.contract import names

USER_METRIC = "logging.googleapis.com/user/"
DECISIONS_METRIC = "txguard_decisions"
DELIVERIES_METRIC = "txguard_enrich_deliveries"
DRIFT_METRIC = "txguard_drift_psi"  # largest PSI of each drift window (txguard.scoring.drift)
LABELS_METRIC = "txguard_labels"  # label deliveries by status (txguard.enrichment.label_applier.LabelStatus)
# txguard.enrichment.label_applier.LabelStatus values that passed every check (not imported, as above).
HELD_STATUS = "held"
ACCEPTED_STATUSES = ("applied", "unchanged", "held")
FRAUD_VERDICT = "fraud"
REQUESTS_METRIC = "run.googleapis.com/request_count"
REQUEST_LATENCIES_METRIC = "run.googleapis.com/request_latencies"
BACKLOG_METRIC = "pubsub.googleapis.com/subscription/num_undelivered_messages"
OLDEST_UNACKED_METRIC = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"
DEAD_LETTERED_METRIC = "pubsub.googleapis.com/subscription/dead_letter_message_count"
ACKED_METRIC = "pubsub.googleapis.com/subscription/ack_message_count"
# txguard.enrichment.pipeline.DeliveryStatus values parked on the invalid topic (not imported: it
# pulls the whole enrichment pipeline in; tests/infra checks they exist).
PARKED_STATUSES = ("invalid", "rejected")
BLOCK_OUTCOME = "block"  # txguard.contract.models.Outcome.BLOCK
FIVE_MINUTES = "300s"
FUNCTIONS = (names.SCORING_FUNCTION, names.ENRICH_FUNCTION, names.LABEL_FUNCTION)

Aggregation = gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs


def one_of(*values: str) -> str:
    """A Monitoring filter's set membership: `one_of("a","b")` (Logging would say ("a" OR "b"))."""
    return "one_of(" + ",".join(json.dumps(v) for v in values) + ")"


def service_metric_filter(metric: str, service: str) -> str:
    return (f'metric.type="{metric}" AND resource.type="cloud_run_revision" '
            f'AND resource.label.service_name="{service}"')


def subscription_filter(metric: str, subscription: str) -> str:
    return (f'metric.type="{metric}" AND resource.type="pubsub_subscription" '
            f'AND resource.label.subscription_id="{subscription}"')


def _sum_rate(group_by: Sequence[str] = ()) -> Aggregation:
    return Aggregation(alignment_period="60s", per_series_aligner="ALIGN_RATE", cross_series_reducer="REDUCE_SUM",
                       group_by_fields=list(group_by))


def _docs(text: str) -> gcp.monitoring.AlertPolicyDocumentationArgs:
    return gcp.monitoring.AlertPolicyDocumentationArgs(mime_type="text/markdown", content=text)


def _ratio(display: str, numerator: str, denominator: str, threshold: float,
           group_by: Sequence[str] = ()) -> gcp.monitoring.AlertPolicyConditionArgs:
    """numerator / denominator (both counters, summed rates) above `threshold` for 5 minutes."""
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=display,
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=numerator, denominator_filter=denominator,
            aggregations=[_sum_rate(group_by)], denominator_aggregations=[_sum_rate(group_by)],
            comparison="COMPARISON_GT", threshold_value=threshold, duration=FIVE_MINUTES,
            trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
        ),
    )


def _policy(name: str, cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions, display: str,
            conditions: list, severity: str, docs: str) -> gcp.monitoring.AlertPolicy:
    return gcp.monitoring.AlertPolicy(
        name, project=cfg.project, display_name=f"txguard: {display}", combiner="OR", conditions=conditions,
        notification_channels=channels, severity=severity, documentation=_docs(docs), opts=opts)


def error_rate(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    conditions = [
        _ratio(f"{service}: 5xx ratio > {cfg.error_rate_threshold:.1%} for 5 min",
               service_metric_filter(REQUESTS_METRIC, service) + ' AND metric.label.response_code_class="5xx"',
               service_metric_filter(REQUESTS_METRIC, service), cfg.error_rate_threshold,
               ["resource.label.service_name"])
        for service in FUNCTIONS
    ]
    return _policy("error-rate", cfg, channels, opts, "error rate", conditions, "ERROR",
                   "More than the allowed share of requests failed with 5xx for 5 minutes. For "
                   "enrichment, failed pushes are retried and end in the dead-letter topic.")


def request_latency(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    """p99 of Cloud Run's request latency per function: the distributions of every revision merged."""
    conditions = [
        gcp.monitoring.AlertPolicyConditionArgs(
            display_name=f"{service}: request latency p99 > {threshold:g} ms for 5 min",
            condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                filter=service_metric_filter(REQUEST_LATENCIES_METRIC, service),
                aggregations=[Aggregation(alignment_period="60s", per_series_aligner="ALIGN_DELTA",
                                          cross_series_reducer="REDUCE_PERCENTILE_99",
                                          group_by_fields=["resource.label.service_name"])],
                comparison="COMPARISON_GT", threshold_value=threshold, duration=FIVE_MINUTES,
            ),
        )
        for service, threshold in ((names.SCORING_FUNCTION, cfg.latency_sla_ms),
                                   (names.ENRICH_FUNCTION, cfg.alerts.enrich_latency_sla_ms))
    ]
    return _policy("request-latency", cfg, channels, opts, "request latency p99 above SLA", conditions, "WARNING",
                   "Cloud Run's request latency p99 (queueing in gunicorn and cold starts included) is above "
                   "the SLA. Check instance count against maxInstances, CPU utilisation, the scoring "
                   "function's own `latency_ms` (dashboard) and whether a new model version was promoted.")


def stalled_pipeline(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    age = cfg.alerts.oldest_unacked_age_s
    return _policy(
        "oldest-unacked-message", cfg, channels, opts, "transactions waiting too long", [
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{names.ENRICH_PUSH_SUBSCRIPTION}: oldest unacked message > {age} s",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=subscription_filter(OLDEST_UNACKED_METRIC, names.ENRICH_PUSH_SUBSCRIPTION),
                    aggregations=[Aggregation(alignment_period="60s", per_series_aligner="ALIGN_MAX")],
                    comparison="COMPARISON_GT", threshold_value=age, duration=FIVE_MINUTES,
                ),
            )], "CRITICAL",
        f"A transaction has waited more than {age} s on `{names.ENRICH_PUSH_SUBSCRIPTION}`: enrichment is "
        "down, refusing every push (see the error-rate alert) or retrying one message for a long time. "
        "Transactions are not lost (they wait, then dead-letter) but are not decided either.")


def dead_letter_backlog(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    return _policy(
        "dead-letter-backlog", cfg, channels, opts, "dead-lettered transactions", [
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{names.DEAD_LETTER_SUBSCRIPTION} backlog > 0",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=subscription_filter(BACKLOG_METRIC, names.DEAD_LETTER_SUBSCRIPTION),
                    aggregations=[Aggregation(alignment_period="60s", per_series_aligner="ALIGN_MAX")],
                    comparison="COMPARISON_GT", threshold_value=0, duration="60s",
                ),
            )], "ERROR",
        f"Transactions exhausted their delivery attempts and were dead-lettered. Inspect them with a "
        f"pull on `{names.DEAD_LETTER_SUBSCRIPTION}`; republish to `{names.TRANSACTIONS_TOPIC}` once the "
        f"cause is fixed (`txguard dead-letter redrive`).")


def labels_dead_letter_backlog(cfg: StackConfig, channels: list,
                               opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    return _policy(
        "labels-dead-letter-backlog", cfg, channels, opts, "dead-lettered labels", [
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{names.LABELS_DEAD_LETTER_SUBSCRIPTION} backlog > 0",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=subscription_filter(BACKLOG_METRIC, names.LABELS_DEAD_LETTER_SUBSCRIPTION),
                    aggregations=[Aggregation(alignment_period="60s", per_series_aligner="ALIGN_MAX")],
                    comparison="COMPARISON_GT", threshold_value=0, duration="60s",
                ),
            )], "ERROR",
        f"Labels exhausted their delivery attempts on `{names.LABELS_PUSH_SUBSCRIPTION}` or "
        f"`{names.ANALYST_LABELS_PUSH_SUBSCRIPTION}` and were "
        f"dead-lettered: the label function could not apply them (counterparty table unavailable, a bug; "
        f"see the error-rate alert and `{names.LABEL_FUNCTION}`'s logs). Until they are applied, the "
        "counterparties they name look less risky than they are. Inspect them with a pull on "
        f"`{names.LABELS_DEAD_LETTER_SUBSCRIPTION}`; once the cause is fixed, republish each to its source's topic "
        f"(`txguard dead-letter redrive --labels`: analysts' verdicts to `{names.ANALYST_LABELS_TOPIC}`, the rest "
        f"to `{names.LABELS_TOPIC}`; it is checked again there): a label is applied once per "
        "label id, so a republished duplicate changes nothing.")


def label_volume(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    """Labels held for review (any: someone must look), and fraud labels of one source over an hour above
    `labelFraudAlertPerSource` (a warning before its hold bites; 0: that condition off)."""
    labels = f'metric.type="{USER_METRIC}{LABELS_METRIC}" AND resource.type="cloud_run_revision"'
    trust = cfg.label_trust
    conditions = [gcp.monitoring.AlertPolicyConditionArgs(
        display_name="labels held for review (a source or a counterparty over its limit)",
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=f'{labels} AND metric.label.status="{HELD_STATUS}"',
            aggregations=[Aggregation(alignment_period=FIVE_MINUTES, per_series_aligner="ALIGN_DELTA",
                                      cross_series_reducer="REDUCE_SUM",
                                      group_by_fields=["metric.label.route", "metric.label.source",
                                                       "metric.label.hold"])],
            comparison="COMPARISON_GT", threshold_value=0, duration="0s",
            trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
        ),
    )]
    if trust.fraud_alert_per_source:
        conditions.append(gcp.monitoring.AlertPolicyConditionArgs(
            display_name=f"fraud labels from one source > {trust.fraud_alert_per_source} in 1 h",
            condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                filter=(f'{labels} AND metric.label.verdict="{FRAUD_VERDICT}" '
                        f"AND metric.label.status={one_of(*ACCEPTED_STATUSES)}"),
                aggregations=[Aggregation(alignment_period="3600s", per_series_aligner="ALIGN_DELTA",
                                          cross_series_reducer="REDUCE_SUM",
                                          group_by_fields=["metric.label.route", "metric.label.source"])],
                comparison="COMPARISON_GT", threshold_value=trust.fraud_alert_per_source, duration="0s",
                trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
            ),
        ))
    return _policy(
        "label-volume", cfg, channels, opts, "label volume: labels held for review, or one source labelling a lot",
        conditions, "ERROR",
        "Labels decide the counterparty, device and wallet label features: whoever can write many of them can "
        "poison a merchant or erase chargebacks. Over a sliding window the label function counts every label per "
        f"source (limit {trust.analyst_source_limit} per analyst, {trust.feed_source_limit} per processor feed) "
        f"and fraud labels per counterparty (limit {trust.counterparty_fraud_limit}) and holds what is beyond "
        "them instead of applying it. Review them: `txguard labels held list` (with `--source` or "
        "`--counterparty`), then `txguard labels held release` what is genuine (applied once, as if it had "
        "arrived now) and `txguard labels held discard --why ...` the rest; a source that should not be "
        "labelling at all: revoke its identity's publisher grant on its topic. docs/counterparty.md, "
        "\"Who may label\".")


def shares(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    """Invalid, dead-lettered and blocked transactions, each as a share of its whole."""
    a = cfg.alerts
    deliveries = f'metric.type="{USER_METRIC}{DELIVERIES_METRIC}" AND resource.type="cloud_run_revision"'
    decisions = f'metric.type="{USER_METRIC}{DECISIONS_METRIC}" AND resource.type="cloud_run_revision"'
    conditions = [
        _ratio(f"invalid or refused > {a.invalid_share:.1%} of deliveries for 5 min",
               f"{deliveries} AND metric.label.status={one_of(*PARKED_STATUSES)}", deliveries, a.invalid_share),
        _ratio(f"dead-lettered > {a.dead_letter_share:.1%} of acked messages for 5 min",
               subscription_filter(DEAD_LETTERED_METRIC, names.ENRICH_PUSH_SUBSCRIPTION),
               subscription_filter(ACKED_METRIC, names.ENRICH_PUSH_SUBSCRIPTION), a.dead_letter_share),
        _ratio(f"blocked > {a.blocked_share:.1%} of decisions for 5 min",
               f'{decisions} AND metric.label.outcome="{BLOCK_OUTCOME}"', decisions, a.blocked_share),
    ]
    return _policy("transaction-shares", cfg, channels, opts, "share of invalid, dead-lettered or blocked",
                   conditions, "WARNING",
                   f"- invalid: a publisher sends malformed transactions (read `{names.INVALID_TOPIC}`, its "
                   f"`reason` attribute says why);\n- dead-lettered: deliveries fail repeatedly (scoring or the "
                   f"store unavailable, a bug): see the error-rate alert and `{names.DEAD_LETTER_SUBSCRIPTION}`;\n"
                   "- blocked: more fraud than usual, or a model or threshold change: compare by `model_version` "
                   "on the dashboard before rolling back (`txguard registry rollback`).")


def model_drift(cfg: StackConfig, channels: list, opts: pulumi.ResourceOptions) -> gcp.monitoring.AlertPolicy:
    """The 10-minute median of the windows' largest PSI, worst model version, above the threshold for
    the whole `driftAlertMinutes`: a single noisy window or a short burst does not page anyone."""
    lc = cfg.lifecycle
    return _policy(
        "model-drift", cfg, channels, opts, "traffic drifted from the model's training data", [
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"drift PSI > {lc.drift_psi_threshold:g} for {lc.drift_alert_minutes} min",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=f'metric.type="{USER_METRIC}{DRIFT_METRIC}" AND resource.type="cloud_run_revision"',
                    aggregations=[Aggregation(alignment_period="600s", per_series_aligner="ALIGN_PERCENTILE_50",
                                              cross_series_reducer="REDUCE_MAX",
                                              group_by_fields=["metric.label.model_version"])],
                    comparison="COMPARISON_GT", threshold_value=lc.drift_psi_threshold,
                    duration=f"{lc.drift_alert_minutes * 60}s",
                    trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
                ),
            )], "WARNING",
        "The scoring traffic's features or scores moved away from the training reference of the model "
        "version answering (PSI per window; the metric's `feature` label names the worst). Read the "
        "`drift_window` log lines (`txguard drift --log`), retrain, and compare the new version as a shadow "
        "(`shadowEnabled`, `txguard compare`) before promoting it. docs/lifecycle.md.")


def all_policies(cfg: StackConfig, channels: list, built_in: pulumi.ResourceOptions,
                 log_based: pulumi.ResourceOptions) -> list[gcp.monitoring.AlertPolicy]:
    """Every policy; those reading a log-based metric (the shares, drift) with `log_based` options, which
    wait until the metrics are usable (infra/monitoring.py), the others with `built_in`."""
    return [*(builder(cfg, channels, built_in)
              for builder in (error_rate, request_latency, stalled_pipeline, dead_letter_backlog,
                              labels_dead_letter_backlog)),
            shares(cfg, channels, log_based), model_drift(cfg, channels, log_based),
            label_volume(cfg, channels, log_based)]
