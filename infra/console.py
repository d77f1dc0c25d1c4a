"""The analyst console: its own Cloud Run service behind Identity-Aware Proxy, its own identity.

Deployed from this commit's source (docs/infra.md, "The console's deployment path"): the
content-hashed `console-*.zip` archive (functions-framework, `function_target = console`) is built
by Cloud Build during `pulumi up` (infra/image_build.py) and the `cloudrunv2.Service` runs the
pushed image by digest. A Cloud Run service rather than a Cloud Run function because the console
needs one instance with CPU always allocated (its subscription readers and live counters run
between requests; functions are billed per request only and throttle CPU outside requests), and
IAP directly on the service. Who gets in:

- members of `analystsGroup` pass IAP (`roles/iap.httpsResourceAccessor` on this service only);
- only IAP's service agent may invoke the service (`roles/run.invoker`); nobody else, never
  allUsers or allAuthenticatedUsers: a request that does not come through IAP is refused by Cloud
  Run, and the app refuses any request without a valid IAP assertion for its audience. The agent
  is created here (`gcp.projects.ServiceIdentity`): a fresh project has none until asked.

What its identity may do (least privilege): pull its three subscriptions, publish its verdicts to
`labels-analyst` (and only it may: the label function believes analyst labels from that topic only),
use the stack's Firestore database (review queue; read the history: an IAM condition on the
database, Firestore has no per-collection IAM), read the counterparty table
(`roles/bigtable.reader` bound on the table, like the functions' bindings: manual scoring reads
the aggregates the enrichment scores with), invoke the scoring service (manual scoring), read the
model registry and write its aliases only, and read two kinds of log line: the scoring function's
drift windows (models page) and the label function's final status per label (a review item says
what its verdict changed). For each, a sink copies exactly those lines into a log bucket of their
own, and the console may read that bucket's one view (`roles/logging.viewAccessor`), not the
project's logs.
One instance, CPU always allocated: its subscription readers and live counters run between requests.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.archive import Archive
from infra.config import StackConfig
from infra.functions import THREADS_ENV, WORKERS_ENV, counterparty_environment, env_key
from infra.iam import agent_member, database_condition, service_agent, settled
from infra.image_build import SourceImage, python_version
from infra.services import child_options
from txguard.contract import names
from txguard.contract.logs import DRIFT_EVENT, EVENT_KEY
from txguard.contract.settings import ConsoleSettings

CPU, MEMORY, CONCURRENCY = "1", "1Gi", 20  # a handful of analysts; SSE streams hold one thread each
SSE_TIMEOUT_S = 310  # a live-view stream lasts 300 s (txguard.console.app.SSE_MAX_S), then reconnects
DRIFT_LOGS_DAYS = 30  # the models page reads two days back (txguard.console.drift.LOOKBACK)
LABEL_LOGS_DAYS = 30  # a review item shows its verdict's outcome; Cloud Logging answers the last day by default
# The review queue's listing (txguard.console.queue_firestore.open_items): open == true, outcome in
# [...], newest decision first. Firestore serves it only with this composite index.
QUEUE_INDEX = (("open", "ASCENDING"), ("outcome", "ASCENDING"), ("decided_at", "DESCENDING"))
QUEUE_TTL_FIELD = "expires_at"  # txguard.console.items.ReviewItem.expires_at (labelled items kept 90 days)


def drift_logs(cfg: StackConfig) -> tuple[str, str, str]:
    """(log bucket id, view id, the view's resource name) of the drift windows the console reads."""
    bucket, view = f"{cfg.prefix}-drift", "drift-windows"
    return bucket, view, f"projects/{cfg.project}/locations/global/buckets/{bucket}/views/{view}"


def label_logs(cfg: StackConfig) -> tuple[str, str, str]:
    """(log bucket id, view id, the view's resource name) of the label function's outcome lines."""
    bucket, view = f"{cfg.prefix}-labels", "label-outcomes"
    return bucket, view, f"projects/{cfg.project}/locations/global/buckets/{bucket}/views/{view}"


def label_filter() -> str:
    """The label function's one line per delivery (a label id and its status): what the review item page
    reads back after a verdict (txguard.console.label_outcomes keeps the final ones), and all the sink
    copies."""
    return (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{names.LABEL_FUNCTION}" '
            "AND jsonPayload.label_id:* AND jsonPayload.status:*")


def drift_filter() -> str:
    """The scoring function's `drift_window` lines: what the sink copies, and all it copies."""
    return (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{names.SCORING_FUNCTION}" '
            f'AND jsonPayload.{EVENT_KEY}="{DRIFT_EVENT}"')


def registry_location(model_uri: str) -> tuple[str, str]:
    """`gs://bucket/prefix@alias` -> ("bucket", "prefix")."""
    location = model_uri.rpartition("@")[0] or model_uri
    bucket, _, prefix = location.removeprefix("gs://").partition("/")
    return bucket, prefix.strip("/")


LIVE_STREAMS = 8  # live-view streams at once, of CONCURRENCY threads: the rest of the pages keep 12


def trusted_hosts(cfg: StackConfig, project_number: pulumi.Input[str]) -> pulumi.Output[str]:
    """The host names the console answers to: its deterministic run.app URL's, the `*.a.run.app` family of
    its other URL (its hash is known only once the service exists; run.app names resolve through Google's
    DNS only, so no page can rebind one to another address) and `consoleHosts` (a custom domain)."""
    return pulumi.Output.from_input(project_number).apply(lambda n: ",".join(
        [f"{names.CONSOLE_SERVICE}-{n}.{cfg.region}.run.app", ".a.run.app", *cfg.console_hosts]))


def console_environment(cfg: StackConfig, scoring_url: pulumi.Input[str], audience: pulumi.Input[str],
                        hosts: pulumi.Input[str] = "") -> dict[str, pulumi.Input[str]]:
    bucket, prefix = registry_location(cfg.model_uri)
    return {
        env_key(ConsoleSettings, "google_cloud_project"): cfg.project,
        env_key(ConsoleSettings, "log_level"): cfg.log_level,
        env_key(ConsoleSettings, "history_store"): "firestore",
        env_key(ConsoleSettings, "firestore_database"): cfg.firestore_database,
        env_key(ConsoleSettings, "scoring_url"): scoring_url,
        env_key(ConsoleSettings, "scoring_auth"): "id_token",
        env_key(ConsoleSettings, "registry"): f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}",
        env_key(ConsoleSettings, "iap_audience"): audience,
        env_key(ConsoleSettings, "drift_source"): f"cloud-logging:{drift_logs(cfg)[2]}",
        env_key(ConsoleSettings, "label_source"): f"cloud-logging:{label_logs(cfg)[2]}",
        env_key(ConsoleSettings, "drift_psi_threshold"): str(cfg.lifecycle.drift_psi_threshold),
        env_key(ConsoleSettings, "approvers"): ",".join(cfg.production_approvers),
        env_key(ConsoleSettings, "trusted_hosts"): hosts,
        env_key(ConsoleSettings, "live_streams"): str(LIVE_STREAMS),
        # The enrichment's counterparty store settings (ConsoleSettings reads the same aliases).
        **counterparty_environment(cfg),
        WORKERS_ENV: "1",  # one process: the live counters and subscription readers live in it
        THREADS_ENV: str(CONCURRENCY),
    }


