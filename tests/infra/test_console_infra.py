"""The analyst console as the Pulumi program declares it: behind IAP for the analysts group only,
invoked only by IAP, never public, with an identity that can do exactly the console's job."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GROUP
from pulumi_mocks import BASE_CONFIG, IAP_AGENT, PROJECT_NUMBER, ROOT, SOURCE_IMAGE, StackRun, run_program
from test_program import PUBLIC, iam_grants, walk_strings

from infra.archive import build_archive
from infra.config import ConfigError
from txguard.contract import names
from txguard.contract.settings import ConsoleSettings, EnrichSettings

SERVICE = "gcp:cloudrunv2/service:Service"
SUBSCRIPTION_TYPE = "gcp:pubsub/subscription:Subscription"
TABLE_GRANT = "gcp:bigtable/tableIamMember:TableIamMember"


def service(run: StackRun) -> dict:
    return run.one(SERVICE, name=names.CONSOLE_SERVICE).inputs


def test_no_console_without_an_analysts_group(default_stack: StackRun) -> None:
    assert default_stack.of_type(SERVICE) == []
    assert default_stack.outputs["console_url"] is None
    assert "console" not in default_stack.outputs["service_accounts"]


def test_the_console_is_behind_iap_and_only_iap_may_invoke_it(console_stack: StackRun) -> None:
    svc = service(console_stack)
    assert svc["iapEnabled"] is True and svc.get("invokerIamDisabled") is False
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL"
    on_service = [r.inputs for r in console_stack.resources
                  if r.typ in ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
                               "gcp:iap/webCloudRunServiceIamMember:WebCloudRunServiceIamMember")
                  and names.CONSOLE_SERVICE in (r.inputs.get("name"), r.inputs.get("cloudRunServiceName"))]
    assert sorted((g["role"], g["member"]) for g in on_service) == [
        ("roles/iap.httpsResourceAccessor", f"group:{GROUP}"),
        ("roles/run.invoker", IAP_AGENT),
    ]
    # Nothing public anywhere in the stack, console included.
    assert not [s for r in console_stack.resources for s in walk_strings(r.inputs) if s in PUBLIC]
    assert console_stack.outputs["console_url"].startswith(f"https://{names.CONSOLE_SERVICE}-")


def test_the_app_checks_iap_assertions_for_this_service(console_stack: StackRun) -> None:
    env = {e["name"]: e["value"] for e in service(console_stack)["template"]["containers"][0]["envs"]}
    workers_threads = {"WORKERS", "THREADS"}
    settings = ConsoleSettings.model_validate({k: v for k, v in env.items() if k not in workers_threads})
    assert settings.iap_audience == f"/projects/{PROJECT_NUMBER}/locations/europe-west1/services/{names.CONSOLE_SERVICE}"
    assert (settings.history_store, settings.scoring_auth) == ("firestore", "id_token")
    assert settings.scoring_url == console_stack.outputs["scoring_url"]
    assert settings.registry == f"gs://{console_stack.outputs['models_bucket']}/registry"
    drift, labels = (console_stack.one("gcp:logging/logView:LogView", name=v) for v in ("drift-windows",
                                                                                     "label-outcomes"))
    view_name = f"{drift.inputs['bucket']}/views/{drift.inputs['name']}"
    assert (settings.drift_source, settings.drift_psi_threshold) == (f"cloud-logging:{view_name}", 0.2)
    assert settings.label_source == f"cloud-logging:{labels.inputs['bucket']}/views/{labels.inputs['name']}"
    assert env["WORKERS"] == "1"
    aliases = {f.alias for f in ConsoleSettings.model_fields.values()}
    assert set(env) <= aliases | workers_threads


def test_only_the_configured_approvers_move_production(console_stack: StackRun, tmp_path: Path) -> None:
    """`productionApprovers` reaches the console as CONSOLE_APPROVERS, which its approvers check reads;
    without it nobody may (and Pulumi says so)."""
    from conftest import APPROVERS

    from txguard.console.approvers import Approvers

    env = {e["name"]: e["value"] for e in service(console_stack)["template"]["containers"][0]["envs"]}
    approvers = Approvers.parse(ConsoleSettings.model_validate(
        {k: v for k, v in env.items() if k not in ("WORKERS", "THREADS")}).approvers)
    assert approvers.members == frozenset(APPROVERS)
    assert approvers.is_approver(APPROVERS[0]) and not approvers.is_approver(f"someone-else@{APPROVERS[0].split('@')[1]}")
    bare = run_program({**BASE_CONFIG, "txguard:analystsGroup": GROUP}, tmp_path)
    env = {e["name"]: e["value"] for e in service(bare)["template"]["containers"][0]["envs"]}
    assert env["CONSOLE_APPROVERS"] == "" and Approvers.parse(env["CONSOLE_APPROVERS"]).members == frozenset()
    with pytest.raises(ConfigError, match="productionApprovers: 'carol' is not an e-mail"):
        run_program({**BASE_CONFIG, "txguard:analystsGroup": GROUP, "txguard:productionApprovers": '["carol"]'},
                    tmp_path)


def test_the_console_answers_its_own_hosts_and_caps_its_live_streams(console_stack: StackRun, tmp_path: Path) -> None:
    env = {e["name"]: e["value"] for e in service(console_stack)["template"]["containers"][0]["envs"]}
    settings = ConsoleSettings.model_validate({k: v for k, v in env.items() if k not in ("WORKERS", "THREADS")})
    assert settings.trusted_host_list() == [f"{names.CONSOLE_SERVICE}-{PROJECT_NUMBER}.europe-west1.run.app",
                                            ".a.run.app"]
    assert 0 < settings.live_streams < int(env["THREADS"])  # streams never take every thread
    custom = run_program({**BASE_CONFIG, "txguard:analystsGroup": GROUP,
                          "txguard:consoleHosts": '["fraud.example.com"]'}, tmp_path)
    env = {e["name"]: e["value"] for e in service(custom)["template"]["containers"][0]["envs"]}
    assert env["CONSOLE_TRUSTED_HOSTS"].split(",")[-1] == "fraud.example.com"


def test_manual_scoring_reads_the_enrichments_counterparty_table_read_only(console_stack: StackRun) -> None:
    run = console_stack
    env = {e["name"]: e["value"] for e in service(run)["template"]["containers"][0]["envs"]}
    console = ConsoleSettings.model_validate({k: v for k, v in env.items() if k not in ("WORKERS", "THREADS")})
    enrich = EnrichSettings.model_validate(
        run.one("gcp:cloudfunctionsv2/function:Function", name=names.ENRICH_FUNCTION)
        .inputs["serviceConfig"]["environmentVariables"])
    fields = ("counterparty_store", "bigtable_instance", "counterparty_table", "counterparty_shards")
    assert [getattr(console, f) for f in fields] == [getattr(enrich, f) for f in fields]
    assert console.counterparty_store == "bigtable"
    assert (console.bigtable_instance, console.counterparty_table) == (
        run.outputs["bigtable_instance"], run.outputs["counterparty_table"])
    # A table-level binding, read only: no instance or project grant, never bigtable.user.
    member = f"serviceAccount:{run.outputs['service_accounts']['console']}"
    mine = [g.inputs for g in run.of_type(TABLE_GRANT) if g.inputs["member"] == member]
    assert [(g["role"], g["table"], g["instanceName"]) for g in mine] == [
        ("roles/bigtable.reader", names.COUNTERPARTY_TABLE, run.outputs["bigtable_instance"])]
    assert not [r for r in run.resources if "bigtable" in r.typ.lower() and "iam" in r.typ.lower()
                and r.typ != TABLE_GRANT]
    assert run.depends((TABLE_GRANT, "console-counterparty-reader"), ("gcp:bigtable/table:Table", "counterparty"))


def test_the_console_identity_has_exactly_its_roles(console_stack: StackRun, default_stack: StackRun) -> None:
    run = console_stack
    member = f"serviceAccount:{run.outputs['service_accounts']['console']}"
    grants = iam_grants(run)[member]
    models = run.outputs["models_bucket"]
    assert grants == {
        *{("pubsub", "roles/pubsub.subscriber", sub) for sub in names.CONSOLE_SUBSCRIPTIONS},
        ("pubsub", "roles/pubsub.publisher", names.ANALYST_LABELS_TOPIC),  # its verdicts' own topic, no other
        ("projects", "roles/datastore.user", BASE_CONFIG["gcp:project"]),
        ("logging", "roles/logging.viewAccessor", "txguard-drift"),
        ("logging", "roles/logging.viewAccessor", "txguard-labels"),
        ("cloudrunv2", "roles/run.invoker", names.SCORING_FUNCTION),
        ("storage", "roles/storage.objectViewer", models),
        ("storage", "roles/storage.objectUser", models),
        ("bigtable", "roles/bigtable.reader", names.COUNTERPARTY_TABLE),
    }
    writer = run.one("gcp:storage/bucketIAMMember:BucketIAMMember", role="roles/storage.objectUser").inputs
    assert writer["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{models}/objects/registry/aliases/")')
    # Firestore: the stack's database only (an IAM condition; the role has no per-database binding).
    datastore = run.one("gcp:projects/iAMMember:IAMMember", member=member, role="roles/datastore.user").inputs
    assert datastore["condition"]["expression"] == (
        f'resource.name == "projects/{BASE_CONFIG["gcp:project"]}/databases/(default)"')
    # Every other identity keeps exactly the grants it has without the console.
    others = {m: g for m, g in iam_grants(run).items() if m not in (member, IAP_AGENT, f"group:{GROUP}")}
    assert others == dict(iam_grants(default_stack))


def test_one_always_on_instance_built_from_the_console_archive(console_stack: StackRun, tmp_path: Path) -> None:
    svc = service(console_stack)
    assert svc["template"]["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 1}
    container = svc["template"]["containers"][0]
    assert container["resources"]["cpuIdle"] is False
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert svc["template"]["serviceAccount"] == console_stack.outputs["service_accounts"]["console"]
    # Not a source deploy record (`build_config` never builds): the image Cloud Build pushed, by digest.
    assert "buildConfig" not in svc and "baseImageUri" not in container
    (build,) = console_stack.of_type(SOURCE_IMAGE)
    assert container["image"] == console_stack.outputs["console_image"]
    assert container["image"].startswith(build.inputs["image"] + "@sha256:")
    assert build.inputs["image"] == f"europe-west1-docker.pkg.dev/{BASE_CONFIG['gcp:project']}/txguard-functions/" \
                                    f"{names.CONSOLE_SERVICE}"
    assert (build.inputs["function_target"], build.inputs["python_version"]) == (names.CONSOLE_ENTRY_POINT, "3.11.x")
    sources = console_stack.outputs["sources_bucket"]
    objects = {o.inputs["name"] for o in console_stack.of_type("gcp:storage/bucketObject:BucketObject")}
    assert build.inputs["bucket"] == sources and build.inputs["object"] in objects
    assert build.inputs["object"] == build_archive("console", tmp_path).object_name  # this commit's console
    assert build.inputs["tag"] == build.inputs["object"].removeprefix("console-").removesuffix(".zip")
    assert build.inputs["service_account"].endswith(
        f"txguard-build@{BASE_CONFIG['gcp:project']}.iam.gserviceaccount.com")


@pytest.mark.parametrize("group", ["analysts", "group:analysts@example.com", "a b@example.com"])
def test_a_malformed_group_is_refused(tmp_path: Path, group: str) -> None:
    with pytest.raises(ConfigError, match="analystsGroup"):
        run_program({**BASE_CONFIG, "txguard:analystsGroup": group}, tmp_path)


def test_the_console_starts_only_once_its_grants_and_build_grants_exist(console_stack: StackRun) -> None:
    # Its subscription readers start with the instance; its build runs as the build identity.
    console = (SERVICE, "console")
    needed = [("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember", f"console-{sub}-subscriber")
              for sub in names.CONSOLE_SUBSCRIPTIONS]
    needed += [("gcp:pubsub/topicIAMMember:TopicIAMMember", "console-analyst-labels-publisher"),
               ("gcp:projects/iAMMember:IAMMember", "console-datastore-user"),
               ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", "console-invokes-score"),
               ("gcp:storage/bucketIAMMember:BucketIAMMember", "console-models-viewer"),
               ("gcp:storage/bucketIAMMember:BucketIAMMember", "console-aliases-writer"),
               (TABLE_GRANT, "console-counterparty-reader"),
               ("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "build-images-writer"),
               (SUBSCRIPTION_TYPE, names.DECISIONS_CONSOLE_SUBSCRIPTION)]
    for grant in needed:
        assert console_stack.depends(console, grant), grant


def test_the_queue_listing_has_its_index_and_labelled_items_expire(console_stack: StackRun) -> None:
    index = console_stack.one("gcp:firestore/index:Index", collection=names.REVIEW_QUEUE_COLLECTION).inputs
    assert index["collection"] == names.REVIEW_QUEUE_COLLECTION
    assert [(f["fieldPath"], f["order"]) for f in index["fields"]] == [
        ("open", "ASCENDING"), ("outcome", "ASCENDING"), ("decided_at", "DESCENDING")]
    ttl = console_stack.one("gcp:firestore/field:Field", collection=names.REVIEW_QUEUE_COLLECTION).inputs
    assert ttl["field"] == "expires_at" and "ttlConfig" in ttl
    assert console_stack.depends((SERVICE, "console"), ("gcp:firestore/index:Index", "review-queue-open-newest"))
    # The fields the index names are the ones the queue writes and queries.
    from txguard.console.items import ReviewItem

    assert {"open", "outcome", "decided_at", "expires_at"} <= set(ReviewItem.model_fields)
    source = (ROOT / "shared" / "txguard" / "console" / "queue_firestore.py").read_text()
    assert all(f'"{field}"' in source for field in ("open", "outcome", "decided_at"))


def test_the_console_reads_log_buckets_that_hold_only_what_its_pages_show(console_stack: StackRun) -> None:
    """Not roles/logging.viewer on the project: one sink copies the scoring function's drift_window lines
    into a bucket of their own, another the label function's final line per label into theirs, and the
    console may read those buckets' views alone."""
    from txguard.contract.logs import DRIFT_EVENT

    run = console_stack
    project = BASE_CONFIG["gcp:project"]
    member = f"serviceAccount:{run.outputs['service_accounts']['console']}"
    wanted = {
        "txguard-drift": [f'resource.labels.service_name="{names.SCORING_FUNCTION}"',
                          f'jsonPayload.event="{DRIFT_EVENT}"'],
        "txguard-labels": [f'resource.labels.service_name="{names.LABEL_FUNCTION}"', "jsonPayload.label_id:*",
                           "jsonPayload.status:*"],
    }
    buckets = {b.inputs["bucketId"]: b for b in run.of_type("gcp:logging/projectBucketConfig:ProjectBucketConfig")}
    assert set(buckets) == set(wanted)
    sinks = {s.inputs["destination"]: s.inputs for s in run.of_type("gcp:logging/projectSink:ProjectSink")}
    for bucket_id, terms in wanted.items():
        bucket = buckets[bucket_id].inputs
        sink = sinks[f"logging.googleapis.com/projects/{project}/locations/{bucket['location']}/buckets/{bucket_id}"]
        assert sink["filter"].split(" AND ") == ['resource.type="cloud_run_revision"', *terms]
    logging_grants = [r for r in run.resources if r.typ.startswith("gcp:logging/") and "iam" in r.typ.lower()]
    assert sorted((g.inputs["member"], g.inputs["role"], g.inputs["bucket"]) for g in logging_grants) == [
        (member, "roles/logging.viewAccessor", bucket_id) for bucket_id in sorted(wanted)]
    assert not [r for r in run.resources if "iam" in r.typ.lower() and r.inputs.get("role") == "roles/logging.viewer"]
