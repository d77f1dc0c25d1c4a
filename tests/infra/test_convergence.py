"""A first `pulumi up` on an empty project converges: what each resource waits for, and filters
written in the grammar the receiving API parses.

The mock monitor records every registration's dependencies (tests/infra/pulumi_mocks.py), which
is the order the engine creates things in. Each edge below stands for a failure seen or
documented on a first deploy when it is missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pulumi_mocks import BASE_CONFIG, IAP_AGENT, PUBSUB_AGENT, SOURCE_IMAGE, StackRun, run_program

from infra.iam import IAM_SETTLE
from infra.monitoring import LOG_METRIC_SETTLE, USER_METRIC, one_of
from txguard.contract import names

FUNCTION = "gcp:cloudfunctionsv2/function:Function"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
SLEEP = "time:index/sleep:Sleep"
METRIC = "gcp:logging/metric:Metric"
SERVICE = "gcp:projects/service:Service"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
PROJECT_GRANT = "gcp:projects/iAMMember:IAMMember"
TOPIC_GRANT = "gcp:pubsub/topicIAMMember:TopicIAMMember"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
SA_GRANT = "gcp:serviceaccount/iAMMember:IAMMember"
REPO_GRANT = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
TABLE_GRANT = "gcp:bigtable/tableIamMember:TableIamMember"
IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
CONSOLE = "gcp:cloudrunv2/service:Service"


def test_scoring_starts_only_once_it_may_read_the_models_bucket(default_stack: StackRun) -> None:
    # It loads the model once, at cold start: a 403 then leaves it without a model until restarted.
    assert default_stack.depends((FUNCTION, "scoring"), (BUCKET_GRANT, "score-models-viewer"))


def waits_after(run: StackRun, user: tuple[str, str], grants: list[tuple[str, str]]) -> str:
    """The name of the Sleep between `grants` and `user`: user -> Sleep (directly) -> every grant (directly),
    of IAM_SETTLE, triggered by the grants' ids. Fails if there is none."""
    sleeps = [u for u in run.waits_for(*user) if f"{SLEEP}::" in u and u.split("::")[-1] != "log-metrics-settled"]
    for urn in sleeps:
        name = urn.split("::")[-1]
        if all(run.urn(*g) in run.dependencies[urn] for g in grants):
            sleep = next(s for s in run.of_type(SLEEP) if s.name == name)
            assert sleep.inputs["createDuration"] == IAM_SETTLE == "60s"
            assert "grants" in sleep.inputs["triggers"]
            return name
    raise AssertionError(f"{user} does not wait after {grants} (its sleeps: {sleeps})")


def test_every_build_and_push_subscription_waits_for_its_grants_to_settle(console_stack: StackRun) -> None:
    """grant -> wait -> user: IAM is eventually consistent, so a build started the second its grants
    return can fail (the provider's own Cloud Functions v2 example waits 60 s for the builder's roles)."""
    run = console_stack
    build_grants = [(PROJECT_GRANT, "build-log-writer"), (REPO_GRANT, "build-images-writer"),
                    (BUCKET_GRANT, "build-sources-viewer"), (PROJECT_GRANT, "build-staged-sources-admin")]
    builds = [(FUNCTION, "scoring"), (FUNCTION, "enrich"), (FUNCTION, "label"), (SOURCE_IMAGE, "console-image")]
    assert {waits_after(run, build, build_grants) for build in builds} == {"build-grants-settle"}
    runtime = {
        (FUNCTION, "scoring"): [(BUCKET_GRANT, "score-models-viewer")],
        (FUNCTION, "enrich"): [(PROJECT_GRANT, "enrich-datastore-user"), (TOPIC_GRANT, "enrich-decisions-publisher"),
                               (TOPIC_GRANT, "enrich-invalid-publisher"), (RUN_INVOKER, "enrich-invokes-score"),
                               (TABLE_GRANT, "enrich-counterparty-user"),
                               (TABLE_GRANT, "enrich-transaction-index-user")],
        (FUNCTION, "label"): [(TABLE_GRANT, "label-counterparty-user"), (TOPIC_GRANT, "label-invalid-publisher"),
                              (TABLE_GRANT, "label-transaction-index-reader")],
        (SUBSCRIPTION, names.ENRICH_PUSH_SUBSCRIPTION): [(RUN_INVOKER, "push-invokes-enrich"),
                                                         (SA_GRANT, "pubsub-agent-push-token-creator")],
        (SUBSCRIPTION, names.LABELS_PUSH_SUBSCRIPTION): [(RUN_INVOKER, "push-invokes-label"),
                                                         (SA_GRANT, "pubsub-agent-push-token-creator")],
        (CONSOLE, "console"): [("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember", f"console-{sub}-subscriber")
                               for sub in names.CONSOLE_SUBSCRIPTIONS]
        + [(TOPIC_GRANT, "console-analyst-labels-publisher"), (PROJECT_GRANT, "console-datastore-user"),
           (TABLE_GRANT, "console-counterparty-reader"), (RUN_INVOKER, "console-invokes-score"),
           (BUCKET_GRANT, "console-models-viewer"), (BUCKET_GRANT, "console-aliases-writer"),
           ("gcp:logging/logViewIamMember:LogViewIamMember", "console-drift-view-accessor"),
           ("gcp:logging/logViewIamMember:LogViewIamMember", "console-label-view-accessor")],
    }
    names_of_waits = {user: waits_after(run, user, grants) for user, grants in runtime.items()}
    assert len(set(names_of_waits.values())) == len(runtime)  # one wait per user: none waits for another's
    # Every grant the program declares for a user's identity is in its wait (none forgotten).
    for user, grants in runtime.items():
        sleep_urn = run.urn(SLEEP, names_of_waits[user])
        granted = {u for u in run.dependencies[sleep_urn] if "iammember" in u.split("::")[-2].lower()}
        assert granted == {run.urn(*g) for g in grants}, user