class AnalystConsole(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        archive: Archive,
        sources_bucket: gcp.storage.Bucket,
        images_repository: gcp.artifactregistry.Repository,
        build_service_account: gcp.serviceaccount.Account | None,
        scoring_service: pulumi.Output[str],
        scoring_url: pulumi.Input[str],
        topics: dict[str, gcp.pubsub.Topic],
        subscriptions: dict[str, gcp.pubsub.Subscription],
        models_bucket: gcp.storage.Bucket,
        database: gcp.firestore.Database,
        counterparty_table: gcp.bigtable.Table,
        project_number: pulumi.Input[str],
        builds_ready: Sequence[pulumi.Resource] = (),
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`builds_ready`: what a build waits for (the build identity's grants, settled); `depends_on`:
        what everything here waits for (the APIs)."""
        super().__init__("txguard:infra:AnalystConsole", name, None, opts)
        child = child_options(self, depends_on)
        own = pulumi.ResourceOptions(parent=self)
        project, region = cfg.project, cfg.region
        self.account = gcp.serviceaccount.Account(
            "console-sa", account_id=f"{cfg.prefix}-console", display_name="txguard console",
            description="Runtime identity of the analyst console", project=project, opts=child)
        self.drift_view = self._log_view(
            cfg, child, "drift-logs", "drift-windows", drift_logs(cfg), drift_filter(), DRIFT_LOGS_DAYS,
            "The scoring function's drift windows (console models page)",
            "Copies the scoring function's drift_window lines into their own log bucket")
        self.label_view = self._log_view(
            cfg, child, "label-logs", "label-outcomes", label_logs(cfg), label_filter(), LABEL_LOGS_DAYS,
            "The label function's final line per label (console review items: what a verdict changed)",
            "Copies the label function's final status lines into their own log bucket")
        grants = self._runtime_grants(cfg, scoring_service, topics, subscriptions, models_bucket, counterparty_table)
        self.queue_index = gcp.firestore.Index(
            "review-queue-open-newest", project=project, database=database.name,
            collection=names.REVIEW_QUEUE_COLLECTION, query_scope="COLLECTION",
            fields=[gcp.firestore.IndexFieldArgs(field_path=f, order=o) for f, o in QUEUE_INDEX], opts=own)
        if cfg.ttl_policy:
            gcp.firestore.Field(
                "review-queue-ttl", project=project, database=database.name,
                collection=names.REVIEW_QUEUE_COLLECTION, field=QUEUE_TTL_FIELD,
                ttl_config=gcp.firestore.FieldTtlConfigArgs(), opts=own)
        self.source = gcp.storage.BucketObject(
            f"{name}-source", name=archive.object_name, bucket=sources_bucket.name,
            source=pulumi.FileAsset(str(archive.path)), content_type="application/zip", opts=child)
        # The build of this commit's console: Cloud Build, waited for; the service runs its digest.
        self.image = SourceImage(
            f"{name}-image",
            {
                "project": project, "location": region, "bucket": sources_bucket.name, "object": self.source.name,
                "image": images_repository.repository_id.apply(
                    lambda repo: f"{region}-docker.pkg.dev/{project}/{repo}/{names.CONSOLE_SERVICE}"),
                "tag": archive.sha256[:16],
                "function_target": names.CONSOLE_ENTRY_POINT,
                "python_version": python_version(cfg.python_runtime),
                "service_account": build_service_account.id if build_service_account is not None else "",
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *builds_ready, self.source]))
        audience = pulumi.Output.from_input(project_number).apply(
            lambda n: f"/projects/{n}/locations/{region}/services/{names.CONSOLE_SERVICE}")
        envs = console_environment(cfg, scoring_url, audience, trusted_hosts(cfg, project_number))
        # Its readers start with the instance: the grants they use exist and have settled first.
        grants_ready = settled("console-grants-settle", grants, self)
        self.service = gcp.cloudrunv2.Service(
            name,
            name=names.CONSOLE_SERVICE,
            project=project,
            location=region,
            description="txguard analyst console (review queue, live view, manual scoring, models)",
            labels=cfg.labels,
            ingress="INGRESS_TRAFFIC_ALL",  # reachable from browsers, but only through IAP (below)
            iap_enabled=True,
            invoker_iam_disabled=False,
            launch_stage="BETA",
            deletion_protection=False,
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=self.account.email,
                max_instance_request_concurrency=CONCURRENCY,
                timeout=f"{SSE_TIMEOUT_S}s",
                scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(min_instance_count=1, max_instance_count=1),
                containers=[gcp.cloudrunv2.ServiceTemplateContainerArgs(
                    image=self.image.image_ref,
                    envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in envs.items()],
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        limits={"cpu": CPU, "memory": MEMORY}, cpu_idle=False),
                    startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                        http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(path="/healthz"),
                        period_seconds=5, failure_threshold=12),
                )],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *grants_ready, self.queue_index]),
        )
        service = self.service.name

        # Who may reach it: the analysts group through IAP, and IAP itself as the only invoker.
        self.iap_agent = service_agent("iap-agent", cfg, "iap.googleapis.com", child)
        gcp.iap.WebCloudRunServiceIamMember(
            "console-analysts-iap", project=project, location=region, cloud_run_service_name=service,
            role="roles/iap.httpsResourceAccessor", member=f"group:{cfg.analysts_group}", opts=own)
        gcp.cloudrunv2.ServiceIamMember(
            "console-iap-invoker", project=project, location=region, name=service, role="roles/run.invoker",
            member=agent_member(self.iap_agent), opts=pulumi.ResourceOptions(parent=self, depends_on=[self.iap_agent]))
        self.url: pulumi.Output[str] = self.service.uri
        self.register_outputs({"url": self.url, "service_account": self.account.email,
                               "image": self.image.image_ref})

    def _log_view(self, cfg: StackConfig, child: pulumi.ResourceOptions, resource: str, view_resource: str,
                  ids: tuple[str, str, str], log_filter: str, retention_days: int, description: str,
                  sink_description: str) -> gcp.logging.LogView:
        """A log bucket that receives only the lines `log_filter` selects, and its one view."""
        bucket_id, view_id, _ = ids
        bucket = gcp.logging.ProjectBucketConfig(
            resource, project=cfg.project, location="global", bucket_id=bucket_id,
            retention_days=retention_days, description=description, opts=child)
        # A sink into a log bucket of the same project needs no grant to its writer identity.
        gcp.logging.ProjectSink(
            resource, name=f"{cfg.prefix}-{view_id}", project=cfg.project, filter=log_filter,
            destination=pulumi.Output.concat("logging.googleapis.com/", bucket.id),
            description=sink_description, opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket]))
        return gcp.logging.LogView(
            view_resource, name=view_id, bucket=bucket.id, description=f"Everything in the {bucket_id} log bucket",
            opts=pulumi.ResourceOptions(parent=self))

    def _runtime_grants(self, cfg: StackConfig, scoring_service: pulumi.Output[str],
                        topics: dict[str, gcp.pubsub.Topic], subscriptions: dict[str, gcp.pubsub.Subscription],
                        models_bucket: gcp.storage.Bucket,
                        counterparty_table: gcp.bigtable.Table) -> list[pulumi.Resource]:
        """What its identity may do, and nothing more."""
        own = pulumi.ResourceOptions(parent=self)
        project = cfg.project
        member = self.account.email.apply(lambda e: f"serviceAccount:{e}")
        grants: list[pulumi.Resource] = [
            gcp.pubsub.SubscriptionIAMMember(
                f"console-{sub}-subscriber", project=project, subscription=subscriptions[sub].name,
                role="roles/pubsub.subscriber", member=member, opts=own)
            for sub in names.CONSOLE_SUBSCRIPTIONS
        ]
        # Its verdicts' own topic: the label function believes analyst labels only from there.
        grants.append(gcp.pubsub.TopicIAMMember(
            "console-analyst-labels-publisher", project=project, topic=topics[names.ANALYST_LABELS_TOPIC].name,
            role="roles/pubsub.publisher", member=member, opts=own))
        grants.append(gcp.projects.IAMMember(
            "console-datastore-user", project=project, role="roles/datastore.user", member=member,
            condition=gcp.projects.IAMMemberConditionArgs(**database_condition(cfg)), opts=own))
        # Manual scoring's counterparty aggregates: read only, this table only.
        grants.append(gcp.bigtable.TableIamMember(
            "console-counterparty-reader", project=project, instance_name=counterparty_table.instance_name,
            table=counterparty_table.name, role="roles/bigtable.reader", member=member, opts=own))
        # The scoring function's drift windows (models page): the drift log bucket's view, no other log.
        # And the label function's final lines (review items): the label log bucket's view, likewise.
        for grant, view in (("console-drift-view-accessor", self.drift_view),
                            ("console-label-view-accessor", self.label_view)):
            grants.append(gcp.logging.LogViewIamMember(
                # The view's own fields, as the provider's LogViewIamMember example passes them.
                grant, parent=view.parent, location=view.location, bucket=view.bucket,
                name=view.name, role="roles/logging.viewAccessor", member=member, opts=own))
        grants.append(gcp.cloudrunv2.ServiceIamMember(
            "console-invokes-score", project=project, location=cfg.region, name=scoring_service,
            role="roles/run.invoker", member=member, opts=own))
        grants.append(gcp.storage.BucketIAMMember(
            "console-models-viewer", bucket=models_bucket.name, role="roles/storage.objectViewer", member=member,
            opts=own))
        bucket, prefix = registry_location(cfg.model_uri)
        if bucket != cfg.models_bucket:
            pulumi.log.warn(f"modelUri is in bucket {bucket}, not {cfg.models_bucket}: grant the console "
                            "read access there and write access to its aliases/ yourself")
        aliases = f"{prefix}/aliases/" if prefix else "aliases/"
        grants.append(gcp.storage.BucketIAMMember(
            "console-aliases-writer", bucket=models_bucket.name, role="roles/storage.objectUser", member=member,
            condition=gcp.storage.BucketIAMMemberConditionArgs(
                title="registry-aliases-only",
                description="Promote and roll back: write the alias objects, nothing else of the registry",
                expression=f'resource.name.startsWith("projects/_/buckets/{cfg.models_bucket}/objects/{aliases}")',
            ),
            opts=own))
        return grants
