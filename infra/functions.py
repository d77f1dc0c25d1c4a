"""The three Cloud Run functions (gen2, `cloudfunctionsv2.Function`) and their environments.

All are plain HTTP services from the platform's point of view: scoring is an HTTP function;
enrichment and the label function are CloudEvent functions served over HTTP WITHOUT an Eventarc
trigger: Pub/Sub reaches each through its push subscription declared in messaging.py
(functions-framework turns the push body into a CloudEvent). Environment variable names are the aliases of shared/txguard/contract/settings.py, never retyped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
from pydantic_settings import BaseSettings

from infra.archive import Archive
from infra.config import FunctionConfig, StackConfig
from infra.services import child_options
from txguard.contract.settings import CounterpartySettings, EnrichSettings, LabelSettings, ScoringSettings

# functions-framework's gunicorn reads these two (not part of our settings classes).
WORKERS_ENV = "WORKERS"
THREADS_ENV = "THREADS"
# Read by nobody: changing it (config `modelRollout`) creates a new scoring revision, so every
# instance restarts. Not needed for a promote or rollback any more (instances follow the alias,
# MODEL_POLL_S); kept to force a restart, e.g. when following is turned off.
ROLLOUT_ENV = "TXGUARD_MODEL_ROLLOUT"


def env_key(settings: type[BaseSettings], field: str) -> str:
    """The environment variable a settings field is read from (its alias)."""
    alias = settings.model_fields[field].alias
    if alias is None:
        raise KeyError(f"{settings.__name__}.{field} has no alias")
    return alias


def _server_env(fn: FunctionConfig) -> dict[str, str]:
    return {WORKERS_ENV: str(fn.workers), THREADS_ENV: str(fn.threads)}


def scoring_environment(cfg: StackConfig) -> dict[str, pulumi.Input[str]]:
    return {
        env_key(ScoringSettings, "google_cloud_project"): cfg.project,
        env_key(ScoringSettings, "log_level"): cfg.log_level,
        env_key(ScoringSettings, "model_uri"): cfg.model_uri,
        env_key(ScoringSettings, "model_poll_s"): f"{cfg.lifecycle.model_poll_seconds:g}",
        env_key(ScoringSettings, "shadow_enabled"): str(cfg.lifecycle.shadow_enabled).lower(),
        env_key(ScoringSettings, "shadow_sample_rate"): f"{cfg.lifecycle.shadow_sample_rate:g}",
        env_key(ScoringSettings, "drift_window_s"): f"{cfg.lifecycle.drift_window_seconds:g}",
        **_server_env(cfg.scoring),
        **({ROLLOUT_ENV: cfg.model_rollout} if cfg.model_rollout else {}),
    }


def counterparty_environment(cfg: StackConfig) -> dict[str, str]:
    """Where both functions find the counterparty aggregates: the Bigtable table infra/counterparty.py declares."""
    store = cfg.counterparty
    return {
        env_key(CounterpartySettings, "counterparty_store"): "bigtable",
        env_key(CounterpartySettings, "bigtable_instance"): store.instance,
        env_key(CounterpartySettings, "counterparty_table"): store.table,
        env_key(CounterpartySettings, "counterparty_shards"): str(store.shards),
        env_key(CounterpartySettings, "transaction_index_table"): store.index_table,
    }


def enrich_environment(cfg: StackConfig, scoring_url: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    return {
        env_key(EnrichSettings, "google_cloud_project"): cfg.project,
        env_key(EnrichSettings, "log_level"): cfg.log_level,
        env_key(EnrichSettings, "scoring_url"): scoring_url,
        env_key(EnrichSettings, "scoring_auth"): "id_token",
        env_key(EnrichSettings, "history_store"): "firestore",
        env_key(EnrichSettings, "firestore_database"): cfg.firestore_database,
        env_key(EnrichSettings, "processed_ttl_days"): str(cfg.processed_ttl_days),
        env_key(EnrichSettings, "decisions_topic"): EnrichSettings.model_fields["decisions_topic"].default,
        env_key(EnrichSettings, "invalid_topic"): EnrichSettings.model_fields["invalid_topic"].default,
        **counterparty_environment(cfg),
        **_server_env(cfg.enrich),
    }


def label_environment(cfg: StackConfig) -> dict[str, pulumi.Input[str]]:
    trust = cfg.label_trust
    return {
        env_key(LabelSettings, "google_cloud_project"): cfg.project,
        env_key(LabelSettings, "log_level"): cfg.log_level,
        env_key(LabelSettings, "invalid_topic"): LabelSettings.model_fields["invalid_topic"].default,
        env_key(LabelSettings, "unknown_retry_s"): f"{trust.unknown_retry_seconds:g}",
        env_key(LabelSettings, "limit_window_s"): str(trust.limit_window_seconds),
        env_key(LabelSettings, "analyst_source_limit"): str(trust.analyst_source_limit),
        env_key(LabelSettings, "feed_source_limit"): str(trust.feed_source_limit),
        env_key(LabelSettings, "counterparty_fraud_limit"): str(trust.counterparty_fraud_limit),
        **counterparty_environment(cfg),
        **_server_env(cfg.label),
    }


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # the function (and Cloud Run service) name, from shared/txguard/contract/names.py
    entry_point: str
    archive: Archive
    capacity: FunctionConfig
    service_account_email: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    description: str
    # "http" or "cloudevent": set at build time (GOOGLE_FUNCTION_SIGNATURE_TYPE) so the platform
    # serves the function with the right signature even without an Eventarc trigger.
    signature_type: str = "http"


class CloudFunction(pulumi.ComponentResource):
    """One function: its content-hashed source object and the gen2 function built from it."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        spec: FunctionSpec,
        sources_bucket: gcp.storage.Bucket,
        images_repository: gcp.artifactregistry.Repository,
        build_service_account: gcp.serviceaccount.Account | None,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("txguard:infra:CloudFunction", name, None, opts)
        child = child_options(self, depends_on)
        # A new object name per content hash: the function's source changes (and it redeploys)
        # exactly when the archive's content does.
        self.source = gcp.storage.BucketObject(
            f"{name}-source",
            name=spec.archive.object_name,
            bucket=sources_bucket.name,
            source=pulumi.FileAsset(str(spec.archive.path)),
            content_type="application/zip",
            opts=child,
        )
        fn = spec.capacity
        self.function = gcp.cloudfunctionsv2.Function(
            name,
            name=spec.name,
            project=cfg.project,
            location=cfg.region,
            description=spec.description,
            labels=cfg.labels,
            build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(
                runtime=cfg.python_runtime,
                entry_point=spec.entry_point,
                environment_variables={"GOOGLE_FUNCTION_SIGNATURE_TYPE": spec.signature_type},
                source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceArgs(
                    storage_source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceStorageSourceArgs(
                        bucket=sources_bucket.name, object=self.source.name),
                ),
                docker_repository=images_repository.id,
                service_account=build_service_account.id if build_service_account is not None else None,
            ),
            service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
                max_instance_request_concurrency=fn.concurrency,
                min_instance_count=fn.min_instances,
                max_instance_count=fn.max_instances,
                available_cpu=fn.cpu,
                available_memory=fn.memory,
                timeout_seconds=fn.timeout_seconds,
                ingress_settings=fn.ingress,
                all_traffic_on_latest_revision=True,
                service_account_email=spec.service_account_email,
                environment_variables=dict(spec.environment),
            ),
            # No event_trigger: see the module docstring.
            opts=child,
        )
        # The Cloud Run service URL (https://<name>-<project number>.<region>.run.app), not the
        # cloudfunctions.net alias: Pub/Sub push and ID tokens address Cloud Run, and Cloud Run
        # checks a token's audience against this URL and treats same-project Pub/Sub pushes to
        # it as internal traffic (enrichment's ingress is internal-only).
        self.url: pulumi.Output[str] = self.function.service_config.apply(lambda sc: sc.uri if sc else None)
        self.service_name: pulumi.Output[str] = self.function.name
        self.register_outputs({"url": self.url, "name": self.function.name, "function_url": self.function.url})
