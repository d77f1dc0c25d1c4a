"""The label feedback loop as the Pulumi program declares it (docs/counterparty.md, docs/infra.md).

The label function (gen2, CloudEvent over our own push subscription), its push subscription's retry
and dead-letter policy, the Bigtable counterparty store (instance, table, families, garbage
collection), least-privilege grants on the table, the environment both functions read, the order a
first `pulumi up` creates them in, and the monitoring of labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_mocks import BASE_CONFIG, OVERRIDES, StackRun, run_program
from test_program import function, iam_grants

from infra.config import ConfigError
from txguard.contract import names
from txguard.contract.settings import EnrichSettings, LabelSettings

SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
INSTANCE = "gcp:bigtable/instance:Instance"
TABLE = "gcp:bigtable/table:Table"
GC = "gcp:bigtable/gCPolicy:GCPolicy"
TABLE_GRANT = "gcp:bigtable/tableIamMember:TableIamMember"
TOPIC_GRANT = "gcp:pubsub/topicIAMMember:TopicIAMMember"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
SA_GRANT = "gcp:serviceaccount/iAMMember:IAMMember"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
DAY_HOURS = 24


def env(run: StackRun, name: str) -> dict[str, Any]:
    return function(run, name)["serviceConfig"]["environmentVariables"]


# -- the label function ------------------------------------------------------------------------------

def test_label_function_is_a_cloudevent_function_fed_by_our_push_subscription(default_stack: StackRun) -> None:
    inputs = function(default_stack, names.LABEL_FUNCTION)
    assert inputs["buildConfig"]["entryPoint"] == names.LABEL_ENTRY_POINT
    assert inputs["buildConfig"]["environmentVariables"] == {"GOOGLE_FUNCTION_SIGNATURE_TYPE": "cloudevent"}
    assert "eventTrigger" not in inputs
    service = inputs["serviceConfig"]
    assert service["serviceAccountEmail"] == default_stack.outputs["service_accounts"]["label"]
    assert service["ingressSettings"] == "ALLOW_INTERNAL_ONLY"  # only Pub/Sub push of the project reaches it
    assert {k: service[k] for k in ("maxInstanceRequestConcurrency", "minInstanceCount", "maxInstanceCount",
                                     "availableCpu", "availableMemory")} == {
        "maxInstanceRequestConcurrency": 10, "minInstanceCount": 0, "maxInstanceCount": 20, "availableCpu": "1",
        "availableMemory": "1Gi"}
    source = inputs["buildConfig"]["source"]["storageSource"]["object"]
    assert source.startswith("label-") and source.endswith(".zip")  # the content-hashed archive
    assert default_stack.outputs["label_url"].startswith(f"https://{names.LABEL_FUNCTION}-")


def test_label_capacity_follows_config(override_stack: StackRun) -> None:
    service = function(override_stack, names.LABEL_FUNCTION)["serviceConfig"]
    assert service["maxInstanceRequestConcurrency"] == int(OVERRIDES["txguard:labelConcurrency"])
    assert service["maxInstanceCount"] == int(OVERRIDES["txguard:labelMaxInstances"])
    assert env(override_stack, names.LABEL_FUNCTION)["THREADS"] == OVERRIDES["txguard:labelConcurrency"]


def test_both_functions_read_the_declared_bigtable_table(default_stack: StackRun, override_stack: StackRun) -> None:
    for run, shards in ((default_stack, 4), (override_stack, int(OVERRIDES["txguard:counterpartyShards"]))):
        label = LabelSettings.model_validate(env(run, names.LABEL_FUNCTION))
        enrich = EnrichSettings.model_validate(env(run, names.ENRICH_FUNCTION))
        table = run.one(TABLE, name=names.COUNTERPARTY_TABLE).inputs
        instance = run.one(INSTANCE).inputs
        for settings in (label, enrich):
            assert settings.counterparty_store == "bigtable"
            assert (settings.bigtable_instance, settings.counterparty_table) == (instance["name"], table["name"])
            assert settings.counterparty_shards == shards
            assert settings.transaction_index_table == run.one(TABLE, name=names.TRANSACTION_INDEX_TABLE).inputs["name"]
            assert settings.google_cloud_project == BASE_CONFIG["gcp:project"]
        assert label.invalid_topic == names.INVALID_TOPIC
    assert (default_stack.outputs["bigtable_instance"], default_stack.outputs["counterparty_table"]) == (
        names.BIGTABLE_INSTANCE, names.COUNTERPARTY_TABLE)
    # Only the label function's own settings (and the server's) reach it: no retyped names.
    aliases = {f.alias for f in LabelSettings.model_fields.values()} | {"WORKERS", "THREADS"}
    assert set(env(default_stack, names.LABEL_FUNCTION)) <= aliases


@pytest.mark.parametrize("route", names.LABEL_ROUTES, ids=lambda r: r.name)
def test_label_push_subscription_authenticates_retries_and_dead_letters(default_stack: StackRun,
                                                                       route: names.LabelRoute) -> None:
    """One push subscription per label source, each on the route's own path of the label function (the path
    tells the function who published: only this subscription posts there), the OIDC audience the service URL
    Cloud Run checks, both dead-lettering to labels-dead-letter."""
    spec = names.subscription(route.subscription)
    sub = default_stack.one(SUBSCRIPTION, name=spec.name).inputs
    url = default_stack.outputs["label_url"]
    assert sub["topic"] == f"projects/{BASE_CONFIG['gcp:project']}/topics/{route.topic}"
    assert sub["pushConfig"]["pushEndpoint"] == url + route.path and route.path.startswith("/sources/")
    push = default_stack.outputs["service_accounts"]["push"]
    assert sub["pushConfig"]["oidcToken"] == {"serviceAccountEmail": push, "audience": url}
    assert sub["retryPolicy"] == {"minimumBackoff": "1s", "maximumBackoff": "60s"}
    assert sub["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{BASE_CONFIG['gcp:project']}/topics/{names.LABELS_DEAD_LETTER_TOPIC}",
        "maxDeliveryAttempts": 10}
    assert sub["enableMessageOrdering"] is False  # a transaction's labels commute (features.label_ledger)
    timeout = function(default_stack, names.LABEL_FUNCTION)["serviceConfig"]["timeoutSeconds"]
    assert timeout <= sub["ackDeadlineSeconds"]
    inspect = default_stack.one(SUBSCRIPTION, name=names.LABELS_DEAD_LETTER_SUBSCRIPTION).inputs
    assert inspect["topic"].endswith(f"/topics/{names.LABELS_DEAD_LETTER_TOPIC}") and "pushConfig" not in inspect


# -- the counterparty store --------------------------------------------------------------------------

def test_bigtable_instance_is_one_cheap_node_by_default_and_autoscales_when_asked(
        default_stack: StackRun, override_stack: StackRun) -> None:
    instance = default_stack.one(INSTANCE).inputs
    assert instance["name"] == names.BIGTABLE_INSTANCE and instance["deletionProtection"] is True
    (cluster,) = instance["clusters"]
    assert cluster == {"clusterId": f"{names.BIGTABLE_INSTANCE}-c1", "zone": "europe-west1-b", "storageType": "SSD",
                       "numNodes": 1}
    (scaled,) = override_stack.one(INSTANCE).inputs["clusters"]
    assert scaled["zone"] == OVERRIDES["txguard:bigtableZone"] and scaled["storageType"] == "HDD"
    assert "numNodes" not in scaled  # the autoscaler owns the node count
    assert scaled["autoscalingConfig"] == {"minNodes": 3, "maxNodes": 10, "cpuTarget": 50}
    services = {s.inputs["service"] for s in default_stack.of_type("gcp:projects/service:Service")}
    assert {"bigtable.googleapis.com", "bigtableadmin.googleapis.com"} <= services


def test_table_families_and_garbage_collection_are_the_stores_layout(default_stack: StackRun) -> None:
    table = default_stack.one(TABLE, name=names.COUNTERPARTY_TABLE).inputs
    assert table["deletionProtection"] == "PROTECTED"
    families = {f["family"]: f.get("type") for f in table["columnFamilies"]}
    assert set(families) == {names.COUNTERPARTY_COUNTERS_FAMILY, names.COUNTERPARTY_MARKERS_FAMILY,
                             names.COUNTERPARTY_LEDGER_FAMILY, names.LABEL_RATES_FAMILY, names.LABEL_HELD_FAMILY,
                             names.COUNTERPARTY_READS_FAMILY}
    # The counters are an aggregate family, Sum of big-endian int64: what AddToCell writes.
    counters = json.loads(families[names.COUNTERPARTY_COUNTERS_FAMILY])["aggregateType"]
    assert counters == {"inputType": {"int64Type": {"encoding": {"bigEndianBytes": {}}}}, "sum": {}}
    assert all(families[f] is None for f in (names.COUNTERPARTY_MARKERS_FAMILY, names.COUNTERPARTY_LEDGER_FAMILY,
                                              names.COUNTERPARTY_READS_FAMILY))
    gc = {p.inputs["columnFamily"]: p.inputs for p in default_stack.of_type(GC)}
    index = gc.pop(names.TRANSACTION_INDEX_FAMILY)  # the transaction index table's one family
    assert index["table"] == names.TRANSACTION_INDEX_TABLE and index["mode"] == "UNION"
    assert index["maxVersions"] == [{"number": 1}]
    assert index["maxAge"] == {"duration": f"{names.TRANSACTION_INDEX_RETENTION_DAYS * DAY_HOURS}h"}
    assert gc.pop(names.LABEL_RATES_FAMILY)["maxAge"] == {"duration": f"{names.LABEL_RATES_RETENTION_DAYS * DAY_HOURS}h"}
    assert gc.pop(names.LABEL_HELD_FAMILY)["maxAge"] == {"duration": f"{names.LABEL_HELD_RETENTION_DAYS * DAY_HOURS}h"}
    days = names.COUNTERPARTY_RETENTION_DAYS * DAY_HOURS
    for family in (names.COUNTERPARTY_COUNTERS_FAMILY, names.COUNTERPARTY_MARKERS_FAMILY):
        assert gc[family]["maxAge"] == {"duration": f"{days}h"} and "maxVersions" not in gc[family]
    ledger = gc[names.COUNTERPARTY_LEDGER_FAMILY]
    assert ledger["mode"] == "UNION" and ledger["maxVersions"] == [{"number": 1}]
    assert ledger["maxAge"] == {"duration": f"{names.LABEL_LEDGER_RETENTION_DAYS * DAY_HOURS}h"}
    # Read marks: one version per row (the latest 5-minute slot read), dropped with the counters they describe.
    reads = gc[names.COUNTERPARTY_READS_FAMILY]
    assert reads["mode"] == "UNION" and reads["maxVersions"] == [{"number": 1}] and reads["maxAge"] == {"duration": f"{days}h"}
    assert all(p["table"] == names.COUNTERPARTY_TABLE and p["instanceName"] == names.BIGTABLE_INSTANCE
               for p in gc.values())
    # The features read 30 days back: the GC must keep at least that much.
    from txguard.features.counterparty import WINDOW_DAYS

    assert names.COUNTERPARTY_RETENTION_DAYS > WINDOW_DAYS


def test_force_destroy_lifts_the_delete_protections(tmp_path: Path) -> None:
    run = run_program({**BASE_CONFIG, "txguard:forceDestroy": "true"}, tmp_path)
    assert run.one(INSTANCE).inputs["deletionProtection"] is False
    assert {t.inputs["deletionProtection"] for t in run.of_type(TABLE)} == {"UNPROTECTED"}


# -- least privilege ----------------------------------------------------------------------------------

def test_table_is_reached_by_the_two_functions_only_through_table_bindings(default_stack: StackRun) -> None:
    grants = default_stack.of_type(TABLE_GRANT)
    accounts = default_stack.outputs["service_accounts"]
    assert {(g.inputs["member"], g.inputs["role"], g.inputs["table"]) for g in grants} == {
        *{(f"serviceAccount:{accounts[role]}", "roles/bigtable.user", names.COUNTERPARTY_TABLE)
          for role in ("enrich", "label")},
        # Enrichment records every transaction in the index; the label function only reads it.
        (f"serviceAccount:{accounts['enrich']}", "roles/bigtable.user", names.TRANSACTION_INDEX_TABLE),
        (f"serviceAccount:{accounts['label']}", "roles/bigtable.reader", names.TRANSACTION_INDEX_TABLE)}
    assert not default_stack.of_type("gcp:bigtable/instanceIamMember:InstanceIamMember")
    assert not [r for r in default_stack.resources
                if r.typ == "gcp:projects/iAMMember:IAMMember" and "bigtable" in r.inputs["role"]]
    label = f"serviceAccount:{accounts['label']}"
    assert iam_grants(default_stack)[label] == {("bigtable", "roles/bigtable.user", names.COUNTERPARTY_TABLE),
                                                ("bigtable", "roles/bigtable.reader", names.TRANSACTION_INDEX_TABLE),
                                                ("pubsub", "roles/pubsub.publisher", names.INVALID_TOPIC)}
    push = f"serviceAccount:{accounts['push']}"
    invoked = {g.inputs["name"] for g in default_stack.of_type(RUN_INVOKER) if g.inputs["member"] == push}
    assert invoked == {names.ENRICH_FUNCTION, names.LABEL_FUNCTION}


# -- one `pulumi up` -----------------------------------------------------------------------------------

def test_functions_start_only_once_they_may_use_the_table(default_stack: StackRun) -> None:
    assert default_stack.depends((FUNCTION, "label"), (TABLE_GRANT, "label-counterparty-user"))
    assert default_stack.depends((FUNCTION, "label"), (TOPIC_GRANT, "label-invalid-publisher"))
    assert default_stack.depends((FUNCTION, "enrich"), (TABLE_GRANT, "enrich-counterparty-user"))
    for grant in ("label-counterparty-user", "enrich-counterparty-user"):
        assert default_stack.depends((TABLE_GRANT, grant), (TABLE, "counterparty"))


def test_label_push_subscription_waits_for_its_function_and_push_grants(default_stack: StackRun) -> None:
    push = (SUBSCRIPTION, names.LABELS_PUSH_SUBSCRIPTION)
    assert default_stack.depends(push, (FUNCTION, "label"))
    assert default_stack.depends(push, (RUN_INVOKER, "push-invokes-label"))
    assert default_stack.depends(push, (SA_GRANT, "pubsub-agent-push-token-creator"))
    # Each push subscription waits for its own function only.
    assert not default_stack.depends(push, (FUNCTION, "enrich"))
    assert not default_stack.depends((SUBSCRIPTION, names.ENRICH_PUSH_SUBSCRIPTION), (FUNCTION, "label"))


# -- monitoring ---------------------------------------------------------------------------------------

def test_labels_are_counted_charted_and_their_dead_letters_alerted(default_stack: StackRun) -> None:
    from infra.monitoring import LABELS_METRIC
    from txguard.enrichment.label_applier import LabelStatus

    metric = default_stack.one("gcp:logging/metric:Metric", name=LABELS_METRIC).inputs
    assert f'resource.labels.service_name="{names.LABEL_FUNCTION}"' in metric["filter"]
    assert metric["labelExtractors"] == {key: f"EXTRACT(jsonPayload.{key})"
                                         for key in ("status", "route", "source", "verdict", "hold")}
    assert LabelStatus.APPLIED.value == "applied"  # the status the dashboard's "applied" series reads
    board = json.loads(default_stack.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    charts = {t["widget"]["title"]: t["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"]
              for t in board["mosaicLayout"]["tiles"]}
    per_minute = next(c for title, c in charts.items() if title.startswith("Labels per minute"))
    assert LABELS_METRIC in per_minute["filter"]
    assert per_minute["aggregation"]["perSeriesAligner"] == "ALIGN_DELTA"  # a count per 60 s bucket
    assert per_minute["aggregation"]["alignmentPeriod"] == "60s"
    assert per_minute["aggregation"]["groupByFields"] == ["metric.label.status"]
    alerts = {a.name: a.inputs for a in default_stack.of_type("gcp:monitoring/alertPolicy:AlertPolicy")}
    (backlog,) = [c["conditionThreshold"] for c in alerts["labels-dead-letter-backlog"]["conditions"]]
    assert f'resource.label.subscription_id="{names.LABELS_DEAD_LETTER_SUBSCRIPTION}"' in backlog["filter"]
    assert backlog["thresholdValue"] == 0 and backlog["comparison"] == "COMPARISON_GT"
    errors = default_stack.one("gcp:logging/metric:Metric", name="txguard_error_logs").inputs
    assert f'"{names.LABEL_FUNCTION}"' in errors["filter"]


# -- configuration ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "message"), [
    ("bigtableZone", "us-central1-a", "not a zone of the region"),
    ("bigtableStorageType", "NVME", "SSD or HDD"),
    ("bigtableMinNodes", "2", "needs bigtableMaxNodes"),
    ("bigtableCpuTarget", "95", "10..80"),
    ("counterpartyShards", "100", "1..64"),
    ("labelTimeoutSeconds", "120", "label push ack deadline"),
])
def test_invalid_counterparty_and_label_config_is_rejected(tmp_path: Path, key: str, value: str, message: str) -> None:
    config = {**BASE_CONFIG, f"txguard:{key}": value}
    if key == "bigtableCpuTarget":
        config["txguard:bigtableMaxNodes"] = "4"
    with pytest.raises(ConfigError, match=message):
        run_program(config, tmp_path)
