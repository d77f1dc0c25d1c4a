"""Project APIs the stack needs, and the options that make every resource wait for them."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig

APIS = (
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
)


class ProjectServices(pulumi.ComponentResource):
    """Enables the APIs (never disables them on destroy: other workloads may share the project)."""

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:ProjectServices", name, None, opts)
        self.services: list[pulumi.Resource] = []
        if cfg.enable_apis:
            for api in APIS:
                self.services.append(
                    gcp.projects.Service(
                        api.split(".")[0],
                        project=cfg.project,
                        service=api,
                        disable_on_destroy=False,
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )
        self.register_outputs({"apis": [api for api in APIS if cfg.enable_apis]})


def child_options(parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
    """Options for a component's children: parented, and waiting for what the component waits for.

    Children do not inherit their component's `depends_on`, so it is passed down explicitly.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on))