def test_service_agents_exist_before_any_grant_names_them(console_stack: StackRun) -> None:
    """A fresh project has no Pub/Sub or IAP service agent until one is asked for: each is declared
    (ServiceIdentity) and every grant naming it waits for it."""
    run = console_stack
    agents = {a.inputs["service"]: a for a in run.of_type(IDENTITY)}
    assert set(agents) == {"pubsub.googleapis.com", "iap.googleapis.com"}
    for service, member in (("pubsub.googleapis.com", PUBSUB_AGENT), ("iap.googleapis.com", IAP_AGENT)):
        agent = (IDENTITY, agents[service].name)
        naming = [r for r in run.resources if "iam" in r.typ.lower() and r.inputs.get("member") == member]
        assert naming, service
        for grant in naming:
            assert run.depends((grant.typ, grant.name), agent), grant.name
        assert run.depends(agent, (SERVICE, service.split(".")[0]))  # its API first


def test_enrichment_starts_only_once_its_store_topics_and_scoring_grants_exist(default_stack: StackRun) -> None:
    for grant in ((PROJECT_GRANT, "enrich-datastore-user"), (TOPIC_GRANT, "enrich-decisions-publisher"),
                  (TOPIC_GRANT, "enrich-invalid-publisher"), (RUN_INVOKER, "enrich-invokes-score")):
        assert default_stack.depends((FUNCTION, "enrich"), grant), grant


def test_push_subscription_waits_for_the_function_and_both_push_grants(default_stack: StackRun) -> None:
    # Pub/Sub pushes as soon as the subscription exists: without the invoker grant and the agent's
    # right to mint the push identity's OIDC token, each attempt fails and counts toward dead-lettering.
    push = (SUBSCRIPTION, names.ENRICH_PUSH_SUBSCRIPTION)
    assert default_stack.depends(push, (RUN_INVOKER, "push-invokes-enrich"))
    assert default_stack.depends(push, (SA_GRANT, "pubsub-agent-push-token-creator"))
    assert default_stack.depends(push, (FUNCTION, "enrich"))
    # Pull subscriptions do not wait for any of it.
    assert not default_stack.depends((SUBSCRIPTION, names.DECISIONS_SUBSCRIPTION), (FUNCTION, "enrich"))


def test_builds_wait_for_the_build_identity_grants(default_stack: StackRun, tmp_path: Path) -> None:
    build_grants = [(PROJECT_GRANT, "build-log-writer"), (REPO_GRANT, "build-images-writer"),
                    (BUCKET_GRANT, "build-sources-viewer"), (PROJECT_GRANT, "build-staged-sources-admin")]
    for fn in ("scoring", "enrich"):
        for grant in build_grants:
            assert default_stack.depends((FUNCTION, fn), grant), (fn, grant)
    # With the project's default build identity there is nothing to wait for, and nothing declared.
    default_builder = run_program({**BASE_CONFIG, "txguard:buildServiceAccount": "false"}, tmp_path)
    assert not [u for u in default_builder.urns if "::build-" in u]


