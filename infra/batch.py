"""What a Dataflow run of `txguard batch run` needs: a worker identity with least privilege and a
bucket for inputs, outputs, staging and temp files (docs/batch.md walks through a run).

| identity             | may do                                                               |
|----------------------|----------------------------------------------------------------------|
| batch worker         | run as a Dataflow worker (roles/dataflow.worker: the one project     |
|                      | role Dataflow requires); objects of the batch bucket (read inputs,   |
|                      | write outputs, staging and temp files); read the model registry      |
| launchers (config)   | create Dataflow jobs (roles/dataflow.developer), run them as the     |
|                      | batch worker (serviceAccountUser on that account only), stage files  |

The bucket is private (uniform access, public access prevention). `staging/` and `temp/` hold
what Dataflow uploads and the half-written shards of a run: they are deleted after
`batchTempRetentionDays`; `inputs/` and `outputs/` are kept. No grant is project-wide editor.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.iam import sa_member
from infra.services import child_options

STAGING_PREFIX = "staging/"
TEMP_PREFIX = "temp/"


class BatchResources(pulumi.ComponentResource):
    def __init__(self, name: str, cfg: StackConfig, models_bucket: gcp.storage.Bucket,
                 depends_on: Sequence[pulumi.Resource] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:BatchResources", name, None, opts)
        child = child_options(self, depends_on)
        grants = pulumi.ResourceOptions(parent=self)
        self.bucket = gcp.storage.Bucket(
            "batch",
            name=cfg.batch.bucket,
            project=cfg.project,
            location=cfg.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            lifecycle_rules=[
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        age=cfg.batch.temp_retention_days, matches_prefixes=[STAGING_PREFIX, TEMP_PREFIX]),
                )
            ],
            force_destroy=cfg.force_destroy,
            labels=cfg.labels,
            opts=child,
        )
        self.worker = gcp.serviceaccount.Account(
            "batch-sa", account_id=f"{cfg.prefix}-batch", display_name="txguard batch",
            description="Dataflow workers of txguard batch jobs", project=cfg.project, opts=child)
        worker = sa_member(self.worker)
        gcp.projects.IAMMember("batch-dataflow-worker", project=cfg.project, role="roles/dataflow.worker",
                               member=worker, opts=grants)
        gcp.storage.BucketIAMMember("batch-bucket-objects", bucket=self.bucket.name, role="roles/storage.objectAdmin",
                                    member=worker, opts=grants)
        gcp.storage.BucketIAMMember("batch-models-viewer", bucket=models_bucket.name,
                                    role="roles/storage.objectViewer", member=worker, opts=grants)
        for i, launcher in enumerate(cfg.batch.launchers):
            gcp.projects.IAMMember(f"batch-launcher-{i}-dataflow-developer", project=cfg.project,
                                   role="roles/dataflow.developer", member=launcher, opts=grants)
            gcp.serviceaccount.IAMMember(f"batch-launcher-{i}-acts-as-worker", service_account_id=self.worker.name,
                                         role="roles/iam.serviceAccountUser", member=launcher, opts=grants)
            gcp.storage.BucketIAMMember(f"batch-launcher-{i}-bucket-objects", bucket=self.bucket.name,
                                        role="roles/storage.objectAdmin", member=launcher, opts=grants)
        self.staging_location = pulumi.Output.concat("gs://", self.bucket.name, "/", STAGING_PREFIX.rstrip("/"))
        self.temp_location = pulumi.Output.concat("gs://", self.bucket.name, "/", TEMP_PREFIX.rstrip("/"))
        self.register_outputs({"bucket": self.bucket.name, "worker": self.worker.email})
