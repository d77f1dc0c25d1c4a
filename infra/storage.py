"""Cloud Storage: the model registry bucket and the function sources bucket (+ the build images repo)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.services import ProjectServices, child_options


class Storage(pulumi.ComponentResource):
    """Private buckets only: uniform bucket-level access and public access prevention enforced.

    The models bucket is versioned so an overwritten or deleted registry object can be recovered;
    noncurrent versions are deleted after `modelVersionsRetentionDays`.
    """

    def __init__(self, name: str, cfg: StackConfig, apis: ProjectServices,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:Storage", name, None, opts)
        # Each resource waits for its own API only, so the models bucket can be created alone
        # before the first deploy (docs/deploy.md, "Publish the first model").
        child = child_options(self, apis.only("storage.googleapis.com"))
        repository_child = child_options(self, apis.only("artifactregistry.googleapis.com"))
        self.models = gcp.storage.Bucket(
            "models",
            name=cfg.models_bucket,
            project=cfg.project,
            location=cfg.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=[
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        days_since_noncurrent_time=cfg.model_versions_retention_days,
                        with_state="ARCHIVED",
                    ),
                )
            ],
            force_destroy=cfg.force_destroy,
            labels=cfg.labels,
            opts=child,
        )
        self.sources = gcp.storage.Bucket(
            "sources",
            name=cfg.sources_bucket,
            project=cfg.project,
            location=cfg.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=cfg.force_destroy,
            labels=cfg.labels,
            opts=child,
        )
        # Our own image repository for the function builds, so the build service account can be
        # granted writer on this repository only (instead of the project-wide gcf-artifacts one).
        self.images = gcp.artifactregistry.Repository(
            "function-images",
            repository_id=f"{cfg.prefix}-functions",
            project=cfg.project,
            location=cfg.region,
            format="DOCKER",
            description="Images built from the txguard function sources",
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="ANY", older_than="2592000s"
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=10
                    ),
                ),
            ],
            labels=cfg.labels,
            opts=repository_child,
        )
        self.register_outputs({"models_bucket": self.models.name, "sources_bucket": self.sources.name})