def test_models_bucket_waits_for_the_storage_api_only(default_stack: StackRun) -> None:
    """So docs/deploy.md can create it alone (--target) and publish a model before the functions."""
    waits = default_stack.waits_for("gcp:storage/bucket:Bucket", "models")
    assert waits == {default_stack.urn(SERVICE, "storage")}
    repository = default_stack.waits_for("gcp:artifactregistry/repository:Repository", "function-images")
    assert repository == {default_stack.urn(SERVICE, "artifactregistry")}


def test_alerts_on_log_based_metrics_wait_for_the_metrics_to_settle(default_stack: StackRun) -> None:
    (sleep,) = [s for s in default_stack.of_type(SLEEP) if s.name == "log-metrics-settled"]
    assert sleep.inputs["createDuration"] == LOG_METRIC_SETTLE == "10m"
    metrics = {m.name for m in default_stack.of_type(METRIC)}
    assert metrics and all(default_stack.depends((SLEEP, sleep.name), (METRIC, m)) for m in metrics)
    assert set(sleep.inputs["triggers"]) == metrics  # a replaced metric waits again
    waiting = set()
    for alert in default_stack.of_type(ALERT):
        filters = " ".join(c["conditionThreshold"]["filter"] for c in alert.inputs["conditions"])
        on_user_metric = USER_METRIC in filters
        assert default_stack.depends((ALERT, alert.name), (SLEEP, sleep.name)) == on_user_metric, alert.name
        waiting |= {alert.name} if on_user_metric else set()
    assert waiting == {"transaction-shares", "model-drift", "label-volume"}  # log-based metrics; the others are built in


# -- Monitoring filter grammar -----------------------------------------------------------------------

_VALUE = r'"[^"]*"'
_TERM = re.compile(
    rf"^(metric|resource)\.(type|labels?\.[a-z_]+)\s*(=|!=)\s*({_VALUE}|one_of\({_VALUE}(,\s*{_VALUE})*\))$")


def monitoring_filter_errors(text: str) -> list[str]:
    """Terms of a Monitoring filter outside the grammar this program uses (AND of comparisons)."""
    return [term for term in text.split(" AND ") if not _TERM.match(term.strip())]


def test_the_grammar_check_tells_monitoring_from_logging_syntax() -> None:
    assert monitoring_filter_errors(f'metric.type="x" AND resource.label.service_name={one_of("a", "b")}') == []
    logging_style = 'resource.label.service_name=("a" OR "b")'
    assert monitoring_filter_errors(f'metric.type="x" AND {logging_style}') == [logging_style]
    assert one_of("a", "b") == 'one_of("a","b")'


def _dashboard_filters(run: StackRun) -> list[str]:
    board = json.loads(run.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    return [tile["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
            for tile in board["mosaicLayout"]["tiles"]]


def test_dashboard_and_alert_filters_are_monitoring_filters(default_stack: StackRun) -> None:
    filters = _dashboard_filters(default_stack)
    for alert in default_stack.of_type(ALERT):
        for condition in alert.inputs["conditions"]:
            threshold = condition["conditionThreshold"]
            filters += [threshold["filter"], *([threshold["denominatorFilter"]] if "denominatorFilter" in threshold
                                               else [])]
    assert len(filters) > 10
    assert {f: monitoring_filter_errors(f) for f in filters if monitoring_filter_errors(f)} == {}
    instances = next(f for f in _dashboard_filters(default_stack) if "instance_count" in f)
    assert (f'resource.label.service_name=one_of("{names.SCORING_FUNCTION}","{names.ENRICH_FUNCTION}",'
            f'"{names.LABEL_FUNCTION}")') in instances


def test_documented_first_deploy_targets_are_closed_under_dependencies(default_stack: StackRun) -> None:
    """`pulumi up --target A --target B` is refused if A or B waits for something not targeted."""
    from test_docs import glob_to_regex, target_patterns

    targeted = {u for p in target_patterns() for u in default_stack.urns if glob_to_regex(p).match(u)}
    assert len(targeted) == 4
    for urn in targeted:
        outside = default_stack.dependencies[urn] - targeted
        assert outside == set(), f"{urn} also waits for {sorted(outside)}"
