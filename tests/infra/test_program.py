"""What the Pulumi program declares, checked against mocks (pulumi/examples testing-unit-py style).

Security properties (no public invoker, exactly the intended roles per identity), capacity from
config (defaults and an override), delivery policy of the enrichment push subscription, and the
Pub/Sub topology of shared/txguard/contract/names.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_mocks import BASE_CONFIG, OVERRIDES, PUBSUB_AGENT, ROOT, StackRun, run_program

from infra.config import ConfigError
from txguard.contract import names
from txguard.contract.settings import EnrichSettings, ScoringSettings

FUNCTION = "gcp:cloudfunctionsv2/function:Function"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
TOPIC = "gcp:pubsub/topic:Topic"
ACCOUNT = "gcp:serviceaccount/account:Account"
PUBLIC = {"allUsers", "allAuthenticatedUsers"}


def function(run: StackRun, name: str) -> dict[str, Any]:
    return run.one(FUNCTION, name=name).inputs


def email(run: StackRun, role: str) -> str:
    return run.outputs["service_accounts"][role]


def walk_strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_strings(item)


# -- capacity from config ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("function_name", "expected"),
    [
        (names.SCORING_FUNCTION, {"maxInstanceRequestConcurrency": 10, "minInstanceCount": 1,
                                  "maxInstanceCount": 100, "availableCpu": "2", "availableMemory": "2Gi"}),
        (names.ENRICH_FUNCTION, {"maxInstanceRequestConcurrency": 10, "minInstanceCount": 0,
                                 "maxInstanceCount": 100, "availableCpu": "2", "availableMemory": "2Gi"}),
    ],
)
def test_capacity_defaults_are_the_seed_figures(default_stack: StackRun, function_name: str, expected: dict) -> None:
    service = function(default_stack, function_name)["serviceConfig"]
    assert {key: service[key] for key in expected} == expected


def test_capacity_follows_config_overrides(override_stack: StackRun) -> None:
    def key(name: str) -> str:
        return OVERRIDES[f"txguard:{name}"]

    for prefix, fn in (("scoring", names.SCORING_FUNCTION), ("enrich", names.ENRICH_FUNCTION)):
        service = function(override_stack, fn)["serviceConfig"]
        assert service["maxInstanceRequestConcurrency"] == int(key(f"{prefix}Concurrency"))
        assert service["minInstanceCount"] == int(key(f"{prefix}MinInstances"))
        assert service["maxInstanceCount"] == int(key(f"{prefix}MaxInstances"))
        assert service["availableCpu"] == key(f"{prefix}Cpu")
        assert service["availableMemory"] == key(f"{prefix}Memory")
    scoring_env = function(override_stack, names.SCORING_FUNCTION)["serviceConfig"]["environmentVariables"]
    assert scoring_env["WORKERS"] == key("scoringWorkers")
    assert scoring_env["MODEL_URI"] == key("modelUri")
    assert scoring_env["TXGUARD_MODEL_ROLLOUT"] == key("modelRollout")  # a new revision: instances reload
    # Enrichment is I/O-bound: as many gunicorn threads as concurrent requests.
    enrich_env = function(override_stack, names.ENRICH_FUNCTION)["serviceConfig"]["environmentVariables"]
    assert enrich_env["THREADS"] == key("enrichConcurrency")


def test_invalid_capacity_is_rejected_before_deploying(tmp_path: Path) -> None:
    bad = {**BASE_CONFIG, "txguard:scoringConcurrency": "10", "txguard:scoringCpu": "0.5"}
    with pytest.raises(ConfigError, match="at least 1 CPU"):
        run_program(bad, tmp_path)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("blockedShare", "1.5", "blockedShare is a fraction"),
    ("oldestUnackedAgeSeconds", "10", "oldestUnackedAgeSeconds >= 60"),
])
def test_invalid_alert_thresholds_are_rejected_before_deploying(tmp_path: Path, key: str, value: str,
                                                                message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_program({**BASE_CONFIG, f"txguard:{key}": value}, tmp_path)


@pytest.mark.parametrize("stack_file", ["Pulumi.dev.yaml", "Pulumi.prod.yaml"])
def test_stack_files_are_valid_config(stack_file: str, tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / stack_file).read_text())["config"]
    config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    run = run_program(config, tmp_path, stack=stack_file.split(".")[1])
    assert run.outputs["scoring_url"].startswith(f"https://{names.SCORING_FUNCTION}-")
    for key, value in raw.items():
        if key.endswith("Concurrency"):
            fn = names.SCORING_FUNCTION if "scoring" in key else names.ENRICH_FUNCTION
            assert function(run, fn)["serviceConfig"]["maxInstanceRequestConcurrency"] == int(value)


# -- functions -------------------------------------------------------------------------------------

def test_functions_have_entry_points_identities_and_no_eventarc_trigger(default_stack: StackRun) -> None:
    for fn, entry, role in ((names.SCORING_FUNCTION, names.SCORING_ENTRY_POINT, "scoring"),
                            (names.ENRICH_FUNCTION, names.ENRICH_ENTRY_POINT, "enrich")):
        inputs = function(default_stack, fn)
        assert inputs["buildConfig"]["entryPoint"] == entry
        assert inputs["serviceConfig"]["serviceAccountEmail"] == email(default_stack, role)
        assert "eventTrigger" not in inputs  # enrichment is fed by our push subscription
        signature = "cloudevent" if fn == names.ENRICH_FUNCTION else "http"
        assert inputs["buildConfig"]["environmentVariables"] == {"GOOGLE_FUNCTION_SIGNATURE_TYPE": signature}
    assert function(default_stack, names.SCORING_FUNCTION)["serviceConfig"]["ingressSettings"] == "ALLOW_ALL"


def test_function_sources_are_the_uploaded_content_hashed_archives(default_stack: StackRun) -> None:
    objects = {o.inputs["name"]: o.inputs for o in default_stack.of_type("gcp:storage/bucketObject:BucketObject")}
    for fn, folder in ((names.SCORING_FUNCTION, "score"), (names.ENRICH_FUNCTION, "enrich")):
        source = function(default_stack, fn)["buildConfig"]["source"]["storageSource"]
        assert source["bucket"] == default_stack.outputs["sources_bucket"]
        assert source["object"] in objects
        assert source["object"].startswith(f"{folder}-") and source["object"].endswith(".zip")
        assert objects[source["object"]]["bucket"] == default_stack.outputs["sources_bucket"]


def test_environment_is_valid_for_the_functions_settings(default_stack: StackRun) -> None:
    scoring_env = function(default_stack, names.SCORING_FUNCTION)["serviceConfig"]["environmentVariables"]
    enrich_env = function(default_stack, names.ENRICH_FUNCTION)["serviceConfig"]["environmentVariables"]
    scoring = ScoringSettings.model_validate(scoring_env)
    enrich = EnrichSettings.model_validate(enrich_env)
    models_bucket = default_stack.outputs["models_bucket"]
    assert scoring.model_uri == f"gs://{models_bucket}/registry@production"
    assert scoring.google_cloud_project == enrich.google_cloud_project == BASE_CONFIG["gcp:project"]
    assert enrich.scoring_url == default_stack.outputs["scoring_url"]
    assert (enrich.history_store, enrich.scoring_auth) == ("firestore", "id_token")
    assert (enrich.decisions_topic, enrich.invalid_topic) == (names.DECISIONS_TOPIC, names.INVALID_TOPIC)
    assert scoring_env["THREADS"] == "1" and int(scoring_env["WORKERS"]) >= 1
    aliases = {f.alias for cls in (ScoringSettings, EnrichSettings) for f in cls.model_fields.values()}
    assert set(scoring_env) | set(enrich_env) <= aliases | {"WORKERS", "THREADS"}
    assert "TXGUARD_MODEL_ROLLOUT" not in scoring_env  # only set when a rollout is requested


# -- IAM -------------------------------------------------------------------------------------------

def iam_grants(run: StackRun) -> dict[str, set[tuple[str, str, str]]]:
    """member -> {(kind, role, target)} over every IAM member resource the program declares."""
    target_keys = ("bucket", "topic", "subscription", "repository", "table", "serviceAccountId", "name", "project")
    grants: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for res in run.resources:
        if "iammember" not in res.typ.lower():
            continue
        kind = res.typ.split(":")[1].split("/")[0]
        target = next(str(res.inputs[k]) for k in target_keys if k in res.inputs)
        if kind == "projects":
            target = res.inputs["project"]
        grants[res.inputs["member"]].add((kind, res.inputs["role"], target))
    return grants


def test_no_public_access_anywhere(default_stack: StackRun, override_stack: StackRun) -> None:
    for run in (default_stack, override_stack):
        iam = [r for r in run.resources if "iam" in r.typ.lower()]
        assert iam, "the program declares IAM grants"
        assert not [r for r in iam if {r.inputs.get("member"), *r.inputs.get("members", [])} & PUBLIC]
        assert not [s for r in run.resources for s in walk_strings(r.inputs) if s in PUBLIC]
        assert not [r for r in iam if r.inputs.get("role") in {"roles/owner", "roles/editor", "roles/viewer"}]


def test_each_identity_has_exactly_its_roles(default_stack: StackRun) -> None:
    run = default_stack
    project = BASE_CONFIG["gcp:project"]
    member = {role: f"serviceAccount:{email(run, role)}" for role in run.outputs["service_accounts"]}
    push_sa_id = run.one(ACCOUNT, accountId=email(run, "push").split("@")[0])
    expected = {
        member["scoring"]: {("storage", "roles/storage.objectViewer", run.outputs["models_bucket"])},
        member["enrich"]: {
            ("projects", "roles/datastore.user", project),
            ("bigtable", "roles/bigtable.user", names.COUNTERPARTY_TABLE),  # the table, not the instance
            ("bigtable", "roles/bigtable.user", names.TRANSACTION_INDEX_TABLE),  # it records every transaction
            ("pubsub", "roles/pubsub.publisher", names.DECISIONS_TOPIC),
            ("pubsub", "roles/pubsub.publisher", names.INVALID_TOPIC),
            ("cloudrunv2", "roles/run.invoker", names.SCORING_FUNCTION),
        },
        member["label"]: {
            ("bigtable", "roles/bigtable.user", names.COUNTERPARTY_TABLE),
            ("bigtable", "roles/bigtable.reader", names.TRANSACTION_INDEX_TABLE),  # checks labels, never writes it
            ("pubsub", "roles/pubsub.publisher", names.INVALID_TOPIC),
        },
        member["push"]: {("cloudrunv2", "roles/run.invoker", names.ENRICH_FUNCTION),
                         ("cloudrunv2", "roles/run.invoker", names.LABEL_FUNCTION)},
        # One identity per feed, one topic each: the transaction feed's key cannot label anything.
        member["publisher"]: {("pubsub", "roles/pubsub.publisher", names.TRANSACTIONS_TOPIC)},
        member["chargebacks"]: {("pubsub", "roles/pubsub.publisher", names.LABELS_TOPIC)},
        PUBSUB_AGENT: {
            ("pubsub", "roles/pubsub.publisher", names.DEAD_LETTER_TOPIC),
            ("pubsub", "roles/pubsub.subscriber", names.ENRICH_PUSH_SUBSCRIPTION),
            ("pubsub", "roles/pubsub.publisher", names.LABELS_DEAD_LETTER_TOPIC),
            ("pubsub", "roles/pubsub.subscriber", names.LABELS_PUSH_SUBSCRIPTION),
            ("pubsub", "roles/pubsub.subscriber", names.ANALYST_LABELS_PUSH_SUBSCRIPTION),
            ("serviceaccount", "roles/iam.serviceAccountTokenCreator",
             f"projects/{project}/serviceAccounts/{email(run, 'push')}"),
        },
        member["build"]: {
            ("projects", "roles/logging.logWriter", project),
            ("artifactregistry", "roles/artifactregistry.writer", "txguard-functions"),
            ("storage", "roles/storage.objectViewer", run.outputs["sources_bucket"]),
            ("projects", "roles/storage.objectAdmin", project),
        },
        member["batch"]: {
            ("projects", "roles/dataflow.worker", project),
            ("storage", "roles/storage.objectAdmin", run.outputs["batch_bucket"]),
            ("storage", "roles/storage.objectViewer", run.outputs["models_bucket"]),
        },
    }
    assert push_sa_id.inputs["accountId"] == "txguard-push"
    assert dict(iam_grants(run)) == expected
    # The build role on the project is narrowed to the buckets Cloud Run functions stages sources in.
    staged = run.one("gcp:projects/iAMMember:IAMMember", role="roles/storage.objectAdmin")
    assert "gcf-v2-sources-" in staged.inputs["condition"]["expression"]


def test_one_service_account_per_role(default_stack: StackRun, override_stack: StackRun) -> None:
    accounts = {a.inputs["accountId"] for a in default_stack.of_type(ACCOUNT)}
    assert accounts == {f"txguard-{r}" for r in ("score", "enrich", "label", "push", "publisher", "chargebacks",
                                                  "build", "batch")}
    # buildServiceAccount=false: no build identity, no build grants (the project default builds).
    assert "build" not in override_stack.outputs["service_accounts"]
    assert not [m for m in iam_grants(override_stack) if "txguard-build" in m]
    assert "serviceAccount" not in function(override_stack, names.SCORING_FUNCTION)["buildConfig"]


# -- Pub/Sub -------------------------------------------------------------------------------------

def test_every_topic_and_subscription_of_names_is_declared(default_stack: StackRun) -> None:
    project = BASE_CONFIG["gcp:project"]
    topics = {t.inputs["name"]: t.inputs for t in default_stack.of_type(TOPIC)}
    assert set(topics) == {spec.name for spec in names.TOPICS}
    for spec in names.TOPICS:
        assert topics[spec.name]["messageRetentionDuration"] == f"{spec.retention_seconds}s"
    subs = {s.inputs["name"]: s.inputs for s in default_stack.of_type(SUBSCRIPTION)}
    assert set(subs) == {spec.name for spec in names.SUBSCRIPTIONS}
    for spec in names.SUBSCRIPTIONS:
        sub = subs[spec.name]
        assert sub["topic"] == f"projects/{project}/topics/{spec.topic}"
        assert sub["ackDeadlineSeconds"] == spec.ack_deadline_seconds
        assert sub["messageRetentionDuration"] == f"{spec.retention_seconds}s"
        assert sub["enableMessageOrdering"] == spec.enable_message_ordering
        assert sub["expirationPolicy"]["ttl"] == ""  # never expires when idle
        assert ("pushConfig" in sub) == (spec.push_to is not None)
        assert ("deadLetterPolicy" in sub) == (spec.dead_letter_topic is not None)


def test_enrich_push_subscription_retries_dead_letters_and_authenticates(default_stack: StackRun) -> None:
    spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
    sub = default_stack.one(SUBSCRIPTION, name=spec.name).inputs
    url = default_stack.outputs["enrich_url"]
    assert sub["pushConfig"]["pushEndpoint"] == url
    assert sub["pushConfig"]["oidcToken"] == {"serviceAccountEmail": email(default_stack, "push"), "audience": url}
    assert sub["retryPolicy"] == {"minimumBackoff": f"{spec.min_backoff_seconds}s",
                                  "maximumBackoff": f"{spec.max_backoff_seconds}s"}
    dead_letter_topic = f"projects/{BASE_CONFIG['gcp:project']}/topics/{spec.dead_letter_topic}"
    assert sub["deadLetterPolicy"] == {"deadLetterTopic": dead_letter_topic,
                                       "maxDeliveryAttempts": spec.max_delivery_attempts}
    # One wallet's transactions in order, even across retries; a dead letter releases its wallet.
    assert sub["enableMessageOrdering"] is True
    # The push deadline must cover the function's timeout, else Pub/Sub redelivers work in progress.
    timeout = function(default_stack, names.ENRICH_FUNCTION)["serviceConfig"]["timeoutSeconds"]
    assert timeout <= sub["ackDeadlineSeconds"]


def test_delivery_policy_follows_config(override_stack: StackRun) -> None:
    sub = override_stack.one(SUBSCRIPTION, name=names.ENRICH_PUSH_SUBSCRIPTION).inputs
    assert sub["deadLetterPolicy"]["maxDeliveryAttempts"] == int(OVERRIDES["txguard:maxDeliveryAttempts"])
    assert sub["retryPolicy"] == {"minimumBackoff": OVERRIDES["txguard:minBackoffSeconds"] + "s",
                                  "maximumBackoff": OVERRIDES["txguard:maxBackoffSeconds"] + "s"}


# -- storage, Firestore, monitoring, outputs ------------------------------------------------------

def test_buckets_are_private_and_models_versioned(default_stack: StackRun) -> None:
    buckets = {b.inputs["name"]: b.inputs for b in default_stack.of_type("gcp:storage/bucket:Bucket")}
    assert set(buckets) == {default_stack.outputs[k] for k in ("models_bucket", "sources_bucket", "batch_bucket")}
    for bucket in buckets.values():
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"
    assert buckets[default_stack.outputs["models_bucket"]]["versioning"] == {"enabled": True}


def test_dataflow_runs_have_a_bucket_with_expiring_staging_and_only_the_configured_launchers(
        default_stack: StackRun, override_stack: StackRun) -> None:
    bucket = default_stack.one("gcp:storage/bucket:Bucket", name=default_stack.outputs["batch_bucket"]).inputs
    (rule,) = bucket["lifecycleRules"]
    assert rule["action"] == {"type": "Delete"}
    assert rule["condition"] == {"age": 7, "matchesPrefixes": ["staging/", "temp/"]}
    out = default_stack.outputs
    assert out["batch_staging_location"] == f"gs://{out['batch_bucket']}/staging"
    assert out["batch_temp_location"] == f"gs://{out['batch_bucket']}/temp"
    services = {s.inputs["service"] for s in default_stack.of_type("gcp:projects/service:Service")}
    assert {"dataflow.googleapis.com", "compute.googleapis.com"} <= services
    assert not [m for m in iam_grants(default_stack) if m.startswith(("user:", "group:"))]  # no launcher by default

    launcher = json.loads(OVERRIDES["txguard:batchLaunchers"])[0]
    worker = f"projects/{BASE_CONFIG['gcp:project']}/serviceAccounts/{override_stack.outputs['service_accounts']['batch']}"
    assert iam_grants(override_stack)[launcher] == {
        ("projects", "roles/dataflow.developer", BASE_CONFIG["gcp:project"]),
        ("serviceaccount", "roles/iam.serviceAccountUser", worker),
        ("storage", "roles/storage.objectAdmin", override_stack.outputs["batch_bucket"]),
    }
    rule = override_stack.one("gcp:storage/bucket:Bucket", name=override_stack.outputs["batch_bucket"]).inputs
    assert rule["lifecycleRules"][0]["condition"]["age"] == 3


def test_firestore_native_database_with_ttl_on_processed_transactions(default_stack: StackRun) -> None:
    db = default_stack.one("gcp:firestore/database:Database").inputs
    assert db["type"] == "FIRESTORE_NATIVE"
    assert db["deleteProtectionState"] == "DELETE_PROTECTION_ENABLED"  # forceDestroy is off by default
    ttl = default_stack.one("gcp:firestore/field:Field", field="expires_at").inputs
    assert ttl["collection"] == names.PROCESSED_COLLECTION
    assert "ttlConfig" in ttl
    assert ttl["indexConfig"].get("indexes", []) == []


def test_history_fields_are_not_indexed(default_stack: StackRun) -> None:
    """Documents are read by id, but for one query: every stored field is exempt from single-field indexes."""
    import base64

    from txguard.contract.models import Transaction
    from txguard.enrichment.history.record import processed_record, step
    from txguard.features.counterparty import Snapshot
    from txguard.features.counterparty_windows import counterparty_features

    exempt = {(f.inputs["collection"], f.inputs["field"]) for f in default_stack.of_type("gcp:firestore/field:Field")
              if f.inputs.get("indexConfig", {}).get("indexes", []) == []}
    event = json.loads((ROOT / "tests" / "events" / "cloudevent_pubsub_valid.json").read_text())
    tx = Transaction.model_validate_json(base64.b64decode(event["data"]["message"]["data"]))
    applied = step(tx, None)  # what the store writes: the wallet document ...
    for key in applied.state:
        assert (names.WALLETS_COLLECTION, key) in exempt, key
    counterparty = counterparty_features(Snapshot(), tx)
    for key in processed_record(tx, applied, counterparty, ttl_days=7, lease_s=30):  # ... and the processed marker
        assert (names.PROCESSED_COLLECTION, key) in exempt, key


def test_one_composite_index_serves_the_decisions_at_an_entity_in_a_window(default_stack: StackRun) -> None:
    """`processed_at`: entities array-contains, event_time range and order; both fields are on every record."""
    index = default_stack.one("gcp:firestore/index:Index", collection=names.PROCESSED_COLLECTION)
    assert index.inputs["queryScope"] == "COLLECTION"
    assert index.inputs["fields"] == [{"fieldPath": "entities", "arrayConfig": "CONTAINS"},
                                      {"fieldPath": "event_time", "order": "ASCENDING"}]
    from tests.enrich_fakes import make_tx
    from txguard.enrichment.history.record import processed_record, step
    from txguard.features.counterparty import EntityKeys, Snapshot
    from txguard.features.counterparty_windows import counterparty_features

    tx = make_tx(1)
    record = processed_record(tx, step(tx, None), counterparty_features(Snapshot(), tx), ttl_days=7, lease_s=30)
    # Every entity the features read: the wallet, its inflow, the counterparty, the payee's own
    # labels as a wallet and the device (txguard.features.counterparty.EntityKeys.read).
    read = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).read()
    assert sorted(record["entities"]) == sorted(read) and len(set(read)) == 5
    assert record["event_time"] == tx.timestamp.timestamp()


def test_monitoring_metrics_alerts_and_dashboard(default_stack: StackRun, override_stack: StackRun) -> None:
    metrics = {m.inputs["name"]: m.inputs for m in default_stack.of_type("gcp:logging/metric:Metric")}
    decisions = next(m for m in metrics.values() if "outcome" in m.get("labelExtractors", {}))
    assert decisions["labelExtractors"] == {"outcome": "EXTRACT(jsonPayload.outcome)",
                                            "model_version": "EXTRACT(jsonPayload.model_version)"}
    # Decisions are counted on the enrichment's "decided" lines (not duplicates or invalid ones).
    from txguard.enrichment.pipeline import DeliveryStatus

    assert names.ENRICH_FUNCTION in decisions["filter"]
    assert f'jsonPayload.status="{DeliveryStatus.DECIDED.value}"' in decisions["filter"]
    from infra.monitoring import LATENCY_METRIC

    latency = metrics[LATENCY_METRIC]  # by name: the drift metric has a value extractor too
    assert latency["valueExtractor"] == "EXTRACT(jsonPayload.latency_ms)"
    from txguard.scoring.routes import ROUTES

    score_route = '"/score"'
    assert f"jsonPayload.path={score_route}" in latency["filter"]
    assert "/score" in ROUTES  # the route the SLA is about exists
    assert latency["metricDescriptor"]["valueType"] == "DISTRIBUTION"

    alerts = {a.name: a.inputs for a in default_stack.of_type("gcp:monitoring/alertPolicy:AlertPolicy")}
    thresholds = {name: [c["conditionThreshold"] for c in a["conditions"]] for name, a in alerts.items()}
    assert all(t["thresholdValue"] == 0.01 and t["duration"] == "300s" for t in thresholds["error-rate"])
    functions = (names.SCORING_FUNCTION, names.ENRICH_FUNCTION, names.LABEL_FUNCTION)
    assert set(functions) == {s for s in functions if any(f'"{s}"' in t["filter"] for t in thresholds["error-rate"])}
    assert names.DEAD_LETTER_SUBSCRIPTION in thresholds["dead-letter-backlog"][0]["filter"]
    assert thresholds["dead-letter-backlog"][0]["thresholdValue"] == 0
    assert_alert_policies(alerts, scoring_p99=150, enrich_p99=1000, age=300, shares=(0.05, 0.01, 0.05))
    overridden = {a.name: a.inputs for a in override_stack.of_type("gcp:monitoring/alertPolicy:AlertPolicy")}
    assert_alert_policies(overridden, scoring_p99=80, enrich_p99=400, age=120, shares=(0.02, 0.005, 0.2))

    board = json.loads(default_stack.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    filters = " ".join(walk_strings(board))
    assert all(name in filters for name in metrics)
    assert names.DEAD_LETTER_SUBSCRIPTION in filters

    channels = override_stack.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    assert [c.inputs["labels"]["email_address"] for c in channels] == json.loads(OVERRIDES["txguard:alertEmails"])
    assert all(a.inputs.get("notificationChannels") for a in override_stack.of_type(
        "gcp:monitoring/alertPolicy:AlertPolicy"))


def test_late_counterparty_updates_are_counted_from_both_functions_lines(default_stack: StackRun) -> None:
    """The metric reads the `late_update` lines the enrichment and label functions write, by entity and source."""
    from infra.monitoring import LATE_UPDATES_METRIC
    from tests.enrich_fakes import make_tx
    from txguard.contract.logs import EVENT_KEY, LATE_UPDATE_EVENT
    from txguard.enrichment.counterparty.lateness import Update, find_late
    from txguard.features.counterparty import EntityKeys, transaction_increments

    metric = next(m.inputs for m in default_stack.of_type("gcp:logging/metric:Metric")
                  if m.inputs["name"] == LATE_UPDATES_METRIC)
    assert f'jsonPayload.{EVENT_KEY}="{LATE_UPDATE_EVENT}"' in metric["filter"]
    assert f'"{names.ENRICH_FUNCTION}"' in metric["filter"] and f'"{names.LABEL_FUNCTION}"' in metric["filter"]
    assert metric["labelExtractors"] == {"entity": "EXTRACT(jsonPayload.entity)", "source": "EXTRACT(jsonPayload.source)"}
    tx = make_tx(1)
    key = EntityKeys.of(tx.wallet_id, tx.counterparty_id, tx.device_id).counterparty
    (late,) = find_late(Update.of_transaction(tx, transaction_increments(tx, True, False)), {key: 4e9})
    fields = late.log_fields()
    assert (fields[EVENT_KEY], fields["entity"], fields["source"]) == (LATE_UPDATE_EVENT, "counterparty", "transaction")
    board = json.loads(default_stack.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    assert any(LATE_UPDATES_METRIC in text and "metric.label.entity" in json.dumps(tile)
               for tile in board["mosaicLayout"]["tiles"] for text in walk_strings(tile))


def test_model_lifecycle_settings_drift_metric_and_alert(default_stack: StackRun, override_stack: StackRun) -> None:
    from txguard.contract.logs import DRIFT_EVENT, MODEL_REFUSED_EVENT

    defaults = ScoringSettings.model_validate(
        function(default_stack, names.SCORING_FUNCTION)["serviceConfig"]["environmentVariables"])
    assert (defaults.model_poll_s, defaults.shadow_enabled) == (10.0, False)  # the function's own defaults
    overridden = ScoringSettings.model_validate(
        function(override_stack, names.SCORING_FUNCTION)["serviceConfig"]["environmentVariables"])
    assert (overridden.model_poll_s, overridden.shadow_enabled, overridden.shadow_sample_rate,
            overridden.drift_window_s) == (5.0, True, 0.25, 600.0)

    metrics = {m.inputs["name"]: m.inputs for m in default_stack.of_type("gcp:logging/metric:Metric")}
    drift = metrics["txguard_drift_psi"]
    assert f'jsonPayload.event="{DRIFT_EVENT}"' in drift["filter"] and names.SCORING_FUNCTION in drift["filter"]
    assert drift["valueExtractor"] == "EXTRACT(jsonPayload.psi_max)"
    assert drift["labelExtractors"]["feature"] == "EXTRACT(jsonPayload.feature_max)"
    assert f'jsonPayload.event="{MODEL_REFUSED_EVENT}"' in metrics["txguard_model_refused"]["filter"]
    for run, threshold, duration in ((default_stack, 0.2, "1800s"), (override_stack, 0.3, "3600s")):
        alert = next(a.inputs for a in run.of_type("gcp:monitoring/alertPolicy:AlertPolicy") if a.name == "model-drift")
        (condition,) = [c["conditionThreshold"] for c in alert["conditions"]]
        assert "txguard_drift_psi" in condition["filter"]
        assert (condition["thresholdValue"], condition["duration"], condition["comparison"]) == (
            threshold, duration, "COMPARISON_GT")
        assert condition["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_50"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("txguard:shadowSampleRate", "1.5", "shadowSampleRate"),
    ("txguard:driftAlertMinutes", "5", "at least two drift windows"),
    ("txguard:modelPollSeconds", "900", "modelPollSeconds"),
])
def test_invalid_lifecycle_config_is_rejected(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_program({**BASE_CONFIG, key: value}, tmp_path)


def test_late_transactions_are_counted_from_the_enrichment_decided_lines(default_stack: StackRun) -> None:
    """Skew made visible: the enrichment line of a decision flagged late (`"late": true`) is counted."""
    from infra.monitoring import LATE_METRIC
    from txguard.enrichment.pipeline import DeliveryStatus, Result

    late = default_stack.one("gcp:logging/metric:Metric", name=LATE_METRIC).inputs
    assert f'resource.labels.service_name="{names.ENRICH_FUNCTION}"' in late["filter"]
    assert f'jsonPayload.status="{DeliveryStatus.DECIDED.value}"' in late["filter"]
    assert "jsonPayload.late=true" in late["filter"]
    assert "late" in Result.__dataclass_fields__  # the field the enrichment log line carries
    assert late["metricDescriptor"]["metricKind"] == "DELTA" and late["metricDescriptor"]["valueType"] == "INT64"
    board = json.loads(default_stack.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    assert LATE_METRIC in " ".join(walk_strings(board))


def assert_alert_policies(alerts: dict[str, dict[str, Any]], scoring_p99: float, enrich_p99: float, age: int,
                          shares: tuple[float, float, float]) -> None:
    """What callers feel (Cloud Run p99 per function), a stalled pipeline, and the shares of bad outcomes."""
    from txguard.contract.models import Outcome
    from txguard.enrichment.pipeline import DeliveryStatus

    def conditions(name: str) -> list[dict[str, Any]]:
        return [c["conditionThreshold"] for c in alerts[name]["conditions"]]

    # Request latency: Cloud Run's distribution (queueing and cold starts included), p99 per function.
    latency = {next(s for s in (names.SCORING_FUNCTION, names.ENRICH_FUNCTION) if f'"{s}"' in c["filter"]): c
               for c in conditions("request-latency")}
    assert set(latency) == {names.SCORING_FUNCTION, names.ENRICH_FUNCTION}
    for service, threshold in ((names.SCORING_FUNCTION, scoring_p99), (names.ENRICH_FUNCTION, enrich_p99)):
        c = latency[service]
        assert 'metric.type="run.googleapis.com/request_latencies"' in c["filter"]
        assert f'resource.label.service_name="{service}"' in c["filter"]
        (agg,) = c["aggregations"]
        assert agg["perSeriesAligner"] == "ALIGN_DELTA" and agg["crossSeriesReducer"] == "REDUCE_PERCENTILE_99"
        assert agg["groupByFields"] == ["resource.label.service_name"]
        assert c["thresholdValue"] == threshold and c["comparison"] == "COMPARISON_GT"

    # A stalled pipeline: the age of the push subscription's oldest unacked message.
    (stall,) = conditions("oldest-unacked-message")
    assert 'metric.type="pubsub.googleapis.com/subscription/oldest_unacked_message_age"' in stall["filter"]
    assert f'resource.label.subscription_id="{names.ENRICH_PUSH_SUBSCRIPTION}"' in stall["filter"]
    assert stall["thresholdValue"] == age and alerts["oldest-unacked-message"]["severity"] == "CRITICAL"

    # Shares: numerator / denominator ratios over 5 minutes.
    invalid, dead, blocked = conditions("transaction-shares")
    for c, share in zip((invalid, dead, blocked), shares, strict=True):
        assert c["denominatorFilter"] and c["thresholdValue"] == share and c["duration"] == "300s"
        assert c["aggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
        assert c["denominatorAggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
    assert "txguard_enrich_deliveries" in invalid["filter"] and "txguard_enrich_deliveries" in invalid["denominatorFilter"]
    parked = {DeliveryStatus.INVALID.value, DeliveryStatus.REJECTED.value}
    assert all(f'"{s}"' in invalid["filter"] for s in parked) and "status" not in invalid["denominatorFilter"]
    assert "subscription/dead_letter_message_count" in dead["filter"]
    assert "subscription/ack_message_count" in dead["denominatorFilter"]
    assert all(names.ENRICH_PUSH_SUBSCRIPTION in f for f in (dead["filter"], dead["denominatorFilter"]))
    assert "txguard_decisions" in blocked["filter"] and "txguard_decisions" in blocked["denominatorFilter"]
    assert f'metric.label.outcome="{Outcome.BLOCK.value}"' in blocked["filter"]
    assert "outcome" not in blocked["denominatorFilter"]


def test_outputs(default_stack: StackRun) -> None:
    out = default_stack.outputs
    # Cloud Run service URLs (what push endpoints, ID token audiences and SCORING_URL use).
    assert out["scoring_url"].startswith(f"https://{names.SCORING_FUNCTION}-") and out["scoring_url"].endswith(".run.app")
    assert out["enrich_url"].startswith(f"https://{names.ENRICH_FUNCTION}-") and out["enrich_url"].endswith(".run.app")
    assert out["topics"] == {spec.name: spec.name for spec in names.TOPICS}
    assert out["models_bucket"] != out["sources_bucket"]
    assert set(out["service_accounts"]) >= {"scoring", "enrich", "push", "publisher"}
    assert all(e.endswith(".iam.gserviceaccount.com") for e in out["service_accounts"].values())


# -- what runs is this commit's code ----------------------------------------------------------------

PLACEHOLDERS = ("cloudrun/container/hello", "cloudrun/hello", "cloudrun/container/placeholder", "cloudrun/placeholder")


def images(value: Any) -> list[str]:
    """Every `image` (or `imageUri`) value anywhere in a resource's inputs."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [item] if key in ("image", "imageUri") and isinstance(item, str) else images(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found += images(item)
    return found


def test_every_service_runs_code_built_from_this_commits_archives(console_stack: StackRun, tmp_path: Path) -> None:
    """No placeholder image anywhere; each function builds from the archive of this checkout, and the
    console service runs the digest that the build of its archive pushed."""
    from pulumi_mocks import SOURCE_IMAGE

    from infra.archive import build_archive

    run = console_stack
    assert not [s for r in run.resources for s in walk_strings(r.inputs) if any(p in s for p in PLACEHOLDERS)]
    built = {b.inputs["object"]: b for b in run.of_type(SOURCE_IMAGE)}
    expected = {folder: build_archive(folder, tmp_path).object_name for folder in ("score", "enrich", "label", "console")}
    for fn, folder in ((names.SCORING_FUNCTION, "score"), (names.ENRICH_FUNCTION, "enrich"),
                       (names.LABEL_FUNCTION, "label")):
        assert function(run, fn)["buildConfig"]["source"]["storageSource"]["object"] == expected[folder]
    services = run.of_type("gcp:cloudrunv2/service:Service")
    assert services and set(built) == {expected["console"]}
    for svc in services:
        assert "buildConfig" not in svc.inputs  # a record of a source deploy, never a build
        (image,) = images(svc.inputs)
        (source,) = [b for b in built.values() if image.startswith(b.inputs["image"] + "@sha256:")]
        assert image == run.outputs["console_image"] and source.inputs["object"] == expected["console"]
        assert run.depends((svc.typ, svc.name), (SOURCE_IMAGE, source.name))
